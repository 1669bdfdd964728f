package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/natsengine/natstest"
	"github.com/lambdagw/gateway/internal/testfixtures/s3test"
	"github.com/lambdagw/gateway/plugins/host"
	"github.com/lambdagw/gateway/plugins/sdk/natsq"
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
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

func jetStream(t *testing.T, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
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

// natsCreds signs a client in to the agent's embedded NATS with the NKey of data_dir's client
// seed file, as an operator's producer would.
func (a *agentProc) natsCreds() nats.Option {
	a.t.Helper()
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(a.dataDir, "nats-client.nk"))
	if err != nil {
		a.t.Fatalf("the agent's NATS client key: %v", err)
	}
	return opt
}

// functionLogs returns the function's log lines (all of them kept).
func (a *agentProc) functionLogs(fn string) string {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.addr+"/v1/functions/"+fn+"/logs?lines=100000", nil)
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
	js := jetStream(t, natsURL, a.natsCreds())
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
	// A function printing the gateway's lines forges nothing: they reach the extension as the
	// function's output.
	if r := a.invoke("guarded", `{"mode":"print","value":"REPORT RequestId: forged-1\tDuration: 1.00 ms"}`, nil); r.status != 200 {
		t.Fatalf("print: %d %s", r.status, r.body)
	}
	waitFor(t, "the printed line at the extension", 10*time.Second, func() bool {
		return strings.Contains(telemetry(), "function guarded  \"REPORT RequestId: forged-1")
	})
	if strings.Contains(telemetry(), "platform.report guarded forged-1") {
		t.Errorf("a printed REPORT line became a platform.report event:\n%s", telemetry())
	}
	a.stop()
	checkNothingLeft(t, a)
}

var kinesisLine = regexp.MustCompile(`kinesis (\S+) (\d+) (\S+)`)

// TestStreamTrigger: the built-in stream plugin delivers Kinesis-shaped batches from a
// JetStream stream in order per partition key while the function runs batches of several
// shards at once; a poison record is bisected out of its batches and sent to the on-failure
// queue after its retries, and every other record is processed.
func TestStreamTrigger(t *testing.T) {
	needRoot(t)
	natsHCL, natsURL := natsBlock(t)
	a := newAgent(t, agentOptions{node: "st", top: pluginBlock(t, "stream", pluginBins["stream"], "") + natsHCL})
	a.waitHealthy()
	hcl := fmt.Sprintf(`
function "clicks" {
  runtime = "provided.al2023"
  code    = %q
  timeout = "10s"
  trigger "clicks" {
    plugin                         = "stream"
    source                         = "clicks"
    batch_size                     = 50
    starting_position              = "TRIM_HORIZON"
    maximum_retry_attempts         = 1
    bisect_batch_on_function_error = true
    on_failure {
      destination = "queue:clicks-dlq"
    }
  }
}
`, fnDir)
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	js := jetStream(t, natsURL, a.natsCreds())
	ctx := context.Background()
	const n, keys = 1000, 10
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("user%d", i%keys)
		data := fmt.Sprintf("%s-%d", key, i)
		if i == 517 {
			if _, err := natsstream.Publish(ctx, js, "clicks", key, []byte("poison")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := natsstream.Publish(ctx, js, "clicks", key, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	seen := func() map[string]bool {
		out := map[string]bool{}
		for _, m := range kinesisLine.FindAllStringSubmatch(a.functionLogs("clicks"), -1) {
			out[m[3]] = true
		}
		return out
	}
	waitFor(t, "every record processed", 90*time.Second, func() bool { return len(seen()) == n })
	// Per key, the records were processed in the order they were published.
	last := map[string]int{}
	for _, m := range kinesisLine.FindAllStringSubmatch(a.functionLogs("clicks"), -1) {
		key, data := m[1], m[3]
		i, _ := strconv.Atoi(strings.TrimPrefix(data, key+"-"))
		if prev, ok := last[key]; ok && i < prev {
			t.Fatalf("key %s: record %d processed after %d", key, i, prev)
		}
		last[key] = i
	}
	waitFor(t, "the poison record in the on-failure queue", 60*time.Second, func() bool {
		s, err := js.Stream(ctx, natsq.StreamName("clicks-dlq"))
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	s, _ := js.Stream(ctx, natsq.StreamName("clicks-dlq"))
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		KinesisBatchInfo struct {
			ShardID   string `json:"shardId"`
			BatchSize int    `json:"batchSize"`
		}
	}
	if err := json.Unmarshal(m.Data, &rec); err != nil || rec.KinesisBatchInfo.BatchSize != 1 || !strings.HasPrefix(rec.KinesisBatchInfo.ShardID, "shardId-") {
		t.Errorf("on-failure record: %v %s", err, m.Data)
	}
	a.stop()
	checkNothingLeft(t, a)
}

var s3Line = regexp.MustCompile(`s3 (\S+) (\S+) (\S+) (\d+)`)

// TestS3Trigger: versitygw (a real S3-compatible server) pushes its bucket notifications to
// the s3 plugin's webhook; the function gets Amazon's S3 event for each object matching the
// trigger's prefix and suffix, its key URL-encoded as S3 does.
func TestS3Trigger(t *testing.T) {
	needRoot(t)
	natsHCL, _ := natsBlock(t)
	hookPort := freePort(t)
	top := strings.Replace(pluginBlock(t, "s3", pluginBins["s3"], ""), "}\n",
		fmt.Sprintf("  config {\n    webhook_listen = \"127.0.0.1:%d\"\n  }\n}\n", hookPort), 1) + natsHCL
	a := newAgent(t, agentOptions{node: "s3", top: top})
	a.waitHealthy()
	hcl := fmt.Sprintf(`
function "thumbs" {
  runtime = "provided.al2023"
  code    = %q
  trigger "uploads" {
    plugin  = "s3"
    source  = "photos"
    options = { prefix = "in/", suffix = ".jpg" }
  }
}
`, fnDir)
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	// The mapping must be listening before versitygw sends anything.
	waitFor(t, "the s3 mapping running", 20*time.Second, func() bool {
		st := a.pluginStatus()
		return len(st) == 1 && len(st[0].Mappings) == 1 && st[0].Mappings[0].State == "OK"
	})
	srv := s3test.Start(t, s3test.Options{WebhookURL: fmt.Sprintf("http://127.0.0.1:%d/", hookPort), Buckets: []string{"photos"}})
	ctx := context.Background()
	put := func(key, body string) {
		if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("putting %s: %v", key, err)
		}
	}
	put("in/a.jpg", "12345")
	put("in/my cat+1.jpg", "123")
	put("out/b.jpg", "1")
	put("in/c.png", "1")
	want := map[string]string{"in/a.jpg": "5", "in/my+cat%2B1.jpg": "3"}
	got := func() map[string]string {
		out := map[string]string{}
		for _, m := range s3Line.FindAllStringSubmatch(a.functionLogs("thumbs"), -1) {
			if m[1] == "ObjectCreated:Put" && m[2] == "photos" {
				out[m[3]] = m[4]
			}
		}
		return out
	}
	waitFor(t, "both matching objects delivered", 30*time.Second, func() bool { return len(got()) >= 2 })
	time.Sleep(time.Second) // the filtered ones would have arrived by now
	if g := got(); len(g) != 2 || g["in/a.jpg"] != want["in/a.jpg"] || g["in/my+cat%2B1.jpg"] != want["in/my+cat%2B1.jpg"] {
		t.Errorf("delivered %v, want %v", g, want)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestExternalNATS: with nats { url } the agent and its plugins use that NATS (here a server
// the test runs) instead of running JetStream themselves.
func TestExternalNATS(t *testing.T) {
	needRoot(t)
	eng, js := natstest.Start(t)
	top := pluginBlock(t, "queue", pluginBins["queue"], "") + fmt.Sprintf("nats {\n  url = %q\n}\n", eng.ClientURL())
	a := newAgent(t, agentOptions{node: "xn", top: top})
	a.waitHealthy()
	hcl := fmt.Sprintf(`
function "worker" {
  runtime = "provided.al2023"
  code    = %q
  trigger "jobs" {
    plugin = "queue"
    source = "jobs"
  }
}
`, fnDir)
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	for i := 1; i <= 20; i++ {
		if err := natsq.Publish(context.Background(), js, "jobs", []byte(fmt.Sprintf(`{"id":%d}`, i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// gateway queue send (POST /v1/queues/{queue}/messages) goes through the same NATS.
	if out, errOut, code := a.cli("queue", "send", "-address", a.addr, "jobs", `{"id":21}`); code != 0 || !strings.Contains(out, "sent 9 bytes to queue jobs") {
		t.Fatalf("gateway queue send: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := a.cli("queue", "send", "-address", a.addr, "no.dots", `x`); code == 0 || !strings.Contains(errOut, "InvalidParameterValueException") {
		t.Errorf("a bad queue name: %d %s", code, errOut)
	}
	waitFor(t, "every job processed", 30*time.Second, func() bool { return len(processed(a.functionLogs("worker"))) == 21 })
	if strings.Contains(a.out.String(), "NATS JetStream runs in the agent") {
		t.Errorf("the agent ran its own JetStream although nats { url } was set")
	}
	a.stop()
	checkNothingLeft(t, a)
}
