package tracing

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/testfixtures/otlpsink"
)

func byName(spans []otlpsink.Span) map[string]otlpsink.Span {
	m := map[string]otlpsink.Span{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestExport: the real SDK exporter posts the phases of an invocation to an OTLP/HTTP
// receiver, in the caller's trace (its traceparent), as children of the caller's span and of
// each other, with their attributes; a peer's spans continue the forward span's traceparent.
func TestExport(t *testing.T) {
	sink := otlpsink.Start(t)
	tr, err := New(Config{Endpoint: sink.URL, SampleRatio: 0, ServiceName: "lambdagw", NodeName: "n1", Headers: map[string]string{"Api-Key": "k1"}})
	if err != nil {
		t.Fatal(err)
	}
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	trace, _ := invoke.TraceparentToXRay(caller)
	info := invoke.SpanInfo{TraceID: trace, FromCaller: true, RequestID: "r1", Function: "hello", Version: "3"}
	ctx, recv := tr.Start(context.Background(), invoke.PhaseReceive, info)
	_, admit := tr.Start(ctx, invoke.PhaseAdmit, info)
	admit.End("")
	fctx, fwd := tr.Start(ctx, invoke.PhaseForward, info)
	_ = fctx
	tp := fwd.Traceparent()
	if _, ok := invoke.TraceparentToXRay(tp); !ok || !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Fatalf("forward traceparent %q", tp)
	}
	// The peer: its spans continue the forward span.
	peer := tr.Remote(context.Background(), tp)
	start := time.Now()
	info.Cold = true
	tr.Record(peer, invoke.PhaseRuntime, info, start, start.Add(time.Millisecond), "Runtime.ExitError")
	fwd.End("")
	recv.End("")
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := sink.Trace("4bf92f3577b34da6a3ce929d0e0e4736")
	if len(spans) != 4 {
		t.Fatalf("%d spans in the caller's trace, want 4: %+v", len(spans), sink.Spans())
	}
	m := byName(spans)
	if m["receive"].ParentID != "00f067aa0ba902b7" {
		t.Errorf("receive's parent %q, want the caller's span", m["receive"].ParentID)
	}
	for _, child := range []string{"admit", "forward"} {
		if m[child].ParentID != m["receive"].SpanID {
			t.Errorf("%s's parent %q, want receive %q", child, m[child].ParentID, m["receive"].SpanID)
		}
	}
	if m["runtime"].ParentID != m["forward"].SpanID {
		t.Errorf("the peer's runtime span's parent %q, want forward %q", m["runtime"].ParentID, m["forward"].SpanID)
	}
	rt := m["runtime"]
	if rt.Attrs["faas.name"] != "hello" || rt.Attrs["faas.version"] != "3" || rt.Attrs["faas.invocation_id"] != "r1" ||
		rt.Attrs["faas.coldstart"] != "true" || rt.Attrs["error.type"] != "Runtime.ExitError" || !rt.StatusError ||
		rt.Attrs["lambdagw.node"] != "n1" || rt.Resource["service.name"] != "lambdagw" || rt.Resource["service.instance.id"] != "n1" {
		t.Errorf("runtime span: %+v", rt)
	}
	if rt.EndNanos-rt.StartNanos != uint64(time.Millisecond) {
		t.Errorf("runtime span lasted %d ns, want the 1 ms recorded", rt.EndNanos-rt.StartNanos)
	}
	if m["admit"].StatusError || m["receive"].Kind != 2 || m["forward"].Kind != 3 {
		t.Errorf("admit %+v receive kind %d forward kind %d", m["admit"], m["receive"].Kind, m["forward"].Kind)
	}
	if h := sink.Headers(); len(h) == 0 || h[0].Get("Api-Key") != "k1" {
		t.Errorf("export headers %v, want Api-Key", h)
	}
}

// TestRootAndSampling: a trace made by the gateway (no caller's span) is a root span with the
// trace header's id; a ratio of 0 records no trace the caller did not sample, and a caller's
// unsampled trace is not recorded either.
func TestRootAndSampling(t *testing.T) {
	sink := otlpsink.Start(t)
	tr, err := New(Config{Endpoint: sink.URL + "/", SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	made := invoke.NewTraceID()
	tc, _ := invoke.ParseTraceContext(made)
	_, sp := tr.Start(context.Background(), invoke.PhaseReceive, invoke.SpanInfo{TraceID: made, RequestID: "r2"})
	sp.End("")
	_ = tr.Shutdown(context.Background())
	spans := sink.Spans()
	if len(spans) != 1 || spans[0].ParentID != "" || spans[0].TraceID != hex.EncodeToString(tc.TraceID[:]) {
		t.Fatalf("a gateway-made trace: %+v, want one root span in trace %x", spans, tc.TraceID)
	}

	sink2 := otlpsink.Start(t)
	tr2, _ := New(Config{Endpoint: sink2.URL, SampleRatio: 0})
	for _, trace := range []string{invoke.NewTraceID(), "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"} {
		_, sp := tr2.Start(context.Background(), invoke.PhaseReceive, invoke.SpanInfo{TraceID: trace, FromCaller: true})
		sp.End("")
	}
	_ = tr2.Shutdown(context.Background())
	if got := sink2.Spans(); len(got) != 0 {
		t.Fatalf("sample_ratio 0 recorded %+v", got)
	}
}

// TestAttributesCapped: what a caller puts in a span (a qualifier of 10 KB) is cut at
// maxAttributeBytes, so callers who ask for their traces to be recorded cannot fill the batch
// queue with their data.
func TestAttributesCapped(t *testing.T) {
	sink := otlpsink.Start(t)
	tr, err := New(Config{Endpoint: sink.URL, SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, sp := tr.Start(context.Background(), invoke.PhaseReceive, invoke.SpanInfo{TraceID: invoke.NewTraceID(), RequestID: "r3",
		Function: "f", Version: strings.Repeat("v", 10<<10)})
	sp.End("")
	_ = tr.Shutdown(context.Background())
	spans := sink.Spans()
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want 1", len(spans))
	}
	if got := len(spans[0].Attrs["faas.version"]); got != maxAttributeBytes {
		t.Fatalf("a 10 KB qualifier exported as %d bytes, want %d", got, maxAttributeBytes)
	}
}

// TestNewRefusesBadEndpoints: only http(s) URLs.
func TestNewRefusesBadEndpoints(t *testing.T) {
	for _, e := range []string{"", "collector:4318", "ftp://c:21", "http://"} {
		if _, err := New(Config{Endpoint: e}); err == nil {
			t.Errorf("%q accepted", e)
		}
	}
}
