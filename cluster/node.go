// Package cluster runs the node's hashicorp/raft instance: the replicated log (raft-boltdb),
// file snapshots, the cluster port (Raft and the node RPC on one TCP port, optionally mutual
// TLS), bootstrap and joining, typed writes (forwarded to the leader from a follower), and
// membership.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/lambdagw/gateway/cluster/fsm"
	"github.com/lambdagw/gateway/cluster/state"
	"github.com/lambdagw/gateway/internal/structs"
)

// Config configures a node.
type Config struct {
	NodeID        string // the Raft server ID (the agent's node_name)
	DataDir       string // Raft data lives in DataDir/raft
	BindAddr      string // the Raft transport, e.g. 127.0.0.1:9501
	AdvertiseAddr string // defaults to BindAddr
	Bootstrap     bool   // bootstrap a single-node cluster when there is no prior state
	// Join lists cluster addresses of other nodes; a node without state asks them to add it.
	Join []string
	// BootstrapExpect, when set, bootstraps a new cluster once that many nodes (this one and
	// those found at Join, all without state) know each other.
	BootstrapExpect int
	// DeadServerCleanup, when set, has the leader remove a server unreachable for that long
	// (keeping a majority); 0 keeps every server until it leaves.
	DeadServerCleanup time.Duration
	// ServerTLS and ClientTLS, when set, make every cluster connection mutual TLS.
	ServerTLS, ClientTLS *tls.Config
	Logger               hclog.Logger
}

// Errors of writes.
var (
	ErrNotLeader = errors.New("this node is not the Raft leader")
	// ErrNoAnswer is a write forwarded to the leader that got no answer in time: it may or may
	// not have been applied.
	ErrNoAnswer = errors.New("the leader did not answer in time")
	ErrNotFound = fsm.ErrNotFound
	ErrConflict = fsm.ErrConflict
	ErrExists   = fsm.ErrExists
	ErrInvalid  = fsm.ErrInvalid
)

// NotLeaderError says where the leader is, for forwarding.
type NotLeaderError struct{ LeaderID, LeaderAddr string }

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("not the leader (leader: %q at %q)", e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Node is a running Raft node.
type Node struct {
	cfg    Config
	logger hclog.Logger
	raft   *raft.Raft
	fsm    *fsm.FSM
	store  *raftboltdb.BoltStore
	trans  *raft.NetworkTransport

	mux    *muxListener
	rpcMux *http.ServeMux
	rpcSrv *http.Server
	rpc    *http.Client
	// hasState is set once the node belongs to a cluster (it has Raft state).
	hasState atomic.Bool
	// stop ends the background join and autopilot; joinDone and autopilotDone are closed
	// when they returned (nil when not started).
	stop          chan struct{}
	joinDone      chan struct{}
	autopilotDone chan struct{}
}

// applyTimeout bounds one write when the caller's context has no deadline.
const applyTimeout = 10 * time.Second

// Start opens the stores, starts Raft, bootstraps when asked and there is no prior state, and
// waits (bounded by ctx) until a leader is known and the log is applied, so a restarted node
// serves its functions at once.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.AdvertiseAddr == "" {
		cfg.AdvertiseAddr = cfg.BindAddr
	}
	logger := cfg.Logger.Named("raft")
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating raft dir: %w", err)
	}
	n := &Node{cfg: cfg, logger: logger, stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.close()
		}
	}()
	var err error
	n.store, err = raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("opening raft log store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, logger)
	if err != nil {
		return nil, fmt.Errorf("opening snapshot store: %w", err)
	}
	if _, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr); err != nil {
		return nil, fmt.Errorf("resolving cluster advertise address %s: %w", cfg.AdvertiseAddr, err)
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("listening on cluster address %s: %w", cfg.BindAddr, err)
	}
	n.mux = newMux(ln, cfg.ServerTLS, logger)
	d := &dialer{tls: cfg.ClientTLS}
	n.rpc = rpcClient(d)
	n.rpcMux = http.NewServeMux()
	n.registerRPC()
	n.rpcSrv = &http.Server{Handler: n.rpcMux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	go func() { _ = n.rpcSrv.Serve(n.mux.rpc) }()
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftLayer{subListener: n.mux.raft, d: d},
		MaxPool: 3, Timeout: 10 * time.Second, Logger: logger,
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	raftLog := newRaftLogger(logger, rc.LocalID)
	rc.Logger = raftLog
	// Quick elections on one node; still sane for several nodes on a LAN.
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	rc.SnapshotThreshold = 1024
	n.fsm = fsm.New(state.New(), cfg.Logger)

	has, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("checking for existing raft state: %w", err)
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("starting raft: %w", err)
	}
	raftLog.raft.Store(n.raft)
	n.hasState.Store(has)
	if !has && (cfg.Bootstrap || (cfg.BootstrapExpect == 1 && len(cfg.Join) == 0)) {
		if err := n.bootstrap([]raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(cfg.AdvertiseAddr)}}); err != nil {
			return nil, err
		}
	}
	if cfg.DeadServerCleanup > 0 {
		n.autopilotDone = make(chan struct{})
		go n.autopilot()
	}
	switch {
	case n.hasState.Load() && len(cfg.Join) > 0:
		// A member that may have been removed while it was down (dead server cleanup): if no
		// leader shows up it asks to be added again, in the background.
		n.joinDone = make(chan struct{})
		go n.rejoinLoop()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n.waitReady(wctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			logger.Warn("no leader yet; serving the state this node has while it rejoins", "error", err)
		}
	case n.hasState.Load():
		// A member (restarted, or just bootstrapped): serve its state once a leader is known.
		if err := n.waitReady(ctx); err != nil {
			return nil, err
		}
	case len(cfg.Join) > 0:
		// Joining may wait for other nodes to start: do it in the background so the agent
		// serves (and says what it waits for) meanwhile.
		n.joinDone = make(chan struct{})
		go n.joinLoop()
	default:
		logger.Warn("this node is not in a cluster: join one with `gateway cluster join ADDR`, or set cluster { join } or bootstrap")
	}
	ok = true
	return n, nil
}

// rejoinLoop asks the Join addresses to add this node again whenever it has known no leader
// for a few seconds: the cluster may have removed it while it was down (dead server cleanup).
// Asking while still a member changes nothing.
func (n *Node) rejoinLoop() {
	defer close(n.joinDone)
	lastLeader := time.Now()
	for {
		select {
		case <-n.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			lastLeader = time.Now()
			continue
		}
		if time.Since(lastLeader) < 3*time.Second {
			continue
		}
		self := joinRequest{ID: n.cfg.NodeID, Address: n.cfg.AdvertiseAddr}
		for _, addr := range n.cfg.Join {
			if addr == n.cfg.AdvertiseAddr {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := n.call(ctx, addr, "POST", "join", self, nil)
			cancel()
			if err == nil {
				n.logger.Info("asked the cluster to add this node again", "via", addr)
				break
			}
		}
		lastLeader = time.Now() // the next attempt after another quiet spell
	}
}

// joinLoop tries Join (or BootstrapExpect) every second until the node is in a cluster.
func (n *Node) joinLoop() {
	defer close(n.joinDone)
	var last string
	for !n.hasState.Load() {
		err := n.tryJoin(context.Background())
		if err == nil {
			return
		}
		if msg := err.Error(); msg != last {
			n.logger.Info("not in a cluster yet; retrying every second", "join", n.cfg.Join, "reason", msg)
			last = msg
		}
		select {
		case <-n.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

func (n *Node) bootstrap(servers []raft.Server) error {
	f := n.raft.BootstrapCluster(raft.Configuration{Servers: servers})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrapping the cluster: %w", err)
	}
	n.hasState.Store(true)
	return nil
}

// waitReady waits for a leader and, on the leader, for the log to be applied (a barrier).
func (n *Node) waitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a raft leader: %w", ctx.Err())
		case <-t.C:
		}
	}
	if n.raft.State() == raft.Leader {
		if err := n.raft.Barrier(applyTimeout).Error(); err != nil {
			return fmt.Errorf("applying the raft log: %w", err)
		}
	}
	return nil
}

// tryJoin asks each Join address to add this node; with BootstrapExpect, when none of them
// belongs to a cluster yet, it bootstraps one once enough nodes answered.
func (n *Node) tryJoin(ctx context.Context) error {
	self := joinRequest{ID: n.cfg.NodeID, Address: n.cfg.AdvertiseAddr}
	found := map[string]string{n.cfg.NodeID: n.cfg.AdvertiseAddr}
	var lastErr error
	for _, addr := range n.cfg.Join {
		if addr == n.cfg.AdvertiseAddr {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var hello helloReply
		err := n.call(cctx, addr, "GET", "hello", nil, &hello)
		if err == nil && (hello.HasState || hello.LeaderID != "") {
			err = n.call(cctx, addr, "POST", "join", self, nil)
			cancel()
			if err == nil {
				n.logger.Info("joined the cluster", "via", addr)
				n.hasState.Store(true)
				return nil
			}
			lastErr = err
			continue
		}
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		found[hello.ID] = hello.Address
	}
	if n.cfg.BootstrapExpect > 0 && len(found) >= n.cfg.BootstrapExpect {
		// Every node computes the same configuration from the same answers, and Raft accepts an
		// identical bootstrap on each.
		ids := make([]string, 0, len(found))
		for id := range found {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		servers := make([]raft.Server, 0, len(ids))
		for _, id := range ids {
			servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(found[id])})
		}
		n.logger.Info("bootstrapping the cluster", "servers", ids)
		return n.bootstrap(servers)
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%d of the %d expected nodes found", len(found), n.cfg.BootstrapExpect)
	}
	return lastErr
}

// Join asks the node at addr (any member) to add this node, for `gateway cluster join`.
func (n *Node) Join(ctx context.Context, addr string) error {
	if err := n.call(ctx, addr, "POST", "join", joinRequest{ID: n.cfg.NodeID, Address: n.cfg.AdvertiseAddr}, nil); err != nil {
		return fmt.Errorf("joining through %s: %w", addr, err)
	}
	n.hasState.Store(true)
	return nil
}

// Leave removes this node from the cluster's configuration (through the leader). A leader
// hands leadership over first, so the rest keep a leader.
func (n *Node) Leave(ctx context.Context) error {
	if n.raft.State() == raft.Leader {
		if err := n.raft.LeadershipTransfer().Error(); err != nil && !errors.Is(err, raft.ErrNotLeader) {
			n.logger.Warn("transferring leadership before leaving", "error", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for n.raft.State() == raft.Leader && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return n.removeServer(ctx, n.cfg.NodeID)
}

// Member is a server of the cluster's configuration.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

// Members lists the servers of the Raft configuration, by ID.
func (n *Node) Members() ([]Member, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, fmt.Errorf("reading the raft configuration: %w", err)
	}
	_, leader := n.raft.LeaderWithID()
	var out []Member
	for _, s := range cf.Configuration().Servers {
		out = append(out, Member{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ID is this node's Raft server ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// State is the local copy of the replicated state (reads never go to the leader).
func (n *Node) State() *state.Store { return n.fsm.State() }

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's ID and Raft address.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// CaughtUp waits (bounded by ctx) until this node knows a leader and has applied every entry
// committed when it was called. It fails at once without a leader: a node cut off from the
// cluster cannot tell what its state lacks.
func (n *Node) CaughtUp(ctx context.Context) error {
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return errors.New("no Raft leader known")
	}
	commit := n.raft.CommitIndex()
	for n.raft.AppliedIndex() < commit {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for this node to apply entry %d: %w", commit, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Stats are Raft's counters, for the status endpoint.
func (n *Node) Stats() map[string]string { return n.raft.Stats() }

// Snapshot forces a snapshot (tests, operators).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Function, Functions, FunctionURL and FunctionURLs read the local copy of the replicated
// state: reads never go to the leader.
func (n *Node) Function(name string) (*structs.Function, bool) { return n.State().Function(name) }

func (n *Node) Functions() []*structs.Function { return n.State().Functions() }

func (n *Node) FunctionURL(id string) (*structs.FunctionURL, bool) { return n.State().FunctionURL(id) }

func (n *Node) FunctionURLs(fn string) []*structs.FunctionURL { return n.State().FunctionURLs(fn) }

// PutFunction creates or replaces a function through the log and returns the stored value.
func (n *Node) PutFunction(ctx context.Context, fn *structs.Function, expectRevision string) (*structs.Function, error) {
	return applyAs[structs.Function](ctx, n, fsm.PutFunctionType, fsm.PutFunction{Function: fn, ExpectRevision: expectRevision})
}

// PutFunctionWithCodeSigning creates or replaces a function and attaches a code signing
// configuration to it in one entry (see fsm.PutFunction).
func (n *Node) PutFunctionWithCodeSigning(ctx context.Context, fn *structs.Function, config string) (*structs.Function, error) {
	return applyAs[structs.Function](ctx, n, fsm.PutFunctionType, fsm.PutFunction{Function: fn, CodeSigningConfig: config})
}

// DeleteFunction removes a function through the log.
func (n *Node) DeleteFunction(ctx context.Context, name string) error {
	_, err := n.apply(ctx, fsm.DeleteFunctionType, fsm.DeleteFunction{Name: name})
	return err
}

// PutFunctionURL creates (create), replaces (update) or upserts a function URL through the log.
func (n *Node) PutFunctionURL(ctx context.Context, u *structs.FunctionURL, create, update bool) (*structs.FunctionURL, error) {
	return applyAs[structs.FunctionURL](ctx, n, fsm.PutFunctionURLType, fsm.PutFunctionURL{URL: u, Create: create, Update: update})
}

// Version returns a published version of a function.
func (n *Node) Version(name, number string) (*structs.Function, bool) {
	return n.State().Version(name, number)
}

// Versions returns a function's published versions, oldest first.
func (n *Node) Versions(name string) []*structs.Function { return n.State().Versions(name) }

// PublishVersion publishes a function's $LATEST through the log (see fsm.PublishVersion).
func (n *Node) PublishVersion(ctx context.Context, name, description, expectRevision, codeSha256 string) (*structs.Function, error) {
	return applyAs[structs.Function](ctx, n, fsm.PublishVersionType, fsm.PublishVersion{Name: name, Description: description,
		ExpectRevision: expectRevision, CodeSha256: codeSha256})
}

// ReservedConcurrency returns a function's reserved concurrency, if it has one.
func (n *Node) ReservedConcurrency(fn string) (int, bool) { return n.State().ReservedConcurrency(fn) }

// ReservedTotal is the sum of every function's reserved concurrency.
func (n *Node) ReservedTotal() int { return n.State().ReservedTotal() }

// PutConcurrency sets (reserved non-nil) or removes a function's reserved concurrency.
func (n *Node) PutConcurrency(ctx context.Context, fn string, reserved *int) error {
	_, err := n.apply(ctx, fsm.PutConcurrencyType, fsm.PutConcurrency{Name: fn, Reserved: reserved})
	return err
}

// PolicyStatements returns the policy statements of a function's qualifier.
func (n *Node) PolicyStatements(fn, qualifier string) []*structs.PolicyStatement {
	return n.State().PolicyStatements(fn, qualifier)
}

// AddPolicyStatement adds a policy statement through the log.
func (n *Node) AddPolicyStatement(ctx context.Context, st *structs.PolicyStatement) error {
	_, err := n.apply(ctx, fsm.AddPolicyType, fsm.AddPolicy{Statement: st})
	return err
}

// RemovePolicyStatement removes a policy statement through the log.
func (n *Node) RemovePolicyStatement(ctx context.Context, fn, qualifier, sid string) error {
	_, err := n.apply(ctx, fsm.RemovePolicyType, fsm.RemovePolicy{Function: fn, Qualifier: qualifier, Sid: sid})
	return err
}

// Clustered reports whether the configuration has more than one server.
func (n *Node) Clustered() bool {
	cf := n.raft.GetConfiguration()
	return cf.Error() == nil && len(cf.Configuration().Servers) > 1
}

// Leases returns a function's concurrency leases.
func (n *Node) Leases(fn string) []*structs.Lease { return n.State().Leases(fn) }

// AskIdleSlots asks every other node that holds slots of fn's reserved concurrency to give back
// those it does not use (the "lease/idle" RPC, which the agent hands to the gateway), and
// returns once each answered or ctx ended.
func (n *Node) AskIdleSlots(ctx context.Context, fn string) {
	members, err := n.Members()
	if err != nil {
		return
	}
	addr := map[string]string{}
	for _, m := range members {
		addr[m.ID] = m.Address
	}
	var wg sync.WaitGroup
	for _, l := range n.State().Leases(fn) {
		a, ok := addr[l.Node]
		if l.Node == n.cfg.NodeID || l.Slots == 0 || !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.call(ctx, a, "POST", "lease/idle?function="+url.QueryEscape(fn), nil, nil); err != nil {
				n.logger.Debug("asking a node for idle reserved concurrency", "node", l.Node, "function", fn, "error", err)
			}
		}()
	}
	wg.Wait()
}

// PutLease asks for slots of a function's reserved concurrency for this node until ttl from now
// (this node's clock), or gives its lease back with no slots. ErrConflict: not that many free.
func (n *Node) PutLease(ctx context.Context, fn string, slots int, ttl time.Duration) error {
	// Leases are asked for on the invocation path: without a leader there is nobody to wait for.
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return fmt.Errorf("leasing reserved concurrency: no leader is known (%w)", ErrNotLeader)
	}
	_, err := n.apply(ctx, fsm.PutLeaseType, fsm.PutLease{Function: fn, Node: n.cfg.NodeID, Slots: slots,
		Now: time.Now().UnixNano(), TTL: int64(ttl)})
	return err
}

// DeleteVersion removes a published version through the log.
func (n *Node) DeleteVersion(ctx context.Context, fn, version string) error {
	_, err := n.apply(ctx, fsm.DeleteVersionType, fsm.DeleteVersion{Name: fn, Version: version})
	return err
}

// ProvisionedConcurrency returns a qualifier's provisioned concurrency.
func (n *Node) ProvisionedConcurrency(fn, qualifier string) (*structs.ProvisionedConcurrency, bool) {
	return n.State().ProvisionedConcurrency(fn, qualifier)
}

// ProvisionedConcurrencies returns a function's provisioned concurrency configurations.
func (n *Node) ProvisionedConcurrencies(fn string) []*structs.ProvisionedConcurrency {
	return n.State().ProvisionedConcurrencies(fn)
}

// PutProvisionedConcurrency writes a provisioned concurrency configuration through the log.
func (n *Node) PutProvisionedConcurrency(ctx context.Context, p *structs.ProvisionedConcurrency) error {
	_, err := n.apply(ctx, fsm.PutProvisionedType, fsm.PutProvisioned{Config: p})
	return err
}

// DeleteProvisionedConcurrency removes a provisioned concurrency configuration through the log.
func (n *Node) DeleteProvisionedConcurrency(ctx context.Context, fn, qualifier string) error {
	_, err := n.apply(ctx, fsm.DeleteProvisionedType, fsm.DeleteProvisioned{Function: fn, Qualifier: qualifier})
	return err
}

// Alias returns an alias of a function.
func (n *Node) Alias(fn, name string) (*structs.Alias, bool) { return n.State().Alias(fn, name) }

// Aliases returns a function's aliases by name.
func (n *Node) Aliases(fn string) []*structs.Alias { return n.State().Aliases(fn) }

// PutAlias writes an alias through the log (see fsm.PutAlias).
func (n *Node) PutAlias(ctx context.Context, a *structs.Alias, create, update bool, expectRevision string) (*structs.Alias, error) {
	return applyAs[structs.Alias](ctx, n, fsm.PutAliasType, fsm.PutAlias{Alias: a, Create: create, Update: update, ExpectRevision: expectRevision})
}

// DeleteAlias removes an alias through the log.
func (n *Node) DeleteAlias(ctx context.Context, fn, name string) error {
	_, err := n.apply(ctx, fsm.DeleteAliasType, fsm.DeleteAlias{Function: fn, Name: name})
	return err
}

// PutTrigger creates or replaces a function's trigger through the log.
func (n *Node) PutTrigger(ctx context.Context, t *structs.Trigger) (*structs.Trigger, error) {
	return applyAs[structs.Trigger](ctx, n, fsm.PutTriggerType, fsm.PutTrigger{Trigger: t})
}

// DeleteTrigger removes a function's trigger through the log.
func (n *Node) DeleteTrigger(ctx context.Context, fn, name string) error {
	_, err := n.apply(ctx, fsm.DeleteTriggerType, fsm.DeleteTrigger{Function: fn, Name: name})
	return err
}

// Trigger returns trigger name of function fn.
func (n *Node) Trigger(fn, name string) (*structs.Trigger, bool) { return n.State().Trigger(fn, name) }

// TriggerByUUID returns the trigger with that UUID.
func (n *Node) TriggerByUUID(uuid string) (*structs.Trigger, bool) {
	return n.State().TriggerByUUID(uuid)
}

// Triggers returns function fn's triggers (every function's when fn is empty).
func (n *Node) Triggers(fn string) []*structs.Trigger { return n.State().Triggers(fn) }

// DeleteFunctionURL removes a function URL through the log.
func (n *Node) DeleteFunctionURL(ctx context.Context, id string) error {
	_, err := n.apply(ctx, fsm.DeleteFunctionURLType, fsm.DeleteFunctionURL{ID: id})
	return err
}

// applyAs is apply for a command whose FSM response is the stored *T.
func applyAs[T any](ctx context.Context, n *Node, t fsm.MessageType, body any) (*T, error) {
	resp, err := n.apply(ctx, t, body)
	if err != nil {
		return nil, err
	}
	stored, ok := resp.(*T)
	if !ok {
		return nil, fmt.Errorf("unexpected apply response %T", resp)
	}
	return stored, nil
}

// apply writes one entry: on the leader directly, from a follower through the leader.
func (n *Node) apply(ctx context.Context, t fsm.MessageType, body any) (any, error) {
	data, err := fsm.Encode(t, body)
	if err != nil {
		return nil, err
	}
	if n.raft.State() != raft.Leader {
		return n.forward(ctx, data)
	}
	resp, _, err := n.applyLocal(ctx, data)
	if errors.Is(err, ErrNotLeader) {
		return n.forward(ctx, data) // leadership moved while we tried
	}
	return resp, err
}

// applyLocal applies an encoded entry on this node, which must lead, and returns the FSM's
// response and the entry's index.
func (n *Node) applyLocal(ctx context.Context, data []byte) (any, uint64, error) {
	if n.raft.State() != raft.Leader {
		id, addr := n.Leader()
		return nil, 0, &NotLeaderError{LeaderID: id, LeaderAddr: addr}
	}
	timeout := applyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			id, addr := n.Leader()
			return nil, 0, &NotLeaderError{LeaderID: id, LeaderAddr: addr}
		}
		return nil, 0, fmt.Errorf("applying a log entry: %w", err)
	}
	if err, ok := f.Response().(error); ok {
		return nil, f.Index(), err
	}
	return f.Response(), f.Index(), nil
}

// Stop shuts Raft down and closes the stores; it is idempotent.
func (n *Node) Stop(ctx context.Context) error {
	return n.close()
}

func (n *Node) close() error {
	var errs []error
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	if n.joinDone != nil {
		<-n.joinDone
		n.joinDone = nil
	}
	if n.autopilotDone != nil {
		<-n.autopilotDone
		n.autopilotDone = nil
	}
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shutting down raft: %w", err))
		}
		n.raft = nil
	}
	if n.trans != nil {
		_ = n.trans.Close()
		n.trans = nil
	}
	if n.rpcSrv != nil {
		_ = n.rpcSrv.Close()
		n.rpcSrv = nil
	}
	if n.mux != nil {
		_ = n.mux.Close()
		n.mux = nil
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing raft store: %w", err))
		}
		n.store = nil
	}
	return errors.Join(errs...)
}

// LayerVersion returns version v of layer name.
func (n *Node) LayerVersion(name string, v int64) (*structs.LayerVersion, bool) {
	return n.State().LayerVersion(name, v)
}

// LayerVersions returns the versions of layer name (of every layer when name is "").
func (n *Node) LayerVersions(name string) []*structs.LayerVersion {
	return n.State().LayerVersions(name)
}

// PublishLayerVersion publishes a layer's next version through the log.
func (n *Node) PublishLayerVersion(ctx context.Context, l *structs.LayerVersion) (*structs.LayerVersion, error) {
	return applyAs[structs.LayerVersion](ctx, n, fsm.PublishLayerVersionType, fsm.PublishLayerVersion{Layer: l})
}

// DeleteLayerVersion removes a layer version through the log.
func (n *Node) DeleteLayerVersion(ctx context.Context, name string, v int64) error {
	_, err := n.apply(ctx, fsm.DeleteLayerVersionType, fsm.DeleteLayerVersion{Name: name, Version: v})
	return err
}

// PutLayerPolicy adds a statement to a layer version's policy (add) or removes one (removeSid)
// through the log; expectRevision, when set, must be the policy's revision, revision is the
// next.
func (n *Node) PutLayerPolicy(ctx context.Context, name string, v int64, add *structs.LayerStatement, removeSid, expectRevision, revision string) (*structs.LayerVersion, error) {
	return applyAs[structs.LayerVersion](ctx, n, fsm.PutLayerPolicyType, fsm.PutLayerPolicy{Name: name, Version: v, Add: add,
		RemoveSid: removeSid, ExpectRevision: expectRevision, Revision: revision})
}

// EventInvokeConfig returns the asynchronous invocation configuration of a function's
// qualifier ("$LATEST" for unqualified invocations), read locally.
func (n *Node) EventInvokeConfig(fn, qualifier string) (*structs.EventInvokeConfig, bool) {
	return n.State().EventInvokeConfig(fn, qualifier)
}

// EventInvokeConfigs returns a function's asynchronous invocation configurations by qualifier.
func (n *Node) EventInvokeConfigs(fn string) []*structs.EventInvokeConfig {
	return n.State().EventInvokeConfigs(fn)
}

// PutEventInvokeConfig replaces a qualifier's asynchronous invocation configuration through the
// log; with update, only one that exists (see fsm.PutEventInvokeConfig).
func (n *Node) PutEventInvokeConfig(ctx context.Context, c *structs.EventInvokeConfig, update bool) (*structs.EventInvokeConfig, error) {
	return applyAs[structs.EventInvokeConfig](ctx, n, fsm.PutEventInvokeConfigType, fsm.PutEventInvokeConfig{Config: c, Update: update})
}

// DeleteEventInvokeConfig removes a qualifier's asynchronous invocation configuration through
// the log.
func (n *Node) DeleteEventInvokeConfig(ctx context.Context, fn, qualifier string) error {
	_, err := n.apply(ctx, fsm.DeleteEventInvokeConfigType, fsm.DeleteEventInvokeConfig{Function: fn, Qualifier: qualifier})
	return err
}

// CodeSigningConfig returns a code signing configuration by ID, read locally.
func (n *Node) CodeSigningConfig(id string) (*structs.CodeSigningConfig, bool) {
	return n.State().CodeSigningConfig(id)
}

// CodeSigningConfigs returns every code signing configuration, sorted by ID.
func (n *Node) CodeSigningConfigs() []*structs.CodeSigningConfig {
	return n.State().CodeSigningConfigs()
}

// FunctionCodeSigningConfig returns the ID of the configuration attached to a function.
func (n *Node) FunctionCodeSigningConfig(fn string) (string, bool) {
	return n.State().FunctionCodeSigningConfig(fn)
}

// FunctionsByCodeSigningConfig returns the functions a configuration is attached to, sorted.
func (n *Node) FunctionsByCodeSigningConfig(id string) []string {
	return n.State().FunctionsByCodeSigningConfig(id)
}

// PutCodeSigningConfig stores a code signing configuration through the log; create refuses to
// replace one, update to create one (see fsm.PutCodeSigningConfig).
func (n *Node) PutCodeSigningConfig(ctx context.Context, c *structs.CodeSigningConfig, create, update bool) (*structs.CodeSigningConfig, error) {
	return applyAs[structs.CodeSigningConfig](ctx, n, fsm.PutCodeSigningConfigType, fsm.PutCodeSigningConfig{Config: c, Create: create, Update: update})
}

// DeleteCodeSigningConfig removes a code signing configuration no function uses, through the log.
func (n *Node) DeleteCodeSigningConfig(ctx context.Context, id string) error {
	_, err := n.apply(ctx, fsm.DeleteCodeSigningConfigType, fsm.DeleteCodeSigningConfig{ID: id})
	return err
}

// PutFunctionCodeSigningConfig attaches a configuration to a function through the log.
func (n *Node) PutFunctionCodeSigningConfig(ctx context.Context, fn, id string) error {
	_, err := n.apply(ctx, fsm.PutFunctionCodeSigningConfigType, fsm.PutFunctionCodeSigningConfig{Function: fn, Config: id})
	return err
}

// DeleteFunctionCodeSigningConfig detaches a function's configuration through the log.
func (n *Node) DeleteFunctionCodeSigningConfig(ctx context.Context, fn string) error {
	_, err := n.apply(ctx, fsm.DeleteFunctionCodeSigningConfigType, fsm.DeleteFunctionCodeSigningConfig{Function: fn})
	return err
}
