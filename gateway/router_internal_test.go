package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

type fakeLocal struct{ idle, free int }

func (f *fakeLocal) Invoke(context.Context, *structs.Function, *invoke.Request) (*invoke.Response, error) {
	return &invoke.Response{}, nil
}
func (f *fakeLocal) Idle(*structs.Function, string) int { return f.idle }
func (f *fakeLocal) Free() int                          { return f.free }
func (f *fakeLocal) Placement() invoke.Placement        { return invoke.Placement{} }
func (f *fakeLocal) ProvisionedStatus(string, string) (int, string) {
	return 0, ""
}

// TestRouterPick: warm peers first (the most warm), then this node while it has room, then the
// peer with the most room; stale reports count for nothing.
func TestRouterPick(t *testing.T) {
	fn := &structs.Function{Name: "fn", RevisionID: "r1"}
	key := invoke.WarmKey(fn, "$LATEST")
	local := &fakeLocal{free: 5}
	r := NewRouter(RouterConfig{Local: local})
	now := time.Now()
	set := func(id string, at time.Time, warm, free int) {
		p := invoke.Placement{Free: free, Warm: map[string]int{}}
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

type fakePeers struct{ id string }

func (p fakePeers) ID() string                         { return p.id }
func (p fakePeers) Members() ([]cluster.Member, error) { return nil, nil }
func (p fakePeers) NewRPCRequest(context.Context, string, string, string, io.Reader) (*http.Request, error) {
	return nil, nil
}
func (p fakePeers) DoRPC(*http.Request) (*http.Response, error) { return nil, nil }

// TestRouterShare: provisioned environments are spread over the live nodes, every one of them
// placed once, and a node that stops reporting has its part taken over.
func TestRouterShare(t *testing.T) {
	ids := []string{"a", "b", "c"}
	routers := map[string]*Router{}
	for _, id := range ids {
		r := NewRouter(RouterConfig{Local: &fakeLocal{}, Peers: fakePeers{id}})
		for _, other := range ids {
			if other != id {
				r.reports[other] = peerReport{addr: other, at: time.Now()}
			}
		}
		routers[id] = r
	}
	for _, n := range []int{1, 2, 3, 4, 7} {
		for _, name := range []string{"f", "g", "h"} {
			fn := &structs.Function{Name: name}
			total := 0
			for _, id := range ids {
				s := routers[id].Share(fn, "1", n)
				if s < n/3 || s > n/3+1 {
					t.Errorf("%d over 3 nodes: %s takes %d", n, id, s)
				}
				total += s
			}
			if total != n {
				t.Errorf("%s: %d environments spread as %d", name, n, total)
			}
		}
	}
	// c goes quiet: a and b share everything.
	for _, id := range []string{"a", "b"} {
		routers[id].reports["c"] = peerReport{addr: "c", at: time.Now().Add(-2 * reportTTL)}
	}
	fn := &structs.Function{Name: "f"}
	if got := routers["a"].Share(fn, "1", 4) + routers["b"].Share(fn, "1", 4); got != 4 {
		t.Errorf("after c left, a and b keep %d of 4", got)
	}
}

// httpPeers sends the router's RPCs to plain HTTP servers (addr is a base URL).
type httpPeers struct{ fakePeers }

func (httpPeers) NewRPCRequest(ctx context.Context, addr, method, path string, body io.Reader) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, method, addr+"/"+path, body)
}
func (httpPeers) DoRPC(req *http.Request) (*http.Response, error) { return http.DefaultClient.Do(req) }

// slowLocal answers after delay with payload.
type slowLocal struct {
	fakeLocal
	delay   time.Duration
	payload string
}

func (s *slowLocal) Invoke(ctx context.Context, _ *structs.Function, req *invoke.Request) (*invoke.Response, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &invoke.Response{Payload: []byte(s.payload), ExecutedVersion: req.Version}, nil
}

type oneFunction struct{ fn *structs.Function }

func (o oneFunction) Function(string) (*structs.Function, bool)        { return o.fn, true }
func (o oneFunction) Version(string, string) (*structs.Function, bool) { return o.fn, true }

// TestRouterForwardAck: a peer that takes a forwarded call and says nothing (a kept-alive
// connection into a partition) has the call taken back and run here within the ack bound; a
// peer whose function runs longer than that keeps the call, its 102 saying it is at work.
func TestRouterForwardAck(t *testing.T) {
	fn := &structs.Function{Name: "fn", RevisionID: "r1", Timeout: 10 * time.Second}
	req := func() *invoke.Request {
		return &invoke.Request{RequestID: "id", Payload: []byte(`{}`), Version: "$LATEST"}
	}
	warmAt := func(r *Router, url string) {
		r.reports["peer"] = peerReport{addr: url, at: time.Now().Add(time.Hour),
			p: invoke.Placement{Warm: map[string]int{invoke.WarmKey(fn, "$LATEST"): 1}}}
	}

	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server sees the caller hang up
		<-r.Context().Done()
	}))
	defer silent.Close()
	r := NewRouter(RouterConfig{Local: &slowLocal{payload: "here"}, Peers: httpPeers{fakePeers{"self"}}})
	warmAt(r, silent.URL)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*forwardAckTimeout)
	defer cancel()
	resp, err := r.Invoke(ctx, fn, req())
	if err != nil || string(resp.Payload) != "here" {
		t.Fatalf("a silent peer: %v %+v", err, resp)
	}
	if d := time.Since(start); d < forwardAckTimeout || d > forwardAckTimeout+2*time.Second {
		t.Errorf("the call came back from the silent peer after %v, want about %v", d, forwardAckTimeout)
	}

	peer := NewRouter(RouterConfig{Local: &slowLocal{delay: forwardAckTimeout + time.Second, payload: `"there"`},
		Peers: fakePeers{"peer"}, State: oneFunction{fn}})
	busy := httptest.NewServer(http.HandlerFunc(peer.ServeInvoke))
	defer busy.Close()
	warmAt(r, busy.URL)
	resp, err = r.Invoke(context.Background(), fn, req())
	if err != nil || string(resp.Payload) != `"there"` {
		t.Fatalf("a busy peer: %v %+v", err, resp)
	}
}

// TestRouterForwardBoundsWholeResponse: a peer whose whole response never ends (or is far over
// what a payload and a log tail take) is cut off instead of buffered.
func TestRouterForwardBoundsWholeResponse(t *testing.T) {
	fn := &structs.Function{Name: "fn", RevisionID: "r1", Timeout: 10 * time.Second}
	var written atomic.Int64
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(hKind, "whole")
		_, _ = io.WriteString(w, `{"payload":"`)
		chunk := []byte(strings.Repeat("A", 64<<10))
		for written.Load() < 20*maxForwardedWhole {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := forwardCaller(httpPeers{fakePeers{"self"}}, fn, endless.URL)
	if resp, err := r.Invoke(ctx, fn, &invoke.Request{RequestID: "id", Payload: []byte(`{}`), Version: "$LATEST"}); err == nil {
		t.Fatalf("an endless response was taken: %d bytes of payload", len(resp.Payload))
	}
	if n := written.Load(); n > 2*maxForwardedWhole {
		t.Errorf("the caller read %d MB of a whole response, bound %d MB", n>>20, maxForwardedWhole>>20)
	}
}

// fakePool is a node's unreserved share of room places.
type fakePool struct{ room, admitted atomic.Int32 }

func (p *fakePool) PoolFree() int { return int(p.room.Load()) }
func (p *fakePool) AdmitUnreserved(string) (func(), bool) {
	if p.room.Add(-1) < 0 {
		p.room.Add(1)
		return nil, false
	}
	p.admitted.Add(1)
	return func() { p.room.Add(1) }, true
}

// TestRouterInvokeElsewhere: a call beyond this node's unreserved share goes to a peer that
// admits it against its own: a peer that reported room but has none now refuses it and the next
// is asked; a peer reporting no room is not asked; with no room anywhere the call gets
// ErrNoCapacity (the gateway's 429). A peer without a Pool refuses such a call.
func TestRouterInvokeElsewhere(t *testing.T) {
	fn := &structs.Function{Name: "fn", RevisionID: "r1", Timeout: 10 * time.Second}
	req := &invoke.Request{RequestID: "id", Payload: []byte(`{}`), Version: "$LATEST"}
	serve := func(name string, pool *fakePool) *httptest.Server {
		peer := NewRouter(RouterConfig{Local: &slowLocal{payload: `"` + name + `"`}, Peers: fakePeers{name}, State: oneFunction{fn}})
		if pool != nil {
			peer.SetPool(pool)
		}
		s := httptest.NewServer(http.HandlerFunc(peer.ServeInvoke))
		t.Cleanup(s.Close)
		return s
	}
	full, roomy, never := &fakePool{}, &fakePool{}, &fakePool{}
	roomy.room.Store(1)
	r := NewRouter(RouterConfig{Local: &fakeLocal{}, Peers: httpPeers{fakePeers{"self"}}})
	now := time.Now()
	r.reports["a-full"] = peerReport{addr: serve("full", full).URL, at: now, poolFree: 5} // a stale word: it has none now
	r.reports["b-roomy"] = peerReport{addr: serve("roomy", roomy).URL, at: now, poolFree: 1}
	r.reports["c-none"] = peerReport{addr: serve("never", never).URL, at: now, poolFree: 0}
	r.reports["d-old"] = peerReport{addr: serve("old", nil).URL, at: now, poolFree: -1}
	resp, err := r.InvokeElsewhere(context.Background(), fn, req)
	if err != nil || string(resp.Payload) != `"roomy"` || roomy.admitted.Load() != 1 || full.admitted.Load() != 0 || never.admitted.Load() != 0 {
		t.Fatalf("the call ran on %s (%v); admitted: full %d, roomy %d, never %d", resp.Payload, err, full.admitted.Load(),
			roomy.admitted.Load(), never.admitted.Load())
	}
	roomy.room.Store(0)
	if _, err := r.InvokeElsewhere(context.Background(), fn, req); !errors.Is(err, invoke.ErrNoCapacity) {
		t.Fatalf("no room anywhere: %v, want ErrNoCapacity", err)
	}
	if got := r.poolPeers(); len(got) != 3 || got[0].id != "d-old" || got[1].id != "a-full" || got[2].id != "b-roomy" {
		t.Errorf("the peers asked, in order: %+v", got)
	}
}
