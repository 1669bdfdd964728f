package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lambdagw/gateway/internal/structs"
)

// The node RPC: HTTP/1.1 on the cluster port (see mux.go), between nodes only. Writes made on a
// follower are forwarded to the leader here and new nodes ask to join (routes); the agent adds
// code replication and invocation placement (HandleRPC, one table in internal/agent). Every
// route answers an error the same way: a status and {"err_kind", "error"} (WriteRPCError), as
// the HTTP API answers in Lambda's shape.

const rpcPrefix = "/v1/rpc/"

// maxRPCBody bounds a forwarded write (a log entry) or a join request.
const maxRPCBody = 8 << 20

// applyReply is the answer of a forwarded write: the log index it was committed at and the
// FSM's response, typed, or the error the FSM returned.
type applyReply struct {
	Index    uint64                `json:"index"`
	Function *structs.Function     `json:"function,omitempty"`
	URL      *structs.FunctionURL  `json:"url,omitempty"`
	Alias    *structs.Alias        `json:"alias,omitempty"`
	Trigger  *structs.Trigger      `json:"trigger,omitempty"`
	Layer    *structs.LayerVersion `json:"layer,omitempty"`
	// EventConfig and SigningConfig answer PutEventInvokeConfig and PutCodeSigningConfig.
	EventConfig   *structs.EventInvokeConfig `json:"event_config,omitempty"`
	SigningConfig *structs.CodeSigningConfig `json:"signing_config,omitempty"`
	ErrKind       string                     `json:"err_kind,omitempty"`
	Error         string                     `json:"error,omitempty"`
}

// Error kinds of the node RPC, so the calling node gets the sentinel its callers test for.
const (
	KindNotFound  = "not_found"
	KindConflict  = "conflict"
	KindExists    = "exists"
	KindNotLeader = "not_leader"
	KindInvalid   = "invalid"
	// KindUnavailable: the node cannot do it now (an invocation it has no room or state for);
	// the caller does it elsewhere.
	KindUnavailable = "unavailable"
	KindOther       = "other"
)

// ErrUnavailable is the sentinel of KindUnavailable.
var ErrUnavailable = errors.New("the node cannot do it now")

// RPCError is an error answer of the node RPC: the peer's status, kind and message. It wraps the
// sentinel of its kind.
type RPCError struct {
	Status  int
	Kind    string
	Message string
}

func (e *RPCError) Error() string { return e.Message }

func (e *RPCError) Unwrap() error {
	switch e.Kind {
	case KindNotFound:
		return ErrNotFound
	case KindConflict:
		return ErrConflict
	case KindExists:
		return ErrExists
	case KindNotLeader:
		return ErrNotLeader
	case KindInvalid:
		return ErrInvalid
	case KindUnavailable:
		return ErrUnavailable
	}
	return nil
}

// WriteRPCError answers a node RPC with an error, in the RPC's one shape.
func WriteRPCError(w http.ResponseWriter, status int, kind, msg string) {
	writeRPC(w, status, rpcError{ErrKind: kind, Error: msg})
}

// ReadRPCError reads the error a node RPC answered (a status other than 200), for a caller of
// DoRPC. An answer not in the RPC's shape (a proxy's, or a node of an older release) keeps its
// text; its kind follows from a 404 or a 400, never KindUnavailable: only a node's explicit
// answer may say that a call did not start there (running it elsewhere could run it twice).
func ReadRPCError(resp *http.Response) *RPCError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var re rpcError
	if json.Unmarshal(b, &re) == nil && re.Error != "" {
		return &RPCError{Status: resp.StatusCode, Kind: re.ErrKind, Message: re.Error}
	}
	kind := KindOther
	switch resp.StatusCode {
	case http.StatusNotFound:
		kind = KindNotFound
	case http.StatusBadRequest:
		kind = KindInvalid
	}
	msg := string(bytes.TrimSpace(b))
	if msg == "" {
		msg = resp.Status
	}
	return &RPCError{Status: resp.StatusCode, Kind: kind, Message: msg}
}

func errKind(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return KindNotFound
	case errors.Is(err, ErrConflict):
		return KindConflict
	case errors.Is(err, ErrExists):
		return KindExists
	case errors.Is(err, ErrNotLeader):
		return KindNotLeader
	case errors.Is(err, ErrInvalid):
		return KindInvalid
	case errors.Is(err, ErrUnavailable):
		return KindUnavailable
	}
	return KindOther
}

// joinRequest asks the leader to add a server.
type joinRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

// helloReply tells a node starting with bootstrap_expect who answers at an address.
type helloReply struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	HasState bool   `json:"has_state"`
	LeaderID string `json:"leader_id,omitempty"`
}

// rpcError is the body of an RPC that failed.
type rpcError struct {
	ErrKind string `json:"err_kind"`
	Error   string `json:"error"`
}

func writeRPC(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func rpcFail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, ErrNotLeader) {
		status = http.StatusConflict
	}
	writeRPC(w, status, rpcError{ErrKind: errKind(err), Error: err.Error()})
}

// RPCRoute is one route of the node RPC: a method and a net/http pattern under /v1/rpc/ (such
// as "code/{sha}").
type RPCRoute struct {
	Method  string
	Pattern string
	Handler http.HandlerFunc
}

// routes is the cluster's own part of the node RPC.
func (n *Node) routes() []RPCRoute {
	return []RPCRoute{
		{"POST", "apply", n.rpcApply},     // a write forwarded to the leader
		{"POST", "join", n.rpcJoin},       // a server joins (forwarded to the leader)
		{"POST", "remove", n.rpcRemove},   // a server leaves or is removed
		{"GET", "hello", n.rpcHello},      // who answers at an address (bootstrap_expect)
		{"POST", "restore", n.rpcRestore}, // a snapshot restored through the leader
	}
}

func (n *Node) registerRPC() { n.HandleRPC(n.routes()...) }

// HandleRPC adds routes to the node RPC.
func (n *Node) HandleRPC(routes ...RPCRoute) {
	for _, r := range routes {
		n.rpcMux.HandleFunc(r.Method+" "+rpcPrefix+r.Pattern, r.Handler)
	}
}

// rpcApply applies a log entry forwarded by a follower. Only the leader applies; anyone else
// answers not_leader and the follower looks for the leader again.
func (n *Node) rpcApply(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody))
	if err != nil {
		rpcFail(w, err)
		return
	}
	resp, index, err := n.applyLocal(r.Context(), data)
	reply := applyReply{Index: index}
	switch {
	case errors.Is(err, ErrNotLeader):
		rpcFail(w, err)
		return
	case err != nil:
		reply.ErrKind, reply.Error = errKind(err), err.Error()
	default:
		switch v := resp.(type) {
		case *structs.Function:
			reply.Function = v
		case *structs.FunctionURL:
			reply.URL = v
		case *structs.Alias:
			reply.Alias = v
		case *structs.Trigger:
			reply.Trigger = v
		case *structs.LayerVersion:
			reply.Layer = v
		case *structs.EventInvokeConfig:
			reply.EventConfig = v
		case *structs.CodeSigningConfig:
			reply.SigningConfig = v
		}
	}
	writeRPC(w, http.StatusOK, reply)
}

// rpcJoin adds a server: on the leader at once, elsewhere by forwarding to the leader.
func (n *Node) rpcJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRPCBody)).Decode(&req); err != nil || req.ID == "" || req.Address == "" {
		WriteRPCError(w, http.StatusBadRequest, KindInvalid, "a join request names the server's id and address")
		return
	}
	if err := n.addServer(r.Context(), req); err != nil {
		rpcFail(w, err)
		return
	}
	writeRPC(w, http.StatusOK, struct{}{})
}

// rpcRemove removes a server (leave, or an operator's removal), on the leader.
func (n *Node) rpcRemove(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRPCBody)).Decode(&req); err != nil || req.ID == "" {
		WriteRPCError(w, http.StatusBadRequest, KindInvalid, "a removal names the server's id")
		return
	}
	if err := n.removeServer(r.Context(), req.ID); err != nil {
		rpcFail(w, err)
		return
	}
	writeRPC(w, http.StatusOK, struct{}{})
}

func (n *Node) rpcHello(w http.ResponseWriter, r *http.Request) {
	_, leaderID := n.raft.LeaderWithID()
	writeRPC(w, http.StatusOK, helloReply{ID: n.cfg.NodeID, Address: n.cfg.AdvertiseAddr, HasState: n.hasState.Load(), LeaderID: string(leaderID)})
}

// call makes an RPC to the node at addr with in as JSON and decodes its JSON answer into out.
func (n *Node) call(ctx context.Context, addr, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	return n.callRaw(ctx, addr, method, path, body, out)
}

// callRaw is call with a body of raw bytes.
func (n *Node) callRaw(ctx context.Context, addr, method, path string, in []byte, out any) error {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+rpcPrefix+path, body)
	if err != nil {
		return err
	}
	resp, err := n.rpc.Do(req)
	if err != nil {
		return fmt.Errorf("calling %s at %s: %w", path, addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCBody))
	if err != nil {
		return fmt.Errorf("reading the answer of %s from %s: %w", path, addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var re rpcError
		if json.Unmarshal(b, &re) == nil && re.Error != "" {
			return &RPCError{Status: resp.StatusCode, Kind: re.ErrKind, Message: re.Error}
		}
		return fmt.Errorf("%s at %s answered %s: %s", path, addr, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding the answer of %s from %s: %w", path, addr, err)
		}
	}
	return nil
}

// Get opens an RPC GET on the node with the given Raft ID (for streams such as code blobs); the
// caller closes the body. A 404 is ErrNotFound.
func (n *Node) Get(ctx context.Context, addr, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+rpcPrefix+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.rpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling %s at %s: %w", path, addr, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	re := ReadRPCError(resp)
	if re.Kind == KindNotFound {
		return nil, ErrNotFound
	}
	return nil, fmt.Errorf("%s at %s answered %s: %w", path, addr, resp.Status, re)
}

// forward sends a log entry to the leader and waits until this node has applied it too, so a
// read here right after sees the write. It retries while there is no leader or the leader
// moves, but never resends an entry that may have reached a leader (it could apply twice).
func (n *Node) forward(ctx context.Context, data []byte) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, applyTimeout)
		defer cancel()
	}
	for {
		addr, _ := n.raft.LeaderWithID()
		var reply applyReply
		var err error
		switch {
		case addr == "":
			err = ErrNotLeader
		case string(addr) == n.cfg.AdvertiseAddr:
			// We became the leader meanwhile.
			resp, _, err := n.applyLocal(ctx, data)
			if !errors.Is(err, ErrNotLeader) {
				return resp, err
			}
		default:
			err = n.callRaw(ctx, string(addr), "POST", "apply", data, &reply)
		}
		if err == nil {
			if reply.ErrKind != "" {
				return nil, &RPCError{Status: http.StatusOK, Kind: reply.ErrKind, Message: reply.Error}
			}
			if err := n.waitApplied(ctx, reply.Index); err != nil {
				return nil, err
			}
			switch {
			case reply.Function != nil:
				return reply.Function, nil
			case reply.URL != nil:
				return reply.URL, nil
			case reply.Alias != nil:
				return reply.Alias, nil
			case reply.Trigger != nil:
				return reply.Trigger, nil
			case reply.Layer != nil:
				return reply.Layer, nil
			case reply.EventConfig != nil:
				return reply.EventConfig, nil
			case reply.SigningConfig != nil:
				return reply.SigningConfig, nil
			}
			return nil, nil
		}
		var op *net.OpError
		retry := errors.Is(err, ErrNotLeader) || (errors.As(err, &op) && op.Op == "dial")
		if !retry {
			if ctx.Err() != nil {
				// Sent, and no answer in time: the leader may have applied it or not.
				return nil, fmt.Errorf("forwarding a write to the leader: %w: %w", ErrNoAnswer, err)
			}
			return nil, fmt.Errorf("forwarding a write to the leader: %w", err)
		}
		select {
		case <-ctx.Done():
			if !errors.Is(err, ErrNotLeader) {
				err = fmt.Errorf("%w: %w", ErrNotLeader, err) // no leader reachable, whatever the last cause
			}
			return nil, fmt.Errorf("forwarding a write: no leader answered: %w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitApplied waits until the local FSM has applied the entry at index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for n.fsm.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for this node to apply entry %d: %w", index, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// addServer adds a voter: on the leader, or through it.
func (n *Node) addServer(ctx context.Context, req joinRequest) error {
	if n.raft.State() != raft.Leader {
		addr, _ := n.raft.LeaderWithID()
		if addr == "" {
			return &NotLeaderError{}
		}
		return n.call(ctx, string(addr), "POST", "join", req, nil)
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(req.ID) && s.Address == raft.ServerAddress(req.Address) {
			return nil // already a member
		}
		if s.ID == raft.ServerID(req.ID) || s.Address == raft.ServerAddress(req.Address) {
			// A node that came back with a new address, or an address taken over: replace.
			if err := n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("removing the old entry of %s: %w", s.ID, err)
			}
		}
	}
	if err := n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.Address), 0, 0).Error(); err != nil {
		return fmt.Errorf("adding %s at %s: %w", req.ID, req.Address, err)
	}
	n.logger.Info("server joined", "id", req.ID, "address", req.Address)
	return nil
}

// removeServer removes a server from the configuration: on the leader, or through it.
func (n *Node) removeServer(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		addr, _ := n.raft.LeaderWithID()
		if addr == "" {
			return &NotLeaderError{}
		}
		return n.call(ctx, string(addr), "POST", "remove", joinRequest{ID: id}, nil)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
		return fmt.Errorf("removing %s: %w", id, err)
	}
	n.logger.Info("server removed", "id", id)
	return nil
}

// FetchCode opens the code zip of sha from the first other member that has it (ErrNotFound when
// none does), for a node that lacks code it must run.
func (n *Node) FetchCode(ctx context.Context, sha string) (io.ReadCloser, error) {
	members, err := n.Members()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, m := range members {
		if m.ID == n.cfg.NodeID {
			continue
		}
		rc, err := n.Get(ctx, m.Address, "code/"+sha)
		if err == nil {
			return rc, nil
		}
		if !errors.Is(err, ErrNotFound) {
			errs = append(errs, fmt.Errorf("%s: %w", m.ID, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, fmt.Errorf("no other node holds code %s: %w", sha, ErrNotFound)
}

// NewRPCRequest makes a request to the node RPC of the node at addr, for DoRPC.
func (n *Node) NewRPCRequest(ctx context.Context, addr, method, path string, body io.Reader) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, method, "http://"+addr+rpcPrefix+path, body)
}

// DoRPC sends a request made by NewRPCRequest over the cluster's connections (mutual TLS when
// configured), kept alive between calls.
func (n *Node) DoRPC(req *http.Request) (*http.Response, error) { return n.rpc.Do(req) }
