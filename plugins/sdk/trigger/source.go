package trigger

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// SourceConfig is what a trigger adds to Source: how it connects, and how it runs a mapping.
// C is whatever Connect makes of the configuration block (a client, its options).
type SourceConfig[C any, R sdk.Runner] struct {
	// Name names the trigger in errors: "the <Name> trigger is not configured".
	Name string
	// Connect makes the connection of a Configure call. Diagnostics or an error refuse the
	// configuration and leave the source as it was.
	Connect func(ctx context.Context, req sdk.ConfigureRequest) (C, []sdk.Diagnostic, error)
	// Disconnect closes a connection Configure replaces (closing false) or Close ends (closing
	// true), once its runners have stopped. Nil: there is nothing to close.
	Disconnect func(conn C, closing bool)
	// SetupTimeout bounds the first attempt at setting each mapping up, within SetMappings.
	SetupTimeout time.Duration
	// NewRunner makes the runner of a mapping. It is called under the source's lock.
	NewRunner func(host sdk.Host, conn C, m sdk.Mapping) R
}

// Source is the part of an sdk.TriggerSource every trigger writes alike: Configure keeps the
// host and the connection, SetMappings and Status run a runner per mapping (an sdk.MappingSet
// under one lock), Close stops them. A trigger embeds it and adds Schema.
type Source[C any, R sdk.Runner] struct {
	cfg SourceConfig[C, R]

	mu         sync.Mutex
	configured bool
	host       sdk.Host
	conn       C
	ctx        context.Context // the runners' parent: ends on Close
	cancel     context.CancelFunc
	set        sdk.MappingSet[R]
}

// NewSource returns the source of cfg, not configured yet.
func NewSource[C any, R sdk.Runner](cfg SourceConfig[C, R]) *Source[C, R] {
	ctx, cancel := context.WithCancel(context.Background())
	return &Source[C, R]{cfg: cfg, ctx: ctx, cancel: cancel}
}

// Configure connects and keeps the host. Called again, it stops the mappings (the host gives
// them again) and closes the old connection.
func (s *Source[C, R]) Configure(ctx context.Context, req sdk.ConfigureRequest, host sdk.Host) ([]sdk.Diagnostic, error) {
	conn, diags, err := s.cfg.Connect(ctx, req)
	if len(diags) > 0 || err != nil {
		return diags, err
	}
	s.mu.Lock()
	s.set.StopAll()
	old, had := s.conn, s.configured
	s.host, s.conn, s.configured = host, conn, true
	s.mu.Unlock()
	if had && s.cfg.Disconnect != nil {
		s.cfg.Disconnect(old, false)
	}
	return nil, nil
}

// SetMappings starts the enabled mappings not running yet, restarts the changed ones and stops
// the others, and returns once the stopped ones have stopped. A mapping that cannot be set up
// now is reported in error and retried in the background.
func (s *Source[C, R]) SetMappings(ctx context.Context, mappings []sdk.Mapping) ([]sdk.MappingStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.configured {
		return nil, errors.New("the " + s.cfg.Name + " trigger is not configured")
	}
	return s.set.Set(ctx, s.ctx, mappings, s.cfg.SetupTimeout, func(m sdk.Mapping) R {
		return s.cfg.NewRunner(s.host, s.conn, m)
	})
}

// Status reports each mapping of the last SetMappings.
func (s *Source[C, R]) Status(context.Context) ([]sdk.MappingStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Status(), nil
}

// Conn returns the connection of the last Configure; false before one (or after Close). A
// trigger that takes records (sdk.RecordAcceptor) writes them with it.
func (s *Source[C, R]) Conn() (C, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn, s.configured
}

// Runner returns the runner of the mapping with uuid, if one is kept.
func (s *Source[C, R]) Runner(uuid string) (R, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Runner(uuid)
}

// Len is the number of runners kept.
func (s *Source[C, R]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Len()
}

// Close stops every mapping and closes the connection; the source is not configured any more.
// A plugin's process never calls it (it ends with the process); tests and an in-process host do.
func (s *Source[C, R]) Close() {
	s.mu.Lock()
	s.cancel()
	s.set.StopAll()
	conn, had := s.conn, s.configured
	var zero C
	s.conn, s.configured = zero, false
	s.mu.Unlock()
	if had && s.cfg.Disconnect != nil {
		s.cfg.Disconnect(conn, true)
	}
}
