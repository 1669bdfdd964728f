package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
)

var testPlugin string // the built internal/testfixtures/testplugin

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "host-test-")
	if err != nil {
		panic(err)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	cmd := exec.Command("go", "build", "-o", testPlugin, "../../internal/testfixtures/testplugin")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// pluginBlock parses a plugin block's config body from HCL source.
func pluginBlock(t *testing.T, src, checksum string) config.Plugin {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "agent.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	content, _ := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "config"}}})
	p := config.Plugin{Name: "t", Path: testPlugin, Checksum: checksum,
		DeclRange: hcl.Range{Filename: "agent.hcl", Start: hcl.Pos{Line: 1, Column: 1}, End: hcl.Pos{Line: 1, Column: 2}}}
	if len(content.Blocks) > 0 {
		p.Config = content.Blocks[0].Body
	}
	return p
}

func checksum(t *testing.T) string {
	t.Helper()
	sum, err := FileChecksum(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(sum, "sha256:")
}

func newHost(t *testing.T, p config.Plugin, trig sdk.Host) *Host {
	t.Helper()
	h := New(Config{Plugins: []config.Plugin{p}, DataDir: t.TempDir(), Triggers: trig, StartTimeout: 20 * time.Second,
		HostInfo: map[string]string{"node_name": "n1"}, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}})})
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSupervisedPlugin: a real plugin process is started with its config decoded from HCL,
// gets its mappings and delivers through the host; killed with SIGKILL, it is started again
// and given its configuration and mappings again; Shutdown leaves no process behind, nor the
// socket of the killed one in the temporary folder.
func TestSupervisedPlugin(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where go-plugin and the host put sockets
	rec := &sdktest.Host{}
	h := newHost(t, pluginBlock(t, "config {\n  greeting = \"hello\"\n  tags = [\"a\"]\n}\n", checksum(t)), rec)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.SetMappings("t", []sdk.Mapping{{UUID: "m1", Source: "orders", Enabled: true}})
	pids := map[int]bool{}
	delivered := func(n int) func() bool {
		return func() bool {
			for _, b := range rec.Batches() {
				var ev struct {
					Greeting string
					PID      int
					Source   string
				}
				if err := json.Unmarshal(b.Event, &ev); err != nil || ev.Greeting != "hello" || ev.Source != "orders" || b.MappingUUID != "m1" {
					t.Fatalf("batch %s %s", b.MappingUUID, b.Event)
				}
				pids[ev.PID] = true
			}
			return len(pids) >= n
		}
	}
	waitFor(t, "a batch from the plugin", delivered(1))
	st := h.Status()[0]
	if st.State != StateRunning || st.PID == 0 || len(st.Kinds) != 2 || st.Kinds[0] != KindTrigger || st.Kinds[1] != KindExtension {
		t.Fatalf("status %+v", st)
	}
	waitFor(t, "the mapping's status", func() bool {
		st := h.Status()[0]
		return len(st.Mappings) == 1 && st.Mappings[0].State == sdk.StateOK
	})
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted plugin's batch", delivered(2))
	st2 := h.Status()[0]
	if st2.State != StateRunning || st2.Restarts != 1 || st2.PID == st.PID || st2.LastError != "" {
		t.Fatalf("after a restart: %+v", st2)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("plugin process %d is still running after Shutdown", pid)
		}
	}
	if st := h.Status()[0]; st.State != StateStopped {
		t.Errorf("after shutdown: %+v", st)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in the temporary folder after Shutdown: %v", left)
	}
}

// syncBuffer is a log destination read while the host writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRefusedReportedOnce: a binary refused for its checksum is reported once, as an error
// naming the fix, and retried with backoff at DEBUG.
func TestRefusedReportedOnce(t *testing.T) {
	var logs syncBuffer
	h := New(Config{Plugins: []config.Plugin{pluginBlock(t, "", strings.Repeat("00", 32))}, DataDir: t.TempDir(),
		Triggers: &sdktest.Host{}, StartTimeout: 20 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &logs})})
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two retries", func() bool { return h.Status()[0].Restarts >= 3 })
	var errs, debugs int
	for _, line := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(line, "[ERROR]"):
			errs++
			if !strings.Contains(line, "refused") || !strings.Contains(line, "gateway plugin checksum "+testPlugin) {
				t.Errorf("the error does not name the fix: %s", line)
			}
		case strings.Contains(line, "[DEBUG]") && strings.Contains(line, "did not start, again"):
			debugs++
		}
	}
	if errs != 1 || debugs < 2 {
		t.Errorf("%d errors and %d debug lines for three failed starts; logs:\n%s", errs, debugs, logs.String())
	}
}

// TestWrongChecksumRefused: a binary that does not match its checksum is never run.
func TestWrongChecksumRefused(t *testing.T) {
	h := newHost(t, pluginBlock(t, "config {\n  greeting = \"hello\"\n}\n", strings.Repeat("00", 32)), &sdktest.Host{})
	if err := h.Start(context.Background()); err != nil {
		t.Fatalf("a wrong checksum must not stop the agent: %v", err)
	}
	st := h.Status()[0]
	if st.State != StateFailed || !strings.Contains(st.LastError, "refused") || st.PID != 0 || st.NextStart == nil {
		t.Fatalf("status %+v", st)
	}
}

// TestConfigDiagnostics: the config block is checked against the plugin's schema, and the
// plugin's own diagnostics point at the attribute.
func TestConfigDiagnostics(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"config {\n  tags = [\"a\"]\n}\n", `agent.hcl:1,8-8: Missing required argument`},
		{"config {\n  greeting = 3\n  tags = \"x\"\n}\n", `agent.hcl:3,10-13: Incorrect attribute value type`},
		{"config {\n  greeting = \"bad\"\n}\n", `agent.hcl:2,14-19: Unfriendly greeting; say something nicer`},
	} {
		h := newHost(t, pluginBlock(t, c.src, checksum(t)), &sdktest.Host{})
		err := h.Start(context.Background())
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %s", c.src, err, c.want)
		}
		if st := h.Status()[0]; st.State != StateRefused {
			t.Errorf("%q: status %+v", c.src, st)
		}
	}
}

// TestExtension: telemetry reaches a real extension process in order, its authorizer decides
// requests, and while it is down between restarts requests are denied, never let through.
func TestExtension(t *testing.T) {
	h := newHost(t, pluginBlock(t, "config {\n  greeting = \"hello\"\n}\n", checksum(t)), &sdktest.Host{})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		h.Telemetry(sdk.TelemetryEvent{Type: sdk.EventFunction, Function: "fn", RequestID: "r" + string(rune('a'+i%26)), Record: []byte(`"line"`)})
	}
	logPath := filepath.Join(h.cfg.DataDir, "t", "telemetry.log")
	waitFor(t, "50 telemetry events at the extension", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), "\n") == 50
	})
	b, _ := os.ReadFile(logPath)
	if lines := strings.Split(string(b), "\n"); lines[2] != `function fn rc "line"` {
		t.Errorf("third telemetry line %q", lines[2])
	}
	ctx := context.Background()
	if r, asked := h.Authorize(ctx, sdk.AuthorizeRequest{Function: "fn", Headers: map[string]string{"x-allow": "yes"}}); !asked || !r.Allow {
		t.Errorf("allowed request: %+v %v", r, asked)
	}
	if r, _ := h.Authorize(ctx, sdk.AuthorizeRequest{Function: "fn"}); r.Allow || r.Status != 401 || r.Message != "no x-allow header for fn" {
		t.Errorf("denied request: %+v", r)
	}
	pid := h.Status()[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plugin to be seen down", func() bool { return h.Status()[0].State != StateRunning })
	if r, _ := h.Authorize(ctx, sdk.AuthorizeRequest{Function: "fn", Headers: map[string]string{"x-allow": "yes"}}); r.Allow || r.Status != 503 {
		t.Errorf("while the authorizer is down: %+v", r)
	}
	waitFor(t, "the plugin back", func() bool { st := h.Status()[0]; return st.State == StateRunning && st.PID != pid })
	if r, _ := h.Authorize(ctx, sdk.AuthorizeRequest{Function: "fn", Headers: map[string]string{"x-allow": "yes"}}); !r.Allow {
		t.Errorf("after the restart: %+v", r)
	}
}

// TestHandshakeFailure: a binary that is no plugin of this gateway (it never completes
// go-plugin's handshake) is refused with an error that names it, and the agent goes on.
func TestHandshakeFailure(t *testing.T) {
	sum, err := FileChecksum("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	p := pluginBlock(t, "", strings.TrimPrefix(sum, "sha256:"))
	p.Path = "/bin/true"
	h := newHost(t, p, &sdktest.Host{})
	if err := h.Start(context.Background()); err != nil {
		t.Fatalf("a failed handshake must not stop the agent: %v", err)
	}
	st := h.Status()[0]
	if st.State != StateFailed || !strings.Contains(st.LastError, "/bin/true: the gateway's plugin handshake failed") || st.NextStart == nil {
		t.Fatalf("status %+v", st)
	}
	t.Logf("refused with: %s", st.LastError)
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPluginLogLines: a plugin's log lines (JSON on its stderr, relogged by go-plugin) appear
// once each, under plugins.<name> (and the line's sub-module), with the host's timestamp only,
// durations as text, whole numbers as integers and the fields in key order.
func TestPluginLogLines(t *testing.T) {
	var out lockedBuffer
	p := pluginBlock(t, "config {\n  greeting = \"hello\"\n}\n", checksum(t))
	h := New(Config{Plugins: []config.Plugin{p}, DataDir: t.TempDir(), Triggers: &sdktest.Host{}, StartTimeout: 20 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &out})})
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), ": ready:"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the plugin's lines:\n%s", out.String())
		}
	}
	var configured, ready []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, ": configured:") {
			configured = append(configured, line)
		}
		if strings.Contains(line, ": ready:") {
			ready = append(ready, line)
		}
	}
	if len(configured) != 1 || len(ready) != 1 {
		t.Fatalf("want each line once, got configured %q, ready %q\n%s", configured, ready, out.String())
	}
	if want := " [INFO]  plugins.t: configured: greeting=hello poll=1.5s records=2000000"; !strings.HasSuffix(configured[0], want) {
		t.Errorf("line %q\nwant it to end with %q", configured[0], want)
	}
	if want := " [DEBUG] plugins.t.setup: ready: took=3s"; !strings.HasSuffix(ready[0], want) {
		t.Errorf("line %q\nwant it to end with %q", ready[0], want)
	}
	if strings.Contains(out.String(), "timestamp=") || strings.Contains(out.String(), "@module") {
		t.Errorf("a plugin line carries go-plugin's timestamp or @module:\n%s", out.String())
	}
}

// TestSendRecord: a record for "<plugin>:<target>" reaches the plugin's AcceptRecord; one the
// plugin refuses, or for a plugin not configured, is an error (the gateway keeps the record).
func TestSendRecord(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	h := newHost(t, pluginBlock(t, "config {\n  greeting = \"hello\"\n}\n", checksum(t)), &sdktest.Host{})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.SendRecord(ctx, "t", sdk.Record{Target: "audit", Key: "req-1", Data: []byte(`{"condition":"Success"}`)}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.cfg.DataDir, "t")
	if b, err := os.ReadFile(filepath.Join(dir, "records.log")); err != nil || string(b) != "audit req-1 {\"condition\":\"Success\"}\n" {
		t.Fatalf("records.log: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "refuse"), []byte("audit"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.SendRecord(ctx, "t", sdk.Record{Target: "audit"}); err == nil || !strings.Contains(err.Error(), "target audit refuses records") {
		t.Errorf("a refused record: %v", err)
	}
	if err := h.SendRecord(ctx, "redis", sdk.Record{Target: "audit"}); err == nil || !strings.Contains(err.Error(), `no plugin "redis"`) {
		t.Errorf("a plugin not configured: %v", err)
	}
}
