// Package asyncq keeps asynchronous invocations (InvocationType Event) durably on NATS
// JetStream: the agent's embedded server, or the external cluster of its nats block, whose
// replication then makes them survive a node. An event is acknowledged to its caller only once
// JetStream stored it. Each function has a subject and a durable pull consumer of its own, so
// one function's backlog never holds another's; every node of a cluster pulls from the same
// consumers (work-queue semantics), and an event whose node dies before settling it is
// delivered again once its ack wait passes (at least once).
//
// The queue decides nothing about an event: the gateway's handler runs it and says what
// becomes of it (done, retried later as a new event, or delivered again after a delay).
package asyncq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/structs"
)

const (
	// StreamName is the JetStream stream of every function's events.
	StreamName = "LAMBDAGW_ASYNC"
	// subjectPrefix + function name is a function's subject.
	subjectPrefix = "lambdagw.async."
	// duplicateWindow: an event published twice under one id within it is stored once.
	duplicateWindow = 2 * time.Minute
)

// Headers of an event's message; its data is the payload.
const (
	hdrRequestID     = "Lambda-Request-Id"
	hdrFunction      = "Lambda-Function"
	hdrVersion       = "Lambda-Version"
	hdrQualifier     = "Lambda-Qualifier"
	hdrClientContext = "Lambda-Client-Context"
	hdrTraceID       = "Lambda-Trace-Id"
	hdrAcceptedAt    = "Lambda-Accepted-At" // Unix ms, when the first attempt was accepted
	hdrAttempt       = "Lambda-Attempt"     // the invocations made so far
	hdrNotBefore     = "Lambda-Not-Before"  // Unix ms: not run before
	hdrStage         = "Lambda-Stage"       // "" (invoke) or "deliver" (a destination record)
	hdrDestination   = "Lambda-Destination" // for a destination record: where it goes
	hdrDeadLetter    = "Lambda-Dead-Letter" // "true" on a dead-lettered payload (a node that does not know it delivers it alike)
)

// Event is one asynchronous invocation, or a destination record on its way.
type Event struct {
	RequestID string
	Function  string
	// Version is the version the event runs (resolved from an alias at acceptance); Qualifier
	// is what the caller invoked (for the event invoke configuration and the ARN it reports).
	Version, Qualifier string
	ClientContext      string
	TraceID            string
	Payload            []byte
	AcceptedAt         time.Time
	// Attempt counts the invocations already made (0 for a new event).
	Attempt int
	// NotBefore delays the event: a retry's backoff.
	NotBefore time.Time
	// Deliver marks a destination record (Payload) for Destination rather than an invocation.
	Deliver     bool
	Destination string
	// DeadLetter marks a delivery that is a failed event's payload for the function's
	// dead-letter queue, not a destination record (for the metrics, which count them apart).
	DeadLetter bool
	// Delivered counts how often JetStream handed this message out (1 the first time): the
	// backoff of an event that keeps finding no room grows with it. Not stored.
	Delivered int
}

// Outcome is what the handler made of an event.
type Outcome struct {
	// Next replaces the event with another (a retry, a destination record), stored before
	// the event is removed. Nil: the event is done.
	Next *Event
	// Delay leaves the event in place, delivered again after Delay (a throttle): nothing about
	// it changes. It wins over Next.
	Delay time.Duration
}

// Handler runs one event. It is called on many goroutines at once, for one function or many.
type Handler func(ctx context.Context, ev *Event) Outcome

// Config configures a Queue.
type Config struct {
	JS jetstream.JetStream
	// Replicas of the stream (1 on one node; 3 on a NATS cluster: the nodes' embedded servers
	// routed together, or an external one).
	Replicas int
	// PerFunction bounds one function's events running at once on this node.
	PerFunction int
	// AckWait is how long an event can be held without a sign of life before JetStream delivers
	// it again (a node gone); running events are kept alive well within it.
	AckWait time.Duration
	// ScanInterval is how often the node looks for functions with events it does not pull yet
	// (accepted on another node, or before a restart).
	ScanInterval time.Duration
	Logger       hclog.Logger
}

// Queue is the node's side of the durable event queue.
type Queue struct {
	cfg    Config
	stream jetstream.Stream
	logger hclog.Logger

	mu      sync.Mutex
	pullers map[string]*puller
	handler Handler
	ctx     context.Context
	wg      sync.WaitGroup
}

// Open creates (or updates) the stream and returns the queue; Serve starts running events.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.PerFunction <= 0 {
		cfg.PerFunction = 10
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	logger := cfg.Logger.Named("async")
	s, err := createStream(ctx, cfg.JS, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "asynchronous invocations (InvocationType Event) waiting to run, per function",
		Subjects:    []string{subjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  duplicateWindow,
		Discard:     jetstream.DiscardNew,
	}, logger)
	if err != nil {
		return nil, err
	}
	return &Queue{cfg: cfg, stream: s, logger: logger, pullers: map[string]*puller{}}, nil
}

// How createStream waits for a NATS cluster. An attempt is short: a server without a meta
// leader, and the meta leader of a stream that nodes starting together all create, may leave
// the request unanswered, and creating a stream takes milliseconds once it can be made.
const (
	createAttempt  = time.Second
	createInterval = 250 * time.Millisecond
	waitLogEvery   = 15 * time.Second
)

// createStream creates (or updates) the stream. A NATS cluster cannot while its JetStream has
// no meta leader, nor place more replicas than it has servers; the nodes of a cluster start one
// after another, so that is waited out (bounded by ctx, and said in the log) rather than failing
// the node's start.
func createStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, logger hclog.Logger) (jetstream.Stream, error) {
	start := time.Now()
	var logged time.Time
	for {
		actx, cancel := context.WithTimeout(ctx, createAttempt)
		s, err := js.CreateOrUpdateStream(actx, sc)
		cancel()
		if err == nil {
			if !logged.IsZero() {
				logger.Info("the NATS cluster has the stream of asynchronous invocations", "stream", sc.Name, "replicas", sc.Replicas,
					"waited", time.Since(start).Round(time.Millisecond))
			}
			return s, nil
		}
		if !clusterNotReady(err) {
			return nil, fmt.Errorf("creating the JetStream stream %s for asynchronous invocations (%d replicas): %w", sc.Name, sc.Replicas, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for the NATS cluster to create the JetStream stream %s (%d replicas; last answer: %v): %w",
				sc.Name, sc.Replicas, err, ctx.Err())
		}
		switch {
		case logged.IsZero():
			logger.Info("waiting for the NATS cluster to create the stream of asynchronous invocations: its JetStream has no "+
				"leader yet, or fewer servers than replicas (the other nodes may still be starting)",
				"stream", sc.Name, "replicas", sc.Replicas, "error", err)
			logged = time.Now()
		case time.Since(logged) >= waitLogEvery:
			logger.Warn("still waiting for the NATS cluster to create the stream of asynchronous invocations: are the other nodes "+
				"running, and their nats { routes } reachable?", "stream", sc.Name, "replicas", sc.Replicas,
				"waited", time.Since(start).Round(time.Second), "error", err)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the NATS cluster to create the JetStream stream %s (%d replicas; last answer: %v): %w",
				sc.Name, sc.Replicas, err, ctx.Err())
		case <-time.After(createInterval):
		}
	}
}

// clusterNotReady tells the errors of a NATS cluster still forming (no JetStream meta leader,
// too few servers for the replicas) from those that waiting does not mend.
func clusterNotReady(err error) bool {
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503: "JetStream system temporarily unavailable", "insufficient resources"; 10005: no
		// suitable peers for the replicas.
		return apiErr.Code == 503 || apiErr.ErrorCode == errCodeNoPeers
	}
	// Without a meta leader the request may go unanswered.
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}

// errCodeNoPeers is nats-server's JSClusterNoPeersErrF.
const errCodeNoPeers jetstream.ErrorCode = 10005

// Subject is the subject of function fn's events.
func Subject(fn string) string { return subjectPrefix + fn }

// Put stores ev durably: it returns once JetStream has it (replicated, on a cluster). The
// request id makes a second Put of the same event within two minutes a no-op.
func (q *Queue) Put(ctx context.Context, ev *Event) error {
	msg := &nats.Msg{Subject: Subject(ev.Function), Header: nats.Header{}, Data: ev.Payload}
	h := msg.Header
	h.Set(hdrRequestID, ev.RequestID)
	h.Set(hdrFunction, ev.Function)
	h.Set(hdrVersion, ev.Version)
	if ev.Qualifier != "" {
		h.Set(hdrQualifier, ev.Qualifier)
	}
	if ev.ClientContext != "" {
		h.Set(hdrClientContext, ev.ClientContext)
	}
	if ev.TraceID != "" {
		h.Set(hdrTraceID, ev.TraceID)
	}
	h.Set(hdrAcceptedAt, strconv.FormatInt(ev.AcceptedAt.UnixMilli(), 10))
	h.Set(hdrAttempt, strconv.Itoa(ev.Attempt))
	if !ev.NotBefore.IsZero() {
		// Rounded up: never run before it.
		h.Set(hdrNotBefore, strconv.FormatInt((ev.NotBefore.UnixNano()+int64(time.Millisecond)-1)/int64(time.Millisecond), 10))
	}
	// The stream's duplicate window is by message id: the function is part of it, request ids
	// are the callers'.
	id := ev.Function + "/" + ev.RequestID + "/" + strconv.Itoa(ev.Attempt)
	if ev.Deliver {
		h.Set(hdrStage, "deliver")
		h.Set(hdrDestination, ev.Destination)
		if ev.DeadLetter {
			h.Set(hdrDeadLetter, "true")
		}
		id += "/deliver"
	}
	h.Set(nats.MsgIdHdr, id)
	if _, err := q.cfg.JS.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("storing the event %s of function %s: %w", ev.RequestID, ev.Function, err)
	}
	q.mu.Lock()
	serving := q.handler != nil
	q.mu.Unlock()
	if serving {
		q.pull(ev.Function)
	}
	return nil
}

// decode reads an event from its message.
func decode(m jetstream.Msg) (*Event, error) {
	ev, err := decodeParts(m.Headers(), m.Data())
	if err != nil {
		return nil, err
	}
	if md, err := m.Metadata(); err == nil {
		ev.Delivered = int(md.NumDelivered)
	}
	return ev, nil
}

// decodeParts reads an event from a message's headers and data. Anyone who may publish on
// the agent's NATS can put anything there: what is not an event is refused.
func decodeParts(h nats.Header, data []byte) (*Event, error) {
	ev := &Event{RequestID: h.Get(hdrRequestID), Function: h.Get(hdrFunction), Version: h.Get(hdrVersion),
		Qualifier: h.Get(hdrQualifier), ClientContext: h.Get(hdrClientContext), TraceID: h.Get(hdrTraceID),
		Payload: data, Deliver: h.Get(hdrStage) == "deliver", Destination: h.Get(hdrDestination)}
	ev.DeadLetter = ev.Deliver && h.Get(hdrDeadLetter) == "true"
	if ev.RequestID == "" || !structs.ValidName(ev.Function) {
		return nil, errors.New("not an event: no request id or function")
	}
	if ev.Deliver && !structs.ValidDestination(ev.Destination) {
		return nil, fmt.Errorf("event %s: %q is not a destination", ev.RequestID, ev.Destination)
	}
	ms, err := strconv.ParseInt(h.Get(hdrAcceptedAt), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("event %s: no acceptance time", ev.RequestID)
	}
	ev.AcceptedAt = time.UnixMilli(ms)
	ev.Attempt, _ = strconv.Atoi(h.Get(hdrAttempt))
	if ev.Attempt < 0 {
		ev.Attempt = 0
	}
	if v := h.Get(hdrNotBefore); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			ev.NotBefore = time.UnixMilli(ms)
		}
	}
	return ev, nil
}

// Serve runs events through handle until ctx ends, then waits for those running.
func (q *Queue) Serve(ctx context.Context, handle Handler) {
	q.mu.Lock()
	q.handler, q.ctx = handle, ctx
	q.mu.Unlock()
	t := time.NewTicker(q.cfg.ScanInterval)
	defer t.Stop()
	for {
		q.scan(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			q.wg.Wait()
			return
		}
	}
}

// scan starts pulling for every function with events waiting.
func (q *Queue) scan(ctx context.Context) {
	info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+">"))
	if err != nil {
		if ctx.Err() == nil {
			q.logger.Warn("reading the asynchronous invocations' stream", "error", err)
		}
		return
	}
	for subj, n := range info.State.Subjects {
		if fn, ok := strings.CutPrefix(subj, subjectPrefix); ok && n > 0 {
			q.pull(fn)
		}
	}
}

// pull makes sure this node pulls fn's events.
func (q *Queue) pull(fn string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.handler == nil || q.ctx.Err() != nil {
		return
	}
	if _, ok := q.pullers[fn]; ok {
		return
	}
	p := &puller{q: q, fn: fn, slots: make(chan struct{}, q.cfg.PerFunction)}
	q.pullers[fn] = p
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		p.run(q.ctx, q.handler)
		q.mu.Lock()
		delete(q.pullers, fn)
		q.mu.Unlock()
	}()
}

// ConsumerName is the durable consumer of function fn's events.
func ConsumerName(fn string) string { return "async-" + fn }

// puller pulls one function's events on this node.
type puller struct {
	q     *Queue
	fn    string
	slots chan struct{}
	wg    sync.WaitGroup
}

// idleExit: a puller that fetched nothing for this long stops (a scan restarts it).
const idleExit = 30 * time.Second

func (p *puller) run(ctx context.Context, handle Handler) {
	defer p.wg.Wait()
	q := p.q
	cons, err := q.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       ConsumerName(p.fn),
		Description:   "the asynchronous invocations of function " + p.fn,
		FilterSubject: Subject(p.fn),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
	})
	if err != nil {
		if ctx.Err() == nil {
			q.logger.Warn("opening the consumer of a function's events", "function", p.fn, "error", err)
		}
		return
	}
	// JetStream keeps up to PerFunction messages on their way to this node; the callback,
	// called for one message at a time, waits for a free slot, so a busy function takes no
	// more than it runs.
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	cc, err := cons.Consume(func(m jetstream.Msg) {
		last.Store(time.Now().UnixNano())
		// Delivered already: kept alive while it waits for a slot, as while it runs.
		keep := time.NewTicker(q.cfg.AckWait / 3)
	wait:
		for {
			select {
			case p.slots <- struct{}{}:
				break wait
			case <-keep.C:
				_ = m.InProgress()
			case <-ctx.Done():
				keep.Stop()
				_ = m.Nak() // stopping: back at once, for another node or the next start
				return
			}
		}
		keep.Stop()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.slots }()
			p.handle(ctx, m, handle)
			last.Store(time.Now().UnixNano())
		}()
	}, jetstream.PullMaxMessages(cap(p.slots)), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoHeartbeat) {
			q.logger.Debug("pulling a function's events", "function", p.fn, "error", err)
		}
	}))
	if err != nil {
		if ctx.Err() == nil {
			q.logger.Warn("pulling a function's events", "function", p.fn, "error", err)
		}
		return
	}
	defer cc.Stop()
	t := time.NewTicker(idleExit / 6)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if time.Since(time.Unix(0, last.Load())) > idleExit && len(p.slots) == 0 {
				return
			}
		}
	}
}

// handle runs one message and settles it as the handler says.
func (p *puller) handle(ctx context.Context, m jetstream.Msg, handle Handler) {
	q := p.q
	ev, err := decode(m)
	if err == nil && ev.Function != p.fn {
		err = fmt.Errorf("event %s names function %s on the subject of %s", ev.RequestID, ev.Function, p.fn)
	}
	if err != nil {
		q.logger.Error("dropping a message that is not an event", "function", p.fn, "error", err)
		_ = m.Term()
		return
	}
	if wait := time.Until(ev.NotBefore); wait > 0 {
		_ = m.NakWithDelay(wait)
		return
	}
	// Keep the message ours while it runs: a node that dies leaves it to another once AckWait
	// passes without this.
	alive := make(chan struct{})
	go func() {
		t := time.NewTicker(q.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = m.InProgress()
			case <-alive:
				return
			}
		}
	}()
	// The event runs to its end even when the node stops pulling (a drain): cut off, it would
	// run again elsewhere.
	out := handle(context.WithoutCancel(ctx), ev)
	close(alive)
	switch {
	case out.Delay > 0:
		_ = m.NakWithDelay(out.Delay)
	case out.Next != nil:
		// The next stage is stored before this one goes: a crash between leaves both, run
		// twice (at least once) rather than neither.
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := q.Put(pctx, out.Next)
		cancel()
		if err != nil {
			q.logger.Warn("storing an event's next stage; it runs again", "function", p.fn, "request_id", ev.RequestID, "error", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		_ = m.Ack()
	default:
		// Not waited for: an ack that is lost only makes the event run again (at least once).
		if err := m.Ack(); err != nil {
			q.logger.Debug("acknowledging an event", "function", p.fn, "request_id", ev.RequestID, "error", err)
		}
	}
}

// Status is a function's events as the queue holds them.
type Status struct {
	// Waiting: stored, not delivered to any node (retries waiting their backoff included).
	Waiting uint64
	// InFlight: delivered to a node, not yet settled.
	InFlight int
	// Oldest is when the oldest event stored was accepted (zero without any).
	Oldest time.Time
}

// Status reads fn's events from JetStream (the whole cluster's).
func (q *Queue) Status(ctx context.Context, fn string) (Status, error) {
	var st Status
	c, err := q.stream.Consumer(ctx, ConsumerName(fn))
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case err != nil:
		return st, fmt.Errorf("reading the consumer of %s: %w", fn, err)
	default:
		info, err := c.Info(ctx)
		if err != nil {
			return st, fmt.Errorf("reading the consumer of %s: %w", fn, err)
		}
		st.Waiting, st.InFlight = info.NumPending, info.NumAckPending
	}
	m, err := q.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(Subject(fn)))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return st, fmt.Errorf("reading the oldest event of %s: %w", fn, err)
	default:
		if ms, err := strconv.ParseInt(m.Header.Get(hdrAcceptedAt), 10, 64); err == nil {
			st.Oldest = time.UnixMilli(ms)
		}
		if st.Waiting == 0 && st.InFlight == 0 {
			// No consumer yet (no node pulled): everything stored waits.
			if info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(Subject(fn))); err == nil {
				st.Waiting = info.State.Subjects[Subject(fn)]
			}
		}
	}
	return st, nil
}
