package sandbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/lambdagw/gateway/internal/invoke"
)

// Provisioned concurrency: a pool keeps its target of environments started and initialised
// (AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency), parked idle and frozen like an
// environment after an invocation, so the first call finds one warm and its REPORT has no
// Init Duration. They are exempt from idle reclaim and eviction, served before on-demand ones,
// and replaced when they die.

// provisioner is the manager's provisioned-concurrency part: per pool, how many initialised
// environments are wanted, alive (starting included) and ready, whether provision runs, and why
// its last start failed. It marks the environments it counts (environment.prov, read without
// its lock). Its lock comes after Manager.mu.
type provisioner struct {
	mu    sync.Mutex
	pools map[*pool]*provState
}

type provState struct {
	target, live, ready int
	running             bool
	failure             string
	// retired: the pool's revision is gone; the state is forgotten once nothing is live.
	retired bool
}

// Marks of environment.prov: not provisioned, provisioned (starting or busy before its Init
// ended), provisioned and past Init.
const (
	provNone uint32 = iota
	provLive
	provReady
)

func newProvisioner() *provisioner { return &provisioner{pools: map[*pool]*provState{}} }

func (pv *provisioner) stateLocked(p *pool) *provState {
	st := pv.pools[p]
	if st == nil {
		st = &provState{}
		pv.pools[p] = st
	}
	return st
}

// setTarget sets p's target and reports whether p is short of it.
func (pv *provisioner) setTarget(p *pool, n int) (short bool) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if n == 0 && pv.pools[p] == nil {
		return false
	}
	st := pv.stateLocked(p)
	st.target = n
	return st.live < st.target
}

// counts reports p's target and live environments.
func (pv *provisioner) counts(p *pool) (target, live int) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if st := pv.pools[p]; st != nil {
		return st.target, st.live
	}
	return 0, 0
}

// short reports whether p lacks provisioned environments and nothing is starting them.
func (pv *provisioner) short(p *pool) bool {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	st := pv.pools[p]
	return st != nil && !st.running && st.live < st.target
}

// begin marks provision as running for p; false when it already runs.
func (pv *provisioner) begin(p *pool) bool {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	st := pv.stateLocked(p)
	if st.running {
		return false
	}
	st.running = true
	return true
}

// end marks provision as stopped for p, with why it stopped short ("" when it did not).
func (pv *provisioner) end(p *pool, failure string) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	st := pv.pools[p]
	if st == nil {
		return
	}
	st.running = false
	if failure != "" {
		st.failure = failure
	}
	pv.tidyLocked(p)
}

// tidyLocked forgets a retired pool's state once nothing of it is live or starting.
func (pv *provisioner) tidyLocked(p *pool) {
	if st := pv.pools[p]; st != nil && st.retired && st.live == 0 && !st.running {
		delete(pv.pools, p)
	}
}

// started counts an environment being started for p; lost uncounts it when it could not be
// made (before it was marked).
func (pv *provisioner) started(p *pool) { pv.mu.Lock(); pv.stateLocked(p).live++; pv.mu.Unlock() }

func (pv *provisioner) lost(p *pool) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if st := pv.pools[p]; st != nil {
		st.live--
		pv.tidyLocked(p)
	}
}

// initialised marks env ready after its Init, or, when the target dropped meanwhile, takes it
// out of the counts (it serves on demand). An environment no longer marked is left alone.
func (pv *provisioner) initialised(env *environment) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	st := pv.pools[env.pool]
	if env.prov.Load() != provLive || st == nil {
		return
	}
	if st.live > st.target {
		env.prov.Store(provNone)
		st.live--
		return
	}
	env.prov.Store(provReady)
	st.ready++
	env.pool.provReady.Add(1)
	st.failure = ""
}

// unprovision takes env out of the counts, when it is in them, and reports whether it was
// ready.
func (pv *provisioner) unprovision(env *environment) bool {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	mark := env.prov.Load()
	if mark == provNone {
		return false
	}
	env.prov.Store(provNone)
	if mark == provReady {
		env.pool.provReady.Add(-1)
	}
	if st := pv.pools[env.pool]; st != nil {
		st.live--
		if mark == provReady {
			st.ready--
		}
		pv.tidyLocked(env.pool)
	}
	return mark == provReady
}

// excess is how many provisioned environments p has beyond its target.
func (pv *provisioner) excess(p *pool) int {
	t, l := pv.counts(p)
	return l - t
}

// retire marks p's revision gone: it wants nothing more, counts for nothing, and is forgotten
// once its last environment is.
func (pv *provisioner) retire(p *pool) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if st := pv.pools[p]; st != nil {
		st.retired, st.target = true, 0
		pv.tidyLocked(p)
	}
}

// readyByKey sums the ready environments per placement key (pools of a version on this node).
func (pv *provisioner) readyByKey() map[string]int {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	out := map[string]int{}
	for p, st := range pv.pools {
		if st.ready > 0 && !st.retired {
			out[invoke.PlacementKey(p.key.name, p.key.version, p.key.revision)] += st.ready
		}
	}
	return out
}

// status sums the ready environments of a function version and gives the last failure.
func (pv *provisioner) status(function, version string) (ready int, failure string) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	for p, st := range pv.pools {
		if p.key.name == function && p.key.version == version && !st.retired {
			ready += st.ready
			if st.failure != "" {
				failure = st.failure
			}
		}
	}
	return ready, failure
}

// provision starts provisioned environments for p, one after the other, until it has its
// target. It stops at the first failure, recorded for ProvisionedStatus; the janitor tries again.
func (m *Manager) provision(p *pool) {
	if !m.prov.begin(p) {
		return
	}
	for {
		// Checked, and given up, under Manager.mu, where Sync raises a target: a raise is either
		// seen here or finds provision stopped and starts it again.
		m.mu.Lock()
		target, live := m.prov.counts(p)
		if m.closed || p.retired || live >= target {
			m.prov.end(p, "")
			m.mu.Unlock()
			return
		}
		if !m.takeSlotLocked(p, true, true) {
			failure := fmt.Sprintf("the node has no room for another environment (max_environments = %d)", m.cfg.MaxEnvironments)
			m.prov.end(p, failure)
			m.mu.Unlock()
			m.logger.Warn("provisioned concurrency cannot be met", "function", p.fn.Name, "version", p.key.version,
				"want", target, "have", live, "reason", failure)
			return
		}
		m.prov.started(p)
		m.seq++
		seq := m.seq
		m.mu.Unlock()

		if err := m.startProvisioned(p, seq); err != nil {
			m.prov.end(p, err.Error())
			m.logger.Warn("starting a provisioned environment failed", "function", p.fn.Name, "version", p.key.version, "error", err)
			return
		}
	}
}

// startProvisioned creates, starts and initialises one provisioned environment of p, whose slot
// (capacity, envWG, busyWG, and its count as live) was taken, then parks it idle.
func (m *Manager) startProvisioned(p *pool, seq uint64) error {
	ctx := context.Background()
	env, err := prepareEnvironment(ctx, m, p, seq, true)
	if err != nil {
		m.cap.give()
		m.prov.lost(p)
		m.envWG.Done()
		m.busyWG.Done()
		return err
	}
	m.mu.Lock()
	m.all[env] = struct{}{}
	m.mu.Unlock()
	if err := env.start(ctx); err != nil {
		env.reset("failure")
		return err
	}
	if _, err := env.init(ctx, m.cfg.InitTimeout); err != nil {
		return fmt.Errorf("init failed: %w", err) // init reset the environment
	}
	m.prov.initialised(env)
	env.mu.Lock()
	env.toLocked(phaseIdle)
	env.mu.Unlock()
	m.release(env, false)
	return nil
}

// shrinkProvisionedLocked (Manager.mu held) brings p's provisioned environments down to its
// target: idle ones are retired and returned for shutdown, busy ones serve on demand from now.
func (m *Manager) shrinkProvisionedLocked(p *pool) []*environment {
	excess := m.prov.excess(p)
	if excess <= 0 {
		return nil
	}
	var stop []*environment
	kept := p.idle[:0]
	for _, env := range p.idle {
		if excess > 0 && env.prov.Load() != provNone {
			m.retireLocked(env)
			stop = append(stop, env)
			excess--
			continue
		}
		kept = append(kept, env)
	}
	p.idle = kept
	for env := range m.all {
		if excess == 0 {
			break
		}
		if env.pool == p && env.prov.Load() == provReady && !env.removed {
			m.prov.unprovision(env)
			excess--
		}
	}
	return stop
}

// provisionAll restarts provisioning where a pool is short (after a failure or a lack of room).
func (m *Manager) provisionAll() {
	m.mu.Lock()
	var short []*pool
	for _, p := range m.pools {
		if m.prov.short(p) {
			short = append(short, p)
		}
	}
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return
	}
	for _, p := range short {
		go m.provision(p)
	}
}

// ProvisionedStatus reports how many provisioned environments of a function version are
// initialised and ready, and why the last attempt to start one failed ("" when none did since
// the last success).
func (m *Manager) ProvisionedStatus(function, version string) (ready int, failure string) {
	return m.prov.status(function, version)
}
