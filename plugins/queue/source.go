package main

// The queue trigger source: configuration, connection and the set of mappings. Each enabled
// mapping is a *consumer (consumer.go) running a durable JetStream pull consumer on its queue;
// the SQS event and on-failure record shapes are in event.go.
//
// Semantics, as Lambda's SQS event source mapping has them:
//   - A message is acked only once its outcome is known (at least once): after a successful
//     batch, after a partial batch for the records not in batchItemFailures, and after its
//     on-failure record was sent (or, with no destination, after it was logged and dropped).
//   - A failed record is redelivered (Nak with a delay that doubles per delivery, up to a
//     minute) until it has been delivered MaximumRetryAttempts+1 times (when >= 0) or is older
//     than MaximumRecordAge (when > 0); then it goes to the on-failure destination.
//   - JetStream counts deliveries (NumDelivered, the SQS ApproximateReceiveCount) and the plugin
//     keeps no count of its own: a batch the gateway could not run (RetryLater) or whose
//     delivery failed (the host went away) is redelivered too, and that delivery counts like
//     any other towards MaximumRetryAttempts. Keep MaximumRetryAttempts at -1 for SQS's own
//     behaviour (retry until MaximumRecordAge, or forever).
//
// Mapping options (sdk.Mapping.Options):
//   - visibility_timeout: how long a message handed to the plugin stays invisible to others if
//     the plugin stops answering for it (it died): a Go duration or seconds, 30s by default as
//     SQS's. While the function runs the plugin keeps extending it (JetStream "in progress"),
//     so it need not exceed the function's timeout; the batch window is added to it.
//   - retry_delay: the delay before the first redelivery of a failed record (1s by default).
//   - maximum_concurrency: how many batches of the mapping may be in flight at once (1 to 1000,
//     1 by default), like ScalingConfig.MaximumConcurrency.

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natssource"
)

// Limits and defaults.
const (
	defaultBatchSize         = 10
	maxBatchSize             = 10000
	defaultVisibility        = 30 * time.Second
	defaultRetryDelay        = time.Second
	maxRetryDelay            = time.Minute
	maxConcurrency           = 1000
	optionVisibilityTimeout  = "visibility_timeout"
	optionRetryDelay         = "retry_delay"
	optionMaximumConcurrency = "maximum_concurrency"
)

// source is the queue TriggerSource: natssource's plumbing, with a consumer per mapping.
type source struct {
	*natssource.Source[*consumer]
}

var _ sdk.TriggerSource = (*source)(nil)

func newSource() *source {
	return newSourceWithLogger(sdk.Logger())
}

func newSourceWithLogger(logger hclog.Logger) *source {
	logger = logger.Named("queue")
	return &source{natssource.NewSource(natssource.SourceConfig[*consumer]{
		Trigger: "queue", What: "queues", Logger: logger, SetupTimeout: setupTimeout,
		NewRunner: func(env natssource.Env, m sdk.Mapping) *consumer { return newConsumer(env, m, logger) },
	})}
}

// settings are a mapping's batching and retry settings, with defaults applied.
type settings struct {
	batchSize   int
	window      time.Duration
	visibility  time.Duration
	retryDelay  time.Duration
	concurrency int
}

// mappingSettings checks m and applies the defaults.
func mappingSettings(m sdk.Mapping) (settings, error) {
	st := settings{batchSize: m.BatchSize, window: m.BatchWindow, visibility: defaultVisibility,
		retryDelay: defaultRetryDelay, concurrency: 1}
	if st.batchSize == 0 {
		st.batchSize = defaultBatchSize
	}
	if st.batchSize < 0 || st.batchSize > maxBatchSize {
		return st, fmt.Errorf("batch size %d is out of range (1 to %d)", m.BatchSize, maxBatchSize)
	}
	if st.window < 0 {
		st.window = 0
	}
	if v, ok := m.Options[optionVisibilityTimeout]; ok {
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			return st, fmt.Errorf("option %s: %q is no positive duration", optionVisibilityTimeout, v)
		}
		st.visibility = d
	}
	if v, ok := m.Options[optionRetryDelay]; ok {
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			return st, fmt.Errorf("option %s: %q is no positive duration", optionRetryDelay, v)
		}
		st.retryDelay = d
	}
	if v, ok := m.Options[optionMaximumConcurrency]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxConcurrency {
			return st, fmt.Errorf("option %s: %q is not a number from 1 to %d", optionMaximumConcurrency, v, maxConcurrency)
		}
		st.concurrency = n
	}
	return st, nil
}

// parseDuration reads a Go duration ("90s", "5m") or a number of seconds.
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}
