package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"time"
)

// benchMetrics measures what counting an invocation costs on the warm path: two agents with
// the same no-op function, one with metrics { enabled = false }, driven in turns by wrk (one
// connection, --latency) pinned apart from them; the p50 of each, median of the rounds, side by
// side. The function freezes 100 ms after a call, so back-to-back calls stay thawed: what is
// measured is the gateway's path, not the freezer's.
func benchMetrics(client *http.Client, gwBin, fnDir, tmp, driver string, rounds int, dur time.Duration) ([]string, error) {
	if runtime.NumCPU() < 2 {
		return nil, errors.New("the metrics row pins wrk and the agents to different CPUs: it needs 2 CPUs")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, errors.New("the metrics row needs wrk (make deps installs it)")
	}
	fnPath := filepath.Join(tmp, "metrics-functions.hcl")
	fns := fmt.Sprintf("function \"noop\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  memory_mb = 128\n  timeout = \"10s\"\n  freeze_delay = \"100ms\"\n}\n", fnDir)
	if err := os.WriteFile(fnPath, []byte(fns), 0o644); err != nil {
		return nil, err
	}
	payload := `{"mode":"hello","name":"bench"}`
	script := filepath.Join(tmp, "metrics-post.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = '%s'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", payload)), 0o644); err != nil {
		return nil, err
	}
	type side struct {
		name, extra string
		a           *benchAgent
		p50         []float64 // µs, per round
	}
	sides := []*side{{name: "on"}, {name: "off", extra: "metrics {\n  enabled = false\n}\n"}}
	for _, s := range sides {
		a, err := startBenchAgent(client, gwBin, tmp, "metrics-"+s.name, driver, s.extra)
		if err != nil {
			return nil, err
		}
		s.a = a
		defer a.stop()
		if b, err := exec.Command(gwBin, "apply", "-address", a.base, fnPath).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("apply: %v\n%s", err, b)
		}
		if _, err := call(client, a.base+"/2015-03-31/functions/noop/invocations", []byte(payload)); err != nil {
			return nil, err
		}
	}
	// The agent's metrics are on when it serves them.
	if resp, err := client.Get(sides[0].a.base + "/v1/metrics"); err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("the metrics side serves no /v1/metrics: %v %v", resp, err)
	}
	for r := 0; r < rounds; r++ {
		for _, s := range sides {
			cpu := func() (time.Duration, error) { return procCPU(s.a.cmd.Process.Pid) }
			res, err := runWrk(script, s.a.base+"/2015-03-31/functions/noop/invocations", 1, 1, dur, cpu)
			if err != nil {
				return nil, err
			}
			s.p50 = append(s.p50, us(res.p50))
			fmt.Printf("metrics %-3s round %d: p50 %.1f µs, p99 %.1f µs, %.0f calls/s\n", s.name, r+1, us(res.p50), us(res.p99), res.requests/res.seconds)
		}
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	on, off := med(sides[0].p50), med(sides[1].p50)
	// The machine drifts between rounds more than the difference measured: the sides' difference
	// round by round (they run back to back) is the figure, with its quartiles.
	diffs := make([]float64, rounds)
	for i := range diffs {
		diffs[i] = sides[0].p50[i] - sides[1].p50[i]
	}
	sort.Float64s(diffs)
	return []string{fmt.Sprintf("| warm invoke p50 with metrics on (freeze_delay 100ms; wrk -t1 -c1 pinned apart, %d rounds of %s taking turns with an agent with `metrics { enabled = false }`) | %.0f µs | %.0f µs with metrics off (medians of rounds) | %+.0f µs round by round (median; quartiles %+.0f..%+.0f µs) |",
		rounds, dur, on, off, med(diffs), diffs[rounds/4], diffs[(3*rounds)/4])}, nil
}
