package sdk

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRunner runs until stopped, like a trigger's consumer.
type fakeRunner struct {
	m             Mapping
	started, done chan struct{}
	stop          context.CancelFunc
	setupDeadline bool
}

func (f *fakeRunner) Start(setup, parent context.Context) {
	_, f.setupDeadline = setup.Deadline()
	ctx, cancel := context.WithCancel(parent)
	f.stop = cancel
	close(f.started)
	go func() { <-ctx.Done(); close(f.done) }()
}
func (f *fakeRunner) Stop() { f.stop() }
func (f *fakeRunner) Wait() { <-f.done }
func (f *fakeRunner) Status() MappingStatus {
	return MappingStatus{UUID: f.m.UUID, State: StateOK, Message: f.m.Function}
}

func TestMappingSetKeepsReplacesAndStops(t *testing.T) {
	var made atomic.Int32
	newRunner := func(m Mapping) *fakeRunner {
		made.Add(1)
		return &fakeRunner{m: m, started: make(chan struct{}), done: make(chan struct{})}
	}
	ctx := context.Background()
	var s MappingSet[*fakeRunner]
	a, b := Mapping{UUID: "a", Function: "f"}, Mapping{UUID: "b", Function: "g"}
	st, err := s.Set(ctx, ctx, []Mapping{b, a}, time.Second, newRunner)
	if err != nil || len(st) != 2 || st[0].UUID != "b" || st[1].UUID != "a" || made.Load() != 2 {
		t.Fatalf("first set: %+v %v (%d made)", st, err, made.Load())
	}
	ra, _ := s.Runner("a")
	rb, _ := s.Runner("b")
	if !ra.setupDeadline {
		t.Error("a runner's set-up had no deadline")
	}

	// a is the same, b changed, c is new.
	b2, c := Mapping{UUID: "b", Function: "h"}, Mapping{UUID: "c"}
	st, err = s.Set(ctx, ctx, []Mapping{a, b2, c}, time.Second, newRunner)
	if err != nil || len(st) != 3 || st[1].Message != "h" || made.Load() != 4 {
		t.Fatalf("second set: %+v %v (%d made)", st, err, made.Load())
	}
	if r, _ := s.Runner("a"); r != ra {
		t.Error("the unchanged mapping's runner was replaced")
	}
	select {
	case <-rb.done:
	default:
		t.Error("the changed mapping's old runner still runs")
	}

	if _, err := s.Set(ctx, ctx, []Mapping{a, a}, time.Second, newRunner); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("a mapping given twice: %v", err)
	}
	if s.Len() != 3 {
		t.Errorf("a refused set changed the runners: %d kept", s.Len())
	}

	rc, _ := s.Runner("c")
	s.StopAll()
	for _, r := range []*fakeRunner{ra, rc} {
		select {
		case <-r.done:
		default:
			t.Errorf("runner %s still runs after StopAll", r.m.UUID)
		}
	}
	if s.Len() != 0 || len(s.Status()) != 0 {
		t.Errorf("after StopAll: %d kept, status %+v", s.Len(), s.Status())
	}
}
