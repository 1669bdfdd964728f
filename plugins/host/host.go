// Package host runs the agent's plugins: it checks each binary's SHA-256 before starting it
// (go-plugin's SecureConfig), talks to it over gRPC with AutoMTLS, decodes the plugin's config
// block against the schema the plugin gives, and supervises it: a plugin that exits is started
// again with backoff, and is given its configuration and mappings again. Plugins' log lines
// reach the agent's log under the plugin's name.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/hcl/v2"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/logfmt"
)

// Config configures a Host.
type Config struct {
	Plugins []config.Plugin
	// HostInfo is given to every plugin (node_name, region, nats_url, nats_nkey_seed); data_dir
	// is added per plugin: DataDir/<name>. It may hold secrets: it is never logged.
	HostInfo map[string]string
	DataDir  string
	// Triggers is the gateway as trigger plugins see it (Deliver, SendOnFailure).
	Triggers sdk.Host
	Logger   hclog.Logger
	// StartTimeout bounds one start of a plugin (launch, handshake, configure).
	StartTimeout time.Duration
}

// Kinds of plugin.
const (
	KindTrigger   = "trigger"
	KindExtension = "extension"
)

// States of a plugin.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	// StateFailed: the last start failed or the plugin exited; it is started again after
	// its backoff (see Status.NextStart).
	StateFailed = "failed"
	// StateRefused: its configuration does not decode; it stays down until the agent is
	// restarted with a fixed file.
	StateRefused = "refused"
	StateStopped = "stopped"
)

// Status is a plugin's health, as `gateway plugins` and the API show it.
type Status struct {
	Name      string              `json:"name"`
	Path      string              `json:"path"`
	Kinds     []string            `json:"kinds"`
	State     string              `json:"state"`
	PID       int                 `json:"pid,omitempty"`
	Restarts  int                 `json:"restarts"`
	LastError string              `json:"last_error,omitempty"`
	Since     time.Time           `json:"since"`
	NextStart *time.Time          `json:"next_start,omitempty"`
	Mappings  []sdk.MappingStatus `json:"mappings,omitempty"`
	// TelemetryDropped counts telemetry events an extension was too slow to take.
	TelemetryDropped int64 `json:"telemetry_dropped,omitempty"`
}

// Backoff of restarts: doubling from backoffMin to backoffMax; a plugin that ran for
// backoffReset starts again from backoffMin.
var (
	backoffMin   = 500 * time.Millisecond
	backoffMax   = 30 * time.Second
	backoffReset = time.Minute
	pollInterval = 250 * time.Millisecond
	statusEvery  = 2 * time.Second
)

// Host runs the plugins.
type Host struct {
	cfg    Config
	logger hclog.Logger
	procs  map[string]*proc
	order  []string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// telemetrySubs counts the running extensions taking telemetry and authorizers the plugins
	// that ever said they authorize, so the invocation path asks nothing of a host without them.
	telemetrySubs atomic.Int32
	authorizers   atomic.Int32
}

// proc is one plugin and its supervisor's state.
type proc struct {
	cfg    config.Plugin
	host   *Host
	logger hclog.Logger

	mu      sync.Mutex
	status  Status
	trigger *sdk.TriggerClient
	ext     *sdk.ExtensionClient
	caps    sdk.Capabilities
	// wasAuthorizer: the plugin said it authorizes requests, once; while it is down (between
	// restarts) requests are denied rather than let through.
	wasAuthorizer bool
	telemetry     chan sdk.TelemetryEvent
	mappings      []sdk.Mapping
	// configJSON is the decoded config block, once the plugin's schema was known.
	configJSON []byte
	// changed wakes the supervisor to push new mappings.
	changed chan struct{}
}

// New returns a host; Start starts its plugins.
func New(cfg Config) *Host {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	h := &Host{cfg: cfg, logger: cfg.Logger.Named("plugins"), procs: map[string]*proc{}}
	for _, p := range cfg.Plugins {
		h.procs[p.Name] = &proc{cfg: p, host: h, logger: h.logger.Named(p.Name), changed: make(chan struct{}, 1),
			status: Status{Name: p.Name, Path: p.Path, State: StateStarting, Since: time.Now()}}
		h.order = append(h.order, p.Name)
	}
	return h
}

// ErrConfig is a plugin configuration that does not decode against the plugin's schema.
var ErrConfig = errors.New("plugin configuration")

// ConfigError carries the diagnostics of a plugin's config block.
type ConfigError struct {
	Plugin string
	Diags  hcl.Diagnostics
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("plugin %q: %s", e.Plugin, e.Diags.Error())
}

func (e *ConfigError) Unwrap() error { return ErrConfig }

// Start starts every plugin and waits (up to each one's start timeout) for its first start.
// A configuration that does not decode is returned as a *ConfigError (the agent refuses to
// start, as for any mistake in its file); a binary that cannot start (a wrong checksum, a
// failed handshake, a crash) is logged, shown in Status, and started again with backoff.
func (h *Host) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	var errs []error
	for _, name := range h.order {
		p := h.procs[name]
		first := make(chan error, 1)
		h.wg.Add(1)
		go func() { defer h.wg.Done(); p.supervise(runCtx, first) }()
		select {
		case err := <-first:
			var ce *ConfigError
			if errors.As(err, &ce) {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			cancel()
			h.wg.Wait()
			return ctx.Err()
		}
	}
	if len(errs) > 0 {
		cancel()
		h.wg.Wait()
		return errors.Join(errs...)
	}
	return nil
}

// Shutdown stops every plugin (go-plugin asks each to exit, then kills it).
func (h *Host) Shutdown(context.Context) error {
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
	return nil
}

// HasTrigger says whether a plugin of that name is configured (whatever its state now).
func (h *Host) HasTrigger(name string) bool {
	_, ok := h.procs[name]
	return ok
}

// recordTimeout bounds a plugin's AcceptRecord: a record it does not take in time is kept by
// the gateway and handed again later.
const recordTimeout = 30 * time.Second

// SendRecord hands a record to plugin's target ("<plugin>:<target>" destinations). It fails
// when the plugin is not configured, not running now (between restarts), takes no records
// (sdk.ErrNoRecords) or refuses this one; the caller keeps the record and tries again.
func (h *Host) SendRecord(ctx context.Context, plugin string, r sdk.Record) error {
	p, ok := h.procs[plugin]
	if !ok {
		return fmt.Errorf("no plugin %q is configured on this node", plugin)
	}
	p.mu.Lock()
	trig := p.trigger
	p.mu.Unlock()
	if trig == nil {
		return fmt.Errorf("the plugin %s is not running as a trigger now", plugin)
	}
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	if err := trig.AcceptRecord(ctx, r); err != nil {
		return fmt.Errorf("the plugin %s did not take the record for %s: %w", plugin, r.Target, err)
	}
	return nil
}

// SetMappings gives a trigger plugin the mappings it runs on this node; they are pushed now
// and again after every restart.
func (h *Host) SetMappings(name string, ms []sdk.Mapping) {
	p, ok := h.procs[name]
	if !ok {
		return
	}
	p.mu.Lock()
	p.mappings = ms
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Status returns every plugin's health, in file order.
func (h *Host) Status() []Status {
	out := make([]Status, 0, len(h.order))
	for _, name := range h.order {
		p := h.procs[name]
		p.mu.Lock()
		st := p.status
		st.Mappings = append([]sdk.MappingStatus(nil), st.Mappings...)
		p.mu.Unlock()
		sort.Slice(st.Mappings, func(i, j int) bool { return st.Mappings[i].UUID < st.Mappings[j].UUID })
		out = append(out, st)
	}
	return out
}

func (p *proc) setState(state string, err error, mutate func(*Status)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status.State != state {
		p.status.Since = time.Now()
	}
	p.status.State = state
	if err != nil {
		p.status.LastError = err.Error()
	}
	if mutate != nil {
		mutate(&p.status)
	}
}

// supervise starts the plugin, watches it, and starts it again when it exits, until ctx
// ends. first gets the outcome of the first start.
func (p *proc) supervise(ctx context.Context, first chan<- error) {
	backoff := backoffMin
	lastErr := "" // of the previous failed start: the same failure again is logged at DEBUG
	for attempt := 0; ; attempt++ {
		started := time.Now()
		client, sockDir, err := p.start(ctx)
		report := func() {
			if attempt == 0 {
				first <- err
			}
		}
		var ce *ConfigError
		if errors.As(err, &ce) {
			p.logger.Error("the plugin's configuration is refused", "error", err)
			p.setState(StateRefused, err, nil)
			report()
			return
		}
		if err == nil {
			report()
			lastErr = ""
			err = p.run(ctx, client)
			client.Kill()
			// A plugin that died without its clean-up (SIGKILL) leaves its socket there.
			_ = os.RemoveAll(sockDir)
			if ctx.Err() != nil {
				p.setState(StateStopped, nil, func(s *Status) { s.PID = 0 })
				return
			}
			p.logger.Error("the plugin exited; starting it again", "error", err, "after", backoff)
		} else {
			if ctx.Err() != nil {
				p.setState(StateStopped, nil, nil)
				report()
				return
			}
			// Reported once; retried quietly, since a refused binary stays refused until
			// someone acts on the message.
			if msg := err.Error(); msg != lastErr {
				p.logger.Error("the plugin did not start; retrying with backoff", "error", err, "retry_in", backoff)
				lastErr = msg
			} else {
				p.logger.Debug("the plugin did not start, again", "error", err, "retry_in", backoff)
			}
		}
		if time.Since(started) > backoffReset {
			backoff = backoffMin
		}
		next := time.Now().Add(backoff)
		p.setState(StateFailed, err, func(s *Status) { s.PID = 0; s.NextStart = &next; s.Restarts++ })
		if client == nil {
			report()
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			p.setState(StateStopped, nil, func(s *Status) { s.NextStart = nil })
			return
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// start launches the plugin and configures it. On success the plugin runs; the caller owns
// the client, and removes sockDir (the folder of the plugin's unix socket) once it is killed.
func (p *proc) start(ctx context.Context) (*plugin.Client, string, error) {
	p.setState(StateStarting, nil, func(s *Status) { s.NextStart = nil })
	sum, err := hex.DecodeString(p.cfg.Checksum)
	if err != nil {
		return nil, "", fmt.Errorf("checksum %q: %w", p.cfg.Checksum, err)
	}
	if err := checkBinary(p.cfg.Path, sum); err != nil {
		return nil, "", err
	}
	dataDir := filepath.Join(p.host.cfg.DataDir, p.cfg.Name)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("creating the plugin's data folder: %w", err)
	}
	// go-plugin's server puts its socket in os.TempDir unless told otherwise, and only a clean
	// exit removes it: a folder of the host's own is removed whatever the plugin's end. Not
	// under data_dir, whose path may be too long for a socket's (108 bytes).
	sockDir, err := os.MkdirTemp("", "gateway-plugin-")
	if err != nil {
		return nil, "", fmt.Errorf("creating the plugin's socket folder: %w", err)
	}
	cmd := exec.Command(p.cfg.Path)
	cmd.Dir = dataDir
	cmd.Env = []string{plugin.EnvUnixSocketDir + "=" + sockDir} // go-plugin appends the agent's environment
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: {
			sdk.TriggerPluginName: &sdk.TriggerPlugin{}, sdk.ExtensionPluginName: &sdk.ExtensionPlugin{}}},
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logfmt.PluginClient(p.logger, cmd.Path), // the plugin's lines once, under its name
		StartTimeout:     p.host.cfg.StartTimeout,
	})
	ok := false
	defer func() {
		if !ok {
			client.Kill()
			_ = os.RemoveAll(sockDir)
		}
	}()
	rpc, err := client.Client()
	if err != nil {
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return nil, "", fmt.Errorf("%s does not match the checksum in the agent's configuration (sha256:%s): refused (if you replaced the binary on purpose, `gateway plugin checksum %s` prints the new line)", p.cfg.Path, p.cfg.Checksum, p.cfg.Path)
		}
		return nil, "", fmt.Errorf("starting %s: the gateway's plugin handshake failed (a plugin binary serves with plugins/sdk's Serve, for protocol version %d): %w", p.cfg.Path, sdk.ProtocolVersion, err)
	}
	sctx, cancel := context.WithTimeout(ctx, p.host.cfg.StartTimeout)
	defer cancel()
	var kinds []string
	var schema sdk.Schema
	trig, tSchema, err := dispense[*sdk.TriggerClient](sctx, rpc, sdk.TriggerPluginName, sdk.TriggerAPIVersion)
	if err != nil {
		return nil, "", err
	}
	if trig != nil {
		kinds, schema = append(kinds, KindTrigger), tSchema
	}
	ext, eSchema, err := dispense[*sdk.ExtensionClient](sctx, rpc, sdk.ExtensionPluginName, sdk.ExtensionAPIVersion)
	if err != nil {
		return nil, "", err
	}
	if ext != nil {
		kinds = append(kinds, KindExtension)
		if trig == nil {
			schema = eSchema // a binary serving both gives both the same schema
		}
	}
	if len(kinds) == 0 {
		return nil, "", fmt.Errorf("%s serves neither a trigger nor an extension", p.cfg.Path)
	}
	p.mu.Lock()
	cfgJSON := p.configJSON
	p.mu.Unlock()
	if cfgJSON == nil {
		cfgJSON, err = decodeConfig(p.cfg, schema)
		if err != nil {
			return nil, "", err
		}
		p.mu.Lock()
		p.configJSON = cfgJSON
		p.mu.Unlock()
	}
	info := map[string]string{}
	for k, v := range p.host.cfg.HostInfo {
		info[k] = v
	}
	info["data_dir"] = dataDir
	info["plugin_name"] = p.cfg.Name
	req := sdk.ConfigureRequest{Config: cfgJSON, HostInfo: info}
	var diags []sdk.Diagnostic
	if trig != nil {
		if diags, err = trig.Configure(sctx, req, p.host.cfg.Triggers); err != nil {
			return nil, "", fmt.Errorf("configuring the trigger: %w", err)
		}
	}
	var caps sdk.Capabilities
	if ext != nil && len(diags) == 0 {
		if diags, err = ext.Configure(sctx, req); err != nil {
			return nil, "", fmt.Errorf("configuring the extension: %w", err)
		}
		if caps, err = ext.Capabilities(sctx); err != nil {
			return nil, "", fmt.Errorf("asking the extension what it wants: %w", err)
		}
	}
	if len(diags) > 0 {
		return nil, "", &ConfigError{Plugin: p.cfg.Name, Diags: pluginDiags(p.cfg, diags)}
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	p.mu.Lock()
	p.trigger, p.ext, p.caps = trig, ext, caps
	if caps.Authorizer && !p.wasAuthorizer {
		p.wasAuthorizer = true
		p.host.authorizers.Add(1)
	}
	if ext != nil && caps.Telemetry {
		// Events queue up from now; run streams them.
		p.telemetry = make(chan sdk.TelemetryEvent, telemetryBuffer)
		p.host.telemetrySubs.Add(1)
	}
	p.mu.Unlock()
	p.setState(StateRunning, nil, func(s *Status) { s.PID = pid; s.Kinds = kinds; s.LastError = "" })
	p.logger.Info("plugin started", "path", p.cfg.Path, "pid", pid, "kinds", kinds, "telemetry", caps.Telemetry, "authorizer", caps.Authorizer)
	ok = true
	return client, sockDir, nil
}

// run pushes mappings and watches the plugin until it exits or ctx ends.
func (p *proc) run(ctx context.Context, client *plugin.Client) error {
	p.mu.Lock()
	trig, ext, ch := p.trigger, p.ext, p.telemetry
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.telemetry != nil {
			p.host.telemetrySubs.Add(-1)
		}
		p.trigger, p.ext, p.caps, p.telemetry = nil, nil, sdk.Capabilities{}, nil
		p.mu.Unlock()
	}()
	if ch != nil {
		// The telemetry stream lives as long as this run of the plugin.
		tctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			if err := ext.Telemetry(tctx, ch); err != nil && tctx.Err() == nil {
				p.logger.Warn("the telemetry stream to the plugin ended", "error", err)
			}
		}()
	}
	push := func() error {
		if trig == nil {
			return nil
		}
		p.mu.Lock()
		ms := p.mappings
		p.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, p.host.cfg.StartTimeout)
		defer cancel()
		st, err := trig.SetMappings(cctx, ms)
		if err != nil {
			return fmt.Errorf("giving the plugin its mappings: %w", err)
		}
		p.setState(StateRunning, nil, func(s *Status) { s.Mappings = st })
		return nil
	}
	if err := push(); err != nil {
		return err
	}
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	lastStatus := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.changed:
			if err := push(); err != nil {
				if client.Exited() {
					return errors.New("the plugin exited")
				}
				p.logger.Warn("could not update the plugin's mappings", "error", err)
			}
		case <-poll.C:
			if client.Exited() {
				return errors.New("the plugin exited")
			}
			if trig != nil && time.Since(lastStatus) >= statusEvery {
				lastStatus = time.Now()
				cctx, cancel := context.WithTimeout(ctx, statusEvery)
				st, err := trig.Status(cctx)
				cancel()
				if err == nil {
					p.setState(StateRunning, nil, func(s *Status) { s.Mappings = st })
				}
			}
		}
	}
}

// telemetryBuffer is how many events wait for a slow extension before newer ones are dropped
// (and counted): telemetry never slows invocations down.
const telemetryBuffer = 4096

// Telemetry hands an event to every running extension that wants telemetry, without waiting.
func (h *Host) Telemetry(ev sdk.TelemetryEvent) {
	for _, name := range h.order {
		p := h.procs[name]
		p.mu.Lock()
		ch := p.telemetry
		if ch != nil {
			select {
			case ch <- ev:
			default:
				p.status.TelemetryDropped++
			}
		}
		p.mu.Unlock()
	}
}

// TelemetryWanted says whether a running extension takes telemetry now.
func (h *Host) TelemetryWanted() bool { return h.telemetrySubs.Load() > 0 }

// Authorizing says whether function-URL requests are to be asked about (an authorizer plugin
// is configured, running or between restarts).
func (h *Host) Authorizing() bool { return h.authorizers.Load() > 0 }

// authorizeTimeout bounds an authorizer's answer.
const authorizeTimeout = 5 * time.Second

// Authorize asks every running authorizer extension, in file order, about a function-URL
// request; the first denial wins. An authorizer that fails to answer denies (503): a request
// is never let through unchecked.
func (h *Host) Authorize(ctx context.Context, req sdk.AuthorizeRequest) (sdk.AuthorizeResponse, bool) {
	asked := false
	for _, name := range h.order {
		p := h.procs[name]
		p.mu.Lock()
		ext, caps, was := p.ext, p.caps, p.wasAuthorizer
		p.mu.Unlock()
		isAuthorizer := caps.Authorizer
		if ext == nil && was {
			// An authorizer between restarts still denies: requests are never let through unchecked.
			return sdk.AuthorizeResponse{Status: 503, Message: fmt.Sprintf("the authorizer plugin %s is not running", name)}, true
		}
		if ext == nil || !isAuthorizer {
			continue
		}
		asked = true
		actx, cancel := context.WithTimeout(ctx, authorizeTimeout)
		resp, err := ext.Authorize(actx, req)
		cancel()
		if err != nil {
			p.logger.Error("the authorizer did not answer", "error", err)
			return sdk.AuthorizeResponse{Status: 503, Message: fmt.Sprintf("the authorizer plugin %s did not answer", name)}, true
		}
		if !resp.Allow {
			if resp.Status == 0 {
				resp.Status = 403
			}
			return resp, true
		}
	}
	return sdk.AuthorizeResponse{Allow: true}, asked
}

// checkBinary refuses a missing file or one whose SHA-256 is not sum, with a clear word
// (go-plugin checks it again, on the file it runs).
func checkBinary(path string, sum []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening the plugin binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		return fmt.Errorf("reading the plugin binary: %w", err)
	}
	if got := h.Sum(nil); string(got) != string(sum) {
		return fmt.Errorf("%s has sha256:%x, not the sha256:%x of the agent's configuration: refused (if you replaced the binary on purpose, `gateway plugin checksum %s` prints the new line)", path, got, sum, path)
	}
	return nil
}

// FileChecksum returns the "sha256:<hex>" line of a binary, for the agent's configuration.
func FileChecksum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// typedClient is what dispense needs of a plugin type's client.
type typedClient interface {
	Schema(ctx context.Context) (int, sdk.Schema, error)
}

// dispense returns the plugin's client of one plugin type, or the zero value when the binary
// does not serve that type.
func dispense[C typedClient](ctx context.Context, rpc plugin.ClientProtocol, name string, apiVersion int) (C, sdk.Schema, error) {
	var zero C
	raw, err := rpc.Dispense(name)
	if err != nil {
		return zero, sdk.Schema{}, fmt.Errorf("dispensing the %s: %w", name, err)
	}
	c := raw.(C)
	version, schema, err := c.Schema(ctx)
	switch {
	case errors.Is(err, sdk.ErrNotServed):
		return zero, sdk.Schema{}, nil
	case err != nil:
		return zero, sdk.Schema{}, fmt.Errorf("asking the plugin for its %s schema: %w", name, err)
	case version != apiVersion:
		return zero, sdk.Schema{}, fmt.Errorf("the plugin speaks %s API version %d; this agent speaks %d", name, version, apiVersion)
	}
	return c, schema, nil
}
