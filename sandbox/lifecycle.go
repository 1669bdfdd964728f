package sandbox

import (
	"strconv"
	"sync/atomic"
)

// phase is where an execution environment is in its lifecycle (DESIGN.md section 4.1). Only
// the environment changes it, under environment.mu, and only along the transitions below.
type phase uint8

const (
	// phaseCold: created up to the exec of the runtime (a standby, or a cold start about to
	// start it).
	phaseCold phase = iota
	// phaseInitialising: the runtime runs its Init, until its first GET /next.
	phaseInitialising
	// phaseReady: Init is over; whoever started the environment holds it, to invoke it or to
	// park it in the pool.
	phaseReady
	// phaseIdle: parked in GET /next, thawed, in the warm pool.
	phaseIdle
	// phaseFreezing: parked and being frozen; a checkout cancels the freeze.
	phaseFreezing
	// phaseFrozen: parked and frozen.
	phaseFrozen
	// phaseThawing: checked out of the pool, being thawed if it was frozen.
	phaseThawing
	// phaseInvoking: running an invocation the runtime has not answered yet.
	phaseInvoking
	// phaseFinishing: the runtime answered; its next GET /next ends the invocation.
	phaseFinishing
	// phaseDead: reset or shut down, never used again.
	phaseDead
	numPhases
)

var phaseNames = [numPhases]string{"cold", "initialising", "ready", "idle", "freezing", "frozen", "thawing", "invoking", "finishing", "dead"}

func (p phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// transitions is the whole lifecycle: every phase may end (dead); nothing else leaves dead.
var transitions = [numPhases][]phase{
	phaseCold:         {phaseInitialising},
	phaseInitialising: {phaseReady},
	phaseReady:        {phaseInvoking, phaseIdle},
	phaseIdle:         {phaseFreezing, phaseThawing},
	// A failed or cancelled freeze leaves it thawed; a checkout may come first.
	phaseFreezing: {phaseFrozen, phaseIdle, phaseThawing},
	phaseFrozen:   {phaseThawing},
	phaseThawing:  {phaseInvoking},
	// The runtime may ask for its next event without answering (Runtime.NoResponse).
	phaseInvoking:  {phaseFinishing, phaseIdle},
	phaseFinishing: {phaseIdle},
	phaseDead:      nil,
}

// can reports whether the lifecycle goes from p to next.
func (p phase) can(next phase) bool {
	if p >= numPhases || next >= numPhases || p == phaseDead {
		return false
	}
	if next == phaseDead {
		return true
	}
	for _, n := range transitions[p] {
		if n == next {
			return true
		}
	}
	return false
}

// parked reports whether the environment is in the warm pool: not held by any caller.
func (p phase) parked() bool { return p == phaseIdle || p == phaseFreezing || p == phaseFrozen }

// initialised reports whether Init is over (or never will be: dead).
func (p phase) initialised() bool { return p != phaseCold && p != phaseInitialising }

// badTransitions counts transitions refused because the table has no such arrow (other than
// out of dead, which races with a reset make normal). Tests check it stays 0.
var badTransitions atomic.Int64

// toLocked (environment.mu held) moves the environment to next when the lifecycle allows it,
// and reports whether it did. Leaving dead is refused quietly: a reset may win any race.
func (e *environment) toLocked(next phase) bool {
	if e.phase == next {
		return true
	}
	if !e.phase.can(next) {
		if e.phase != phaseDead {
			badTransitions.Add(1)
			e.cfg.logger.Error("environment lifecycle: refused transition", "env", e.id, "from", e.phase, "to", next)
		}
		return false
	}
	e.phase = next
	return true
}
