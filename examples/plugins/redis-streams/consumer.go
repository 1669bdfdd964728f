package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

const (
	// pollWait is the longest one XREADGROUP blocks: a stopping mapping ends within it.
	pollWait = time.Second
	// maxErrorBackoff bounds the wait between attempts after an error from Redis.
	maxErrorBackoff = 30 * time.Second
	// ackTimeout bounds acknowledging entries, which goes on when the mapping stops meanwhile
	// (an entry the function has handled is better not delivered again).
	ackTimeout = 5 * time.Second
	// maxRemembered bounds the failed entries a mapping remembers (the deliveries that used no
	// attempt and the function's last answer, for the on-failure records).
	maxRemembered = 10000
)

// consumer runs one mapping: it reads the mapping's stream through its consumer group, delivers
// batches and acknowledges, leaves pending (to be claimed again) or dead-letters each entry by
// the result. One goroutine does it all, so a node handles one batch of a mapping at a time.
type consumer struct {
	trigger.Base
	m      sdk.Mapping
	host   sdk.Host
	opts   *redis.Options
	name   string // the consumer's name in the group: the node's
	arn    string
	region string
	logger hclog.Logger

	// Set by Start.
	st  settings
	rdb *redis.Client

	memo map[string]memo // by entry ID; only the mapping's goroutine uses it
}

// memo is what a mapping remembers of an entry that failed and is pending.
type memo struct {
	uncounted int                      // deliveries that used no attempt (RetryLater, delivery failed)
	resp      *trigger.ResponseContext // the function's last answer, if any
}

// entry is an entry to deliver, with how often it was delivered.
type entry struct {
	msg        redis.XMessage
	deliveries int64 // Redis's delivery count, this delivery included
	attempts   int   // which invocation this delivery is: deliveries less the uncounted ones
}

// newConsumer makes the consumer of m on srv.
func (s *source) newConsumer(host sdk.Host, srv server, m sdk.Mapping) *consumer {
	return &consumer{m: m, host: host, opts: srv.opts, name: srv.node, region: srv.region,
		arn: streamARN(srv.opts.Addr, m.Source),
		logger: s.logger.Named("mapping").With("mapping", m.UUID, "stream", m.Source, "function", m.Function,
			"consumer", srv.node),
		memo: map[string]memo{}}
}

// Start sets the mapping up (bounded by setupCtx) and runs it under parent until Stop. A mapping
// whose consumer group cannot be set up now is in error and goes on trying in the background.
func (c *consumer) Start(setupCtx, parent context.Context) {
	st, stErr := mappingSettings(c.m)
	if stErr == nil {
		c.st = st
		c.logger = c.logger.With("group", st.group)
	}
	trigger.Start(&c.Base, c.m, setupCtx, parent, trigger.Setup[struct{}]{
		Logger: c.logger,
		Check: func() error {
			if stErr == nil {
				c.rdb = redis.NewClient(c.opts)
			}
			return stErr
		},
		SetUp: func(ctx context.Context) (struct{}, error) { return struct{}{}, c.setup(ctx) },
		Run:   func(ctx context.Context, _ struct{}, ready bool) { c.run(ctx, ready) },
	})
}

// setup makes sure the stream and the mapping's consumer group exist.
func (c *consumer) setup(ctx context.Context) error {
	err := c.rdb.XGroupCreateMkStream(ctx, c.m.Source, c.st.group, c.st.startID).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("creating consumer group %q of stream %q: %w", c.st.group, c.m.Source, err)
	}
	return nil
}

// run consumes until ctx ends, setting the group up again if it goes away and backing off
// after errors.
func (c *consumer) run(ctx context.Context, ready bool) {
	defer func() { _ = c.rdb.Close() }()
	backoff := time.Second
	for ctx.Err() == nil {
		if !ready {
			if err := c.setup(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				c.SetStatus(sdk.StateError, err.Error())
				c.logger.Warn("cannot set the mapping up", "error", err)
				if !trigger.Sleep(ctx, backoff) {
					break
				}
				backoff = min(2*backoff, maxErrorBackoff)
				continue
			}
			ready = true
			c.SetStatus(sdk.StateOK, "")
		}
		c.logger.Info("consuming", "batch_size", c.st.batchSize, "batch_window", c.st.window.String(),
			"retry_delay", c.st.retryDelay.String(), "start", c.st.startID)
		progressed, err := c.consume(ctx)
		if ctx.Err() != nil {
			break
		}
		if err == nil { // consume returns only with an error while ctx lasts
			continue
		}
		if progressed {
			backoff = time.Second
		}
		if strings.Contains(err.Error(), "NOGROUP") {
			c.logger.Warn("the consumer group is gone (was the stream deleted?); creating it again", "error", err)
			ready = false
		}
		c.SetStatus(sdk.StateError, err.Error())
		c.logger.Warn("consuming the stream failed; retrying", "error", err, "backoff", backoff.String())
		if !trigger.Sleep(ctx, backoff) {
			break
		}
		backoff = min(2*backoff, maxErrorBackoff)
	}
	c.logger.Info("mapping stopped")
}

// consume claims the group's entries that are due again and reads new ones, and processes them,
// until ctx ends or Redis fails. progressed says whether any command succeeded.
func (c *consumer) consume(ctx context.Context) (progressed bool, err error) {
	claimEvery := min(max(c.st.retryDelay/2, 10*time.Millisecond), pollWait)
	cursor := "0-0" // XAUTOCLAIM's scan of the pending entries: "0-0" starts (and ends) one
	var lastScan time.Time
	for ctx.Err() == nil {
		if cursor != "0-0" || time.Since(lastScan) >= claimEvery {
			msgs, next, err := c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: c.m.Source, Group: c.st.group,
				Consumer: c.name, MinIdle: c.st.retryDelay, Start: cursor, Count: int64(c.st.batchSize)}).Result()
			if err != nil {
				return progressed, fmt.Errorf("claiming the pending entries of stream %q: %w", c.m.Source, err)
			}
			progressed = true
			if next == "0-0" {
				lastScan = time.Now()
			}
			cursor = next
			if len(msgs) > 0 {
				if err := c.process(ctx, msgs, true); err != nil {
					return progressed, err
				}
				continue
			}
			if cursor != "0-0" {
				continue // scan on: the pending entries seen so far were not due
			}
		}
		msgs, err := c.read(ctx, claimEvery)
		if len(msgs) > 0 {
			progressed = true
			if perr := c.process(ctx, msgs, false); perr != nil && err == nil {
				err = perr
			}
		}
		if err != nil {
			return progressed, err
		}
		progressed = true
		c.SetStatus(sdk.StateOK, "")
	}
	return progressed, ctx.Err()
}

// read reads new entries: what there is, waiting up to block for a first one, and with a batch
// window what arrives within the window after the first one, up to the batch size. It returns
// what it read also with an error.
func (c *consumer) read(ctx context.Context, block time.Duration) ([]redis.XMessage, error) {
	msgs, err := c.readGroup(ctx, c.st.batchSize, block)
	if err != nil || len(msgs) == 0 || c.st.window <= 0 {
		return msgs, err
	}
	deadline := time.Now().Add(c.st.window)
	for len(msgs) < c.st.batchSize && ctx.Err() == nil {
		wait := min(time.Until(deadline), pollWait)
		if wait < time.Millisecond { // BLOCK 0 would wait for ever
			break
		}
		more, err := c.readGroup(ctx, c.st.batchSize-len(msgs), wait)
		msgs = append(msgs, more...)
		if err != nil {
			return msgs, err
		}
	}
	return msgs, nil
}

// readGroup is one XREADGROUP of up to n new entries, blocking up to block (at least 1 ms).
func (c *consumer) readGroup(ctx context.Context, n int, block time.Duration) ([]redis.XMessage, error) {
	res, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: c.st.group, Consumer: c.name,
		Streams: []string{c.m.Source, ">"}, Count: int64(n), Block: max(block, time.Millisecond)}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading stream %q: %w", c.m.Source, err)
	}
	var out []redis.XMessage
	for _, s := range res {
		out = append(out, s.Messages...)
	}
	return out, nil
}

// process delivers msgs (claimed again, or new) as a batch and settles each entry by the
// outcome. Entries given up on before delivery go to the on-failure destination instead. An
// error is Redis's: the entries not settled stay pending and are claimed again.
func (c *consumer) process(ctx context.Context, msgs []redis.XMessage, claimed bool) error {
	var counts map[string]int64
	if claimed {
		var err error
		if counts, err = c.deliveryCounts(ctx, msgs); err != nil {
			return err
		}
	}
	now := time.Now()
	var gone []string
	var batch []entry
	givenUp := map[string][]entry{}
	for _, m := range msgs {
		if m.Values == nil { // deleted from the stream while pending (Redis 6.2's XAUTOCLAIM)
			gone = append(gone, m.ID)
			continue
		}
		n := int64(1)
		if claimed {
			var ok bool
			if n, ok = counts[m.ID]; !ok {
				continue // no longer ours: settled or claimed by another consumer meanwhile
			}
		}
		e := entry{msg: m, deliveries: n, attempts: int(n) - c.memo[m.ID].uncounted}
		if cond := c.givenUp(e, now); cond != "" {
			givenUp[cond] = append(givenUp[cond], e)
			continue
		}
		batch = append(batch, e)
	}
	if len(gone) > 0 {
		if err := c.ack(ctx, gone); err != nil {
			return err
		}
	}
	for _, cond := range []string{trigger.ConditionRecordAge, trigger.ConditionRetries} {
		if es := givenUp[cond]; len(es) > 0 {
			if err := c.deadLetter(ctx, es, cond, false, nil); err != nil {
				return err
			}
		}
	}
	if len(batch) == 0 {
		return nil
	}

	xs := make([]redis.XMessage, len(batch))
	for i, e := range batch {
		xs[i] = e.msg
	}
	body, ids, err := kinesisEvent(xs, c.m.Source, c.arn, c.region)
	if err != nil { // cannot happen: strings and bytes
		c.logger.Error("encoding the event; the entries stay pending", "error", err)
		return nil
	}
	stopHeartbeat := c.heartbeat(ctx, ids)
	res, err := c.host.Deliver(ctx, sdk.Batch{MappingUUID: c.m.UUID, Event: body, ItemIDs: ids})
	stopHeartbeat()
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopping: the entries stay pending, for whoever runs the mapping next
		}
		c.logger.Warn("delivering a batch failed; it will be delivered again", "error", err, "size", len(batch))
		c.uncount(batch, nil)
		trigger.Sleep(ctx, c.st.retryDelay)
		return nil
	}
	c.logger.Debug("batch delivered", "size", len(batch), "outcome", res.Outcome.String(), "failed", len(res.FailedItemIDs))
	switch res.Outcome {
	case sdk.Success:
		return c.ack(ctx, ids)
	case sdk.Partial:
		return c.partial(ctx, batch, res)
	case sdk.FunctionError:
		c.logger.Debug("the function failed", "error_type", res.ErrorType, "error", res.ErrorMessage)
		return c.fail(ctx, batch, res)
	case sdk.RetryLater:
		// The gateway could not run the function: no attempt used. Give it a moment.
		c.uncount(batch, &trigger.ResponseContext{StatusCode: 429, ExecutedVersion: trigger.ExecutedVersion(c.m)})
		trigger.Sleep(ctx, c.st.retryDelay)
		return nil
	default:
		c.logger.Error("unknown outcome; the batch will be delivered again", "outcome", res.Outcome.String())
		c.uncount(batch, nil)
		return nil
	}
}

// partial settles a batch the function answered with batchItemFailures.
func (c *consumer) partial(ctx context.Context, batch []entry, res sdk.BatchResult) error {
	failed, unknown, known := trigger.FailedItems(res.FailedItemIDs, batch, func(e entry) string { return e.msg.ID })
	if !known {
		c.logger.Warn("batchItemFailures names a record not in the batch; the whole batch failed", "item", unknown)
		return c.fail(ctx, batch, res)
	}
	var ok []string
	var bad []entry
	for _, e := range batch {
		if failed[e.msg.ID] {
			bad = append(bad, e)
		} else {
			ok = append(ok, e.msg.ID)
		}
	}
	if len(ok) > 0 {
		if err := c.ack(ctx, ok); err != nil {
			return err
		}
	}
	return c.fail(ctx, bad, res)
}

// fail settles entries the function failed: they stay pending, to be claimed again after the
// retry delay, or are given up on when this was their last attempt.
func (c *consumer) fail(ctx context.Context, es []entry, res sdk.BatchResult) error {
	resp := &trigger.ResponseContext{StatusCode: 200, ExecutedVersion: trigger.ExecutedVersion(c.m)}
	if res.Outcome == sdk.FunctionError {
		resp.FunctionError = "Unhandled"
	}
	var exhausted []entry
	for _, e := range es {
		if c.m.MaximumRetryAttempts >= 0 && e.attempts >= c.m.MaximumRetryAttempts+1 {
			exhausted = append(exhausted, e)
			continue
		}
		c.remember(e.msg.ID, func(m *memo) { m.resp = resp })
	}
	if len(exhausted) == 0 {
		return nil
	}
	return c.deadLetter(ctx, exhausted, trigger.ConditionRetries, true, resp)
}

// givenUp says why an entry is not to be delivered again, or "".
func (c *consumer) givenUp(e entry, now time.Time) string {
	if c.m.MaximumRecordAge > 0 {
		if t := entryTime(e.msg.ID); !t.IsZero() && now.Sub(t) > c.m.MaximumRecordAge {
			return trigger.ConditionRecordAge
		}
	}
	if c.m.MaximumRetryAttempts >= 0 && e.attempts > c.m.MaximumRetryAttempts+1 {
		return trigger.ConditionRetries
	}
	return ""
}

// deadLetter sends the on-failure record of entries given up on for cond and then acknowledges
// them; with no destination it logs and drops them. invoked says whether the function was just
// invoked with them (else this delivery was not an invocation). If the record cannot be sent,
// the entries stay pending: they are claimed again, and given up on again.
func (c *consumer) deadLetter(ctx context.Context, es []entry, cond string, invoked bool, resp *trigger.ResponseContext) error {
	ids := make([]string, len(es))
	invokes := 0
	for i, e := range es {
		ids[i] = e.msg.ID
		n := e.attempts
		if !invoked {
			n--
		}
		invokes = max(invokes, n)
		if resp == nil {
			resp = c.memo[e.msg.ID].resp
		}
	}
	logger := c.logger.With("condition", cond, "entries", len(ids), "first", ids[0], "invocations", invokes)
	if c.m.OnFailureDestination == "" {
		logger.Warn("dropping entries given up on: the mapping has no on-failure destination")
		return c.ack(ctx, ids)
	}
	rc := trigger.ResponseContext{ExecutedVersion: trigger.ExecutedVersion(c.m)}
	if resp != nil {
		rc = *resp
	}
	rec := newFailureRecord(ids, cond, invokes, rc, c.m.FunctionARN, c.arn, c.m.Source, c.st.group)
	body, err := json.Marshal(rec)
	if err == nil {
		err = c.host.SendOnFailure(ctx, c.m.UUID, body)
	}
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("sending the on-failure record failed; the entries stay pending", "error", err)
		}
		if resp != nil {
			for _, id := range ids {
				c.remember(id, func(m *memo) { m.resp = resp })
			}
		}
		return nil
	}
	logger.Info("entries sent to the on-failure destination", "destination", c.m.OnFailureDestination)
	return c.ack(ctx, ids)
}

// deliveryCounts reads Redis's delivery counts of msgs, those still pending for this consumer.
func (c *consumer) deliveryCounts(ctx context.Context, msgs []redis.XMessage) (map[string]int64, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: c.m.Source, Group: c.st.group,
			Start: m.ID, End: m.ID, Count: 1, Consumer: c.name})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading the delivery counts of stream %q: %w", c.m.Source, err)
	}
	out := make(map[string]int64, len(msgs))
	for i, cmd := range cmds {
		if p, err := cmd.Result(); err == nil && len(p) == 1 && p[0].ID == msgs[i].ID {
			out[msgs[i].ID] = p[0].RetryCount
		}
	}
	return out, nil
}

// heartbeat keeps the entries ids fresh while the function has them (XCLAIM JUSTID resets an
// entry's idle time and not its delivery count), so that only a node that died leaves them to
// be claimed by others. The returned func stops it and waits.
func (c *consumer) heartbeat(ctx context.Context, ids []string) func() {
	return trigger.Heartbeat(ctx, max(c.st.retryDelay/3, 10*time.Millisecond), func(ctx context.Context) {
		err := c.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: c.m.Source, Group: c.st.group,
			Consumer: c.name, Messages: ids}).Err()
		if err != nil && ctx.Err() == nil {
			c.logger.Debug("keeping a batch's entries fresh failed", "error", err)
		}
	})
}

// ack acknowledges entries and forgets them. It goes on when the mapping is stopping.
func (c *consumer) ack(ctx context.Context, ids []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if err := c.rdb.XAck(ctx, c.m.Source, c.st.group, ids...).Err(); err != nil {
		return fmt.Errorf("acknowledging %d entries of stream %q: %w", len(ids), c.m.Source, err)
	}
	for _, id := range ids {
		delete(c.memo, id)
	}
	return nil
}

// uncount remembers that this delivery of es used no attempt (and resp, if not nil).
func (c *consumer) uncount(es []entry, resp *trigger.ResponseContext) {
	for _, e := range es {
		c.remember(e.msg.ID, func(m *memo) {
			m.uncounted++
			if resp != nil {
				m.resp = resp
			}
		})
	}
}

// remember updates what the mapping remembers of entry id, if it has room.
func (c *consumer) remember(id string, update func(*memo)) {
	m, ok := c.memo[id]
	if !ok && len(c.memo) >= maxRemembered {
		return
	}
	update(&m)
	c.memo[id] = m
}
