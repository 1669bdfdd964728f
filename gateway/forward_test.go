package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// A streamed response of an invocation a peer runs crosses the node RPC as a chunked body (the
// function's bytes, flushed as they come) whose trailers carry the end of the stream: the
// function's late error and the log tail. The peer's Router.ServeInvoke writes it; the caller's
// Router.forward and newRemoteStream read it. A whole response is one JSON document.

// TestForwardedStreamLongTrailers: a forwarded stream whose error and log tail are longer than
// net/http's 4 KB trailer limit ends normally, with the start of the error's message and the
// end of the tail. It broke at its end (Runtime.StreamError, no error, no tail) with 3 KB of
// either; found by FuzzForwardedStream.
func TestForwardedStreamLongTrailers(t *testing.T) {
	peer := newForwardPeer(t)
	tail := bytes.Repeat([]byte("0123456789abcdef"), 60<<10/16)
	errBody := []byte(`{"errorType":"Handler.Failed","errorMessage":"` + strings.Repeat("x", 100<<10) + `"}`)
	got := readStream(t, peer.invoke(t, sourceStream(pieces("body"), "text/plain", "Handler.Failed", errBody, tail)))
	if string(got.body) != "body" || got.err != nil || got.errType != "Handler.Failed" {
		t.Fatalf("the stream ended with %q, %v, %s", got.body, got.err, got.errType)
	}
	if len(got.tail) < 4<<10 || !bytes.HasSuffix(tail, got.tail) {
		t.Errorf("log tail of %d bytes, not the last 4 KB at least", len(got.tail))
	}
	var e struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal(got.errBody, &e); err != nil || e.ErrorType != "Handler.Failed" ||
		len(e.ErrorMessage) < 4<<10 || !strings.HasPrefix(string(errBody), `{"errorType":"Handler.Failed","errorMessage":"`+e.ErrorMessage) {
		t.Errorf("error %.100q: not the error JSON with the first 4 KB of the message at least", got.errBody)
	}
}

// pieces encodes the writes of a function for FuzzForwardedStream: each a length byte and its
// bytes.
func pieces(writes ...string) []byte {
	var b []byte
	for _, w := range writes {
		b = append(b, byte(len(w)))
		b = append(b, w...)
	}
	return b
}

// sourceStream is the stream a peer's sandbox gives: the writes encoded by pieces, one per
// Read, and the trailers a runtime's late error and the log tail end in.
func sourceStream(writes []byte, contentType, errType string, errBody, tail []byte) invoke.Stream {
	var parts [][]byte
	for len(writes) > 0 {
		n := min(int(writes[0]), len(writes)-1)
		parts = append(parts, writes[1:1+n])
		writes = writes[1+n:]
	}
	set := http.Header{}
	if errType != "" {
		set.Set(trailerErrorType, errType)
		set.Set(trailerErrorBody, base64.StdEncoding.EncodeToString(errBody))
	}
	if len(tail) > 0 {
		set.Set(trailerLogTail, base64.StdEncoding.EncodeToString(tail))
	}
	trailer := http.Header{}
	return newRemoteStream(contentType, &piecesBody{parts: parts, trailer: trailer, set: set}, trailer)
}

// piecesBody returns one piece per Read and fills its trailer at the end, as net/http does.
type piecesBody struct {
	parts        [][]byte
	trailer, set http.Header
}

func (b *piecesBody) Read(p []byte) (int, error) {
	if len(b.parts) == 0 {
		for k, v := range b.set {
			b.trailer[k] = v
		}
		return 0, io.EOF
	}
	n := copy(p, b.parts[0])
	if b.parts[0] = b.parts[0][n:]; len(b.parts[0]) == 0 {
		b.parts = b.parts[1:]
	}
	return n, nil
}

func (b *piecesBody) Close() error { return nil }

type streamRead struct {
	body, errBody, tail  []byte
	err                  error
	contentType, errType string
}

func readStream(t *testing.T, st invoke.Stream) streamRead {
	t.Helper()
	defer st.Close()
	r := streamRead{contentType: st.ContentType()}
	r.body, r.err = io.ReadAll(io.LimitReader(st, 1<<20))
	r.errType, r.errBody = st.Err()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.tail = st.LogTail(ctx)
	return r
}

// rpcPeers sends the router's RPCs to plain HTTP servers (addr is a base URL) with a client
// that reads trailers as the node RPC's does (cluster.MaxRPCTrailerBytes).
type rpcPeers struct {
	fakePeers
	client *http.Client
}

func newRPCPeers(tb testing.TB) rpcPeers {
	c := &http.Client{Transport: &http.Transport{ReadBufferSize: cluster.MaxRPCTrailerBytes}}
	tb.Cleanup(c.CloseIdleConnections)
	return rpcPeers{fakePeers{"self"}, c}
}

func (rpcPeers) NewRPCRequest(ctx context.Context, addr, method, path string, body io.Reader) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, method, addr+"/"+path, body)
}
func (p rpcPeers) DoRPC(req *http.Request) (*http.Response, error) { return p.client.Do(req) }

// forwardCaller is a router that forwards every call of fn to the peer at url.
func forwardCaller(peers Peers, fn *structs.Function, url string) *Router {
	r := NewRouter(RouterConfig{Local: &hereLocal{}, Peers: peers})
	r.reports["peer"] = peerReport{addr: url, at: time.Now().Add(time.Hour),
		p: invoke.Placement{Warm: map[string]int{invoke.WarmKey(fn, "$LATEST"): 1}}}
	return r
}

// hereLocal is a full node: its invocations (the router's fallback) answer ranHere.
type hereLocal struct{ fakeLocal }

const ranHere = "ran on the caller's node"

func (*hereLocal) Invoke(context.Context, *structs.Function, *invoke.Request) (*invoke.Response, error) {
	return &invoke.Response{Payload: []byte(ranHere), ExecutedVersion: ranHere}, nil
}

// forwardPeer is a peer's RPC server running ServeInvoke for one function, whose invocations
// return the stream the test gives.
type forwardPeer struct {
	url   string
	fn    *structs.Function
	peers rpcPeers

	mu  sync.Mutex
	src invoke.Stream
}

func newForwardPeer(tb testing.TB) *forwardPeer {
	p := &forwardPeer{fn: &structs.Function{Name: "fn", RevisionID: "r1", Timeout: 10 * time.Second}, peers: newRPCPeers(tb)}
	peer := NewRouter(RouterConfig{Local: p, Peers: fakePeers{"peer"}, State: oneFunction{p.fn}})
	srv := httptest.NewServer(http.HandlerFunc(peer.ServeInvoke))
	tb.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// invoke runs an invocation that streams src on the peer through a caller's router, and
// returns the caller's stream.
func (p *forwardPeer) invoke(t *testing.T, src invoke.Stream) invoke.Stream {
	t.Helper()
	p.mu.Lock()
	p.src = src
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	resp, err := forwardCaller(p.peers, p.fn, p.url).Invoke(ctx, p.fn, &invoke.Request{RequestID: "id", Payload: []byte(`{}`),
		Version: "$LATEST", AcceptStream: true, Tail: true})
	if err != nil || resp.Stream == nil {
		t.Fatalf("forwarded invocation: %v %+v", err, resp)
	}
	return resp.Stream
}

func (p *forwardPeer) Invoke(context.Context, *structs.Function, *invoke.Request) (*invoke.Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &invoke.Response{Stream: p.src, ExecutedVersion: "$LATEST"}, nil
}
func (p *forwardPeer) Idle(*structs.Function, string) int { return 0 }
func (p *forwardPeer) Free() int                          { return 0 }
func (p *forwardPeer) Placement() invoke.Placement        { return invoke.Placement{} }
func (p *forwardPeer) ProvisionedStatus(string, string) (int, string) {
	return 0, ""
}

// TestForwardUnavailableAnswers: a peer that cannot run a forwarded call says so in the node
// RPC's error shape (or, a node of the release before, only with the header); either way the
// call runs on the caller's node. Any other error answer fails the call with the peer's text.
func TestForwardUnavailableAnswers(t *testing.T) {
	fn := &structs.Function{Name: "fn", RevisionID: "r1", Timeout: 10 * time.Second}
	for name, tc := range map[string]struct {
		answer  func(http.ResponseWriter)
		runHere bool
	}{
		"kind": {func(w http.ResponseWriter) {
			cluster.WriteRPCError(w, http.StatusServiceUnavailable, cluster.KindUnavailable, "full")
		}, true},
		"header": {func(w http.ResponseWriter) {
			w.Header().Set(hUnavailable, "1")
			http.Error(w, "full", http.StatusServiceUnavailable)
		}, true},
		"other": {func(w http.ResponseWriter) {
			cluster.WriteRPCError(w, http.StatusInternalServerError, cluster.KindOther, "the peer broke")
		}, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.answer(w) }))
		resp, err := forwardCaller(newRPCPeers(t), fn, srv.URL).Invoke(context.Background(), fn,
			&invoke.Request{RequestID: "id", Payload: []byte(`{}`), Version: "$LATEST"})
		srv.Close()
		switch {
		case tc.runHere && (err != nil || string(resp.Payload) != ranHere):
			t.Errorf("%s: %v %+v, want the call run here", name, err, resp)
		case !tc.runHere && (err == nil || !strings.Contains(err.Error(), "the peer broke")):
			t.Errorf("%s: %v, want the peer's error", name, err)
		}
	}
}

// traceLocal records the trace header of each invocation it runs.
type traceLocal struct {
	fakeLocal
	mu     sync.Mutex
	traces []string
}

func (l *traceLocal) Invoke(_ context.Context, _ *structs.Function, req *invoke.Request) (*invoke.Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.traces = append(l.traces, req.TraceID)
	return &invoke.Response{Payload: []byte(`{}`), ExecutedVersion: "$LATEST"}, nil
}

// TestForwardTraceChecked: a forwarded call's trace header is checked again on the peer: a
// valid one runs as it came, anything else (a hostile header on the node RPC) is replaced by a
// new one.
func TestForwardTraceChecked(t *testing.T) {
	fn := &structs.Function{Name: "fn", RevisionID: "r1", Timeout: 10 * time.Second}
	local := &traceLocal{}
	peer := NewRouter(RouterConfig{Local: local, Peers: fakePeers{"peer"}, State: oneFunction{fn}})
	srv := httptest.NewServer(http.HandlerFunc(peer.ServeInvoke))
	defer srv.Close()
	const good = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	for _, trace := range []string{good, "Root=1-5759e988;Evil=\"x\"", ""} {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{}`))
		for k, v := range map[string]string{hFunction: "fn", hVersion: "$LATEST", hRevision: "r1", hRequestID: "id", hTrace: trace} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(local.traces) != 3 || local.traces[0] != good {
		t.Fatalf("traces %q, want the valid one kept", local.traces)
	}
	for _, got := range local.traces[1:] {
		if !invoke.ValidXRay(got) || strings.Contains(got, "Evil") {
			t.Errorf("a malformed forwarded trace ran as %q, want a new one", got)
		}
	}
}
