package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// extensionsBaseline is the last revision before the Extensions API: its warm invocation is
// what "a function without extensions pays nothing" is measured against.
const extensionsBaseline = "005fe15"

// benchExtensions runs the sandbox package's BenchmarkExtensions (a real libcontainer driver,
// real extensions in a layer, no agent process) case by case in alternating rounds, and reports
// what an extension registered for INVOKE adds to a warm call, and what a Telemetry API
// subscriber to a function logging thousands of lines a second does to its calls. Then the
// warm call without extensions against the baseline revision's, both binaries taking turns.
func benchExtensions(tmp string, rounds, n, lines int) ([]string, error) {
	bin := filepath.Join(tmp, "sandbox-ext.test")
	build := exec.Command("go", "test", "-c", "-o", bin, "./sandbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the sandbox benchmarks: %v\n%s", err, b)
	}
	metric := func(out []byte, unit string) (float64, bool) {
		m := regexp.MustCompile(`\s([0-9.]+) ` + regexp.QuoteMeta(unit) + `(\s|$)`).FindSubmatch(out)
		if m == nil {
			return 0, false
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v, true
	}
	cases := []string{"invoke/none", "invoke/internal", "invoke/external", "logs/idle", "logs/tap"}
	res := map[string]map[string][]float64{} // case -> unit -> per round
	for r := 0; r < rounds; r++ {
		for _, c := range cases {
			cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", "^BenchmarkExtensions/"+regexp.QuoteMeta(c)+"$",
				"-test.benchtime", fmt.Sprintf("%dx", n))
			cmd.Dir = "sandbox"
			cmd.Env = append(os.Environ(), "BENCH_LINES="+strconv.Itoa(lines))
			out, err := cmd.CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("BenchmarkExtensions/%s: %v\n%s", c, err, out)
			}
			if res[c] == nil {
				res[c] = map[string][]float64{}
			}
			for _, u := range []string{"p50-µs", "agent-cpu-µs", "lines/s", "dropped", "lost"} {
				if v, ok := metric(out, u); ok {
					res[c][u] = append(res[c][u], v)
				}
			}
			fmt.Printf("extensions %-16s %s\n", c, strings.TrimSpace(lastLine(out, "BenchmarkExtensions")))
		}
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	sum := func(v []float64) float64 {
		t := 0.0
		for _, x := range v {
			t += x
		}
		return t
	}
	p := func(c string) float64 { return med(res[c]["p50-µs"]) }
	what := fmt.Sprintf("(%d calls x %d rounds, freeze_delay 0s, median of rounds)", n, rounds)
	none := p("invoke/none")
	var rows []string
	for _, c := range []struct{ name, label string }{
		{"invoke/internal", "an internal extension registered for INVOKE, doing nothing"},
		{"invoke/external", "an external extension (a Go process) registered for INVOKE, doing nothing"},
	} {
		v := p(c.name)
		rows = append(rows, fmt.Sprintf("| warm invoke p50 with %s %s | %.1f µs | %.1f µs without | +%.1f µs (agent CPU %.1f vs %.1f µs a call) |",
			c.label, what, v, none, v-none, med(res[c.name]["agent-cpu-µs"]), med(res["invoke/none"]["agent-cpu-µs"])))
	}
	idle, tap := p("logs/idle"), p("logs/tap")
	rows = append(rows, fmt.Sprintf("| warm invoke p50 of a function logging %.0f lines/s, its extension subscribed to the Telemetry API (function, platform; 100 ms buffer) %s | %.1f µs | %.1f µs unsubscribed | %.2fx; %.0f lines dropped and counted, %.0f lost over every round |",
		med(res["logs/tap"]["lines/s"]), what, tap, idle, tap/idle, sum(res["logs/tap"]["dropped"]), sum(res["logs/tap"]["lost"])))

	// Without extensions, against the baseline revision.
	baseRow, err := benchExtensionsBaseline(tmp, bin, rounds, n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: the baseline revision's warm invocation:", err)
		rows = append(rows, fmt.Sprintf("| warm invoke without extensions against %s | not measured: %s | | |", extensionsBaseline, strings.ReplaceAll(err.Error(), "\n", " ")))
	} else {
		rows = append(rows, baseRow)
	}
	return rows, nil
}

// benchExtensionsBaseline builds the sandbox benchmarks of extensionsBaseline in a worktree of
// its own and runs BenchmarkIsolation/warm/seccomp (the same function, driver and settings as
// invoke/none) of it and of bin in turns.
func benchExtensionsBaseline(tmp, bin string, rounds, n int) (string, error) {
	old := filepath.Join(tmp, "sandbox-baseline.test")
	wt, done, err := buildAtRevision(tmp, extensionsBaseline, "test", "-c", "-o", old, "./sandbox")
	if err != nil {
		return "", err
	}
	defer done()
	nsOp := regexp.MustCompile(`\s([0-9.]+) ns/op`)
	res := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, side := range []struct{ name, bin, dir string }{{"now", bin, "sandbox"}, {"baseline", old, filepath.Join(wt, "sandbox")}} {
			cmd := exec.Command(side.bin, "-test.run", "^$", "-test.bench", "^BenchmarkIsolation/warm/seccomp$", "-test.benchtime", fmt.Sprintf("%dx", n))
			cmd.Dir = side.dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("%s: BenchmarkIsolation/warm/seccomp: %v\n%s", side.name, err, out)
			}
			m := nsOp.FindSubmatch(out)
			if m == nil {
				return "", fmt.Errorf("%s printed no ns/op:\n%s", side.name, out)
			}
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			res[side.name] = append(res[side.name], v/1e3)
			fmt.Printf("extensions baseline %-8s %.1f µs\n", side.name, v/1e3)
		}
	}
	sort.Float64s(res["now"])
	sort.Float64s(res["baseline"])
	now, base := res["now"][len(res["now"])/2], res["baseline"][len(res["baseline"])/2]
	return fmt.Sprintf("| warm invoke without extensions, mean, against %s, the revision before the Extensions API (%d calls x %d rounds, taking turns) | %.1f µs | %.1f µs at %s | %.2fx (%+.1f µs) |",
		extensionsBaseline, n, rounds, now, base, extensionsBaseline, now/base, now-base), nil
}

// lastLine is the last line of out starting with prefix.
func lastLine(out []byte, prefix string) string {
	s := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, prefix) {
			s = l
		}
	}
	return s
}
