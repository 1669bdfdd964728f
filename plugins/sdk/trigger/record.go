// Package trigger is a toolkit for writing a trigger source, beside package sdk: the runner base
// that every mapping's worker embeds (its status, its start-up and its lifetime), the parts of
// Lambda's on-failure destination records, and a sleep that ends with its context. The built-in
// triggers (queue, stream, s3) are written with it exactly as a third party's would be; like
// package sdk it imports nothing of the gateway's host.
package trigger

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// Conditions of an on-failure record: why the records were given up on.
const (
	// ConditionRetries and ConditionRecordAge are an event source mapping's (Lambda's records
	// for SQS, Kinesis and DynamoDB streams).
	ConditionRetries   = "RetryAttemptsExhausted"
	ConditionRecordAge = "RecordAgeExceeded"
	// ConditionAsyncRetries and ConditionEventAge are an asynchronous invocation's (a source
	// that invokes as Lambda invokes for S3 notifications).
	ConditionAsyncRetries = "RetriesExhausted"
	ConditionEventAge     = "EventAgeExceeded"
)

// TimestampLayout is how Lambda's records write times: UTC, milliseconds.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// RequestContext is the requestContext of an on-failure record: which invocation gave up, and why.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// NewRequestContext is the request context of records of m given up on for condition after
// invokes invocations, with a new request ID.
func NewRequestContext(m sdk.Mapping, condition string, invokes int) RequestContext {
	return RequestContext{RequestID: NewRequestID(), FunctionARN: m.FunctionARN, Condition: condition,
		ApproximateInvokeCount: invokes}
}

// ResponseContext is the function's last answer in an on-failure record; StatusCode 0 when no
// invocation with the records is known.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// ExecutedVersion is the version records report as having run m's function: its qualifier, or
// $LATEST. (The host resolves aliases; a plugin does not learn the version behind one.)
func ExecutedVersion(m sdk.Mapping) string {
	if m.Qualifier != "" {
		return m.Qualifier
	}
	return "$LATEST"
}

// NewRequestID is a random (version 4) UUID, as Lambda's request IDs are.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Sleep waits d or until ctx ends; false if ctx ended first, so a stopping runner never waits
// out a backoff.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// FailedItems reads the batchItemFailures of a partial batch result (sdk.Partial) as Lambda
// does: failed holds the IDs (id(item)) of the items of batch that failed; ok is false when one
// of failedIDs, unknown, is no item of the batch (or empty), which fails the whole batch.
func FailedItems[T any](failedIDs []string, batch []T, id func(T) string) (failed map[string]bool, unknown string, ok bool) {
	inBatch := make(map[string]bool, len(batch))
	for _, it := range batch {
		inBatch[id(it)] = true
	}
	failed = make(map[string]bool, len(failedIDs))
	for _, f := range failedIDs {
		if !inBatch[f] {
			return nil, f, false
		}
		failed[f] = true
	}
	return failed, "", true
}

// Heartbeat calls beat every interval, in a goroutine of its own, until the returned stop is
// called (or ctx ends); stop waits until beat is no longer running. It keeps a batch's records
// claimed while the function has them: a queue's visibility timeout extended, a stream's
// pending entries kept fresh. beat's context ends on stop.
func Heartbeat(ctx context.Context, interval time.Duration, beat func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				beat(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
