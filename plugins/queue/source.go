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
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// source is the queue TriggerSource.
type source struct {
	logger hclog.Logger

	mu     sync.Mutex
	host   sdk.Host
	nc     *nats.Conn
	js     jetstream.JetStream
	region string
	ctx    context.Context // the consumers' parent: ends on Close
	cancel context.CancelFunc
	set    sdk.MappingSet[*consumer]
}

var _ sdk.TriggerSource = (*source)(nil)

func newSource() *source {
	return newSourceWithLogger(sdk.Logger())
}

func newSourceWithLogger(logger hclog.Logger) *source {
	ctx, cancel := context.WithCancel(context.Background())
	return &source{logger: logger.Named("queue"), ctx: ctx, cancel: cancel}
}

func (s *source) Schema() sdk.Schema { return natssource.Schema("queues") }

// Configure connects to NATS (reconnecting forever, also when the server is not up yet) and
// keeps the host. Called again, it stops the mappings and reconnects.
func (s *source) Configure(_ context.Context, req sdk.ConfigureRequest, host sdk.Host) ([]sdk.Diagnostic, error) {
	conn, diags, err := natssource.Connect(req, "lambdagw queue trigger", "queues", s.logger)
	if conn == nil {
		return diags, err
	}
	s.mu.Lock()
	s.set.StopAll()
	oldNC := s.nc
	s.host, s.nc, s.js, s.region = host, conn.NC, conn.JS, conn.Region
	s.mu.Unlock()
	if oldNC != nil {
		oldNC.Close()
	}
	return nil, nil
}

// SetMappings starts the enabled mappings not running yet, restarts the changed ones and stops
// the others (their JetStream consumers stay, with their messages). A mapping whose queue or
// consumer cannot be set up now is reported in error and retried in the background.
func (s *source) SetMappings(ctx context.Context, mappings []sdk.Mapping) ([]sdk.MappingStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.js == nil {
		return nil, errors.New("the queue trigger is not configured")
	}
	return s.set.Set(ctx, s.ctx, mappings, setupTimeout, s.newConsumer)
}

// Status reports each mapping of the last SetMappings.
func (s *source) Status(context.Context) ([]sdk.MappingStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Status(), nil
}

// Close stops every mapping and closes the connection. The plugin's process never calls it
// (it ends with the process); tests and an in-process host do.
func (s *source) Close() {
	s.mu.Lock()
	s.cancel()
	s.set.StopAll()
	nc := s.nc
	s.nc, s.js = nil, nil
	s.mu.Unlock()
	if nc != nil {
		_ = nc.FlushTimeout(5 * time.Second) // the last acks
		nc.Close()
	}
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
