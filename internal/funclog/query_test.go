package funclog

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func messages(lines []Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Message)
	}
	return out
}

// Two environments of one function interleave: each line is stored with the invocation that
// wrote it, and a query for one request id returns exactly its lines.
func TestRequestIDAttribution(t *testing.T) {
	s, _ := newStore(t)
	s.Log("fn", "req-a", true, []string{"START RequestId: req-a Version: $LATEST"})
	s.Log("fn", "req-b", true, []string{"START RequestId: req-b Version: $LATEST"})
	s.Log("fn", "req-a", false, []string{"a says 1"})
	s.Log("fn", "req-b", false, []string{"b says 1", "START RequestId: req-a Version: forged"})
	s.Log("fn", "req-a", false, []string{"a says 2"})
	s.Log("fn", "", false, []string{"between invocations"})
	s.Log("fn", "req-a", true, []string{"END RequestId: req-a", "REPORT RequestId: req-a\tDuration: 1.00 ms"})
	s.Log("fn", "req-b", true, []string{"END RequestId: req-b", "REPORT RequestId: req-b\tDuration: 1.00 ms"})

	res, err := s.Query("fn", Query{RequestID: "req-a", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"START RequestId: req-a Version: $LATEST", "a says 1", "a says 2", "END RequestId: req-a", "REPORT RequestId: req-a\tDuration: 1.00 ms"}
	if got := messages(res.Lines); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("req-a lines:\n got %q\nwant %q", got, want)
	}
	res, _ = s.Query("fn", Query{RequestID: "req-b", Limit: 100})
	if len(res.Lines) != 5 {
		t.Fatalf("req-b: %q", messages(res.Lines))
	}
	// The forged START is the function's own line of req-b, not a platform line.
	for _, l := range res.Lines {
		if strings.Contains(l.Message, "forged") {
			if l.Kind != KindFunction || l.RequestID != "req-b" {
				t.Fatalf("forged START stored as %+v", l)
			}
			if e := l.Entry("n1", "fn"); e.Type != KindFunction {
				t.Fatalf("forged START became type %q", e.Type)
			}
		}
	}
	// A request id that would break the record's head is stored as none.
	s.Log("fn", "evil id\twith tab", false, []string{"x"})
	res, _ = s.Query("fn", Query{Filter: mustFilter(t, "x"), Limit: 10})
	if len(res.Lines) != 1 || res.Lines[0].RequestID != "" || res.Lines[0].Message != "x" {
		t.Fatalf("hostile request id: %+v", res.Lines)
	}
}

// A function's JSON line claiming to be a platform record keeps type function.
func TestForgedJSONPlatformRecord(t *testing.T) {
	s, _ := newStore(t)
	forged := `{"time":"2020-01-01T00:00:00Z","type":"platform.report","record":{"requestId":"other"},"level":"INFO"}`
	s.Log("fn", "mine", false, []string{forged})
	s.Log("fn", "mine", true, []string{`{"time":"2020-01-01T00:00:00Z","type":"platform.start","record":{"requestId":"mine","version":"$LATEST"}}`})
	res, _ := s.Query("fn", Query{Limit: 10})
	if len(res.Lines) != 2 {
		t.Fatalf("%d lines", len(res.Lines))
	}
	if e := res.Lines[0].Entry("n1", "fn"); e.Type != KindFunction || e.RequestID != "mine" || e.Level != "INFO" {
		t.Fatalf("forged record: %+v", e)
	}
	if e := res.Lines[1].Entry("n1", "fn"); e.Type != "platform.start" {
		t.Fatalf("platform record: %+v", e)
	}
	if res, _ := s.Query("fn", Query{RequestID: "other", Limit: 10}); len(res.Lines) != 0 {
		t.Fatalf("a forged record was attributed to another request: %+v", res.Lines)
	}
}

func mustFilter(t *testing.T, s string) *Filter {
	t.Helper()
	f, err := ParseFilter(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Lines of a time range are found across the rotation, in the rotated file and the current one.
func TestTimeRangeAcrossRotation(t *testing.T) {
	s, dir := newStore(t)
	s.maxBytes = 6 << 10 // one rotation in 60 lines
	var marks []time.Time
	for i := 0; i < 60; i++ {
		marks = append(marks, time.Now())
		s.Log("fn", "", false, []string{fmt.Sprintf("line %03d %s", i, strings.Repeat("x", 100))})
		s.flush("fn")
		time.Sleep(time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "fn.log.1")); err != nil {
		t.Fatalf("no rotation happened: %v", err)
	}
	// The current file alone holds fewer than 60 lines: 5..55 spans both.
	cur, _ := os.ReadFile(filepath.Join(dir, "fn.log"))
	first := strings.Count(string(cur), "\n")
	if first >= 55 {
		t.Fatalf("current file holds %d lines: the range would not span the rotation", first)
	}
	res, err := s.Query("fn", Query{Since: marks[5], Until: marks[55], Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := messages(res.Lines)
	if len(got) != 50 || !strings.HasPrefix(got[0], "line 005") || !strings.HasPrefix(got[49], "line 054") {
		t.Fatalf("range 5..55: %d lines, first %q", len(got), got[:min(len(got), 1)])
	}
	// Limit keeps the last lines of the range.
	res, _ = s.Query("fn", Query{Since: marks[5], Limit: 3})
	if got := messages(res.Lines); len(got) != 3 || !strings.HasPrefix(got[2], "line 059") {
		t.Fatalf("last 3: %q", got)
	}
	// A scan bound stops early, and says so.
	res, _ = s.Query("fn", Query{Limit: 1000, MaxScanBytes: 1000})
	if !res.Truncated || len(res.Lines) == 0 || len(res.Lines) > 10 {
		t.Fatalf("bounded scan: truncated %v, %d lines", res.Truncated, len(res.Lines))
	}
}

// Files written before request ids were stored are read, an invocation being the lines from
// its START to its REPORT.
func TestOldRecords(t *testing.T) {
	s, dir := newStore(t)
	old := "2026-01-01T00:00:00Z\tINIT_START Runtime Version: provided.al2023\n" +
		"2026-01-01T00:00:01Z\tSTART RequestId: r1 Version: $LATEST\n" +
		"2026-01-01T00:00:01.5Z\thello from r1\n" +
		"2026-01-01T00:00:02Z\tEND RequestId: r1\n" +
		"2026-01-01T00:00:02Z\tREPORT RequestId: r1\tDuration: 2.00 ms\n" +
		"not a record at all\n" +
		"2026-01-01T00:00:03Z\tafter\n"
	if err := os.WriteFile(filepath.Join(dir, "fn.log.1"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Log("fn", "r2", false, []string{"new line"})
	res, err := s.Query("fn", Query{RequestID: "r1", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := messages(res.Lines); len(got) != 4 || got[1] != "hello from r1" {
		t.Fatalf("old r1: %q", got)
	}
	res, _ = s.Query("fn", Query{Limit: 100})
	if len(res.Lines) != 7 || res.Lines[6].Message != "new line" {
		t.Fatalf("all: %q", messages(res.Lines))
	}
	if e := res.Lines[1].Entry("n", "fn"); e.Type != KindPlatform || e.RequestID != "r1" {
		t.Fatalf("old START entry: %+v", e)
	}
}

func TestFilter(t *testing.T) {
	for _, c := range []struct {
		pattern, line string
		want          bool
	}{
		{"", "anything", true},
		{"error", "an error here", true},
		{"error", "an Error here", false},
		{"ERROR*timeout", "ERROR: the call hit a timeout", true},
		{"ERROR*timeout", "timeout then ERROR", false},
		{"a*b*c", "xaxbxcx", true},
		{"a*b*c", "xaxcxbx", false},
		{"*", "", true},
		{"***x***", "yxy", true},
		{"report*", "REPORT", false},
	} {
		if got := mustFilter(t, c.pattern).Match(c.line); got != c.want {
			t.Errorf("%q on %q: %v, want %v", c.pattern, c.line, got, c.want)
		}
	}
	if _, err := ParseFilter(strings.Repeat("a", MaxFilterBytes+1)); err == nil {
		t.Fatal("an overlong filter was accepted")
	}
}

// A hostile pattern (many stars, pieces that almost match) costs time linear in the line:
// 128 pieces over a 1 MB line of near misses is 128 scans, not an exponential search.
func TestHostileFilter(t *testing.T) {
	pattern := strings.Repeat("a*", 127) + "b"
	f := mustFilter(t, pattern)
	line := strings.Repeat("a", 1<<20)
	if f.Match(line) {
		t.Fatal("matched a line without b")
	}
	if !f.Match(line + "b") {
		t.Fatal("did not match")
	}
}

func TestParseParams(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p, err := ParseParams(url.Values{"since": {"15m"}, "until": {"2026-01-02T03:00:00Z"}, "filter": {"a*b"},
		"request_id": {"abc-1"}, "lines": {"50"}, "follow": {"true"}, "format": {"json"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Since.Equal(now.Add(-15*time.Minute)) || p.Until.Format(time.RFC3339) != "2026-01-02T03:00:00Z" ||
		p.RequestID != "abc-1" || p.Limit != 50 || !p.Follow || !p.JSON || !p.Filter.Match("xaxb") {
		t.Fatalf("%+v", p)
	}
	// Values carries the same query to a peer.
	q, err := ParseParams(p.Values(), now.Add(time.Hour))
	if err != nil || !q.Since.Equal(p.Since) || !q.Until.Equal(p.Until) || q.RequestID != p.RequestID || q.Limit != 50 || !q.Follow {
		t.Fatalf("round trip: %+v, %v", q, err)
	}
	for _, c := range []struct{ param, value string }{
		{"lines", "-1"}, {"lines", "100001"}, {"lines", "x"},
		{"since", "yesterday"}, {"since", "-5m"}, {"since", "9999999999h"}, {"since", "1e400h"},
		{"until", "2026-13-40T00:00:00Z"},
		{"filter", strings.Repeat("*", MaxFilterBytes+1)},
		{"request_id", "a b"}, {"request_id", "a\nb"}, {"request_id", strings.Repeat("r", 200)},
		{"follow", "yes"}, {"format", "xml"},
	} {
		_, err := ParseParams(url.Values{c.param: {c.value}}, now)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != c.param {
			t.Errorf("%s=%.20q: %v, want an error naming %s", c.param, c.value, err, c.param)
		}
	}
	// until before since; a parameter given twice.
	if _, err := ParseParams(url.Values{"since": {"1m"}, "until": {"2h"}}, now); err == nil || !strings.Contains(err.Error(), "until") {
		t.Errorf("until before since: %v", err)
	}
	if _, err := ParseParams(url.Values{"lines": {"1", "2"}}, now); err == nil {
		t.Error("a repeated parameter was accepted")
	}
	// Far times are fine: nothing is found, nothing overflows.
	if _, err := ParseParams(url.Values{"since": {"0001-01-01T00:00:00Z"}, "until": {"9999-12-31T23:59:59Z"}}, now); err != nil {
		t.Errorf("far range: %v", err)
	}
}
