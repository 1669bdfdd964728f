package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

// benchIsolation runs the sandbox package's BenchmarkIsolation (a real libcontainer driver, no
// agent) for each isolation setting in alternating rounds, and reports what the seccomp filter
// and user namespaces add to a cold start without standby and to a warm invocation, against no
// filter and no user namespace in the same run, and what a private network (a CNI bridge) adds
// to both against the same isolation on loopback only.
func benchIsolation(tmp string, rounds, coldN, warmN int) ([]string, error) {
	bin := filepath.Join(tmp, "sandbox.test")
	build := exec.Command("go", "test", "-c", "-o", bin, "./sandbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the sandbox benchmarks: %v\n%s", err, b)
	}
	settings := []string{"none", "seccomp", "seccomp+userns", "seccomp+userns+network"}
	results := map[string][]float64{} // "cold/none" -> ns/op of each round
	nsOp := regexp.MustCompile(`\s([0-9.]+) ns/op`)
	for r := 0; r < rounds; r++ {
		for _, phase := range []struct {
			name string
			n    int
		}{{"cold", coldN}, {"warm", warmN}} {
			for _, s := range settings {
				name := phase.name + "/" + s
				cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", "^BenchmarkIsolation/"+regexp.QuoteMeta(name)+"$",
					"-test.benchtime", fmt.Sprintf("%dx", phase.n))
				cmd.Dir = "sandbox" // the test binary finds its test function from its package folder
				out, err := cmd.CombinedOutput()
				if err != nil {
					return nil, fmt.Errorf("BenchmarkIsolation/%s: %v\n%s", name, err, out)
				}
				m := nsOp.FindSubmatch(out)
				if m == nil {
					return nil, fmt.Errorf("BenchmarkIsolation/%s printed no ns/op:\n%s", name, out)
				}
				v, _ := strconv.ParseFloat(string(m[1]), 64)
				results[name] = append(results[name], v)
			}
		}
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	var rows []string
	for _, p := range []struct{ phase, unit, what string }{
		{"cold", "ms", fmt.Sprintf("cold start without standby (%d runs x %d rounds, median of rounds)", coldN, rounds)},
		{"warm", "µs", fmt.Sprintf("warm invoke, frozen between calls (%d calls x %d rounds, median of rounds)", warmN, rounds)},
	} {
		scale := 1e6
		if p.unit == "µs" {
			scale = 1e3
		}
		base := med(results[p.phase+"/none"]) / scale
		for _, s := range settings[1:3] {
			v := med(results[p.phase+"/"+s]) / scale
			rows = append(rows, fmt.Sprintf("| sandbox %s, %s | %.1f %s | %.1f %s without | %.2fx (+%.1f %s) |", s, p.what, v, p.unit, base, p.unit, v/base, v-base, p.unit))
			fmt.Printf("%-16s %s %8.1f %s   none %8.1f %s   %.2fx\n", s, p.phase, v, p.unit, base, p.unit, v/base)
		}
		// The network against the same isolation on loopback only.
		lo, v := med(results[p.phase+"/seccomp+userns"])/scale, med(results[p.phase+"/seccomp+userns+network"])/scale
		rows = append(rows, fmt.Sprintf("| sandbox on a private network (CNI bridge, nftables egress; seccomp+userns), %s | %.1f %s | %.1f %s on loopback only | %.2fx (%+.1f %s) |",
			p.what, v, p.unit, lo, p.unit, v/lo, v-lo, p.unit))
		fmt.Printf("%-16s %s %8.1f %s   loopback %8.1f %s   %.2fx\n", "network", p.phase, v, p.unit, lo, p.unit, v/lo)
	}
	return rows, nil
}
