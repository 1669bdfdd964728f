package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

const region = "arn:aws:lambda:us-east-1:000000000000:function:"

// families gathers r into a map by name.
func families(t *testing.T, r *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value finds the sample of family name whose labels include want; ok false when none.
func value(t *testing.T, r *Registry, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mf := families(t, r)[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// series counts the samples of family name.
func series(t *testing.T, r *Registry, name string) int {
	mf := families(t, r)[name]
	if mf == nil {
		return 0
	}
	return len(mf.Metric)
}

func TestSeriesCount(t *testing.T) {
	r := New()
	fq := map[string]string{"function": "hello", "qualifier": "$LATEST"}
	s := r.Function("hello", region+"hello")
	if r.Function("hello", region+"hello") != s {
		t.Fatal("the same ARN gave other series")
	}
	s.Begin()
	if v, _ := value(t, r, "lambdagw_concurrent_executions", fq); v != 1 {
		t.Fatalf("concurrent executions while running = %v, want 1", v)
	}
	s.End(3*time.Millisecond, 200*time.Millisecond, "")
	s.Begin()
	s.End(time.Millisecond, 0, "Runtime.ExitError")
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lambdagw_invocations_total", fq, 2},
		{"lambdagw_cold_starts_total", fq, 1},
		{"lambdagw_concurrent_executions", fq, 0},
		{"lambdagw_invocation_duration_seconds", fq, 2},
		{"lambdagw_init_duration_seconds", fq, 1},
		{"lambdagw_invocation_errors_total", map[string]string{"function": "hello", "error_type": "Runtime.ExitError"}, 1},
	}
	for _, c := range checks {
		if v, ok := value(t, r, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	// An alias is its own qualifier.
	r.Function("hello", region+"hello:live").End(time.Millisecond, 0, "")
	if v, _ := value(t, r, "lambdagw_invocations_total", map[string]string{"function": "hello", "qualifier": "live"}); v != 1 {
		t.Errorf("invocations through the alias = %v, want 1", v)
	}
	r.Throttled("hello", region+"hello", ThrottleReserved)
	r.Throttled("hello", region+"hello", "made-up reason")
	if v, _ := value(t, r, "lambdagw_throttles_total", map[string]string{"function": "hello", "reason": ThrottleReserved}); v != 1 {
		t.Errorf("reserved throttles = %v, want 1", v)
	}
	if v, _ := value(t, r, "lambdagw_throttles_total", map[string]string{"function": "hello", "reason": ThrottleCapacity}); v != 1 {
		t.Errorf("an unknown reason counts as %s: got %v, want 1", ThrottleCapacity, v)
	}
	r.Thawed(time.Millisecond)
	r.Frozen(2 * time.Millisecond)
	if v, _ := value(t, r, "lambdagw_environment_thaw_seconds", nil); v != 1 {
		t.Errorf("thaws observed = %v, want 1", v)
	}
}

func TestQualifier(t *testing.T) {
	for arn, want := range map[string]string{
		region + "f":          "$LATEST",
		region + "f:$LATEST":  "$LATEST",
		region + "f:3":        "3",
		region + "f:live":     "live",
		"f":                   "$LATEST",
		region + "f:":         "$LATEST",
		region + "other:live": "$LATEST", // not this function's ARN
		region + "f:a:b":      "a:b",
	} {
		if got := Qualifier("f", arn); got != want {
			t.Errorf("Qualifier(f, %q) = %q, want %q", arn, got, want)
		}
	}
}

// A flood of distinct qualifiers and error types (a hostile runtime names a new one with each
// error) makes a bounded number of series.
func TestLabelsBounded(t *testing.T) {
	r := New()
	for i := range 1000 {
		s := r.Function("f", fmt.Sprintf("%sf:alias%d", region, i))
		s.Begin()
		s.End(time.Millisecond, 0, fmt.Sprintf("Error%d", i))
		s.Begin()
		s.End(time.Millisecond, 0, strings.Repeat("x", 100)+fmt.Sprint(i)) // too long
		s.Begin()
		s.End(time.Millisecond, 0, fmt.Sprintf("bad type {%d}\n", i)) // not plain
	}
	cached := 0
	r.series.Range(func(any, any) bool { cached++; return true })
	if cached > maxARNs {
		t.Errorf("%d ARNs cached for one function, more than %d", cached, maxARNs)
	}
	if n := series(t, r, "lambdagw_invocations_total"); n != MaxQualifiers+1 {
		t.Errorf("%d invocation series, want %d qualifiers and %q", n, MaxQualifiers, OtherLabel)
	}
	if v, _ := value(t, r, "lambdagw_invocations_total", map[string]string{"qualifier": OtherLabel}); v != 3*(1000-MaxQualifiers) {
		t.Errorf("calls counted under %q = %v, want %d", OtherLabel, v, 3*(1000-MaxQualifiers))
	}
	types := map[string]bool{}
	for _, m := range families(t, r)["lambdagw_invocation_errors_total"].Metric {
		for _, l := range m.Label {
			if l.GetName() == "error_type" {
				types[l.GetValue()] = true
			}
		}
	}
	if len(types) != MaxErrorTypes+1 || !types[OtherLabel] {
		t.Errorf("%d error types labelled (%v), want %d and %q", len(types), len(types) > 0, MaxErrorTypes, OtherLabel)
	}
	for ty := range types {
		if !plainErrorType(ty) && ty != OtherLabel {
			t.Errorf("error type %q is a label value", ty)
		}
	}
	// The platform's own types are always kept.
	r.Function("f", region+"f").End(time.Millisecond, 0, "Sandbox.Timedout")
	if v, _ := value(t, r, "lambdagw_invocation_errors_total", map[string]string{"error_type": "Sandbox.Timedout"}); v != 1 {
		t.Errorf("Sandbox.Timedout past the bound = %v, want 1", v)
	}
}

func TestForget(t *testing.T) {
	r := New()
	r.Function("gone", region+"gone").End(time.Millisecond, 0, "Boom")
	r.Throttled("gone", region+"gone:live", ThrottleReserved)
	r.Function("kept", region+"kept").End(time.Millisecond, 0, "")
	running := r.Function("gone", region+"gone")
	running.Begin()
	r.Keep([]string{"kept"})
	// An invocation that was running when the function went ends with an error type never seen
	// before: it makes no series of the deleted function again.
	running.End(time.Millisecond, 0, "LateError")
	for name, mf := range families(t, r) {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "function" && l.GetValue() == "gone" {
					t.Errorf("%s still has a series of the deleted function", name)
				}
			}
		}
	}
	if _, ok := value(t, r, "lambdagw_invocations_total", map[string]string{"function": "kept"}); !ok {
		t.Error("the kept function's series went too")
	}
	if h := r.History("gone", time.Now(), 5); h.Minutes[4].Invocations != 0 {
		t.Error("the deleted function's history is still there")
	}
	// A function made again under the name starts from nothing.
	r.Function("gone", region+"gone").End(time.Millisecond, 0, "")
	if v, _ := value(t, r, "lambdagw_invocations_total", map[string]string{"function": "gone"}); v != 1 {
		t.Errorf("invocations of the new function = %v, want 1", v)
	}
}

func TestNilRegistry(t *testing.T) {
	var r *Registry
	s := r.Function("f", region+"f")
	s.Begin()
	s.End(time.Millisecond, time.Millisecond, "X")
	s.Throttled(ThrottleReserved)
	s.StreamBytes(10)
	r.Thawed(time.Millisecond)
	r.Keep(nil)
	if h := r.History("f", time.Now(), 3); len(h.Minutes) != 3 {
		t.Errorf("history of a nil registry has %d minutes, want 3", len(h.Minutes))
	}
}

func TestNodeFigures(t *testing.T) {
	r := New()
	if err := r.SetNode(Node{
		Environments: func() map[string]int { return map[string]int{"frozen": 2, "invoking": 1} },
		Memory:       func() (uint64, uint64) { return 256 << 20, 40 << 20 },
		LogLines:     func() (int64, int64) { return 7, 1 },
		Plugins:      func() []PluginState { return []PluginState{{Name: "queue", State: "failed", Restarts: 3}} },
		Async:        func() []AsyncCount { return []AsyncCount{{Function: "f", Outcome: "expired", N: 4}} },
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lambdagw_environments", map[string]string{"state": "frozen"}, 2},
		{"lambdagw_environments_memory_limit_bytes", nil, 256 << 20},
		{"lambdagw_function_log_lines_dropped_total", nil, 7},
		{"lambdagw_plugin_up", map[string]string{"plugin": "queue"}, 0},
		{"lambdagw_plugin_state", map[string]string{"plugin": "queue", "state": "failed"}, 1},
		{"lambdagw_plugin_restarts_total", map[string]string{"plugin": "queue"}, 3},
		{"lambdagw_async_events_total", map[string]string{"function": "f", "outcome": "expired"}, 4},
	} {
		if v, ok := value(t, r, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
}

// The handler answers OpenMetrics to a scraper that asks for it, the text format otherwise.
func TestHandlerNegotiates(t *testing.T) {
	r := New()
	r.Function("f", region+"f").End(time.Millisecond, 0, "")
	for accept, want := range map[string]string{
		"": "text/plain; version=0.0.4",
		"application/openmetrics-text; version=1.0.0": "application/openmetrics-text",
	} {
		req := httptest.NewRequest("GET", "/v1/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		r.Handler().ServeHTTP(w, req)
		body, _ := io.ReadAll(w.Body)
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("Accept %q: Content-Type %q, want %q", accept, ct, want)
		}
		if !strings.Contains(string(body), `lambdagw_invocations_total{function="f",qualifier="$LATEST"} 1`) {
			t.Errorf("Accept %q: no invocation count in\n%s", accept, body)
		}
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"commitTime": "commit_time", "appendEntries": "append_entries", "raft": "raft",
		"getLog": "get_log", "lastContact": "last_contact", "FSM": "fsm", "already_snake": "already_snake"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
	if got := snakeKey([]string{"raft", "state", "leader"}, "total"); strings.Join(got, ".") != "raft.state.leader.total" {
		t.Errorf("counter key %v", got)
	}
}

// The warm path of a counted invocation allocates nothing once its series exist.
func TestWarmPathAllocs(t *testing.T) {
	r := New()
	arn := region + "f:live"
	r.Function("f", arn).End(time.Millisecond, 0, "")
	if n := testing.AllocsPerRun(1000, func() {
		s := r.Function("f", arn)
		s.Begin()
		s.End(time.Millisecond, 0, "")
	}); n != 0 {
		t.Errorf("%v allocations per counted invocation, want 0", n)
	}
}

func BenchmarkWarmPath(b *testing.B) {
	r := New()
	arn := region + "f:live"
	b.ReportAllocs()
	for b.Loop() {
		s := r.Function("f", arn)
		s.Begin()
		s.End(time.Millisecond, 0, "")
	}
}

// Calls, throttles, scrapes, history reads and deletions at once (run with -race).
func TestConcurrent(t *testing.T) {
	r := New()
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				fn := fmt.Sprintf("f%d", i%3)
				s := r.Function(fn, fmt.Sprintf("%s%s:q%d", region, fn, (i+g)%40))
				s.Begin()
				s.End(time.Duration(i)*time.Microsecond, 0, fmt.Sprintf("E%d", i%20))
				r.Throttled(fn, region+fn, ThrottleConcurrency)
				if i%50 == 0 {
					r.Keep([]string{"f0", "f1"})
					_, _ = r.Gatherer().Gather()
					r.History(fn, time.Now(), 3)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
