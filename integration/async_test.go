package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdagw/gateway/plugins/host"
)

// eventSink counts what the test function reports of each event (mode "event" with addr): it
// runs as a plain process (the process driver), so it reaches this server on the host.
type eventSink struct {
	addr    string
	mu      sync.Mutex
	seen    map[string]map[string]int // step ("start", "done") -> event name -> count
	records []string                  // what a function with RECORD_SINK got, as it came
}

func newEventSink(t *testing.T) *eventSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &eventSink{addr: ln.Addr().String(), seen: map[string]map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/")
		if path == "record" {
			b, _ := io.ReadAll(r.Body)
			s.mu.Lock()
			s.records = append(s.records, string(b))
			s.mu.Unlock()
			return
		}
		if rest, ok := strings.CutPrefix(path, "count/"); ok {
			step, name, _ := strings.Cut(rest, "/")
			fmt.Fprint(w, s.times(step, name))
			return
		}
		step, name, _ := strings.Cut(path, "/")
		s.mu.Lock()
		if s.seen[step] == nil {
			s.seen[step] = map[string]int{}
		}
		s.seen[step][name]++
		s.mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return s
}

// count is how many distinct events reached step, and how many reports beyond one each.
func (s *eventSink) count(step string) (events, duplicates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.seen[step] {
		events++
		duplicates += n - 1
	}
	return events, duplicates
}

func (s *eventSink) times(step, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[step][name]
}

// asyncAgent is a single node whose functions run as processes, with short async delays.
func asyncAgent(t *testing.T, dataDir string) *agentProc {
	return startAgent(t, agentOptions{driver: "process", dataDir: dataDir,
		top: "async {\n  retry_delay = \"300ms\"\n  redeliver_after = \"3s\"\n  per_function = 10\n}\n"})
}

// sendEvents invokes fn asynchronously once per payload, 16 at a time, and fails the test
// unless every one is accepted with 202.
func sendEvents(t *testing.T, a *agentProc, fn string, payloads []string) {
	t.Helper()
	var wg sync.WaitGroup
	var refused atomic.Int32
	work := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if r := a.invoke(fn, p, map[string]string{"X-Amz-Invocation-Type": "Event"}); r.status != 202 {
					if refused.Add(1) == 1 {
						t.Errorf("an Event invocation answered %d: %s", r.status, r.body)
					}
				}
			}
		}()
	}
	for _, p := range payloads {
		work <- p
	}
	close(work)
	wg.Wait()
	if n := refused.Load(); n > 0 {
		t.Fatalf("%d of %d events were refused", n, len(payloads))
	}
}

// asyncStatus reads GET /v1/functions/{fn}/async.
func (a *agentProc) asyncStatus(fn string) (st struct {
	Waiting          uint64
	InFlight         int
	OldestAgeSeconds float64
	Counters         struct{ Succeeded, Retried, RetriesExhausted, Expired, Delivered, Dropped uint64 }
	Unanswered       []string
}) {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.addr+"/v1/functions/"+fn+"/async", nil)
	a.sign(req, nil)
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		a.t.Fatalf("async status of %s: %d %v", fn, resp.StatusCode, err)
	}
	return st
}

// holdsWithin polls cond every 100ms until it holds or d passes.
func holdsWithin(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// Accepted events survive a kill -9 of the agent: 1,000 are accepted, the agent is killed while
// some run, and after its restart every one of them runs (at least once; duplicates counted).
func TestAsyncEventsSurviveAKill(t *testing.T) {
	sink := newEventSink(t)
	dataDir := t.TempDir()
	a := asyncAgent(t, dataDir)
	a.apply(fmt.Sprintf(`
function "ev" {
  runtime   = "provided.al2023"
  code      = %q
  memory_mb = 128
  timeout   = "30s"
}
`, fnDir))
	const n = 1000
	payloads := make([]string, n)
	for i := range payloads {
		payloads[i] = fmt.Sprintf(`{"mode":"event","name":"e%d","ms":100,"addr":%q}`, i, sink.addr)
	}
	start := time.Now()
	sendEvents(t, a, "ev", payloads)
	t.Logf("%d events accepted in %v", n, time.Since(start))
	if !holdsWithin(30*time.Second, func() bool { d, _ := sink.count("done"); return d >= 50 }) {
		t.Fatal("no events ran")
	}
	started, _ := sink.count("start")
	doneBefore, _ := sink.count("done")
	_ = a.cmd.Process.Kill()
	<-a.exited
	t.Logf("killed the agent with %d events done, %d started", doneBefore, started)
	a.start()
	if !holdsWithin(120*time.Second, func() bool { d, _ := sink.count("done"); return d == n }) {
		d, _ := sink.count("done")
		t.Fatalf("after the restart %d of %d events ran", d, n)
	}
	_, dups := sink.count("done")
	_, restarted := sink.count("start")
	t.Logf("all %d events ran, %d of them to their end more than once, %d started more than once (at least once), %v after the first was sent",
		n, dups, restarted, time.Since(start))
	if st, _, code := a.cli("async", "status", "ev"); code != 0 || !strings.Contains(st, "ev") {
		t.Fatalf("gateway async status: %d %s", code, st)
	}
}

// A failing event is tried three times (two retries, Lambda's default) with the backoff
// between; an event of a function that has no room (reserved concurrency 0) waits without
// holding another function's events, and runs once it has room.
func TestAsyncRetriesAndBacklogs(t *testing.T) {
	sink := newEventSink(t)
	a := asyncAgent(t, t.TempDir())
	a.apply(fmt.Sprintf(`
function "failing" {
  runtime = "provided.al2023"
  code    = %[1]q
}
function "stuck" {
  runtime = "provided.al2023"
  code    = %[1]q
}
function "healthy" {
  runtime = "provided.al2023"
  code    = %[1]q
}
`, fnDir))
	client := a.sdk()
	ctx := context.Background()
	if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("stuck"),
		ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	sendEvents(t, a, "failing", []string{fmt.Sprintf(`{"mode":"event","name":"f","fail":true,"addr":%q}`, sink.addr)})
	var stuck, healthy []string
	for i := range 20 {
		stuck = append(stuck, fmt.Sprintf(`{"mode":"event","name":"s%d","addr":%q}`, i, sink.addr))
		healthy = append(healthy, fmt.Sprintf(`{"mode":"event","name":"h%d","addr":%q}`, i, sink.addr))
	}
	sendEvents(t, a, "stuck", stuck)
	sendEvents(t, a, "healthy", healthy)
	if !holdsWithin(20*time.Second, func() bool { d, _ := sink.count("done"); return d >= 20 }) {
		d, _ := sink.count("done")
		t.Fatalf("the healthy function's events waited behind the stuck one's: %d of 20 ran", d)
	}
	for i := range 20 {
		if sink.times("start", fmt.Sprintf("s%d", i)) != 0 {
			t.Fatalf("an event of a function with reserved concurrency 0 ran")
		}
	}
	if !holdsWithin(10*time.Second, func() bool { return sink.times("start", "f") >= 3 }) {
		t.Fatalf("the failing event ran %d times, want 3", sink.times("start", "f"))
	}
	time.Sleep(time.Second) // no fourth try
	if got := sink.times("start", "f"); got != 3 {
		t.Fatalf("the failing event ran %d times, want 3 (two retries)", got)
	}
	st := a.asyncStatus("stuck")
	if st.Waiting+uint64(st.InFlight) != 20 || st.OldestAgeSeconds <= 0 {
		t.Fatalf("the stuck function's status: %+v", st)
	}
	// Given room, its events run (their backoff is at most a few seconds by now).
	if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("stuck"),
		ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	if !holdsWithin(60*time.Second, func() bool { d, _ := sink.count("done"); return d == 40 }) {
		d, _ := sink.count("done")
		t.Fatalf("after the stuck function got room, %d of 40 events ran", d)
	}
}

// On three nodes whose embedded NATS servers form one cluster (nats { cluster_listen, routes },
// every node given the same routes, its own among them; no external NATS), events accepted by
// one node run on all of them, and when that node is killed (-9) while they run, the other two
// finish them: the stream has three replicas by default.
func TestAsyncEventsOnACluster(t *testing.T) {
	start := time.Now()
	sink := newEventSink(t)
	routePorts := make([]int, 3)
	var routes []string
	for i := range routePorts {
		routePorts[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("127.0.0.1:%d", routePorts[i])))
	}
	nodes := startClusterWith(t, "as", 3, agentOptions{driver: "process"}, func(i int, o *agentOptions) {
		o.top = fmt.Sprintf("nats {\n  cluster_listen = \"127.0.0.1:%d\"\n  routes = [%s]\n}\n", routePorts[i], strings.Join(routes, ", ")) +
			"async {\n  retry_delay = \"300ms\"\n  redeliver_after = \"3s\"\n  per_function = 4\n}\n"
	})
	t.Logf("the nodes serve %v after they started", time.Since(start).Round(100*time.Millisecond))
	waitFor(t, "a leader", 15*time.Second, func() bool { _, l := members(t, nodes[0]); return l != "" })
	hcl := fmt.Sprintf("function \"ev\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  timeout = \"30s\"\n}\n", fnDir)
	if out, errOut, code := nodes[0].cli("apply", "-address", nodes[0].addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	for _, a := range nodes {
		waitFor(t, "the function on "+a.name, 15*time.Second, func() bool { return a.invoke("ev", `{}`, nil).status == 200 })
	}
	const events = 300
	payloads := make([]string, events)
	for i := range payloads {
		payloads[i] = fmt.Sprintf(`{"mode":"event","name":"c%d","ms":200,"addr":%q}`, i, sink.addr)
	}
	sendEvents(t, nodes[0], "ev", payloads)
	if !holdsWithin(30*time.Second, func() bool { d, _ := sink.count("done"); return d >= 30 }) {
		t.Fatal("no events ran")
	}
	doneBefore, _ := sink.count("done")
	_ = nodes[0].cmd.Process.Kill()
	<-nodes[0].exited
	killed := time.Now()
	t.Logf("killed %s with %d of %d events done", nodes[0].name, doneBefore, events)
	if !holdsWithin(90*time.Second, func() bool { d, _ := sink.count("done"); return d == events }) {
		d, _ := sink.count("done")
		t.Fatalf("the two nodes left ran %d of %d events", d, events)
	}
	// At least once: an event whose run the dead node had finished may run again when its
	// acknowledgement had not reached the others.
	_, dups := sink.count("done")
	t.Logf("all %d events ran, %d more than once, %v after the kill", events, dups, time.Since(killed).Round(100*time.Millisecond))
	// The status adds up the nodes that answer, and names the one that cannot.
	st := nodes[1].asyncStatus("ev")
	if st.Waiting != 0 || len(st.Unanswered) != 1 || st.Unanswered[0] != nodes[0].name || st.Counters.Succeeded == 0 || st.Counters.Succeeded > events {
		t.Errorf("the status on %s after the kill: %+v", nodes[1].name, st)
	}
}

// recordsWith are the destination records the sink got whose request payload names event.
func (s *eventSink) recordsWith(event string) []destinationRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []destinationRecord
	for _, body := range s.records {
		var r destinationRecord
		if json.Unmarshal([]byte(body), &r) == nil && strings.Contains(string(r.RequestPayload), `"name":"`+event+`"`) {
			out = append(out, r)
		}
	}
	return out
}

// Retries and destinations end to end, on functions that report to the test: an event that
// fails its first try succeeds on the retry and its Success record reaches the on-success
// function; one that keeps failing reaches the on-failure function as RetriesExhausted after
// three tries; one that cannot start (reserved concurrency 0) expires at its maximum age and
// reaches it as EventAgeExceeded, never run; a record for a destination that cannot take it
// (a function without room) waits, and arrives once it can.
func TestAsyncDestinations(t *testing.T) {
	sink := newEventSink(t)
	a := asyncAgent(t, t.TempDir())
	a.apply(fmt.Sprintf(`
function "flaky" {
  runtime = "provided.al2023"
  code    = %[1]q
  async {
    maximum_retry_attempts = 2
    on_success { destination = "function:collector" }
    on_failure { destination = "function:collector" }
  }
}
function "aging" {
  runtime = "provided.al2023"
  code    = %[1]q
  async {
    maximum_event_age = "60s"
    on_failure { destination = "function:collector" }
  }
}
function "blocked" {
  runtime = "provided.al2023"
  code    = %[1]q
  async {
    on_success { destination = "function:late" }
  }
}
function "collector" {
  runtime     = "provided.al2023"
  code        = %[1]q
  environment = { RECORD_SINK = %[2]q }
}
function "late" {
  runtime     = "provided.al2023"
  code        = %[1]q
  environment = { RECORD_SINK = %[2]q }
}
`, fnDir, sink.addr))
	client := a.sdk()
	ctx := context.Background()
	for _, fn := range []string{"aging", "late"} {
		if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String(fn),
			ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	sendEvents(t, a, "aging", []string{fmt.Sprintf(`{"mode":"event","name":"old","addr":%q}`, sink.addr)})
	sendEvents(t, a, "flaky", []string{
		fmt.Sprintf(`{"mode":"event","name":"once","n":1,"addr":%q}`, sink.addr),
		fmt.Sprintf(`{"mode":"event","name":"never","fail":true,"addr":%q}`, sink.addr),
	})
	sendEvents(t, a, "blocked", []string{fmt.Sprintf(`{"mode":"event","name":"waits","addr":%q}`, sink.addr)})

	one := func(event string, within time.Duration) destinationRecord {
		t.Helper()
		if !holdsWithin(within, func() bool { return len(sink.recordsWith(event)) > 0 }) {
			t.Fatalf("no destination record of %s within %v", event, within)
		}
		rs := sink.recordsWith(event)
		if len(rs) != 1 {
			t.Fatalf("%d destination records of %s: %+v", len(rs), event, rs)
		}
		return rs[0]
	}
	if r := one("once", 20*time.Second); r.RequestContext.Condition != "Success" || r.RequestContext.ApproximateInvokeCount != 2 ||
		!strings.HasSuffix(r.RequestContext.FunctionArn, ":function:flaky:$LATEST") || !strings.Contains(string(r.ResponsePayload), `"event":"once"`) {
		t.Errorf("the record of an event that succeeded on its retry: %+v", r)
	}
	if r := one("never", 20*time.Second); r.RequestContext.Condition != "RetriesExhausted" || r.RequestContext.ApproximateInvokeCount != 3 ||
		!strings.Contains(string(r.ResponsePayload), "fails") && !strings.Contains(string(r.ResponsePayload), "failed on purpose") {
		t.Errorf("the record of an event out of retries: %+v", r)
	}
	if n := sink.times("start", "never"); n != 3 {
		t.Errorf("the failing event ran %d times, want 3", n)
	}
	// The blocked function's record waits for its destination to have room.
	time.Sleep(2 * time.Second)
	if len(sink.recordsWith("waits")) != 0 || sink.times("done", "waits") != 1 {
		t.Fatalf("the record for a destination without room was delivered, or its event did not run (%d runs)", sink.times("done", "waits"))
	}
	if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("late"),
		ReservedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if r := one("waits", 60*time.Second); r.RequestContext.Condition != "Success" {
		t.Errorf("the record that waited for its destination: %+v", r)
	}
	// The event that never had room expires at 60 s and reaches the on-failure destination.
	r := one("old", 90*time.Second-time.Since(start))
	if r.RequestContext.Condition != "EventAgeExceeded" || sink.times("start", "old") != 0 || r.RequestContext.ApproximateInvokeCount != 0 {
		t.Errorf("the record of an expired event: %+v (it ran %d times)", r, sink.times("start", "old"))
	}
	t.Logf("the expired event's record came %v after it was sent", time.Since(start).Round(time.Second))
	// What became of each function's events, as gateway async status counts it.
	if c := a.asyncStatus("flaky").Counters; c.Succeeded != 1 || c.Retried != 3 || c.RetriesExhausted != 1 || c.Delivered != 2 {
		t.Errorf("the flaky function's counters: %+v", c)
	}
	if c := a.asyncStatus("aging").Counters; c.Expired != 1 || c.Succeeded != 0 || c.Delivered != 1 {
		t.Errorf("the aging function's counters: %+v", c)
	}
	if out, _, code := a.cli("async", "status", "flaky"); code != 0 || !strings.Contains(out, "RETRIES EXHAUSTED") {
		t.Errorf("gateway async status flaky exited %d:\n%s", code, out)
	}
}

// A trigger plugin that accepts records is a destination ("<plugin>:<target>", through the
// plugin SDK's RecordAcceptor): the test plugin writes what it takes to records.log. A record
// for a target that refuses it waits and arrives once it is taken; a destination naming a plugin
// the agent does not run is refused when it is set, in Lambda's error shape.
func TestAsyncPluginDestination(t *testing.T) {
	sink := newEventSink(t)
	sum, err := host.FileChecksum(pluginBins["test"])
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	pluginDir := filepath.Join(dataDir, "plugins", "audit")
	a := startAgent(t, agentOptions{driver: "process", dataDir: dataDir, top: fmt.Sprintf(`
async {
  retry_delay = "300ms"
}
plugin "audit" {
  path     = %q
  checksum = %q
  config {
    greeting = "hi"
  }
}
`, pluginBins["test"], sum)})
	if err := os.WriteFile(filepath.Join(pluginDir, "refuse"), []byte("successes"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.apply(fmt.Sprintf(`
function "audited" {
  runtime = "provided.al2023"
  code    = %q
  async {
    maximum_retry_attempts = 0
    on_success { destination = "audit:successes" }
    on_failure { destination = "audit:failures" }
  }
}
`, fnDir))
	sendEvents(t, a, "audited", []string{
		fmt.Sprintf(`{"mode":"event","name":"good","addr":%q}`, sink.addr),
		fmt.Sprintf(`{"mode":"event","name":"bad","fail":true,"addr":%q}`, sink.addr),
	})
	// records are the lines of records.log for target: the request id and the record.
	records := func(target string) (out []destinationRecord) {
		b, _ := os.ReadFile(filepath.Join(pluginDir, "records.log"))
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.SplitN(l, " ", 3)
			var r destinationRecord
			if len(f) == 3 && f[0] == target && json.Unmarshal([]byte(f[2]), &r) == nil && r.RequestContext.RequestID == f[1] {
				out = append(out, r)
			}
		}
		return out
	}
	if !holdsWithin(20*time.Second, func() bool { return len(records("failures")) == 1 }) {
		t.Fatalf("no on-failure record reached the plugin: %+v", records("failures"))
	}
	if r := records("failures")[0]; r.RequestContext.Condition != "RetriesExhausted" || !strings.Contains(string(r.RequestPayload), `"bad"`) {
		t.Errorf("the on-failure record: %+v", r)
	}
	// The event that succeeded ran; its record waits while its target refuses it.
	if !holdsWithin(10*time.Second, func() bool { return sink.times("done", "good") == 1 }) {
		t.Fatal("the event did not run")
	}
	time.Sleep(2 * time.Second)
	if n := len(records("successes")); n != 0 {
		t.Fatalf("%d records reached a target that refuses them", n)
	}
	if err := os.Remove(filepath.Join(pluginDir, "refuse")); err != nil {
		t.Fatal(err)
	}
	if !holdsWithin(30*time.Second, func() bool { return len(records("successes")) == 1 }) {
		t.Fatal("the refused record did not arrive once its target took records")
	}
	if r := records("successes")[0]; r.RequestContext.Condition != "Success" || !strings.Contains(string(r.ResponsePayload), `"event":"good"`) {
		t.Errorf("the on-success record: %+v", r)
	}
	// The API answers the plugin's destination by ARN, and refuses a plugin not configured.
	client := a.sdk()
	ctx := context.Background()
	got, err := client.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("audited")})
	if err != nil || aws.ToString(got.DestinationConfig.OnSuccess.Destination) != "arn:lambdagw:audit:us-east-1::successes" {
		t.Fatalf("GetFunctionEventInvokeConfig: %v %+v", err, got)
	}
	_, err = client.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("audited"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:lambdagw:kafka:us-east-1::t")}}})
	var ipe *types.InvalidParameterValueException
	if !errors.As(err, &ipe) || !strings.Contains(err.Error(), `no plugin "kafka"`) {
		t.Errorf("a destination naming a plugin not configured: %v", err)
	}
}
