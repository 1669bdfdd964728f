// Package natsengine runs NATS JetStream embedded in the agent's process: the server the agent's
// queues and streams live in, and the one trigger plugins connect to (HostInfo "nats_url").
//
// The server listens on TCP (plugins are other processes) at the configured address only (no
// monitoring, gateway, leaf node, websocket or MQTT port), admits only clients holding one of
// the configured NKeys, keeps JetStream's store in a folder of the agent's data dir, installs no
// signal handlers, and logs through the agent's hclog logger.
//
// Given a route listener and routes, the servers of a gateway cluster's nodes form one NATS
// cluster (ClusterName) with clustered JetStream: a stream of several replicas outlives the node
// it was written on. Routes are mutual TLS when given RouteTLS.
package natsengine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// DefaultListen is where the server listens when Config.Listen is empty.
const DefaultListen = "127.0.0.1:4222"

// DefaultReadyTimeout bounds how long Start waits for the server to accept clients, when
// Config.ReadyTimeout is 0. Recovering a large JetStream store can take a while.
const DefaultReadyTimeout = 30 * time.Second

// ClusterName is the name of the NATS cluster the nodes' servers form: a server refuses routes
// from a cluster of another name.
const ClusterName = "lambdagw"

// DefaultName is the server's name when Config.Name is empty (a server alone).
const DefaultName = "lambdagw"

// ErrNotReady means the server did not become ready in time.
var ErrNotReady = errors.New("the NATS server did not become ready")

// Config configures the embedded server.
type Config struct {
	// Listen is host:port for clients; DefaultListen when empty. Port 0 picks a free port.
	Listen string
	// StoreDir is the folder JetStream keeps its streams in (created if absent). Required.
	StoreDir string
	// ReadyTimeout bounds Start's wait for the server (DefaultReadyTimeout when 0).
	ReadyTimeout time.Duration
	// Logger receives the server's log, under the name "nats". Nil discards it.
	Logger hclog.Logger
	// Users are the public NKeys (nkeys.CreateUser) of the clients allowed in; a client must
	// sign the server's nonce with the seed of one of them. Required unless Anonymous.
	Users []string
	// Anonymous admits clients without credentials instead: only for tests that stand in for
	// an external NATS.
	Anonymous bool
	// InProcessOnly opens no port for clients: the agent alone connects, in process
	// (InProcessConn), when no plugin needs the server. Listen and Users are then unused. (With
	// a cluster, see Start, a loopback port is open but admits no one.)
	InProcessOnly bool

	// Name is the server's name, unique among the servers of a cluster (the agent's node_name:
	// JetStream's Raft groups know a server by it); DefaultName when empty. No spaces.
	Name string
	// ClusterListen is host:port of the route listener, where the cluster's other servers
	// connect; empty: no cluster (JetStream standalone). Port 0 picks a free port (tests).
	ClusterListen string
	// Routes are the route addresses (host:port) of the cluster's other servers. The server's
	// own may be among them, so every node can be given the same list; JetStream sizes its first
	// quorum from the list's length, so listing every server is best.
	Routes []string
	// RouteTLS, when set, makes every route mutual TLS: the server accepts and dials routes with
	// this one config (cluster.RouteTLSConfig). Nil: routes are plain TCP, logged as a warning.
	RouteTLS *tls.Config
}

// MaxPayload is the largest message the embedded server takes: an asynchronous invocation's
// 1 MB payload with its headers.
const MaxPayload = 2 << 20

// Engine is a running embedded NATS server with JetStream.
type Engine struct {
	srv         *server.Server
	url         string
	clusterAddr string
	logger      hclog.Logger
	adapter     *logAdapter

	shutdownOnce sync.Once
	shutdownDone chan struct{}
}

// Start starts the server with JetStream and waits (bounded by ctx and Config.ReadyTimeout)
// until it accepts clients.
func Start(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsengine: a JetStream store folder (StoreDir) is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if len(cfg.Users) == 0 && !cfg.Anonymous && !cfg.InProcessOnly {
		return nil, errors.New("natsengine: no users: the server admits only clients with one of Config.Users' NKeys")
	}
	var users []*server.NkeyUser
	for _, u := range cfg.Users {
		if !nkeys.IsValidPublicUserKey(u) {
			return nil, fmt.Errorf("natsengine: %q is not the public NKey of a user", u)
		}
		users = append(users, &server.NkeyUser{Nkey: u})
	}
	host, port, err := splitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsengine: listen address %q: %w", cfg.Listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // the server's own default for 0 is 4222
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if strings.ContainsAny(cfg.Name, " \t\r\n") {
		return nil, fmt.Errorf("natsengine: server name %q: a NATS server name has no spaces", cfg.Name)
	}
	logger := cfg.Logger.Named("nats")
	opts := &server.Options{
		ServerName:             cfg.Name,
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		Nkeys:                  users,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		DontListen:             cfg.InProcessOnly,
		MaxPayload:             MaxPayload,
		Debug:                  logger.IsDebug(),
		Trace:                  logger.IsTrace(),
	}
	clustered := cfg.ClusterListen != ""
	if clustered {
		if err := clusterOptions(opts, cfg); err != nil {
			return nil, err
		}
		if err := keepStandaloneStore(cfg.StoreDir, logger); err != nil {
			return nil, err
		}
		if cfg.InProcessOnly {
			if err := inProcessOnlyClustered(opts); err != nil {
				return nil, err
			}
		}
	} else if len(cfg.Routes) > 0 {
		return nil, errors.New("natsengine: routes without a route listener (ClusterListen)")
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsengine: configuring the server: %w", err)
	}
	adapter := &logAdapter{logger: logger, fatal: make(chan string, 1)}
	adapter.banner.Store(true)
	srv.SetLoggerV2(adapter, opts.Debug, opts.Trace, false)

	e := &Engine{srv: srv, logger: logger, adapter: adapter, shutdownDone: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		defer close(started)
		srv.Start()
	}()

	if err := e.waitReady(ctx, cfg.ReadyTimeout, adapter.fatal); err != nil {
		// Shut down once Start has returned, so that it starts nothing after the shutdown.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case <-started:
		case <-sctx.Done():
		}
		_ = e.Shutdown(sctx)
		return nil, err
	}
	var clusterLog []any
	if clustered {
		if a := srv.ClusterAddr(); a != nil {
			e.clusterAddr = a.String()
		}
		clusterLog = []any{"name", cfg.Name, "cluster_listen", e.clusterAddr, "routes", cfg.Routes, "route_tls", cfg.RouteTLS != nil}
	}
	if cfg.InProcessOnly {
		adapter.banner.Store(false)
		logger.Info("NATS JetStream started, in process only", append([]any{"store_dir", cfg.StoreDir}, clusterLog...)...)
		e.warnPlainRoutes(cfg)
		return e, nil
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		_ = e.Shutdown(ctx)
		return nil, fmt.Errorf("natsengine: the server listens on %v, not TCP", srv.Addr())
	}
	e.url = clientURL(addr)
	adapter.banner.Store(false)
	logger.Info("NATS JetStream started", append([]any{"url", e.url, "store_dir", cfg.StoreDir, "users", len(users)}, clusterLog...)...)
	if !addr.IP.IsLoopback() {
		logger.Warn("NATS listens beyond loopback, without TLS: messages cross the network in clear", "address", addr.String())
	}
	e.warnPlainRoutes(cfg)
	return e, nil
}

// clusterOptions sets the route listener, the routes and clustered JetStream.
func clusterOptions(opts *server.Options, cfg Config) error {
	host, port, err := splitHostPort(cfg.ClusterListen)
	if err != nil {
		return fmt.Errorf("natsengine: route listener %q: %w", cfg.ClusterListen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	opts.Cluster = server.ClusterOpts{
		Name: ClusterName,
		Host: host,
		Port: port,
		// Clients are told of no other server than the one they reach: the agent and its plugins
		// use their own node's (the others admit other NKeys), and a loopback client port
		// gossiped to another machine would name the wrong server.
		NoAdvertise: true,
		TLSConfig:   cfg.RouteTLS,
	}
	// A route to a node that is down is tried again every second, on each of its connections:
	// say so at the first failure and then about once a minute, not every second.
	opts.ReconnectErrorReports = 60
	for _, r := range cfg.Routes {
		h, p, err := splitHostPort(r)
		if err != nil || h == "" || p == 0 {
			return fmt.Errorf("natsengine: route %q is not the host:port of another server's route listener", r)
		}
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort(h, strconv.Itoa(p))})
	}
	return nil
}

// inProcessOnlyClustered makes an in-process-only server that is part of a cluster. nats-server
// starts its route listener only once its client listener is open (Server.Start hands
// StartRouting a channel that only AcceptLoop closes), so with DontListen the server would never
// route, nor be ready. The client port is therefore open, on a random loopback port, and admits
// no one through it: its one user takes in-process connections only, and is the no-auth user so
// that the agent's in-process connection needs no credentials.
func inProcessOnlyClustered(opts *server.Options) error {
	// A fresh key whose seed is dropped: no client can sign as it.
	kp, err := nkeys.CreateUser()
	if err != nil {
		return fmt.Errorf("natsengine: making the in-process user's key: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return fmt.Errorf("natsengine: making the in-process user's key: %w", err)
	}
	opts.DontListen = false
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.Nkeys = []*server.NkeyUser{{Nkey: pub, AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}}}}
	opts.NoAuthUser = pub
	return nil
}

// keepStandaloneStore moves aside the store of a server that ran alone, before it starts in a
// cluster: JetStream would not know its streams (only the cluster's meta group makes streams),
// so it would delete them as orphans, with the events and messages they hold. They are kept
// for the operator instead (docs/configuration.md says how to run them).
func keepStandaloneStore(storeDir string, logger hclog.Logger) error {
	streams, err := standaloneStreams(storeDir)
	if err != nil || len(streams) == 0 {
		return err
	}
	kept := storeDir + ".standalone-" + time.Now().UTC().Format("20060102T150405")
	if err := os.Rename(storeDir, kept); err != nil {
		return fmt.Errorf("natsengine: moving aside the JetStream store of the server alone: %w", err)
	}
	logger.Warn("the JetStream store was a server's alone: joining the NATS cluster would delete its streams, so it is kept "+
		"aside and the server starts empty; messages still in it (events not yet run, queue messages) will not run unless "+
		"the node runs alone on it again", "streams", streams, "kept_in", kept)
	return nil
}

// standaloneStreams lists the streams (account/stream) in storeDir when a server alone left
// them there: folders of streams, and no JetStream meta group, which a clustered server keeps.
func standaloneStreams(storeDir string) ([]string, error) {
	root := filepath.Join(storeDir, server.JetStreamStoreDir)
	if _, err := os.Stat(filepath.Join(root, server.DEFAULT_SYSTEM_ACCOUNT, "_js_", "_meta_")); err == nil {
		return nil, nil
	}
	dirs, err := filepath.Glob(filepath.Join(root, "*", "streams", "*"))
	if err != nil {
		return nil, fmt.Errorf("natsengine: reading the JetStream store: %w", err)
	}
	var out []string
	for _, d := range dirs {
		rel, _ := filepath.Rel(root, d)
		acc, _, _ := strings.Cut(rel, string(filepath.Separator))
		out = append(out, acc+"/"+filepath.Base(d))
	}
	return out, nil
}

// warnPlainRoutes warns of routes without TLS.
func (e *Engine) warnPlainRoutes(cfg Config) {
	if cfg.ClusterListen != "" && cfg.RouteTLS == nil {
		e.logger.Warn("NATS routes without TLS: any server that reaches the route listener joins the NATS cluster and reads every event, "+
			"and events cross the network in clear; give every node cluster { tls { ca, cert, key } } (gateway tls ca create)",
			"cluster_listen", e.clusterAddr)
	}
}

// splitHostPort splits host:port, with a port of 0 to 65535.
func splitHostPort(hp string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("bad port")
	}
	return host, port, nil
}

// waitReady waits until the server accepts clients with JetStream on, a fatal error is logged,
// ctx ends or timeout passes.
func (e *Engine) waitReady(ctx context.Context, timeout time.Duration, fatal <-chan string) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case msg := <-fatal:
			return fmt.Errorf("natsengine: starting the server: %s", msg)
		case <-ctx.Done():
			return fmt.Errorf("natsengine: waiting for the server: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("natsengine: %w after %s", ErrNotReady, timeout)
		default:
		}
		// ReadyForConnections polls every 25ms for as long as it is given.
		if e.srv.ReadyForConnections(100*time.Millisecond) && e.srv.JetStreamEnabled() {
			return nil
		}
	}
}

// clientURL is the nats:// URL of addr, with the loopback address for a wildcard one.
func clientURL(addr *net.TCPAddr) string {
	ip := addr.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	u := url.URL{Scheme: "nats", Host: net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port))}
	return u.String()
}

// ClientURL is the URL clients connect to (nats://host:port, the port actually bound); "" for
// an in-process-only server.
func (e *Engine) ClientURL() string { return e.url }

// ClusterAddr is the route listener's address (the port actually bound); "" without a cluster.
func (e *Engine) ClusterAddr() string { return e.clusterAddr }

// InProcessConn connects to the server without the network (nats.InProcessServer).
func (e *Engine) InProcessConn() (net.Conn, error) { return e.srv.InProcessConn() }

// Shutdown stops the server and waits until it has (or ctx ends). It may be called more than
// once.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() {
		go func() {
			defer close(e.shutdownDone)
			e.adapter.banner.Store(true) // "Initiating Shutdown...", "Server Exiting.."
			e.srv.Shutdown()
			e.srv.WaitForShutdown()
			e.logger.Info("NATS JetStream stopped")
		}()
	})
	select {
	case <-e.shutdownDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("natsengine: waiting for the server to shut down: %w", ctx.Err())
	}
}

// logAdapter is the server's Logger on an hclog.Logger. The server's Fatalf would exit the
// process with its own logger; here it is logged as an error and ends Start with an error.
//
// While banner is set (starting, until the engine logs its own "NATS JetStream started", and
// stopping) the server's notices are logged at DEBUG: they are its startup banner (version,
// JetStream limits, listening address) and shutdown steps, which that line and "NATS
// JetStream stopped" sum up.
type logAdapter struct {
	logger hclog.Logger
	fatal  chan string
	banner atomic.Bool
}

var _ server.Logger = (*logAdapter)(nil)

func (l *logAdapter) Noticef(format string, v ...any) {
	if l.banner.Load() {
		l.logger.Debug(fmt.Sprintf(format, v...))
		return
	}
	l.logger.Info(fmt.Sprintf(format, v...))
}
func (l *logAdapter) Warnf(format string, v ...any)  { l.logger.Warn(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Errorf(format string, v ...any) { l.logger.Error(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Debugf(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Tracef(format string, v ...any) { l.logger.Trace(fmt.Sprintf(format, v...)) }

func (l *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.logger.Error(msg, "fatal", true)
	select {
	case l.fatal <- msg:
	default:
	}
}

// OtherServers counts the servers that routes name besides this one, whose route listener is
// clusterListen: a route is this server's own when it has the listener's port and one of this
// machine's addresses, as nats-server itself tells a route to itself. Host names are resolved
// (bounded by ctx); one that does not resolve counts as another server.
func OtherServers(ctx context.Context, clusterListen string, routes []string) int {
	_, ownPort, _ := net.SplitHostPort(clusterListen)
	local := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok {
				local[ipnet.IP.String()] = true
			}
		}
	}
	isLocal := func(host string) bool {
		if ip := net.ParseIP(host); ip != nil {
			return local[ip.String()]
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ips, _ := net.DefaultResolver.LookupIPAddr(rctx, host)
		for _, ip := range ips {
			if local[ip.IP.String()] {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	n := 0
	for _, r := range routes {
		host, port, err := net.SplitHostPort(r)
		if err != nil || seen[r] {
			continue
		}
		seen[r] = true
		if port == ownPort && isLocal(host) {
			continue
		}
		n++
	}
	return n
}
