package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// Placement in a cluster: the Router is the Invoker the gateway calls. It runs an invocation on
// this node when an environment of the version is idle (or finishing) here; else on a peer that
// reported warm ones (started, idle or busy: the version's calls keep going where its
// environments are); else here when this node can start one; else on the peer with the most
// room. (Starting here when there is room keeps a function's environments where its calls
// arrive, and spares the hop.) A forwarded invocation goes over the
// node RPC (mutual TLS when configured) and its response, streamed or whole, comes back the same
// way, a stream piece by piece as the function writes it. Peers report their warm environments
// and free capacity to each other every ReportInterval; a report older than reportTTL is ignored.
//
// A call of a function without a reservation that finds this node's share of max_concurrency
// taken is not throttled while a peer's share has room: InvokeElsewhere forwards it to such a
// peer, which counts it against its own share (or refuses it, and the next peer is asked).

// LocalInvoker is this node's sandbox as the router uses it.
type LocalInvoker interface {
	Invoker
	Idle(fn *structs.Function, version string) int
	Free() int
	Placement() invoke.Placement
	ProvisionedStatus(function, version string) (ready int, failure string)
}

// Peers is the cluster as the router sees it (cluster.Node implements it).
type Peers interface {
	ID() string
	Members() ([]cluster.Member, error)
	NewRPCRequest(ctx context.Context, addr, method, path string, body io.Reader) (*http.Request, error)
	DoRPC(req *http.Request) (*http.Response, error)
}

// Functions reads function versions from the local replicated state.
type Functions interface {
	Function(name string) (*structs.Function, bool)
	Version(name, number string) (*structs.Function, bool)
}

// RouterConfig configures a Router.
type RouterConfig struct {
	Local  LocalInvoker
	Peers  Peers
	State  Functions
	Logger hclog.Logger
	// Tracer records the forward phase as a span and continues a peer's trace (its traceparent)
	// in the calls it forwards here; nil when tracing is off.
	Tracer invoke.Tracer
}

// ReportInterval is how often a node tells its peers what it has idle and free.
const ReportInterval = 250 * time.Millisecond

// reportTTL is how long a peer's report is trusted: a node that stopped reporting (gone,
// partitioned) gets no forwarded calls.
const reportTTL = 1500 * time.Millisecond

// Pool is this node's share of the unreserved concurrency (the gateway's), as the router
// offers it to peers whose own share is full.
type Pool interface {
	// PoolFree is how many more calls of functions without a reservation this node admits
	// now; -1: no limit.
	PoolFree() int
	// AdmitUnreserved counts a peer's call of fn against this node's share, or refuses it
	// (the share is full, or fn has a reservation).
	AdmitUnreserved(fn string) (release func(), ok bool)
}

// Router places invocations on this node or a peer.
type Router struct {
	cfg    RouterConfig
	logger hclog.Logger

	mu      sync.Mutex
	reports map[string]peerReport // by node ID
	pool    Pool
}

type peerReport struct {
	addr     string
	at       time.Time
	p        invoke.Placement
	poolFree int
}

// report is what a node sends its peers.
type report struct {
	ID        string           `json:"id"`
	Address   string           `json:"address"`
	Placement invoke.Placement `json:"placement"`
	// PoolFree is the room in the node's unreserved share (-1: no limit); nil from a node
	// that shares none (a release before it, or no Pool set yet).
	PoolFree *int `json:"pool_free,omitempty"`
}

// SetPool gives the router this node's unreserved share, to report and to admit peers' calls
// against. The gateway is made after the router (it invokes through it), hence a setter.
func (r *Router) SetPool(p Pool) {
	r.mu.Lock()
	r.pool = p
	r.mu.Unlock()
}

func (r *Router) getPool() Pool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pool
}

// NewRouter returns a router; Run sends this node's reports.
func NewRouter(cfg RouterConfig) *Router {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Router{cfg: cfg, logger: cfg.Logger.Named("router"), reports: map[string]peerReport{}}
}

// errPeerUnavailable means a forwarded call did not start on the peer: it runs here instead.
var errPeerUnavailable = errors.New("the peer cannot run the invocation")

// Invoke runs req here or on a peer (see the package comment above).
func (r *Router) Invoke(ctx context.Context, fn *structs.Function, req *invoke.Request) (*invoke.Response, error) {
	if r.cfg.Local.Idle(fn, req.Version) > 0 {
		return r.cfg.Local.Invoke(ctx, fn, req)
	}
	id, addr := r.pick(fn, req.Version)
	if addr == "" {
		return r.cfg.Local.Invoke(ctx, fn, req)
	}
	resp, err := r.forward(ctx, addr, fn, req, false)
	if errors.Is(err, errPeerUnavailable) {
		r.logger.Debug("forwarding failed before the call started; running it here", "peer", id, "function", fn.Name, "error", err)
		r.forget(id)
		return r.cfg.Local.Invoke(ctx, fn, req)
	}
	return resp, err
}

// InvokeElsewhere runs a call of a function without a reservation, which this node's share of
// unreserved concurrency has no room for, on a peer that admits it against its own share: the
// live peers that reported room, the most first. invoke.ErrNoCapacity when none takes it.
func (r *Router) InvokeElsewhere(ctx context.Context, fn *structs.Function, req *invoke.Request) (*invoke.Response, error) {
	for _, p := range r.poolPeers() {
		resp, err := r.forward(ctx, p.addr, fn, req, true)
		if errors.Is(err, errPeerUnavailable) {
			r.logger.Debug("a peer did not take a call beyond this node's unreserved share", "peer", p.id, "function", fn.Name, "error", err)
			continue
		}
		return resp, err
	}
	return nil, invoke.ErrNoCapacity
}

type poolPeer struct {
	id, addr string
	free     int
}

// poolPeers are the peers whose fresh report has room in their unreserved share, the most room
// (no limit counting as most) first.
func (r *Router) poolPeers() []poolPeer {
	now := time.Now()
	r.mu.Lock()
	var out []poolPeer
	for id, rep := range r.reports {
		if now.Sub(rep.at) <= reportTTL && rep.poolFree != 0 {
			free := rep.poolFree
			if free < 0 {
				free = math.MaxInt
			}
			out = append(out, poolPeer{id: id, addr: rep.addr, free: free})
		}
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].free > out[j].free || out[i].free == out[j].free && out[i].id < out[j].id
	})
	return out
}

// pick returns the peer to forward to, or "" to run here: a fresh report with warm environments
// of the version (the most), else, when this node is full, the peer with the most free room.
func (r *Router) pick(fn *structs.Function, version string) (id, addr string) {
	key := invoke.WarmKey(fn, version)
	now := time.Now()
	localFree := r.cfg.Local.Free()
	r.mu.Lock()
	defer r.mu.Unlock()
	bestWarm, bestFree, freeID, freeAddr := 0, 0, "", ""
	for pid, rep := range r.reports {
		if now.Sub(rep.at) > reportTTL {
			continue
		}
		if w := rep.p.Warm[key]; w > bestWarm {
			bestWarm, id, addr = w, pid, rep.addr
		}
		if rep.p.Free > bestFree {
			bestFree, freeID, freeAddr = rep.p.Free, pid, rep.addr
		}
	}
	if addr != "" || localFree > 0 {
		return id, addr
	}
	return freeID, freeAddr
}

func (r *Router) forget(id string) {
	r.mu.Lock()
	delete(r.reports, id)
	r.mu.Unlock()
}

// Run sends this node's report to every other member each ReportInterval until ctx ends.
func (r *Router) Run(ctx context.Context) {
	t := time.NewTicker(ReportInterval)
	defer t.Stop()
	inflight := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		members, err := r.cfg.Peers.Members()
		if err != nil {
			continue
		}
		var self string
		for _, m := range members {
			if m.ID == r.cfg.Peers.ID() {
				self = m.Address
			}
		}
		rep := report{ID: r.cfg.Peers.ID(), Address: self, Placement: r.cfg.Local.Placement()}
		if p := r.getPool(); p != nil {
			free := p.PoolFree()
			rep.PoolFree = &free
		}
		body, err := json.Marshal(rep)
		if err != nil {
			continue
		}
		for _, m := range members {
			mu.Lock()
			busy := m.ID == r.cfg.Peers.ID() || inflight[m.ID]
			if !busy {
				inflight[m.ID] = true
			}
			mu.Unlock()
			if busy {
				continue
			}
			wg.Add(1)
			go func(m cluster.Member) {
				defer wg.Done()
				defer func() { mu.Lock(); delete(inflight, m.ID); mu.Unlock() }()
				rctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				req, err := r.cfg.Peers.NewRPCRequest(rctx, m.Address, "POST", "report", bytes.NewReader(body))
				if err != nil {
					return
				}
				resp, err := r.cfg.Peers.DoRPC(req)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}(m)
		}
	}
}

// ServeReport stores a peer's report (the node RPC's POST report).
func (r *Router) ServeReport(w http.ResponseWriter, req *http.Request) {
	var rep report
	if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&rep); err != nil || rep.ID == "" || rep.Address == "" {
		cluster.WriteRPCError(w, http.StatusBadRequest, cluster.KindInvalid, "a report names its node and address")
		return
	}
	poolFree := 0 // a node that reports no share takes no call beyond another's
	if rep.PoolFree != nil {
		poolFree = *rep.PoolFree
	}
	r.mu.Lock()
	r.reports[rep.ID] = peerReport{addr: rep.Address, at: time.Now(), p: rep.Placement, poolFree: poolFree}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Headers of a forwarded invocation.
const (
	hFunction     = "Gateway-Function"
	hVersion      = "Gateway-Version"
	hRevision     = "Gateway-Revision"
	hRequestID    = "Gateway-Request-Id"
	hARN          = "Gateway-Invoked-Arn"
	hClientCtx    = "Gateway-Client-Context"
	hTrace        = "Gateway-Trace-Id"
	hTraceparent  = "Traceparent" // the forward span's, when tracing is on
	hAcceptStream = "Gateway-Accept-Stream"
	hTail         = "Gateway-Log-Tail"
	hKind         = "Gateway-Response"
	// hAdmitPool asks the peer to count the call against its own unreserved share (a call
	// beyond the share of the node it came to), and to refuse it when that share is full.
	hAdmitPool = "Gateway-Admit-Pool"
	// hUnavailable marks an unavailable answer for nodes of the release before the node RPC's
	// error kinds (cluster.KindUnavailable), during a rolling upgrade.
	hUnavailable = "Gateway-Unavailable"
)

// forwardedResponse is a whole response of a forwarded invocation.
type forwardedResponse struct {
	Payload         []byte `json:"payload,omitempty"`
	FunctionError   bool   `json:"function_error,omitempty"`
	ErrorType       string `json:"error_type,omitempty"`
	ExecutedVersion string `json:"executed_version,omitempty"`
	ContentType     string `json:"content_type,omitempty"`
	LogTail         []byte `json:"log_tail,omitempty"`
}

// maxForwardedWhole bounds a whole forwarded response: a payload within the synchronous limit
// and a log tail, base64 in JSON, take less; a peer cannot make this node buffer more.
const maxForwardedWhole = 2*structs.MaxSyncPayloadBytes + 1<<20

// A peer answers a forwarded call within forwardAckTimeout of receiving it: with its response,
// or, while the function still runs, with a 102 Processing sent after forwardAckAfter. A peer
// that says nothing is cut off or stuck (a kept-alive connection into a partition takes the
// request without a word): the call is taken back and runs here.
const (
	forwardAckAfter   = 200 * time.Millisecond
	forwardAckTimeout = 2 * time.Second
	// forwardGrace is how long past the function's timeout a forwarded call may take to end.
	forwardGrace = 10 * time.Second
)

// errNoAck is why a forwarded call was taken back from a silent peer.
var errNoAck = errors.New("the peer did not acknowledge the call in time")

// cancelOnClose ends a forwarded call's context when its streamed body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error { err := c.ReadCloser.Close(); c.cancel(); return err }

// forward runs req on the peer at addr, admitted against the peer's unreserved share when
// admitPool. errPeerUnavailable means it did not start there.
func (r *Router) forward(ctx context.Context, addr string, fn *structs.Function, req *invoke.Request, admitPool bool) (out *invoke.Response, err error) {
	ctx, cancelDeadline := context.WithTimeout(ctx, fn.Timeout+forwardGrace)
	ctx, cancel := context.WithCancelCause(ctx)
	keep := false // a streamed response's body keeps the context until it is closed
	defer func() {
		if !keep {
			cancel(nil)
			cancelDeadline()
		}
	}()
	// The ack timer starts once the request is written; the peer's first response byte (a 1xx
	// or its answer) stops it. No goroutine: forwarding is on the invocation path.
	var mu sync.Mutex
	var ackTimer *time.Timer
	acked := false
	ack := func() {
		mu.Lock()
		acked = true
		if ackTimer != nil {
			ackTimer.Stop()
		}
		mu.Unlock()
	}
	defer ack()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			mu.Lock()
			if !acked {
				ackTimer = time.AfterFunc(forwardAckTimeout, func() { cancel(errNoAck) })
			}
			mu.Unlock()
		},
		Got1xxResponse:       func(int, textproto.MIMEHeader) error { ack(); return nil },
		GotFirstResponseByte: ack,
	})
	hreq, err := r.cfg.Peers.NewRPCRequest(ctx, addr, "POST", "invoke", bytes.NewReader(req.Payload))
	if err != nil {
		return nil, err
	}
	h := hreq.Header
	h.Set(hFunction, fn.Name)
	h.Set(hVersion, req.Version)
	h.Set(hRevision, fn.RevisionID)
	h.Set(hRequestID, req.RequestID)
	h.Set(hARN, req.InvokedFunctionARN)
	h.Set(hTrace, req.TraceID)
	if t := r.cfg.Tracer; t != nil {
		var sp invoke.Span
		_, sp = t.Start(ctx, invoke.PhaseForward, invoke.SpanInfo{TraceID: req.TraceID, RequestID: req.RequestID, Function: fn.Name, Version: req.Version})
		// The peer's spans are this one's children: W3C's header carries its id.
		h.Set(hTraceparent, sp.Traceparent())
		defer func() {
			errType := ""
			switch {
			case err != nil:
				errType = "Gateway.ForwardFailed"
			case out != nil && out.FunctionError:
				errType = out.ErrorType
			}
			sp.End(errType)
		}()
	}
	if req.ClientContext != "" {
		h.Set(hClientCtx, base64.StdEncoding.EncodeToString([]byte(req.ClientContext)))
	}
	h.Set(hAcceptStream, strconv.FormatBool(req.AcceptStream))
	h.Set(hTail, strconv.FormatBool(req.Tail))
	if admitPool {
		h.Set(hAdmitPool, "1")
	}
	resp, err := r.cfg.Peers.DoRPC(hreq)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w: %v", errPeerUnavailable, err)
		}
		if errors.Is(context.Cause(ctx), errNoAck) {
			// Cancelling closed the connection, so the peer (should the call have reached it
			// after all) cancels it too.
			r.logger.Warn("a peer took a forwarded call without a word; running it here", "peer", addr, "function", fn.Name)
			return nil, fmt.Errorf("%w: %v", errPeerUnavailable, errNoAck)
		}
		return nil, fmt.Errorf("forwarding the invocation to %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		re := cluster.ReadRPCError(resp)
		resp.Body.Close()
		if re.Kind == cluster.KindUnavailable || resp.Header.Get(hUnavailable) != "" {
			return nil, fmt.Errorf("%w: %s", errPeerUnavailable, re.Message)
		}
		return nil, fmt.Errorf("the invocation forwarded to %s failed: %s: %w", addr, resp.Status, re)
	}
	if resp.Header.Get(hKind) == "stream" {
		keep = true
		body := cancelOnClose{resp.Body, func() { cancel(nil); cancelDeadline() }}
		st := newRemoteStream(resp.Header.Get("Content-Type"), body, resp.Trailer)
		return &invoke.Response{Stream: st, ExecutedVersion: req.Version}, nil
	}
	defer resp.Body.Close()
	var fr forwardedResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxForwardedWhole)).Decode(&fr); err != nil {
		return nil, fmt.Errorf("reading the response forwarded from %s: %w", addr, err)
	}
	return &invoke.Response{Payload: fr.Payload, FunctionError: fr.FunctionError, ErrorType: fr.ErrorType,
		ExecutedVersion: fr.ExecutedVersion, ContentType: fr.ContentType, LogTail: fr.LogTail}, nil
}

// unavailable answers a forwarded call that cannot start here, so the caller's node runs it.
func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set(hUnavailable, "1")
	cluster.WriteRPCError(w, http.StatusServiceUnavailable, cluster.KindUnavailable, msg)
}

// ServeInvoke runs an invocation a peer forwarded (the node RPC's POST invoke), here, never
// forwarding it again.
func (r *Router) ServeInvoke(w http.ResponseWriter, hreq *http.Request) {
	h := hreq.Header
	name, version, rev := h.Get(hFunction), h.Get(hVersion), h.Get(hRevision)
	var fn *structs.Function
	var ok bool
	if version == structs.LatestVersion {
		fn, ok = r.cfg.State.Function(name)
	} else {
		fn, ok = r.cfg.State.Version(name, version)
	}
	if !ok || fn.RevisionID != rev {
		// This node's copy of the state is behind (or ahead): the caller's node runs it.
		unavailable(w, fmt.Sprintf("%s:%s revision %s is not in this node's state", name, version, rev))
		return
	}
	payload, err := io.ReadAll(io.LimitReader(hreq.Body, structs.MaxSyncPayloadBytes+1))
	if err != nil {
		cluster.WriteRPCError(w, http.StatusBadRequest, cluster.KindInvalid, "reading the forwarded event: "+err.Error())
		return
	}
	if h.Get(hAdmitPool) != "" {
		var release func()
		ok := false
		if p := r.getPool(); p != nil {
			release, ok = p.AdmitUnreserved(fn.Name)
		}
		if !ok {
			unavailable(w, "no unreserved concurrency left on "+r.cfg.Peers.ID())
			return
		}
		defer release() // a stream is written whole before ServeInvoke returns
	}
	cc, _ := base64.StdEncoding.DecodeString(h.Get(hClientCtx))
	trace := h.Get(hTrace)
	if !invoke.ValidXRay(trace) {
		trace = invoke.NewTraceID() // a peer sends a valid one; never pass on anything else
	}
	req := &invoke.Request{RequestID: h.Get(hRequestID), Payload: payload, InvokedFunctionARN: h.Get(hARN), Version: version,
		ClientContext: string(cc), TraceID: trace, AcceptStream: h.Get(hAcceptStream) == "true", Tail: h.Get(hTail) == "true"}
	// Tell the caller's node the call is here if it runs for a while (see forwardAckTimeout);
	// a quick call's own answer says so, without the extra write.
	var ackMu sync.Mutex
	answered := false
	ackTimer := time.AfterFunc(forwardAckAfter, func() {
		ackMu.Lock()
		defer ackMu.Unlock()
		if !answered {
			w.WriteHeader(http.StatusProcessing)
		}
	})
	ctx := hreq.Context()
	if t := r.cfg.Tracer; t != nil {
		ctx = t.Remote(ctx, h.Get(hTraceparent))
	}
	resp, err := r.cfg.Local.Invoke(ctx, fn, req)
	ackMu.Lock()
	answered = true
	ackMu.Unlock()
	ackTimer.Stop()
	switch {
	case errors.Is(err, invoke.ErrNoCapacity):
		unavailable(w, "no capacity on "+r.cfg.Peers.ID())
		return
	case errors.Is(err, invoke.ErrFileSystem):
		// This node cannot mount the function's file system (its agent file lacks it): the
		// caller's node runs the call, or says why it cannot either.
		unavailable(w, err.Error()+" ("+r.cfg.Peers.ID()+")")
		return
	case err != nil:
		cluster.WriteRPCError(w, http.StatusInternalServerError, cluster.KindOther, err.Error())
		return
	}
	if st := resp.Stream; st != nil {
		defer st.Close()
		w.Header().Set("Trailer", trailerErrorType+", "+trailerErrorBody+", "+trailerLogTail)
		w.Header().Set("Content-Type", st.ContentType())
		w.Header().Set(hKind, "stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		buf := make([]byte, 64<<10)
		for {
			n, rerr := st.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return // the caller's node went away: Close cancels the invocation
				}
				if rc.Flush() != nil {
					return
				}
			}
			if rerr != nil {
				break
			}
		}
		// The names and line ends take the rest of what the caller's RPC client reads.
		for k, v := range forwardTrailers(hreq.Context(), st, cluster.MaxRPCTrailerBytes-1024) {
			w.Header()[k] = v
		}
		return
	}
	w.Header().Set(hKind, "whole")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(forwardedResponse{Payload: resp.Payload, FunctionError: resp.FunctionError, ErrorType: resp.ErrorType,
		ExecutedVersion: resp.ExecutedVersion, ContentType: resp.ContentType, LogTail: resp.LogTail})
}

// live lists the nodes serving now, by ID: this one and the peers whose report is fresh.
func (r *Router) live() []string {
	ids := []string{r.self()}
	now := time.Now()
	r.mu.Lock()
	for id, rep := range r.reports {
		if now.Sub(rep.at) <= reportTTL && id != ids[0] {
			ids = append(ids, id)
		}
	}
	r.mu.Unlock()
	sort.Strings(ids)
	return ids
}

func (r *Router) self() string {
	if r.cfg.Peers == nil {
		return ""
	}
	return r.cfg.Peers.ID()
}

// Share is this node's part of n provisioned environments of fn at version: n spread evenly
// over the live nodes, the remainder starting at a node chosen by the version's hash, so that
// versions with one environment each do not all land on the same node. When a node stops
// reporting, the others take its part over.
func (r *Router) Share(fn *structs.Function, version string, n int) int {
	ids := r.live()
	idx := sort.SearchStrings(ids, r.self())
	h := fnv.New32a()
	_, _ = h.Write([]byte(fn.Name + "\x00" + version))
	pos := (idx - int(h.Sum32()%uint32(len(ids))) + len(ids)) % len(ids)
	share := n / len(ids)
	if pos < n%len(ids) {
		share++
	}
	return share
}

// ProvisionedStatus is the cluster's readiness of a version's provisioned environments: this
// node's and those the live peers report.
func (r *Router) ProvisionedStatus(function, version string) (int, string) {
	ready, failure := r.cfg.Local.ProvisionedStatus(function, version)
	var fn *structs.Function
	if r.cfg.State != nil {
		fn, _ = r.cfg.State.Version(function, version)
	}
	if fn == nil {
		return ready, failure
	}
	key := invoke.WarmKey(fn, version)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rep := range r.reports {
		if now.Sub(rep.at) <= reportTTL {
			ready += rep.p.Provisioned[key]
		}
	}
	return ready, failure
}

// Owns says whether this node is the one of the live nodes that runs the work named key (a
// trigger's mapping): rendezvous hashing, so when a node goes or comes back only its own
// keys move.
func (r *Router) Owns(key string) bool {
	self := r.self()
	best, bestID := uint64(0), ""
	for _, id := range r.live() {
		h := fnv.New64a()
		_, _ = h.Write([]byte(id + "\x00" + key))
		if s := h.Sum64(); bestID == "" || s > best {
			best, bestID = s, id
		}
	}
	return bestID == self
}
