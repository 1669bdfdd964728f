package sandbox

import (
	"testing"
	"time"
)

// TestStandbySet: the standby part on its own. One standby per revision within the budget; a
// full budget gives up the standby of the revision touched longest ago, only for a more recent
// one; a cold start waiting for the one being prepared gets it; a failed preparation releases
// its waiters; counts never drift.
func TestStandbySet(t *testing.T) {
	now := time.Now()
	older := func(a, b *pool) bool { return a.touched.Before(b.touched) }
	p1, p2, p3 := &pool{touched: now.Add(-3 * time.Minute)}, &pool{touched: now.Add(-2 * time.Minute)}, &pool{touched: now}
	s := newStandbySet(2)
	e1, e2, e3 := &environment{id: "e1"}, &environment{id: "e2"}, &environment{id: "e3"}

	for _, step := range []struct {
		p   *pool
		env *environment
	}{{p1, e1}, {p2, e2}} {
		if v, ok := s.reserve(step.p, older); !ok || v != nil {
			t.Fatalf("reserve within the budget: %v %v", v, ok)
		}
		if _, ok := s.reserve(step.p, older); ok {
			t.Error("a second standby of one revision was reserved")
		}
		if ch, kept := s.prepared(step.p, step.env, true); ch != nil || !kept {
			t.Fatalf("prepared with nobody waiting: %v %v", ch, kept)
		}
	}
	if s.len() != 2 {
		t.Fatalf("count %d, want 2", s.len())
	}
	// The budget is full: p3, touched last, takes p1's place; p1 cannot take p2's back.
	if v, ok := s.reserve(p3, older); !ok || v != e1 {
		t.Fatalf("a full budget gave %v (ok %v), want p1's standby", v, ok)
	}
	ch := s.waitFor(p3)
	if ch == nil {
		t.Fatal("no wait on a standby being prepared")
	}
	if handTo, _ := s.prepared(p3, e3, true); handTo != ch {
		t.Fatal("the prepared standby did not go to the waiting cold start")
	}
	if _, ok := s.reserve(p1, func(a, b *pool) bool { return false }); !ok {
		t.Fatal("the budget has room after a standby was handed out")
	}
	if p0 := (&pool{touched: now.Add(-4 * time.Minute)}); func() bool { _, ok := s.reserve(p0, older); return ok }() {
		t.Error("a full budget gave a standby up for a revision touched before it")
	}
	waiter := s.waitFor(p1)
	if waiters := s.unreserve(p1); len(waiters) != 1 || waiters[0] != waiter {
		t.Errorf("a failed preparation released %d waiters", len(waiters))
	}
	if s.stopWaiting(p1, waiter) {
		t.Error("a released waiter could still withdraw")
	}
	if got := s.take(p2); got != e2 || s.take(p2) != nil {
		t.Errorf("take gave %v", got)
	}
	if s.len() != 0 || len(s.lists) != 0 {
		t.Errorf("after everything was taken: count %d, %d lists kept", s.len(), len(s.lists))
	}
	if v, ok := s.reserve(p2, older); !ok || v != nil {
		t.Fatal(v, ok)
	}
	if _, kept := s.prepared(p2, e2, false); kept || s.len() != 0 {
		t.Errorf("a standby of a retired revision was kept (count %d)", s.len())
	}
	if _, ok := newStandbySet(0).reserve(p1, older); ok {
		t.Error("a zero budget reserved a standby")
	}
}
