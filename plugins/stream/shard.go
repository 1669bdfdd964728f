package main

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
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

const (
	// gatherWait: with no batch window, how long to wait for a next record once a batch has
	// one (records already fetched come at once).
	gatherWait = 5 * time.Millisecond
	// maxBatchBytes bounds the data of a batch's records, so that the event (base64 grows it by
	// a third) stays under Lambda's 6 MB invocation payload.
	maxBatchBytes = 4 << 20
	// minBackoff and maxBackoff bound the wait between retries of a batch, or after an error.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// maxResetAttempts bounds how often the ordered consumer tries to recreate itself before
	// the shard sees the error (and opens the reader again after a backoff).
	maxResetAttempts = 3
	// cleanupTimeout bounds deleting a stopped reader's consumer.
	cleanupTimeout = 2 * time.Second
	// stopGrace is how long a batch in flight when its mapping stops may still take: if its
	// result comes in time, it is settled (and checkpointed) and not delivered again by whoever
	// runs the mapping next. Stopping a mapping waits for it.
	stopGrace = 5 * time.Second
)

// record is a record of the shard.
type record struct {
	seq     uint64
	key     string
	data    []byte
	arrived time.Time
	done    bool // its outcome is known (sent to the on-failure destination): not delivered again
}

// batch is a run of the shard's records delivered together until their outcome is known. The
// shard's batches follow each other with no gap, the first starting after the checkpoint.
type batch struct {
	recs     []*record
	attempts int                      // failed attempts counted against MaximumRetryAttempts
	invokes  int                      // times the function was invoked with these records
	resp     *trigger.ResponseContext // the function's last answer, for an on-failure record
}

func (b *batch) last() uint64 { return b.recs[len(b.recs)-1].seq }

// live returns the records of b whose outcome is not known yet.
func (b *batch) live() []*record {
	out := make([]*record, 0, len(b.recs))
	for _, r := range b.recs {
		if !r.done {
			out = append(out, r)
		}
	}
	return out
}

// shard delivers one shard's records, in order, one batch at a time.
type shard struct {
	mp     *mapping
	idx    int
	id     string
	kv     jetstream.KeyValue
	logger hclog.Logger

	checkpoint uint64 // the last sequence done, as saved
	position   string // where to start with no checkpoint: sdk.TrimHorizon or sdk.AtTimestamp; "" after read
	next       uint64 // the next sequence to read (0: by position)

	reader  jetstream.Consumer
	iter    jetstream.MessagesContext
	carry   *record  // read but left out of the last batch gathered (bytes)
	queue   []*batch // the batches not done yet, in order
	backoff time.Duration
}

func (mp *mapping) newShard(i int, kv jetstream.KeyValue, st start) *shard {
	w := &shard{mp: mp, idx: i, id: natsstream.ShardID(i), kv: kv, checkpoint: st.checkpoint,
		position: st.position, backoff: minBackoff}
	w.logger = mp.logger.Named("shard").With("shard", w.id)
	if st.position == "" {
		w.next = st.checkpoint + 1
	}
	return w
}

// run delivers the shard's records until ctx ends (nil) or the stream is gone (errStreamGone).
func (w *shard) run(ctx context.Context) error {
	defer w.closeReader()
	w.logger.Debug("shard started", "checkpoint", w.checkpoint, "position", w.position)
	for ctx.Err() == nil {
		if len(w.queue) == 0 {
			b, err := w.gather(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				if errors.Is(err, jetstream.ErrStreamNotFound) {
					w.logger.Warn("the stream is gone", "error", err)
					return fmt.Errorf("%w: %v", errStreamGone, err)
				}
				w.problem("reading the stream: %v", err)
				w.closeReader()
				w.wait(ctx)
				continue
			}
			w.queue = append(w.queue, b)
		}
		w.process(ctx)
	}
	w.logger.Debug("shard stopped", "checkpoint", w.checkpoint)
	return nil
}

// openReader opens an ordered consumer on the shard's subject, from the next sequence to read
// (or the starting position, before any was read).
func (w *shard) openReader(ctx context.Context) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:   []string{natsstream.Subject(w.mp.m.Source, w.idx)},
		MaxResetAttempts: maxResetAttempts,
	}
	switch {
	case w.next > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, w.next
	case w.position == sdk.AtTimestamp:
		t := w.mp.m.StartingPositionTimestamp
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	octx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	c, err := w.mp.js.OrderedConsumer(octx, natsstream.StreamName(w.mp.m.Source), cfg)
	if err != nil {
		return fmt.Errorf("opening a reader: %w", err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(min(max(w.mp.st.batchSize, 64), 1000)))
	if err != nil {
		w.deleteConsumer(c)
		return fmt.Errorf("opening a reader: %w", err)
	}
	w.reader, w.iter = c, it
	return nil
}

// closeReader stops the reader and deletes its consumer.
func (w *shard) closeReader() {
	if w.iter == nil {
		return
	}
	w.iter.Stop()
	w.deleteConsumer(w.reader)
	w.reader, w.iter = nil, nil
}

func (w *shard) deleteConsumer(c jetstream.Consumer) {
	info := c.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	// Best effort: the server deletes an ordered consumer left inactive anyway.
	if err := w.mp.js.DeleteConsumer(ctx, info.Stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		w.logger.Debug("deleting the reader's consumer", "consumer", info.Name, "error", err)
	}
}

// read returns the next record, waiting until ctx ends.
func (w *shard) read(ctx context.Context) (*record, error) {
	if w.carry != nil {
		r := w.carry
		w.carry = nil
		return r, nil
	}
	if w.iter == nil {
		if err := w.openReader(ctx); err != nil {
			return nil, err
		}
	}
	for {
		m, err := w.iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, err
		}
		meta, err := m.Metadata()
		if err != nil {
			w.logger.Error("a record without JetStream metadata; skipping it", "subject", m.Subject(), "error", err)
			continue
		}
		w.next, w.position = meta.Sequence.Stream+1, ""
		return &record{seq: meta.Sequence.Stream, key: natsstream.PartitionKey(m), data: m.Data(),
			arrived: meta.Timestamp}, nil
	}
}

// gather waits for a first record, then gathers up to the batch size: what is there at once
// with no batch window, or what arrives within the window after the first record.
func (w *shard) gather(ctx context.Context) (*batch, error) {
	first, err := w.read(ctx)
	if err != nil {
		return nil, err
	}
	b := &batch{recs: []*record{first}}
	size := len(first.data) + len(first.key)
	wait := gatherWait
	deadline := time.Now().Add(w.mp.st.window)
	for len(b.recs) < w.mp.st.batchSize {
		if w.mp.st.window > 0 {
			if wait = time.Until(deadline); wait <= 0 {
				break
			}
		}
		rctx, cancel := context.WithTimeout(ctx, wait)
		r, err := w.read(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
				break // nothing more for now
			}
			// Deliver what was gathered; the error comes back on the next read.
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			w.logger.Debug("reading the stream failed while gathering a batch", "error", err)
			break
		}
		n := len(r.data) + len(r.key)
		if size+n > maxBatchBytes {
			w.carry = r
			break
		}
		size += n
		b.recs = append(b.recs, r)
	}
	return b, nil
}

// process takes the first batch of the queue one step on: delivers it and settles it by the
// outcome (done, shrunk, split, given up on, or left for a retry after a backoff).
func (w *shard) process(ctx context.Context) {
	b := w.queue[0]
	if !w.expire(ctx, b) {
		return
	}
	live := b.live()
	if len(live) == 0 {
		w.finish(ctx)
		return
	}
	ev, ids, err := w.event(live)
	if err != nil { // cannot happen: strings and bytes
		w.logger.Error("encoding the Kinesis event", "error", err)
		w.wait(ctx)
		return
	}
	dctx, cancel := withGrace(ctx, stopGrace)
	res, err := w.mp.host.Deliver(dctx, sdk.Batch{MappingUUID: w.mp.m.UUID, Event: ev, ItemIDs: ids})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		w.problem("delivering a batch: %v", err)
		w.wait(ctx)
		return
	}
	logger := w.logger.With("first", live[0].seq, "last", live[len(live)-1].seq, "size", len(live))
	logger.Debug("batch delivered", "outcome", res.Outcome, "failed", len(res.FailedItemIDs))
	switch res.Outcome {
	case sdk.Success:
		w.succeeded(ctx)
	case sdk.Partial:
		b.invokes++
		b.resp = &trigger.ResponseContext{StatusCode: 200, ExecutedVersion: trigger.ExecutedVersion(w.mp.m)}
		if len(res.FailedItemIDs) == 0 {
			w.succeeded(ctx)
			return
		}
		lowest, ok := lowestFailed(live, res.FailedItemIDs)
		if !ok {
			// As Lambda: an itemIdentifier that is empty or not in the batch fails it all.
			logger.Warn("batchItemFailures names no record of the batch; the whole batch failed", "items", res.FailedItemIDs)
			w.failed(ctx, b, logger)
			return
		}
		// The records before the lowest failed one are done: checkpoint just before it and
		// retry from it.
		i := 0
		for b.recs[i].seq < lowest {
			i++
		}
		if i > 0 {
			if !w.save(ctx, lowest-1) {
				return
			}
			b.recs = b.recs[i:]
		}
		logger.Debug("partial batch failure; retrying from the lowest failed record", "sequence", lowest)
		w.failed(ctx, b, logger)
	case sdk.FunctionError:
		b.invokes++
		b.resp = &trigger.ResponseContext{StatusCode: 200, ExecutedVersion: trigger.ExecutedVersion(w.mp.m), FunctionError: "Unhandled"}
		logger.Debug("the function failed", "error_type", res.ErrorType, "error", res.ErrorMessage)
		if w.mp.m.BisectBatchOnFunctionError && len(live) > 1 {
			w.bisect(b, live)
			logger.Debug("batch split in two", "first_half", len(w.queue[0].live()), "second_half", len(w.queue[1].live()))
			return
		}
		w.failed(ctx, b, logger)
	default: // sdk.RetryLater, or an outcome this plugin does not know
		if res.Outcome != sdk.RetryLater {
			logger.Error("unknown outcome; the batch will be delivered again", "outcome", res.Outcome)
		}
		if b.resp == nil {
			b.resp = &trigger.ResponseContext{StatusCode: 429, ExecutedVersion: trigger.ExecutedVersion(w.mp.m)}
		}
		w.wait(ctx)
	}
}

// expire sends the records of b older than MaximumRecordAge to the on-failure destination and
// marks them done. It returns false if that failed (the batch is tried again after a backoff).
func (w *shard) expire(ctx context.Context, b *batch) bool {
	if w.mp.m.MaximumRecordAge <= 0 {
		return true
	}
	now := time.Now()
	var old []*record
	for _, r := range b.live() {
		if now.Sub(r.arrived) > w.mp.m.MaximumRecordAge {
			old = append(old, r)
		}
	}
	if len(old) == 0 {
		return true
	}
	if err := w.sendFailure(ctx, b, old, trigger.ConditionRecordAge); err != nil {
		if ctx.Err() == nil {
			w.problem("sending an on-failure record: %v", err)
			w.wait(ctx)
		}
		return false
	}
	for _, r := range old {
		r.done = true
	}
	return true
}

// succeeded settles the first batch as done.
func (w *shard) succeeded(ctx context.Context) {
	w.backoff = minBackoff
	w.finish(ctx)
}

// failed counts a failed attempt of b (the first batch): it is retried after a backoff, or
// given up on once its attempts are exhausted.
func (w *shard) failed(ctx context.Context, b *batch, logger hclog.Logger) {
	b.attempts++
	if max := w.mp.m.MaximumRetryAttempts; max >= 0 && b.attempts > max {
		logger.Info("retry attempts exhausted; giving up on the batch", "attempts", b.attempts)
		w.giveUp(ctx, b, trigger.ConditionRetries)
		return
	}
	w.wait(ctx)
}

// bisect replaces the first batch with its two halves (split at the middle of its live
// records). The halves keep the attempts the batch had used before this failure: splitting
// uses no attempt.
func (w *shard) bisect(b *batch, live []*record) {
	mid := live[len(live)/2].seq
	i := 0
	for b.recs[i].seq < mid {
		i++
	}
	first := &batch{recs: b.recs[:i:i], attempts: b.attempts, invokes: b.invokes, resp: b.resp}
	second := &batch{recs: b.recs[i:], attempts: b.attempts, invokes: b.invokes, resp: b.resp}
	w.queue = append([]*batch{first, second}, w.queue[1:]...)
}

// giveUp sends the live records of b (the first batch) to the on-failure destination, retrying
// until it is sent or ctx ends, then moves the shard past it.
func (w *shard) giveUp(ctx context.Context, b *batch, cond string) {
	live := b.live()
	for len(live) > 0 {
		err := w.sendFailure(ctx, b, live, cond)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		w.problem("sending an on-failure record: %v", err)
		if !w.wait(ctx) {
			return
		}
	}
	for _, r := range live {
		r.done = true
	}
	w.backoff = minBackoff
	w.finish(ctx)
}

// finish checkpoints the first batch's last record and drops the batch.
func (w *shard) finish(ctx context.Context) {
	if !w.save(ctx, w.queue[0].last()) {
		return
	}
	w.queue = w.queue[1:]
	w.setOK()
}

// save saves seq as the shard's checkpoint (if it is past the saved one), retrying until it is
// saved or ctx ends (false).
func (w *shard) save(ctx context.Context, seq uint64) bool {
	if seq <= w.checkpoint {
		return true
	}
	for attempt := 0; ; attempt++ {
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if attempt == 0 {
			// The outcome is known: save it even if the mapping is stopping meanwhile, or its
			// records would be delivered again by whoever runs the mapping next.
			sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
		}
		err := natsstream.SaveCheckpoint(sctx, w.kv, w.mp.m.UUID, w.idx, seq)
		cancel()
		if err == nil {
			w.checkpoint = seq
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.problem("saving the checkpoint: %v", err)
		if !w.wait(ctx) {
			return false
		}
	}
}

// wait sleeps the backoff and doubles it; false if ctx ended.
func (w *shard) wait(ctx context.Context) bool {
	d := w.backoff
	w.backoff = min(2*w.backoff, maxBackoff)
	return trigger.Sleep(ctx, d)
}

func (w *shard) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.logger.Warn(msg)
	w.mp.setProblem(w.idx, msg)
}

func (w *shard) setOK() { w.mp.setProblem(w.idx, "") }

// lowestFailed is the lowest sequence among ids, false if one of them is no record of live.
func lowestFailed(live []*record, ids []string) (uint64, bool) {
	in := make(map[uint64]bool, len(live))
	for _, r := range live {
		in[r.seq] = true
	}
	var lowest uint64
	for _, id := range ids {
		seq, err := strconv.ParseUint(id, 10, 64)
		if err != nil || !in[seq] {
			return 0, false
		}
		if lowest == 0 || seq < lowest {
			lowest = seq
		}
	}
	return lowest, true
}

// withGrace returns a context that ends grace after ctx ends (or when cancelled).
func withGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var timer *time.Timer
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(grace, cancel)
	})
	return gctx, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}
