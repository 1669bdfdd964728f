// Command bench measures the gateway against a floor measured in the same run: a plain Go HTTP
// echo server called directly. It starts a real agent (bin/gateway, libcontainer driver), applies
// a no-op aws-lambda-go function, and writes the figures to a Markdown file. Function URL
// streaming is measured last, against the same server's /stream handler writing the same chunks.
//
//	go run ./integration/cmd/bench -out docs/BENCHMARKS.md
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "echo-server" {
		echoServer(os.Args[2])
		return
	}
	if len(os.Args) > 3 && os.Args[1] == "minimal-gateway" {
		minimalGateway(os.Args[2], os.Args[3], 4)
		return
	}
	if len(os.Args) > 4 && os.Args[1] == "event-load" {
		eventLoad(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	if len(os.Args) > 3 && os.Args[1] == "relay" {
		relay(os.Args[2], os.Args[3])
		return
	}
	var (
		out      = flag.String("out", "docs/BENCHMARKS.md", "Markdown file to write")
		gwBin    = flag.String("gateway", "bin/gateway", "gateway binary")
		fnDir    = flag.String("function", "", "code folder of the no-op function (default: build internal/testfixtures/testfunction)")
		warmN    = flag.Int("n", 5000, "invocations per latency measurement")
		duration = flag.Duration("duration", 5*time.Second, "duration of each throughput measurement")
		coldN    = flag.Int("cold", 30, "cold starts to measure")
		delay    = flag.String("freeze-delay", "", "freeze_delay of the function (default: measure 0s and 100ms)")
		driver   = flag.String("driver", "libcontainer", "sandbox driver of the agent")
		profile  = flag.String("cpuprofile", "", "write the agent's CPU profile during the first 4-caller throughput run to this file")
		so       streamOpts
		co       controlOpts
		cl       clusterOpts
		po       peersOpts
	)
	flag.IntVar(&so.ttfbRuns, "ttfb", 50, "time-to-first-byte runs of each function URL mode and of the floor")
	flag.IntVar(&so.streamMB, "stream-mb", 200, "size in MB of each streaming throughput run")
	flag.IntVar(&so.streamRuns, "stream-runs", 5, "streaming throughput runs of the URL and of the floor (median kept)")
	flag.IntVar(&so.rssMB, "rss-mb", 1000, "size in MB of the stream during which the agent's VmRSS is sampled")
	flag.IntVar(&co.admissionN, "admission-n", 5000, "invocations with and without a reserved concurrency limit")
	flag.IntVar(&co.admissionLimit, "admission-limit", 10, "the reserved concurrency of the admission measurement")
	flag.IntVar(&co.applyN, "apply-n", 100, "functions in the file of the apply measurement")
	flag.IntVar(&cl.n, "cluster-n", 2000, "calls of each side of the forwarding measurement")
	flag.IntVar(&cl.publishRuns, "publish-runs", 5, "rounds of the publish-to-invocable measurement")
	flag.IntVar(&cl.failoverRuns, "failover-runs", 3, "leaders killed in the failover measurement")
	flag.IntVar(&co.applyRuns, "apply-runs", 3, "rounds of the apply measurement (one function, then -apply-n; medians kept)")
	flag.BoolVar(&clusterOnly, "cluster-only", false, "measure only the cluster rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.IntVar(&triggerFlags.records, "trigger-records", 20000, "records published in each trigger throughput run (times -trigger-runs at most 100000)")
	flag.IntVar(&triggerFlags.runs, "trigger-runs", 3, "throughput runs of each trigger (median kept)")
	flag.IntVar(&triggerFlags.latencyN, "trigger-latency-n", 3000, "deliveries through a trigger plugin, and direct invocations, of the plugin boundary measurement")
	flag.IntVar(&agentProcs, "gomaxprocs", 0, "gomaxprocs of every agent the bench starts (0: the agent's default)")
	flag.BoolVar(&metricsOnly, "metrics-only", false, "measure only the metrics on/off row (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.IntVar(&metricsRounds, "metrics-rounds", 5, "rounds of the metrics on/off row (each side runs wrk for -duration a round)")
	flag.BoolVar(&warmOnly, "warm-only", false, "measure only the warm invocation rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&isolationOnly, "isolation-only", false, "measure only the seccomp and user namespace rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&signingOnly, "signing-only", false, "measure only the code signing rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&asyncOnly, "async-only", false, "measure only the asynchronous invocation rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&extensionsOnly, "extensions-only", false, "measure only the extension and Telemetry API rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&logFloodOnly, "logflood-only", false, "measure only the log flood rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&streamingOnly, "streaming-only", false, "measure only the function URL rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&triggersOnly, "triggers-only", false, "measure only the trigger rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&peersFlag, "peers", false, "also measure the peers (the direct server, the AWS Lambda RIE and the gateway, driven by wrk pinned apart from them) and the density rows, last")
	flag.BoolVar(&peersOnly, "peers-only", false, "measure only the peer and density rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&densityOnly, "density-only", false, "measure only the density rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.BoolVar(&imagesOnly, "images-only", false, "measure only the container image, managed runtime and layer rows (write -out elsewhere than docs/BENCHMARKS.md)")
	flag.IntVar(&imagesOpt.rounds, "images-rounds", 3, "first deploys of the large image, each against a crane pull (median kept)")
	flag.IntVar(&imagesOpt.cold, "images-cold", 10, "cold starts of each Node.js form and of RIE (0: skip the image rows with -peers)")
	flag.IntVar(&imagesOpt.sizeMB, "images-mb", 200, "size in MB of the large image (compressed)")
	flag.IntVar(&imagesOpt.envs, "images-envs", 100, "environments of one image function held at once for the disk row")
	flag.DurationVar(&imagesOpt.warmDur, "images-warm", 5*time.Second, "duration of each wrk run of the warm Node.js rows")
	flag.DurationVar(&po.dur, "peers-duration", 5*time.Second, "duration of each wrk run of the peer rows")
	flag.IntVar(&po.rounds, "peers-rounds", 3, "rounds of wrk runs of the peer rows (the systems take turns)")
	flag.IntVar(&po.cold, "peers-cold", 20, "cold starts of each peer")
	flag.IntVar(&po.density, "density", 1000, "frozen environments of the density rows (0: skip them)")
	flag.IntVar(&po.densityCallers, "density-callers", 4, "parallel callers creating the density environments")
	flag.DurationVar(&po.densityWait, "density-wait", 2*time.Second, "time the density environments stay frozen after the last is created, before the second calls")
	flag.Parse()
	peersOpt = po
	if err := run(*out, *gwBin, *fnDir, *driver, *profile, *warmN, *coldN, *duration, *delay, so, co, cl); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// agentProcs is the agents' gomaxprocs setting (0: not set).
var agentProcs int

// agentProcsLine is the agent configuration's gomaxprocs line, when -gomaxprocs is given.
func agentProcsLine() string {
	if agentProcs <= 0 {
		return ""
	}
	return fmt.Sprintf("gomaxprocs = %d\n", agentProcs)
}

// clusterOnly skips the single-node measurements; streamingOnly measures only function URLs,
// warmOnly only the warm invocation rows.
// metricsOnly only the metrics on/off row; metricsRounds its rounds.
var (
	metricsOnly   bool
	metricsRounds int
)

var clusterOnly, streamingOnly, warmOnly, logFloodOnly, isolationOnly, imagesOnly, extensionsOnly, asyncOnly, signingOnly bool

// profileAgent fetches the agent's CPU profile over dur into the file at path.
func profileAgent(client *http.Client, base, path string, dur time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		resp, err := client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(dur.Seconds())))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return done
}

// streamOpts sizes the function URL streaming measurements.
type streamOpts struct {
	ttfbRuns, streamMB, streamRuns, rssMB int
}

func run(outPath, gwBin, fnDir, driver, cpuProfile string, warmN, coldN int, dur time.Duration, delay string, so streamOpts, co controlOpts, cl clusterOpts) error {
	tmp, err := os.MkdirTemp("", "gateway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if fnDir == "" {
		fnDir = filepath.Join(tmp, "fn")
		cmd := exec.Command("go", "build", "-o", filepath.Join(fnDir, "bootstrap"), "./internal/testfixtures/testfunction")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building the function: %v\n%s", err, b)
		}
	}
	// The streaming custom runtime (internal/testfixtures/streamruntime), for the function URL rows.
	rawDir := filepath.Join(tmp, "rawfn")
	build := exec.Command("go", "build", "-o", filepath.Join(rawDir, "bootstrap"), "./internal/testfixtures/streamruntime")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the streaming runtime: %v\n%s", err, b)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	if imagesOnly {
		rows, err := benchImages(client, gwBin, tmp, driver, imagesOpt)
		if err != nil {
			return fmt.Errorf("images: %w", err)
		}
		extraSections = append(extraSections, rows...)
		return writeReport(outPath, nil)
	}
	if peersOnly || densityOnly {
		if err := benchPeersAndDensity(client, gwBin, fnDir, tmp, driver); err != nil {
			return err
		}
		return writeReport(outPath, nil)
	}
	if clusterOnly {
		payload := []byte(`{"mode":"hello","name":"bench"}`)
		rows, err := benchCluster(client, gwBin, fnDir, tmp, payload, cl)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		return writeReport(outPath, rows)
	}
	if asyncOnly {
		rows, err := benchAsync(client, gwBin, fnDir, tmp, driver)
		if err != nil {
			return err
		}
		return writeReport(outPath, rows)
	}
	if metricsOnly {
		rows, err := benchMetrics(client, gwBin, fnDir, tmp, driver, metricsRounds, dur)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		return writeReport(outPath, rows)
	}
	if signingOnly {
		rows, err := benchSigning(tmp, 3, 20)
		if err != nil {
			return err
		}
		return writeReport(outPath, rows)
	}
	if extensionsOnly {
		rows, err := benchExtensions(tmp, 3, 3000, 4)
		if err != nil {
			return err
		}
		return writeReport(outPath, rows)
	}
	if isolationOnly {
		rows, err := benchIsolation(tmp, 3, 40, 2000)
		if err != nil {
			return err
		}
		return writeReport(outPath, rows)
	}
	if triggersOnly {
		rows, err := benchTriggers(client, gwBin, fnDir, tmp, driver)
		if err != nil {
			return fmt.Errorf("triggers: %w", err)
		}
		return writeReport(outPath, rows)
	}

	// The floor: a plain Go HTTP server in its own process.
	echoAddr := freeAddr()
	echo, err := startSelf(client, "echo-server", echoAddr)
	if err != nil {
		return err
	}
	defer stopProc(echo)
	echoURL := "http://" + echoAddr + "/"

	httpAddr := freeAddr()
	// The stream limit (default 20 MB) must let the largest measured stream through.
	maxStreamMB := max(2000, so.streamMB+1, so.rssMB+1)
	conf := fmt.Sprintf(`node_name = "bench"
data_dir = %q
log_level = "warn"
debug { pprof = true }
http { address = %q }
cluster {
  address   = %q
  bootstrap = true
}
sandbox {
  driver        = %q
  max_stream_mb = %d
}
`, filepath.Join(tmp, "data"), httpAddr, freeAddr(), driver, maxStreamMB)
	confPath := filepath.Join(tmp, "agent.hcl")
	conf += agentProcsLine()
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	agent := exec.Command(gwBin, "agent", "-config", confPath)
	agent.Stderr = os.Stderr
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		return err
	}
	agentDone := false
	defer func() {
		if !agentDone {
			_ = agent.Process.Signal(syscall.SIGTERM)
			_ = agent.Wait()
		}
	}()
	base := "http://" + httpAddr
	if err := waitHTTP(client, base+"/v1/health", "GET"); err != nil {
		return err
	}

	if logFloodOnly {
		rows, err := benchLogFlood(client, gwBin, base, fnDir, tmp, warmN)
		if err != nil {
			return err
		}
		return writeReport(outPath, rows)
	}
	if streamingOnly {
		rows, err := benchStreaming(client, gwBin, base, "http://"+echoAddr, fnDir, rawDir, tmp, agent.Process.Pid, so)
		if err != nil {
			return err
		}
		return writeReport(outPath, rows)
	}

	delays := []string{"0s", "100ms"}
	if delay != "" {
		delays = []string{delay}
	}
	var fnFile bytes.Buffer
	for i, d := range delays {
		fmt.Fprintf(&fnFile, "function \"noop%d\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  memory_mb = 128\n  timeout = \"10s\"\n  freeze_delay = %q\n}\n", i, fnDir, d)
	}
	fmt.Fprintf(&fnFile, "function \"cold\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  memory_mb = 128\n  timeout = \"10s\"\n}\n", fnDir)
	fnPath := filepath.Join(tmp, "functions.hcl")
	if err := os.WriteFile(fnPath, fnFile.Bytes(), 0o644); err != nil {
		return err
	}
	// The minimal gateway: the Lambda protocol's hops alone, with the same function code.
	minimalAddr := freeAddr()
	minimal, err := startSelf(client, "minimal-gateway", minimalAddr, filepath.Join(fnDir, "bootstrap"))
	if err != nil {
		return err
	}
	defer stopProc(minimal)
	minimalURL := "http://" + minimalAddr + "/"

	applyStart := time.Now()
	if b, err := exec.Command(gwBin, "apply", "-address", base, fnPath).CombinedOutput(); err != nil {
		return fmt.Errorf("apply: %v\n%s", err, b)
	}
	invokeURL := func(name string) string { return base + "/2015-03-31/functions/" + name + "/invocations" }
	if _, err := call(client, invokeURL("cold"), nil); err != nil {
		return err
	}
	applyToFirst := time.Since(applyStart)

	payload := []byte(`{"mode":"hello","name":"bench"}`)
	var rows []string
	row := func(what string, gw, floor float64, unit string, lowerBetter bool) {
		ratio := gw / floor
		rel := fmt.Sprintf("%.2fx the floor", ratio)
		if !lowerBetter {
			rel = fmt.Sprintf("%.1f%% of the floor", 100*ratio)
		}
		rows = append(rows, fmt.Sprintf("| %s | %.0f %s | %.0f %s | %s |", what, gw, unit, floor, unit, rel))
		fmt.Printf("%-55s gateway %10.0f %s   floor %10.0f %s   %s\n", what, gw, unit, floor, unit, rel)
	}

	// Where the CPU of a 4-caller run goes, the gateway's side beside the floor's, one after the
	// other (the processes' CPU times cannot be told apart within alternating slices).
	caller := cpuPart{"caller", func() (time.Duration, error) { return procCPU(os.Getpid()) }}
	floorParts := []cpuPart{{"server", func() (time.Duration, error) { return procCPU(echo.Process.Pid) }}, caller}
	cpuRow := func(what, url string, parts []cpuPart) error {
		per, busy, rate, err := cpuPerCall(client, url, payload, 4, dur, parts)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fper, fbusy, frate, err := cpuPerCall(client, echoURL, payload, 4, dur, floorParts)
		if err != nil {
			return fmt.Errorf("%s, floor: %w", what, err)
		}
		gw, floor := cpuCell(parts, per, busy, rate), cpuCell(floorParts, fper, fbusy, frate)
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | |", what, gw, floor))
		fmt.Printf("%-55s gateway %s   floor %s\n", what, gw, floor)
		return nil
	}

	// Warm latency and throughput, each measured in blocks alternating with the floor's, so both
	// see the same machine, and each runs back to back within its blocks.
	for i, d := range delays {
		url := invokeURL(fmt.Sprintf("noop%d", i))
		if _, err := call(client, url, payload); err != nil {
			return err
		}
		lat, floorLat, err := pairedLatencies(client, url, echoURL, payload, warmN)
		if err != nil {
			return err
		}
		row(fmt.Sprintf("warm invoke p50, 1 caller (freeze_delay %s)", d), us(pct(lat, 50)), us(pct(floorLat, 50)), "µs", true)
		row(fmt.Sprintf("warm invoke p99, 1 caller (freeze_delay %s)", d), us(pct(lat, 99)), us(pct(floorLat, 99)), "µs", true)
		tp1, floorTP1, err := pairedThroughput(client, url, echoURL, payload, 1, dur)
		if err != nil {
			return err
		}
		row(fmt.Sprintf("throughput, 1 caller (freeze_delay %s)", d), tp1, floorTP1, "/s", false)
		var profiled <-chan error
		if cpuProfile != "" && i == 0 {
			profiled = profileAgent(client, base, cpuProfile, 2*dur)
		}
		tp4, floorTP4, err := pairedThroughput(client, url, echoURL, payload, 4, dur)
		if err != nil {
			return err
		}
		if profiled != nil {
			if err := <-profiled; err != nil {
				return fmt.Errorf("profiling the agent: %w", err)
			}
		}
		row(fmt.Sprintf("throughput, 4 callers (freeze_delay %s)", d), tp4, floorTP4, "/s", false)
		if err := cpuRow(fmt.Sprintf("CPU per call, 4 callers (freeze_delay %s)", d), url, []cpuPart{
			{"agent", func() (time.Duration, error) { return procCPU(agent.Process.Pid) }},
			{"environments", func() (time.Duration, error) { return cgroupsCPU("lambdagw/bench-*") }},
			caller,
		}); err != nil {
			return err
		}
	}
	{
		lat, floorLat, err := pairedLatencies(client, minimalURL, echoURL, payload, warmN)
		if err != nil {
			return err
		}
		row("minimal Lambda gateway (no sandbox; see below): warm invoke p50, 1 caller", us(pct(lat, 50)), us(pct(floorLat, 50)), "µs", true)
		row("minimal Lambda gateway: warm invoke p99, 1 caller", us(pct(lat, 99)), us(pct(floorLat, 99)), "µs", true)
		tp4, floorTP4, err := pairedThroughput(client, minimalURL, echoURL, payload, 4, dur)
		if err != nil {
			return err
		}
		row("minimal Lambda gateway: throughput, 4 callers", tp4, floorTP4, "/s", false)
		if err := cpuRow("minimal Lambda gateway: CPU per call, 4 callers", minimalURL, []cpuPart{
			{"server", func() (time.Duration, error) { return procCPU(minimal.Process.Pid) }},
			{"runtimes", func() (time.Duration, error) { return childrenCPU(minimal.Process.Pid) }},
			caller,
		}); err != nil {
			return err
		}
	}
	// The cost of counting a warm call: agents of their own, metrics on and off, taking turns.
	mrows, err := benchMetrics(client, gwBin, fnDir, tmp, driver, metricsRounds, dur)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	rows = append(rows, mrows...)
	if warmOnly {
		return writeReport(outPath, rows)
	}

	// Cold starts: each configuration update retires the environment, so the next call starts
	// one. Measured twice: once the node has prepared its standby environment for the new
	// revision (the usual case: a deploy, then traffic), and with the call sent right after the
	// update, racing the standby's preparation.
	coldRun := func(waitStandby bool) ([]time.Duration, error) {
		var cold []time.Duration
		for i := 0; i < coldN; i++ {
			body := fmt.Sprintf(`{"Environment":{"Variables":{"RUN":"%d-%t"}}}`, i, waitStandby)
			req, _ := http.NewRequest("PUT", base+"/2015-03-31/functions/cold/configuration", strings.NewReader(body))
			resp, err := client.Do(req)
			if err != nil {
				return nil, err
			}
			var conf struct{ RevisionId string }
			err = json.NewDecoder(resp.Body).Decode(&conf)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil {
				return nil, fmt.Errorf("updating configuration: %s %v", resp.Status, err)
			}
			if waitStandby {
				if err := waitForStandby(client, base, "cold", conf.RevisionId); err != nil {
					return nil, err
				}
			}
			t0 := time.Now()
			if _, err := call(client, invokeURL("cold"), payload); err != nil {
				return nil, err
			}
			cold = append(cold, time.Since(t0))
		}
		sortDur(cold)
		return cold, nil
	}
	for _, c := range []struct {
		what    string
		standby bool
	}{{"standby prepared", true}, {"invoked right after the update", false}} {
		cold, err := coldRun(c.standby)
		if err != nil {
			return err
		}
		rows = append(rows, fmt.Sprintf("| cold start (%s), invoke to response, p50 (%d runs) | %.1f ms | | |", c.what, coldN, ms(pct(cold, 50))))
		rows = append(rows, fmt.Sprintf("| cold start (%s), invoke to response, p99 | %.1f ms | | |", c.what, ms(pct(cold, 99))))
		fmt.Printf("cold start (%s) p50 %.1f ms p99 %.1f ms\n", c.what, ms(pct(cold, 50)), ms(pct(cold, 99)))
	}
	rows = append(rows, fmt.Sprintf("| apply to first response (agent running, one function) | %.1f ms | | |", ms(applyToFirst)))
	fmt.Printf("apply to first response %.1f ms\n", ms(applyToFirst))

	streamRows, err := benchStreaming(client, gwBin, base, "http://"+echoAddr, fnDir, rawDir, tmp, agent.Process.Pid, so)
	if err != nil {
		return err
	}
	rows = append(rows, streamRows...)

	// Last, so no earlier measurement runs beside their functions: the cost of a reserved
	// concurrency limit on a warm call, and applying many functions against applying one.
	admissionRows, err := benchAdmission(client, gwBin, base, fnDir, tmp, payload, co)
	if err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	rows = append(rows, admissionRows...)
	isolationRows, err := benchIsolation(tmp, 3, 40, 2000)
	if err != nil {
		return fmt.Errorf("isolation: %w", err)
	}
	rows = append(rows, isolationRows...)
	extRows, err := benchExtensions(tmp, 3, 3000, 4)
	if err != nil {
		return fmt.Errorf("extensions: %w", err)
	}
	rows = append(rows, extRows...)
	signingRows, err := benchSigning(tmp, 3, 20)
	if err != nil {
		return fmt.Errorf("code signing: %w", err)
	}
	rows = append(rows, signingRows...)
	asyncRows, err := benchAsync(client, gwBin, fnDir, tmp, driver)
	if err != nil {
		return fmt.Errorf("async: %w", err)
	}
	rows = append(rows, asyncRows...)
	floodRows, err := benchLogFlood(client, gwBin, base, fnDir, tmp, co.admissionN)
	if err != nil {
		return fmt.Errorf("log flood: %w", err)
	}
	rows = append(rows, floodRows...)
	applyRows, err := benchApply(client, gwBin, base, fnDir, tmp, agent.Process.Pid, co)
	if err != nil {
		return fmt.Errorf("apply of %d functions: %w", co.applyN, err)
	}
	rows = append(rows, applyRows...)

	// The cluster rows, on three new agents once the single node is gone.
	_ = agent.Process.Signal(syscall.SIGTERM)
	_ = agent.Wait()
	agentDone = true
	clusterRows, err := benchCluster(client, gwBin, fnDir, tmp, payload, cl)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	rows = append(rows, clusterRows...)
	triggerRows, err := benchTriggers(client, gwBin, fnDir, tmp, driver)
	if err != nil {
		return fmt.Errorf("triggers: %w", err)
	}
	rows = append(rows, triggerRows...)
	if peersFlag {
		if err := benchPeersAndDensity(client, gwBin, fnDir, tmp, driver); err != nil {
			return err
		}
	}

	return writeReport(outPath, rows)
}

// benchStreaming measures function URLs: time to first byte with RESPONSE_STREAM and BUFFERED
// against the floor's /stream handler, streaming throughput, and the agent's memory while a
// large stream passes. Its functions are applied only now, so the earlier measurements run on
// the same node as before (no extra environments).
func benchStreaming(client *http.Client, gwBin, base, echoBase, fnDir, rawDir, tmp string, agentPID int, so streamOpts) ([]string, error) {
	var rows []string
	var fnFile bytes.Buffer
	for _, f := range []struct{ name, mode, dir string }{{"urlstream", "RESPONSE_STREAM", fnDir}, {"urlbuffered", "BUFFERED", fnDir}, {"urlstreamraw", "RESPONSE_STREAM", rawDir}} {
		fmt.Fprintf(&fnFile, `function %q {
  runtime   = "provided.al2023"
  code      = %q
  memory_mb = 128
  timeout   = "120s"
  url {
    auth_type   = "NONE"
    invoke_mode = %q
  }
}
`, f.name, f.dir, f.mode)
	}
	fnPath := filepath.Join(tmp, "functions-url.hcl")
	if err := os.WriteFile(fnPath, fnFile.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if b, err := exec.Command(gwBin, "apply", "-address", base, fnPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apply: %v\n%s", err, b)
	}

	// Time to first byte: 5 chunks of 1 KB, 50 ms apart; the three targets take turns call by
	// call (each call lasts ~200 ms, so none of them is caught hot by the turn of another).
	const ttfbQuery = "?mode=stream&n=5&ms=50&size=1024&url=true"
	const ttfbBytes = 5 * 1024
	targets := []struct {
		url     string
		status  int
		exact   bool // the body must be exactly the chunks (a BUFFERED URL may differ: checked loosely)
		samples []time.Duration
	}{
		{url: base + "/fn/urlstream/" + ttfbQuery, status: 201, exact: true},
		{url: base + "/fn/urlbuffered/" + ttfbQuery, status: 0},
		{url: echoBase + "/stream" + ttfbQuery, status: 201, exact: true},
	}
	// The floor sends the function's bytes: checked once, for both chunk sizes (12 chunks cross
	// the change of the label's length).
	for _, q := range []string{ttfbQuery, "?mode=stream&n=12&ms=0&size=1048576&url=true"} {
		fn, err := getBody(client, base+"/fn/urlstream/"+q)
		if err != nil {
			return nil, err
		}
		floor, err := getBody(client, echoBase+"/stream"+q)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(fn, floor) {
			return nil, fmt.Errorf("%s: the floor's body (%d bytes) differs from the function's (%d bytes)", q, len(floor), len(fn))
		}
		raw, err := getBody(client, base+"/fn/urlstreamraw/"+q)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(raw, floor) {
			return nil, fmt.Errorf("%s: the custom runtime's body (%d bytes) differs from the floor's (%d bytes)", q, len(raw), len(floor))
		}
	}
	const ttfbWarm = 3
	for i := 0; i < ttfbWarm+so.ttfbRuns; i++ {
		for j := range targets {
			t := &targets[(i+j)%len(targets)]
			ttfb, _, n, err := streamGet(client, t.url, t.status, "chunk 4\n")
			if err != nil {
				return nil, err
			}
			if t.exact && n != ttfbBytes {
				return nil, fmt.Errorf("GET %s: %d bytes, want %d", t.url, n, ttfbBytes)
			}
			if i >= ttfbWarm {
				t.samples = append(t.samples, ttfb)
			}
		}
	}
	for j := range targets {
		sortDur(targets[j].samples)
	}
	floorTTFB := pct(targets[2].samples, 50)
	for j, what := range []string{"RESPONSE_STREAM", "BUFFERED"} {
		gw := pct(targets[j].samples, 50)
		label := fmt.Sprintf("function URL %s, time to first byte p50 (5 x 1 KB chunks 50 ms apart, %d runs)", what, so.ttfbRuns)
		rel := fmt.Sprintf("%+.2f ms over the floor", ms(gw-floorTTFB))
		rows = append(rows, fmt.Sprintf("| %s | %.2f ms | %.2f ms | %s |", label, ms(gw), ms(floorTTFB), rel))
		fmt.Printf("%-55s gateway %10.2f ms   floor %10.2f ms   %s\n", "TTFB p50 "+what, ms(gw), ms(floorTTFB), rel)
	}

	// Write to read: each chunk carries the wall-clock time the function wrote it (same machine,
	// same clock), so the client sees how long the gateway took to bring it over, apart from
	// the function's own start-up. The first chunk also crosses the invocation's hand-over of
	// the stream; the later ones only the copy.
	const stampQuery = "?mode=stream&n=5&ms=50&url=true&stamp=true"
	first, later, err := writeToRead(client, base+"/fn/urlstream/"+stampQuery, so.ttfbRuns)
	if err != nil {
		return nil, err
	}
	_, floorLater, err := writeToRead(client, echoBase+"/stream"+stampQuery, so.ttfbRuns)
	if err != nil {
		return nil, err
	}
	rows = append(rows, fmt.Sprintf("| function URL RESPONSE_STREAM, a later chunk from the function's write to the client's read, p50 | %.3f ms | %.3f ms | %+.3f ms over the floor |",
		ms(pct(later, 50)), ms(pct(floorLater, 50)), ms(pct(later, 50)-pct(floorLater, 50))))
	rows = append(rows, fmt.Sprintf("| function URL RESPONSE_STREAM, the first chunk from the function's write to the client's read, p50 | %.3f ms | | |", ms(pct(first, 50))))
	fmt.Printf("write to read, later chunks  p50 %.3f ms (floor %.3f ms); first chunk p50 %.3f ms\n", ms(pct(later, 50)), ms(pct(floorLater, 50)), ms(pct(first, 50)))

	// Throughput: one large stream of 1 MB chunks at a time, the targets taking turns: the URL of
	// the aws-lambda-go function, the URL of the custom runtime writing 1 MB chunks, the floor
	// through a plain TCP relay process (what any process in the path costs on this machine),
	// and the floor.
	relayAddr := freeAddr()
	relayCmd, err := startSelf(client, "relay", relayAddr, strings.TrimPrefix(echoBase, "http://"))
	if err != nil {
		return nil, err
	}
	defer stopProc(relayCmd)
	tpQuery := fmt.Sprintf("?mode=stream&n=%d&size=%d&ms=0&url=true", so.streamMB, 1<<20)
	tpBytes := int64(so.streamMB) << 20
	tpTargets := []struct {
		url string
		mbs []float64
	}{
		{url: base + "/fn/urlstream/" + tpQuery},
		{url: base + "/fn/urlstreamraw/" + tpQuery},
		{url: "http://" + relayAddr + "/stream" + tpQuery},
		{url: echoBase + "/stream" + tpQuery},
	}
	for i := 0; i <= so.streamRuns; i++ { // run 0 is an unrecorded warm-up
		for j := range tpTargets {
			t := &tpTargets[j]
			_, total, n, err := streamGet(client, t.url, 201, "")
			if err != nil {
				return nil, err
			}
			if n != tpBytes {
				return nil, fmt.Errorf("GET %s: %d bytes, want %d", t.url, n, tpBytes)
			}
			if i > 0 {
				t.mbs = append(t.mbs, float64(n)/(1<<20)/total.Seconds())
			}
		}
	}
	gwTP, rawTP, relayTP, floorTP := median(tpTargets[0].mbs), median(tpTargets[1].mbs), median(tpTargets[2].mbs), median(tpTargets[3].mbs)
	rawVsRelay = rawTP / relayTP
	for _, r := range []struct {
		what string
		mbs  float64
		runs []float64
		also string
	}{
		{"function URL RESPONSE_STREAM, aws-lambda-go function", gwTP, tpTargets[0].mbs, ""},
		{"function URL RESPONSE_STREAM, custom runtime writing 1 MB chunks (`internal/testfixtures/streamruntime`)", rawTP, tpTargets[1].mbs, fmt.Sprintf("; %.0f%% of the relay", 100*rawTP/relayTP)},
		{"the floor's stream through a plain TCP relay process (read and write, 256 KB buffer)", relayTP, tpTargets[2].mbs, ""},
	} {
		rel := fmt.Sprintf("%.1f%% of the floor%s", 100*r.mbs/floorTP, r.also)
		rows = append(rows, fmt.Sprintf("| %s, %d MB stream of 1 MB chunks, median of %d | %.0f MB/s | %.0f MB/s | %s |", r.what, so.streamMB, so.streamRuns, r.mbs, floorTP, rel))
		fmt.Printf("%-55s %10.0f MB/s floor %10.0f MB/s %s  (runs: %.0f / %.0f)\n", r.what, r.mbs, floorTP, rel, r.runs, tpTargets[3].mbs)
	}

	// What each function's runtime can push at all: the same code, outside any sandbox, posts
	// the same stream to a Runtime API that discards it. The gateway cannot stream faster than
	// this; the direct server above has no runtime to go through.
	for _, r := range []struct {
		what, dir string
		gw        float64
	}{{"the aws-lambda-go function's runtime", fnDir, gwTP}, {"the custom runtime", rawDir, rawTP}} {
		sinkMBs, err := runtimeSinkThroughput(filepath.Join(r.dir, "bootstrap"), so.streamMB, so.streamRuns)
		if err != nil {
			return nil, fmt.Errorf("runtime into a sink: %w", err)
		}
		sinkTP := median(sinkMBs)
		rows = append(rows, fmt.Sprintf("| %s alone, posting the %d MB stream to a Runtime API that discards it, median of %d | %.0f MB/s | | the gateway streams at %.0f%% of it |",
			r.what, so.streamMB, so.streamRuns, sinkTP, 100*r.gw/sinkTP))
		fmt.Printf("%s alone into a sink: %.0f MB/s (runs %.0f); the gateway streams at %.0f%% of it\n", r.what, sinkTP, sinkMBs, 100*r.gw/sinkTP)
	}

	// Memory: the agent's resident set, sampled every 20 ms while one large stream passes.
	before, err := vmRSS(agentPID)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	sampled := make(chan [2]int64, 1) // peak, samples
	go func() {
		peak, count := before, int64(0)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- [2]int64{peak, count}
				return
			case <-tick.C:
				if v, err := vmRSS(agentPID); err == nil {
					peak, count = max(peak, v), count+1
				}
			}
		}
	}()
	rssURL := base + "/fn/urlstream/" + fmt.Sprintf("?mode=stream&n=%d&size=%d&ms=0&url=true", so.rssMB, 1<<20)
	_, total, n, err := streamGet(client, rssURL, 201, "")
	close(stop)
	res := <-sampled
	if err != nil {
		return nil, err
	}
	if want := int64(so.rssMB) << 20; n != want {
		return nil, fmt.Errorf("GET %s: %d bytes, want %d", rssURL, n, want)
	}
	after, _ := vmRSS(agentPID)
	peak, count := res[0], res[1]
	mb := func(kb int64) float64 { return float64(kb) / 1024 }
	rows = append(rows,
		fmt.Sprintf("| agent VmRSS before a %d MB function URL stream | %.1f MB | | |", so.rssMB, mb(before)),
		fmt.Sprintf("| agent VmRSS peak during it (%d samples, 20 ms apart; stream at %.0f MB/s) | %.1f MB | | |", count, float64(n)/(1<<20)/total.Seconds(), mb(peak)),
		fmt.Sprintf("| agent VmRSS increase while streaming %d MB | %+.1f MB | | |", so.rssMB, mb(peak-before)))
	fmt.Printf("agent VmRSS streaming %d MB: before %.1f MB, peak %.1f MB (%d samples), after %.1f MB, increase %+.1f MB; %.0f MB/s\n",
		so.rssMB, mb(before), mb(peak), count, mb(after), mb(peak-before), float64(n)/(1<<20)/total.Seconds())
	return rows, nil
}

// streamGet GETs url on the keep-alive client and reads the body to its end. It returns the
// time from sending the request to the first body byte read, the time to the last, and the body's
// length; the status must be want (any 2xx when 0), and the body end with suffix.
// runtimeSinkThroughput runs the function's bootstrap as a plain process (GOMAXPROCS=1, as a
// 128 MB environment has one CPU) against a minimal Runtime API that hands it stream events
// and reads each streamed response to the end, and returns the MB/s of each run after a
// warm-up.
func runtimeSinkThroughput(bootstrap string, mb, runs int) ([]float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	type result struct {
		n   int64
		dur time.Duration
		err error
	}
	events := make(chan string)
	results := make(chan result)
	var sent time.Time
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		var ev string
		select {
		case ev = <-events:
		case <-r.Context().Done():
			return
		}
		sent = time.Now()
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprintf("sink-%d", sent.UnixNano()))
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:sink")
		_, _ = io.WriteString(w, ev)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		results <- result{n: n, dur: time.Since(sent), err: err}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		results <- result{err: fmt.Errorf("the function failed: %s", b)}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	cmd := exec.Command(bootstrap)
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(), "GOMAXPROCS=1",
		"AWS_LAMBDA_FUNCTION_NAME=sink", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ev := fmt.Sprintf(`{"mode":"stream","n":%d,"size":%d,"url":true}`, mb, 1<<20)
	var out []float64
	for i := 0; i <= runs; i++ {
		select {
		case events <- ev:
		case <-time.After(30 * time.Second):
			return nil, errors.New("the runtime did not ask for an event")
		}
		r := <-results
		if r.err != nil {
			return nil, r.err
		}
		if i > 0 {
			out = append(out, float64(r.n)/(1<<20)/r.dur.Seconds())
		}
	}
	return out, nil
}

// writeToRead reads runs streams whose chunks say when the function wrote them ("chunk i at
// <unix ns>") and returns, sorted, how long the first chunk and the later ones took to arrive.
func writeToRead(c *http.Client, url string, runs int) (first, later []time.Duration, err error) {
	for i := 0; i < runs+3; i++ {
		resp, err := c.Get(url)
		if err != nil {
			return nil, nil, err
		}
		br := bufio.NewReader(resp.Body)
		for j := 0; ; j++ {
			line, rerr := br.ReadString('\n')
			now := time.Now()
			if rerr != nil {
				resp.Body.Close()
				if rerr != io.EOF {
					return nil, nil, fmt.Errorf("GET %s: %w", url, rerr)
				}
				break
			}
			_, stamp, ok := strings.Cut(strings.TrimSpace(line), " at ")
			ns, perr := strconv.ParseInt(stamp, 10, 64)
			if !ok || perr != nil {
				resp.Body.Close()
				return nil, nil, fmt.Errorf("GET %s: chunk %q has no write time", url, line)
			}
			if i < 3 { // warm-up
				continue
			}
			if d := now.Sub(time.Unix(0, ns)); j == 0 {
				first = append(first, d)
			} else {
				later = append(later, d)
			}
		}
	}
	sortDur(first)
	sortDur(later)
	return first, later, nil
}

func streamGet(c *http.Client, url string, want int, suffix string) (ttfb, total time.Duration, n int64, err error) {
	t0 := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if (want != 0 && resp.StatusCode != want) || (want == 0 && resp.StatusCode/100 != 2) {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, 0, 0, fmt.Errorf("GET %s: %s %q", url, resp.Status, b)
	}
	bufp := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(bufp)
	buf := *bufp
	var tail []byte
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if n == 0 {
				ttfb = time.Since(t0)
			}
			n += int64(k)
			if suffix != "" {
				tail = append(tail, buf[:k]...)
				if len(tail) > len(suffix) {
					tail = tail[len(tail)-len(suffix):]
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, 0, n, fmt.Errorf("GET %s: after %d bytes: %w", url, n, rerr)
		}
	}
	total = time.Since(t0)
	if suffix != "" && string(tail) != suffix {
		return 0, 0, n, fmt.Errorf("GET %s: body ends with %q, want %q", url, tail, suffix)
	}
	return ttfb, total, n, nil
}

func getBody(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 201 {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

var readBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// vmRSS reads a process's resident set size in kB from /proc/<pid>/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// notesMarker starts the hand-written part of the report, which a new run keeps.
const notesMarker = "<!-- notes: kept across runs -->"

func writeReport(path string, rows []string) error {
	host, _ := os.Hostname()
	var b strings.Builder
	if len(rows) == 0 { // -peers-only, -density-only
		fmt.Fprintf(&b, "# Benchmarks\n\nOn %s, %s, with the libcontainer driver.\n\n", host, time.Now().UTC().Format("2006-01-02"))
		for _, s := range extraSections {
			b.WriteString(s + "\n")
		}
		return os.WriteFile(path, []byte(b.String()), 0o644)
	}
	fmt.Fprintf(&b, "# Benchmarks\n\nMade by `make bench` (`go run ./integration/cmd/bench -out docs/BENCHMARKS.md`) on %s, %s,\n", host, time.Now().UTC().Format("2006-01-02"))
	b.WriteString("with the libcontainer driver. The floor is a plain Go HTTP server echoing the request body, in its own\n")
	b.WriteString("process, called the same way (keep-alive HTTP/1.1 on loopback) in the same run. The function is a\n")
	b.WriteString("no-op aws-lambda-go handler (`internal/testfixtures/testfunction`, 128 MB). `freeze_delay 0s` freezes the environment\n")
	b.WriteString("after every invocation (thaw included in the next call); `100ms` keeps it thawed between back-to-back calls.\n")
	b.WriteString("The `minimal Lambda gateway` rows run the same function code as plain processes behind a minimal Runtime API\n")
	b.WriteString("and Invoke endpoint on net/http (`integration/cmd/bench/minimal.go`), against the same floor.\n")
	b.WriteString("The `CPU per call` rows run 4 callers once more, one side after the other, and divide each part's CPU time by\n")
	b.WriteString("the calls served: the agent process, its environments' cgroups, the minimal gateway's server and runtimes, the\n")
	b.WriteString("floor's server, and the caller (the bench itself); `machine busy` is the share of both CPUs not idle meanwhile.\n")
	b.WriteString("The function URL rows, measured last, call the same function behind a `RESPONSE_STREAM` and a `BUFFERED`\n")
	b.WriteString("URL (`/fn/<name>/?mode=stream&...&url=true`; freeze_delay 0s, the default; `max_stream_mb = 2000`). Their\n")
	b.WriteString("floor is the same server's `/stream` handler writing the same bytes in the same chunks, each flushed. Time to\n")
	b.WriteString("first byte runs from sending the request to reading the first body byte, the three taking turns call by call;\n")
	b.WriteString("throughput is the median of runs alternating with the floor's, one stream at a time, beside a custom runtime\n")
	b.WriteString("writing 1 MB chunks (`internal/testfixtures/streamruntime`) and the floor's stream through a plain TCP relay process; the agent's VmRSS is read\n")
	b.WriteString("from /proc every 20 ms during one large stream. The admission rows, measured after them, call one function\n")
	b.WriteString("(freeze_delay 100ms) with and without a reserved concurrency limit, set and removed by the API between blocks of\n")
	b.WriteString("calls; the last rows time `bin/gateway apply` and `plan` of a file of many functions on the same code folder\n")
	b.WriteString("against a file of one, in alternating rounds. MB = 2^20 bytes.\n\n")
	b.WriteString("| measure | gateway | floor | ratio |\n|---|---|---|---|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	for _, s := range extraSections {
		b.WriteString("\n" + s)
	}
	// Keep the hand-written analysis that follows the notes marker in the existing file.
	if old, err := os.ReadFile(path); err == nil {
		if i := strings.Index(string(old), notesMarker); i >= 0 {
			b.WriteString("\n" + string(old[i:]))
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// relay accepts connections on listen and copies each to and from a connection to upstream,
// with plain reads and writes: the cost of one more process in a stream's path on this
// machine, with nothing else done to the bytes.
func relay(listen, upstream string) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			go func() {
				_, _ = io.CopyBuffer(struct{ io.Writer }{u}, struct{ io.Reader }{c}, make([]byte, 256<<10))
				u.Close()
			}()
			_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{u}, make([]byte, 256<<10))
		}()
	}
}

func echoServer(addr string) {
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			streamChunks(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})}
	_ = srv.ListenAndServe()
}

// streamChunks is the floor of function URL streaming: the bytes the test function's mode
// stream writes (?n=N&size=S&ms=M: N chunks of S bytes ending "chunk i\n"), M ms apart, each
// flushed, status 201. The chunks come from one reused buffer, so the floor measures serving the
// stream: building each as the function does (two fresh 1 MB strings) held this server to
// ~600 MB/s, under the gateway's own figure, whose function builds them on another goroutine.
func streamChunks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	num := func(k string) int { n, _ := strconv.Atoi(q.Get(k)); return n }
	n, size, pause := num("n"), num("size"), time.Duration(num("ms"))*time.Millisecond
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusCreated)
	rc := http.NewResponseController(w)
	buf := bytes.Repeat([]byte("x"), max(size, 0))
	for i := 0; i < n; i++ {
		if i > 0 && pause > 0 {
			time.Sleep(pause)
		}
		label := fmt.Sprintf("chunk %d\n", i)
		if q.Get("stamp") == "true" {
			label = fmt.Sprintf("chunk %d at %d\n", i, time.Now().UnixNano())
		}
		chunk := []byte(label)
		if pad := size - len(label); pad > 0 {
			// "x" * (pad-1), "\n", label: the buffer's tail is written, and put back after.
			buf[pad-1] = '\n'
			copy(buf[pad:], label)
			chunk = buf
		}
		_, err := w.Write(chunk)
		if pad := size - len(label); pad > 0 {
			for j := pad - 1; j < size; j++ {
				buf[j] = 'x'
			}
		}
		if err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func call(c *http.Client, url string, payload []byte) (time.Duration, error) {
	t0 := time.Now()
	resp, err := c.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
		return 0, fmt.Errorf("POST %s: %s %s", url, resp.Status, resp.Header.Get("X-Amz-Function-Error"))
	}
	return time.Since(t0), nil
}

// latencyBlock is how many back-to-back calls one side makes before the other takes over in
// pairedLatencies: long enough for each side's steady state (both run back to back, as a caller
// hammering either would), short enough that both see the same drift of the machine.
const latencyBlock = 250

// pairedLatencies calls a and b in alternating blocks, n times each after a warm-up, and returns
// their sorted latencies.
func pairedLatencies(c *http.Client, a, b string, payload []byte, n int) ([]time.Duration, []time.Duration, error) {
	la, lb := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	block := func(url string, out *[]time.Duration, k int, keep bool) error {
		for i := 0; i < k; i++ {
			d, err := call(c, url, payload)
			if err != nil {
				return err
			}
			if keep {
				*out = append(*out, d)
			}
		}
		return nil
	}
	for len(la) < n {
		k := min(latencyBlock, n-len(la))
		// A few unrecorded calls first: the switch from the other side is not what is measured.
		if err := block(a, nil, 10, false); err != nil {
			return nil, nil, err
		}
		if err := block(a, &la, k, true); err != nil {
			return nil, nil, err
		}
		if err := block(b, nil, 10, false); err != nil {
			return nil, nil, err
		}
		if err := block(b, &lb, k, true); err != nil {
			return nil, nil, err
		}
	}
	sortDur(la)
	sortDur(lb)
	return la, lb, nil
}

// throughputSlice is how long one side runs before the other takes over in pairedThroughput.
const throughputSlice = 500 * time.Millisecond

// pairedThroughput measures calls per second of a and of b with the given callers, alternating
// between them in slices until each has run for dur.
func pairedThroughput(c *http.Client, a, b string, payload []byte, callers int, dur time.Duration) (float64, float64, error) {
	// A first, unmeasured slice each: the gateway starts an environment per extra caller.
	for _, url := range []string{a, b} {
		if _, _, err := throughput(c, url, payload, callers, throughputSlice); err != nil {
			return 0, 0, err
		}
	}
	var na, nb float64
	var ta, tb time.Duration
	for ta < dur {
		n, el, err := throughput(c, a, payload, callers, throughputSlice)
		if err != nil {
			return 0, 0, err
		}
		na, ta = na+n, ta+el
		n, el, err = throughput(c, b, payload, callers, throughputSlice)
		if err != nil {
			return 0, 0, err
		}
		nb, tb = nb+n, tb+el
	}
	return na / ta.Seconds(), nb / tb.Seconds(), nil
}

// throughput runs callers against url for dur; it returns the calls completed and the time taken.
func throughput(c *http.Client, url string, payload []byte, callers int, dur time.Duration) (float64, time.Duration, error) {
	var count atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := call(c, url, payload); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(count.Load()), time.Since(start), firstErr
}

// waitForStandby polls the agent's status until it shows a standby environment of the
// function's revision.
func waitForStandby(c *http.Client, base, function, revision string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.Get(base + "/v1/status")
		if err != nil {
			return err
		}
		var st struct {
			Environments []struct{ Function, Revision, State string }
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("reading /v1/status: %w", err)
		}
		for _, e := range st.Environments {
			if e.Function == function && e.Revision == revision && e.State == "standby" {
				return nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("no standby environment of %s revision %s after 10 s", function, revision)
}

// startSelf runs this binary as one of its helper processes (sub: echo-server, minimal-gateway,
// relay) listening on addr, killed with the bench (Pdeathsig), and waits until it answers HTTP.
func startSelf(c *http.Client, sub, addr string, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{sub, addr}, args...)...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s process: %w", sub, err)
	}
	if err := waitHTTP(c, "http://"+addr+"/", "POST"); err != nil {
		stopProc(cmd)
		return nil, fmt.Errorf("waiting for the %s process: %w", sub, err)
	}
	return cmd, nil
}

// stopProc kills a helper process and reaps it.
func stopProc(cmd *exec.Cmd) { _ = cmd.Process.Kill(); _ = cmd.Wait() }

func waitHTTP(c *http.Client, url, method string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(method, url, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("timed out waiting for " + url)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr() string {
	// From below the kernel's ephemeral range (32768-60999 by default): a port found by
	// listening on :0 can be handed to an outgoing connection before the agent binds it.
	for i := 0; i < 200; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	panic("no free port between 20000 and 32000")
}

func sortDur(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := len(d) * p / 100
	if i >= len(d) {
		i = len(d) - 1
	}
	return d[i]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
