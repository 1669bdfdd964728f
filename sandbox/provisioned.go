package sandbox

import (
	"context"
	"fmt"
)

// Provisioned concurrency: a pool keeps provTarget environments started and initialised
// (AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency), parked idle and frozen like an
// environment after an invocation, so the first call finds one warm and its REPORT has no
// Init Duration. They are exempt from idle reclaim and eviction, served before on-demand ones,
// and replaced when they die.

// provision starts provisioned environments for p, one after the other, until it has its
// target. It stops at the first failure, recorded in provFailure; the janitor tries again.
func (m *Manager) provision(p *pool) {
	m.mu.Lock()
	if p.provisioning {
		m.mu.Unlock()
		return
	}
	p.provisioning = true
	for {
		// Checked and given up under the same lock a raised target is set under, so no raise
		// is missed between the two.
		if m.closed || p.retired || p.provLive >= p.provTarget {
			p.provisioning = false
			m.mu.Unlock()
			return
		}
		if !m.takeSlotLocked(p, true, true) {
			p.provFailure = fmt.Sprintf("the node has no room for another environment (max_environments = %d)", m.cfg.MaxEnvironments)
			p.provisioning = false
			m.mu.Unlock()
			m.logger.Warn("provisioned concurrency cannot be met", "function", p.fn.Name, "version", p.key.version,
				"want", p.provTarget, "have", p.provLive, "reason", p.provFailure)
			return
		}
		p.provLive++
		m.seq++
		seq := m.seq
		m.mu.Unlock()

		err := m.startProvisioned(p, seq)
		m.mu.Lock()
		if err != nil {
			p.provFailure = err.Error()
			p.provisioning = false
			m.mu.Unlock()
			m.logger.Warn("starting a provisioned environment failed", "function", p.fn.Name, "version", p.key.version, "error", err)
			return
		}
	}
}

// startProvisioned creates, starts and initialises one provisioned environment of p, whose slot
// (capacity, envWG, busyWG, provLive) was taken, then parks it idle.
func (m *Manager) startProvisioned(p *pool, seq uint64) error {
	ctx := context.Background()
	env, err := prepareEnvironment(ctx, m, p, seq, true)
	if err != nil {
		m.cap.give()
		m.mu.Lock()
		p.provLive--
		m.mu.Unlock()
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
	m.mu.Lock()
	if env.provisioned && !env.removed {
		if p.provLive > p.provTarget {
			// The target dropped while it started: it serves on demand instead.
			m.unprovisionLocked(env)
		} else {
			env.provReady = true
			p.provReady++
			p.provFailure = ""
		}
	}
	m.mu.Unlock()
	env.mu.Lock()
	env.toLocked(phaseIdle)
	env.mu.Unlock()
	m.release(env, false)
	return nil
}

// unprovisionLocked (Manager.mu held) takes env out of its pool's provisioned counts, when it
// is in them, and reports whether it was ready.
func (m *Manager) unprovisionLocked(env *environment) bool {
	if !env.provisioned {
		return false
	}
	p := env.pool
	env.provisioned = false
	p.provLive--
	ready := env.provReady
	if ready {
		env.provReady = false
		p.provReady--
	}
	return ready
}

// shrinkProvisionedLocked (Manager.mu held) brings p's provisioned environments down to its
// target: idle ones are retired and returned for shutdown, busy ones serve on demand from now.
func (m *Manager) shrinkProvisionedLocked(p *pool) []*environment {
	excess := p.provLive - p.provTarget
	if excess <= 0 {
		return nil
	}
	var stop []*environment
	kept := p.idle[:0]
	for _, env := range p.idle {
		if excess > 0 && env.provisioned {
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
		if env.pool == p && env.provisioned && env.provReady && !env.removed {
			m.unprovisionLocked(env)
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
		if !p.provisioning && p.provLive < p.provTarget {
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
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, p := range m.pools {
		if key.name == function && key.version == version && !p.retired {
			ready += p.provReady
			if p.provFailure != "" {
				failure = p.provFailure
			}
		}
	}
	return ready, failure
}
