package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/testfixtures/otlpsink"
)

// xrayForm is the trace header the gateway makes when none (or a malformed one) came.
var xrayForm = regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`)

// traceCall invokes path on a with the given headers (each value added, so a name may repeat)
// and returns the status, the response headers and the body.
func traceCall(t *testing.T, a *agentProc, method, path, payload string, headers [][2]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, a.addr+path, strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	if !strings.HasPrefix(path, "/fn/") {
		a.sign(req, []byte(payload))
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// functionTrace is the _X_AMZN_TRACE_ID the test function saw (mode trace).
func functionTrace(t *testing.T, status int, body []byte) string {
	t.Helper()
	var out struct{ Trace string }
	if status != 200 || json.Unmarshal(body, &out) != nil {
		t.Fatalf("mode trace: %d %s", status, body)
	}
	return out.Trace
}

const (
	callerXRay = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	callerTP   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	callerTPX  = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
)

// TestTraceContext: a real aws-lambda-go function reads os.Getenv("_X_AMZN_TRACE_ID"), which
// the library sets from Lambda-Runtime-Trace-Id for each invocation: the caller's
// X-Amzn-Trace-Id, its traceparent converted, or one the gateway made, through the invoke API,
// InvokeWithResponseStream, a function URL and an asynchronous call; malformed headers are
// replaced, never passed on.
func TestTraceContext(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "trace"})
	applyHCL(t, a, fnHCL("tr", "10s", "128", `url { auth_type = "NONE" }`))
	invokePath := "/2015-03-31/functions/tr/invocations"
	call := func(headers ...[2]string) string {
		t.Helper()
		status, _, body := traceCall(t, a, "POST", invokePath, `{"mode":"trace"}`, headers)
		return functionTrace(t, status, body)
	}
	if got := call([2]string{"X-Amzn-Trace-Id", callerXRay}); got != callerXRay {
		t.Errorf("X-Amzn-Trace-Id: the function saw %q, want %q", got, callerXRay)
	}
	lineage := callerXRay + ";Lineage=a87bd80c:1|68fd508a:5"
	if got := call([2]string{"X-Amzn-Trace-Id", lineage}); got != lineage {
		t.Errorf("X-Amzn-Trace-Id with Lineage: the function saw %q", got)
	}
	if got := call([2]string{"traceparent", callerTP}); got != callerTPX {
		t.Errorf("traceparent: the function saw %q, want %q", got, callerTPX)
	}
	first, second := call(), call()
	if !xrayForm.MatchString(first) || !xrayForm.MatchString(second) || first == second {
		t.Errorf("no trace header: the function saw %q then %q, want two new ones", first, second)
	}
	// Hostile or malformed headers: each replaced by a new one.
	for name, headers := range map[string][][2]string{
		"injected field":      {{"X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Evil=\"x\""}},
		"bad hex":             {{"X-Amzn-Trace-Id", "Root=1-5759e98g-bd862e3fe1be46a994272793"}},
		"oversized":           {{"X-Amzn-Trace-Id", callerXRay + ";Pad=" + strings.Repeat("a", 400)}},
		"zero trace id":       {{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
		"zero span id":        {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}},
		"duplicated header":   {{"X-Amzn-Trace-Id", callerXRay}, {"X-Amzn-Trace-Id", callerXRay}},
		"duplicated parent":   {{"traceparent", callerTP}, {"traceparent", callerTP}},
		"unknown version":     {{"traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		"comma-joined values": {{"X-Amzn-Trace-Id", callerXRay + "," + callerXRay}},
	} {
		if got := call(headers...); !xrayForm.MatchString(got) || strings.Contains(got, "5759e988") || strings.Contains(got, "4bf92f35") {
			t.Errorf("%s: the function saw %q, want a new trace header", name, got)
		}
	}

	// InvokeWithResponseStream: the function's answer is in the event stream's payload chunk.
	_, _, body := traceCall(t, a, "POST", "/2021-11-15/functions/tr/response-streaming-invocations", `{"mode":"trace"}`,
		[][2]string{{"traceparent", callerTP}})
	if !strings.Contains(string(body), `{"trace":"`+callerTPX+`"}`) {
		t.Errorf("InvokeWithResponseStream: %q, want the converted traceparent", body)
	}
	// A function URL.
	status, _, body := traceCall(t, a, "GET", "/fn/tr/?mode=trace", "", [][2]string{{"X-Amzn-Trace-Id", callerXRay}})
	if got := functionTrace(t, status, body); got != callerXRay {
		t.Errorf("function URL: the function saw %q", got)
	}
	// An asynchronous call keeps its trace through the durable queue.
	status, _, body = traceCall(t, a, "POST", invokePath, `{"mode":"trace","name":"async1"}`,
		[][2]string{{"X-Amz-Invocation-Type", "Event"}, {"X-Amzn-Trace-Id", callerXRay}})
	if status != 202 {
		t.Fatalf("Event invoke: %d %s", status, body)
	}
	waitFor(t, "the asynchronous call's trace in the log", 30*time.Second, func() bool {
		return strings.Contains(a.functionLogs("tr"), "trace async1 "+callerXRay+"\n")
	})
}

// tracingHCL is the agent's tracing block, exporting to sink.
func tracingHCL(sink *otlpsink.Sink) string {
	return fmt.Sprintf("tracing {\n  otlp_endpoint = %q\n  service_name = \"lambdagw-it\"\n}\n", sink.URL)
}

// spansByName indexes the spans of one trace by name; each name must appear once.
func spansByName(t *testing.T, spans []otlpsink.Span) map[string]otlpsink.Span {
	t.Helper()
	m := map[string]otlpsink.Span{}
	for _, s := range spans {
		if _, dup := m[s.Name]; dup {
			t.Errorf("span %s twice in one trace: %+v", s.Name, spans)
		}
		m[s.Name] = s
	}
	return m
}

// waitSpans waits until the sink holds spans named names in trace and returns that trace's.
func waitSpans(t *testing.T, sink *otlpsink.Sink, trace string, names ...string) map[string]otlpsink.Span {
	t.Helper()
	var spans []otlpsink.Span
	waitFor(t, fmt.Sprintf("spans %v of trace %s", names, trace), 60*time.Second, func() bool {
		spans = sink.Trace(trace)
		have := map[string]bool{}
		for _, s := range spans {
			have[s.Name] = true
		}
		for _, n := range names {
			if !have[n] {
				return false
			}
		}
		return true
	})
	return spansByName(t, spans)
}

// TestTracingExport: an agent with a tracing block exports, with the real OpenTelemetry
// exporter, the phases of an invocation to an OTLP/HTTP receiver: in the caller's trace, the
// receive span a child of the caller's span and the others of it, with their attributes; a
// warm call after a freeze has its thaw; a function error is marked.
func TestTracingExport(t *testing.T) {
	needRoot(t)
	sink := otlpsink.Start(t)
	a := startAgent(t, agentOptions{node: "tracer", top: tracingHCL(sink)})
	applyHCL(t, a, fnHCL("tr", "10s", "128", `freeze_delay = "0s"`))
	invokePath := "/2015-03-31/functions/tr/invocations"

	status, h, body := traceCall(t, a, "POST", invokePath, `{"mode":"trace"}`, [][2]string{{"traceparent", callerTP}})
	if got := functionTrace(t, status, body); got != callerTPX {
		t.Fatalf("the function saw %q", got)
	}
	m := waitSpans(t, sink, "4bf92f3577b34da6a3ce929d0e0e4736", "receive", "admit", "runtime", "freeze")
	if m["receive"].ParentID != "00f067aa0ba902b7" {
		t.Errorf("receive's parent %q, want the caller's span 00f067aa0ba902b7", m["receive"].ParentID)
	}
	for _, child := range []string{"admit", "runtime", "freeze"} {
		if m[child].ParentID != m["receive"].SpanID {
			t.Errorf("%s's parent %q, want receive %q", child, m[child].ParentID, m["receive"].SpanID)
		}
	}
	rt := m["runtime"]
	want := map[string]string{"faas.name": "tr", "faas.version": "$LATEST", "faas.invocation_id": h.Get("X-Amzn-RequestId"),
		"faas.coldstart": "true", "lambdagw.node": "tracer"}
	for k, v := range want {
		if rt.Attrs[k] != v {
			t.Errorf("runtime span %s = %q, want %q (%+v)", k, rt.Attrs[k], v, rt.Attrs)
		}
	}
	if rt.Resource["service.name"] != "lambdagw-it" || rt.Resource["service.instance.id"] != "tracer" {
		t.Errorf("resource %+v", rt.Resource)
	}
	if m["receive"].Attrs["faas.invocation_id"] != h.Get("X-Amzn-RequestId") || rt.StatusError {
		t.Errorf("receive %+v runtime %+v", m["receive"], rt)
	}

	// Warm, after the freeze: thaw, runtime (not cold), freeze.
	const tp2 = "00-11111111111111111111111111111111-2222222222222222-01"
	status, _, body = traceCall(t, a, "POST", invokePath, `{"mode":"trace"}`, [][2]string{{"traceparent", tp2}})
	functionTrace(t, status, body)
	m = waitSpans(t, sink, "11111111111111111111111111111111", "receive", "admit", "thaw", "runtime", "freeze")
	if m["thaw"].ParentID != m["receive"].SpanID || m["runtime"].Attrs["faas.coldstart"] != "false" {
		t.Errorf("warm call: thaw %+v runtime %+v", m["thaw"], m["runtime"])
	}

	// A function error: the runtime span and the receive span say so.
	const tp3 = "00-33333333333333333333333333333333-4444444444444444-01"
	traceCall(t, a, "POST", invokePath, `{"mode":"error"}`, [][2]string{{"traceparent", tp3}})
	m = waitSpans(t, sink, "33333333333333333333333333333333", "receive", "runtime")
	if !m["runtime"].StatusError || m["runtime"].Attrs["error.type"] == "" || m["receive"].Attrs["error.type"] != "Unhandled" {
		t.Errorf("a function error: runtime %+v receive %+v", m["runtime"], m["receive"])
	}
}

// TestTracingForwarded: on a 2-node cluster a call forwarded to the peer with the warm
// environment has spans from both nodes in the caller's trace: the peer's runtime span a child
// of the forwarding node's forward span.
func TestTracingForwarded(t *testing.T) {
	needRoot(t)
	sink := otlpsink.Start(t)
	nodes := startClusterWith(t, "tf", 2, agentOptions{top: tracingHCL(sink)})
	a, b := nodes[0], nodes[1]
	applyHCL(t, a, fnHCL("tr", "10s", "128", `freeze_delay = "100ms"`))
	invokePath := "/2015-03-31/functions/tr/invocations"
	// Warm on a, then call b: b has none idle and forwards to a.
	status, _, body := traceCall(t, a, "POST", invokePath, `{"mode":"trace"}`, nil)
	functionTrace(t, status, body)
	time.Sleep(4 * gatewayReportInterval)
	const tp = "00-55555555555555555555555555555555-6666666666666666-01"
	status, _, body = traceCall(t, b, "POST", invokePath, `{"mode":"trace"}`, [][2]string{{"traceparent", tp}})
	if got := functionTrace(t, status, body); got != "Root=1-55555555-555555555555555555555555;Parent=6666666666666666;Sampled=1" {
		t.Errorf("the forwarded call's function saw %q", got)
	}
	m := waitSpans(t, sink, "55555555555555555555555555555555", "receive", "admit", "forward", "runtime")
	for name, node := range map[string]string{"receive": b.name, "admit": b.name, "forward": b.name, "runtime": a.name} {
		if got := m[name].Attrs["lambdagw.node"]; got != node {
			t.Errorf("span %s ran on %q, want %s", name, got, node)
		}
	}
	if m["forward"].ParentID != m["receive"].SpanID || m["runtime"].ParentID != m["forward"].SpanID {
		t.Errorf("links: receive %s, forward %s (parent %s), runtime parent %s", m["receive"].SpanID, m["forward"].SpanID,
			m["forward"].ParentID, m["runtime"].ParentID)
	}
}
