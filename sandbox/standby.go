package sandbox

import (
	"context"
	"sync"
	"time"
)

// standbySet is the manager's standby part: prepared environments (created up to the exec of
// the runtime, see Driver.Create) kept for the next cold start of function revisions deployed or
// used recently, within the node's Standby budget. Its lock comes after Manager.mu; the manager
// retires and shuts down what it hands back.
type standbySet struct {
	budget int

	mu    sync.Mutex
	count int // ready or being prepared, against budget
	lists map[*pool]*standbyList
}

type standbyList struct {
	ready     []*environment
	preparing int
	// waiters are cold starts waiting for the one being prepared.
	waiters []chan *environment
}

func newStandbySet(budget int) *standbySet {
	return &standbySet{budget: budget, lists: map[*pool]*standbyList{}}
}

// listLocked returns p's list, made when create is set (nil otherwise when p has none).
func (s *standbySet) listLocked(p *pool, create bool) *standbyList {
	l := s.lists[p]
	if l == nil && create {
		l = &standbyList{}
		s.lists[p] = l
	}
	return l
}

// tidyLocked forgets p's list once nothing is in it.
func (s *standbySet) tidyLocked(p *pool) {
	if l := s.lists[p]; l != nil && len(l.ready) == 0 && l.preparing == 0 && len(l.waiters) == 0 {
		delete(s.lists, p)
	}
}

// take takes a ready standby of p for a cold start (nil when none).
func (s *standbySet) take(p *pool) *environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listLocked(p, false)
	if l == nil || len(l.ready) == 0 {
		return nil
	}
	env := l.ready[len(l.ready)-1]
	l.ready = l.ready[:len(l.ready)-1]
	s.count--
	s.tidyLocked(p)
	return env
}

// waitFor registers a cold start of p to be handed the standby being prepared for p, and
// returns its channel; nil when none is being prepared.
func (s *standbySet) waitFor(p *pool) chan *environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listLocked(p, false)
	if l == nil || l.preparing == 0 {
		return nil
	}
	ch := make(chan *environment, 1)
	l.waiters = append(l.waiters, ch)
	return ch
}

// stopWaiting withdraws ch. It reports false when ch was handed an environment (or closed)
// meanwhile: the caller then reads it.
func (s *standbySet) stopWaiting(p *pool, ch chan *environment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listLocked(p, false)
	if l == nil {
		return false
	}
	for i, w := range l.waiters {
		if w == ch {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			s.tidyLocked(p)
			return true
		}
	}
	return false
}

// reserve counts a standby of p as being prepared, when p has none (ready or being prepared)
// and the budget allows one: a full budget gives up the ready standby of the pool touched
// longest ago, when that is before p (older reports whether a was touched before b), returned
// as victim for the caller to retire.
func (s *standbySet) reserve(p *pool, older func(a, b *pool) bool) (victim *environment, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.budget <= 0 {
		return nil, false
	}
	if l := s.listLocked(p, false); l != nil && len(l.ready)+l.preparing > 0 {
		return nil, false
	}
	if s.count >= s.budget {
		var vp *pool
		for o, l := range s.lists {
			if o != p && len(l.ready) > 0 && older(o, p) && (vp == nil || older(o, vp)) {
				vp = o
			}
		}
		if vp == nil {
			return nil, false
		}
		vl := s.lists[vp]
		victim = vl.ready[0]
		vl.ready = vl.ready[1:]
		s.count--
		s.tidyLocked(vp)
	}
	s.listLocked(p, true).preparing++
	s.count++
	return victim, true
}

// unreserve undoes reserve when the preparation does not happen or failed. It returns the cold
// starts that were waiting for it: the caller closes their channels, and they prepare their own.
func (s *standbySet) unreserve(p *pool) []chan *environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listLocked(p, true)
	l.preparing--
	s.count--
	waiters := l.waiters
	l.waiters = nil
	s.tidyLocked(p)
	return waiters
}

// prepared ends a preparation with env: it goes to a waiting cold start (whose channel is
// returned, for the caller to count as busy and send to), or, when keep is set, joins the
// ready standbys; otherwise kept is false and the caller retires it.
func (s *standbySet) prepared(p *pool, env *environment, keep bool) (handTo chan *environment, kept bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listLocked(p, true)
	l.preparing--
	defer s.tidyLocked(p)
	if len(l.waiters) > 0 {
		handTo = l.waiters[0]
		l.waiters = l.waiters[1:]
		s.count--
		return handTo, false
	}
	if !keep {
		s.count--
		return nil, false
	}
	l.ready = append(l.ready, env)
	return nil, true
}

// evictOne gives up a ready standby, the cheapest environment to give up when the node is
// full; nil when there is none.
func (s *standbySet) evictOne() *environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, l := range s.lists {
		if len(l.ready) > 0 {
			env := l.ready[0]
			l.ready = l.ready[1:]
			s.count--
			s.tidyLocked(p)
			return env
		}
	}
	return nil
}

// drop takes every ready standby of p (its revision retired, or unused for too long).
func (s *standbySet) drop(p *pool) []*environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.listLocked(p, false)
	if l == nil {
		return nil
	}
	out := l.ready
	l.ready = nil
	s.count -= len(out)
	s.tidyLocked(p)
	return out
}

// ready lists the ready standbys.
func (s *standbySet) ready() []*environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*environment
	for _, l := range s.lists {
		out = append(out, l.ready...)
	}
	return out
}

// len counts the standbys, ready or being prepared.
func (s *standbySet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// standbyWait bounds how long a cold start waits for a standby being prepared before it
// prepares its own environment.
const standbyWait = time.Second

// waitStandby waits for the standby being prepared for p (ch from waitFor). It returns nil when
// none came in time, or the preparation failed.
func (m *Manager) waitStandby(ctx context.Context, p *pool, ch chan *environment) *environment {
	t := time.NewTimer(standbyWait)
	defer t.Stop()
	select {
	case env := <-ch:
		return env
	case <-t.C:
	case <-ctx.Done():
	}
	if m.standby.stopWaiting(p, ch) {
		return nil
	}
	// Handed over while we gave up: it is ours (busy) and becomes our cold start.
	return <-ch
}

// replenish prepares a standby environment for p when it has none, within the node's standby
// budget (taking it from the least recently touched pool when that one is older) and without
// using capacity an invocation could need.
func (m *Manager) replenish(p *pool) {
	m.mu.Lock()
	if m.closed || p.retired || m.cap.free() == 0 {
		m.mu.Unlock()
		return
	}
	victim, ok := m.standby.reserve(p, func(a, b *pool) bool { return a.touched.Before(b.touched) })
	if !ok {
		m.mu.Unlock()
		return
	}
	if victim != nil {
		m.retireLocked(victim)
	}
	if !m.takeSlotLocked(p, false, false) {
		m.standby.unreserve(p) // no cold start waits for a standby not yet begun
		m.mu.Unlock()
		if victim != nil {
			go victim.shutdown("spindown")
		}
		return
	}
	m.seq++
	seq := m.seq
	m.mu.Unlock()
	if victim != nil {
		go victim.shutdown("spindown")
	}

	env, err := prepareEnvironment(context.Background(), m, p, seq, false)
	if err != nil {
		m.cap.give()
		m.envWG.Done()
		for _, ch := range m.standby.unreserve(p) {
			close(ch) // they prepare their own
		}
		m.logger.Warn("preparing a standby environment failed", "function", p.fn.Name, "error", err)
		return
	}
	m.mu.Lock()
	m.all[env] = struct{}{}
	handTo, kept := m.standby.prepared(p, env, !m.closed && !p.retired)
	switch {
	case handTo != nil:
		m.busyWG.Add(1)
		m.mu.Unlock()
		handTo <- env
	case !kept:
		m.retireLocked(env)
		m.mu.Unlock()
		env.shutdown("spindown")
	default:
		m.mu.Unlock()
	}
}
