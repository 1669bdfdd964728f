// Package agent is the composition root of a gateway node: configuration, then the Raft node,
// code store, function logs, sandbox driver and environment manager, the invocation gateway and
// its HTTP API, started in that order and stopped in reverse.
package agent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/netutil"
	"golang.org/x/sys/unix"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/cluster/codestore"
	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/gateway/httpapi"
	"github.com/lambdagw/gateway/gateway/sigv4"
	"github.com/lambdagw/gateway/internal/asyncq"
	"github.com/lambdagw/gateway/internal/funclog"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/metrics"
	"github.com/lambdagw/gateway/internal/pki"
	"github.com/lambdagw/gateway/internal/tracing"
	"github.com/lambdagw/gateway/plugins/host"
	"github.com/lambdagw/gateway/plugins/sdk/logfmt"
	"github.com/lambdagw/gateway/sandbox"
	"github.com/lambdagw/gateway/sandbox/libcontainer"
	"github.com/lambdagw/gateway/sandbox/process"
)

// Version is the gateway's version, set at build time.
var Version = "0.1.0-dev"

// DrainTimeout bounds how long a stopping agent waits for invocations in flight.
const DrainTimeout = 30 * time.Second

// Options are the agent's run-time choices that are not configuration.
type Options struct {
	// Dev allows falling back to the process driver when libcontainer cannot run here.
	Dev bool
	// Logger overrides the logger built from the configuration (tests).
	Logger hclog.Logger
	// Ready, when set, is called with the HTTP address once the agent serves requests.
	Ready func(httpAddr string)
}

// Run starts a node and serves until ctx is cancelled, then drains: no new requests, invocations
// in flight finish (bounded by DrainTimeout), every environment is shut down, Raft is stopped.
func Run(ctx context.Context, cfg *config.Agent, opts Options) (err error) {
	logger := opts.Logger
	if logger == nil {
		// Durations as text in JSON too ("1.5s", not 1500000000).
		logger = logfmt.Durations(hclog.New(&hclog.LoggerOptions{
			Name:       "gateway",
			Level:      hclog.LevelFromString(cfg.LogLevel),
			JSONFormat: cfg.LogJSON,
			Output:     os.Stderr,
		}))
	}
	if procs, set := setGoMaxProcs(cfg.GoMaxProcs); set {
		logger.Debug("threads running Go code", "gomaxprocs", procs, "cpus", defaultProcs)
	}
	a := &agent{cfg: cfg, opts: opts, logger: logger, left: make(chan struct{})}
	defer func() {
		if cerr := a.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := a.start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-a.left:
		logger.Info("left the cluster")
	}
	logger.Info("shutting down: draining invocations", "timeout", DrainTimeout)
	return nil
}

// defaultProcs is Go's own GOMAXPROCS, read before the agent changes it (it honours the
// affinity mask and a cgroup CPU limit).
var defaultProcs = runtime.GOMAXPROCS(0)

// setGoMaxProcs sets how many threads run the agent's Go code at once, unless GOMAXPROCS is set
// in the environment (which wins), and reports the value and whether it set it.
func setGoMaxProcs(configured int) (int, bool) {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0), false
	}
	n := goMaxProcs(configured, defaultProcs)
	runtime.GOMAXPROCS(n)
	return n, true
}

// goMaxProcs is the configured number (above 0), or half of cpus, at least one.
//
// The agent shares its machine with the runtimes it runs, and an invocation spends about as
// much CPU in the agent as in its runtime, mostly as a chain of hand-offs between goroutines
// (caller, runtime connection, caller again). With a P per CPU each hand-off wakes another
// thread, which spins looking for work on a core a runtime needs. On a 2-vCPU machine one P
// answered warm invocations 13-27% sooner, used 29% less agent CPU per call, and was as fast or
// faster for everything else measured: four callers, streams, triggers, forwarding
// (docs/BENCHMARKS.md). Blocking system calls do not hold a P, so fewer Ps do not limit how many
// invocations wait at once.
func goMaxProcs(configured, cpus int) int {
	if configured > 0 {
		return configured
	}
	return max(1, cpus/2)
}

// privateClusterTLS is mutual TLS with a CA whose key is dropped once it signed this node's
// certificate.
func privateClusterTLS() (server, client *tls.Config, err error) {
	ca, err := pki.NewCA(pki.CAOptions{Name: "Gateway private node CA", Validity: 100 * 365 * 24 * time.Hour})
	if err != nil {
		return nil, nil, fmt.Errorf("making the cluster port's private CA: %w", err)
	}
	cert, err := ca.Sign(pki.CertOptions{Role: pki.Node, Validity: 99 * 365 * 24 * time.Hour})
	if err != nil {
		return nil, nil, fmt.Errorf("making the cluster port's certificate: %w", err)
	}
	return cluster.TLSConfigsPEM(ca.CertPEM, cert.CertPEM, cert.KeyPEM)
}

type agent struct {
	cfg    *config.Agent
	opts   Options
	logger hclog.Logger

	closers []func(context.Context) error // run in reverse order at close
	health  *health                       // /v1/health's checks; draining is set at close
	// left is closed when the node left the cluster (`gateway cluster leave`): the agent stops.
	left     chan struct{}
	leftOnce sync.Once
}

func (a *agent) onClose(f func(context.Context) error) { a.closers = append(a.closers, f) }

func (a *agent) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout+10*time.Second)
	defer cancel()
	var errs []error
	if a.health != nil {
		a.health.draining.Store(true)
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		a.logger.Info("stopped")
	}
	return errors.Join(errs...)
}

func (a *agent) start(ctx context.Context) error {
	cfg := a.cfg
	if a.opts.Dev {
		if err := checkDevAddress(cfg); err != nil {
			return err
		}
	}
	if cfg.DataDir == "" {
		return errors.New("data_dir is not set")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("resolving data_dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating data_dir: %w", err)
	}
	if err := a.lockDataDir(dataDir); err != nil {
		return err
	}

	ccfg := cluster.Config{
		NodeID:            cfg.NodeName,
		DataDir:           dataDir,
		BindAddr:          cfg.Cluster.Address,
		AdvertiseAddr:     cfg.Cluster.Advertise,
		Bootstrap:         cfg.Cluster.Bootstrap,
		Join:              cfg.Cluster.Join,
		BootstrapExpect:   cfg.Cluster.BootstrapExpect,
		DeadServerCleanup: cfg.Cluster.DeadServerCleanup,
		Logger:            a.logger,
	}
	// The routes of the embedded NATS cluster are mutual TLS with the cluster port's certificates.
	var routeTLS *tls.Config
	switch t := cfg.Cluster.TLS; {
	case t != nil:
		if ccfg.ServerTLS, ccfg.ClientTLS, err = cluster.TLSConfigs(t.CA, t.Cert, t.Key); err != nil {
			return err
		}
		routeTLS = cluster.RouteTLSConfig(ccfg.ServerTLS)
	case len(cfg.AccessKeys) > 0:
		// A lone node (config refuses keys in a cluster without tls): mutual TLS with a CA made
		// here and forgotten, so no one else can ever hold a certificate its port accepts.
		if ccfg.ServerTLS, ccfg.ClientTLS, err = privateClusterTLS(); err != nil {
			return err
		}
		a.logger.Info("the cluster port takes no connections: it requires a certificate of this node's private CA; " +
			"to form a cluster, give every node cluster { tls { ca, cert, key } } of one CA (gateway tls ca create)")
	default:
		a.logger.Warn("the cluster port is open: without access keys, anyone who reaches it can change functions, fetch code and invoke; "+
			"add access_key blocks and cluster { tls { ca, cert, key } } (gateway tls ca create)", "address", cfg.Cluster.Address)
	}
	if len(cfg.Cluster.Join) > 0 || cfg.Cluster.BootstrapExpect > 1 {
		a.logger.Info("joining the cluster", "join", cfg.Cluster.Join, "bootstrap_expect", cfg.Cluster.BootstrapExpect)
	}
	// Metrics (the metrics block): one registry for the agent, which Raft's go-metrics figures
	// reach too, so it is made before the cluster starts; off, nothing is counted.
	var met *metrics.Registry
	if cfg.Metrics.Enabled {
		met = metrics.New()
		if err := met.RouteGoMetrics(); err != nil {
			a.logger.Warn("raft's metrics are not served", "error", err)
		}
	}
	node, err := cluster.Start(ctx, ccfg)
	if err != nil {
		return fmt.Errorf("starting raft node: %w", err)
	}
	a.onClose(node.Stop)

	code, err := codestore.New(filepath.Join(dataDir, "code"), a.logger)
	if err != nil {
		return fmt.Errorf("opening code store: %w", err)
	}
	// Code is content-addressed on every node: one that lacks a version's zip fetches it from a
	// peer (verified by its hash before use), and serves its own to the others.
	code.SetFetcher(node.FetchCode)
	// The node RPC beyond the cluster's own routes (cluster/rpc.go), all here: code replication,
	// and the router's placement reports and forwarded invocations. The router comes later in
	// the start; until then its routes answer unavailable, so a peer runs the call itself.
	var routerRef atomic.Pointer[gateway.Router]
	node.HandleRPC(
		cluster.RPCRoute{Method: "GET", Pattern: "code/{sha}", Handler: serveCode(code)},
		cluster.RPCRoute{Method: "POST", Pattern: "report", Handler: whenReady(&routerRef, (*gateway.Router).ServeReport)},
		cluster.RPCRoute{Method: "POST", Pattern: "invoke", Handler: whenReady(&routerRef, (*gateway.Router).ServeInvoke)},
	)
	logs, err := funclog.New(filepath.Join(dataDir, "logs"), a.logger)
	if err != nil {
		return fmt.Errorf("opening function logs: %w", err)
	}
	a.onClose(func(context.Context) error { return logs.Close() })
	// `gateway logs` reads every node's lines: a peer asks this node over the RPC.
	clogs := &clusterLogs{store: logs, node: node, self: cfg.NodeName, logger: a.logger.Named("logs")}
	node.HandleRPC(cluster.RPCRoute{Method: "GET", Pattern: "logs/{name}", Handler: clogs.serve})

	driver, err := a.driver(ctx, dataDir)
	if err != nil {
		return err
	}
	a.onClose(func(context.Context) error { return driver.Close() })
	if err := driver.Sweep(ctx); err != nil {
		return fmt.Errorf("removing leftovers of an earlier run: %w", err)
	}

	if len(cfg.FileSystems) > 0 && driver.Name() != "libcontainer" {
		return fmt.Errorf("file systems need the libcontainer sandbox driver, and this node runs the %s driver: remove the file_system blocks, or run where libcontainer can", driver.Name())
	}
	fss, err := startFileSystems(ctx, dataDir, cfg.FileSystems, a.logger)
	if err != nil {
		return err
	}
	a.onClose(func(context.Context) error { return fss.close() })

	imgs, err := newImages(filepath.Join(dataDir, "images"), cfg.Registries, a)
	if err != nil {
		return fmt.Errorf("opening the image store: %w", err)
	}
	rtCtx, stopRuntimes := context.WithCancel(context.Background())
	a.onClose(func(context.Context) error { stopRuntimes(); return nil })
	rts := startRuntimes(rtCtx, cfg.Runtimes, imgs, a.logger)
	node.HandleRPC(cluster.RPCRoute{Method: "GET", Pattern: "runtimes", Handler: serveRuntimes(cfg.NodeName, rts)})

	if a.opts.Dev && len(cfg.Plugins) == 0 {
		cfg.Plugins = devPlugins(a.logger)
	}
	hostInfo, queues, js, err := a.startNATS(ctx, dataDir, routeTLS)
	if err != nil {
		return err
	}
	events, err := asyncq.Open(ctx, asyncq.Config{JS: js, Replicas: asyncReplicas(ctx, cfg), PerFunction: cfg.Async.PerFunction,
		AckWait: cfg.Async.RedeliverAfter, Logger: a.logger})
	if err != nil {
		return err
	}
	if hostInfo == nil {
		hostInfo = map[string]string{}
	}
	hostInfo["node_name"], hostInfo["region"] = cfg.NodeName, cfg.Region
	triggers := &lateTriggers{}
	plugins := host.New(host.Config{
		Plugins:  cfg.Plugins,
		HostInfo: hostInfo,
		DataDir:  filepath.Join(dataDir, "plugins"),
		Triggers: triggers,
		Logger:   a.logger,
	})
	// Extensions see every function log line as telemetry.
	var logSink sandbox.LogSink = logs
	if len(cfg.Plugins) > 0 {
		logSink = teeLogs{store: logs, host: plugins}
	}

	// Spans of invocations' phases, when a tracing block asks for them. Nothing at all
	// otherwise: a nil Tracer is never called. Flushed after everything else stopped.
	var tracer invoke.Tracer
	if t := cfg.Tracing; t != nil {
		tr, err := tracing.New(tracing.Config{Endpoint: t.OTLPEndpoint, Insecure: t.Insecure, Headers: t.Headers,
			SampleRatio: t.SampleRatio, ServiceName: t.ServiceName, NodeName: cfg.NodeName, Logger: a.logger})
		if err != nil {
			return err
		}
		a.onClose(tr.Shutdown)
		tracer = tr
		a.logger.Info("tracing: exporting spans over OTLP/HTTP", "sample_ratio", t.SampleRatio)
	}

	// Code signatures are checked at deploy by the gateway, and again here before an
	// environment starts, with this node's publishers.
	signatures := newCodeVerifier(cfg.NodeName, cfg.Region, cfg.Signing, code, imgs.s, node, a.logger)
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{
		Driver:             driver,
		Tracer:             tracer,
		Code:               code,
		Check:              signatures,
		Images:             imgs,
		Runtimes:           rts,
		FileSystems:        fss.sandbox(),
		Logs:               logSink,
		Logger:             a.logger,
		Region:             cfg.Region,
		MaxEnvironments:    cfg.Sandbox.MaxEnvironments,
		IdleTimeout:        cfg.Sandbox.IdleTimeout,
		InitTimeout:        cfg.Sandbox.InitTimeout,
		ShutdownTimeout:    cfg.Sandbox.ShutdownTimeout,
		FreezeDelay:        cfg.Sandbox.FreezeDelay,
		PidsLimit:          cfg.Sandbox.PidsLimit,
		Standby:            cfg.Sandbox.Standby,
		MaxStreamBytes:     int64(cfg.Sandbox.MaxStreamMB) << 20,
		MaxParallelCreates: cfg.Sandbox.MaxParallelStarts,
		Metrics:            sandboxMetricsOf(met),
	})
	if err != nil {
		return fmt.Errorf("starting environment manager: %w", err)
	}
	a.onClose(func(ctx context.Context) error {
		if err := mgr.Shutdown(ctx); err != nil {
			return fmt.Errorf("shutting down environments: %w", err)
		}
		return nil
	})

	// Code and images that no function or version runs any more, nor any environment here, are
	// deleted after code_gc's grace, by every node from the state it has.
	gcCtx, stopGC := context.WithCancel(context.Background())
	gcDone := make(chan struct{})
	gc := &collector{interval: cmp.Or(cfg.CodeGC.Interval, codestore.DefaultGCInterval),
		grace: cmp.Or(cfg.CodeGC.Grace, codestore.DefaultGCGrace), caughtUp: node.CaughtUp, logger: a.logger.Named("gc"),
		code: code, keepCode: func() []string { return append(node.State().Code(), mgr.CodeInUse()...) },
		images: imgs.s, keepImages: func() []string {
			return append(append(node.State().Images(), mgr.ImagesInUse()...), rts.Digests()...)
		}}
	go func() {
		defer close(gcDone)
		gc.run(gcCtx)
	}()
	a.onClose(func(context.Context) error { stopGC(); <-gcDone; return nil })

	// In a cluster an invocation runs where an environment of its version is idle, or where
	// there is room: the router forwards it to a peer over the node RPC, or runs it here.
	router := gateway.NewRouter(gateway.RouterConfig{Local: mgr, Peers: node, State: node.State(), Logger: a.logger, Tracer: tracer})
	routerRef.Store(router)
	routerCtx, stopRouter := context.WithCancel(context.Background())
	routerDone := make(chan struct{})
	go func() { defer close(routerDone); router.Run(routerCtx) }()
	a.onClose(func(context.Context) error { stopRouter(); <-routerDone; return nil })

	gw, err := gateway.New(gateway.Config{
		Region:         cfg.Region,
		Invoker:        router,
		Store:          node,
		Code:           code,
		Logger:         a.logger,
		StoreErrors:    gateway.StoreErrors{NotFound: cluster.ErrNotFound, Conflict: cluster.ErrConflict, Exists: cluster.ErrExists, NoLeader: cluster.ErrNotLeader, NoAnswer: cluster.ErrNoAnswer},
		URLAddress:     urlAddress(cfg.HTTP),
		MaxConcurrency: cfg.Sandbox.MaxConcurrency,
		Provisioning:   router,
		Leases:         node,
		Plugins:        plugins,
		Queues:         queues,
		Images:         imgs,
		Runtimes:       rts.Names,
		Networks:       newNetworkCatalog(cfg),
		FileSystems:    cfg.NodeFileSystems,
		Events:         events,
		RetryDelay:     cfg.Async.RetryDelay,
		PeerCounters:   peerAsyncCounters(node),
		Verifier:       signatures,
		Tracer:         tracer,
		Metrics:        gatewayMetricsOf(met),
	})
	if err != nil {
		return fmt.Errorf("starting gateway: %w", err)
	}
	a.onClose(func(ctx context.Context) error {
		dctx, cancel := context.WithTimeout(ctx, DrainTimeout)
		defer cancel()
		return gw.Shutdown(dctx)
	})
	triggers.gw = gw
	if met != nil {
		exists := func(fn string) bool { _, ok := node.State().Function(fn); return ok }
		if err := met.SetNode(nodeFigures(mgr, logs, js, plugins, gw, exists)); err != nil {
			return fmt.Errorf("registering the node's metrics: %w", err)
		}
		node.HandleRPC(cluster.RPCRoute{Method: "GET", Pattern: historyRPC, Handler: serveHistory(met)})
	}
	router.SetPool(gw) // peers' calls beyond their unreserved share count against this node's
	node.HandleRPC(cluster.RPCRoute{Method: "GET", Pattern: "async/counters", Handler: serveAsyncCounters(gw)})
	// A node that finds every slot of a reservation leased asks the holders for their idle ones.
	node.HandleRPC(cluster.RPCRoute{Method: "POST", Pattern: "lease/idle", Handler: func(w http.ResponseWriter, r *http.Request) {
		gw.GiveBackIdle(r.Context(), r.URL.Query().Get("function"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}})

	// Trigger plugins deliver into the gateway, so they stop before it drains. Each mapping
	// runs on one live node of a cluster.
	if err := plugins.Start(ctx); err != nil {
		return err
	}
	a.onClose(plugins.Shutdown)
	mapCtx, stopMappings := context.WithCancel(context.Background())
	mapDone := make(chan struct{})
	go func() { defer close(mapDone); plugins.RunMappings(mapCtx, node.State(), router.Owns, cfg.Region) }()
	a.onClose(func(context.Context) error { stopMappings(); <-mapDone; return nil })

	// Environments of changed or deleted functions are retired as the replicated state changes.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		st := node.State()
		for {
			ch := st.Watch()
			// Published versions keep their own environments, apart from $LATEST's. Provisioned
			// environments are spread over the live nodes, so a change of who is live (a node
			// gone or back) moves them too: resync every second as well.
			fns := st.Functions()
			mgr.Sync(append(fns, st.Versions("")...), gw.ProvisionTargets(router.Share))
			keepMetrics(met, fns) // a deleted function's series go with it
			select {
			case <-ch:
			case <-time.After(time.Second):
			case <-watchCtx.Done():
				return
			}
		}
	}()
	a.onClose(func(context.Context) error { stopWatch(); <-watchDone; return nil })

	// API requests and requests to SIGNED function URLs are checked against the agent's access
	// keys, for any region a client signs for (the node serves them all). Without keys the API
	// is open and SIGNED URLs refuse every request, saying why.
	var verifier *sigv4.Verifier
	if len(cfg.AccessKeys) > 0 {
		if verifier, err = sigv4.New(sigv4.Config{Keys: cfg.AccessKeyMap()}); err != nil {
			return fmt.Errorf("loading access keys: %w", err)
		}
	} else {
		a.logger.Warn("the API is open: no access_key blocks, so every request is accepted unsigned; " +
			"add access_key blocks (policy \"admin\", \"invoke\" or \"metrics\") to require AWS Signature V4")
	}
	a.health = &health{raft: node, plugins: plugins.Status, dataDir: dataDir, sandboxDir: filepath.Join(dataDir, "sandbox")}
	if driver.Name() == "process" {
		a.health.sandboxDir = filepath.Join(dataDir, "sandbox-process")
	} else {
		a.health.cgroupRoot = "/sys/fs/cgroup"
	}
	a.health.checkSystem()
	healthCtx, stopHealth := context.WithCancel(context.Background())
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); a.health.run(healthCtx) }()
	a.onClose(func(context.Context) error { stopHealth(); <-healthDone; return nil })
	handler, err := httpapi.New(httpapi.Config{
		Gateway:    gw,
		Health:     a.health,
		Tracer:     tracer,
		URLDomain:  cfg.HTTP.URLDomain,
		Verifier:   verifier,
		Policies:   cfg.AccessKeyPolicies(),
		Cluster:    clusterOps{node: node, code: codeBlobs{code}, leave: func() { a.leftOnce.Do(func() { close(a.left) }) }},
		Logs:       clogs,
		Logger:     a.logger,
		Debug:      cfg.Debug.Pprof,
		Authorizer: plugins,
		// DNS rebinding: only the node's own names reach the API (function URLs always do).
		AllowedHosts:   allowedHosts(cfg.HTTP),
		AllowedOrigins: cfg.HTTP.AllowedOrigins,
		AccessLog:      cfg.HTTP.AccessLog,
		Metrics:        apiMetricsOf(met, node),
		Status: func() any {
			return map[string]any{
				"node_name":    cfg.NodeName,
				"version":      Version,
				"driver":       driver.Name(),
				"sandbox":      mgr.Stats(),
				"environments": mgr.Environments(),
				"raft":         node.Stats(),
				"plugins":      plugins.Status(),
				"runtimes":     rts.Status(),
			}
		},
		Runtimes: func(ctx context.Context) any { return clusterRuntimes(ctx, node, cfg.NodeName, rts) },
	})
	if err != nil {
		return fmt.Errorf("building HTTP API: %w", err)
	}
	var tlsConfig *tls.Config
	if t := cfg.HTTP.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return fmt.Errorf("loading the HTTP certificate %s: %w", t.Cert, err)
		}
		// HTTP/1.1 only: the bounds below (connections, header time, per-request deadlines) are
		// per connection, which HTTP/2's streams would multiply.
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return fmt.Errorf("listening on http address %s: %w", cfg.HTTP.Address, err)
	}
	// Bounds on what one client can hold: header size and time (the TLS handshake included),
	// idle keep-alive connections, and connections in all (past the cap, new ones wait in the
	// kernel's backlog). Bodies and responses have deadlines per request (gateway/httpapi).
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	ln = netutil.LimitListener(ln, maxHTTPConns)
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("http server failed", "error", err)
		}
	}()
	a.onClose(func(ctx context.Context) error {
		// Stop accepting, let requests in flight (invocations among them) finish.
		sctx, cancel := context.WithTimeout(ctx, DrainTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		<-serveDone
		if err != nil {
			return fmt.Errorf("draining http requests: %w", err)
		}
		return nil
	})

	addr := ln.Addr().String()
	a.logger.Info("gateway agent started", "node", cfg.NodeName, "http", addr, "https", tlsConfig != nil, "raft", cfg.Cluster.Address,
		"driver", driver.Name(), "data_dir", dataDir, "functions", len(node.State().Functions()))
	a.health.started.Store(true)
	if a.opts.Ready != nil {
		a.opts.Ready(addr)
	}
	return nil
}

// clusterOps are the membership operations of the HTTP API (`gateway cluster ...`).
type clusterOps struct {
	node  *cluster.Node
	code  cluster.CodeBlobs
	leave func()
}

func (c clusterOps) SaveSnapshot(ctx context.Context, w io.Writer) error {
	return c.node.SaveSnapshot(ctx, w, c.code)
}

func (c clusterOps) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	return c.node.RestoreSnapshot(ctx, r, c.code)
}

// codeBlobs is the code store as snapshot archives read and write it.
type codeBlobs struct{ s *codestore.Store }

func (c codeBlobs) Open(sha string) (io.ReadCloser, error) { return c.s.Open(sha) }
func (c codeBlobs) Put(ctx context.Context, r io.Reader, max int64) (string, int64, error) {
	return c.s.Put(ctx, r, max)
}

func (c clusterOps) Members() (any, error)                       { return c.node.Members() }
func (c clusterOps) Join(ctx context.Context, addr string) error { return c.node.Join(ctx, addr) }

// Leave removes the node from the cluster, then stops the agent (as `consul leave` does): a
// node that left must not keep serving from a state it no longer receives.
func (c clusterOps) Leave(ctx context.Context) error {
	if err := c.node.Leave(ctx); err != nil {
		return err
	}
	c.leave()
	return nil
}

// driver builds the configured sandbox driver. Only a dev agent falls back to the process driver,
// and it says so loudly; a configured agent never downgrades its isolation silently.
func (a *agent) driver(ctx context.Context, dataDir string) (sandbox.Driver, error) {
	cfg := a.cfg.Sandbox
	switch cfg.Driver {
	case "process":
		return process.New(process.Config{WorkDir: filepath.Join(dataDir, "sandbox-process"), Logger: a.logger})
	case "libcontainer", "":
		mem, pids, err := nodeLimits(cfg)
		if err != nil {
			return nil, err
		}
		a.logger.Info("sandbox: all environments together may use", "memory_mb", mem>>20, "pids", pids)
		var ids *libcontainer.IDRange
		if cfg.UserNamespaces {
			r, err := libcontainer.DetectUserNamespaces()
			if err != nil {
				a.logger.Warn("sandbox: no user namespaces, so every environment runs as the same host uid 993: "+err.Error(),
					"fix", "give user lambdagw a range in /etc/subuid and /etc/subgid, or set sandbox { user_namespaces = false } to silence this")
			} else {
				ids = &r
				a.logger.Info("sandbox: each environment has its own user namespace", "host_ids", r.String(), "per_environment", libcontainer.IDsPerEnvironment)
			}
		}
		nets, err := a.networks(ctx, dataDir)
		if err != nil {
			return nil, err
		}
		lcfg := libcontainer.Config{
			WorkDir:          filepath.Join(dataDir, "sandbox"),
			BaseRootfs:       cfg.Rootfs,
			CgroupParent:     cgroupParent(a.cfg.NodeName, dataDir),
			BatchCPU:         cfg.CPUPolicy == "batch",
			Seccomp:          cfg.Seccomp,
			LockFile:         filepath.Join(dataDir, lockFileName),
			TotalMemoryBytes: mem,
			TotalPids:        pids,
			UserNamespaces:   ids,
			Logger:           a.logger,
		}
		if nets != nil {
			lcfg.Networks = nets
		}
		d, err := libcontainer.New(lcfg)
		if err == nil {
			return d, nil
		}
		if !a.opts.Dev || !errors.Is(err, sandbox.ErrUnavailable) {
			return nil, fmt.Errorf("starting libcontainer sandbox driver: %w", err)
		}
		a.logger.Warn("**********************************************************************")
		a.logger.Warn("libcontainer cannot run here; -dev falls back to the PROCESS driver:", "reason", err)
		a.logger.Warn("functions run as plain child processes with NO isolation, NO limits")
		a.logger.Warn("**********************************************************************")
		return process.New(process.Config{WorkDir: filepath.Join(dataDir, "sandbox-process"), Logger: a.logger})
	default:
		return nil, fmt.Errorf("unknown sandbox driver %q (valid: libcontainer, process)", cfg.Driver)
	}
}

var unsafeCgroupChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// cgroupParent is an absolute cgroup path owned by this node only: stable across restarts (so
// the start-up sweep finds a crashed run's leftovers) and distinct between agents sharing a host.
func cgroupParent(node, dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "/lambdagw/" + unsafeCgroupChars.ReplaceAllString(node, "_") + "-" + hex.EncodeToString(sum[:4])
}

// lockDataDir keeps a second agent from using the same data_dir (Raft and the sweep would
// destroy each other's state). The lock goes with the process, also when it crashes.
// nodeLimits are sandbox { total_memory, total_pids }, or their defaults from the machine.
func nodeLimits(cfg config.Sandbox) (memBytes, pids int64, err error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, 0, fmt.Errorf("reading the machine's memory: %w", err)
	}
	machine := int64(si.Totalram) * int64(si.Unit)
	memBytes = cfg.TotalMemory.Of(machine)
	if memBytes == 0 {
		memBytes = config.DefaultTotalMemory(machine)
	}
	if memBytes > machine {
		return 0, 0, fmt.Errorf("sandbox { total_memory } is %d MiB, more than this machine's %d MiB", memBytes>>20, machine>>20)
	}
	pids = int64(cfg.TotalPids)
	if pids == 0 {
		pids = 1 << 22 // the kernel's PID_MAX_LIMIT, lowered by what the files say
		for _, f := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
			if b, err := os.ReadFile(f); err == nil {
				if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
					pids = min(pids, n)
				}
			}
		}
		pids /= 2
	}
	return memBytes, pids, nil
}

// lockFileName is data_dir's lock: held (flock) while the agent runs.
const lockFileName = "agent.lock"

// lockWait is how long a start waits for data_dir's lock.
const lockWait = 5 * time.Second

func (a *agent) lockDataDir(dataDir string) error {
	f, err := os.OpenFile(filepath.Join(dataDir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("opening data_dir lock: %w", err)
	}
	// The reaper of an agent that just died holds the lock while it removes that agent's
	// environments (sandbox/libcontainer), for a moment: wait that long before giving up.
	for deadline := time.Now().Add(lockWait); ; time.Sleep(50 * time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			return fmt.Errorf("data_dir %s is in use by another agent: %w", dataDir, err)
		}
	}
	a.onClose(func(context.Context) error { return f.Close() })
	return nil
}

// checkDevAddress refuses a -dev agent whose API other machines can reach while it has no
// access keys: -dev trusts the plugins it finds and may run functions without isolation, and an
// open API lets anyone who reaches it deploy code.
func checkDevAddress(cfg *config.Agent) error {
	if len(cfg.AccessKeys) > 0 {
		return nil
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Address)
	if err == nil && loopbackOnly(host) {
		return nil
	}
	if port == "" {
		port = "9500"
	}
	return fmt.Errorf("-dev will not serve its API on %s without access keys: other machines can reach that address, "+
		"and anyone there could deploy and run code. Add an access_key block (policy = \"admin\") to the agent file, "+
		"or listen on loopback only: http { address = \"127.0.0.1:%s\" }", cfg.HTTP.Address, port)
}

// loopbackOnly reports whether host (an address or a name) means loopback addresses only.
func loopbackOnly(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	if host == "" {
		return false // every address
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// maxHTTPConns caps the HTTP listener's open connections.
const maxHTTPConns = 4096

// allowedHosts is http { allowed_hosts }, or by default the listener's own names: its address,
// localhost and the loopback addresses, and, when it listens on every address, the machine's
// host name and interface addresses.
func allowedHosts(h config.HTTP) []string {
	if len(h.AllowedHosts) > 0 {
		return h.AllowedHosts
	}
	out := []string{"localhost", "127.0.0.1", "::1"}
	host, _, err := net.SplitHostPort(h.Address)
	if err != nil {
		return out
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return append(out, host)
	}
	if name, err := os.Hostname(); err == nil {
		out = append(out, name)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				out = append(out, n.IP.String())
			}
		}
	}
	return out
}

// urlAddress gives the address of a function URL: the URL domain on the HTTP listener's port.
func urlAddress(h config.HTTP) func(id string) string {
	scheme, defaultPort := "http", "80"
	if h.TLS != nil {
		scheme, defaultPort = "https", "443"
	}
	_, port, err := net.SplitHostPort(h.Address)
	if err != nil || port == defaultPort {
		port = ""
	} else {
		port = ":" + port
	}
	return func(id string) string { return scheme + "://" + id + "." + h.URLDomain + port + "/" }
}

// serveCode answers a peer's GET code/{sha} with the code zip, for a node that lacks it.
func serveCode(code *codestore.Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := code.Open(r.PathValue("sha"))
		if err != nil {
			cluster.WriteRPCError(w, http.StatusNotFound, cluster.KindNotFound, err.Error())
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/zip")
		_, _ = io.Copy(w, f)
	}
}

// whenReady serves a route of the router once there is one, and answers unavailable before.
func whenReady(ref *atomic.Pointer[gateway.Router], h func(*gateway.Router, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		router := ref.Load()
		if router == nil {
			cluster.WriteRPCError(w, http.StatusServiceUnavailable, cluster.KindUnavailable, "this node is starting")
			return
		}
		h(router, w, r)
	}
}
