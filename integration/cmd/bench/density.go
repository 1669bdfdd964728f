package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// benchDensity (-density N) puts N environments of a small function on one node: N functions
// on the same code folder (one environment each), each called once (a cold start), left to
// freeze, then each called once more. The second call must find its environment warm: the
// function's counter, kept in memory across the freeze, answers 2. It reports the time to
// create them, the thaw-and-call latency across them, the agent's memory and the environments'
// (the node's parent cgroup), and what grows per environment (the agent's fds, threads and
// goroutines, the kernel's cgroups). A failure is reported where it happened, with N kept.
func benchDensity(client *http.Client, gwBin, fnDir, tmp, driver string, po peersOpts) ([]string, error) {
	n := po.density
	httpAddr := freeAddr()
	dataDir := filepath.Join(tmp, "density-data")
	conf := fmt.Sprintf(`node_name = "density"
data_dir = %q
log_level = "warn"
debug { pprof = true }
http { address = %q }
cluster {
  address   = %q
  bootstrap = true
}
sandbox {
  driver           = %q
  max_environments = %d
  idle_timeout     = "1h"
}
`, dataDir, httpAddr, freeAddr(), driver, n+16)
	confPath := filepath.Join(tmp, "density-agent.hcl")
	if err := os.WriteFile(confPath, []byte(conf+agentProcsLine()), 0o644); err != nil {
		return nil, err
	}
	agent := exec.Command(gwBin, "agent", "-config", confPath)
	var agentLog lockedBuffer
	agent.Stderr = io.MultiWriter(os.Stderr, &agentLog)
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		return nil, err
	}
	pid := agent.Process.Pid
	stopped := false
	var shutdown time.Duration
	stopAgent := func() {
		if stopped {
			return
		}
		stopped = true
		t0 := time.Now()
		_ = agent.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = agent.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			_ = agent.Process.Kill()
			<-done
		}
		shutdown = time.Since(t0)
	}
	defer stopAgent()
	base := "http://" + httpAddr
	if err := waitHTTP(client, base+"/v1/health", "GET"); err != nil {
		return nil, err
	}
	cgroupsBefore := kernelCgroups()
	idle := densitySample(client, base, pid)

	var fnFile bytes.Buffer
	name := func(i int) string { return fmt.Sprintf("d%04d", i) }
	for i := 0; i < n; i++ {
		fmt.Fprintf(&fnFile, "function %q {\n  runtime = \"provided.al2023\"\n  code = %q\n  memory_mb = 128\n  timeout = \"10s\"\n}\n", name(i), fnDir)
	}
	fnPath := filepath.Join(tmp, "density-functions.hcl")
	if err := os.WriteFile(fnPath, fnFile.Bytes(), 0o644); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if b, err := exec.Command(gwBin, "apply", "-address", base, fnPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apply of %d functions: %v\n%s", n, err, b)
	}
	applyTime := time.Since(t0)
	fmt.Printf("density: applied %d functions in %.1f s\n", n, applyTime.Seconds())

	invoke := func(i int) (time.Duration, int, error) {
		url := base + "/2015-03-31/functions/" + name(i) + "/invocations"
		t0 := time.Now()
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"mode":"counter"}`))
		if err != nil {
			return 0, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
			return 0, 0, fmt.Errorf("%s: %s %s %s", name(i), resp.Status, resp.Header.Get("X-Amz-Function-Error"), b)
		}
		var c struct{ Count int }
		if err := json.Unmarshal(b, &c); err != nil {
			return 0, 0, fmt.Errorf("%s: %q: %w", name(i), b, err)
		}
		return d, c.Count, nil
	}

	// Create: every function called once, densityCallers at a time.
	var (
		mu       sync.Mutex
		cold     []time.Duration
		firstErr error
		failedAt = -1
		next     int
		peakRSS  int64
		hundreds []time.Duration // when each 100th environment had answered
	)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // the agent's peak VmRSS while the environments start
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
				if v, err := vmRSS(pid); err == nil {
					mu.Lock()
					peakRSS = max(peakRSS, v)
					mu.Unlock()
				}
			}
		}
	}()
	t0 = time.Now()
	var wg sync.WaitGroup
	for w := 0; w < max(po.densityCallers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := firstErr != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				d, count, err := invoke(i)
				mu.Lock()
				if err == nil && count != 1 {
					err = fmt.Errorf("%s: the first call's counter is %d, want 1", name(i), count)
				}
				if err != nil && firstErr == nil {
					firstErr, failedAt = err, i
				}
				if err == nil {
					cold = append(cold, d)
				}
				done := len(cold)
				if err == nil && done%100 == 0 {
					hundreds = append(hundreds, time.Since(t0))
				}
				mu.Unlock()
				if err == nil && done%100 == 0 {
					fmt.Printf("density: %d environments started in %.1f s\n", done, time.Since(t0).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	createTime := time.Since(t0)
	close(stopSampling)
	<-sampled
	sortDur(cold)
	fmt.Printf("density: %d environments started in %.1f s (cold p50 %.1f ms, p99 %.1f ms)\n", len(cold), createTime.Seconds(), ms(pct(cold, 50)), ms(pct(cold, 99)))

	// Frozen: freeze_delay is 0s, so each environment freezes once its call is answered.
	time.Sleep(po.densityWait)
	frozen := densitySample(client, base, pid)

	// Thaw: each environment called once more, one at a time.
	var thaw []time.Duration
	notWarm := 0
	var thawErr error
	agentCPU0, _ := procCPU(pid)
	envCPU0, _ := cgroupsCPU("lambdagw/density-*")
	thawStart := time.Now()
	if firstErr == nil {
		for i := 0; i < n; i++ {
			d, count, err := invoke(i)
			if err != nil {
				thawErr = fmt.Errorf("second call of %s: %w", name(i), err)
				break
			}
			if count != 2 {
				notWarm++
			}
			thaw = append(thaw, d)
		}
	}
	thawWall := time.Since(thawStart)
	agentCPU1, _ := procCPU(pid)
	envCPU1, _ := cgroupsCPU("lambdagw/density-*")
	sortDur(thaw)
	after := densitySample(client, base, pid)
	cgroupsAfter := kernelCgroups()
	stopAgent()
	cgroupsGone := kernelCgroups()
	fmt.Printf("density: thaw p50 %.0f µs p99 %.0f µs (%d calls, %d not warm); agent shut down in %.1f s\n", us(pct(thaw, 50)), us(pct(thaw, 99)), len(thaw), notWarm, shutdown.Seconds())

	// The report.
	var b strings.Builder
	fmt.Fprintf(&b, "## Density: %d frozen environments of a small function on one node\n\n", n)
	fmt.Fprintf(&b, "`%s`, %s UTC. %d functions (`d0000`...) on the same code folder (`internal/testfixtures/testfunction`,\n", commandLine(), time.Now().UTC().Format("2006-01-02 15:04"), n)
	fmt.Fprintf(&b, "aws-lambda-go, 128 MB, freeze_delay 0s: frozen as soon as each call is answered) applied in one file on one agent\n")
	fmt.Fprintf(&b, "(libcontainer, `max_environments = %d`, `idle_timeout = \"1h\"`, the rest default), each called once by %d\n", n+16, po.densityCallers)
	fmt.Fprintf(&b, "callers in parallel (creating its environment), left %s, then each called once more, one at a time: the\n", po.densityWait)
	b.WriteString("function's in-memory counter must answer 2 (the same environment, thawed, not a new one). Agent figures from\n")
	b.WriteString("/proc/<agent>/status and fd/, goroutines from its pprof endpoint; environments' memory from the node's parent\n")
	b.WriteString("cgroup (memory.usage_in_bytes, and total_rss from memory.stat); cgroups from /proc/cgroups (memory hierarchy).\n\n")
	b.WriteString("| measure | value | per environment |\n|---|---|---|\n")
	// Per environment: over every environment the node holds once they are frozen, the standby
	// environments it prepares for recently deployed revisions (sandbox { standby }) included.
	envs := float64(max(frozen.environments, 1))
	row := func(what, value, per string) { fmt.Fprintf(&b, "| %s | %s | %s |\n", what, value, per) }
	if firstErr != nil {
		row("**failed** while creating them", fmt.Sprintf("at function %d (%d environments running): %s", failedAt, len(cold), oneLine(firstErr.Error())), "")
	}
	if thawErr != nil {
		row("**failed** while calling them again", oneLine(thawErr.Error()), "")
	}
	row(fmt.Sprintf("`gateway apply` of the %d functions", n), fmt.Sprintf("%.1f s", applyTime.Seconds()), fmt.Sprintf("%.1f ms", ms(applyTime)/float64(n)))
	row(fmt.Sprintf("creating the environments: first call of each, %d in parallel, wall time", po.densityCallers), fmt.Sprintf("%.1f s (%d environments)", createTime.Seconds(), len(cold)), fmt.Sprintf("%.1f ms", ms(createTime)/envs))
	if len(hundreds) >= 2 {
		last := hundreds[len(hundreds)-1] - hundreds[len(hundreds)-2]
		row("creating them: the first 100 / the last 100", fmt.Sprintf("%.1f s / %.1f s", hundreds[0].Seconds(), last.Seconds()), "")
	}
	row("first call (cold start) p50 / p99", fmt.Sprintf("%.1f / %.1f ms", ms(pct(cold, 50)), ms(pct(cold, 99))), "")
	row(fmt.Sprintf("second call of each, frozen to answered (thaw + warm invoke), p50 / p99 over %d", len(thaw)), fmt.Sprintf("%.0f / %.0f µs", us(pct(thaw, 50)), us(pct(thaw, 99))), fmt.Sprintf("%d of them not warm", notWarm))
	if len(thaw) > 0 {
		k := float64(len(thaw))
		row("the second calls: agent / environments CPU per call (utime+stime; cpuacct), and their wall time",
			fmt.Sprintf("%.0f / %.0f µs; %.1f s", us(agentCPU1-agentCPU0)/k, us(envCPU1-envCPU0)/k, thawWall.Seconds()), "")
	}
	row("environments by state once frozen (agent status; the per-environment figures below divide by all of them)", fmt.Sprintf("%s (%d)", frozen.states, frozen.environments), "")
	row("agent VmRSS: idle, before the functions / peak while creating / all frozen / after the second calls", fmt.Sprintf("%.1f / %.1f / %.1f / %.1f MB", kb2mb(idle.rss), kb2mb(peakRSS), kb2mb(frozen.rss), kb2mb(after.rss)), fmt.Sprintf("%.0f kB (frozen - idle)", float64(frozen.rss-idle.rss)/envs))
	row("environments' memory, all frozen (node cgroup usage_in_bytes; total_rss)", fmt.Sprintf("%.1f MB; %.1f MB", b2mb(frozen.cgUsage), b2mb(frozen.cgRSS)), fmt.Sprintf("%.2f MB; %.2f MB", b2mb(frozen.cgUsage)/envs, b2mb(frozen.cgRSS)/envs))
	row("agent open fds: idle / all frozen", fmt.Sprintf("%d / %d (limit %s)", idle.fds, frozen.fds, frozen.fdLimit), fmt.Sprintf("%.1f", float64(frozen.fds-idle.fds)/envs))
	row("agent threads: idle / all frozen", fmt.Sprintf("%d / %d", idle.threads, frozen.threads), fmt.Sprintf("%.2f", float64(frozen.threads-idle.threads)/envs))
	row("agent goroutines: idle / all frozen", fmt.Sprintf("%d / %d", idle.goroutines, frozen.goroutines), fmt.Sprintf("%.1f", float64(frozen.goroutines-idle.goroutines)/envs))
	row("cgroups in the memory hierarchy: before / all frozen / after the agent's shutdown", fmt.Sprintf("%d / %d / %d", cgroupsBefore, cgroupsAfter, cgroupsGone), fmt.Sprintf("%.1f", float64(cgroupsAfter-cgroupsBefore)/envs))
	// Headroom: where the per-environment growth meets a limit on this node.
	if perFD := float64(frozen.fds-idle.fds) / envs; perFD > 0 {
		if soft, err := strconv.Atoi(strings.Fields(frozen.fdLimit + " x")[0]); err == nil {
			row("environments at which the agent's fds reach its limit (at the rate above)", fmt.Sprintf("~%.0f", float64(soft-idle.fds)/perFD), "")
		}
	}
	if perThread := float64(frozen.threads-idle.threads) / envs; perThread > 0 {
		row("environments at which the agent's threads reach Go's default limit of 10,000 (the process then dies)", fmt.Sprintf("~%.0f", float64(10000-idle.threads)/perThread), "")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		row("kernel.pid_max (every environment's processes and threads, the agent's threads, and the rest of the machine share it)", strings.TrimSpace(string(b)), "")
	}
	row("agent shutdown (SIGTERM to exit, every environment destroyed)", fmt.Sprintf("%.1f s", shutdown.Seconds()), "")
	if warn := agentWarnings(agentLog.String()); warn != "" {
		row("the agent's log while measuring (first warnings and errors)", warn, "")
	}
	return []string{b.String()}, nil
}

// densityFigures is one sample of the agent and its environments.
type densityFigures struct {
	rss                      int64 // kB
	fds, threads, goroutines int
	fdLimit                  string
	cgUsage, cgRSS           int64 // bytes
	states                   string
	environments             int // in the agent's status, every state
}

func densitySample(client *http.Client, base string, pid int) densityFigures {
	var f densityFigures
	f.rss, _ = vmRSS(pid)
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		f.fds = len(ents)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Threads:"); ok {
				f.threads, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				fl := strings.Fields(line)
				if len(fl) >= 5 {
					f.fdLimit = fl[3] + " soft, " + fl[4] + " hard"
				}
			}
		}
	}
	if resp, err := client.Get(base + "/debug/pprof/goroutine?debug=1"); err == nil {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		resp.Body.Close()
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total "); ok {
			f.goroutines, _ = strconv.Atoi(v)
		}
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/memory/lambdagw/density-*"); len(dirs) > 0 {
		if b, err := os.ReadFile(filepath.Join(dirs[0], "memory.usage_in_bytes")); err == nil {
			f.cgUsage, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
		if b, err := os.ReadFile(filepath.Join(dirs[0], "memory.stat")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "total_rss "); ok {
					f.cgRSS, _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
	} else if dirs, _ := filepath.Glob("/sys/fs/cgroup/lambdagw/density-*"); len(dirs) > 0 { // v2
		if b, err := os.ReadFile(filepath.Join(dirs[0], "memory.current")); err == nil {
			f.cgUsage, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
		if b, err := os.ReadFile(filepath.Join(dirs[0], "memory.stat")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "anon "); ok {
					f.cgRSS, _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
	}
	if resp, err := client.Get(base + "/v1/status"); err == nil {
		var st struct{ Environments []struct{ State string } }
		if json.NewDecoder(resp.Body).Decode(&st) == nil {
			count := map[string]int{}
			for _, e := range st.Environments {
				count[e.State]++
			}
			f.environments = len(st.Environments)
			var parts []string
			for s, c := range count {
				parts = append(parts, fmt.Sprintf("%s %d", s, c))
			}
			sort.Strings(parts)
			f.states = strings.Join(parts, ", ")
		}
		resp.Body.Close()
	}
	return f
}

// kernelCgroups is the number of cgroups in the memory hierarchy (/proc/cgroups).
func kernelCgroups() int {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "memory" {
			n, _ := strconv.Atoi(f[2])
			return n
		}
	}
	return 0
}

// agentWarnings picks the first few warning and error lines of the agent's log.
func agentWarnings(log string) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, " is open") { // the open API and cluster port: expected here
			continue
		}
		if strings.Contains(l, "[warn") || strings.Contains(l, "[erro") || strings.Contains(l, "error") {
			out = append(out, "`"+oneLine(line)+"`")
			if len(out) == 3 {
				break
			}
		}
	}
	return strings.Join(out, "<br>")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func kb2mb(kb int64) float64 { return float64(kb) / 1024 }
func b2mb(b int64) float64   { return float64(b) / (1 << 20) }

// lockedBuffer collects a process's stderr safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
