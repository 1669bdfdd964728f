package sandbox_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

func countState(h *harness, fn, state string) int {
	n := 0
	for _, e := range h.m.Environments() {
		if e.Function == fn && e.State == state {
			n++
		}
	}
	return n
}

// A deployed revision gets a prepared environment; the first invocation is a cold start in it
// (Init runs then), and the pool gets a new standby for its next cold start.
func TestStandbyIsPreparedOnDeployAndUsedByAColdStart(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, func(c *sandbox.ManagerConfig) { c.Standby = 2 })
		fn := testFunction("standby", nil)
		h.m.Sync([]*structs.Function{fn}, nil)
		waitFor(t, "a standby environment", func() bool { return countState(h, "standby", "standby") == 1 })
		if st := h.m.Stats(); st.Standby != 1 || st.Environments != 1 {
			t.Fatalf("stats %+v, want one environment, on standby", st)
		}
		prepared := h.m.Environments()[0].ID
		resp := callFn(t, h, fn, `{"mode":"counter"}`)
		if resp.FunctionError || decode(t, resp.Payload)["count"] != 1.0 {
			t.Fatalf("first invocation: %s", resp.Payload)
		}
		// The invocation ran in the prepared environment, now warm.
		waitFor(t, "the prepared environment warm", func() bool {
			for _, e := range h.m.Environments() {
				if e.ID == prepared && (e.State == "idle" || e.State == "frozen") {
					return true
				}
			}
			return false
		})
		// It ran in a fresh runtime: Init was reported for it.
		waitFor(t, "REPORT with Init Duration", func() bool {
			for _, l := range h.logs.get("standby") {
				if strings.HasPrefix(l, "REPORT") && strings.Contains(l, "Init Duration") {
					return true
				}
			}
			return false
		})
		waitFor(t, "the standby replaced", func() bool { return countState(h, "standby", "standby") == 1 })
		if st := h.m.Stats(); st.Environments != 2 {
			t.Fatalf("stats %+v, want the warm environment and a standby", st)
		}
		// Deleting the function takes its standby too.
		h.m.Sync(nil, nil)
		waitFor(t, "every environment gone", func() bool { return h.m.Stats().Environments == 0 })
	})
}

// The node's standby budget goes to the most recently deployed revisions.
func TestStandbyBudgetGoesToTheNewestRevisions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, func(c *sandbox.ManagerConfig) { c.Standby = 1 })
		a := testFunction("sba", nil)
		h.m.Sync([]*structs.Function{a}, nil)
		waitFor(t, "a standby for sba", func() bool { return countState(h, "sba", "standby") == 1 })
		b := testFunction("sbb", nil)
		h.m.Sync([]*structs.Function{a, b}, nil)
		waitFor(t, "the standby moved to sbb", func() bool {
			return countState(h, "sbb", "standby") == 1 && countState(h, "sba", "standby") == 0 && h.m.Stats().Environments == 1
		})
		// sba still cold-starts normally without one.
		if resp := callFn(t, h, a, `{}`); resp.FunctionError {
			t.Fatalf("sba: %s", resp.Payload)
		}
	})
}

// Idle reclaim also drops the standby of a revision nobody invoked.
func TestStandbyOfAnUnusedRevisionIsReclaimed(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, func(c *sandbox.ManagerConfig) { c.Standby = 1; c.IdleTimeout = 500 * time.Millisecond })
		h.m.Sync([]*structs.Function{testFunction("sbidle", nil)}, nil)
		waitFor(t, "a standby", func() bool { return countState(h, "sbidle", "standby") == 1 })
		waitFor(t, "standby reclaimed", func() bool {
			return countState(h, "sbidle", "standby") == 0 && h.m.Stats().Environments == 0 && h.m.Stats().Standby == 0
		})
	})
}
