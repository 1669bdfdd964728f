package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var (
	metricsAdmin  = testKey{"admin", "AKIAMETRICSADMIN0001", "bWV0cmljcy1hZG1pbi1zZWNyZXQ", "admin"}
	metricsInvoke = testKey{"invoker", "AKIAMETRICSINVOKE001", "bWV0cmljcy1pbnZva2Utc2VjcmV0", "invoke"}
	metricsReader = testKey{"scraper", "AKIAMETRICSSCRAPER01", "bWV0cmljcy1zY3JhcGVyLXNlY3JldA", "metrics"}
)

// getAs makes a GET of path on a signed with key (unsigned when key is nil).
func getAs(t *testing.T, a *agentProc, key *testKey, path string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", a.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if key != nil {
		sum := sha256.Sum256(nil)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key.id, SecretAccessKey: key.secret},
			req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if et := resp.Header.Get("X-Amzn-ErrorType"); et != "" {
		body = append([]byte(et+": "), body...) // the error's type, where the checks below look for it
	}
	return resp.StatusCode, resp.Header, body
}

// scrape reads a's /v1/metrics in the text format, parsed.
func scrape(t *testing.T, a *agentProc, key *testKey) (map[string]*familyValues, []byte) {
	t.Helper()
	status, _, body := getAs(t, a, key, "/v1/metrics", nil)
	if status != 200 {
		t.Fatalf("GET /v1/metrics on %s: %d %s", a.name, status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /v1/metrics: %v\n%s", err, body)
	}
	out := map[string]*familyValues{}
	for name, mf := range mfs {
		fv := &familyValues{}
		for _, m := range mf.Metric {
			s := sample{labels: map[string]string{}}
			for _, l := range m.Label {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.v = m.Counter.GetValue()
			case m.Gauge != nil:
				s.v = m.Gauge.GetValue()
			case m.Histogram != nil:
				s.v = float64(m.Histogram.GetSampleCount())
			case m.Summary != nil:
				s.v = float64(m.Summary.GetSampleCount())
			case m.Untyped != nil:
				s.v = m.Untyped.GetValue()
			}
			fv.samples = append(fv.samples, s)
		}
		out[name] = fv
	}
	return out, body
}

type sample struct {
	labels map[string]string
	v      float64
}

type familyValues struct{ samples []sample }

// sum adds the samples of family name whose labels include want.
func sumOf(fams map[string]*familyValues, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	var total float64
	found := false
next:
	for _, s := range f.samples {
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.v
		found = true
	}
	return total, found
}

// TestMetrics: a real agent counts a function's calls (cold then warm, a function error, a
// throttle of its reserved concurrency) in /v1/metrics, which a metrics key reads (an invoke key
// cannot; a metrics key invokes nothing), in Prometheus' text format that promtool accepts, or
// OpenMetrics when asked; Raft's figures are there; every lambdagw_ family is documented in
// docs/metrics.md; the function's history counts the same; its series go when it is deleted.
func TestMetrics(t *testing.T) {
	needRoot(t)
	// The queue plugin: its health is counted, and it makes the agent's queues, which the
	// dead-letter and on-failure deliveries below go to.
	natsHCL, _ := natsBlock(t)
	a := newAgent(t, agentOptions{node: "metrics", keys: []testKey{metricsAdmin, metricsInvoke, metricsReader},
		top: pluginBlock(t, "queue", pluginBins["queue"], "") + natsHCL})
	a.waitHealthy()
	mHCL := fmt.Sprintf(`
function "m" {
  runtime              = "provided.al2023"
  code                 = %q
  timeout              = "10s"
  freeze_delay         = "100ms"
  reserved_concurrency = 1
}
`, fnDir)
	a.apply(mHCL)
	fq := map[string]string{"function": "m", "qualifier": "$LATEST"}
	value := func(fams map[string]*familyValues, name string, labels map[string]string) float64 {
		t.Helper()
		v, _ := sumOf(fams, name, labels)
		return v
	}

	// Cold, then warm once the environment is frozen (a thaw), then a function error.
	if r := a.invoke("m", `{"mode":"hello"}`, nil); r.status != 200 {
		t.Fatalf("first call: %d %s", r.status, r.body)
	}
	waitFor(t, "the environment frozen", 10*time.Second, func() bool {
		fams, _ := scrape(t, a, &metricsReader)
		return value(fams, "lambdagw_environments", map[string]string{"state": "frozen"}) == 1
	})
	if r := a.invoke("m", `{"mode":"hello"}`, nil); r.status != 200 {
		t.Fatalf("warm call: %d %s", r.status, r.body)
	}
	if r := a.invoke("m", `{"mode":"error"}`, nil); r.status != 200 || r.header.Get("X-Amz-Function-Error") == "" {
		t.Fatalf("failing call: %d %v %s", r.status, r.header, r.body)
	}
	// A call that holds the one reserved slot: the next is throttled.
	var wg sync.WaitGroup
	wg.Add(1)
	var slow invokeResult
	go func() { defer wg.Done(); slow = a.invoke("m", `{"mode":"sleep","ms":3000}`, nil) }()
	waitFor(t, "the slow call running", 10*time.Second, func() bool {
		fams, _ := scrape(t, a, &metricsReader)
		return value(fams, "lambdagw_concurrent_executions", fq) == 1
	})
	if r := a.invoke("m", `{"mode":"hello"}`, nil); r.status != 429 {
		t.Fatalf("a call beyond the reservation: %d %s, want 429", r.status, r.body)
	}
	wg.Wait()
	if slow.status != 200 {
		t.Fatalf("slow call: %d %s", slow.status, slow.body)
	}
	// An invocation is counted at its end (its REPORT), once the runtime asks for the next
	// event, just after the caller got the response.
	waitFor(t, "the slow call counted", 10*time.Second, func() bool {
		fams, _ := scrape(t, a, &metricsReader)
		return value(fams, "lambdagw_concurrent_executions", fq) == 0
	})

	fams, body := scrape(t, a, &metricsReader)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lambdagw_invocations_total", fq, 4},
		{"lambdagw_cold_starts_total", fq, 1},
		{"lambdagw_invocation_duration_seconds", fq, 4},
		{"lambdagw_init_duration_seconds", fq, 1},
		{"lambdagw_invocation_errors_total", fq, 1},
		{"lambdagw_throttles_total", map[string]string{"function": "m", "reason": "reserved_concurrency"}, 1},
		{"lambdagw_throttles_total", fq, 1},
		{"lambdagw_concurrent_executions", fq, 0},
	} {
		if got := value(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v := value(fams, "lambdagw_environment_thaw_seconds", nil); v < 1 {
		t.Errorf("%v thaws observed, want at least the warm call's", v)
	}
	if v := value(fams, "lambdagw_environment_freeze_seconds", nil); v < 1 {
		t.Errorf("%v freezes observed, want at least 1", v)
	}
	if v := value(fams, "lambdagw_environments_memory_limit_bytes", nil); v < 128<<20 {
		t.Errorf("memory limit of the environments %v, want at least the function's 128 MB", v)
	}
	if _, ok := sumOf(fams, "lambdagw_jetstream_stream_messages", nil); !ok {
		t.Error("no JetStream stream depth")
	}
	if v := value(fams, "lambdagw_jetstream_up", nil); v != 1 {
		t.Errorf("lambdagw_jetstream_up = %v", v)
	}
	var raft []string
	for name := range fams {
		if strings.HasPrefix(name, "lambdagw_raft_") {
			raft = append(raft, name)
		}
	}
	if len(raft) == 0 {
		t.Errorf("no lambdagw_raft_ metric in\n%s", body)
	}
	sort.Strings(raft)
	t.Logf("raft's metrics: %s", strings.Join(raft, " "))
	// The error type is the function's own (aws-lambda-go names the Go error's type).
	var types []string
	for _, s := range fams["lambdagw_invocation_errors_total"].samples {
		types = append(types, s.labels["error_type"])
	}
	if len(types) != 1 || types[0] == "" || types[0] == "other" {
		t.Errorf("error types %v, want the function's one", types)
	}

	// An Event invocation: counted by its outcome, and the function's backlog is read from
	// JetStream.
	if r := a.invoke("m", `{"mode":"hello"}`, map[string]string{"X-Amz-Invocation-Type": "Event"}); r.status != 202 {
		t.Fatalf("Event invocation: %d %s", r.status, r.body)
	}
	waitFor(t, "the event run", 30*time.Second, func() bool {
		fams, _ := scrape(t, a, &metricsReader)
		v, _ := sumOf(fams, "lambdagw_async_events_total", map[string]string{"function": "m", "outcome": "succeeded"})
		return v == 1 && value(fams, "lambdagw_invocations_total", fq) == 5
	})
	fams, _ = scrape(t, a, &metricsReader)
	if v, ok := sumOf(fams, "lambdagw_async_events_waiting", map[string]string{"function": "m"}); !ok || v != 0 {
		t.Errorf("lambdagw_async_events_waiting{function=m} = %v (found %v), want 0 once the event ran", v, ok)
	}
	// A failed event goes to its function's dead-letter queue, or to its on-failure destination:
	// counted apart.
	a.apply(mHCL + fmt.Sprintf(`
function "dl" {
  runtime            = "provided.al2023"
  code               = %[1]q
  dead_letter_target = "queue:metrics-dlq"
  async {
    maximum_retry_attempts = 0
  }
}
function "dest" {
  runtime = "provided.al2023"
  code    = %[1]q
  async {
    maximum_retry_attempts = 0
    on_failure { destination = "queue:metrics-failed" }
  }
}
`, fnDir))
	for _, fn := range []string{"dl", "dest"} {
		if r := a.invoke(fn, `{"mode":"error"}`, map[string]string{"X-Amz-Invocation-Type": "Event"}); r.status != 202 {
			t.Fatalf("Event invocation of %s: %d %s", fn, r.status, r.body)
		}
	}
	waitFor(t, "the failed events delivered", 30*time.Second, func() bool {
		fams, _ := scrape(t, a, &metricsReader)
		dl, _ := sumOf(fams, "lambdagw_async_events_total", map[string]string{"function": "dl", "outcome": "dead_lettered"})
		dest, _ := sumOf(fams, "lambdagw_async_events_total", map[string]string{"function": "dest", "outcome": "delivered"})
		return dl == 1 && dest == 1
	})
	fams, _ = scrape(t, a, &metricsReader)
	for fn, outcome := range map[string]string{"dl": "delivered", "dest": "dead_lettered"} {
		if v, _ := sumOf(fams, "lambdagw_async_events_total", map[string]string{"function": fn, "outcome": outcome}); v != 0 {
			t.Errorf("%s's events %s: %v, want 0", fn, outcome, v)
		}
	}

	waitFor(t, "the queue plugin up", 30*time.Second, func() bool {
		fams, _ := scrape(t, a, &metricsReader)
		v, _ := sumOf(fams, "lambdagw_plugin_up", map[string]string{"plugin": "queue"})
		return v == 1
	})
	fams, body = scrape(t, a, &metricsReader)
	if v, ok := sumOf(fams, "lambdagw_plugin_restarts_total", map[string]string{"plugin": "queue"}); !ok || v != 0 {
		t.Errorf("the queue plugin's restarts: %v (found %v), want 0", v, ok)
	}

	t.Run("promtool", func(t *testing.T) {
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("documented", func(t *testing.T) {
		doc, err := os.ReadFile("../docs/metrics.md")
		if err != nil {
			t.Fatal(err)
		}
		documented := map[string]bool{}
		for _, m := range regexp.MustCompile("`(lambdagw_[a-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1) {
			documented[m[1]] = true
		}
		for name := range fams {
			if strings.HasPrefix(name, "lambdagw_") && !documented[name] && !documentedRaft(name, documented) {
				t.Errorf("%s is not in docs/metrics.md", name)
			}
		}
	})

	t.Run("OpenMetrics", func(t *testing.T) {
		status, h, om := getAs(t, a, &metricsReader, "/v1/metrics", map[string]string{"Accept": "application/openmetrics-text; version=1.0.0"})
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/openmetrics-text") {
			t.Fatalf("OpenMetrics asked: %d %q", status, h.Get("Content-Type"))
		}
		if !bytes.HasSuffix(om, []byte("# EOF\n")) || !bytes.Contains(om, []byte(`lambdagw_invocations_total{function="m",qualifier="$LATEST"} 5`)) {
			t.Errorf("not OpenMetrics with the count:\n%s", om)
		}
		_, h, _ = getAs(t, a, &metricsReader, "/v1/metrics", nil)
		if !strings.HasPrefix(h.Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Errorf("no Accept: Content-Type %q, want the text format", h.Get("Content-Type"))
		}
	})

	t.Run("access", func(t *testing.T) {
		if status, _, _ := getAs(t, a, &metricsAdmin, "/v1/metrics", nil); status != 200 {
			t.Errorf("an admin key reading metrics: %d", status)
		}
		status, _, b := getAs(t, a, &metricsInvoke, "/v1/metrics", nil)
		if status != 403 || !strings.Contains(string(b), "AccessDeniedException") || !strings.Contains(string(b), `needs a key with the \"metrics\"`) {
			t.Errorf("an invoke key reading metrics: %d %s, want 403 AccessDeniedException naming the metrics policy", status, b)
		}
		status, _, b = getAs(t, a, &metricsInvoke, "/v1/functions/m/metrics", nil)
		if status != 403 || !strings.Contains(string(b), "AccessDeniedException") {
			t.Errorf("an invoke key reading history: %d %s", status, b)
		}
		if status, _, b := getAs(t, a, nil, "/v1/metrics", nil); status != 403 || !strings.Contains(string(b), "MissingAuthenticationToken") {
			t.Errorf("unsigned: %d %s", status, b)
		}
		// A metrics key may not do anything else: invoke, list functions.
		for _, path := range []string{"/2015-03-31/functions", "/v1/status"} {
			if status, _, b := getAs(t, a, &metricsReader, path, nil); status != 403 || !strings.Contains(string(b), "may only read metrics") {
				t.Errorf("a metrics key at %s: %d %s", path, status, b)
			}
		}
		req, _ := http.NewRequest("POST", a.addr+"/2015-03-31/functions/m/invocations", strings.NewReader("{}"))
		sum := sha256.Sum256([]byte("{}"))
		_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: metricsReader.id, SecretAccessKey: metricsReader.secret},
			req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("a metrics key invoking: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("history", func(t *testing.T) {
		status, _, b := getAs(t, a, &metricsReader, "/v1/functions/m/metrics?minutes=5", nil)
		if status != 200 {
			t.Fatalf("history: %d %s", status, b)
		}
		h := decodeHistory(t, b)
		if h.Function != "m" || h.StepSeconds != 60 || len(h.Points) != 5 || h.NodesFailed == nil || len(h.NodesFailed) != 0 {
			t.Fatalf("history = %s", b)
		}
		inv, errs, thr, cold := h.totals()
		if inv != 5 || errs != 1 || thr != 1 || cold != 1 {
			t.Errorf("history totals: %d invocations, %d errors, %d throttles, %d cold starts; want 5, 1, 1, 1\n%s", inv, errs, thr, cold, b)
		}
		last := h.Points[4]
		if now := time.Now().UTC().Truncate(time.Minute); last.Time.Sub(now).Abs() > time.Minute || !last.Time.Equal(last.Time.Truncate(time.Minute)) {
			t.Errorf("the last point is at %v, not the current minute %v", last.Time, now)
		}
		if status, _, b := getAs(t, a, &metricsReader, "/v1/functions/m/metrics", nil); status != 200 || len(decodeHistory(t, b).Points) != 60 {
			t.Errorf("default history: %d, want 60 points", status)
		}
		for q, want := range map[string]string{"?minutes=0": "InvalidParameterValueException", "?minutes=181": "InvalidParameterValueException",
			"?minutes=abc": "InvalidParameterValueException", "?minutes=1&minutes=2": "InvalidParameterValueException"} {
			if status, _, b := getAs(t, a, &metricsReader, "/v1/functions/m/metrics"+q, nil); status != 400 || !strings.Contains(string(b), want) {
				t.Errorf("history%s: %d %s", q, status, b)
			}
		}
		if status, _, b := getAs(t, a, &metricsReader, "/v1/functions/nosuch/metrics", nil); status != 404 || !strings.Contains(string(b), "ResourceNotFoundException") {
			t.Errorf("history of no function: %d %s", status, b)
		}
	})

	t.Run("deleted", func(t *testing.T) {
		req, _ := http.NewRequest("DELETE", a.addr+"/2015-03-31/functions/m", nil)
		a.sign(req, nil)
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("deleting m: %d", resp.StatusCode)
		}
		waitFor(t, "the deleted function's series gone", 10*time.Second, func() bool {
			_, body := scrape(t, a, &metricsReader)
			return !bytes.Contains(body, []byte(`function="m"`))
		})
	})
}

// documentedRaft: Raft's figures are documented by their prefix (lambdagw_raft_*), their names
// being raft's own.
func documentedRaft(name string, documented map[string]bool) bool {
	return strings.HasPrefix(name, "lambdagw_raft_") && documented["lambdagw_raft_"]
}

type historyPoint struct {
	Time          time.Time `json:"time"`
	Invocations   int       `json:"invocations"`
	Errors        int       `json:"errors"`
	Throttles     int       `json:"throttles"`
	ColdStarts    int       `json:"cold_starts"`
	DurationP50Ms float64   `json:"duration_p50_ms"`
	DurationP99Ms float64   `json:"duration_p99_ms"`
}

type functionHistory struct {
	Function    string         `json:"function"`
	StepSeconds int            `json:"step_seconds"`
	Points      []historyPoint `json:"points"`
	NodesFailed []string       `json:"nodes_failed"`
}

func (h functionHistory) totals() (inv, errs, thr, cold int) {
	for _, p := range h.Points {
		inv += p.Invocations
		errs += p.Errors
		thr += p.Throttles
		cold += p.ColdStarts
	}
	return
}

func decodeHistory(t *testing.T, b []byte) functionHistory {
	t.Helper()
	var h functionHistory
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // the console's contract: exactly these fields
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("decoding the history: %v\n%s", err, b)
	}
	return h
}

// TestMetricsOff: with metrics { enabled = false } nothing is served, and the routes say why.
func TestMetricsOff(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "nometrics", top: "metrics {\n  enabled = false\n}\n"})
	for _, path := range []string{"/v1/metrics", "/v1/functions/x/metrics"} {
		status, _, b := getAs(t, a, nil, path, nil)
		if status != 404 || !strings.Contains(string(b), "metrics are disabled") || !strings.Contains(string(b), "enabled = false") {
			t.Errorf("%s with metrics off: %d %s", path, status, b)
		}
	}
}

// TestMetricsClusterHistory: on a 3-node cluster whose nodes hold one environment each, calls
// made at once run on several nodes; the history any node answers adds them all up, and agrees
// with the sum of the nodes' own counters.
func TestMetricsClusterHistory(t *testing.T) {
	needRoot(t)
	nodes := startClusterWith(t, "mh", 3, agentOptions{extra: "max_environments = 1\n  standby = 0"})
	a := nodes[0]
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, clusterFunctionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[int]int{}
	)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := n.invoke("count", `{"mode":"sleep","ms":2000}`, nil)
			mu.Lock()
			results[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if results[200] < 2 || results[200]+results[429] != 3 {
		t.Fatalf("answers %v: want at least 2 calls run (200), the rest throttled (429)", results)
	}
	ran := 0
	var counted float64
	for _, n := range nodes {
		fams, _ := scrape(t, n, nil)
		v, _ := sumOf(fams, "lambdagw_invocations_total", map[string]string{"function": "count"})
		counted += v
		if v > 0 {
			ran++
		}
	}
	if ran < 2 || counted != float64(results[200]) {
		t.Errorf("%v invocations counted on %d nodes, want %d on at least 2", counted, ran, results[200])
	}
	for _, n := range nodes {
		status, _, b := getAs(t, n, nil, "/v1/functions/count/metrics?minutes=10", nil)
		if status != 200 {
			t.Fatalf("history on %s: %d %s", n.name, status, b)
		}
		h := decodeHistory(t, b)
		inv, _, thr, _ := h.totals()
		if inv != results[200] || thr != results[429] || len(h.NodesFailed) != 0 || len(h.Points) != 10 {
			t.Errorf("history on %s: %d invocations, %d throttles, failed %v; want %d, %d, none\n%s", n.name, inv, thr, h.NodesFailed,
				results[200], results[429], b)
		}
		var p99 float64
		for _, p := range h.Points {
			p99 = max(p99, p.DurationP99Ms)
		}
		if p99 < 1400 {
			t.Errorf("history on %s: p99 %v ms, want the 2000 ms the calls slept (within its bucket)", n.name, p99)
		}
	}
	// A node that is gone is named in nodes_failed; the others still answer.
	nodes[2].stop()
	status, _, b := getAs(t, a, nil, "/v1/functions/count/metrics?minutes=10", nil)
	if status != 200 {
		t.Fatalf("history with a node down: %d %s", status, b)
	}
	h := decodeHistory(t, b)
	if len(h.NodesFailed) != 1 || !strings.HasPrefix(h.NodesFailed[0], nodes[2].name+": ") {
		t.Errorf("nodes_failed %v, want %s's", h.NodesFailed, nodes[2].name)
	}
}

// TestPrometheus: a real Prometheus server, configured from examples/prometheus (its scrape
// config, with the agent's address and a metrics key as Basic credentials, and its alerting
// rules), scrapes a real agent: the target is up, a function's invocations reach Prometheus'
// query API, and every alerting rule evaluates without error and reads only metrics the agent
// serves or docs/metrics.md lists.
func TestPrometheus(t *testing.T) {
	needRoot(t)
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("no prometheus server (make deps installs Debian's prometheus package): %v", err)
	}
	a := newAgent(t, agentOptions{node: "prom", keys: []testKey{metricsAdmin, metricsReader}})
	a.waitHealthy()
	a.apply(fmt.Sprintf("function \"p\" {\n  runtime = \"provided.al2023\"\n  code    = %q\n}\n", fnDir))
	if r := a.invoke("p", `{"mode":"hello"}`, nil); r.status != 200 {
		t.Fatalf("invoking p: %d %s", r.status, r.body)
	}

	dir := t.TempDir()
	conf, err := os.ReadFile("../examples/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile("../examples/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(metricsReader.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	// The example as an operator would adapt it: this agent, this key, a fast scrape.
	s := string(conf)
	for old, repl := range map[string]string{
		`["10.0.0.1:9500", "10.0.0.2:9500", "10.0.0.3:9500"]`: fmt.Sprintf("[%q]", strings.TrimPrefix(a.addr, "http://")),
		"AKIAPROMETHEUS000001":                                metricsReader.id,
		"/etc/prometheus/lambdagw-metrics.secret":             secretFile,
		"scrape_interval: 15s":                                "scrape_interval: 1s",
		"evaluation_interval: 15s":                            "evaluation_interval: 1s",
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("examples/prometheus/prometheus.yml no longer has %q", old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o600); err != nil {
		t.Fatal(err)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var out syncBuffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", out.String())
		}
	})
	api := func(path string, v any) bool {
		resp, err := http.Get("http://" + promAddr + path)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(v) == nil
	}

	waitFor(t, "Prometheus to have p's invocation", 60*time.Second, func() bool {
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		q := url.QueryEscape(`sum(lambdagw_invocations_total{function="p"})`)
		return api("/api/v1/query?query="+q, &r) && len(r.Data.Result) == 1 && len(r.Data.Result[0].Value) == 2 && r.Data.Result[0].Value[1] == "1"
	})
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if !api("/api/v1/targets", &targets) || len(targets.Data.ActiveTargets) != 1 || targets.Data.ActiveTargets[0].Health != "up" {
		t.Fatalf("the agent as Prometheus' target: %+v", targets)
	}

	type rule struct {
		Name      string `json:"name"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
	}
	var ruleList []rule
	waitFor(t, "every alerting rule evaluated", 30*time.Second, func() bool {
		var r struct {
			Data struct {
				Groups []struct {
					Rules []rule `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if !api("/api/v1/rules", &r) {
			return false
		}
		ruleList = ruleList[:0]
		for _, g := range r.Data.Groups {
			for _, ru := range g.Rules {
				if ru.Health == "unknown" {
					return false
				}
				ruleList = append(ruleList, ru)
			}
		}
		return len(ruleList) > 0
	})
	for _, ru := range ruleList {
		if ru.Health != "ok" {
			t.Errorf("rule %s: %s %s", ru.Name, ru.Health, ru.LastError)
		}
	}

	// A rule on a misspelt metric would evaluate fine and never fire: every name must be one
	// the agent serves or docs/metrics.md lists as a family.
	fams, _ := scrape(t, a, &metricsReader)
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`lambdagw_[a-z0-9_]+`).FindAllString(string(rules), -1) {
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			family = strings.TrimSuffix(family, suffix)
		}
		if fams[family] == nil && !strings.Contains(string(doc), "`"+family+"`") {
			t.Errorf("examples/prometheus/alerts.yml reads %s, which the agent does not serve and docs/metrics.md does not list", name)
		}
	}
}
