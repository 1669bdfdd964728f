package invoke

import (
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

const (
	goodXRay = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	goodTP   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

func TestTraceFromHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want string // "" means a fresh one
	}{
		{"xray kept", http.Header{HeaderXRay: {goodXRay}}, goodXRay},
		{"xray with lineage kept", http.Header{HeaderXRay: {goodXRay + ";Lineage=a87bd80c:1|68fd508a:5"}}, goodXRay + ";Lineage=a87bd80c:1|68fd508a:5"},
		{"xray root only", http.Header{HeaderXRay: {"Root=1-5759e988-bd862e3fe1be46a994272793"}}, "Root=1-5759e988-bd862e3fe1be46a994272793"},
		{"traceparent converted", http.Header{HeaderTraceparent: {goodTP}},
			"Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"},
		{"traceparent unsampled", http.Header{HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}},
			"Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0"},
		{"traceparent other flags, sampled", http.Header{HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0b"}},
			"Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"},
		{"traceparent other flags, unsampled", http.Header{HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fa"}},
			"Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0"},
		{"xray wins over traceparent", http.Header{HeaderXRay: {goodXRay}, HeaderTraceparent: {goodTP}}, goodXRay},
		{"bad xray falls back to traceparent", http.Header{HeaderXRay: {"Root=nope"}, HeaderTraceparent: {goodTP}},
			"Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"},
		{"none", http.Header{}, ""},
		{"CR LF injection", http.Header{HeaderXRay: {goodXRay + "\r\nX-Evil: 1"}}, ""},
		{"LF in value", http.Header{HeaderXRay: {"Root=1-5759e988-bd862e3fe1be46a994272793;Foo=a\nb"}}, ""},
		{"oversized", http.Header{HeaderXRay: {goodXRay + ";Foo=" + strings.Repeat("a", MaxTraceHeader)}}, ""},
		{"bad hex root", http.Header{HeaderXRay: {"Root=1-5759e98g-bd862e3fe1be46a994272793"}}, ""},
		{"upper-case hex", http.Header{HeaderXRay: {"Root=1-5759E988-bd862e3fe1be46a994272793"}}, ""},
		{"root version 2", http.Header{HeaderXRay: {"Root=2-5759e988-bd862e3fe1be46a994272793"}}, ""},
		{"short root", http.Header{HeaderXRay: {"Root=1-5759e988-bd862e3fe1be46a99427279"}}, ""},
		{"zero root", http.Header{HeaderXRay: {"Root=1-00000000-000000000000000000000000"}}, ""},
		{"zero parent", http.Header{HeaderXRay: {"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000"}}, ""},
		{"bad sampled", http.Header{HeaderXRay: {"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=yes"}}, ""},
		{"no root", http.Header{HeaderXRay: {"Parent=53995c3f42cd8ad8;Sampled=1"}}, ""},
		{"duplicated root field", http.Header{HeaderXRay: {goodXRay + ";Root=1-5759e988-bd862e3fe1be46a994272794"}}, ""},
		{"duplicated other field", http.Header{HeaderXRay: {goodXRay + ";Foo=a;Foo=b"}}, ""},
		{"quote in value", http.Header{HeaderXRay: {goodXRay + `;Foo="a`}}, ""},
		{"comma joined", http.Header{HeaderXRay: {goodXRay + "," + goodXRay}}, ""},
		{"duplicated xray header", http.Header{HeaderXRay: {goodXRay, goodXRay}}, ""},
		{"duplicated traceparent header", http.Header{HeaderTraceparent: {goodTP, goodTP}}, ""},
		{"traceparent zero trace id", http.Header{HeaderTraceparent: {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}, ""},
		{"traceparent zero span id", http.Header{HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}}, ""},
		{"traceparent version ff", http.Header{HeaderTraceparent: {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, ""},
		{"traceparent version 01", http.Header{HeaderTraceparent: {"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, ""},
		{"traceparent upper case", http.Header{HeaderTraceparent: {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}}, ""},
		{"traceparent bad flags", http.Header{HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"}}, ""},
		{"traceparent trailing junk", http.Header{HeaderTraceparent: {goodTP + "-extra"}}, ""},
		{"traceparent CR LF", http.Header{HeaderTraceparent: {goodTP[:40] + "\r\n" + goodTP[42:]}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TraceFromHeaders(tc.h)
			if tc.want != "" {
				if got != tc.want {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				return
			}
			// A fresh one: well formed, of the shape NewTraceID makes, nothing of the input.
			if !ValidXRay(got) || len(got) != len(NewTraceID()) || !strings.HasSuffix(got, ";Sampled=0") {
				t.Fatalf("got %q, want a fresh trace header", got)
			}
			for _, v := range tc.h {
				if got == v[0] {
					t.Fatalf("the malformed header was passed through: %q", got)
				}
			}
		})
	}
}

// The trace header a function gets when the caller sent none: X-Ray's form, each one new.
func TestNewTraceID(t *testing.T) {
	form := regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := NewTraceID()
		if !form.MatchString(id) || !ValidXRay(id) {
			t.Fatalf("trace id %q is not in X-Ray's form", id)
		}
		if seen[id] {
			t.Fatalf("trace id %q made twice", id)
		}
		seen[id] = true
	}
}

func TestParseTraceContext(t *testing.T) {
	tc, ok := ParseTraceContext(goodXRay)
	if !ok {
		t.Fatal("a valid header did not parse")
	}
	if got := hex.EncodeToString(tc.TraceID[:]); got != "5759e988bd862e3fe1be46a994272793" {
		t.Fatalf("trace id %s", got)
	}
	if got := hex.EncodeToString(tc.ParentID[:]); got != "53995c3f42cd8ad8" || !tc.Sampled {
		t.Fatalf("parent %s sampled %v", got, tc.Sampled)
	}
	// The W3C ids survive the trip through the X-Ray form.
	x, _ := TraceparentToXRay(goodTP)
	tc, _ = ParseTraceContext(x)
	if hex.EncodeToString(tc.TraceID[:]) != goodTP[3:35] || hex.EncodeToString(tc.ParentID[:]) != goodTP[36:52] {
		t.Fatalf("traceparent ids lost: %x %x", tc.TraceID, tc.ParentID)
	}
	if _, ok := ParseTraceContext("Root=1-5759e988"); ok {
		t.Fatal("a malformed header parsed")
	}
}

// FuzzTraceHeaders: whatever a caller sends, the trace header kept is valid, bounded, free of
// control characters, and parses to ids.
func FuzzTraceHeaders(f *testing.F) {
	f.Add(goodXRay, goodTP)
	f.Add("Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=a87bd80c:1|68fd508a:5", "")
	f.Add("Root=1-5759e988-bd862e3fe1be46a994272793\r\nX: y", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	f.Fuzz(func(t *testing.T, xray, tp string) {
		h := http.Header{}
		if xray != "" {
			h[HeaderXRay] = []string{xray}
		}
		if tp != "" {
			h[HeaderTraceparent] = []string{tp}
		}
		got := TraceFromHeaders(h)
		if !ValidXRay(got) || len(got) > MaxTraceHeader || strings.ContainsAny(got, "\r\n\x00,\"") {
			t.Fatalf("kept %q", got)
		}
		if _, ok := ParseTraceContext(got); !ok {
			t.Fatalf("kept %q, which does not parse", got)
		}
		if x, ok := TraceparentToXRay(tp); ok && !ValidXRay(x) {
			t.Fatalf("traceparent %q converted to invalid %q", tp, x)
		}
	})
}

// TestTraceFromHeadersAllocs: the trace header is read on every invocation: a caller's valid
// X-Amzn-Trace-Id is kept as it came (no allocation), a traceparent or a new header costs the
// one string.
func TestTraceFromHeadersAllocs(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want float64
	}{
		{http.Header{HeaderXRay: {goodXRay}}, 0},
		{http.Header{HeaderTraceparent: {goodTP}}, 1},
		{http.Header{}, 1},
	} {
		if got := testing.AllocsPerRun(100, func() { _ = TraceFromHeaders(tc.h) }); got != tc.want {
			t.Errorf("%v: %v allocations, want %v", tc.h, got, tc.want)
		}
	}
}
