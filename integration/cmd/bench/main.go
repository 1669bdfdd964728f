// Command bench measures the gateway against a floor measured in the same run: a plain Go HTTP
// echo server called directly. It starts a real agent (bin/gateway, libcontainer driver), applies
// a no-op aws-lambda-go function, and writes the figures to a Markdown file.
//
//	go run ./integration/cmd/bench -out docs/BENCHMARKS.md
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
	var (
		out      = flag.String("out", "docs/BENCHMARKS.md", "Markdown file to write")
		gwBin    = flag.String("gateway", "bin/gateway", "gateway binary")
		fnDir    = flag.String("function", "", "code folder of the no-op function (default: build internal/testfunction)")
		warmN    = flag.Int("n", 5000, "invocations per latency measurement")
		duration = flag.Duration("duration", 5*time.Second, "duration of each throughput measurement")
		coldN    = flag.Int("cold", 30, "cold starts to measure")
		delay    = flag.String("freeze-delay", "", "freeze_delay of the function (default: measure 0s and 100ms)")
		driver   = flag.String("driver", "libcontainer", "sandbox driver of the agent")
		profile  = flag.String("cpuprofile", "", "write the agent's CPU profile during the first 4-caller throughput run to this file")
	)
	flag.Parse()
	if err := run(*out, *gwBin, *fnDir, *driver, *profile, *warmN, *coldN, *duration, *delay); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

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

func run(outPath, gwBin, fnDir, driver, cpuProfile string, warmN, coldN int, dur time.Duration, delay string) error {
	tmp, err := os.MkdirTemp("", "gateway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if fnDir == "" {
		fnDir = filepath.Join(tmp, "fn")
		cmd := exec.Command("go", "build", "-o", filepath.Join(fnDir, "bootstrap"), "./internal/testfunction")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building the function: %v\n%s", err, b)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	// The floor: a plain Go HTTP server in its own process.
	echoAddr := freeAddr()
	self, _ := os.Executable()
	echo := exec.Command(self, "echo-server", echoAddr)
	echo.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := echo.Start(); err != nil {
		return err
	}
	defer func() { _ = echo.Process.Kill(); _ = echo.Wait() }()
	echoURL := "http://" + echoAddr + "/"
	if err := waitHTTP(client, echoURL, "POST"); err != nil {
		return err
	}

	httpAddr := freeAddr()
	conf := fmt.Sprintf(`node_name = "bench"
data_dir = %q
log_level = "warn"
enable_debug = true
http { address = %q }
cluster {
  address   = %q
  bootstrap = true
}
sandbox { driver = %q }
`, filepath.Join(tmp, "data"), httpAddr, freeAddr(), driver)
	confPath := filepath.Join(tmp, "agent.hcl")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	agent := exec.Command(gwBin, "agent", "-config", confPath)
	agent.Stderr = os.Stderr
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { _ = agent.Process.Signal(syscall.SIGTERM); _ = agent.Wait() }()
	base := "http://" + httpAddr
	if err := waitHTTP(client, base+"/v1/health", "GET"); err != nil {
		return err
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

	return writeReport(outPath, rows)
}

// notesMarker starts the hand-written part of the report, which a new run keeps.
const notesMarker = "<!-- notes: kept across runs -->"

func writeReport(path string, rows []string) error {
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nMade by `make bench` (`go run ./integration/cmd/bench -out docs/BENCHMARKS.md`) on %s, %s,\n", host, time.Now().UTC().Format("2006-01-02"))
	b.WriteString("with the libcontainer driver. The floor is a plain Go HTTP server echoing the request body, in its own\n")
	b.WriteString("process, called the same way (keep-alive HTTP/1.1 on loopback) in the same run. The function is a\n")
	b.WriteString("no-op aws-lambda-go handler (`internal/testfunction`, 128 MB). `freeze_delay 0s` freezes the environment\n")
	b.WriteString("after every invocation (thaw included in the next call); `100ms` keeps it thawed between back-to-back calls.\n\n")
	b.WriteString("| measure | gateway | floor | ratio |\n|---|---|---|---|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
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

func echoServer(addr string) {
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})}
	_ = srv.ListenAndServe()
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

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
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
