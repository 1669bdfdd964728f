package sandbox

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// CodeSource gives the unpacked code of a function (the code store implements it).
type CodeSource interface {
	// Unpacked returns a host directory holding the code with the given hex SHA-256, verified.
	Unpacked(ctx context.Context, sha256hex string) (string, error)
}

// CodeCheck decides whether this node may run a function's code (the agent's code signing
// check): asked once the code is on this node, before an environment of it starts.
type CodeCheck interface {
	CheckCode(ctx context.Context, fn *structs.Function) error
}

// LogSink receives a function's log lines.
type LogSink interface {
	// Log takes lines of the function attributed to the invocation requestID ("" outside one).
	// platform: the gateway's own lines (INIT_START, START, END, REPORT, INIT_REPORT, a timeout,
	// or their JSON records): only these may become platform telemetry or records, so a
	// function cannot forge them by printing one. Else the runtime's output, which a sink may
	// drop (counted) under a flood.
	Log(function, requestID string, platform bool, lines []string)
}

// ManagerConfig configures the environment manager.
type ManagerConfig struct {
	Driver Driver
	// Tracer records the thaw, runtime and freeze phases of invocations as spans; nil when
	// tracing is off (nothing is timed then).
	Tracer invoke.Tracer
	Code   CodeSource
	// Check, when set, must pass before an environment of a function starts.
	Check CodeCheck
	// Images gives image functions their root; nil: the node runs zip functions only.
	Images Images
	// Runtimes gives the images of managed runtimes; nil: only the built-in custom runtimes.
	Runtimes Runtimes
	// FileSystems opens the host folders of the file systems functions mount (the node's
	// file_system blocks); nil: the node declares none, and refuses every function that mounts
	// one.
	FileSystems FileSystems
	Logs        LogSink
	Logger      hclog.Logger
	// Metrics is told of invocations, thaws and freezes; nil: nothing is counted.
	Metrics Metrics
	// Region is AWS_REGION inside environments.
	Region string
	// MaxEnvironments caps the live environments on this node (busy, idle and starting).
	MaxEnvironments int
	// MaxStreamBytes bounds a streamed response (default DefaultMaxStreamBytes, Lambda's soft
	// limit); past it the stream is cut off and the environment reset.
	MaxStreamBytes int64
	// IdleTimeout is how long an unused environment is kept warm before it is reclaimed.
	IdleTimeout time.Duration
	// InitTimeout bounds the Init phase (Lambda: 10 s).
	InitTimeout time.Duration
	// ShutdownTimeout bounds an environment's Shutdown phase before it is killed.
	ShutdownTimeout time.Duration
	// FreezeDelay is the default for functions that do not set their own.
	FreezeDelay time.Duration
	// PidsLimit caps processes and threads per environment.
	PidsLimit int
	// Standby is how many prepared environments (created up to the exec of the runtime, see
	// Driver.Create) the node keeps for function revisions that were deployed or used recently,
	// so their next cold start skips the container set-up. 0 disables it.
	Standby int
	// MaxParallelCreates caps the environments being created at once (Driver.Create: the
	// namespaces, cgroups and mounts of a cold start); more wait their turn, so a burst of cold
	// starts cannot take every CPU from the warm invocations and the agent. Default
	// DefaultMaxParallelCreates.
	MaxParallelCreates int
}

// DefaultMaxParallelCreates is twice the CPUs, at least 4: creating an environment is mostly
// kernel work that waits on locks (mount, cgroup), so a few per CPU keep them busy.
func DefaultMaxParallelCreates() int { return max(4, 2*runtime.NumCPU()) }

// Manager owns every execution environment of the node: it starts them, hands invocations to warm
// ones, resets them after failures and reclaims idle ones. It is made of parts, each with its
// own file and lock, taken in this order: the warm pool (pool.go, under mu), the standby part
// (standby.go), the provisioned-concurrency part (provisioned.go), an environment's own lock
// (environment.go, lifecycle.go: the environment freezes, thaws and changes phase itself), and
// capacity (capacity.go), a leaf.
type Manager struct {
	cfg    ManagerConfig
	logger hclog.Logger
	// envCfg is what every environment shares of cfg.
	envCfg envConfig

	// creates holds a token per environment being created (MaxParallelCreates).
	creates chan struct{}

	// mu is the warm pool's lock; it also guards all, closed and seq.
	mu     sync.Mutex
	pools  map[poolKey]*pool
	all    map[*environment]struct{} // every environment until destroyed
	cap    capacity                  // live environments against MaxEnvironments
	closed bool
	seq    uint64
	// standby is the standby part, and prov the provisioned-concurrency part, each with its
	// own lock (taken after mu).
	standby *standbySet
	prov    *provisioner

	// envWG tracks every environment until it is destroyed, so Shutdown can wait for them.
	envWG sync.WaitGroup
	// busyWG tracks invocations in flight, so Shutdown can let them finish.
	busyWG sync.WaitGroup

	stopJanitor chan struct{}
	janitorDone chan struct{}
}

// NewManager returns a manager; call Shutdown to release everything it started.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Driver == nil || cfg.Code == nil {
		return nil, errors.New("sandbox manager needs a driver and a code source")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Logs == nil {
		cfg.Logs = discardLogs{}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MaxEnvironments <= 0 {
		cfg.MaxEnvironments = 500
	}
	if cfg.MaxStreamBytes <= 0 {
		cfg.MaxStreamBytes = DefaultMaxStreamBytes
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = structs.DefaultInitTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = structs.DefaultShutdownTimeout
	}
	if cfg.PidsLimit <= 0 {
		cfg.PidsLimit = 1024
	}
	if cfg.MaxParallelCreates <= 0 {
		cfg.MaxParallelCreates = DefaultMaxParallelCreates()
	}
	m := &Manager{
		cap:         capacity{max: cfg.MaxEnvironments},
		standby:     newStandbySet(cfg.Standby),
		prov:        newProvisioner(),
		creates:     make(chan struct{}, cfg.MaxParallelCreates),
		cfg:         cfg,
		logger:      cfg.Logger.Named("sandbox"),
		pools:       make(map[poolKey]*pool),
		all:         make(map[*environment]struct{}),
		stopJanitor: make(chan struct{}),
		janitorDone: make(chan struct{}),
	}
	m.envCfg = envConfig{logs: cfg.Logs, logger: m.logger, maxStreamBytes: cfg.MaxStreamBytes, shutdownTimeout: cfg.ShutdownTimeout, metrics: cfg.Metrics, tracer: cfg.Tracer}
	if m.envCfg.metrics == nil {
		m.envCfg.metrics = noMetrics{}
	}
	go m.janitor()
	return m, nil
}

type discardLogs struct{}

func (discardLogs) Log(string, string, bool, []string) {}

// Invoke runs one invocation of fn in a warm environment, or a new one. It returns invoke.ErrNoCapacity
// when the node cannot start another environment. A Response is returned for everything Lambda
// reports as a function error (crash, timeout, out of memory, oversized response). When ctx ends
// first the invocation still runs to completion in its environment, as Lambda's does.
func (m *Manager) Invoke(ctx context.Context, fn *structs.Function, req *invoke.Request) (*invoke.Response, error) {
	if req.Version == "" {
		req.Version = structs.LatestVersion
	}
	if req.TraceID == "" {
		req.TraceID = invoke.NewTraceID()
	}
	for {
		env, cold, err := m.acquire(ctx, fn, req.Version)
		if err != nil {
			return nil, err
		}
		if cold {
			return m.invokeCold(ctx, env, req)
		}
		resp, err := env.invoke(ctx, req, 0)
		switch {
		case errors.Is(err, errEnvRetired):
			m.busyWG.Done() // not held any more (a failed thaw's reset does this itself)
		case errors.Is(err, errThawFailed):
		default:
			return resp, err
		}
		m.logger.Warn("warm environment unusable, using another", "function", fn.Name, "env", env.id, "error", err)
	}
}

// invokeCold finishes an environment's Init and runs the invocation in it. When Init fails, the
// failure is reported with INIT_REPORT and Init is tried once more within the invocation, bounded
// by the function's timeout (Lambda's "suppressed init"); if that fails too, the invocation fails.
func (m *Manager) invokeCold(ctx context.Context, env *environment, req *invoke.Request) (*invoke.Response, error) {
	// The pool is in use: have the next cold start's environment ready, once this one is over
	// (preparing it meanwhile would take CPU from this Init).
	defer func(p *pool) { go m.replenish(p) }(env.pool)
	fn := env.pool.fn
	deadline := time.Now().Add(fn.Timeout)
	if err := env.start(ctx); err != nil {
		m.logger.Warn("starting an environment failed, preparing another", "function", fn.Name, "env", env.id, "error", err)
		env.reset("failure")
		if env, err = m.startEnvironment(env.pool); err != nil {
			return nil, err
		}
		if err := env.start(ctx); err != nil {
			env.reset("failure")
			return nil, err
		}
	}
	initDur, ierr := env.init(ctx, m.cfg.InitTimeout)
	if ierr == nil {
		return env.invoke(ctx, req, initDur)
	}
	if ctx.Err() != nil && errors.Is(ierr, ctx.Err()) {
		return nil, ctx.Err()
	}
	// The failed environment was destroyed and its slot released by init; take a new one.
	env2, err := m.startEnvironment(env.pool)
	if err != nil {
		return nil, err
	}
	if err := env2.start(ctx); err != nil {
		env2.reset("failure")
		return nil, err
	}
	remaining := time.Until(deadline)
	if remaining <= 0 {
		remaining = time.Millisecond
	}
	initDur, ierr2 := env2.init(ctx, remaining)
	if ierr2 == nil {
		return env2.invoke(ctx, req, initDur)
	}
	return m.initFailureResponse(req, fn, ierr2), nil
}

// initFailureResponse is what the caller sees when Init failed twice.
func (m *Manager) initFailureResponse(req *invoke.Request, fn *structs.Function, ierr error) *invoke.Response {
	var ie *initError
	if errors.As(ierr, &ie) && ie.body != nil {
		return &invoke.Response{Payload: ie.body, FunctionError: true, ErrorType: ie.errorType, ExecutedVersion: req.Version}
	}
	errType, msg := "Runtime.ExitError", ierr.Error()
	if errors.As(ierr, &ie) {
		errType = ie.errorType
		msg = ie.message
	}
	return &invoke.Response{
		Payload:         invoke.ErrorJSON(errType, fmt.Sprintf("RequestId: %s Error: %s", req.RequestID, msg)),
		FunctionError:   true,
		ErrorType:       errType,
		ExecutedVersion: req.Version,
	}
}

// startEnvironment prepares a replacement environment after a failed start or Init; the failed
// one's slot was released, so capacity is taken again.
func (m *Manager) startEnvironment(p *pool) (*environment, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, invoke.ErrShuttingDown
	}
	if !m.takeSlotLocked(p, true, true) {
		m.mu.Unlock()
		return nil, invoke.ErrNoCapacity
	}
	m.mu.Unlock()
	return m.createEnvironment(context.Background(), p)
}

// createEnvironment runs after a slot was taken (takeSlotLocked: capacity, envWG and busyWG); on
// failure it gives the slot back.
func (m *Manager) createEnvironment(ctx context.Context, p *pool) (*environment, error) {
	m.mu.Lock()
	m.seq++
	seq := m.seq
	m.mu.Unlock()
	env, err := prepareEnvironment(ctx, m, p, seq, false)
	if err != nil {
		m.cap.give()
		m.envWG.Done()
		m.busyWG.Done()
		return nil, err
	}
	m.mu.Lock()
	m.all[env] = struct{}{}
	m.mu.Unlock()
	return env, nil
}

func (m *Manager) freezeDelay(fn *structs.Function) time.Duration {
	if fn.FreezeDelay != nil {
		return *fn.FreezeDelay
	}
	return m.cfg.FreezeDelay
}

// Sync retires the environments of every function revision not in current (updated or deleted
// functions): idle ones are shut down now, busy ones when their invocation ends.
//
// Function revisions it has not seen before get a standby environment (within the Standby
// budget): a deployed function is usually invoked soon.
//
// provisioned sets how many initialised environments each function version keeps (versions
// not listed keep none): missing ones are started and initialised now, extra ones retired.
func (m *Manager) Sync(current []*structs.Function, provisioned []invoke.Provision) {
	live := make(map[[2]string]bool, len(current))
	for _, fn := range current {
		live[[2]string{fn.Name, fn.RevisionID}] = true
	}
	want := make(map[poolKey]int, len(provisioned))
	for _, pr := range provisioned {
		if pr.Count > 0 && live[[2]string{pr.Function.Name, pr.Function.RevisionID}] {
			want[poolKey{name: pr.Function.Name, revision: pr.Function.RevisionID, version: pr.Function.Qualifier()}] += pr.Count
		}
	}
	m.mu.Lock()
	var stop []*environment
	for key, p := range m.pools {
		if live[[2]string{key.name, key.revision}] {
			continue
		}
		p.retired = true
		m.prov.retire(p)
		for _, env := range append(p.idle, m.standby.drop(p)...) {
			m.retireLocked(env)
			stop = append(stop, env)
		}
		p.idle = nil
		delete(m.pools, key)
	}
	var fresh []*pool
	now := time.Now()
	for _, fn := range current {
		key := poolKey{name: fn.Name, revision: fn.RevisionID, version: fn.Qualifier()}
		if m.pools[key] == nil && !m.closed {
			p := &pool{key: key, fn: fn, touched: now}
			m.pools[key] = p
			if want[key] == 0 { // provisioned environments make a standby pointless
				fresh = append(fresh, p)
			}
		}
	}
	var grow []*pool
	for key, p := range m.pools {
		if m.prov.setTarget(p, want[key]) {
			grow = append(grow, p)
		}
		stop = append(stop, m.shrinkProvisionedLocked(p)...)
	}
	m.mu.Unlock()
	for _, env := range stop {
		go env.shutdown("spindown")
	}
	for _, p := range fresh {
		go m.replenish(p)
	}
	for _, p := range grow {
		go m.provision(p)
	}
}

// retireLocked (Manager.mu held) takes an idle environment out of the accounting and marks it
// dead so no one checks it out; shutdown follows.
func (m *Manager) retireLocked(env *environment) {
	m.giveSlotLocked(env)
	m.prov.unprovision(env)
	env.mu.Lock()
	env.toLocked(phaseDead)
	env.mu.Unlock()
}

// janitor reclaims environments idle for longer than IdleTimeout.
func (m *Manager) janitor() {
	defer close(m.janitorDone)
	every := m.cfg.IdleTimeout / 4
	if every > 30*time.Second {
		every = 30 * time.Second
	}
	if every < 50*time.Millisecond {
		every = 50 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stopJanitor:
			return
		case now := <-t.C:
			m.reclaimIdle(now)
		}
	}
}

// EnvironmentInfo describes one live environment, for status endpoints and tests.
type EnvironmentInfo struct {
	ID       string    `json:"id"`
	Function string    `json:"function"`
	Version  string    `json:"version"`
	Revision string    `json:"revision"`
	State    string    `json:"state"` // idle, frozen, standby
	LastUsed time.Time `json:"last_used"`
	// Provisioned is set on environments kept for provisioned concurrency.
	Provisioned bool `json:"provisioned,omitempty"`
}

// Environments lists the live environments that are idle (thawed or frozen) or on standby;
// busy ones are counted in Stats.
func (m *Manager) Environments() []EnvironmentInfo {
	type listed struct {
		env  *environment
		last time.Time
		prov bool
	}
	m.mu.Lock()
	var envs []listed
	for _, p := range m.pools {
		for _, env := range p.idle {
			envs = append(envs, listed{env, env.lastUsed, env.prov.Load() != provNone})
		}
	}
	for _, env := range m.standby.ready() {
		envs = append(envs, listed{env: env})
	}
	m.mu.Unlock()
	out := make([]EnvironmentInfo, 0, len(envs))
	for _, l := range envs {
		out = append(out, l.env.info(l.last, l.prov))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CodeInUse returns the code hashes of every environment not yet destroyed and of every
// function revision the manager keeps a pool for: the code store must not delete their trees.
func (m *Manager) CodeInUse() []string { return m.refsInUse((*structs.Function).CodeRefs) }

// ImagesInUse returns the digests of the images environments of this node run or its pools
// keep, which must stay on disk (their layers are mounted).
func (m *Manager) ImagesInUse() []string { return m.refsInUse((*structs.Function).ImageRefs) }

// refsInUse gathers refs of the functions of every live environment and pool.
func (m *Manager) refsInUse(refs func(*structs.Function) []string) []string {
	m.mu.Lock()
	fns := make([]*structs.Function, 0, len(m.all)+len(m.pools))
	for env := range m.all {
		fns = append(fns, env.fn)
	}
	for _, p := range m.pools {
		fns = append(fns, p.fn)
	}
	m.mu.Unlock()
	return structs.Refs(fns, refs)
}

// Stats are node-level counters.
type Stats struct {
	Environments    int    `json:"environments"`
	Standby         int    `json:"standby"`
	MaxEnvironments int    `json:"max_environments"`
	Driver          string `json:"driver"`
}

func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{Environments: m.cap.inUse(), Standby: m.standby.len(), MaxEnvironments: m.cfg.MaxEnvironments, Driver: m.cfg.Driver.Name()}
}

// Shutdown stops accepting invocations, lets those in flight finish (bounded by ctx), then shuts
// down every environment. It returns once every environment is destroyed.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.envWG.Wait()
		return nil
	}
	m.closed = true
	for _, p := range m.pools {
		// Callers waiting for a finishing environment give up now: it will be shut down.
		for _, ch := range p.waiters {
			ch <- nil
		}
		p.waiters = nil
	}
	m.mu.Unlock()
	close(m.stopJanitor)
	<-m.janitorDone

	busyDone := make(chan struct{})
	go func() { m.busyWG.Wait(); close(busyDone) }()
	var err error
	select {
	case <-busyDone:
	case <-ctx.Done():
		err = fmt.Errorf("waiting for in-flight invocations: %w", ctx.Err())
	}

	// Everything still registered is shut down now; busy environments that did not finish in
	// time are killed with their invocation, which then fails.
	m.mu.Lock()
	var stop []*environment
	for key, p := range m.pools {
		for _, env := range append(p.idle, m.standby.drop(p)...) {
			m.retireLocked(env)
			stop = append(stop, env)
		}
		p.idle = nil
		p.retired = true
		m.prov.retire(p)
		delete(m.pools, key)
	}
	var busy []*environment
	for env := range m.all {
		if !env.removed {
			busy = append(busy, env)
		}
	}
	m.mu.Unlock()
	for _, env := range stop {
		go env.shutdown("spindown")
	}
	for _, env := range busy {
		go env.reset("shutdown")
	}
	m.envWG.Wait()
	return err
}

// destroyed forgets an environment whose every resource was released.
func (m *Manager) destroyed(env *environment) {
	m.mu.Lock()
	delete(m.all, env)
	m.mu.Unlock()
	m.envWG.Done()
}

// Placement reports the node's warm environments (started and initialised, idle or busy; not
// standby) per version, and its free capacity. A busy one counts: the version's calls go on
// finding it here, where it is about to be free, instead of cold-starting elsewhere.
func (m *Manager) Placement() invoke.Placement {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := invoke.Placement{Warm: map[string]int{}, Free: m.cap.free(), Provisioned: m.prov.readyByKey()}
	for env := range m.all {
		if env.removed || env.pool.retired {
			continue
		}
		env.mu.Lock()
		inited := env.phase.initialised() && env.phase != phaseDead
		env.mu.Unlock()
		if inited {
			k := env.pool.key
			p.Warm[invoke.PlacementKey(k.name, k.version, k.revision)]++
		}
	}
	return p
}

// Free is how many more environments the node could start now.
func (m *Manager) Free() int { return m.cap.free() }
