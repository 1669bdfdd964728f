package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/asyncq"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/plugins/sdk"
)

// asyncStore is the part of the store the event handler reads.
type asyncStore struct {
	Store
	fns      map[string]*structs.Function
	reserved map[string]int
	cfgs     map[string]*structs.EventInvokeConfig
}

func (s *asyncStore) Function(name string) (*structs.Function, bool) {
	f, ok := s.fns[name]
	return f, ok
}
func (s *asyncStore) Version(string, string) (*structs.Function, bool) {
	return nil, false
}
func (s *asyncStore) ReservedConcurrency(fn string) (int, bool) {
	n, ok := s.reserved[fn]
	return n, ok
}
func (s *asyncStore) ReservedTotal() int { return 0 }
func (s *asyncStore) EventInvokeConfig(fn, q string) (*structs.EventInvokeConfig, bool) {
	c, ok := s.cfgs[fn+":"+q]
	return c, ok
}

// scriptedInvoker answers each invocation with resp (or err) and counts them.
type scriptedInvoker struct {
	mu     sync.Mutex
	calls  int
	resp   *invoke.Response
	err    error
	traces []string // each invocation's trace header
}

func (i *scriptedInvoker) Invoke(_ context.Context, fn *structs.Function, req *invoke.Request) (*invoke.Response, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.calls++
	i.traces = append(i.traces, req.TraceID)
	if i.err != nil {
		return nil, i.err
	}
	r := *i.resp
	r.ExecutedVersion = "$LATEST"
	return &r, nil
}

type noCode struct{ CodeStore }

func asyncGateway(t *testing.T, inv *scriptedInvoker, st *asyncStore) *Gateway {
	t.Helper()
	g, err := New(Config{Invoker: inv, Store: st, Code: noCode{}, RetryDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	return g
}

// record decodes a destination record.
type destRecord struct {
	Version        string
	Timestamp      string
	RequestContext struct {
		RequestID, FunctionArn, Condition string
		ApproximateInvokeCount            int
	}
	RequestPayload  json.RawMessage
	ResponseContext *struct {
		StatusCode      int
		ExecutedVersion string
		FunctionError   string
	}
	ResponsePayload json.RawMessage
}

func decodeRecord(t *testing.T, ev *asyncq.Event) destRecord {
	t.Helper()
	var r destRecord
	if err := json.Unmarshal(ev.Payload, &r); err != nil {
		t.Fatalf("a record that is not JSON: %s", ev.Payload)
	}
	return r
}

// What the handler makes of each outcome of an event: Lambda's retries, destinations with its
// record shape, the dead-letter target, the maximum age, and a function without room.
func TestRunEvent(t *testing.T) {
	two := 2
	st := &asyncStore{
		fns: map[string]*structs.Function{
			"plain": {Name: "plain"}, "dests": {Name: "dests"}, "dlq": {Name: "dlq", DeadLetterTarget: "queue:dead"}, "none": {Name: "none"},
		},
		reserved: map[string]int{"none": 0},
		cfgs: map[string]*structs.EventInvokeConfig{
			"dests:$LATEST": {Function: "dests", Qualifier: "$LATEST", MaximumRetryAttempts: &two, OnSuccess: "function:ok", OnFailure: "queue:failed"},
		},
	}
	ok := &invoke.Response{Payload: []byte(`{"answer":42}`)}
	failed := &invoke.Response{Payload: []byte(`{"errorType":"Boom","errorMessage":"no"}`), FunctionError: true, ErrorType: "Boom"}
	event := func(fn string, attempt int, accepted time.Time) *asyncq.Event {
		return &asyncq.Event{RequestID: "req-1", Function: fn, Version: "$LATEST", Payload: []byte(`{"in":1}`), AcceptedAt: accepted, Attempt: attempt}
	}
	now := time.Now()
	ctx := context.Background()

	g := asyncGateway(t, &scriptedInvoker{resp: ok}, st)
	if out := g.runEvent(ctx, event("plain", 0, now)); out.Next != nil || out.Delay != 0 {
		t.Errorf("a success without destination: %+v", out)
	}
	out := g.runEvent(ctx, event("dests", 0, now))
	if out.Next == nil || !out.Next.Deliver || out.Next.Destination != "function:ok" {
		t.Fatalf("a success with an on-success destination: %+v", out)
	}
	r := decodeRecord(t, out.Next)
	if r.Version != "1.0" || r.RequestContext.Condition != "Success" || r.RequestContext.ApproximateInvokeCount != 1 ||
		r.RequestContext.RequestID != "req-1" || !strings.HasSuffix(r.RequestContext.FunctionArn, ":function:dests:$LATEST") ||
		string(r.RequestPayload) != `{"in":1}` || r.ResponseContext == nil || r.ResponseContext.StatusCode != 200 ||
		r.ResponseContext.ExecutedVersion != "$LATEST" || r.ResponseContext.FunctionError != "" || string(r.ResponsePayload) != `{"answer":42}` {
		t.Errorf("the success record: %s", out.Next.Payload)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.Timestamp); err != nil {
		t.Errorf("the record's timestamp %q", r.Timestamp)
	}

	g = asyncGateway(t, &scriptedInvoker{resp: failed}, st)
	out = g.runEvent(ctx, event("plain", 0, now))
	if out.Next == nil || out.Next.Deliver || out.Next.Attempt != 1 || out.Next.NotBefore.Before(now.Add(900*time.Millisecond)) {
		t.Fatalf("a first failure is retried after the retry delay: %+v", out.Next)
	}
	out = g.runEvent(ctx, event("plain", 1, now))
	if out.Next == nil || out.Next.Attempt != 2 || out.Next.NotBefore.Before(now.Add(1900*time.Millisecond)) {
		t.Fatalf("a second failure waits twice as long: %+v", out.Next)
	}
	if out := g.runEvent(ctx, event("plain", 2, now)); out.Next != nil {
		t.Errorf("a third failure without destination is dropped: %+v", out.Next)
	}
	out = g.runEvent(ctx, event("dests", 2, now))
	if out.Next == nil || out.Next.Destination != "queue:failed" {
		t.Fatalf("out of retries, to the on-failure destination: %+v", out)
	}
	r = decodeRecord(t, out.Next)
	if r.RequestContext.Condition != "RetriesExhausted" || r.RequestContext.ApproximateInvokeCount != 3 ||
		r.ResponseContext == nil || r.ResponseContext.FunctionError != "Unhandled" || !strings.Contains(string(r.ResponsePayload), "Boom") {
		t.Errorf("the failure record: %s", out.Next.Payload)
	}
	out = g.runEvent(ctx, event("dlq", 2, now))
	if out.Next == nil || out.Next.Destination != "queue:dead" || string(out.Next.Payload) != `{"in":1}` {
		t.Fatalf("out of retries, the payload to the dead-letter target: %+v", out.Next)
	}

	inv := &scriptedInvoker{resp: ok}
	g = asyncGateway(t, inv, st)
	out = g.runEvent(ctx, event("dests", 0, now.Add(-7*time.Hour)))
	if inv.calls != 0 || out.Next == nil || decodeRecord(t, out.Next).RequestContext.Condition != "EventAgeExceeded" ||
		decodeRecord(t, out.Next).ResponseContext != nil || decodeRecord(t, out.Next).RequestContext.ApproximateInvokeCount != 0 {
		t.Fatalf("an event past its age is not run, and its record says so: %d calls, %+v", inv.calls, out.Next)
	}
	if out := g.runEvent(ctx, event("none", 0, now)); inv.calls != 0 || out.Delay <= 0 || out.Next != nil {
		t.Fatalf("a function without room: %d calls, %+v", inv.calls, out)
	}
	g = asyncGateway(t, &scriptedInvoker{err: invoke.ErrNoCapacity}, st)
	if out := g.runEvent(ctx, event("plain", 0, now)); out.Delay <= 0 || out.Next != nil {
		t.Fatalf("a node without capacity: %+v", out)
	}
	if out := g.runEvent(ctx, event("gone", 0, now)); out.Delay != 0 || out.Next != nil {
		t.Fatalf("an event of a deleted function is dropped: %+v", out)
	}
	if c := g.AsyncCounters("gone"); c.Dropped != 1 {
		t.Errorf("the dropped event is not counted: %+v", c)
	}
	// Asking about a function this node never ran (a peer's RPC names any) keeps no entry.
	_ = g.AsyncCounters("never-seen")
	if _, ok := g.asyncStats.Load("never-seen"); ok {
		t.Error("reading a function's counters made an entry for it")
	}
	// A destination that cannot take the record now: it stays, retried with backoff, until 6 h.
	rec := &asyncq.Event{RequestID: "req-1", Function: "dests", Deliver: true, Destination: "queue:failed", Payload: []byte(`{}`), AcceptedAt: now, Delivered: 3}
	if out := g.runEvent(ctx, rec); out.Delay <= 0 || out.Next != nil {
		t.Fatalf("an undeliverable record is retried: %+v", out)
	}
	rec.AcceptedAt = now.Add(-7 * time.Hour)
	if out := g.runEvent(ctx, rec); out.Delay != 0 || out.Next != nil {
		t.Fatalf("a record undeliverable for 6 hours is dropped: %+v", out)
	}
}

// The backoff of an event without room grows with its deliveries, jittered, up to 5 minutes.
func TestThrottleDelay(t *testing.T) {
	for _, c := range []struct {
		delivered int
		lo, hi    time.Duration
	}{{1, 500 * time.Millisecond, time.Second}, {2, time.Second, 2 * time.Second}, {4, 4 * time.Second, 8 * time.Second}, {30, 150 * time.Second, 5 * time.Minute}} {
		for range 20 {
			if d := throttleDelay(c.delivered); d < c.lo || d > c.hi {
				t.Fatalf("delivery %d: %v, want %v to %v", c.delivered, d, c.lo, c.hi)
			}
		}
	}
}

// fakePlugins is a plugin host with the plugins named, each keeping the records it takes
// (refusing them while down is set).
type fakePlugins struct {
	names   map[string]bool
	mu      sync.Mutex
	down    bool
	records map[string][]sdk.Record
}

func (p *fakePlugins) HasTrigger(name string) bool { return p.names[name] }
func (p *fakePlugins) SendRecord(_ context.Context, plugin string, r sdk.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down || !p.names[plugin] {
		return errors.New("not running")
	}
	if p.records == nil {
		p.records = map[string][]sdk.Record{}
	}
	p.records[plugin] = append(p.records[plugin], r)
	return nil
}

// triggerStore is an asyncStore that knows one trigger.
type triggerStore struct {
	*asyncStore
	trigger *structs.Trigger
}

func (s *triggerStore) TriggerByUUID(uuid string) (*structs.Trigger, bool) {
	return s.trigger, uuid == s.trigger.UUID
}

// A destination naming a plugin ("<plugin>:<target>"): its records reach the plugin's target,
// keyed by the request; while the plugin cannot take them they wait; a plugin this node does not
// run is refused when the destination is set. Triggers' on-failure records take the same path.
func TestPluginDestinations(t *testing.T) {
	plugins := &fakePlugins{names: map[string]bool{"redis": true}}
	st := &triggerStore{asyncStore: &asyncStore{fns: map[string]*structs.Function{"fn": {Name: "fn"}}},
		trigger: &structs.Trigger{UUID: "u-1", Name: "orders", Function: "fn", OnFailure: "redis:failed"}}
	g, err := New(Config{Invoker: &scriptedInvoker{}, Store: st, Code: noCode{}, Plugins: plugins})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	ctx := context.Background()
	rec := &asyncq.Event{RequestID: "req-1", Function: "fn", Deliver: true, Destination: "redis:audit/eu", Payload: []byte(`{"version":"1.0"}`), AcceptedAt: time.Now()}
	plugins.down = true
	if out := g.runEvent(ctx, rec); out.Delay <= 0 || len(plugins.records) != 0 {
		t.Fatalf("a record for a plugin that is down is not kept for later: %+v", out)
	}
	plugins.down = false
	if out := g.runEvent(ctx, rec); out.Delay != 0 || out.Next != nil {
		t.Fatalf("a record the plugin takes: %+v", out)
	}
	if got := plugins.records["redis"]; len(got) != 1 || got[0].Target != "audit/eu" || got[0].Key != "req-1" || string(got[0].Data) != `{"version":"1.0"}` {
		t.Fatalf("the plugin got %+v", got)
	}
	if err := g.TriggerHost().SendOnFailure(ctx, "u-1", []byte(`{"requestContext":{}}`)); err != nil {
		t.Fatal(err)
	}
	if got := plugins.records["redis"]; len(got) != 2 || got[1].Target != "failed" || got[1].Key != "u-1" {
		t.Fatalf("a trigger's on-failure record reached the plugin as %+v", got)
	}
	for _, d := range []string{"redis:x", "function:f", "queue:q", "stream:s", ""} {
		if err := g.checkDestination("f", d); err != nil {
			t.Errorf("%q: %v", d, err)
		}
	}
	var le *lambda.Error
	if err := g.checkDestination("DestinationConfig.OnSuccess.Destination", "fuction:x"); !errors.As(err, &le) ||
		le.Type != "InvalidParameterValueException" || !strings.Contains(le.Message, `no plugin "fuction"`) {
		t.Errorf("a destination naming a plugin not configured: %v", err)
	}
}

// TestRunEventTrace: an event runs with the trace header stored with it; one that is not a
// valid trace header (the queue may be an external NATS others publish to) is replaced by a new
// one, never handed to the runtime.
func TestRunEventTrace(t *testing.T) {
	st := &asyncStore{fns: map[string]*structs.Function{"plain": {Name: "plain"}}}
	inv := &scriptedInvoker{resp: &invoke.Response{Payload: []byte(`{}`)}}
	g := asyncGateway(t, inv, st)
	const good = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	for _, trace := range []string{good, "Root=1-5759e988-bd862e3fe1be46a994272793\r\nX-Evil: 1", ""} {
		g.runEvent(context.Background(), &asyncq.Event{RequestID: "r", Function: "plain", Version: "$LATEST", Payload: []byte(`{}`),
			AcceptedAt: time.Now(), TraceID: trace})
	}
	if len(inv.traces) != 3 || inv.traces[0] != good {
		t.Fatalf("traces %q, want the stored one first", inv.traces)
	}
	for _, got := range inv.traces[1:] {
		if !invoke.ValidXRay(got) || strings.Contains(got, "Evil") {
			t.Errorf("a malformed or missing stored trace ran as %q, want a new one", got)
		}
	}
}
