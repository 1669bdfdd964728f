package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lambdagw/gateway/internal/asyncq"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/plugins/sdk"
)

// EventQueue keeps Event invocations durably until they have run (internal/asyncq, on NATS
// JetStream): 202 is answered once Put returned.
type EventQueue interface {
	Put(ctx context.Context, ev *asyncq.Event) error
	// Serve runs the events through handle, on this node, until ctx ends.
	Serve(ctx context.Context, handle asyncq.Handler)
	Status(ctx context.Context, fn string) (asyncq.Status, error)
}

// EventConfigs gives the event invoke configuration of a function's qualifier, when it has one.
type EventConfigs interface {
	EventInvokeConfig(function, qualifier string) (*structs.EventInvokeConfig, bool)
}

// AsyncCounters count what became of a function's events on the nodes that ran them, since each
// started.
type AsyncCounters struct {
	// Succeeded: the function answered without an error.
	Succeeded uint64 `json:"Succeeded"`
	// Retried: the function failed and the event was stored for another try.
	Retried uint64 `json:"Retried"`
	// RetriesExhausted and Expired: the event failed for good, or waited past its maximum age.
	RetriesExhausted uint64 `json:"RetriesExhausted"`
	Expired          uint64 `json:"Expired"`
	// Delivered: destination records (and dead-lettered payloads) their destination took.
	Delivered uint64 `json:"Delivered"`
	// DeadLettered: the dead-lettered payloads among Delivered.
	DeadLettered uint64 `json:"DeadLettered"`
	// Dropped: events of a deleted function or version, failures without a destination, and
	// records undeliverable for 6 hours.
	Dropped uint64 `json:"Dropped"`
}

// Add adds o's counts to c's.
func (c *AsyncCounters) Add(o AsyncCounters) {
	c.Succeeded += o.Succeeded
	c.Retried += o.Retried
	c.RetriesExhausted += o.RetriesExhausted
	c.Expired += o.Expired
	c.Delivered += o.Delivered
	c.DeadLettered += o.DeadLettered
	c.Dropped += o.Dropped
}

// asyncCounters are one function's counters on this node.
type asyncCounters struct {
	succeeded, retried, exhausted, expired, delivered, deadLettered, dropped atomic.Uint64
}

func (g *Gateway) counters(fn string) *asyncCounters {
	if c, ok := g.asyncStats.Load(fn); ok {
		return c.(*asyncCounters)
	}
	c, _ := g.asyncStats.LoadOrStore(fn, &asyncCounters{})
	return c.(*asyncCounters)
}

// AsyncCounters are this node's counts of fn's events.
//
// Reading makes no entry: a peer's RPC may name any function.
func (g *Gateway) AsyncCounters(fn string) AsyncCounters {
	v, ok := g.asyncStats.Load(fn)
	if !ok {
		return AsyncCounters{}
	}
	c := v.(*asyncCounters)
	return AsyncCounters{Succeeded: c.succeeded.Load(), Retried: c.retried.Load(), RetriesExhausted: c.exhausted.Load(),
		Expired: c.expired.Load(), Delivered: c.delivered.Load(), DeadLettered: c.deadLettered.Load(), Dropped: c.dropped.Load()}
}

// DefaultRetryDelay is the wait before an event's first retry (Lambda's about one minute); the
// second waits twice as long.
const DefaultRetryDelay = time.Minute

// maxThrottleDelay caps the backoff of an event that could not start (a throttle, no room).
const maxThrottleDelay = 5 * time.Minute

// putTimeout bounds storing an event before its caller is told to try again.
const putTimeout = 10 * time.Second

// enqueueDurable stores an Event invocation and answers 202 once it is stored.
func (g *Gateway) enqueueDurable(ctx context.Context, fn *structs.Function, qualifier string, req *invoke.Request) (*InvokeOutput, error) {
	if len(req.Payload) > structs.MaxEventPayloadBytes {
		return nil, lambda.RequestTooLarge("asynchronous payloads are limited to 1 MB")
	}
	ev := &asyncq.Event{RequestID: req.RequestID, Function: fn.Name, Version: req.Version, Qualifier: qualifier,
		ClientContext: req.ClientContext, TraceID: req.TraceID, Payload: req.Payload, AcceptedAt: time.Now()}
	pctx, cancel := context.WithTimeout(ctx, putTimeout)
	defer cancel()
	if err := g.cfg.Events.Put(pctx, ev); err != nil {
		g.logger.Error("an Event invocation could not be stored", "function", fn.Name, "request_id", req.RequestID, "error", err)
		// Nothing was accepted: the caller (the SDKs do) tries again.
		return nil, &lambda.Error{Status: 503, Type: "ServiceException", Message: "the event could not be stored durably; try again"}
	}
	return &InvokeOutput{Status: 202}, nil
}

// eventConfig is the configuration that applies to an event invoked at qualifier.
func (g *Gateway) eventConfig(function, qualifier string) *structs.EventInvokeConfig {
	ec, ok := g.cfg.Store.(EventConfigs)
	if !ok {
		return nil
	}
	if qualifier == "" {
		qualifier = structs.LatestVersion
	}
	c, _ := ec.EventInvokeConfig(function, qualifier)
	return c
}

// runEvent runs one event of the durable queue and says what becomes of it: done, retried as a
// new event after Lambda's backoff, sent to a destination (as a record that is itself retried
// until delivered), or left for later when the function has no room (never dropped for it).
func (g *Gateway) runEvent(ctx context.Context, ev *asyncq.Event) asyncq.Outcome {
	if ev.Deliver {
		return g.deliverRecord(ctx, ev)
	}
	counts := g.counters(ev.Function)
	latest, ok := g.cfg.Store.Function(ev.Function)
	if !ok {
		g.logger.Warn("dropping an event of a function that no longer exists", "function", ev.Function, "request_id", ev.RequestID)
		counts.dropped.Add(1)
		return asyncq.Outcome{}
	}
	fn, err := g.atVersion(latest, ev.Version)
	if err != nil {
		g.logger.Warn("dropping an event of a version that no longer exists", "function", ev.Function, "version", ev.Version, "request_id", ev.RequestID)
		counts.dropped.Add(1)
		return asyncq.Outcome{}
	}
	cfg := g.eventConfig(ev.Function, ev.Qualifier)
	if time.Since(ev.AcceptedAt) > cfg.EventAge() {
		g.logger.Info("an event expired before it could run", "function", ev.Function, "request_id", ev.RequestID, "age", time.Since(ev.AcceptedAt).Round(time.Second))
		counts.expired.Add(1)
		return g.eventFailed(ev, fn, cfg, "EventAgeExceeded", nil)
	}
	release, err := g.admit(ctx, fn.Name)
	if err != nil {
		return asyncq.Outcome{Delay: g.waitForRoom(ev, cfg)}
	}
	trace := ev.TraceID
	if !invoke.ValidXRay(trace) {
		trace = invoke.NewTraceID() // stored by a gateway, but the queue may be an external NATS others publish to
	}
	req := &invoke.Request{RequestID: ev.RequestID, Payload: ev.Payload, Version: fn.Qualifier(), ClientContext: ev.ClientContext,
		TraceID: trace, InvokedFunctionARN: lambda.FunctionARN(g.cfg.Region, fn.Name, ev.Qualifier)}
	resp, err := g.cfg.Invoker.Invoke(ctx, fn, req)
	release()
	switch {
	case errors.Is(err, invoke.ErrNoCapacity), errors.Is(err, invoke.ErrShuttingDown), ctx.Err() != nil:
		// Not run: no attempt is counted.
		return asyncq.Outcome{Delay: g.waitForRoom(ev, cfg)}
	case err == nil && !resp.FunctionError:
		counts.succeeded.Add(1)
		if cfg != nil && cfg.OnSuccess != "" {
			return asyncq.Outcome{Next: g.record(ev, fn, cfg.OnSuccess, "Success", ev.Attempt+1, resp)}
		}
		return asyncq.Outcome{}
	}
	if err != nil {
		g.logger.Error("an asynchronous invocation failed in the gateway", "function", fn.Name, "request_id", ev.RequestID, "error", err)
		resp = &invoke.Response{Payload: invoke.ErrorJSON("ServiceException", "the invocation failed in the gateway"), FunctionError: true,
			ErrorType: "ServiceException", ExecutedVersion: fn.Qualifier()}
	}
	attempt := ev.Attempt + 1
	if attempt <= cfg.Retries() {
		next := *ev
		next.Attempt = attempt
		next.NotBefore = time.Now().Add(time.Duration(attempt) * g.retryDelay())
		g.logger.Debug("an asynchronous invocation failed; retrying it", "function", fn.Name, "request_id", ev.RequestID,
			"attempt", attempt, "at", next.NotBefore)
		counts.retried.Add(1)
		return asyncq.Outcome{Next: &next}
	}
	counts.exhausted.Add(1)
	return g.eventFailed(ev, fn, cfg, "RetriesExhausted", resp)
}

func (g *Gateway) retryDelay() time.Duration {
	if g.cfg.RetryDelay > 0 {
		return g.cfg.RetryDelay
	}
	return DefaultRetryDelay
}

// waitForRoom is how long an event that could not start waits before it is tried again: its
// backoff, but never past the end of its age, when it is due for its on-failure destination.
func (g *Gateway) waitForRoom(ev *asyncq.Event, cfg *structs.EventInvokeConfig) time.Duration {
	d := throttleDelay(ev.Delivered)
	if left := cfg.EventAge() - time.Since(ev.AcceptedAt); left < d {
		d = max(left, 0) + 100*time.Millisecond
	}
	return d
}

// throttleDelay backs off an event that could not start: 1 s, doubling with each delivery up to
// 5 min, with jitter so that waiting events do not come back together.
func throttleDelay(delivered int) time.Duration {
	d := time.Second << min(max(delivered-1, 0), 9)
	d = min(d, maxThrottleDelay)
	return d/2 + rand.N(d/2+1)
}

// eventFailed sends a failed event to the on-failure destination, or else to the function's
// dead-letter queue (its payload only, as Lambda's), or else drops it with a log line.
func (g *Gateway) eventFailed(ev *asyncq.Event, fn *structs.Function, cfg *structs.EventInvokeConfig, condition string, resp *invoke.Response) asyncq.Outcome {
	switch {
	case cfg != nil && cfg.OnFailure != "":
		return asyncq.Outcome{Next: g.record(ev, fn, cfg.OnFailure, condition, ev.Attempt+boolInt(resp != nil), resp)}
	case fn.DeadLetterTarget != "":
		return asyncq.Outcome{Next: &asyncq.Event{RequestID: ev.RequestID, Function: ev.Function, Version: ev.Version, Qualifier: ev.Qualifier,
			Payload: ev.Payload, AcceptedAt: time.Now(), Attempt: ev.Attempt, Deliver: true, Destination: fn.DeadLetterTarget, DeadLetter: true}}
	}
	g.logger.Warn("an asynchronous invocation failed and has no destination", "function", fn.Name, "request_id", ev.RequestID, "condition", condition)
	g.counters(fn.Name).dropped.Add(1)
	return asyncq.Outcome{}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// record is the destination record of an event, in Lambda's shape, on its way to dest.
func (g *Gateway) record(ev *asyncq.Event, fn *structs.Function, dest, condition string, invokes int, resp *invoke.Response) *asyncq.Event {
	type responseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError,omitempty"`
	}
	rec := struct {
		Version        string `json:"version"`
		Timestamp      string `json:"timestamp"`
		RequestContext struct {
			RequestID              string `json:"requestId"`
			FunctionArn            string `json:"functionArn"`
			Condition              string `json:"condition"`
			ApproximateInvokeCount int    `json:"approximateInvokeCount"`
		} `json:"requestContext"`
		RequestPayload  json.RawMessage  `json:"requestPayload"`
		ResponseContext *responseContext `json:"responseContext,omitempty"`
		ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
	}{Version: "1.0", Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
	rec.RequestContext.RequestID = ev.RequestID
	rec.RequestContext.FunctionArn = lambda.FunctionARN(g.cfg.Region, fn.Name, cmp.Or(ev.Qualifier, structs.LatestVersion))
	rec.RequestContext.Condition = condition
	rec.RequestContext.ApproximateInvokeCount = invokes
	rec.RequestPayload = asJSON(ev.Payload)
	if resp != nil {
		rc := &responseContext{StatusCode: 200, ExecutedVersion: cmp.Or(resp.ExecutedVersion, fn.Qualifier())}
		if resp.FunctionError {
			rc.FunctionError = "Unhandled"
		}
		rec.ResponseContext = rc
		rec.ResponsePayload = asJSON(resp.Payload)
	}
	body, _ := json.Marshal(rec)
	return &asyncq.Event{RequestID: ev.RequestID, Function: ev.Function, Version: ev.Version, Qualifier: ev.Qualifier,
		Payload: body, AcceptedAt: time.Now(), Attempt: invokes, Deliver: true, Destination: dest}
}

// asJSON is b as a JSON value: itself when it is one, else a JSON string of it.
func asJSON(b []byte) json.RawMessage {
	if len(b) > 0 && json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// deliverRecord sends a destination record (or a dead-lettered payload); one that cannot be
// delivered now is tried again with backoff for up to 6 hours, then dropped with an error.
func (g *Gateway) deliverRecord(ctx context.Context, ev *asyncq.Event) asyncq.Outcome {
	err := g.sendTo(ctx, ev.Destination, ev.RequestID, ev.Payload)
	if err == nil {
		c := g.counters(ev.Function)
		c.delivered.Add(1)
		if ev.DeadLetter {
			c.deadLettered.Add(1)
		}
		return asyncq.Outcome{}
	}
	if time.Since(ev.AcceptedAt) > structs.MaxEventAge {
		g.logger.Error("dropping a destination record that could not be delivered for 6 hours", "function", ev.Function,
			"request_id", ev.RequestID, "destination", ev.Destination, "error", err)
		g.counters(ev.Function).dropped.Add(1)
		return asyncq.Outcome{}
	}
	g.logger.Warn("a destination record could not be delivered; retrying", "function", ev.Function, "request_id", ev.RequestID,
		"destination", ev.Destination, "error", err)
	return asyncq.Outcome{Delay: throttleDelay(ev.Delivered)}
}

// sendTo delivers body to a destination (structs.ValidDestination): a function (invoked
// asynchronously, so durably queued in turn), a queue or a stream of the agent's NATS, or a
// plugin's target. key is the request id the record is about.
func (g *Gateway) sendTo(ctx context.Context, dest, key string, body []byte) error {
	kind, name, _ := strings.Cut(dest, ":")
	switch kind {
	case structs.DestinationFunction:
		_, err := g.Invoke(ctx, &InvokeInput{FunctionName: name, Payload: body, InvocationType: Event})
		return err
	case structs.DestinationQueue:
		if g.cfg.Queues == nil {
			return fmt.Errorf("queue %s: this agent has no queues (a plugin block runs NATS JetStream for them)", name)
		}
		return g.cfg.Queues.PublishQueue(ctx, name, body)
	case structs.DestinationStream:
		sp, ok := g.cfg.Queues.(StreamPublisher)
		if !ok {
			return fmt.Errorf("stream %s: this agent has no streams (a plugin block runs NATS JetStream for them)", name)
		}
		_, _, err := sp.PublishStream(ctx, name, key, body)
		return err
	}
	if g.cfg.Plugins == nil {
		return fmt.Errorf("%s: this agent runs no plugins", dest)
	}
	return g.cfg.Plugins.SendRecord(ctx, kind, sdk.Record{Target: name, Key: key, Data: body})
}

// checkDestination refuses a destination naming a plugin this node does not run: a mistyped
// kind ("fuction:x") reads as a plugin's name. field names the setting, for the error.
func (g *Gateway) checkDestination(field, dest string) error {
	kind, _, _ := strings.Cut(dest, ":")
	switch kind {
	case "", structs.DestinationFunction, structs.DestinationQueue, structs.DestinationStream:
		return nil
	}
	if g.cfg.Plugins != nil && !g.cfg.Plugins.HasTrigger(kind) {
		return lambda.InvalidParameter("%s %q: no plugin %q is configured on this node (a plugin block of the agent); a destination is %s",
			field, dest, kind, structs.DestinationForms)
	}
	return nil
}

// AsyncStatus is a function's asynchronous invocations: what the durable queue holds, and what
// became of those run.
type AsyncStatus struct {
	Function string `json:"Function"`
	// Waiting: stored, not running (retries waiting for their backoff included).
	Waiting uint64 `json:"Waiting"`
	// InFlight: running on some node, not yet settled.
	InFlight int `json:"InFlight"`
	// OldestAge is how long the oldest event has waited since it was accepted, in seconds.
	OldestAgeSeconds float64 `json:"OldestAgeSeconds"`
	// Counters add up every node's that answered (each counts since it started); Unanswered
	// lists the nodes that did not.
	Counters   AsyncCounters `json:"Counters"`
	Unanswered []string      `json:"Unanswered,omitempty"`
}

// ClusterCounters gathers fn's event counters from every other node of the cluster (the agent's
// node RPC): their sum, and the nodes that did not answer.
type ClusterCounters func(ctx context.Context, fn string) (AsyncCounters, []string)

// AsyncStatus reads a function's events from the durable queue.
func (g *Gateway) AsyncStatus(ctx context.Context, function string) (*AsyncStatus, error) {
	if _, ok := g.cfg.Store.Function(function); !ok {
		return nil, lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, function, ""))
	}
	if g.cfg.Events == nil {
		return nil, lambda.InvalidParameter("this agent keeps Event invocations in memory: it has no durable queue")
	}
	st, err := g.cfg.Events.Status(ctx, function)
	if err != nil {
		return nil, fmt.Errorf("reading the asynchronous invocations of %s: %w", function, err)
	}
	out := &AsyncStatus{Function: function, Waiting: st.Waiting, InFlight: st.InFlight, Counters: g.AsyncCounters(function)}
	if g.cfg.PeerCounters != nil {
		peers, missing := g.cfg.PeerCounters(ctx, function)
		out.Counters.Add(peers)
		out.Unanswered = missing
	}
	if !st.Oldest.IsZero() {
		out.OldestAgeSeconds = time.Since(st.Oldest).Seconds()
	}
	return out, nil
}
