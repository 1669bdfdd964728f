package asyncq

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/natsengine/natstest"
)

// jetStream starts an embedded JetStream for one test.
func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Start(t)
	return js
}

// recorder is a handler that counts the events it ran and answers with what decide says.
type recorder struct {
	mu     sync.Mutex
	runs   map[string]int
	decide func(ev *Event) Outcome
}

func (r *recorder) handle(_ context.Context, ev *Event) Outcome {
	r.mu.Lock()
	if r.runs == nil {
		r.runs = map[string]int{}
	}
	r.runs[ev.Function+"/"+ev.RequestID]++
	r.mu.Unlock()
	if r.decide != nil {
		return r.decide(ev)
	}
	return Outcome{}
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[key]
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.runs {
		n += c
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func serve(t *testing.T, q *Queue, h Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Serve(ctx, h) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Events stored before the queue serves (a restart) and after all run once; an event stored
// twice under one id is stored once; a retry (Next with NotBefore) runs after its backoff; a
// Delay leaves the event in place.
func TestQueue(t *testing.T) {
	js := jetStream(t)
	q, err := Open(context.Background(), Config{JS: js, AckWait: 3 * time.Second, ScanInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(fn, id string, payload string) {
		t.Helper()
		if err := q.Put(ctx, &Event{RequestID: id, Function: fn, Version: "$LATEST", Payload: []byte(payload), AcceptedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		put("before", strconv.Itoa(i), "{}")
	}
	put("before", "0", "{}") // the same event again: stored once
	var delayed sync.Once
	var retryAt time.Time
	r := &recorder{decide: func(ev *Event) Outcome {
		switch {
		case ev.Function == "retry" && ev.Attempt == 0:
			next := *ev
			next.Attempt, next.NotBefore = 1, time.Now().Add(300*time.Millisecond)
			retryAt = next.NotBefore
			return Outcome{Next: &next}
		case ev.Function == "retry":
			if time.Now().Before(retryAt) {
				t.Errorf("a retry ran %v before its backoff ended", time.Until(retryAt))
			}
		case ev.Function == "delay":
			var d time.Duration
			delayed.Do(func() { d = 200 * time.Millisecond })
			return Outcome{Delay: d}
		}
		return Outcome{}
	}}
	serve(t, q, r.handle)
	for i := range 50 {
		put("after", strconv.Itoa(i), "{}")
	}
	put("retry", "r", "{}")
	put("delay", "d", "{}")
	waitUntil(t, "every event", func() bool { return r.total() == 50+50+2+2 })
	time.Sleep(500 * time.Millisecond)
	for i := range 50 {
		for _, fn := range []string{"before", "after"} {
			if n := r.count(fn + "/" + strconv.Itoa(i)); n != 1 {
				t.Errorf("%s/%d ran %d times", fn, i, n)
			}
		}
	}
	if r.count("retry/r") != 2 || r.count("delay/d") != 2 {
		t.Errorf("retry ran %d times, delay %d (want 2 each)", r.count("retry/r"), r.count("delay/d"))
	}
	for _, fn := range []string{"before", "after", "retry", "delay"} {
		st, err := q.Status(ctx, fn)
		if err != nil || st.Waiting != 0 || st.InFlight != 0 || !st.Oldest.IsZero() {
			t.Errorf("%s after everything ran: %+v %v", fn, st, err)
		}
	}
}

// One function whose events cannot run (every one delayed) does not hold another's.
func TestQueueBacklogsApart(t *testing.T) {
	js := jetStream(t)
	q, err := Open(context.Background(), Config{JS: js, PerFunction: 2, ScanInterval: 100 * time.Millisecond, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug})})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{decide: func(ev *Event) Outcome {
		if ev.Function == "stuck" {
			return Outcome{Delay: time.Second}
		}
		return Outcome{}
	}}
	serve(t, q, r.handle)
	ctx := context.Background()
	for i := range 20 {
		for _, fn := range []string{"stuck", "fine"} {
			if err := q.Put(ctx, &Event{RequestID: fmt.Sprint(i), Function: fn, AcceptedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitUntil(t, "the fine function's events", func() bool {
		n := 0
		for i := range 20 {
			n += r.count("fine/" + fmt.Sprint(i))
		}
		return n == 20
	})
	st, err := q.Status(ctx, "stuck")
	if err != nil || st.Waiting+uint64(st.InFlight) != 20 || st.Oldest.IsZero() {
		t.Fatalf("the stuck function's events: %+v %v", st, err)
	}
}

// A message on a function's subject that is not an event, or names another function, or a
// destination that is none, is dropped: it never reaches the handler.
func TestQueueRefusesForgedMessages(t *testing.T) {
	js := jetStream(t)
	q, err := Open(context.Background(), Config{JS: js, ScanInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	serve(t, q, r.handle)
	ctx := context.Background()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for i, h := range []nats.Header{
		{},
		{hdrRequestID: {"x"}, hdrFunction: {"other"}, hdrAcceptedAt: {now}},
		{hdrRequestID: {"y"}, hdrFunction: {"victim"}},
		{hdrRequestID: {"z"}, hdrFunction: {"victim"}, hdrAcceptedAt: {now}, hdrStage: {"deliver"}, hdrDestination: {"function:../victim"}},
		{hdrRequestID: {"w"}, hdrFunction: {"../victim"}, hdrAcceptedAt: {now}},
	} {
		h.Set(nats.MsgIdHdr, fmt.Sprint("forged-", i))
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: Subject("victim"), Header: h, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Put(ctx, &Event{RequestID: "real", Function: "victim", AcceptedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the real event", func() bool { return r.count("victim/real") == 1 })
	waitUntil(t, "the forged messages to go", func() bool {
		st, err := q.Status(ctx, "victim")
		return err == nil && st.Waiting == 0 && st.InFlight == 0
	})
	if r.total() != 1 {
		t.Fatalf("forged messages reached the handler: %v", r.runs)
	}
}

// FuzzDecode: whatever headers and data a message carries, decoding never panics, and what
// it accepts names a valid function, a request id, and for a destination record a valid
// destination.
func FuzzDecode(f *testing.F) {
	f.Add("id", "fn", "1700000000000", "0", "", "", "", []byte("{}"))
	f.Add("id", "fn", "1700000000000", "1", "1700000001000", "deliver", "queue:dlq", []byte(`{"x":1}`))
	f.Add("id", "fn/../x", "-1", "-5", "x", "deliver", "function:", []byte{0xff})
	f.Fuzz(func(t *testing.T, id, fn, accepted, attempt, notBefore, stage, dest string, data []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{hdrRequestID: id, hdrFunction: fn, hdrAcceptedAt: accepted, hdrAttempt: attempt,
			hdrNotBefore: notBefore, hdrStage: stage, hdrDestination: dest} {
			if v != "" {
				h.Set(k, v)
			}
		}
		ev, err := decodeParts(h, data)
		if err != nil {
			return
		}
		if ev.RequestID == "" || ev.Function == "" || ev.Attempt < 0 || (ev.Deliver && ev.Destination == "") {
			t.Fatalf("accepted %+v", ev)
		}
	})
}

// lockedBuffer is a log output safe for the queue's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// On a NATS cluster whose servers start one after another, Open waits, saying so, until the
// cluster can hold the stream's three replicas instead of failing the node's start; it gives up
// when its context ends. What waiting does not mend (three replicas on a server alone) fails at
// once.
func TestOpenWaitsForTheCluster(t *testing.T) {
	cfgs := natstest.ClusterConfigs(t, 3)
	_, js := natstest.StartConfig(t, cfgs[0])
	natstest.StartConfig(t, cfgs[1])

	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Open(short, Config{JS: js, Replicas: 3}); err == nil || !strings.Contains(err.Error(), "waiting for the NATS cluster") {
		t.Fatalf("Open on two of three servers, its context ending: %v", err)
	}

	var logs lockedBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	go func() {
		time.Sleep(time.Second)
		natstest.StartConfig(t, cfgs[2])
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	q, err := Open(ctx, Config{JS: js, Replicas: 3, Logger: logger})
	if err != nil {
		t.Fatalf("Open while the third server starts: %v\n%s", err, logs.String())
	}
	info, err := q.stream.Info(ctx)
	if err != nil || info.Config.Replicas != 3 {
		t.Fatalf("the stream: %+v %v", info, err)
	}
	for _, want := range []string{"waiting for the NATS cluster to create the stream", "the NATS cluster has the stream"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs.String())
		}
	}
	t.Logf("Open waited %v for the cluster", time.Since(start).Round(time.Millisecond))

	_, alone := natstest.Start(t)
	start = time.Now()
	if _, err := Open(ctx, Config{JS: alone, Replicas: 3}); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Open of three replicas on a server alone: %v after %v", err, time.Since(start))
	}
}

// A dead-lettered payload is a delivery that says so; a destination record and an invocation
// do not.
func TestDeadLetterMark(t *testing.T) {
	q, err := Open(context.Background(), Config{JS: jetStream(t), AckWait: 3 * time.Second, ScanInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]*Event{}
	serve(t, q, func(_ context.Context, ev *Event) Outcome {
		mu.Lock()
		got[ev.RequestID] = ev
		mu.Unlock()
		return Outcome{}
	})
	for _, ev := range []*Event{
		{RequestID: "dlq", Deliver: true, Destination: "queue:dlq", DeadLetter: true},
		{RequestID: "record", Deliver: true, Destination: "queue:dest"},
		{RequestID: "invoke", DeadLetter: true}, // not a delivery: the mark means nothing
	} {
		ev.Function, ev.Version, ev.Payload, ev.AcceptedAt = "f", "$LATEST", []byte("{}"), time.Now()
		if err := q.Put(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the three events", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	for id, want := range map[string]bool{"dlq": true, "record": false, "invoke": false} {
		if got[id].DeadLetter != want {
			t.Errorf("%s: DeadLetter %v, want %v", id, got[id].DeadLetter, want)
		}
	}
}
