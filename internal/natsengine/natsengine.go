// Package natsengine runs NATS JetStream embedded in the agent's process: the server the agent's
// queues and streams live in, and the one trigger plugins connect to (HostInfo "nats_url").
//
// The server listens on TCP (plugins are other processes) at the configured address only (no
// monitoring, cluster, gateway, leaf node, websocket or MQTT port), admits only clients holding
// one of the configured NKeys, keeps JetStream's store in a folder of the agent's data dir,
// installs no signal handlers, and logs through the agent's hclog logger.
package natsengine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// DefaultListen is where the server listens when Config.Listen is empty.
const DefaultListen = "127.0.0.1:4222"

// DefaultReadyTimeout bounds how long Start waits for the server to accept clients, when
// Config.ReadyTimeout is 0. Recovering a large JetStream store can take a while.
const DefaultReadyTimeout = 30 * time.Second

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
	// InProcessOnly opens no port: the agent alone connects, in process (InProcessConn), when
	// no plugin needs the server. Listen and Users are then unused.
	InProcessOnly bool
}

// MaxPayload is the largest message the embedded server takes: an asynchronous invocation's
// 1 MB payload with its headers.
const MaxPayload = 2 << 20

// Engine is a running embedded NATS server with JetStream.
type Engine struct {
	srv     *server.Server
	url     string
	logger  hclog.Logger
	adapter *logAdapter

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
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsengine: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("natsengine: listen address %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT // the server's own default for 0 is 4222
	}
	if host == "" {
		host = "0.0.0.0"
	}
	logger := cfg.Logger.Named("nats")
	opts := &server.Options{
		ServerName:             "lambdagw",
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
	if cfg.InProcessOnly {
		adapter.banner.Store(false)
		logger.Info("NATS JetStream started, in process only", "store_dir", cfg.StoreDir)
		return e, nil
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		_ = e.Shutdown(ctx)
		return nil, fmt.Errorf("natsengine: the server listens on %v, not TCP", srv.Addr())
	}
	e.url = clientURL(addr)
	adapter.banner.Store(false)
	logger.Info("NATS JetStream started", "url", e.url, "store_dir", cfg.StoreDir, "users", len(users))
	if !addr.IP.IsLoopback() {
		logger.Warn("NATS listens beyond loopback, without TLS: messages cross the network in clear", "address", addr.String())
	}
	return e, nil
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
