package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

var (
	errEnvDead = errors.New("execution environment is gone")
	// errEnvRetired: taken from the pool just as it was retired (not held: the taker gives back
	// its hold); errThawFailed: the thaw failed and the environment is being reset.
	errEnvRetired = errors.New("execution environment was retired while idle")
	errThawFailed = errors.New("thawing the execution environment failed")
)

// envConfig is what every environment of a manager shares.
type envConfig struct {
	logs            LogSink
	logger          hclog.Logger
	maxStreamBytes  int64
	shutdownTimeout time.Duration
	tracer          invoke.Tracer // nil: tracing off
	metrics         Metrics
}

// envOwner is the manager that pools an environment, as the environment calls back to it.
type envOwner interface {
	// release takes back an environment whose runtime asked for its next event (now idle);
	// answered says the runtime had answered the invocation (it was counted as finishing).
	release(e *environment, answered bool)
	// markFinishing counts environments whose runtime answered (+1), or died after (-1).
	markFinishing(e *environment, delta int)
	// discard takes a reset environment out of the accounting; held says a caller had it.
	discard(e *environment, held bool)
	// destroyed says everything of the environment was released.
	destroyed(e *environment)
}

// environment is one execution environment: an Instance from the driver, the Runtime API it
// serves, and the invocation in progress. It owns its lifecycle (lifecycle.go): every change of
// phase is made here, under mu, along the transition table.
type environment struct {
	id    string
	owner envOwner
	cfg   *envConfig
	pool  *pool
	fn    *structs.Function
	logf  logFormat // the function's log format and levels
	inst  Instance
	rt    *runtimeServer
	out   *output
	outW  *os.File // the runtime's end of the output pipe, ours until start hands it over

	// started is set once the runtime's process was started: the output pipe's writing end is
	// then the runtime's, and destroy waits for the reader instead of closing both ends.
	started bool

	startedAt time.Time

	// dead is closed when the environment is torn down; blocked Runtime API calls return.
	dead chan struct{}
	// initDone is closed at the runtime's first GET /next; initFail receives an init error.
	initDone chan struct{}
	initFail chan *initError

	mu      sync.Mutex
	phase   phase
	cur     *invocation  // set in phaseInvoking and phaseFinishing
	waiting *runtimeConn // the runtime's parked GET /next
	queued  *invocation  // cur, when it arrived before the runtime's GET /next
	idleGen uint64
	// exts are the registered extensions (extensions.go); runtimePolled says the runtime made
	// its first poll (Init then waits for the extensions only); finishing is the invocation the
	// runtime has polled after, waiting for the extensions that owe a poll.
	exts          []*extension
	extByID       map[string]*extension
	runtimePolled bool
	finishing     *invocation
	extShutdown   *extShutdown // set once SHUTDOWN was sent
	// external are the names in /opt/extensions (external.go), started before the runtime;
	// extPending of them have not registered yet, and extRegistered is closed when none is
	// left. extOut reads their output.
	external      []string
	extPending    int
	extRegistered chan struct{}
	extOut        *output
	hasExts       atomic.Bool // an extension registered: the invoke path looks without the lock
	// tele is the Telemetry and Logs API's subscriptions (telemetry.go): nil after Init
	// without one, so that nothing else of it costs a function without.
	tele    atomic.Pointer[telemetry]
	freezeT *time.Timer
	// stopFreeze cancels the freeze in progress, if any: a checkout does not wait for a slow
	// freeze to finish only to thaw it (the driver rolls it back to thawed).
	stopFreeze context.CancelFunc
	lastUsed   time.Time // guarded by Manager.mu
	removed    bool      // guarded by Manager.mu: its capacity slot was given back
	// prov marks an environment of its pool's provisioned concurrency (provLive), past its
	// Init (provReady); written by the provisioner under its lock, read anywhere.
	prov atomic.Uint32

	// freezeMu serialises freezing and thawing. frozen, guarded by it, is the instance's own
	// state, which only the driver's answer tells: a checkout that cancels a freeze learns from
	// it whether the freeze happened anyway.
	freezeMu sync.Mutex
	frozen   bool
	// traceCtx and traceReq are the last invocation's, for its freeze's span (guarded by mu;
	// set only while tracing is on).
	traceCtx context.Context
	traceReq *invoke.Request

	teardown sync.Once
	gone     chan struct{} // closed once destroy finished
}

// invocation is one request in flight in an environment.
type invocation struct {
	req      *invoke.Request
	start    time.Time
	deadline time.Time
	initDur  time.Duration

	done     chan struct{} // closed once resp is set
	gone     chan struct{} // closed when the caller stopped waiting
	doneOnce sync.Once
	resp     *invoke.Response
	ended    chan struct{} // closed after END/REPORT were logged
	timer    *time.Timer

	tail []byte
	// rtDone: platform.runtimeDone was emitted (when the runtime answered, or at the end).
	rtDone atomic.Bool
	// met records the invocation in the node's metrics.
	met InvocationMetrics
}

// complete sets the invocation's outcome; the first one wins. A failure that comes after a
// stream was handed to the caller (timeout, crash) is recorded in the stream instead, so the
// caller learns why it broke off.
func (inv *invocation) complete(resp *invoke.Response) {
	first := false
	inv.doneOnce.Do(func() {
		inv.resp = resp
		close(inv.done)
		first = true
	})
	if st, ok := inv.resp.Stream.(*stream); ok && !first && resp.FunctionError {
		st.fail(resp.ErrorType, resp.Payload)
	}
}

// initError is an Init failure: the runtime's POST /runtime/init/error, an exit, or a timeout.
type initError struct {
	errorType string
	message   string
	body      []byte // the runtime's error JSON, when it sent one
	status    string // "error" or "timeout", for INIT_REPORT
}

func (e *initError) Error() string { return e.errorType + ": " + e.message }

// prepareEnvironment creates an environment without starting its runtime: the driver's Create
// (for libcontainer, all of the container up to the exec of the runtime) and the Runtime API
// server. start runs the runtime.
func prepareEnvironment(ctx context.Context, m *Manager, p *pool, seq uint64, provisioned bool) (*environment, error) {
	fn := p.fn
	var codeDir string
	var optDirs []string
	if !fn.IsImage() {
		dir, err := m.cfg.Code.Unpacked(ctx, fn.CodeSha256)
		if err != nil {
			return nil, fmt.Errorf("unpacking code of function %s: %w", fn.Name, err)
		}
		codeDir = dir
		for _, l := range fn.Layers {
			dir, err := m.cfg.Code.Unpacked(ctx, l.CodeSha256)
			if err != nil {
				return nil, fmt.Errorf("unpacking layer %s:%d of function %s: %w", l.Name, l.Version, fn.Name, err)
			}
			optDirs = append(optDirs, dir)
		}
	}
	if m.cfg.Check != nil {
		if err := m.cfg.Check.CheckCode(ctx, fn); err != nil {
			return nil, err
		}
	}
	e := &environment{
		id:       envID(fn.Name, seq),
		owner:    m,
		cfg:      &m.envCfg,
		pool:     p,
		fn:       fn,
		logf:     newLogFormat(fn.Logging),
		dead:     make(chan struct{}),
		initDone: make(chan struct{}),
		initFail: make(chan *initError, 1),
		gone:     make(chan struct{}),
	}
	if provisioned {
		// Set before anyone else can see the environment: a failed start is accounted by it.
		e.prov.Store(provLive)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating output pipe: %w", err)
	}
	spec := Spec{
		ID:        e.id,
		MemoryMB:  fn.MemoryMB,
		TmpMB:     fn.EphemeralStorageMB,
		PidsLimit: m.cfg.PidsLimit,
		Output:    pw,
		OptLayers: optDirs,
	}
	if n := fn.Network; n != nil {
		spec.Network = &NetworkSpec{Name: n.Name, EgressPolicies: n.EgressPolicies}
	}
	switch {
	case !fn.IsImage() && (structs.ValidRuntime(fn.Runtime) || fn.Runtime == ""):
		spec.CodeDir = codeDir
		spec.Args = []string{entrypoint(fn, codeDir, optDirs)}
		spec.Env = runtimeEnv(fn, p.key.version, m.cfg.Region, e.id, provisioned)
	case !fn.IsImage():
		spec.CodeDir = codeDir
		if err := m.runtimeSpec(ctx, fn, p.key.version, e.id, provisioned, &spec); err != nil {
			pr.Close()
			pw.Close()
			return nil, fmt.Errorf("creating environment for %s: %w", fn.Name, err)
		}
	default:
		if err := m.imageSpec(ctx, fn, p.key.version, e.id, provisioned, &spec); err != nil {
			pr.Close()
			pw.Close()
			return nil, fmt.Errorf("creating environment for %s: %w", fn.Name, err)
		}
	}
	if spec.FileSystems, err = m.openFileSystems(fn); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("creating environment for %s: %w", fn.Name, err)
	}
	createStart := time.Now()
	inst, err := m.create(ctx, spec)
	closeMounts(spec.FileSystems)
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("creating environment for %s: %w", fn.Name, err)
	}
	m.logger.Debug("environment created", "function", fn.Name, "env", e.id, "duration", time.Since(createStart))
	e.inst = inst
	e.outW = pw
	if e.external = externalExtensions(spec.OptLayers, spec.RootLayers); len(e.external) > 0 {
		e.extPending, e.extRegistered = len(e.external), make(chan struct{})
	}
	e.rt = newRuntimeServer(e, inst.Listener())
	go e.rt.serve()
	e.out = newOutput(e, pr)
	return e, nil
}

// create runs Driver.Create once a token of MaxParallelCreates is free.
func (m *Manager) create(ctx context.Context, spec Spec) (Instance, error) {
	select {
	case m.creates <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a turn to create an environment: %w", ctx.Err())
	}
	defer func() { <-m.creates }()
	return m.cfg.Driver.Create(ctx, spec)
}

// start runs the runtime of a prepared environment; Init begins. On failure the environment is
// destroyed (the caller still owns its accounting).
func (e *environment) start(ctx context.Context) error {
	fn := e.fn
	initType := e.initType()
	switch {
	case !e.logf.json:
		e.cfg.logs.Log(fn.Name, "", true, []string{fmt.Sprintf("INIT_START Runtime Version: %s\tEnvironment: %s", fn.Runtime, e.id)})
	case e.logf.system(rankInfo):
		e.cfg.logs.Log(fn.Name, "", true, []string{jsonRecord("platform.initStart", map[string]any{"initializationType": initType,
			"phase": "init", "runtimeVersion": fn.Runtime, "functionName": fn.Name, "functionVersion": e.pool.key.version})})
	}
	e.startedAt = time.Now()
	e.startTelemetry()
	e.platform("platform.initStart", func(logs bool, schema string) any {
		if logs {
			return nil
		}
		return map[string]any{"initializationType": initType, "phase": "init", "runtimeVersion": fn.Runtime,
			"functionName": fn.Name, "functionVersion": e.pool.key.version}
	})
	// Before the exec: the runtime's first GET /next may come at once.
	e.mu.Lock()
	e.toLocked(phaseInitialising)
	e.mu.Unlock()
	if len(e.external) > 0 {
		// Lambda's order: the extensions, then the runtime once each registered. A failure
		// on the way fails Init, as the runtime's own would.
		go e.initExtensions()
		return nil
	}
	return e.execRuntime(ctx)
}

// execRuntime starts the runtime's process.
func (e *environment) execRuntime(ctx context.Context) error {
	fn := e.fn
	e.mu.Lock()
	if e.phase == phaseDead {
		// Torn down while its extensions registered: destroy closed the pipe.
		e.mu.Unlock()
		return errEnvDead
	}
	e.started = true
	e.mu.Unlock()
	err := e.inst.Start(ctx)
	// The process holds its own copy; ours must go so the reader sees EOF when it exits.
	e.outW.Close()
	go e.out.run()
	if err != nil {
		return fmt.Errorf("starting runtime of %s: %w", fn.Name, err)
	}
	e.cfg.logger.Debug("environment started", "function", fn.Name, "env", e.id, "start", time.Since(e.startedAt))
	go e.watchExit()
	return nil
}

func envID(name string, seq uint64) string {
	if len(name) > 32 {
		name = name[:32]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s%d", name, hex.EncodeToString(b[:]), seq)
}

// entrypoint is /var/task/bootstrap, or the handler when it names an executable in the code.
func entrypoint(fn *structs.Function, codeDir string, optDirs []string) string {
	if h := fn.Handler; h != "" && !strings.Contains(h, "..") && !filepath.IsAbs(h) {
		if isExecutable(filepath.Join(codeDir, h)) {
			return "/var/task/" + filepath.ToSlash(filepath.Clean(h))
		}
	}
	if !exists(filepath.Join(codeDir, "bootstrap")) {
		// As Lambda: a custom runtime may come in a layer, as /opt/bootstrap.
		for _, d := range optDirs {
			if exists(filepath.Join(d, "bootstrap")) {
				return "/opt/bootstrap"
			}
		}
	}
	return "/var/task/bootstrap"
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// exists reports whether p names anything, a dangling symlink included (it is the runtime's to
// resolve, inside the environment).
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// init waits for the runtime's first GET /next (the end of Init), bounded by limit. On failure
// the environment is reset (INIT_REPORT logged) and the error returned.
func (e *environment) init(ctx context.Context, limit time.Duration) (time.Duration, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	var ie *initError
	select {
	case <-e.initDone:
		// A failure reported before the first next (init/error, an exit) wins: both may be
		// ready by the time this select runs, and it would pick either.
		select {
		case ie = <-e.initFail:
		default:
			d := time.Since(e.startedAt)
			e.initReport("success", "", d)
			return d, nil
		}
	case ie = <-e.initFail:
	case <-t.C:
		ie = &initError{errorType: "Sandbox.Timedout", status: "timeout",
			message: fmt.Sprintf("Init phase timed out after %.2f seconds", limit.Seconds())}
	case <-ctx.Done():
		// The caller left; finish Init in the background so the environment becomes warm.
		go e.initInBackground(limit)
		return 0, ctx.Err()
	}
	e.initFailed(ie)
	return 0, ie
}

func (e *environment) initInBackground(limit time.Duration) {
	if _, err := e.init(context.Background(), limit); err != nil {
		return // already reset by init
	}
	e.mu.Lock()
	e.toLocked(phaseIdle)
	e.mu.Unlock()
	e.owner.release(e, false)
}

func (e *environment) initFailed(ie *initError) {
	initDur := time.Since(e.startedAt)
	line := fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: %s", ms(initDur), ie.status)
	if ie.status == "error" {
		line += "\tError Type: " + ie.errorType
	}
	if e.logf.json {
		r := map[string]any{"initializationType": e.initType(), "phase": "init", "status": ie.status,
			"metrics": map[string]any{"durationMs": round2(ms(initDur))}}
		if ie.status == "error" {
			r["errorType"] = ie.errorType
		}
		line = jsonRecord("platform.initReport", r)
	}
	e.out.drain()
	if !e.logf.json || e.logf.system(rankInfo) {
		e.cfg.logs.Log(e.fn.Name, "", true, []string{line})
	}
	errType := ""
	if ie.status == "error" {
		errType = ie.errorType
	}
	e.platform("platform.initRuntimeDone", func(logs bool, schema string) any {
		if logs {
			return nil
		}
		r := map[string]any{"initializationType": e.initType(), "phase": "init", "status": ie.status}
		if errType != "" {
			r["errorType"] = errType
		}
		return r
	})
	e.initReport(ie.status, errType, time.Since(e.startedAt))
	e.reset("failure")
}

// initType is Lambda's name for how the environment was made.
func (e *environment) initType() string {
	if e.prov.Load() != 0 {
		return "provisioned-concurrency"
	}
	return "on-demand"
}

// initReport emits platform.initReport and ends the Init backlog.
func (e *environment) initReport(status, errType string, d time.Duration) {
	initType := e.initType()
	e.platform("platform.initReport", func(logs bool, schema string) any {
		if logs {
			return nil
		}
		r := map[string]any{"initializationType": initType, "phase": "init", "status": status,
			"metrics": map[string]any{"durationMs": round2(ms(d))}}
		if errType != "" {
			r["errorType"] = errType
		}
		return r
	})
	e.endTelemetryBacklog()
}

// round2 rounds to hundredths, as Lambda's metrics are.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// runtimeDone emits platform.runtimeDone once per invocation: when the runtime answered
// (status success or error), or at its end (timeout, failure).
func (e *environment) runtimeDone(inv *invocation, status, errType string, produced int) {
	if e.tele.Load() == nil || !inv.rtDone.CompareAndSwap(false, true) {
		return
	}
	d := time.Since(inv.start)
	start := inv.start
	e.platform("platform.runtimeDone", func(logs bool, schema string) any {
		r := map[string]any{"requestId": inv.req.RequestID, "status": status}
		if errType != "" {
			r["errorType"] = errType
		}
		if logs {
			return r
		}
		r["metrics"] = map[string]any{"durationMs": round2(ms(d)), "producedBytes": produced}
		if inv.req.TraceID != "" {
			r["tracing"] = map[string]any{"type": "X-Amzn-Trace-Id", "value": inv.req.TraceID}
		}
		if schema != "2022-07-01" {
			r["spans"] = []map[string]any{
				{"name": "responseLatency", "start": start.UTC().Format(timeLayout), "durationMs": round2(ms(d))},
				{"name": "responseDuration", "start": start.Add(d).UTC().Format(timeLayout), "durationMs": 0.0},
			}
		}
		return r
	})
}

// checkout makes an environment taken from the pool busy, thawing it if it was frozen. When the
// thaw fails the environment is reset and errThawFailed returned; errEnvRetired means it was
// retired while parked.
func (e *environment) checkout(ctx context.Context, req *invoke.Request) error {
	e.mu.Lock()
	if !e.toLocked(phaseThawing) {
		e.mu.Unlock()
		return errEnvRetired
	}
	e.idleGen++
	if e.freezeT != nil {
		e.freezeT.Stop()
		e.freezeT = nil
	}
	if e.stopFreeze != nil {
		e.stopFreeze()
		e.stopFreeze = nil
	}
	e.mu.Unlock()

	e.freezeMu.Lock()
	if e.frozen {
		tctx, cancel := context.WithTimeout(ctx, FreezeTimeout)
		start := time.Now()
		err := e.inst.Thaw(tctx)
		cancel()
		end := time.Now()
		if e.cfg.tracer != nil && req != nil {
			errType := ""
			if err != nil {
				errType = "Sandbox.ThawFailed"
			}
			e.cfg.tracer.Record(ctx, invoke.PhaseThaw, e.spanInfo(req, false), start, end, errType)
		}
		if err == nil {
			e.cfg.met().Thawed(end.Sub(start))
		}
		if err != nil {
			e.freezeMu.Unlock()
			go e.reset("failure")
			return fmt.Errorf("%w: %s: %w", errThawFailed, e.id, err)
		}
		e.frozen = false
	}
	e.freezeMu.Unlock()
	// Dead meanwhile (a reset): invoke reports it.
	e.mu.Lock()
	e.toLocked(phaseInvoking)
	e.mu.Unlock()
	return nil
}

// scheduleFreeze freezes the idle environment now (delay 0) or after delay, unless it is checked
// out first. It runs while the runtime is parked in GET /next, after the response was delivered.
func (e *environment) scheduleFreeze(delay time.Duration) {
	e.mu.Lock()
	if e.phase != phaseIdle {
		e.mu.Unlock()
		return
	}
	gen := e.idleGen
	if delay > 0 {
		e.freezeT = time.AfterFunc(delay, func() { e.freezeIfIdle(gen) })
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.freezeIfIdle(gen)
}

func (e *environment) freezeIfIdle(gen uint64) {
	e.freezeMu.Lock()
	defer e.freezeMu.Unlock()
	if e.frozen {
		return
	}
	e.mu.Lock()
	if e.phase != phaseIdle || e.idleGen != gen {
		e.mu.Unlock()
		return
	}
	e.toLocked(phaseFreezing)
	ctx, cancel := context.WithTimeout(context.Background(), FreezeTimeout)
	defer cancel()
	e.stopFreeze = cancel
	traceCtx, traceReq := e.traceCtx, e.traceReq
	e.traceCtx, e.traceReq = nil, nil
	e.mu.Unlock()
	start := time.Now()
	err := e.inst.Freeze(ctx)
	end := time.Now()
	if traceReq != nil {
		errType := ""
		if err != nil && !errors.Is(err, context.Canceled) {
			errType = "Sandbox.FreezeFailed"
		}
		e.cfg.tracer.Record(traceCtx, invoke.PhaseFreeze, e.spanInfo(traceReq, false), start, end, errType)
	}
	if err == nil {
		e.cfg.met().Frozen(end.Sub(start))
	}
	// Stuck frozen is not known to run: the next checkout thaws it, and resets it if that fails
	// too. Any other error left it thawed (a cancel by a checkout rolled the freeze back).
	e.frozen = err == nil || errors.Is(err, ErrStuckFrozen)
	e.mu.Lock()
	e.stopFreeze = nil // ours, or already taken by a checkout: only this method sets it, under freezeMu
	if e.phase == phaseFreezing {
		if e.frozen {
			e.toLocked(phaseFrozen)
		} else {
			e.toLocked(phaseIdle)
		}
	}
	e.mu.Unlock()
	switch {
	case err == nil, errors.Is(err, context.Canceled):
	case errors.Is(err, ErrStuckFrozen):
		e.cfg.logger.Error("freezing environment failed and could not be undone", "env", e.id, "error", err)
	default:
		// It stays usable, just not suspended.
		e.cfg.logger.Warn("freezing environment failed; leaving it thawed", "env", e.id, "error", err)
	}
}

// spanInfo is what this environment's spans say of req.
func (e *environment) spanInfo(req *invoke.Request, cold bool) invoke.SpanInfo {
	return invoke.SpanInfo{TraceID: req.TraceID, RequestID: req.RequestID, Function: e.fn.Name, Version: req.Version, Cold: cold}
}

// invoke hands req to the runtime and waits for its answer. initDur is non-zero on a cold start.
// An environment taken from the pool is checked out (thawed) first: errEnvRetired and
// errThawFailed then say it cannot serve, and the caller takes another.
func (e *environment) invoke(ctx context.Context, req *invoke.Request, initDur time.Duration) (*invoke.Response, error) {
	e.mu.Lock()
	parked := e.phase.parked()
	e.mu.Unlock()
	if parked {
		if err := e.checkout(ctx, req); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	inv := &invocation{
		req:      req,
		start:    now,
		deadline: now.Add(e.fn.Timeout),
		initDur:  initDur,
		done:     make(chan struct{}),
		gone:     make(chan struct{}),
		ended:    make(chan struct{}),
		met:      e.cfg.met().Invocation(e.fn.Name, req.InvokedFunctionARN),
	}
	// The timer exists before the invocation is visible to the exit watcher and reset, which stop it.
	inv.timer = time.AfterFunc(e.fn.Timeout, func() { e.timeout(inv) })
	e.mu.Lock()
	// From phaseReady after a cold start, or already invoking after a checkout.
	if !e.toLocked(phaseInvoking) {
		e.mu.Unlock()
		inv.timer.Stop()
		return nil, fmt.Errorf("dispatching to environment %s: %w", e.id, errEnvDead)
	}
	// Counted as running before it is visible: the exit watcher or a reset may end it (and count
	// its end) as soon as it is current.
	inv.met.Begin()
	e.cur = inv
	e.mu.Unlock()
	switch {
	case !e.logf.json:
		e.out.begin(inv, "START RequestId: "+req.RequestID+" Version: "+req.Version)
	case e.logf.system(rankInfo):
		e.out.begin(inv, startRecord(req.RequestID, req.Version))
	default:
		e.out.begin(inv)
	}
	if e.tele.Load() != nil {
		e.platform("platform.start", func(logs bool, _ string) any {
			r := map[string]any{"requestId": req.RequestID, "version": req.Version}
			if !logs && req.TraceID != "" {
				r["tracing"] = map[string]any{"type": "X-Amzn-Trace-Id", "value": req.TraceID}
			}
			return r
		})
	}
	if e.cfg.tracer != nil {
		// The freeze that follows this invocation is its last phase.
		e.mu.Lock()
		e.traceCtx, e.traceReq = ctx, req
		e.mu.Unlock()
	}
	e.deliver(inv)
	e.notifyInvoke(inv)

	select {
	case <-inv.done:
	case <-ctx.Done():
		close(inv.gone)
		if e.cfg.tracer != nil {
			e.cfg.tracer.Record(ctx, invoke.PhaseRuntime, e.spanInfo(req, initDur > 0), now, time.Now(), "Gateway.CallerGone")
		}
		return nil, ctx.Err()
	}
	resp := inv.resp
	if e.cfg.tracer != nil {
		e.cfg.tracer.Record(ctx, invoke.PhaseRuntime, e.spanInfo(req, initDur > 0), now, time.Now(), resp.ErrorType)
	}
	if st, ok := resp.Stream.(*stream); ok && req.Tail {
		// The log ends after the stream does: the caller asks for it then (Stream.LogTail).
		st.setTail(inv)
	} else if req.Tail {
		select {
		case <-inv.ended:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		resp.LogTail = inv.tail
	}
	return resp, nil
}

// finish ends the invocation in progress when the runtime asks for its next event.
func (e *environment) finish(inv *invocation) {
	e.mu.Lock()
	if e.cur != inv {
		e.mu.Unlock()
		return // timed out or failed meanwhile
	}
	e.cur = nil
	e.queued = nil
	answered := e.phase == phaseFinishing
	// Idle at once, with the invocation gone: a reset from now on finds it parked (not held),
	// so the release below is the only one to give back the caller's hold.
	e.toLocked(phaseIdle)
	e.mu.Unlock()
	inv.timer.Stop()
	if !answered {
		// The runtime asked for the next event without answering this one.
		inv.complete(e.errorResponse(inv, "Runtime.NoResponse", "runtime requested the next event without answering this one"))
	}
	e.endInvocation(inv, "", "")
	e.owner.release(e, answered)
}

// timeout fails the invocation with Sandbox.Timedout and resets the environment.
func (e *environment) timeout(inv *invocation) {
	e.mu.Lock()
	if e.cur != inv {
		e.mu.Unlock()
		return
	}
	answered := e.phase == phaseFinishing
	e.cur = nil
	e.queued = nil
	e.mu.Unlock()
	secs := fmt.Sprintf("%.2f", e.fn.Timeout.Seconds())
	msg := fmt.Sprintf("%s %s Task timed out after %s seconds", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), inv.req.RequestID, secs)
	inv.complete(&invoke.Response{
		Payload:         invoke.ErrorJSON("Sandbox.Timedout", msg),
		FunctionError:   true,
		ErrorType:       "Sandbox.Timedout",
		ExecutedVersion: inv.req.Version,
	})
	if answered {
		e.owner.markFinishing(e, -1)
	}
	e.out.line(msg)
	e.endInvocation(inv, "timeout", "Sandbox.Timedout")
	e.reset("timeout")
}

// watchExit handles the runtime process ending on its own: a crash or the OOM killer.
func (e *environment) watchExit() {
	select {
	case <-e.inst.Exited():
	case <-e.dead:
		return
	}
	select {
	case <-e.dead:
		return // we killed it
	default:
	}
	st := e.inst.ExitStatus()
	errType := "Runtime.ExitError"
	if st.OOMKilled {
		errType = "Runtime.OutOfMemory"
	}
	e.mu.Lock()
	inv := e.cur
	e.cur = nil
	e.queued = nil
	inited := e.phase.initialised()
	answered := inv != nil && e.phase == phaseFinishing
	if !inited {
		// Under e.mu, as handleInitError does: a next the runtime sent before it died cannot
		// end Init without init seeing the exit too.
		select {
		case e.initFail <- &initError{errorType: errType, status: "error", message: "Runtime exited with error: " + st.String()}:
		default:
		}
	}
	e.mu.Unlock()
	e.out.drain()
	if !inited {
		return // init() resets the environment
	}
	if inv != nil {
		inv.timer.Stop()
		msg := fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", inv.req.RequestID, st.String())
		if st.OOMKilled {
			msg = fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s (out of memory, limit %d MB)", inv.req.RequestID, st.String(), e.fn.MemoryMB)
		}
		inv.complete(&invoke.Response{Payload: invoke.ErrorJSON(errType, msg), FunctionError: true, ErrorType: errType, ExecutedVersion: inv.req.Version})
		if answered {
			e.owner.markFinishing(e, -1)
		}
		e.out.line(msg)
		e.endInvocation(inv, "error", errType)
	} else {
		e.cfg.logger.Warn("runtime exited while idle", "function", e.fn.Name, "env", e.id, "status", st.String())
	}
	e.reset("failure")
}

// endInvocation logs END and REPORT (after the runtime's output written so far) and wakes a
// caller waiting for the log tail.
func (e *environment) endInvocation(inv *invocation, status, errType string) {
	dur := time.Since(inv.start)
	if status == "timeout" {
		dur = e.fn.Timeout
	}
	var maxMB uint64
	if b, err := e.inst.MaxMemoryBytes(); err == nil {
		maxMB = (b + (1<<20 - 1)) >> 20
	}
	// Appended rather than formatted: this runs after every invocation.
	var buf [256]byte
	b := append(buf[:0], "REPORT RequestId: "...)
	b = append(b, inv.req.RequestID...)
	b = append(b, "\tDuration: "...)
	b = strconv.AppendFloat(b, ms(dur), 'f', 2, 64)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, billed(dur), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(e.fn.MemoryMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendUint(b, maxMB, 10)
	b = append(b, " MB"...)
	if inv.initDur > 0 {
		b = append(b, "\tInit Duration: "...)
		b = strconv.AppendFloat(b, ms(inv.initDur), 'f', 2, 64)
		b = append(b, " ms"...)
	}
	if status != "" {
		b = append(b, "\tStatus: "...)
		b = append(b, status...)
		if errType != "" {
			b = append(b, "\tError Type: "...)
			b = append(b, errType...)
		}
	}
	switch {
	case !e.logf.json:
		e.out.end(inv, "END RequestId: "+inv.req.RequestID, string(b))
	default:
		st := status
		if st == "" {
			st = "success"
		}
		var recs [2]string
		lines := recs[:0]
		if e.logf.system(rankDebug) {
			lines = append(lines, runtimeDoneRecord(inv.req.RequestID, st, errType, dur))
		}
		if e.logf.system(rankInfo) {
			lines = append(lines, reportRecord(inv.req.RequestID, st, errType, reportMetrics{dur: dur, initDur: inv.initDur, memoryMB: e.fn.MemoryMB, maxMB: maxMB}))
		}
		e.out.end(inv, lines...)
	}
	if e.tele.Load() != nil {
		e.reportTelemetry(inv, dur, maxMB, status, errType)
	}
	inv.met.End(dur, inv.initDur, outcome(inv.resp, errType))
	close(inv.ended)
}

// reportTelemetry emits the end of an invocation: platform.runtimeDone if the runtime never
// answered, platform.end (Logs API) and platform.report.
func (e *environment) reportTelemetry(inv *invocation, dur time.Duration, maxMB uint64, status, errType string) {
	rtStatus := status
	if rtStatus == "" {
		rtStatus = "success"
	}
	e.runtimeDone(inv, rtStatus, errType, 0)
	id := inv.req.RequestID
	e.platform("platform.end", func(logs bool, _ string) any {
		if !logs {
			return nil
		}
		return map[string]any{"requestId": id}
	})
	metrics := map[string]any{"durationMs": round2(ms(dur)), "billedDurationMs": billed(dur),
		"memorySizeMB": e.fn.MemoryMB, "maxMemoryUsedMB": maxMB}
	if inv.initDur > 0 {
		metrics["initDurationMs"] = round2(ms(inv.initDur))
	}
	e.platform("platform.report", func(logs bool, _ string) any {
		r := map[string]any{"requestId": id, "metrics": metrics}
		if logs {
			return r
		}
		r["status"] = rtStatus
		if errType != "" {
			r["errorType"] = errType
		}
		if inv.req.TraceID != "" {
			r["tracing"] = map[string]any{"type": "X-Amzn-Trace-Id", "value": inv.req.TraceID}
		}
		return r
	})
}

func (e *environment) errorResponse(inv *invocation, errType, msg string) *invoke.Response {
	return &invoke.Response{Payload: invoke.ErrorJSON(errType, msg), FunctionError: true, ErrorType: errType, ExecutedVersion: inv.req.Version}
}

// reset tears the environment down after a failure; the next invocation gets a fresh one.
func (e *environment) reset(reason string) { e.resetWith(reason, "error", "Runtime.ExitError") }

// resetWith is reset with the status and error type the REPORT of an invocation in progress
// gets.
func (e *environment) resetWith(reason, status, errType string) {
	e.mu.Lock()
	// A standby (cold, not held) is never reset: it is shut down.
	held := !e.phase.parked() && e.phase != phaseDead
	dead := e.phase == phaseDead
	inv := e.cur
	e.cur = nil
	e.queued = nil
	e.finishing = nil
	answered := inv != nil && e.phase == phaseFinishing
	e.toLocked(phaseDead)
	e.mu.Unlock()
	if dead {
		return
	}
	e.cfg.logger.Debug("resetting environment", "function", e.fn.Name, "env", e.id, "reason", reason)
	if inv != nil {
		// Killed under an invocation (node drain): it fails like a crash.
		inv.timer.Stop()
		inv.complete(e.errorResponse(inv, errType,
			fmt.Sprintf("RequestId: %s Error: Runtime exited with error: environment %s", inv.req.RequestID, reason)))
		if answered {
			e.owner.markFinishing(e, -1)
		}
		e.endInvocation(inv, status, errType)
	}
	e.owner.discard(e, held)
	// Lambda's reason: a reset is a failure, but for a timeout and the node's own shutdown.
	why := shutdownFailure
	switch reason {
	case "timeout":
		why = shutdownTimeout
	case "shutdown":
		why = shutdownSpindown
	}
	e.shutdownExtensions(why)
	e.destroy()
}

// shutdown ends an environment that is no longer wanted (idle timeout, retired revision, node
// drain): its extensions get SHUTDOWN with reason spindown.
func (e *environment) shutdown(reason string) {
	e.cfg.logger.Debug("shutting down environment", "function", e.fn.Name, "env", e.id, "reason", reason)
	e.shutdownExtensions(shutdownSpindown)
	e.destroy()
}

// destroy releases everything of the environment, once.
func (e *environment) destroy() {
	e.teardown.Do(func() {
		close(e.dead)
		e.failPoll()
		e.failExtensionPolls()
		e.mu.Lock()
		if e.freezeT != nil {
			e.freezeT.Stop()
		}
		if e.stopFreeze != nil {
			e.stopFreeze() // a freeze in progress is rolled back rather than waited for
			e.stopFreeze = nil
		}
		e.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.shutdownTimeout+5*time.Second)
		defer cancel()
		e.freezeMu.Lock()
		if err := e.inst.Destroy(ctx); err != nil {
			e.cfg.logger.Error("destroying environment", "env", e.id, "error", err)
		}
		e.frozen = false
		e.freezeMu.Unlock()
		e.rt.close()
		e.mu.Lock()
		started := e.started
		e.mu.Unlock()
		if started {
			e.out.wait()
		} else {
			e.outW.Close()
			e.out.f.Close()
		}
		e.mu.Lock()
		xo := e.extOut
		e.mu.Unlock()
		if xo != nil {
			xo.wait()
		}
		e.owner.destroyed(e)
		close(e.gone)
	})
}

// info describes the environment; lastUsed is the manager's (Manager.mu).
func (e *environment) info(last time.Time, prov bool) EnvironmentInfo {
	e.mu.Lock()
	ph := e.phase
	e.mu.Unlock()
	state := "busy"
	switch ph {
	case phaseCold:
		state = "standby"
	case phaseIdle, phaseFreezing:
		state = "idle"
	case phaseFrozen, phaseDead:
		state = ph.String()
	}
	return EnvironmentInfo{ID: e.id, Function: e.fn.Name, Version: e.pool.key.version, Revision: e.fn.RevisionID, State: state, LastUsed: last,
		Provisioned: prov}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func billed(d time.Duration) int64 {
	b := int64((d + time.Millisecond - 1) / time.Millisecond)
	if b < 1 {
		b = 1
	}
	return b
}
