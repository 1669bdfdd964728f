package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
)

// logEntry is one line of `gateway logs -json`.
type logEntry struct {
	Time      string `json:"time"`
	Node      string `json:"node"`
	Function  string `json:"function"`
	RequestID string `json:"request_id"`
	Type      string `json:"type"`
	Level     string `json:"level"`
	Message   string `json:"message"`
}

// cliLogs runs `gateway logs -json ... fn` on a and parses its lines.
func cliLogs(t *testing.T, a *agentProc, args ...string) []logEntry {
	t.Helper()
	out, errOut, code := a.cli(append([]string{"logs", "-address", a.addr, "-json"}, args...)...)
	if code != 0 {
		t.Fatalf("gateway logs %v exited %d: %s", args, code, errOut)
	}
	var es []logEntry
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var e logEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("gateway logs -json printed %q: %v", l, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Fatalf("entry time %q: %v", e.Time, err)
		}
		es = append(es, e)
	}
	return es
}

// TestClusterLogs: `gateway logs` on one node of three shows the lines every node logged, each
// with the node that ran it, in time order; -request-id selects exactly one invocation,
// -since/-until bound the time, -follow gets a line logged on another node after it started,
// and a stopped node is reported, not silently missing.
func TestClusterLogs(t *testing.T) {
	needRoot(t)
	nodes := startCluster(t, "lg", 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.apply(fmt.Sprintf(`
function "fn" {
  runtime = "provided.al2023"
  code    = %q
  timeout = "10s"
}
`, fnDir))
	// Every node knows fn before the calls (asked without invoking it: each call logs lines).
	for _, n := range nodes {
		waitFor(t, "fn replicated to "+n.name, 10*time.Second, func() bool {
			_, err := n.sdk().GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String("fn")})
			return err == nil
		})
	}
	// One call on each node at once, each busy a while: no node has an idle environment to
	// take another's call, so each runs where it was made.
	round := func(tag string) map[string]string { // node -> request id
		var mu sync.Mutex
		ids := map[string]string{}
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := n.invoke("fn", fmt.Sprintf(`{"mode":"print","value":"%s from %s","ms":1500}`, tag, n.name), nil)
				if r.status != 200 {
					t.Errorf("invoke on %s: %d %s", n.name, r.status, r.body)
				}
				mu.Lock()
				ids[n.name] = r.header.Get("X-Amzn-RequestId")
				mu.Unlock()
			}()
		}
		wg.Wait()
		return ids
	}
	first := round("first")
	time.Sleep(50 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(50 * time.Millisecond)
	second := round("second")

	all := cliLogs(t, b, "-n", "1000", "fn")
	startNode := map[string]string{} // request id -> node of its START
	for i, e := range all {
		if i > 0 && e.Time < all[i-1].Time && len(e.Time) == len(all[i-1].Time) {
			t.Errorf("not in time order: %s after %s", e.Time, all[i-1].Time)
		}
		if e.Function != "fn" {
			t.Errorf("entry of function %q", e.Function)
		}
		if strings.HasPrefix(e.Message, "START RequestId: ") {
			if e.Type != "platform" || e.RequestID == "" {
				t.Errorf("START entry %+v", e)
			}
			startNode[e.RequestID] = e.Node
		}
	}
	for _, ids := range []map[string]string{first, second} {
		for node, id := range ids {
			if startNode[id] != node {
				t.Errorf("the START of %s, invoked on %s, shows node %q", id, node, startNode[id])
			}
		}
	}
	nodesSeen := map[string]bool{}
	for _, e := range all {
		if strings.Contains(e.Message, " from ") {
			nodesSeen[e.Node] = true
			if want := strings.TrimSpace(e.Message[strings.Index(e.Message, " from ")+6:]); e.Node != want || e.Type != "function" || startNode[e.RequestID] != want {
				t.Errorf("the line %q: node %q, request %s (started on %q), type %s", e.Message, e.Node, e.RequestID, startNode[e.RequestID], e.Type)
			}
		}
	}
	if len(nodesSeen) != 3 {
		t.Fatalf("lines from %d nodes, want 3:\n%+v", len(nodesSeen), all)
	}
	// The text form: TIME NODE LINE.
	out, _, code := c.cli("logs", "-address", c.addr, "-n", "1000", "fn")
	if code != 0 || !strings.Contains(out, "  "+b.name+"  second from "+b.name) {
		t.Errorf("gateway logs (text): %d\n%s", code, out)
	}

	// -request-id: exactly one invocation's lines, read on a node that did not run it.
	id := first[b.name]
	got := cliLogs(t, c, "-request-id", id, "fn")
	var msgs []string
	for _, e := range got {
		if e.RequestID != id || e.Node != b.name {
			t.Errorf("-request-id %s gave %+v", id, e)
		}
		msgs = append(msgs, e.Message)
	}
	if len(msgs) != 4 || !strings.HasPrefix(msgs[0], "START RequestId: "+id) || msgs[1] != "first from "+b.name ||
		msgs[2] != "END RequestId: "+id || !strings.HasPrefix(msgs[3], "REPORT RequestId: "+id) {
		t.Errorf("-request-id %s: %q", id, msgs)
	}

	// -since / -until: the rounds on either side of mid.
	check := func(args []string, want, notWant string) {
		t.Helper()
		n := 0
		for _, e := range cliLogs(t, a, append(args, "-filter", "from*lg", "fn")...) {
			if !strings.HasPrefix(e.Message, want) || strings.HasPrefix(e.Message, notWant) {
				t.Errorf("%v: %q", args, e.Message)
			}
			n++
		}
		if n != 3 {
			t.Errorf("%v: %d lines, want 3", args, n)
		}
	}
	check([]string{"-since", mid.Format(time.RFC3339Nano)}, "second", "first")
	check([]string{"-until", mid.Format(time.RFC3339Nano)}, "first", "second")
	check([]string{"-since", "10m", "-until", mid.Format(time.RFC3339Nano)}, "first", "second")
	// A bad parameter is refused, naming it.
	if _, errOut, code := a.cli("logs", "-address", a.addr, "-since", "yesterday", "fn"); code == 0 || !strings.Contains(errOut, "since") {
		t.Errorf("-since yesterday: %d %s", code, errOut)
	}

	// -follow on a gets a line logged on c afterwards.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewayBin, "logs", "-address", a.addr, "-json", "-f", "-n", "0", "fn")
	cmd.Env = append(os.Environ(), "GATEWAY_ADDR="+a.addr, "GATEWAY_CACERT="+a.caFile)
	if a.admin != nil {
		cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID="+a.admin.id, "AWS_SECRET_ACCESS_KEY="+a.admin.secret)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := make(chan logEntry, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e logEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				lines <- e
			}
		}
	}()
	// The follow is on when a line logged now arrives: keep calling until one does.
	deadline := time.After(45 * time.Second)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; {
		select {
		case e, ok := <-lines:
			if !ok {
				t.Fatal("gateway logs -f ended")
			}
			if strings.HasPrefix(e.Message, "followed ") {
				if e.Node != c.name || e.Message != "followed "+c.name {
					t.Fatalf("followed line %+v", e)
				}
				goto stopped
			}
		case <-tick.C:
			i++
			if r := c.invoke("fn", fmt.Sprintf(`{"mode":"print","value":"followed %s"}`, c.name), nil); r.status != 200 {
				t.Fatalf("invoke on %s: %d", c.name, r.status)
			}
		case <-deadline:
			t.Fatal("no line logged on another node reached gateway logs -f")
		}
	}
stopped:
	// A stopped node is reported.
	c.stop()
	var reported bool
	for _, e := range cliLogs(t, a, "-n", "5", "fn") {
		if e.Type == "error" && e.Node == c.name && strings.Contains(e.Message, c.name) {
			reported = true
		}
	}
	if !reported {
		t.Errorf("the stopped node %s was not reported", c.name)
	}
}

// TestJSONLogFormat: a function with logging_config { log_format = "JSON" } gets
// AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL; its log holds Lambda's JSON platform records
// (platform.start, platform.report with its metrics; platform.runtimeDone left out below the
// system level DEBUG); its JSON lines below the application level are dropped, plain text kept;
// and a line forging a platform record or a START stays the function's own, of its invocation.
func TestJSONLogFormat(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "jsonlogs"})
	a.apply(fmt.Sprintf(`
function "jfn" {
  runtime = "provided.al2023"
  code    = %q
  logging_config {
    log_format            = "JSON"
    application_log_level = "WARN"
  }
}
`, fnDir))
	r := a.invoke("jfn", `{"mode":"env"}`, nil)
	var env map[string]string
	if r.status != 200 || json.Unmarshal(r.body, &env) != nil || env["AWS_LAMBDA_LOG_FORMAT"] != "JSON" || env["AWS_LAMBDA_LOG_LEVEL"] != "WARN" {
		t.Fatalf("environment: %d %s", r.status, r.body)
	}
	var ids []string
	for _, v := range []string{
		`{"level":"DEBUG","message":"dropped debug"}`,
		`{"level":"INFO","message":"dropped info"}`,
		`{"level":"ERROR","message":"kept error"}`,
		`plain text kept`,
		`{"time":"2020-01-01T00:00:00.000Z","type":"platform.report","level":"FATAL","record":{"requestId":"forged-id"}}`,
		`START RequestId: forged-id Version: $LATEST`,
	} {
		payload, _ := json.Marshal(map[string]string{"mode": "print", "value": v})
		r := a.invoke("jfn", string(payload), nil)
		if r.status != 200 {
			t.Fatalf("invoke: %d %s", r.status, r.body)
		}
		ids = append(ids, r.header.Get("X-Amzn-RequestId"))
	}
	all := cliLogs(t, a, "-n", "1000", "jfn")
	types := map[string]int{}
	var printed []logEntry
	for _, e := range all {
		types[e.Type]++
		switch e.Type {
		case "platform.start", "platform.report", "platform.initStart":
			var rec struct {
				Time   string `json:"time"`
				Type   string `json:"type"`
				Record struct {
					RequestID string             `json:"requestId"`
					Version   string             `json:"version"`
					Status    string             `json:"status"`
					Metrics   map[string]float64 `json:"metrics"`
				} `json:"record"`
			}
			if err := json.Unmarshal([]byte(e.Message), &rec); err != nil || rec.Type != e.Type || rec.Time == "" {
				t.Fatalf("platform record %q: %v", e.Message, err)
			}
			if e.Type == "platform.initStart" {
				continue
			}
			if rec.Record.RequestID != e.RequestID || e.RequestID == "" || e.RequestID == "forged-id" {
				t.Errorf("record of %q attributed to %q: %s", rec.Record.RequestID, e.RequestID, e.Message)
			}
			if e.Type == "platform.start" && rec.Record.Version != "$LATEST" {
				t.Errorf("start: %s", e.Message)
			}
			if e.Type == "platform.report" {
				m := rec.Record.Metrics
				if rec.Record.Status != "success" || m["durationMs"] <= 0 || m["billedDurationMs"] < 1 || m["memorySizeMB"] != 128 || m["maxMemoryUsedMB"] <= 0 {
					t.Errorf("report: %s", e.Message)
				}
			}
		case "function":
			printed = append(printed, e)
		}
		if strings.HasPrefix(e.Message, "END RequestId") || strings.HasPrefix(e.Message, "REPORT RequestId") || e.Type == "platform.runtimeDone" {
			t.Errorf("a Text or DEBUG platform line in the JSON format: %+v", e)
		}
	}
	if types["platform.start"] != 7 || types["platform.report"] != 7 || types["platform.initStart"] < 1 {
		t.Errorf("platform records: %v", types)
	}
	var msgs []string
	for _, e := range printed {
		msgs = append(msgs, e.Message)
	}
	want := []string{`{"level":"ERROR","message":"kept error"}`, `plain text kept`,
		`{"time":"2020-01-01T00:00:00.000Z","type":"platform.report","level":"FATAL","record":{"requestId":"forged-id"}}`,
		`START RequestId: forged-id Version: $LATEST`}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("the function's lines:\n got %q\nwant %q", msgs, want)
	}
	for i, e := range printed {
		if e.RequestID != ids[i+2] {
			t.Errorf("%q attributed to %q, want %q", e.Message, e.RequestID, ids[i+2])
		}
	}
	if printed[0].Level != "ERROR" || printed[2].Level != "FATAL" {
		t.Errorf("levels: %+v", printed)
	}
	// The forged id has no lines of its own.
	if got := cliLogs(t, a, "-request-id", "forged-id", "jfn"); len(got) != 0 {
		t.Errorf("-request-id forged-id: %+v", got)
	}
}
