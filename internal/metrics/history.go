package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// The recent history of a function, for the console's charts: per minute, its counts and a
// histogram of durations in fixed buckets, so that the nodes' histograms add up and the
// cluster's percentiles come from the sum (percentiles themselves do not add).

// HistoryMinutes is how far back a function's history goes.
const HistoryMinutes = 180

// StepSeconds is the width of one point of the history.
const StepSeconds = 60

// bucketBounds are the upper bounds (milliseconds) of the duration buckets: a factor of √2 from
// 0.05 ms to past 15 minutes; one more bucket takes what is above the last.
var bucketBounds = func() []float64 {
	var b []float64
	for v := 0.05; v < 15*60*1000*math.Sqrt2; v *= math.Sqrt2 {
		b = append(b, v)
	}
	return b
}()

// NumBuckets is the number of duration buckets of a minute (the last is unbounded).
var NumBuckets = len(bucketBounds) + 1

// maxCount bounds each count a peer reports, so that sums cannot overflow.
const maxCount = 1 << 40

// slot is one minute of a function on this node.
type slot struct {
	minute                               int64 // Unix minute
	invocations, errors, throttles, cold uint64
	buckets                              []uint32
}

// history is a ring of HistoryMinutes slots, each made when its first event comes and reused
// after.
type history struct {
	mu    sync.Mutex
	slots [HistoryMinutes]*slot
}

func bucketOf(d time.Duration) int {
	ms := float64(d) / float64(time.Millisecond)
	return sort.SearchFloat64s(bucketBounds, ms)
}

func (h *history) add(now time.Time, dur time.Duration, failed, cold, throttled bool) {
	m := now.Unix() / 60
	h.mu.Lock()
	s := h.slots[m%HistoryMinutes]
	if s == nil {
		s = &slot{buckets: make([]uint32, NumBuckets)}
		h.slots[m%HistoryMinutes] = s
	}
	if s.minute != m {
		*s = slot{minute: m, buckets: s.buckets}
		clear(s.buckets)
	}
	if throttled {
		s.throttles++
	} else {
		s.invocations++
		s.buckets[bucketOf(dur)]++
		if failed {
			s.errors++
		}
		if cold {
			s.cold++
		}
	}
	h.mu.Unlock()
}

// read fills out with the minutes ending with end, oldest first.
func (h *history) read(end int64, out []Minute) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range out {
		m := end - int64(len(out)-1-i)
		if m < 0 {
			continue
		}
		s := h.slots[m%HistoryMinutes]
		if s == nil || s.minute != m {
			continue
		}
		out[i] = Minute{Invocations: s.invocations, Errors: s.errors, Throttles: s.throttles, ColdStarts: s.cold}
		for b, c := range s.buckets {
			if c > 0 {
				out[i].Buckets = append(out[i].Buckets, [2]uint64{uint64(b), uint64(c)})
			}
		}
	}
}

// Minute is one node's counts of one minute, as peers send them to each other.
type Minute struct {
	Invocations uint64 `json:"invocations"`
	Errors      uint64 `json:"errors"`
	Throttles   uint64 `json:"throttles"`
	ColdStarts  uint64 `json:"cold_starts"`
	// Buckets are the durations: [bucket index, count] pairs of the buckets not empty.
	Buckets [][2]uint64 `json:"buckets,omitempty"`
}

// NodeHistory is one node's history of a function: Minutes end with the Unix minute End.
type NodeHistory struct {
	End     int64    `json:"end_minute"`
	Minutes []Minute `json:"minutes"`
}

// DecodeNodeHistory reads a peer's answer for the n minutes ending with end, refusing anything
// else: another span, bucket indexes out of range, counts too large to add.
func DecodeNodeHistory(data []byte, end int64, n int) (NodeHistory, error) {
	// Pairs are read as lists first: an array type would take [1,2,3] as [1,2].
	var wire struct {
		End     int64 `json:"end_minute"`
		Minutes []struct {
			Minute
			Buckets [][]uint64 `json:"buckets"`
		} `json:"minutes"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return NodeHistory{}, fmt.Errorf("decoding a node's history: %w", err)
	}
	if wire.End != end || len(wire.Minutes) != n {
		return NodeHistory{}, fmt.Errorf("a node's history covers %d minutes up to minute %d, not the %d up to %d asked", len(wire.Minutes), wire.End, n, end)
	}
	h := NodeHistory{End: wire.End, Minutes: make([]Minute, n)}
	for i, m := range wire.Minutes {
		if m.Invocations > maxCount || m.Errors > maxCount || m.Throttles > maxCount || m.ColdStarts > maxCount {
			return NodeHistory{}, fmt.Errorf("a node's history has a count over %d", uint64(maxCount))
		}
		if len(m.Buckets) > NumBuckets {
			return NodeHistory{}, fmt.Errorf("a node's history has %d duration buckets, more than the %d there are", len(m.Buckets), NumBuckets)
		}
		out := m.Minute
		out.Buckets = nil
		for _, b := range m.Buckets {
			if len(b) != 2 || b[0] >= uint64(NumBuckets) || b[1] > maxCount {
				return NodeHistory{}, fmt.Errorf("a node's history has a duration bucket %v: want [index, count], index 0 to %d, count up to %d", b, NumBuckets-1, uint64(maxCount))
			}
			out.Buckets = append(out.Buckets, [2]uint64{b[0], b[1]})
		}
		h.Minutes[i] = out
	}
	return h, nil
}

// Point is one minute of a function across the cluster, as the console charts it.
type Point struct {
	Time          time.Time `json:"time"`
	Invocations   uint64    `json:"invocations"`
	Errors        uint64    `json:"errors"`
	Throttles     uint64    `json:"throttles"`
	ColdStarts    uint64    `json:"cold_starts"`
	DurationP50Ms float64   `json:"duration_p50_ms"`
	DurationP99Ms float64   `json:"duration_p99_ms"`
}

// FunctionHistory is GET /v1/functions/{name}/metrics.
type FunctionHistory struct {
	Function    string  `json:"function"`
	StepSeconds int     `json:"step_seconds"`
	Points      []Point `json:"points"`
	// NodesFailed lists the nodes that could not answer, as "nodeid: reason".
	NodesFailed []string `json:"nodes_failed"`
}

// Merge adds the nodes' histories (all for the same minutes, ending with end) into the points of
// function name, with the percentiles of the summed duration histograms.
func Merge(name string, end int64, n int, nodes []NodeHistory) FunctionHistory {
	out := FunctionHistory{Function: name, StepSeconds: StepSeconds, Points: make([]Point, n), NodesFailed: []string{}}
	buckets := make([]uint64, NumBuckets)
	for i := range out.Points {
		p := &out.Points[i]
		p.Time = time.Unix((end-int64(n-1-i))*60, 0).UTC()
		clear(buckets)
		for _, h := range nodes {
			if len(h.Minutes) != n {
				continue
			}
			m := h.Minutes[i]
			p.Invocations += m.Invocations
			p.Errors += m.Errors
			p.Throttles += m.Throttles
			p.ColdStarts += m.ColdStarts
			for _, b := range m.Buckets {
				if b[0] < uint64(NumBuckets) {
					buckets[b[0]] += b[1]
				}
			}
		}
		p.DurationP50Ms = Percentile(buckets, 0.50)
		p.DurationP99Ms = Percentile(buckets, 0.99)
	}
	return out
}

// Percentile is the q-quantile (0..1) in milliseconds of a duration histogram, interpolated
// linearly within its bucket; 0 when it is empty. Above the last bound it is that bound.
func Percentile(buckets []uint64, q float64) float64 {
	var total uint64
	for _, c := range buckets {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen uint64
	for i, c := range buckets {
		if c == 0 {
			continue
		}
		if float64(seen+c) >= rank {
			if i >= len(bucketBounds) {
				return round3(bucketBounds[len(bucketBounds)-1])
			}
			lo := 0.0
			if i > 0 {
				lo = bucketBounds[i-1]
			}
			frac := (rank - float64(seen)) / float64(c)
			return round3(lo + (bucketBounds[i]-lo)*frac)
		}
		seen += c
	}
	return round3(bucketBounds[len(bucketBounds)-1])
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
