package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/internal/natsengine"
	"github.com/lambdagw/gateway/plugins/host"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natsq"
	"github.com/lambdagw/gateway/plugins/sdk/natssource"
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
	"github.com/lambdagw/gateway/sandbox"
)

// startNATS gives the agent its durable asynchronous invocations, queues and streams: the
// external NATS of the nats block, or (the default) JetStream embedded in the agent with its
// data in data_dir, listening for plugins when there are any and in process only otherwise.
// It returns what plugins are told of it (HostInfo: its URL and, for the embedded one, the seed
// of their NKey), the agent's own publisher of on-failure records (nil without plugins or a nats
// url: no queues then), and the JetStream the events are kept on.
//
// With nats { cluster_listen, routes } the embedded servers of the nodes form one NATS cluster
// (clustered JetStream), its routes mutual TLS with routeTLS (the cluster port's certificates)
// when it is set.
func (a *agent) startNATS(ctx context.Context, dataDir string, routeTLS *tls.Config) (map[string]string, gateway.QueuePublisher, jetstream.JetStream, error) {
	cfg := a.cfg.NATS
	url := cfg.URL
	opts := []nats.Option{nats.Name("gateway " + a.cfg.NodeName), nats.MaxReconnects(-1)}
	if cfg.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	engine := natsengine.Config{StoreDir: filepath.Join(dataDir, "jetstream"), Logger: a.logger}
	if len(cfg.Routes) > 0 {
		// JetStream's Raft groups know a server by its name.
		engine.Name, engine.ClusterListen, engine.Routes, engine.RouteTLS = a.cfg.NodeName, cfg.ClusterListen, cfg.Routes, routeTLS
	}
	info := map[string]string{}
	if url == "" && len(a.cfg.Plugins) == 0 {
		// No plugin to serve: no port, the agent alone connects.
		engine.InProcessOnly = true
		eng, err := natsengine.Start(ctx, engine)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("starting the embedded NATS JetStream: %w", err)
		}
		a.onClose(eng.Shutdown)
		js, err := a.openJetStream("", "the embedded NATS", append(opts, nats.InProcessServer(eng))...)
		return nil, nil, js, err
	}
	if url == "" {
		// The embedded server admits three NKeys: the agent's and the plugins', made at each
		// start and never written anywhere, and the one of data_dir's client file, for the
		// operator's own producers and consumers.
		agentKey, err := nkeys.CreateUser()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("making the agent's NATS key: %w", err)
		}
		pluginKey, err := nkeys.CreateUser()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("making the plugins' NATS key: %w", err)
		}
		clientKey, err := clientNKey(filepath.Join(dataDir, natsClientSeedFile))
		if err != nil {
			return nil, nil, nil, err
		}
		var users []string
		for _, kp := range []nkeys.KeyPair{agentKey, pluginKey, clientKey} {
			pub, err := kp.PublicKey()
			if err != nil {
				return nil, nil, nil, fmt.Errorf("reading a NATS key: %w", err)
			}
			users = append(users, pub)
		}
		pluginSeed, err := pluginKey.Seed()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("reading the plugins' NATS key: %w", err)
		}
		engine.Listen, engine.Users = cfg.Listen, users
		eng, err := natsengine.Start(ctx, engine)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("starting the embedded NATS JetStream on %s (nats { listen }): %w", cfg.Listen, err)
		}
		a.onClose(eng.Shutdown)
		url = eng.ClientURL()
		info[natssource.HostInfoSeed] = string(pluginSeed)
		opts = append(opts, nats.Nkey(users[0], agentKey.Sign))
		a.logger.Info("NATS JetStream runs in the agent; clients sign in with an NKey", "url", url,
			"client_seed_file", filepath.Join(dataDir, natsClientSeedFile))
	}
	info[natssource.HostInfoURL] = url
	js, err := a.openJetStream(url, "NATS at "+url, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	return info, queuePublisher{js}, js, nil
}

// openJetStream connects to NATS at url ("" for an in-process server; what names it, for
// errors) and opens its JetStream; the connection closes with the agent.
func (a *agent) openJetStream(url, what string, opts ...nats.Option) (jetstream.JetStream, error) {
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", what, err)
	}
	a.onClose(func(context.Context) error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("opening the JetStream of %s: %w", what, err)
	}
	return js, nil
}

// natsClientSeedFile (in data_dir) holds the seed of the NKey the operator's own clients sign in
// to the embedded NATS with (nats --nkey FILE, nats.NkeyOptionFromSeed). It is made once and
// kept, so clients reconnect after a restart; deleting it makes a new one at the next start.
const natsClientSeedFile = "nats-client.nk"

// clientNKey reads the client seed file, making it (mode 0600) when there is none.
func clientNKey(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		kp, err := nkeys.ParseDecoratedNKey(b)
		if err != nil {
			return nil, fmt.Errorf("reading the NATS client key %s (delete it to make a new one): %w", path, err)
		}
		return kp, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the NATS client key: %w", err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("making the NATS client key: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("making the NATS client key: %w", err)
	}
	// Written under a temporary name, so a crash leaves no half-written key.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(seed, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("writing the NATS client key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("writing the NATS client key: %w", err)
	}
	return kp, nil
}

type queuePublisher struct{ js jetstream.JetStream }

func (q queuePublisher) PublishQueue(ctx context.Context, name string, body []byte) error {
	if err := natsq.Validate(name); err != nil {
		return fmt.Errorf("%w: %v", gateway.ErrInvalidQueue, err)
	}
	return natsq.Publish(ctx, q.js, name, body, nil)
}

// PeekQueue reads the queue's oldest messages by sequence (JetStream's get-next-by-subject),
// with no consumer: nothing is acknowledged, delivered or moved.
func (q queuePublisher) PeekQueue(ctx context.Context, name string, max int) ([]gateway.QueueMessage, error) {
	s, err := q.queueStream(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []gateway.QueueMessage
	for seq := uint64(1); len(out) < max; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(natsq.Subject(name)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // no message from seq on
		}
		if err != nil {
			return out, fmt.Errorf("reading queue %s: %w", name, err)
		}
		msg := gateway.QueueMessage{Sequence: m.Sequence, MessageID: strconv.FormatUint(m.Sequence, 10), Body: string(m.Data), Sent: m.Time}
		for k, vs := range m.Header {
			if len(vs) == 0 {
				continue
			}
			if k == nats.MsgIdHdr {
				msg.MessageID = vs[0]
			}
			if msg.Headers == nil {
				msg.Headers = map[string]string{}
			}
			msg.Headers[k] = vs[0]
		}
		out = append(out, msg)
		seq = m.Sequence + 1
	}
	return out, nil
}

// DeleteQueueMessage removes a message from the queue's stream, as an ack would.
func (q queuePublisher) DeleteQueueMessage(ctx context.Context, name string, seq uint64) error {
	s, err := q.queueStream(ctx, name)
	if err != nil {
		return err
	}
	err = s.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return fmt.Errorf("%w: queue %s has no message %d (already consumed or deleted)", gateway.ErrNotFound, name, seq)
	}
	return err
}

func (q queuePublisher) queueStream(ctx context.Context, name string) (jetstream.Stream, error) {
	if err := natsq.Validate(name); err != nil {
		return nil, fmt.Errorf("%w: %v", gateway.ErrInvalidQueue, err)
	}
	s, err := q.js.Stream(ctx, natsq.StreamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: queue %s does not exist: nothing was ever sent to it", gateway.ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up queue %s: %w", name, err)
	}
	return s, nil
}

// PublishStream puts a record on a stream as the stream plugin reads it: on the shard its
// partition key hashes to, the key in the record's header (natsstream.Publish).
func (q queuePublisher) PublishStream(ctx context.Context, name, partitionKey string, data []byte) (uint64, string, error) {
	if err := natsstream.Validate(name); err != nil {
		return 0, "", fmt.Errorf("%w: %v", gateway.ErrInvalidRecord, err)
	}
	if err := natsstream.ValidatePartitionKey(partitionKey); err != nil {
		return 0, "", fmt.Errorf("%w: %v", gateway.ErrInvalidRecord, err)
	}
	seq, err := natsstream.Publish(ctx, q.js, name, partitionKey, data)
	if err != nil {
		return 0, "", err
	}
	shards, err := natsstream.Shards(ctx, q.js, name)
	if err != nil {
		return seq, "", nil // stored; only its shard is unknown
	}
	return seq, natsstream.ShardID(natsstream.ShardFor(partitionKey, shards)), nil
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

func (t teeLogs) Log(function, requestID string, platform bool, lines []string) {
	t.store.Log(function, requestID, platform, lines)
	t.telemetry(function, requestID, platform, lines)
}

func (t teeLogs) telemetry(function, requestID string, platform bool, lines []string) {
	if !t.host.TelemetryWanted() {
		return
	}
	now := time.Now()
	for _, l := range lines {
		// A function's line carries no request id, as in Lambda's Telemetry API.
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
		if platform && strings.HasPrefix(l, `{"time":`) {
			// A JSON-format platform record (logging_config): its own type and record.
			var r struct {
				Type   string          `json:"type"`
				Record json.RawMessage `json:"record"`
			}
			if json.Unmarshal([]byte(l), &r) == nil && strings.HasPrefix(r.Type, "platform.") && len(r.Record) > 0 {
				ev.Type, ev.Record, ev.RequestID = r.Type, r.Record, requestID
			}
		}
		t.host.Telemetry(ev)
	}
}

// platformLines are the runtime's lifecycle lines, by prefix.
var platformLines = map[string]string{
	"START RequestId: ":  sdk.EventPlatformStart,
	"END RequestId: ":    "platform.runtimeDone",
	"REPORT RequestId: ": sdk.EventPlatformReport,
}
