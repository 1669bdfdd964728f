package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/natsq"
	"github.com/lambdagw/gateway/plugins/host"
)

// pluginBlock is the agent HCL of a plugin binary with its checksum.
func pluginBlock(t *testing.T, name, bin, checksum string) string {
	t.Helper()
	if checksum == "" {
		sum, err := host.FileChecksum(bin)
		if err != nil {
			t.Fatal(err)
		}
		checksum = sum
	}
	return fmt.Sprintf("plugin %q {\n  path     = %q\n  checksum = %q\n}\n", name, bin, checksum)
}

// natsBlock makes the agent's embedded NATS listen on a free port, returning the HCL and URL.
func natsBlock(t *testing.T) (string, string) {
	port := freePort(t)
	return fmt.Sprintf("nats {\n  listen = \"127.0.0.1:%d\"\n}\n", port), fmt.Sprintf("nats://127.0.0.1:%d", port)
}

func jetStream(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// functionLogs returns the function's log lines (all of them kept).
func (a *agentProc) functionLogs(fn string) string {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.addr+"/v1/functions/"+fn+"/logs?lines=1000000", nil)
	a.sign(req, nil)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var recordOK = regexp.MustCompile(`record (\d+) ok (\d+)`)

// processed counts each record id the worker function logged as done.
func processed(logs string) map[int]int {
	out := map[int]int{}
	for _, m := range recordOK.FindAllStringSubmatch(logs, -1) {
		id, _ := strconv.Atoi(m[1])
		out[id]++
	}
	return out
}

// pluginStatus reads the agent's plugin health.
func (a *agentProc) pluginStatus() []host.Status {
	a.t.Helper()
	out, errOut, code := a.cli("plugins", "-address", a.addr)
	if code != 0 {
		a.t.Fatalf("gateway plugins: %d %s %s", code, out, errOut)
	}
	req, _ := http.NewRequest("GET", a.addr+"/v1/status", nil)
	a.sign(req, nil)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Plugins []host.Status }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		a.t.Fatal(err)
	}
	return st.Plugins
}

func queueCount(t *testing.T, js jetstream.JetStream, queue string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), natsq.StreamName(queue))
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestQueueTrigger: the built-in queue plugin, a real subprocess on the agent's embedded NATS
// JetStream, delivers SQS-shaped batches to a function: every record published is processed,
// partial batch failures are redelivered, a record that keeps failing goes to the on-failure
// queue after its retries, and the queue ends empty. Then the plugin is killed with SIGKILL in
// the middle of batches: it is started again and no record is lost.
func TestQueueTrigger(t *testing.T) {
	needRoot(t)
	natsHCL, natsURL := natsBlock(t)
	a := newAgent(t, agentOptions{node: "qt", top: pluginBlock(t, "queue", pluginBins["queue"], "") + natsHCL})
	a.waitHealthy()
	hcl := fmt.Sprintf(`
function "worker" {
  runtime = "provided.al2023"
  code    = %q
  timeout = "10s"
  trigger "orders" {
    plugin                     = "queue"
    source                     = "orders"
    batch_size                 = 10
    report_batch_item_failures = true
    maximum_retry_attempts     = 2
    on_failure {
      destination = "queue:orders-dlq"
    }
  }
}
`, fnDir)
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	if out, _, _ := a.cli("functions", "-address", a.addr); !strings.Contains(out, "orders (queue: orders") {
		t.Errorf("gateway functions does not list the trigger:\n%s", out)
	}
	js := jetStream(t, natsURL)
	ctx := context.Background()
	const n = 200
	const poison = 13
	for i := 1; i <= n; i++ {
		body := map[string]any{"id": i}
		switch {
		case i == poison:
			body["fail_until"] = 1000 // fails every time, as a partial failure
		case i%10 == 0:
			body["fail_until"] = 1 // fails on its first delivery only
		}
		b, _ := json.Marshal(body)
		if err := natsq.Publish(ctx, js, "orders", b, map[string]string{"test": "yes"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every record processed", 60*time.Second, func() bool { return len(processed(a.functionLogs("worker"))) == n-1 })
	logs := a.functionLogs("worker")
	done := processed(logs)
	if done[poison] != 0 {
		t.Errorf("the poison record was processed")
	}
	if !strings.Contains(logs, "record 10 ok 2") || !strings.Contains(logs, "record 11 ok 1") {
		t.Errorf("record 10 should succeed on its second delivery and 11 on its first:\n%s", logs[:min(len(logs), 2000)])
	}
	waitFor(t, "the poison record in the on-failure queue", 30*time.Second, func() bool {
		s, err := js.Stream(ctx, natsq.StreamName("orders-dlq"))
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	s, _ := js.Stream(ctx, natsq.StreamName("orders-dlq"))
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		RequestContext struct {
			Condition              string `json:"condition"`
			ApproximateInvokeCount int    `json:"approximateInvokeCount"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(m.Data, &rec); err != nil || rec.RequestContext.Condition != "RetryAttemptsExhausted" || !strings.Contains(string(m.Data), `\"id\":13`) {
		t.Errorf("on-failure record: %v %s", err, m.Data)
	}
	waitFor(t, "the queue empty", 20*time.Second, func() bool { return queueCount(t, js, "orders") == 0 })

	// A plugin killed mid-batch comes back and loses nothing: every record of a second run is
	// processed at least once.
	st := a.pluginStatus()
	if len(st) != 1 || st[0].State != host.StateRunning || len(st[0].Mappings) != 1 || st[0].Mappings[0].State != "OK" {
		t.Fatalf("plugin status: %+v", st)
	}
	pid := st[0].PID
	for i := n + 1; i <= n+300; i++ {
		b, _ := json.Marshal(map[string]any{"id": i, "ms": 20})
		if err := natsq.Publish(ctx, js, "orders", b, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "some of the second run processed", 30*time.Second, func() bool { return len(processed(a.functionLogs("worker"))) > n+20 })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plugin started again", 30*time.Second, func() bool {
		st := a.pluginStatus()
		return st[0].State == host.StateRunning && st[0].PID != pid && st[0].Restarts >= 1
	})
	waitFor(t, "every record of the second run processed", 90*time.Second, func() bool {
		done := processed(a.functionLogs("worker"))
		for i := n + 1; i <= n+300; i++ {
			if done[i] == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, "the queue empty again", 30*time.Second, func() bool { return queueCount(t, js, "orders") == 0 })
	a.stop()
	checkNothingLeft(t, a)
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the killed plugin's process %d still exists", pid)
	}
}

// TestPluginChecksumRefused: a plugin binary that does not match its checksum is never run;
// the agent serves on and says why in `gateway plugins`.
func TestPluginChecksumRefused(t *testing.T) {
	needRoot(t)
	natsHCL, _ := natsBlock(t)
	a := newAgent(t, agentOptions{node: "pc", top: pluginBlock(t, "queue", pluginBins["queue"], "sha256:"+strings.Repeat("0", 64)) + natsHCL})
	a.waitHealthy()
	st := a.pluginStatus()
	if len(st) != 1 || st[0].State == host.StateRunning || !strings.Contains(st[0].LastError, "refused") || !strings.Contains(st[0].LastError, "not the sha256:000") || st[0].PID != 0 {
		t.Fatalf("status of a plugin with a wrong checksum: %+v", st)
	}
	out, _, _ := a.cli("plugins", "-address", a.addr)
	if !strings.Contains(out, "failed") || !strings.Contains(out, "refused") {
		t.Errorf("gateway plugins:\n%s", out)
	}
	if !strings.Contains(a.out.String(), "refused") {
		t.Errorf("the agent's log does not say the plugin was refused")
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestExtensionPlugin: an extension plugin sees the function's log lines and REPORTs as
// telemetry, and decides who may call a function URL.
func TestExtensionPlugin(t *testing.T) {
	needRoot(t)
	natsHCL, _ := natsBlock(t)
	top := strings.Replace(pluginBlock(t, "ext", pluginBins["test"], ""), "}\n", "  config {\n    greeting = \"hi\"\n  }\n}\n", 1) + natsHCL
	a := newAgent(t, agentOptions{node: "ex", top: top})
	a.waitHealthy()
	hcl := fmt.Sprintf(`
function "guarded" {
  runtime = "provided.al2023"
  code    = %q
  url {
    auth_type = "NONE"
  }
}
`, fnDir)
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	get := func(allow bool) (int, string) {
		req, _ := http.NewRequest("GET", a.addr+"/fn/guarded/?mode=echo", nil)
		if allow {
			req.Header.Set("X-Allow", "yes")
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(false); code != 401 || !strings.Contains(body, "no x-allow header for guarded") {
		t.Errorf("a request the authorizer denies: %d %s", code, body)
	}
	code, body := get(true)
	if code != 200 {
		t.Fatalf("a request the authorizer allows: %d %s", code, body)
	}
	telemetry := func() string {
		b, _ := os.ReadFile(a.dataDir + "/plugins/ext/telemetry.log")
		return string(b)
	}
	waitFor(t, "the REPORT at the extension", 10*time.Second, func() bool {
		return strings.Contains(telemetry(), "platform.report guarded ")
	})
	if !strings.Contains(telemetry(), "platform.start guarded ") {
		t.Errorf("telemetry:\n%s", telemetry())
	}
	a.stop()
	checkNothingLeft(t, a)
}
