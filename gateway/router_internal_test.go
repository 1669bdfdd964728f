package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

type fakeLocal struct{ idle, free int }

func (f *fakeLocal) Invoke(context.Context, *structs.Function, *sandbox.Request) (*sandbox.Response, error) {
	return &sandbox.Response{}, nil
}
func (f *fakeLocal) Idle(*structs.Function, string) int { return f.idle }
func (f *fakeLocal) Free() int                          { return f.free }
func (f *fakeLocal) Placement() sandbox.Placement       { return sandbox.Placement{} }

// TestRouterPick: warm peers first (the most warm), then this node while it has room, then the
// peer with the most room; stale reports count for nothing.
func TestRouterPick(t *testing.T) {
	fn := &structs.Function{Name: "fn", RevisionID: "r1"}
	key := sandbox.WarmKey(fn, "$LATEST")
	local := &fakeLocal{free: 5}
	r := NewRouter(RouterConfig{Local: local})
	now := time.Now()
	set := func(id string, at time.Time, warm, free int) {
		p := sandbox.Placement{Free: free, Warm: map[string]int{}}
		if warm > 0 {
			p.Warm[key] = warm
		}
		r.reports[id] = peerReport{addr: id + ":1", at: at, p: p}
	}
	if id, _ := r.pick(fn, "$LATEST"); id != "" {
		t.Errorf("no reports: picked %q", id)
	}
	set("b", now, 0, 50)
	if id, _ := r.pick(fn, "$LATEST"); id != "" {
		t.Errorf("room here: picked %q, want this node", id)
	}
	set("c", now, 1, 0)
	set("d", now, 3, 0)
	set("e", now.Add(-2*reportTTL), 9, 90)
	if id, _ := r.pick(fn, "$LATEST"); id != "d" {
		t.Errorf("warm peers: picked %q, want d (the most warm, e's report is stale)", id)
	}
	if id, _ := r.pick(fn, "1"); id != "" {
		t.Errorf("another version, room here: picked %q", id)
	}
	local.free = 0
	if id, _ := r.pick(fn, "1"); id != "b" {
		t.Errorf("full here: picked %q, want b (the most room)", id)
	}
}
