package main

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
)

// TestBinaryServesTheTrigger builds the plugin binary and runs it as the agent does: a
// subprocess started by go-plugin with the SDK's handshake, gRPC, AutoMTLS and the binary's
// SHA-256, then configures it and has it deliver an entry.
func TestBinaryServesTheTrigger(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin binary")
	}
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "gateway-trigger-redis")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sum := fileSHA256(t, bin)
	rs := startRedis(t, "")

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: {sdk.TriggerPluginName: &sdk.TriggerPlugin{}}},
		Cmd:              exec.Command(bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		Logger:           testLogger(t, "host"),
	})
	t.Cleanup(client.Kill)
	conn, err := client.Client()
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	raw, err := conn.Dispense(sdk.TriggerPluginName)
	if err != nil {
		t.Fatalf("dispensing the trigger: %v", err)
	}
	trig := raw.(*sdk.TriggerClient)
	ctx := context.Background()

	v, schema, err := trig.Schema(ctx)
	if err != nil || v != sdk.TriggerAPIVersion || len(schema.Attributes) != 3 || schema.Attributes[0].Name != "address" ||
		!schema.Attributes[0].Required {
		t.Fatalf("schema: version %d %+v, %v", v, schema, err)
	}
	host := &sdktest.Host{}
	diags, err := trig.Configure(ctx, sdk.ConfigureRequest{Config: []byte(`{"address":"` + rs.addr + `","db":0}`),
		HostInfo: map[string]string{"node_name": "n1"}}, host)
	if err != nil || len(diags) > 0 {
		t.Fatalf("Configure: %v %+v", err, diags)
	}
	m := mapping("binary", "bin")
	st, err := trig.SetMappings(ctx, []sdk.Mapping{m})
	if err != nil || len(st) != 1 || st[0].State != sdk.StateOK {
		t.Fatalf("SetMappings: %+v, %v", st, err)
	}
	id := rs.add(t, "bin", 1, func(int) map[string]any { return map[string]any{"data": "through the binary"} })[0]
	waitHost(t, host, "the entry", func(h *sdktest.Host) bool { return deliveries(h.Batches())[id] == 1 })
	rs.waitNoPending(t, "bin", groupOf(m))
}

func fileSHA256(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}
