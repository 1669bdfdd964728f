package natssource

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// Env is what a NATS trigger's runner is made with: the host to deliver to and the connection.
type Env struct {
	Host sdk.Host
	Conn *Conn
}

// SourceConfig says what a NATS trigger reads and how it runs a mapping.
type SourceConfig[R sdk.Runner] struct {
	// Trigger names the trigger ("queue"): its connection is "lambdagw <Trigger> trigger" in the
	// server's monitoring.
	Trigger string
	// What is what it reads, in the plural ("queues"), for its schema and diagnostics.
	What   string
	Logger hclog.Logger
	// SetupTimeout bounds the first attempt at setting each mapping up, within SetMappings.
	SetupTimeout time.Duration
	// NewRunner makes the runner of a mapping. It is called under the source's lock.
	NewRunner func(Env, sdk.Mapping) R
}

// Source is a NATS trigger's sdk.TriggerSource but for its runners: the configuration block,
// the connection (made again by each Configure), and the runners of the mappings, kept by an
// sdk.MappingSet under one lock. A plugin's source embeds it and serves it.
type Source[R sdk.Runner] struct {
	cfg SourceConfig[R]

	mu     sync.Mutex
	env    Env
	ctx    context.Context // the runners' parent: ends on Close
	cancel context.CancelFunc
	set    sdk.MappingSet[R]
}

var _ sdk.TriggerSource = (*Source[sdk.Runner])(nil)

// NewSource returns the source of cfg, not configured yet.
func NewSource[R sdk.Runner](cfg SourceConfig[R]) *Source[R] {
	ctx, cancel := context.WithCancel(context.Background())
	return &Source[R]{cfg: cfg, ctx: ctx, cancel: cancel}
}

// Schema is the configuration block: url and credentials_file.
func (s *Source[R]) Schema() sdk.Schema { return Schema(s.cfg.What) }

// Configure connects to NATS (reconnecting forever, also when the server is not up yet) and
// keeps the host. Called again, it stops the mappings (the host gives them again) and reconnects.
func (s *Source[R]) Configure(_ context.Context, req sdk.ConfigureRequest, host sdk.Host) ([]sdk.Diagnostic, error) {
	conn, diags, err := Connect(req, "lambdagw "+s.cfg.Trigger+" trigger", s.cfg.What, s.cfg.Logger)
	if conn == nil {
		return diags, err
	}
	s.mu.Lock()
	s.set.StopAll()
	old := s.env.Conn
	s.env = Env{Host: host, Conn: conn}
	s.mu.Unlock()
	if old != nil {
		old.NC.Close()
	}
	return nil, nil
}

// SetMappings starts the enabled mappings not running yet, restarts the changed ones and stops
// the others, and returns once the stopped ones have stopped. A mapping that cannot be set up
// now is reported in error and retried in the background.
func (s *Source[R]) SetMappings(ctx context.Context, mappings []sdk.Mapping) ([]sdk.MappingStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env.Conn == nil {
		return nil, errors.New("the " + s.cfg.Trigger + " trigger is not configured")
	}
	env := s.env
	return s.set.Set(ctx, s.ctx, mappings, s.cfg.SetupTimeout, func(m sdk.Mapping) R { return s.cfg.NewRunner(env, m) })
}

// Status reports each mapping of the last SetMappings.
func (s *Source[R]) Status(context.Context) ([]sdk.MappingStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Status(), nil
}

// Runner returns the runner of the mapping with uuid, if one runs.
func (s *Source[R]) Runner(uuid string) (R, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Runner(uuid)
}

// Len is the number of mappings kept.
func (s *Source[R]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Len()
}

// Close stops every mapping and closes the connection once what the runners published last
// (acks, checkpoints) is flushed. A plugin's process never calls it (it ends with the process);
// tests and an in-process host do.
func (s *Source[R]) Close() {
	s.mu.Lock()
	s.cancel()
	s.set.StopAll()
	conn := s.env.Conn
	s.env = Env{}
	s.mu.Unlock()
	if conn != nil {
		_ = conn.NC.FlushTimeout(5 * time.Second)
		conn.NC.Close()
	}
}
