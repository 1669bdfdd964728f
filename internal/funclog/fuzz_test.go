package funclog

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzParseParams: any query string parses to a query or a ParamError, never a panic; a query
// that parses survives its trip to a peer, and its filter runs on any line.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"", "lines=50&follow=true&format=json", "since=15m&until=2026-01-02T03:04:05Z",
		"filter=a*b*c&request_id=abc", "since=9999999999h", "filter=" + strings.Repeat("*", 300), "lines=1&lines=2"} {
		f.Add(s, "a line with a and b and c")
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, query, line string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p, err := ParseParams(v, now)
		if err != nil {
			if _, ok := err.(*ParamError); !ok {
				t.Fatalf("%T: %v", err, err)
			}
			return
		}
		if p.Limit < 0 || p.Limit > MaxLines {
			t.Fatalf("limit %d", p.Limit)
		}
		q, err := ParseParams(p.Values(), now.Add(time.Hour))
		if err != nil {
			t.Fatalf("the peer refused %q: %v", p.Values().Encode(), err)
		}
		if !q.Since.Equal(p.Since) || !q.Until.Equal(p.Until) || q.RequestID != p.RequestID || q.Filter.Match(line) != p.Filter.Match(line) {
			t.Fatalf("round trip changed the query: %+v vs %+v", p, q)
		}
	})
}

// FuzzParseRecord: any stored line parses or is refused; a parsed record's entry keeps its
// request id and never takes a platform type unless it is the gateway's.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"2026-01-02T03:04:05.123456789Z p abc\tSTART RequestId: abc Version: $LATEST",
		"2026-01-02T03:04:05Z f -\thello",
		"2026-01-02T03:04:05Z f abc\t{\"type\":\"platform.report\",\"level\":\"INFO\"}",
		"2026-01-02T03:04:05Z\tREPORT RequestId: abc\tDuration: 1.00 ms",
		"2026-01-02T03:04:05Z x y z\tbad", "no tab", "\t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rec string) {
		l, ok := Parse(rec)
		if !ok {
			return
		}
		e := l.Entry("n1", "fn")
		if e.RequestID != l.RequestID || e.Message != l.Message {
			t.Fatalf("entry %+v of %+v", e, l)
		}
		if l.Kind == KindFunction && e.Type != KindFunction {
			t.Fatalf("a function's line became %q", e.Type)
		}
		if strings.ContainsAny(l.RequestID, " \t") {
			t.Fatalf("request id %q", l.RequestID)
		}
	})
}
