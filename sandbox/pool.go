package sandbox

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// The warm pool, the manager's own part under Manager.mu: pools of interchangeable environments
// (one function revision and version), their idle environments (most recently used last), the
// hand-over of an environment that is finishing to a caller waiting for one, eviction when the
// node is full, and the reclaim of environments idle too long.

// poolKey identifies environments that are interchangeable: same function, same revision of its
// code and configuration, same version.
type poolKey struct {
	name, revision, version string
}

type pool struct {
	key poolKey
	fn  *structs.Function
	// idle holds warm environments parked in GET /next, most recently used last (reused first,
	// so the rest age out and are reclaimed).
	idle []*environment
	// finishing counts environments whose runtime has answered but not yet asked for the next
	// event; a caller prefers waiting for one of them to a cold start.
	finishing int
	waiters   []chan *environment
	retired   bool

	// touched is when the pool was last deployed (Sync) or invoked: standbys go to the most
	// recently touched pools.
	touched time.Time

	// provReady counts its provisioned environments past Init (the provisioner keeps it), so
	// popIdle looks for one only when there is one.
	provReady atomic.Int32
}

// handoffWait bounds how long an invocation waits for a finishing environment of its function
// before it cold-starts another one. Back-to-back callers often arrive before the runtime has
// asked for its next event; waiting for it saves a cold start (environment start and the
// function's Init, tens to hundreds of milliseconds). A runtime asks within microseconds unless
// the node is loaded, so the bound is generous; a finishing environment that dies wakes its
// waiter at once (markFinishing), so only a runtime that lingers after answering costs the wait.
const handoffWait = 500 * time.Millisecond

// acquire returns an environment for fn: a warm one out of the pool (environment.invoke checks
// it out and thaws it), one handed over by an invocation that is finishing, or a new one (cold,
// not yet initialised).
func (m *Manager) acquire(ctx context.Context, fn *structs.Function, version string) (*environment, bool, error) {
	key := poolKey{name: fn.Name, revision: fn.RevisionID, version: version}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, false, invoke.ErrShuttingDown
	}
	p := m.pools[key]
	if p == nil {
		p = &pool{key: key, fn: fn}
		m.pools[key] = p
	}
	p.touched = time.Now()
	if env := p.popIdle(); env != nil {
		m.busyWG.Add(1)
		m.mu.Unlock()
		return env, false, nil
	}
	if p.finishing > len(p.waiters) {
		// release hands the environment over with busyWG already counted for us.
		ch := make(chan *environment, 1)
		p.waiters = append(p.waiters, ch)
		m.mu.Unlock()
		t := time.NewTimer(handoffWait)
		var env *environment
		handed := false
		select {
		case env = <-ch:
			handed = true
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if env != nil {
			return env, false, nil
		}
		m.mu.Lock()
		if !handed && !p.removeWaiter(ch) {
			// A handover raced with the timeout: what was sent is ours.
			m.mu.Unlock()
			if env = <-ch; env != nil {
				return env, false, nil
			}
			m.mu.Lock()
		}
		// No environment came (nil means the one awaited died): start another.
		if err := ctx.Err(); err != nil {
			m.mu.Unlock()
			return nil, false, err
		}
		if m.closed {
			m.mu.Unlock()
			return nil, false, invoke.ErrShuttingDown
		}
	}
	if env := m.standby.take(p); env != nil {
		m.busyWG.Add(1)
		m.mu.Unlock()
		return env, true, nil
	}
	if ch := m.standby.waitFor(p); ch != nil {
		// One is being prepared: it is further along than a new one would be.
		m.mu.Unlock()
		if env := m.waitStandby(ctx, p, ch); env != nil {
			return env, true, nil
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, false, invoke.ErrShuttingDown
		}
	}
	if !m.takeSlotLocked(p, true, true) {
		m.mu.Unlock()
		return nil, false, invoke.ErrNoCapacity
	}
	m.mu.Unlock()
	env, err := m.createEnvironment(ctx, p)
	if err != nil {
		return nil, false, err
	}
	return env, true, nil
}

// evictIdleLocked makes room by reclaiming the least recently used idle environment of another
// function. It reports whether a slot was freed.
func (m *Manager) evictIdleLocked(except *pool) bool {
	// A standby is the cheapest to give up.
	if victim := m.standby.evictOne(); victim != nil {
		m.retireLocked(victim)
		go victim.shutdown("spindown")
		return true
	}
	var victim *environment
	var vp *pool
	vi := 0
	for _, p := range m.pools {
		if p == except {
			continue
		}
		// The oldest on-demand one: provisioned environments are kept whatever their age.
		for i, e := range p.idle {
			if e.prov.Load() != provNone {
				continue
			}
			if victim == nil || e.lastUsed.Before(victim.lastUsed) {
				victim, vp, vi = e, p, i
			}
			break
		}
	}
	if victim == nil {
		return false
	}
	vp.idle = append(vp.idle[:vi], vp.idle[vi+1:]...)
	m.retireLocked(victim)
	go victim.shutdown("spindown")
	return true
}

// markFinishing counts environments whose runtime answered but has not asked for its next event.
// When one of them dies instead (delta -1), a caller that was waiting for it is told so with a
// nil handover, and cold-starts at once.
func (m *Manager) markFinishing(env *environment, delta int) {
	m.mu.Lock()
	p := env.pool
	p.finishing += delta
	var ch chan *environment
	if n := len(p.waiters); delta < 0 && n > p.finishing {
		ch = p.waiters[n-1]
		p.waiters = p.waiters[:n-1]
	}
	m.mu.Unlock()
	if ch != nil {
		ch <- nil
	}
}

// release returns an environment whose runtime asked for its next event: to a waiting caller,
// to the idle list (to be frozen), or to shutdown when its pool was retired.
func (m *Manager) release(env *environment, finishing bool) {
	m.mu.Lock()
	p := env.pool
	if finishing {
		p.finishing--
	}
	m.busyWG.Done()
	if env.removed {
		m.mu.Unlock()
		return // reset meanwhile
	}
	if m.closed || p.retired {
		m.retireLocked(env)
		m.mu.Unlock()
		go env.shutdown("spindown")
		return
	}
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters = p.waiters[1:]
		m.busyWG.Add(1)
		m.mu.Unlock()
		ch <- env
		return
	}
	env.lastUsed = time.Now()
	p.idle = append(p.idle, env)
	m.mu.Unlock()
	env.scheduleFreeze(m.freezeDelay(p.fn))
}

// discard removes an environment that is being reset (crash, timeout, failed thaw) from the
// manager's accounting. It is called once per environment, by whoever tears it down.
func (m *Manager) discard(env *environment, held bool) {
	m.mu.Lock()
	p := env.pool
	for i, e := range p.idle {
		if e == env {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	m.giveSlotLocked(env)
	// A provisioned environment that dies after its Init is replaced; one that failed Init is
	// retried by the janitor, not at once (Init may fail every time).
	replace := m.prov.unprovision(env) && !m.closed && !p.retired
	m.mu.Unlock()
	if held {
		m.busyWG.Done()
	}
	if replace {
		go m.provision(p)
	}
}

// popIdle takes the most recently used idle environment, a provisioned one first (Lambda
// serves from provisioned concurrency before on-demand, which then ages out).
func (p *pool) popIdle() *environment {
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	i := n - 1
	if p.provReady.Load() > 0 {
		for j := n - 1; j >= 0; j-- {
			if p.idle[j].prov.Load() != provNone {
				i = j
				break
			}
		}
	}
	env := p.idle[i]
	p.idle = append(p.idle[:i], p.idle[i+1:]...)
	return env
}

func (p *pool) removeWaiter(ch chan *environment) bool {
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return true
		}
	}
	return false
}

func (m *Manager) reclaimIdle(now time.Time) {
	var stop []*environment
	m.mu.Lock()
	for _, p := range m.pools {
		if now.Sub(p.touched) >= m.cfg.IdleTimeout {
			for _, env := range m.standby.drop(p) {
				m.retireLocked(env)
				stop = append(stop, env)
			}
		}
		kept := p.idle[:0]
		for _, env := range p.idle {
			if env.prov.Load() == provNone && now.Sub(env.lastUsed) >= m.cfg.IdleTimeout {
				m.retireLocked(env)
				stop = append(stop, env)
				continue
			}
			kept = append(kept, env)
		}
		p.idle = kept
	}
	m.mu.Unlock()
	for _, env := range stop {
		m.logger.Debug("reclaiming idle environment", "function", env.pool.fn.Name, "env", env.id)
		go env.shutdown("spindown")
	}
	m.provisionAll()
}

// Idle reports how many environments of fn at version are idle here, or finishing an
// invocation (answered, about to ask for the next event): a call waits for those rather than
// start another.
func (m *Manager) Idle(fn *structs.Function, version string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pools[poolKey{name: fn.Name, revision: fn.RevisionID, version: version}]
	if p == nil {
		return 0
	}
	return len(p.idle) + max(p.finishing-len(p.waiters), 0)
}
