package sandbox

import (
	"testing"

	"github.com/lambdagw/gateway/internal/invoke"
)

// TestProvisioner: the provisioned-concurrency part on its own. Counts follow the marks of the
// environments; a ready one that dies asks for a replacement; an environment that finishes Init
// after its target dropped serves on demand; a retired revision counts for nothing and is
// forgotten once its last environment is.
func TestProvisioner(t *testing.T) {
	pv := newProvisioner()
	p := &pool{key: poolKey{name: "fn", version: "1", revision: "r"}}
	if !pv.setTarget(p, 2) || !pv.begin(p) || pv.begin(p) {
		t.Fatal("a pool short of its target did not start provisioning exactly once")
	}
	envs := []*environment{{pool: p}, {pool: p}}
	for _, e := range envs {
		pv.started(p)
		e.prov.Store(provLive)
		pv.initialised(e)
	}
	pv.end(p, "")
	if r, f := pv.status("fn", "1"); r != 2 || f != "" || p.provReady.Load() != 2 || pv.short(p) {
		t.Fatalf("ready %d (pool %d), failure %q, short %v", r, p.provReady.Load(), f, pv.short(p))
	}
	if got := pv.readyByKey()[invoke.PlacementKey("fn", "1", "r")]; got != 2 {
		t.Errorf("placement counts %d ready", got)
	}
	if !pv.unprovision(envs[0]) || pv.unprovision(envs[0]) || !pv.short(p) {
		t.Error("a ready environment that died did not leave the pool short, once")
	}
	// The target drops while one starts: it serves on demand.
	pv.setTarget(p, 1)
	late := &environment{pool: p}
	pv.started(p)
	late.prov.Store(provLive)
	pv.initialised(late)
	if late.prov.Load() != provNone || pv.excess(p) != 0 {
		t.Errorf("a late environment over the target: mark %d, excess %d", late.prov.Load(), pv.excess(p))
	}
	pv.end(p, "no room")
	if _, f := pv.status("fn", "1"); f != "no room" {
		t.Errorf("failure %q", f)
	}
	pv.retire(p)
	if r, _ := pv.status("fn", "1"); r != 0 || len(pv.readyByKey()) != 0 {
		t.Errorf("a retired revision still counts %d ready", r)
	}
	if pv.unprovision(envs[1]); len(pv.pools) != 0 || p.provReady.Load() != 0 {
		t.Errorf("a retired pool with nothing live is kept (%d states, %d ready)", len(pv.pools), p.provReady.Load())
	}
}
