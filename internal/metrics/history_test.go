package metrics

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// at is a registry whose clock the test sets.
func at(t0 *time.Time) *Registry {
	r := New()
	r.now = func() time.Time { return *t0 }
	return r
}

func TestHistoryMinutes(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 0, 30, 0, time.UTC)
	r := at(&now)
	s := r.Function("f", region+"f")
	s.End(2*time.Millisecond, 100*time.Millisecond, "") // cold
	s.End(4*time.Millisecond, 0, "Boom")
	r.Throttled("f", region+"f", ThrottleReserved)
	now = now.Add(2 * time.Minute) // 21:02: nothing in 21:01
	s.End(8*time.Millisecond, 0, "")

	h := r.History("f", now, 3)
	if h.End != now.Unix()/60 || len(h.Minutes) != 3 {
		t.Fatalf("history ends at %d with %d minutes, want %d and 3", h.End, len(h.Minutes), now.Unix()/60)
	}
	m0, m1, m2 := h.Minutes[0], h.Minutes[1], h.Minutes[2]
	if m0.Invocations != 2 || m0.Errors != 1 || m0.Throttles != 1 || m0.ColdStarts != 1 {
		t.Errorf("21:00 = %+v, want 2 invocations, 1 error, 1 throttle, 1 cold start", m0)
	}
	if m1.Invocations != 0 || m1.Buckets != nil {
		t.Errorf("21:01 = %+v, want empty", m1)
	}
	if m2.Invocations != 1 {
		t.Errorf("21:02 = %+v, want 1 invocation", m2)
	}
	// The ring reuses a minute's slot HistoryMinutes later: the old counts are gone.
	now = now.Add(HistoryMinutes * time.Minute)
	s.End(time.Millisecond, 0, "")
	if h := r.History("f", now, 1); h.Minutes[0].Invocations != 1 {
		t.Errorf("the reused slot has %d invocations, want 1", h.Minutes[0].Invocations)
	}
	if h := r.History("f", now.Add(-HistoryMinutes*time.Minute), 1); h.Minutes[0].Invocations != 0 {
		t.Errorf("a minute past the ring still reads %d invocations", h.Minutes[0].Invocations)
	}
}

// Two nodes' buckets add up, and the percentiles come from the sum.
func TestMergePercentiles(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	a, b := at(&now), at(&now)
	for range 99 {
		a.Function("f", region+"f").End(time.Millisecond, 0, "")
	}
	b.Function("f", region+"f").End(10*time.Second, 0, "Boom")
	end := now.Unix() / 60
	out := Merge("f", end, 2, []NodeHistory{a.History("f", now, 2), b.History("f", now, 2)})
	if len(out.Points) != 2 || out.StepSeconds != 60 || out.Function != "f" || out.NodesFailed == nil {
		t.Fatalf("merged = %+v", out)
	}
	p := out.Points[1]
	if !p.Time.Equal(now) || !out.Points[0].Time.Equal(now.Add(-time.Minute)) {
		t.Errorf("points at %v and %v, want %v and the minute before", out.Points[0].Time, p.Time, now)
	}
	if p.Invocations != 100 || p.Errors != 1 {
		t.Errorf("merged minute = %+v, want 100 invocations, 1 error", p)
	}
	// 99 calls of 1 ms and one of 10 s: the median is about 1 ms, the 99th percentile too
	// (the 99th call), and the 10 s call does not pull either.
	if p.DurationP50Ms < 0.7 || p.DurationP50Ms > 1.5 {
		t.Errorf("p50 = %v ms, want about 1", p.DurationP50Ms)
	}
	if p.DurationP99Ms < 0.7 || p.DurationP99Ms > 1.5 {
		t.Errorf("p99 = %v ms, want about 1", p.DurationP99Ms)
	}
	if out.Points[0].DurationP50Ms != 0 || out.Points[0].Invocations != 0 {
		t.Errorf("an empty minute = %+v, want zeros", out.Points[0])
	}
	js, _ := json.Marshal(out)
	for _, key := range []string{`"function":"f"`, `"step_seconds":60`, `"time":"2026-12-07T21:00:00Z"`, `"duration_p50_ms":`,
		`"duration_p99_ms":`, `"cold_starts":0`, `"nodes_failed":[]`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("JSON lacks %s: %s", key, js)
		}
	}
}

func TestPercentile(t *testing.T) {
	b := make([]uint64, NumBuckets)
	if Percentile(b, 0.5) != 0 {
		t.Error("the percentile of nothing is not 0")
	}
	b[bucketOf(50*time.Millisecond)] = 10
	p := Percentile(b, 0.5)
	i := bucketOf(50 * time.Millisecond)
	if p <= bucketBounds[i-1] || p > bucketBounds[i] {
		t.Errorf("p50 of calls of 50 ms = %v, not in their bucket (%v, %v]", p, bucketBounds[i-1], bucketBounds[i])
	}
	clear(b)
	b[NumBuckets-1] = 1 // past the last bound
	if p := Percentile(b, 0.99); p != round3(bucketBounds[len(bucketBounds)-1]) {
		t.Errorf("p99 past the last bound = %v", p)
	}
	if bucketBounds[len(bucketBounds)-1] < 15*60*1000 {
		t.Errorf("the last bound %v ms is under Lambda's 15-minute timeout", bucketBounds[len(bucketBounds)-1])
	}
	if math.Abs(bucketBounds[1]/bucketBounds[0]-math.Sqrt2) > 1e-9 {
		t.Error("the buckets are not a factor of √2 apart")
	}
}

// A peer's answer is refused unless it covers the minutes asked, with buckets in range and
// counts that cannot overflow when added.
func TestDecodeNodeHistory(t *testing.T) {
	ok := `{"end_minute":100,"minutes":[{"invocations":2,"buckets":[[3,2]]},{"invocations":0}]}`
	if h, err := DecodeNodeHistory([]byte(ok), 100, 2); err != nil || h.Minutes[0].Invocations != 2 {
		t.Fatalf("a good answer: %+v, %v", h, err)
	}
	for name, bad := range map[string]string{
		"not JSON":        `{"end_minute":`,
		"other end":       `{"end_minute":99,"minutes":[{},{}]}`,
		"fewer minutes":   `{"end_minute":100,"minutes":[{}]}`,
		"bucket too far":  `{"end_minute":100,"minutes":[{"buckets":[[999,1]]},{}]}`,
		"huge count":      `{"end_minute":100,"minutes":[{"invocations":18446744073709551615},{}]}`,
		"huge bucket":     `{"end_minute":100,"minutes":[{"buckets":[[1,18446744073709551615]]},{}]}`,
		"negative":        `{"end_minute":100,"minutes":[{"invocations":-1},{}]}`,
		"too many pairs":  `{"end_minute":100,"minutes":[{"buckets":[` + strings.Repeat("[1,1],", 200) + `[1,1]]},{}]}`,
		"pair too long":   `{"end_minute":100,"minutes":[{"buckets":[[1,1,1]]},{}]}`,
		"minutes not arr": `{"end_minute":100,"minutes":{}}`,
	} {
		if _, err := DecodeNodeHistory([]byte(bad), 100, 2); err == nil {
			t.Errorf("%s: accepted %s", name, bad)
		}
	}
}
