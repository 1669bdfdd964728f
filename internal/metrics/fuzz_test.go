package metrics

import (
	"testing"
	"time"
)

// FuzzDecodeNodeHistory: whatever a peer answers, decoding never panics, and what it accepts
// merges into points whose counts and percentiles are sane.
func FuzzDecodeNodeHistory(f *testing.F) {
	f.Add([]byte(`{"end_minute":100,"minutes":[{"invocations":2,"errors":1,"buckets":[[3,2]]},{"invocations":0}]}`))
	f.Add([]byte(`{"end_minute":100,"minutes":[{"buckets":[[999,1]]},{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeNodeHistory(data, 100, 2)
		if err != nil {
			return
		}
		out := Merge("f", 100, 2, []NodeHistory{h, h})
		for i, p := range out.Points {
			if p.Invocations != 2*h.Minutes[i].Invocations {
				t.Fatalf("point %d: %d invocations from twice %d", i, p.Invocations, h.Minutes[i].Invocations)
			}
			if p.DurationP50Ms < 0 || p.DurationP99Ms < p.DurationP50Ms || p.DurationP99Ms > 2*15*60*1000 {
				t.Fatalf("point %d: percentiles %v, %v", i, p.DurationP50Ms, p.DurationP99Ms)
			}
			if !p.Time.Equal(time.Unix((99+int64(i))*60, 0)) {
				t.Fatalf("point %d at %v", i, p.Time)
			}
		}
	})
}
