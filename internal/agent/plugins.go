package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/internal/natsengine"
	"github.com/lambdagw/gateway/internal/natsq"
	"github.com/lambdagw/gateway/plugins/host"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/sandbox"
)

// startNATS gives the agent its queues and streams: the external NATS of the nats block, or
// (the default, when a plugin may use it) JetStream embedded in the agent with its data in
// data_dir. It returns the URL plugins reach it at and the agent's own publisher of on-failure
// records; both empty when the agent has neither plugins nor a nats url.
func (a *agent) startNATS(ctx context.Context, dataDir string) (string, gateway.QueuePublisher, error) {
	cfg := a.cfg.NATS
	url := cfg.URL
	if url == "" {
		if len(a.cfg.Plugins) == 0 {
			return "", nil, nil
		}
		eng, err := natsengine.Start(ctx, natsengine.Config{Listen: cfg.Listen, StoreDir: filepath.Join(dataDir, "jetstream"), Logger: a.logger})
		if err != nil {
			return "", nil, fmt.Errorf("starting the embedded NATS JetStream on %s (nats { listen }): %w", cfg.Listen, err)
		}
		a.onClose(eng.Shutdown)
		url = eng.ClientURL()
		a.logger.Info("NATS JetStream runs in the agent", "url", url)
	}
	opts := []nats.Option{nats.Name("gateway " + a.cfg.NodeName), nats.MaxReconnects(-1)}
	if cfg.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	a.onClose(func(context.Context) error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		return "", nil, fmt.Errorf("opening JetStream at %s: %w", url, err)
	}
	return url, queuePublisher{js}, nil
}

type queuePublisher struct{ js jetstream.JetStream }

func (q queuePublisher) PublishQueue(ctx context.Context, name string, body []byte) error {
	if err := natsq.Validate(name); err != nil {
		return fmt.Errorf("%w: %v", gateway.ErrInvalidQueue, err)
	}
	return natsq.Publish(ctx, q.js, name, body, nil)
}

// lateTriggers is the gateway's sdk.Host, set once the gateway exists (the plugin host is
// made before it, so the gateway can check trigger plugins' names).
type lateTriggers struct{ gw *gateway.Gateway }

func (l *lateTriggers) Deliver(ctx context.Context, b sdk.Batch) (sdk.BatchResult, error) {
	return l.gw.TriggerHost().Deliver(ctx, b)
}

func (l *lateTriggers) SendOnFailure(ctx context.Context, uuid string, record []byte) error {
	return l.gw.TriggerHost().SendOnFailure(ctx, uuid, record)
}

// devPlugins are the built-in trigger plugins beside the gateway binary (bin/gateway-trigger-*),
// which an -dev agent without plugin blocks runs, trusting each binary's checksum as it finds it.
func devPlugins(logger hclog.Logger) []config.Plugin {
	exe := os.Getenv("LAMBDAGW_EXECUTABLE") // the original path of a binary re-executed sealed
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil
		}
	}
	paths, _ := filepath.Glob(filepath.Join(filepath.Dir(exe), "gateway-trigger-*"))
	var out []config.Plugin
	for _, p := range paths {
		sum, err := host.FileChecksum(p)
		if err != nil {
			continue
		}
		name := strings.TrimPrefix(filepath.Base(p), "gateway-trigger-")
		out = append(out, config.Plugin{Name: name, Path: p, Checksum: strings.TrimPrefix(sum, "sha256:")})
	}
	if len(out) > 0 {
		logger.Warn("-dev: running the built-in trigger plugins found beside the binary, trusting their checksums as found; a configured agent names each plugin's checksum",
			"plugins", len(out), "folder", filepath.Dir(exe))
	}
	return out
}

// teeLogs writes function log lines to the log store and hands them to the extensions as
// telemetry: the runtime's lines as function events, the gateway's own START, END and REPORT as
// platform events (never a line the function printed, whatever it says).
type teeLogs struct {
	store sandbox.LogSink
	host  *host.Host
}

func (t teeLogs) Append(function string, lines ...string) {
	t.store.Append(function, lines...)
	t.telemetry(function, false, lines)
}

func (t teeLogs) Platform(function string, lines ...string) {
	t.store.Platform(function, lines...)
	t.telemetry(function, true, lines)
}

func (t teeLogs) telemetry(function string, platform bool, lines []string) {
	if !t.host.TelemetryWanted() {
		return
	}
	now := time.Now()
	for _, l := range lines {
		ev := sdk.TelemetryEvent{Type: sdk.EventFunction, Time: now, Function: function}
		for prefix, typ := range platformLines {
			if platform && strings.HasPrefix(l, prefix) {
				ev.Type = typ
				rest := strings.TrimPrefix(l, prefix)
				ev.RequestID, _, _ = strings.Cut(rest, "\t")
				ev.RequestID, _, _ = strings.Cut(ev.RequestID, " ")
				break
			}
		}
		ev.Record, _ = json.Marshal(l)
		t.host.Telemetry(ev)
	}
}

// platformLines are the runtime's lifecycle lines, by prefix.
var platformLines = map[string]string{
	"START RequestId: ":  sdk.EventPlatformStart,
	"END RequestId: ":    "platform.runtimeDone",
	"REPORT RequestId: ": sdk.EventPlatformReport,
}
