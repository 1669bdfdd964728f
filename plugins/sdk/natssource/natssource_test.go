package natssource

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nkeys"

	"github.com/lambdagw/gateway/internal/natsengine"
	"github.com/lambdagw/gateway/internal/natsengine/natstest"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// startAgentNATS runs a server that admits only the user of the returned seed, as the agent's own.
func startAgentNATS(t *testing.T) (url, seed string) {
	t.Helper()
	pub, seed, _ := natstest.User(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := natsengine.Start(ctx, natsengine.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Users: []string{pub}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e.ClientURL(), seed
}

func request(t *testing.T, cfg map[string]string, info map[string]string) sdk.ConfigureRequest {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.ConfigureRequest{Config: b, HostInfo: info}
}

func TestConnectDiagnostics(t *testing.T) {
	for name, tc := range map[string]struct {
		req  sdk.ConfigureRequest
		attr string
	}{
		"no server":           {request(t, nil, nil), "url"},
		"no credentials file": {request(t, map[string]string{"url": "nats://127.0.0.1:1", "credentials_file": filepath.Join(t.TempDir(), "none.creds")}, nil), "credentials_file"},
	} {
		t.Run(name, func(t *testing.T) {
			conn, diags, err := Connect(tc.req, "test", "queues", hclog.NewNullLogger())
			if conn != nil || err != nil || len(diags) != 1 || diags[0].Attribute != tc.attr {
				t.Errorf("Connect = %v, %+v, %v; want one diagnostic on %s", conn, diags, err, tc.attr)
			}
		})
	}
}

func TestNKeyOptionWantsAUserSeed(t *testing.T) {
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	if _, err := NKeyOption(string(seed)); err == nil {
		t.Error("an account's seed was taken for a user's")
	}
	if _, err := NKeyOption("not a seed"); err == nil {
		t.Error("garbage was taken for a seed")
	}
}

// TestConnectToTheAgentsNATS: with no url, the agent's server and key from HostInfo are used.
func TestConnectToTheAgentsNATS(t *testing.T) {
	url, seed := startAgentNATS(t)
	conn, diags, err := Connect(request(t, nil, map[string]string{HostInfoURL: url, HostInfoSeed: seed}),
		"test", "queues", hclog.NewNullLogger())
	if conn == nil {
		t.Fatalf("Connect: %+v %v", diags, err)
	}
	defer conn.NC.Close()
	if conn.Region != DefaultRegion {
		t.Errorf("region %q, want %q", conn.Region, DefaultRegion)
	}
	if err := conn.NC.FlushTimeout(10 * time.Second); err != nil {
		t.Fatalf("not signed in with the agent's key: %v", err)
	}
	if _, err := conn.JS.AccountInfo(context.Background()); err != nil {
		t.Errorf("JetStream: %v", err)
	}
}

// runner is a runner that is set up at once and runs until stopped.
type runner struct {
	trigger.Base
	m   sdk.Mapping
	env Env
}

func (r *runner) Start(setupCtx, parent context.Context) {
	trigger.Start(&r.Base, r.m, setupCtx, parent, trigger.Setup[struct{}]{
		Logger: hclog.NewNullLogger(),
		SetUp:  func(context.Context) (struct{}, error) { return struct{}{}, nil },
		Run:    func(ctx context.Context, _ struct{}, _ bool) { <-ctx.Done() },
	})
}

func TestSourceKeepsRunnersPerConnection(t *testing.T) {
	url, seed := startAgentNATS(t)
	src := NewSource(SourceConfig[*runner]{Trigger: "test", What: "tests", Logger: hclog.NewNullLogger(),
		SetupTimeout: time.Second, NewRunner: func(env Env, m sdk.Mapping) *runner { return &runner{m: m, env: env} }})
	t.Cleanup(src.Close)
	ctx := context.Background()
	if _, err := src.SetMappings(ctx, []sdk.Mapping{{UUID: "a", Enabled: true}}); err == nil {
		t.Error("SetMappings before Configure did not fail")
	}
	req := request(t, nil, map[string]string{HostInfoURL: url, HostInfoSeed: seed, "region": "eu-west-1"})
	if diags, err := src.Configure(ctx, req, nil); len(diags) != 0 || err != nil {
		t.Fatalf("Configure: %+v %v", diags, err)
	}
	st, err := src.SetMappings(ctx, []sdk.Mapping{{UUID: "a", Enabled: true}, {UUID: "b"}})
	if err != nil || len(st) != 2 || st[0].State != sdk.StateOK || st[1].Message != "disabled" {
		t.Fatalf("SetMappings: %+v %v", st, err)
	}
	a, ok := src.Runner("a")
	if !ok || a.env.Conn == nil || a.env.Conn.Region != "eu-west-1" {
		t.Fatalf("runner a: %+v", a)
	}
	// Configuring again stops the runners and closes the old connection.
	if diags, err := src.Configure(ctx, req, nil); len(diags) != 0 || err != nil {
		t.Fatalf("Configure again: %+v %v", diags, err)
	}
	select {
	case <-a.Done():
	default:
		t.Error("a runner outlived its connection")
	}
	if !a.env.Conn.NC.IsClosed() {
		t.Error("the old connection is still open")
	}
	if n := src.Len(); n != 0 {
		t.Errorf("%d runners after Configure", n)
	}
	if _, err := src.SetMappings(ctx, []sdk.Mapping{{UUID: "a", Enabled: true}}); err != nil {
		t.Fatal(err)
	}
	a2, _ := src.Runner("a")
	src.Close()
	select {
	case <-a2.Done():
	default:
		t.Error("a runner outlived Close")
	}
	if _, err := src.SetMappings(ctx, nil); err == nil {
		t.Error("SetMappings after Close did not fail")
	}
}
