package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The peer rows (-peers) put the gateway beside the field's standard local Lambda runner, the
// AWS Lambda Runtime Interface Emulator (RIE), with the field's standard HTTP load generator,
// wrk, driving all three systems the same way: the direct server (the bench's floor: a plain Go
// HTTP server echoing the body), RIE running the same aws-lambda-go function as its child, and
// the gateway agent running it in a libcontainer sandbox (freezer on, default settings). wrk
// runs pinned to one CPU and the system under test to the other, so neither steals the other's
// cycles and the server's CPU per call is its own.

// rieModule is the RIE the module proxy serves; -peers installs it into .tools/bin when missing.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// peersOpts sizes the peer and density measurements.
type peersOpts struct {
	dur     time.Duration // each wrk run
	rounds  int           // rounds of wrk runs, the systems taking turns
	cold    int           // cold starts of each system
	density int           // environments of the density measurement (0: skipped)
	// densityCallers start the density environments in parallel (the warm-up calls).
	densityCallers int
	// densityWait is how long the environments stay frozen after the last is created.
	densityWait time.Duration
}

var peersFlag, peersOnly, densityOnly bool

// The load generator's CPU and the system under test's.
const (
	loadCPU   = 0
	serverCPU = 1
)

// ensureRIE returns the path of aws-lambda-rie, installed into .tools/bin when missing.
func ensureRIE() (string, error) { return ensureTool("aws-lambda-rie", rieModule) }

// wrkResult is what one wrk run reports.
type wrkResult struct {
	requests      float64
	seconds       float64
	p50, p99      time.Duration
	errors        int
	serverCPU     time.Duration // the system under test's CPU during the run
	machineBusy   float64
	loadGenCPU    time.Duration
	nonSuccessful int
}

var (
	wrkReqs    = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m),`)
	wrkPct     = regexp.MustCompile(`^\s*(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func wrkUnit(v float64, unit string) time.Duration {
	switch unit {
	case "us":
		return time.Duration(v * float64(time.Microsecond))
	case "ms":
		return time.Duration(v * float64(time.Millisecond))
	case "m":
		return time.Duration(v * float64(time.Minute))
	}
	return time.Duration(v * float64(time.Second))
}

// parseWrk reads wrk --latency's report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkReqs.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no request count in wrk's output:\n%s", out)
	}
	r.requests, _ = strconv.ParseFloat(m[1], 64)
	v, _ := strconv.ParseFloat(m[2], 64)
	r.seconds = wrkUnit(v, m[3]).Seconds()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if p := wrkPct.FindStringSubmatch(sc.Text()); p != nil {
			v, _ := strconv.ParseFloat(p[2], 64)
			if p[1] == "50" {
				r.p50 = wrkUnit(v, p[3])
			} else {
				r.p99 = wrkUnit(v, p[3])
			}
		}
	}
	if r.p50 == 0 || r.p99 == 0 {
		return r, fmt.Errorf("no latency distribution in wrk's output:\n%s", out)
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.nonSuccessful, _ = strconv.Atoi(m[1])
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.errors += n
		}
	}
	return r, nil
}

// runWrk runs wrk pinned to loadCPU (threads threads, conns connections, --latency, the POST body of
// script) against url for dur (whole seconds, wrk's unit), reading the server's CPU (read) before and after.
func runWrk(script, url string, threads, conns int, dur time.Duration, read func() (time.Duration, error)) (wrkResult, error) {
	cpu0, err := read()
	if err != nil {
		return wrkResult{}, err
	}
	busy0, total0, _ := machineCPU()
	cmd := exec.Command("taskset", "-c", strconv.Itoa(loadCPU), "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		fmt.Sprintf("-d%ds", max(int(dur.Round(time.Second).Seconds()), 1)), "--latency", "-s", script, url)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	busy1, total1, _ := machineCPU()
	cpu1, rerr := read()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %v\n%s", url, err, out.String())
	}
	if rerr != nil {
		return wrkResult{}, rerr
	}
	r, err := parseWrk(out.String())
	if err != nil {
		return r, err
	}
	if r.nonSuccessful > 0 || r.errors > 0 {
		return r, fmt.Errorf("wrk %s, %d connections: %d non-2xx responses, %d socket errors of %.0f requests", url, conns, r.nonSuccessful, r.errors, r.requests)
	}
	r.serverCPU = cpu1 - cpu0
	r.machineBusy = float64(busy1-busy0) / float64(max(total1-total0, 1))
	if ps := cmd.ProcessState; ps != nil {
		r.loadGenCPU = ps.UserTime() + ps.SystemTime()
	}
	return r, nil
}

// pinCgroupTasks moves every task of the cgroups under the cpuset (v1) or unified (v2)
// hierarchy matching glob onto cpu. Joining a cpuset cgroup resets a task's affinity to the
// cgroup's CPUs; the libcontainer driver takes each environment's cpuset from the agent's own
// affinity, so the runtimes are on the agent's CPU already, and this makes sure of it whatever
// the driver does.
func pinCgroupTasks(glob string, cpu int) (int, error) {
	var set unix.CPUSet
	set.Set(cpu)
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/cpuset", glob))
	if len(roots) == 0 {
		roots, _ = filepath.Glob(filepath.Join("/sys/fs/cgroup", glob))
	}
	n := 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || (d.Name() != "tasks" && d.Name() != "cgroup.threads") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(b)) {
				tid, err := strconv.Atoi(f)
				if err != nil {
					continue
				}
				if unix.SchedSetaffinity(tid, &set) == nil {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// treeCPU is the CPU time of pid and of its living descendants.
func treeCPU(pid int) (time.Duration, error) {
	sum, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parents := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := procStat(p); err == nil {
			pp, _ := strconv.Atoi(f[1])
			parents[p] = pp
		}
	}
	for p := range parents {
		for q := parents[p]; q > 1; q = parents[q] {
			if q == pid {
				if d, err := procCPU(p); err == nil {
					sum += d
				}
				break
			}
		}
	}
	return sum, nil
}

// peerSystem is one system under test.
type peerSystem struct {
	name, path string
	url        string
	cpu        func() (time.Duration, error)
	// part, when set, is the CPU time of the system's own server alone (the gateway's agent,
	// without its environments), sampled around each run into partCPU (µs, per caller count).
	part     func() (time.Duration, error)
	partCPU  map[int]float64
	partReqs map[int]float64
	before   func() error // run before each wrk run (the gateway re-pins its runtimes)
	runs     map[int][]wrkResult
	coldNote string
	cold     []time.Duration
	// single: the system serves one invocation at a time: at 4 callers, wrk runs script4 with 4
	// threads of one connection each, each thread on its own instance (cpu4 their CPU time).
	single  string
	script4 string
	cpu4    func() (time.Duration, error)
}

// startPinned starts name on serverCPU (taskset execs it: the pid is the server's), stdout to
// stdout when not nil.
func startPinned(stdout io.Writer, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("taskset", append([]string{"-c", strconv.Itoa(serverCPU), name}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, cmd.Start()
}

// waitPort waits until something accepts TCP connections on addr, polling every 200 µs.
func waitPort(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(200 * time.Microsecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, limit)
}

// benchPeers measures the direct server, RIE and the gateway with wrk, and their cold starts.
func benchPeers(client *http.Client, gwBin, fnDir, tmp, driver string, po peersOpts) ([]string, error) {
	if runtime.NumCPU() < 2 {
		return nil, errors.New("-peers pins the load generator and the server to different CPUs: it needs 2 CPUs")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, errors.New("-peers needs wrk (Debian package wrk; make deps installs it)")
	}
	rie, err := ensureRIE()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	payload := `{"mode":"hello","name":"bench"}`
	script := filepath.Join(tmp, "post.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = '%s'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", payload)), 0o644); err != nil {
		return nil, err
	}
	bootstrap := filepath.Join(fnDir, "bootstrap")

	// The direct server.
	echoAddr := freeAddr()
	echo, err := startPinned(nil, self, "echo-server", echoAddr)
	if err != nil {
		return nil, err
	}
	defer stopProc(echo)
	// RIE with the function as its child. It logs START/END/REPORT lines per call, as the gateway
	// does; they go to /dev/null.
	rieAddr := freeAddr()
	rieArgs := func(addr string) []string {
		return []string{"--log-level", "error", "--runtime-interface-emulator-address", addr,
			"--runtime-api-address", freeAddr(), bootstrap}
	}
	rieCmd, err := startPinned(devNull, rie, rieArgs(rieAddr)...)
	if err != nil {
		return nil, err
	}
	defer stopProc(rieCmd)
	// RIE serves one call at a time; for 4 callers, 4 emulators (as Lambda would run 4
	// environments), each wrk thread on its own.
	rieCmds := []*exec.Cmd{rieCmd}
	var riePorts []string
	for i := 0; i < 4; i++ {
		addr := rieAddr
		if i > 0 {
			addr = freeAddr()
			c, err := startPinned(devNull, rie, rieArgs(addr)...)
			if err != nil {
				return nil, err
			}
			defer stopProc(c)
			rieCmds = append(rieCmds, c)
		}
		if err := waitPort(addr, 10*time.Second); err != nil {
			return nil, err
		}
		riePorts = append(riePorts, strings.TrimPrefix(addr, "127.0.0.1:"))
	}
	script4 := filepath.Join(tmp, "post-4-rie.lua")
	lua4 := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = '%s'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", payload) +
		fmt.Sprintf("local ports = {\"%s\"}\nlocal n = 0\nfunction setup(thread)\n  n = n + 1\n  thread.addr = wrk.lookup(\"127.0.0.1\", ports[n])[1]\nend\n", strings.Join(riePorts, "\", \""))
	if err := os.WriteFile(script4, []byte(lua4), 0o644); err != nil {
		return nil, err
	}
	// The gateway agent, default settings but for its addresses.
	ag, err := startBenchAgent(client, gwBin, tmp, "peers", driver, "")
	if err != nil {
		return nil, err
	}
	defer ag.stop()
	agent, base := ag.cmd, ag.base
	fnPath := filepath.Join(tmp, "peers-functions.hcl")
	fnHCL := fmt.Sprintf("function \"noop\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  memory_mb = 128\n  timeout = \"10s\"\n}\nfunction \"cold\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  memory_mb = 128\n  timeout = \"10s\"\n}\n", fnDir, fnDir)
	if err := os.WriteFile(fnPath, []byte(fnHCL), 0o644); err != nil {
		return nil, err
	}
	if b, err := exec.Command(gwBin, "apply", "-address", base, fnPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apply: %v\n%s", err, b)
	}
	invokePath := "/2015-03-31/functions/%s/invocations"
	cgroupGlob := "lambdagw/peers-*"
	systems := []*peerSystem{
		{name: "direct server (plain Go HTTP server echoing the body)", path: "POST /", url: "http://" + echoAddr + "/",
			cpu: func() (time.Duration, error) { return procCPU(echo.Process.Pid) }},
		{name: "AWS Lambda RIE (`aws-lambda-rie`, function as its child)", path: "Invoke API `POST " + fmt.Sprintf(invokePath, "function") + "`",
			url:     "http://" + rieAddr + fmt.Sprintf(invokePath, "function"),
			cpu:     func() (time.Duration, error) { return treeCPU(rieCmd.Process.Pid) },
			single:  "4 emulators, one per caller",
			script4: script4,
			cpu4: func() (time.Duration, error) {
				var sum time.Duration
				for _, c := range rieCmds {
					d, err := treeCPU(c.Process.Pid)
					if err != nil {
						return 0, err
					}
					sum += d
				}
				return sum, nil
			}},
		{name: "gateway agent (libcontainer, freezer on, default settings)", path: "Invoke API `POST " + fmt.Sprintf(invokePath, "noop") + "`",
			url: base + fmt.Sprintf(invokePath, "noop"),
			cpu: func() (time.Duration, error) {
				a, err := procCPU(agent.Process.Pid)
				if err != nil {
					return 0, err
				}
				e, err := cgroupsCPU(cgroupGlob)
				return a + e, err
			},
			part:   func() (time.Duration, error) { return procCPU(agent.Process.Pid) },
			before: func() error { _, err := pinCgroupTasks(cgroupGlob, serverCPU); return err }},
	}
	// A first call and an unrecorded wrk run at 4 connections each (the gateway starts an
	// environment per caller), then the runtimes are pinned.
	for _, s := range systems {
		if _, err := call(client, s.url, []byte(payload)); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		script, threads, cpu := script, 1, s.cpu
		if s.single != "" {
			script, threads, cpu = s.script4, 4, s.cpu4
		}
		if _, err := runWrk(script, s.url, threads, 4, time.Second, cpu); err != nil {
			return nil, fmt.Errorf("%s, warm-up: %w", s.name, err)
		}
		s.runs = map[int][]wrkResult{}
		s.partCPU, s.partReqs = map[int]float64{}, map[int]float64{}
	}
	for round := 0; round < po.rounds; round++ {
		for _, conns := range []int{1, 4} {
			for _, s := range systems {
				script, threads, cpu := script, 1, s.cpu
				if conns > 1 && s.single != "" {
					script, threads, cpu = s.script4, conns, s.cpu4
				}
				if s.before != nil {
					if err := s.before(); err != nil {
						return nil, err
					}
				}
				var part0 time.Duration
				if s.part != nil {
					if part0, err = s.part(); err != nil {
						return nil, err
					}
				}
				r, err := runWrk(script, s.url, threads, conns, po.dur, cpu)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", s.name, err)
				}
				if s.part != nil {
					part1, err := s.part()
					if err != nil {
						return nil, err
					}
					s.partCPU[conns] += us(part1 - part0)
					s.partReqs[conns] += r.requests
				}
				s.runs[conns] = append(s.runs[conns], r)
				fmt.Printf("peers round %d, %d caller(s), %-60s %8.0f/s p50 %7.0f µs p99 %7.0f µs server CPU %5.0f µs/call (wrk %3.0f µs/call), machine %3.0f%% busy\n",
					round+1, conns, s.name, r.requests/r.seconds, us(r.p50), us(r.p99), us(r.serverCPU)/r.requests, us(r.loadGenCPU)/r.requests, 100*r.machineBusy)
			}
		}
	}

	// Cold starts. The direct server and RIE: a fresh process (pinned as above) from its start to
	// its first response. The gateway: a configuration update (a new revision: its environment
	// is retired) and the next call, from the call to its response, sent at once (racing the
	// standby environment the node prepares for a new revision) and once the standby is ready.
	coldProc := func(start func(addr string) (*exec.Cmd, error), urlOf func(addr string) string) (time.Duration, error) {
		addr := freeAddr()
		t0 := time.Now()
		cmd, err := start(addr)
		if err != nil {
			return 0, err
		}
		defer stopProc(cmd)
		if err := waitPort(addr, 10*time.Second); err != nil {
			return 0, err
		}
		c := &http.Client{Transport: &http.Transport{}}
		defer c.CloseIdleConnections()
		if _, err := call(c, urlOf(addr), []byte(payload)); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	var coldReady []time.Duration
	for i := 0; i < po.cold; i++ {
		d, err := coldProc(func(addr string) (*exec.Cmd, error) { return startPinned(nil, self, "echo-server", addr) },
			func(addr string) string { return "http://" + addr + "/" })
		if err != nil {
			return nil, fmt.Errorf("direct server cold start: %w", err)
		}
		systems[0].cold = append(systems[0].cold, d)
		d, err = coldProc(func(addr string) (*exec.Cmd, error) { return startPinned(devNull, rie, rieArgs(addr)...) },
			func(addr string) string { return "http://" + addr + fmt.Sprintf(invokePath, "function") })
		if err != nil {
			return nil, fmt.Errorf("RIE cold start: %w", err)
		}
		systems[1].cold = append(systems[1].cold, d)
		for _, waitStandby := range []bool{false, true} {
			d, err := gatewayCold(client, base, fmt.Sprintf("%d-%t", i, waitStandby), waitStandby, payload)
			if err != nil {
				return nil, fmt.Errorf("gateway cold start: %w", err)
			}
			if waitStandby {
				coldReady = append(coldReady, d)
			} else {
				systems[2].cold = append(systems[2].cold, d)
			}
		}
	}
	for _, s := range systems {
		sortDur(s.cold)
	}
	sortDur(coldReady)
	systems[0].coldNote = "process start to first response"
	systems[1].coldNote = "process start to first response"
	systems[2].coldNote = fmt.Sprintf("new revision, invoke to response; %.1f ms with the standby environment ready", ms(pct(coldReady, 50)))

	return peerTable(systems, po), nil
}

// gatewayCold updates the cold function's configuration (a new revision) and times its next call.
func gatewayCold(client *http.Client, base, run string, waitStandby bool, payload string) (time.Duration, error) {
	body := fmt.Sprintf(`{"Environment":{"Variables":{"RUN":%q}}}`, run)
	req, _ := http.NewRequest("PUT", base+"/2015-03-31/functions/cold/configuration", strings.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	var conf struct{ RevisionId string }
	err = jsonDecode(resp, &conf)
	if resp.StatusCode != 200 || err != nil {
		return 0, fmt.Errorf("updating configuration: %s %v", resp.Status, err)
	}
	if waitStandby {
		if err := waitForStandby(client, base, "cold", conf.RevisionId); err != nil {
			return 0, err
		}
	}
	t0 := time.Now()
	if _, err := call(client, base+"/2015-03-31/functions/cold/invocations", []byte(payload)); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// peerStats sums a system's runs at one caller count.
type peerStats struct {
	rate, p50, p99, cpu, wrkCPU, busy float64
}

func summarize(runs []wrkResult) peerStats {
	if len(runs) == 0 {
		return peerStats{}
	}
	var reqs, secs, cpu, wrkCPU, busy float64
	var p50s, p99s []float64
	for _, r := range runs {
		reqs += r.requests
		secs += r.seconds
		cpu += us(r.serverCPU)
		wrkCPU += us(r.loadGenCPU)
		busy += r.machineBusy
		p50s = append(p50s, us(r.p50))
		p99s = append(p99s, us(r.p99))
	}
	return peerStats{rate: reqs / secs, p50: median(p50s), p99: median(p99s), cpu: cpu / reqs, wrkCPU: wrkCPU / reqs, busy: busy / float64(len(runs))}
}

// peerTable writes the peers section: one row per system, figures, ratios to the direct server
// and µs added over it; the of-watchdog reference figures from issue 16 below, measured apart.
func peerTable(systems []*peerSystem, po peersOpts) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Peers: the same function behind the direct server, the AWS Lambda RIE and the gateway\n\n")
	fmt.Fprintf(&b, "`%s`, %s UTC. wrk 4 (`wrk -t1 -c1` and `-c4`, `--latency`, a Lua script POSTing `%s`) pinned with\n", commandLine(), time.Now().UTC().Format("2006-01-02 15:04"), `{"mode":"hello","name":"bench"}`)
	fmt.Fprintf(&b, "`taskset -c %d`; the system under test on CPU %d (`taskset -c %d`, its children and the gateway's sandboxed runtimes\n", loadCPU, serverCPU, serverCPU)
	fmt.Fprintf(&b, "too). %d rounds, the systems taking turns, %s per wrk run; latency percentiles are the median of the runs' wrk\n", po.rounds, po.dur)
	b.WriteString("percentiles, requests/s the total over the runs. Server CPU per call: utime+stime from /proc/<pid>/stat of the\n")
	b.WriteString("server (direct), RIE and its child (RIE), the agent plus its environments' cgroups' cpuacct (gateway), over\n")
	b.WriteString("the requests served. The function is `internal/testfixtures/testfunction` (aws-lambda-go) for RIE and the gateway (128 MB);\n")
	b.WriteString("the direct server runs no function code: it is the floor of one HTTP hop on this machine. Each server sees one\n")
	b.WriteString("CPU (Go's GOMAXPROCS follows the affinity: 1 for the direct server, RIE, the function and the agent).\n\n")
	b.WriteString("| system | invoke path | p50 (added over direct, ratio) | p99 (added, ratio) | req/s, 1 caller (% of direct) | req/s, 4 callers (% of direct) | server CPU per call, 1 / 4 callers (added over direct) | cold start p50 / p99 |\n|---|---|---|---|---|---|---|---|\n")
	d1, d4 := summarize(systems[0].runs[1]), summarize(systems[0].runs[4])
	for i, s := range systems {
		s1, s4 := summarize(s.runs[1]), summarize(s.runs[4])
		added := func(v, floor float64) string {
			if i == 0 {
				return ""
			}
			return fmt.Sprintf(" (%+.0f µs, %.2fx)", v-floor, v/floor)
		}
		pctOf := func(v, floor float64) string {
			if i == 0 {
				return ""
			}
			return fmt.Sprintf(" (%.1f%%)", 100*v/floor)
		}
		cpuAdded := ""
		if i > 0 {
			cpuAdded = fmt.Sprintf(" (%+.0f / %+.0f)", s1.cpu-d1.cpu, s4.cpu-d4.cpu)
		}
		rate4 := fmt.Sprintf("%.0f%s", s4.rate, pctOf(s4.rate, d4.rate))
		cpu := fmt.Sprintf("%.0f / %.0f µs%s", s1.cpu, s4.cpu, cpuAdded)
		if s.single != "" {
			rate4 += " (" + s.single + ", `wrk -t4 -c4`, a thread on each)"
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f µs%s | %.0f µs%s | %.0f%s | %s | %s | %.1f / %.1f ms (%s) |\n",
			s.name, s.path, s1.p50, added(s1.p50, d1.p50), s1.p99, added(s1.p99, d1.p99),
			s1.rate, pctOf(s1.rate, d1.rate), rate4, cpu,
			ms(pct(s.cold, 50)), ms(pct(s.cold, 99)), s.coldNote)
		fmt.Printf("peers: %-60s p50 %.0f µs p99 %.0f µs, %.0f/s (1), %.0f/s (4), CPU %.0f/%.0f µs/call, cold p50 %.1f ms\n",
			s.name, s1.p50, s1.p99, s1.rate, s4.rate, s1.cpu, s4.cpu, ms(pct(s.cold, 50)))
	}
	b.WriteString("| OpenFaaS of-watchdog (reference, issue 16: not served by the module proxy, measured apart with wrk pinned the same way; direct server then 66 µs p50, 13.8k/s and 72.5k/s) | its HTTP mode | 251 µs (+185 µs, 3.80x) | | 4.0k (29.0%) | 6.9k (9.5%) | 206 µs at 4 callers | |\n")
	g1, g4 := summarize(systems[2].runs[1]), summarize(systems[2].runs[4])
	gw := systems[2]
	r1 := summarize(systems[1].runs[1])
	b.WriteString("\nRIE serves one invocation at a time (one environment, as Lambda's): a second concurrent call crashes this version\n")
	b.WriteString("(a nil dereference after a failed Reserve, `internal/lambda/rapidcore/server.go:666`), so its 4-caller figures come from 4\n")
	b.WriteString("emulators, one per caller, as Lambda would run 4 environments; the gateway starts 4 environments by itself.\n")
	b.WriteString("\nAgainst the targets of issue 16 (this run):\n\n| target | this run | |\n|---|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	fmt.Fprintf(&b, "| gateway p50 added <= +150 µs and below every peer's (RIE %+.0f µs, of-watchdog +185 µs) | %+.0f µs | %s |\n",
		r1.p50-d1.p50, g1.p50-d1.p50, verdict(g1.p50-d1.p50 <= 150 && g1.p50-d1.p50 < r1.p50-d1.p50 && g1.p50-d1.p50 < 185))
	fmt.Fprintf(&b, "| req/s at 4 callers >= 14%% of direct | %.1f%% | %s |\n", 100*g4.rate/d4.rate, verdict(g4.rate/d4.rate >= 0.14))
	agent4, agent1 := gw.partCPU[4]/max(gw.partReqs[4], 1), gw.partCPU[1]/max(gw.partReqs[1], 1)
	fmt.Fprintf(&b, "| agent CPU per warm call <= 120 µs, 4 callers (agent and runtime together: %.0f µs) | %.0f µs (1 caller: %.0f µs) | %s |\n",
		g4.cpu, agent4, agent1, verdict(agent4 <= 120))
	if rawVsRelay > 0 {
		fmt.Fprintf(&b, "| a large stream from the custom runtime writing 1 MB chunks >= 90%% of the bare TCP relay's MB/s (function URL rows above) | %.0f%% | %s |\n", 100*rawVsRelay, verdict(rawVsRelay >= 0.9))
	} else {
		b.WriteString("| a large stream from the custom runtime writing 1 MB chunks >= 90% of the bare TCP relay's MB/s | not measured in this run: the function URL rows (`make bench`, `-streaming-only`) measure it | |\n")
	}
	if po.density > 0 {
		b.WriteString("| density: 1,000 frozen environments each answering its next call warm | the density section below | |\n")
	} else {
		b.WriteString("| density: 1,000 frozen environments each answering its next call warm | not measured in this run (`-density 0`) | |\n")
	}
	fmt.Fprintf(&b, "\nThe load generator used %.0f µs of CPU per call against the direct server, %.0f against RIE, %.0f against the gateway (1 caller).\n",
		d1.wrkCPU, r1.wrkCPU, g1.wrkCPU)
	return []string{b.String()}
}

// commandLine is the bench's command line as run.
func commandLine() string {
	return "go run ./integration/cmd/bench " + strings.Join(os.Args[1:], " ")
}

// rawVsRelay is the custom runtime's stream over the TCP relay's, when the streaming rows ran.
var rawVsRelay float64

// extraSections are Markdown sections written after the main table (the peer and density rows).
var extraSections []string

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// peersOpt holds the -peers flags.
var peersOpt peersOpts

// benchPeersAndDensity measures the peer rows (unless -density-only) and the density rows
// (unless -density 0) into extraSections.
func benchPeersAndDensity(client *http.Client, gwBin, fnDir, tmp, driver string) error {
	if !densityOnly {
		s, err := benchPeers(client, gwBin, fnDir, tmp, driver, peersOpt)
		if err != nil {
			return fmt.Errorf("peers: %w", err)
		}
		extraSections = append(extraSections, s...)
	}
	if !densityOnly && imagesOpt.cold > 0 {
		s, err := benchImages(client, gwBin, tmp, driver, imagesOpt)
		if err != nil {
			return fmt.Errorf("images: %w", err)
		}
		extraSections = append(extraSections, s...)
	}
	if peersOpt.density > 0 {
		s, err := benchDensity(client, gwBin, fnDir, tmp, driver, peersOpt)
		if err != nil {
			return fmt.Errorf("density: %w", err)
		}
		extraSections = append(extraSections, s...)
	}
	return nil
}
