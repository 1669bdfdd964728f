package sandbox

import (
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestLifecycleTable: the transition table, on its own. Every phase is reachable from cold and
// can end; dead is final; the arrows an invocation takes are there, and shortcuts that would
// skip a step (a thaw, Init, the pool) are not.
func TestLifecycleTable(t *testing.T) {
	reach := map[phase]bool{phaseCold: true}
	for changed := true; changed; {
		changed = false
		for from := range reach {
			for _, to := range append(transitions[from], phaseDead) {
				if from != phaseDead && !reach[to] {
					reach[to], changed = true, true
				}
			}
		}
	}
	for p := phase(0); p < numPhases; p++ {
		if !reach[p] {
			t.Errorf("%s cannot be reached from cold", p)
		}
		if p != phaseDead && !p.can(phaseDead) {
			t.Errorf("%s cannot end", p)
		}
		if phaseDead.can(p) {
			t.Errorf("dead goes on to %s", p)
		}
		if phaseNames[p] == "" {
			t.Errorf("phase %d has no name", p)
		}
	}
	walks := map[string][]phase{
		"cold start":              {phaseCold, phaseInitialising, phaseReady, phaseInvoking, phaseFinishing, phaseIdle},
		"warm, frozen":            {phaseIdle, phaseFreezing, phaseFrozen, phaseThawing, phaseInvoking, phaseFinishing, phaseIdle},
		"checkout cancels freeze": {phaseIdle, phaseFreezing, phaseThawing, phaseInvoking},
		"failed freeze":           {phaseIdle, phaseFreezing, phaseIdle, phaseThawing, phaseInvoking},
		"no answer":               {phaseThawing, phaseInvoking, phaseIdle},
		"provisioned":             {phaseCold, phaseInitialising, phaseReady, phaseIdle},
	}
	for name, w := range walks {
		for i := 1; i < len(w); i++ {
			if !w[i-1].can(w[i]) {
				t.Errorf("%s: %s -> %s refused", name, w[i-1], w[i])
			}
		}
	}
	for _, bad := range [][2]phase{
		{phaseCold, phaseInvoking},     // Init first
		{phaseInitialising, phaseIdle}, // the starter decides after Init
		{phaseFrozen, phaseInvoking},   // thaw first
		{phaseIdle, phaseInvoking},     // checked out first
		{phaseFinishing, phaseInvoking},
		{phaseFrozen, phaseFreezing},
	} {
		if bad[0].can(bad[1]) {
			t.Errorf("%s -> %s allowed", bad[0], bad[1])
		}
	}
}

// TestToLocked: an environment moves only along the table; leaving dead is refused quietly (a
// reset wins races), anything else off the table is counted.
func TestToLocked(t *testing.T) {
	e := &environment{id: "t", cfg: &envConfig{logger: hclog.NewNullLogger()}}
	before := badTransitions.Load()
	if !e.toLocked(phaseInitialising) || !e.toLocked(phaseReady) || !e.toLocked(phaseInvoking) || e.phase != phaseInvoking {
		t.Fatalf("a cold start's walk refused, at %s", e.phase)
	}
	if e.toLocked(phaseFrozen) || e.phase != phaseInvoking || badTransitions.Load() != before+1 {
		t.Errorf("invoking -> frozen: phase %s, %d refused", e.phase, badTransitions.Load()-before)
	}
	if !e.toLocked(phaseDead) || e.toLocked(phaseIdle) || e.phase != phaseDead || badTransitions.Load() != before+1 {
		t.Errorf("after dead: phase %s, %d refused", e.phase, badTransitions.Load()-before)
	}
	badTransitions.Store(before)
}
