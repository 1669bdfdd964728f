package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natsq"
	"github.com/lambdagw/gateway/plugins/sdk/natssource"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

const (
	// pollWait is the longest one pull request waits: a stopping mapping ends within it, and no
	// pull is abandoned while JetStream may still answer it (which would hide its messages for
	// the whole visibility timeout).
	pollWait = time.Second
	// gatherWait: with no batch window, how long a pull for more messages waits once one is there.
	gatherWait = 10 * time.Millisecond
	// maxBatchBytes bounds a batch's bodies, under Lambda's 6 MB invocation payload.
	maxBatchBytes = 5 << 20
	// setupTimeout bounds setting up a mapping's queue and consumer.
	setupTimeout = 5 * time.Second
	// maxErrorBackoff bounds the wait between attempts after an error reading the queue.
	maxErrorBackoff = 30 * time.Second
	// maxRemembered bounds the failed messages a mapping remembers (their first receive time and
	// the function's last answer, for the events and on-failure records).
	maxRemembered = 10000
)

// JetStream's errors for a second consumer on a work-queue stream (nats-server's
// JSConsumerWQConsumerNotUniqueErr and JSConsumerWQMultipleUnfilteredErr).
const (
	errWQConsumerNotUnique  jetstream.ErrorCode = 10100
	errWQMultipleUnfiltered jetstream.ErrorCode = 10099
)

// errConsumerGone means the mapping's JetStream consumer (or its queue) no longer exists.
var errConsumerGone = errors.New("the queue's consumer is gone")

// consumer runs one mapping: pollers that gather batches from the mapping's durable JetStream
// consumer, deliver them and ack, redeliver or dead-letter each message by the result.
type consumer struct {
	trigger.Base
	m      sdk.Mapping
	host   sdk.Host
	js     jetstream.JetStream
	region string
	arn    string
	logger hclog.Logger

	st settings

	mu       sync.Mutex
	failures map[string]failedMsg // by messageId
}

// failedMsg is what a mapping remembers of a message that failed and is due again.
type failedMsg struct {
	firstReceive time.Time
	resp         *trigger.ResponseContext
}

// item is a delivered message with its metadata and SQS record.
type item struct {
	msg   jetstream.Msg
	meta  *jetstream.MsgMetadata
	rec   events.SQSMessage
	first time.Time // first received, as far as this mapping knows
}

func newConsumer(env natssource.Env, m sdk.Mapping, logger hclog.Logger) *consumer {
	return &consumer{m: m, host: env.Host, js: env.Conn.JS, region: env.Conn.Region, arn: queueARN(env.Conn.Region, m.Source),
		logger:   logger.Named("mapping").With("mapping", m.UUID, "queue", m.Source, "function", m.Function),
		failures: map[string]failedMsg{}}
}

// Start sets the mapping up (bounded by setupCtx) and runs it under parent until Stop. A
// mapping that cannot be set up now is in error and goes on trying in the background.
func (c *consumer) Start(setupCtx, parent context.Context) {
	trigger.Start(&c.Base, c.m, setupCtx, parent, trigger.Setup[jetstream.Consumer]{
		Logger: c.logger,
		Check: func() (err error) {
			if c.st, err = mappingSettings(c.m); err != nil {
				return err
			}
			return natsq.Validate(c.m.Source)
		},
		SetUp: c.setup,
		Run:   func(ctx context.Context, jc jetstream.Consumer, _ bool) { c.run(ctx, jc) },
	})
}

// run sets the consumer up until it is, runs the pollers, and sets it up again if it goes away,
// until ctx ends.
func (c *consumer) run(ctx context.Context, jc jetstream.Consumer) {
	for ctx.Err() == nil {
		if jc == nil {
			var ok bool
			if jc, ok = trigger.SetUpAgain(ctx, &c.Base, c.logger, maxErrorBackoff, c.setup); !ok {
				break
			}
		}
		c.logger.Info("consuming", "batch_size", c.st.batchSize, "batch_window", c.st.window,
			"visibility_timeout", c.st.visibility, "concurrency", c.st.concurrency)
		pctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := 0; i < c.st.concurrency; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.poll(pctx, jc); errors.Is(err, errConsumerGone) {
					c.SetStatus(sdk.StateError, err.Error())
					stop()
				}
			}()
		}
		wg.Wait()
		stop()
		jc = nil
	}
	c.logger.Info("mapping stopped")
}

// setup makes sure the queue and the mapping's durable consumer exist.
func (c *consumer) setup(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if _, err := natsq.Ensure(ctx, c.js, c.m.Source); err != nil {
		return nil, err
	}
	jc, err := c.js.CreateOrUpdateConsumer(ctx, natsq.StreamName(c.m.Source), jetstream.ConsumerConfig{
		Durable:       natsq.ConsumerName(c.m.Source),
		Description:   fmt.Sprintf("trigger consumer of queue %s", c.m.Source),
		FilterSubject: natsq.Subject(c.m.Source),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.st.visibility + c.st.window,
		MaxDeliver:    -1, // attempts are counted here, from NumDelivered
		MaxAckPending: max(1000, 2*c.st.batchSize*c.st.concurrency),
	})
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == errWQConsumerNotUnique || apiErr.ErrorCode == errWQMultipleUnfiltered) {
		return nil, fmt.Errorf("queue %s already feeds another mapping (a work queue feeds one; delete the other "+
			"mapping's consumer if that mapping is gone): %w", c.m.Source, err)
	}
	if err != nil {
		return nil, fmt.Errorf("setting up the consumer of queue %s: %w", c.m.Source, err)
	}
	return jc, nil
}

// poll gathers and processes batches until ctx ends or the consumer is gone.
func (c *consumer) poll(ctx context.Context, jc jetstream.Consumer) error {
	backoff := time.Second
	for ctx.Err() == nil {
		msgs, err := c.gather(ctx, jc)
		if ctx.Err() != nil {
			// Stopping: hand what was gathered back at once, to whoever runs the mapping next.
			for _, m := range msgs {
				_ = m.Nak()
			}
			return ctx.Err()
		}
		if len(msgs) > 0 {
			c.process(ctx, msgs)
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
				errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders) {
				c.logger.Warn("the queue's consumer is gone; setting it up again", "error", err)
				return fmt.Errorf("%w: %v", errConsumerGone, err)
			}
			c.SetStatus(sdk.StateError, "reading the queue: "+err.Error())
			c.logger.Warn("reading the queue failed", "error", err)
			if !trigger.Sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(2*backoff, maxErrorBackoff)
			continue
		}
		backoff = time.Second
		c.SetStatus(sdk.StateOK, "")
	}
	return ctx.Err()
}

// gather waits for a first message, then gathers up to the batch size: what is there at once
// with no batch window, or what arrives within the window after the first message. It returns
// what it gathered also with an error.
func (c *consumer) gather(ctx context.Context, jc jetstream.Consumer) ([]jetstream.Msg, error) {
	size := c.st.batchSize
	var msgs []jetstream.Msg
	var bytes int
	for len(msgs) == 0 {
		if ctx.Err() != nil {
			return nil, nil
		}
		got, n, err := fetch(jc, 1, pollWait, 0)
		if err != nil {
			return got, err
		}
		msgs, bytes = got, n
	}
	if c.st.window <= 0 {
		if len(msgs) < size {
			got, _, err := fetch(jc, size-len(msgs), gatherWait, maxBatchBytes-bytes)
			return append(msgs, got...), err
		}
		return msgs, nil
	}
	deadline := time.Now().Add(c.st.window)
	for len(msgs) < size && bytes < maxBatchBytes && ctx.Err() == nil {
		wait := min(time.Until(deadline), pollWait)
		if wait <= 0 {
			break
		}
		began := time.Now()
		got, n, err := fetch(jc, size-len(msgs), wait, maxBatchBytes-bytes)
		msgs, bytes = append(msgs, got...), bytes+n
		if err != nil {
			return msgs, err
		}
		if len(got) == 0 && time.Since(began) < wait/2 {
			break // the next message does not fit in the batch's bytes
		}
	}
	return msgs, nil
}

// fetch pulls up to n messages (and maxBytes, when > 0), waiting up to wait, and returns them
// with the size of their bodies and headers.
func fetch(jc jetstream.Consumer, n int, wait time.Duration, maxBytes int) ([]jetstream.Msg, int, error) {
	opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(wait)}
	if maxBytes > 0 {
		opts = append(opts, jetstream.FetchMaxBytes(maxBytes))
	}
	b, err := jc.Fetch(n, opts...)
	if err != nil {
		return nil, 0, err
	}
	var out []jetstream.Msg
	size := 0
	for m := range b.Messages() {
		out = append(out, m)
		size += len(m.Data())
		for k, vs := range m.Headers() {
			for _, v := range vs {
				size += len(k) + len(v)
			}
		}
	}
	return out, size, b.Error()
}

// process delivers a batch and settles each of its messages by the outcome. Messages given up
// on before delivery go to the on-failure destination instead.
func (c *consumer) process(ctx context.Context, msgs []jetstream.Msg) {
	now := time.Now()
	batch := make([]item, 0, len(msgs))
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			c.logger.Error("a message without JetStream metadata; leaving it", "error", err)
			continue
		}
		id := messageID(m, meta)
		first, resp := c.remembered(id, now)
		it := item{msg: m, meta: meta, rec: sqsMessage(m, meta, c.arn, c.region, first), first: first}
		if cond := c.givenUp(meta, now); cond != "" {
			c.deadLetter(ctx, it, cond, int(meta.NumDelivered)-1, resp)
			continue
		}
		batch = append(batch, it)
	}
	if len(batch) == 0 {
		return
	}

	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(batch))}
	ids := make([]string, len(batch))
	for i, it := range batch {
		ev.Records[i], ids[i] = it.rec, it.rec.MessageId
	}
	body, err := json.Marshal(ev)
	if err != nil { // cannot happen: strings and maps of strings
		c.logger.Error("encoding the SQS event", "error", err)
		c.nakAll(ctx, batch, c.st.retryDelay)
		return
	}
	stopHeartbeat := c.heartbeat(ctx, batch)
	res, err := c.host.Deliver(ctx, sdk.Batch{MappingUUID: c.m.UUID, Event: body, ItemIDs: ids})
	stopHeartbeat()
	if err != nil {
		if ctx.Err() == nil {
			c.logger.Warn("delivering a batch failed; it will be redelivered", "error", err, "size", len(batch))
		}
		c.nakAll(ctx, batch, c.st.retryDelay)
		return
	}
	c.logger.Debug("batch delivered", "size", len(batch), "outcome", res.Outcome, "failed", len(res.FailedItemIDs))
	switch res.Outcome {
	case sdk.Success:
		c.ackAll(batch)
	case sdk.Partial:
		failed, unknown, known := trigger.FailedItems(res.FailedItemIDs, batch, func(it item) string { return it.rec.MessageId })
		if !known {
			c.logger.Warn("batchItemFailures names a record not in the batch; the whole batch failed", "item", unknown)
			c.fail(ctx, batch, res)
			return
		}
		var ok, bad []item
		for _, it := range batch {
			if failed[it.rec.MessageId] {
				bad = append(bad, it)
			} else {
				ok = append(ok, it)
			}
		}
		c.ackAll(ok)
		c.fail(ctx, bad, res)
	case sdk.FunctionError:
		c.logger.Debug("the function failed", "error_type", res.ErrorType, "error", res.ErrorMessage)
		c.fail(ctx, batch, res)
	case sdk.RetryLater:
		resp := &trigger.ResponseContext{StatusCode: 429, ExecutedVersion: trigger.ExecutedVersion(c.m)}
		for _, it := range batch {
			c.remember(it, resp)
		}
		c.nakAll(ctx, batch, c.st.retryDelay)
	default:
		c.logger.Error("unknown outcome; the batch will be redelivered", "outcome", res.Outcome)
		c.nakAll(ctx, batch, c.st.retryDelay)
	}
}

// heartbeat keeps a batch's messages invisible while the function runs (JetStream's "in
// progress", every third of the visibility timeout), so that only a plugin that died leaves
// them to be redelivered when the timeout passes. The returned func stops it and waits.
func (c *consumer) heartbeat(ctx context.Context, batch []item) func() {
	return trigger.Heartbeat(ctx, max(c.st.visibility/3, 100*time.Millisecond), func(context.Context) {
		for _, it := range batch {
			if err := it.msg.InProgress(); err != nil {
				c.logger.Debug("extending a message's visibility failed", "message_id", it.rec.MessageId, "error", err)
			}
		}
	})
}

// givenUp says why a message is not to be delivered again, or "".
func (c *consumer) givenUp(meta *jetstream.MsgMetadata, now time.Time) string {
	if c.m.MaximumRetryAttempts >= 0 && meta.NumDelivered > uint64(c.m.MaximumRetryAttempts)+1 {
		return trigger.ConditionRetries
	}
	if c.m.MaximumRecordAge > 0 && now.Sub(meta.Timestamp) > c.m.MaximumRecordAge {
		return trigger.ConditionRecordAge
	}
	return ""
}

// fail settles messages the function failed: redelivered after a delay, or given up on when
// this was their last attempt.
func (c *consumer) fail(ctx context.Context, items []item, res sdk.BatchResult) {
	resp := &trigger.ResponseContext{StatusCode: 200, ExecutedVersion: trigger.ExecutedVersion(c.m)}
	if res.Outcome == sdk.FunctionError {
		resp.FunctionError = "Unhandled"
	}
	for _, it := range items {
		if c.m.MaximumRetryAttempts >= 0 && it.meta.NumDelivered >= uint64(c.m.MaximumRetryAttempts)+1 {
			c.deadLetter(ctx, it, trigger.ConditionRetries, int(it.meta.NumDelivered), resp)
			continue
		}
		c.remember(it, resp)
		c.nak(ctx, it, c.retryDelay(it.meta.NumDelivered))
	}
}

// retryDelay doubles the mapping's retry delay with each delivery, up to maxRetryDelay.
func (c *consumer) retryDelay(delivered uint64) time.Duration {
	d := c.st.retryDelay
	for i := uint64(1); i < delivered && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// deadLetter sends a message given up on to the mapping's on-failure destination and then
// terminates it (removing it from the queue); with no destination it logs and drops it. If the
// record cannot be sent, the message stays and is redelivered (and given up on again).
func (c *consumer) deadLetter(ctx context.Context, it item, cond string, invokes int, resp *trigger.ResponseContext) {
	logger := c.logger.With("message_id", it.rec.MessageId, "condition", cond, "receive_count", it.meta.NumDelivered)
	if c.m.OnFailureDestination == "" {
		logger.Warn("dropping a message given up on: the mapping has no on-failure destination")
		c.term(it, cond)
		return
	}
	rc := trigger.ResponseContext{ExecutedVersion: trigger.ExecutedVersion(c.m)}
	if resp != nil {
		rc = *resp
	}
	rec := failureRecord{
		RequestContext:  trigger.NewRequestContext(c.m, cond, max(invokes, 0)),
		ResponseContext: rc,
		Version:         "1.0",
		Timestamp:       time.Now().UTC().Format(trigger.TimestampLayout),
		SQSBatchInfo: sqsBatchInfo{QueueARN: c.arn, MessageID: it.rec.MessageId, BatchSize: 1,
			ApproximateReceiveCount: int(it.meta.NumDelivered), SentTimestamp: it.rec.Attributes["SentTimestamp"]},
		Payload: events.SQSEvent{Records: []events.SQSMessage{it.rec}},
	}
	body, err := json.Marshal(rec)
	if err == nil {
		err = c.host.SendOnFailure(ctx, c.m.UUID, body)
	}
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("sending the on-failure record failed; the message will be redelivered", "error", err)
		}
		c.remember(it, resp)
		c.nak(ctx, it, c.st.retryDelay)
		return
	}
	logger.Info("message sent to the on-failure destination", "destination", c.m.OnFailureDestination)
	c.term(it, cond)
}

func (c *consumer) ackAll(items []item) {
	for _, it := range items {
		if err := it.msg.Ack(); err != nil {
			c.logger.Warn("acking a message failed; it will be redelivered", "message_id", it.rec.MessageId, "error", err)
		}
		c.forget(it.rec.MessageId)
	}
}

func (c *consumer) term(it item, reason string) {
	if err := it.msg.TermWithReason(reason); err != nil {
		c.logger.Warn("terminating a message failed; it will be redelivered", "message_id", it.rec.MessageId, "error", err)
	}
	c.forget(it.rec.MessageId)
}

func (c *consumer) nakAll(ctx context.Context, items []item, delay time.Duration) {
	for _, it := range items {
		c.nak(ctx, it, delay)
	}
}

// nak has JetStream redeliver a message after delay, or at once when the mapping is stopping.
func (c *consumer) nak(ctx context.Context, it item, delay time.Duration) {
	var err error
	if ctx.Err() != nil {
		err = it.msg.Nak()
	} else {
		err = it.msg.NakWithDelay(delay)
	}
	if err != nil {
		c.logger.Warn("nak failed; the message will be redelivered after the visibility timeout",
			"message_id", it.rec.MessageId, "error", err)
	}
}

// remembered returns when the message was first received (now, if unknown) and the function's
// last answer for it (nil if unknown).
func (c *consumer) remembered(id string, now time.Time) (time.Time, *trigger.ResponseContext) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.failures[id]; ok {
		return f.firstReceive, f.resp
	}
	return now, nil
}

func (c *consumer) remember(it item, resp *trigger.ResponseContext) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.failures[it.rec.MessageId]; ok || len(c.failures) < maxRemembered {
		c.failures[it.rec.MessageId] = failedMsg{firstReceive: it.first, resp: resp}
	}
}

func (c *consumer) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.failures, id)
}
