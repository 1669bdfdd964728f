package sandbox

import "sync"

// capacity counts the environments alive on the node (starting, busy, idle and standby) against
// max_environments. Its lock is a leaf, so the router's Free, asked on every invocation, does
// not wait for the pools' lock. Slots are taken under Manager.mu (takeSlotLocked), so a slot an
// eviction frees is the evicting caller's.
type capacity struct {
	mu   sync.Mutex
	used int
	max  int
}

func (c *capacity) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used >= c.max {
		return false
	}
	c.used++
	return true
}

func (c *capacity) give() {
	c.mu.Lock()
	c.used--
	c.mu.Unlock()
}

// free is how many more environments the node could start now.
func (c *capacity) free() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.max-c.used, 0)
}

func (c *capacity) inUse() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// takeSlotLocked (Manager.mu held) takes a slot for a new environment of p, evicting an idle
// environment of another function when the node is full and evict is set, and counts the
// environment in envWG (and in busyWG when a caller will hold it).
func (m *Manager) takeSlotLocked(p *pool, evict, held bool) bool {
	if !m.cap.take() && (!evict || !m.evictIdleLocked(p) || !m.cap.take()) {
		return false
	}
	m.envWG.Add(1)
	if held {
		m.busyWG.Add(1)
	}
	return true
}

// giveSlotLocked (Manager.mu held) gives env's slot back, once.
func (m *Manager) giveSlotLocked(env *environment) {
	if !env.removed {
		env.removed = true
		m.cap.give()
	}
}
