package main

// The control-plane and admission measurements: applying many functions with the CLI, against
// applying one in the same run, and the cost of a reserved concurrency limit on a warm call,
// against the same function without one. Both run after the other measurements.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// controlOpts sizes the apply and admission measurements.
type controlOpts struct {
	applyN, applyRuns, admissionN, admissionLimit int
}

// functionBlock is the HCL of a no-op function on the bench's code folder.
func functionBlock(name, fnDir, freezeDelay string) string {
	s := fmt.Sprintf("function %q {\n  runtime   = \"provided.al2023\"\n  code      = %q\n  memory_mb = 128\n  timeout   = \"10s\"\n", name, fnDir)
	if freezeDelay != "" {
		s += fmt.Sprintf("  freeze_delay = %q\n", freezeDelay)
	}
	return s + "}\n"
}

// cliRun is one run of the gateway CLI: its wall time, CPU time and output.
type cliRun struct {
	wall, cpu time.Duration
	out       string
}

// runCLI runs the gateway binary with args and wants exit status 0 and an output containing want.
func runCLI(gwBin, want string, args ...string) (cliRun, error) {
	cmd := exec.Command(gwBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	r := cliRun{wall: time.Since(t0), out: out.String()}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return r, fmt.Errorf("gateway %s: %v\n%s", strings.Join(args, " "), err, tail(r.out))
	}
	if !strings.Contains(r.out, want) {
		return r, fmt.Errorf("gateway %s: output lacks %q:\n%s", strings.Join(args, " "), want, tail(r.out))
	}
	return r, nil
}

func tail(s string) string {
	if lines := strings.Split(strings.TrimSpace(s), "\n"); len(lines) > 20 {
		return "...\n" + strings.Join(lines[len(lines)-20:], "\n")
	}
	return s
}

// apiDo sends a management API request and wants a 2xx answer, whose body it returns.
func apiDo(c *http.Client, method, url, body string) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("%s %s: %s %s", method, url, resp.Status, b)
	}
	return b, err
}

// agentCPU is the agent's own CPU time so far (utime + stime of /proc/<pid>/stat; environments
// are other processes and not counted).
func agentCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/pid/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/pid/stat")
	}
	// After the command: state(3) ... utime(14) stime(15); f[0] is field 3.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// settle waits until the agent has finished the background work a deploy starts (standby
// environments prepared, retired ones shut down): its own CPU use stays at or under 4% (one
// 10 ms clock tick) over a 250 ms window. It returns how long that took (0 when quiet at once), bounded by 60 s.
func settle(pid int) (time.Duration, error) {
	t0 := time.Now()
	const window = 250 * time.Millisecond
	for time.Since(t0) < 60*time.Second {
		c0, err := agentCPU(pid)
		if err != nil {
			return 0, err
		}
		time.Sleep(window)
		c1, err := agentCPU(pid)
		if err != nil {
			return 0, err
		}
		if c1-c0 <= window/25 {
			return time.Since(t0) - window, nil
		}
	}
	return time.Since(t0), errors.New("the agent did not settle within 60 s")
}

// standbyCount reads the agent's number of standby environments (ready or being prepared)
// and of environments in all.
func standbyCount(c *http.Client, base string) (standby, total int, err error) {
	b, err := apiDo(c, "GET", base+"/v1/status", "")
	if err != nil {
		return 0, 0, err
	}
	var st struct {
		Sandbox struct{ Environments, Standby int }
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, 0, fmt.Errorf("reading /v1/status: %w", err)
	}
	return st.Sandbox.Standby, st.Sandbox.Environments, nil
}

func medianDur(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sortDur(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// applySample is one round of a file of n functions: create by apply, the same apply again
// (nothing to do), plan, and deletion by the DeleteFunction API (sequential calls).
type applySample struct {
	create, noop, plan, delete cliRun
	settleCreate, settleDelete time.Duration
	agentCPU                   time.Duration // the agent's CPU from the create's start to the node settling
	standby, envs              int           // the node's standby and all environments after the create settled
}

// benchApply times `gateway apply` of a file of o.applyN functions against a file of one,
// round by round (o.applyRuns rounds, each one function then the many), and returns the rows.
// Each round deletes its functions again and waits for the node to settle, so neither the
// next round nor a later measurement runs beside their environments.
func benchApply(c *http.Client, gwBin, base, fnDir, tmp string, agentPID int, o controlOpts) ([]string, error) {
	oneNames := []string{"apply1"}
	var manyNames []string
	for i := 0; i < o.applyN; i++ {
		manyNames = append(manyNames, fmt.Sprintf("f%03d", i))
	}
	writeFile := func(file string, names []string) (string, error) {
		var b strings.Builder
		for _, n := range names {
			b.WriteString(functionBlock(n, fnDir, ""))
		}
		p := filepath.Join(tmp, file)
		return p, os.WriteFile(p, []byte(b.String()), 0o644)
	}
	onePath, err := writeFile("apply-1.hcl", oneNames)
	if err != nil {
		return nil, err
	}
	manyPath, err := writeFile(fmt.Sprintf("apply-%d.hcl", o.applyN), manyNames)
	if err != nil {
		return nil, err
	}
	round := func(path string, names []string) (applySample, error) {
		var s applySample
		var err error
		if _, err = settle(agentPID); err != nil {
			return s, err
		}
		cpu0, err := agentCPU(agentPID)
		if err != nil {
			return s, err
		}
		n := len(names)
		if s.create, err = runCLI(gwBin, fmt.Sprintf("Apply complete: %d changed, 0 unchanged", n), "apply", "-address", base, path); err != nil {
			return s, err
		}
		if s.settleCreate, err = settle(agentPID); err != nil {
			return s, err
		}
		cpu1, err := agentCPU(agentPID)
		if err != nil {
			return s, err
		}
		s.agentCPU = cpu1 - cpu0
		if s.standby, s.envs, err = standbyCount(c, base); err != nil {
			return s, err
		}
		if s.noop, err = runCLI(gwBin, fmt.Sprintf("Apply complete: 0 changed, %d unchanged", n), "apply", "-address", base, path); err != nil {
			return s, err
		}
		if s.plan, err = runCLI(gwBin, fmt.Sprintf("Plan: 0 to change, %d unchanged", n), "plan", "-address", base, path); err != nil {
			return s, err
		}
		t0 := time.Now()
		for _, name := range names {
			if _, err := apiDo(c, "DELETE", base+"/2015-03-31/functions/"+name, ""); err != nil {
				return s, err
			}
		}
		s.delete.wall = time.Since(t0)
		s.settleDelete, err = settle(agentPID)
		return s, err
	}
	var ones, manys []applySample
	for r := 0; r < o.applyRuns; r++ {
		one, err := round(onePath, oneNames)
		if err != nil {
			return nil, err
		}
		many, err := round(manyPath, manyNames)
		if err != nil {
			return nil, err
		}
		ones, manys = append(ones, one), append(manys, many)
		fmt.Printf("apply round %d: 1 function: create %.0f ms (CLI CPU %.0f ms; settled %.0f ms later; agent CPU %.0f ms), no-op %.0f ms (CLI CPU %.0f ms), plan %.0f ms, delete %.1f ms\n",
			r, ms(one.create.wall), ms(one.create.cpu), ms(one.settleCreate), ms(one.agentCPU), ms(one.noop.wall), ms(one.noop.cpu), ms(one.plan.wall), ms(one.delete.wall))
		fmt.Printf("apply round %d: %d functions: create %.0f ms (CLI CPU %.0f ms; node settled %.0f ms later; agent CPU %.0f ms; %d standby of %d environments), no-op %.0f ms (CLI CPU %.0f ms), plan %.0f ms, delete %.0f ms (settled %.0f ms later)\n",
			r, o.applyN, ms(many.create.wall), ms(many.create.cpu), ms(many.settleCreate), ms(many.agentCPU), many.standby, many.envs,
			ms(many.noop.wall), ms(many.noop.cpu), ms(many.plan.wall), ms(many.delete.wall), ms(many.settleDelete))
	}
	med := func(s []applySample, f func(applySample) time.Duration) time.Duration {
		var d []time.Duration
		for _, x := range s {
			d = append(d, f(x))
		}
		return medianDur(d)
	}
	n := float64(o.applyN)
	var rows []string
	for _, m := range []struct {
		cmd, what string
		f         func(applySample) time.Duration
	}{
		{"`gateway apply`", "creating them", func(s applySample) time.Duration { return s.create.wall }},
		{"`gateway apply`", "again, nothing to change", func(s applySample) time.Duration { return s.noop.wall }},
		{"`gateway plan`", "nothing to change", func(s applySample) time.Duration { return s.plan.wall }},
	} {
		many, one, cmd := med(manys, m.f), med(ones, m.f), m.cmd
		label := fmt.Sprintf("%s of a file of %d functions, %s (wall time of the command, median of %d)", cmd, o.applyN, m.what, o.applyRuns)
		rel := fmt.Sprintf("per function %.2fx the file of 1; %+.1f ms per function added", ms(many)/n/ms(one), (ms(many)-ms(one))/(n-1))
		rows = append(rows, fmt.Sprintf("| %s | %.0f ms (%.1f ms per function) | %.0f ms (file of 1 function) | %s |", label, ms(many), ms(many)/n, ms(one), rel))
		fmt.Printf("%-55s gateway %10.0f ms   1 function %6.0f ms   %.1f ms per function, %s\n", fmt.Sprintf("%s %d, %s", cmd, o.applyN, m.what), ms(many), ms(one), ms(many)/n, rel)
	}
	settled := med(manys, func(s applySample) time.Duration { return s.settleCreate })
	rows = append(rows, fmt.Sprintf("| once `gateway apply` of %d functions has returned, the node is quiet (agent CPU at most 4%% over 250 ms; 250 ms steps) after | %.0f ms | %.0f ms (file of 1 function) | |",
		o.applyN, ms(settled), ms(med(ones, func(s applySample) time.Duration { return s.settleCreate }))))
	del, delOne := med(manys, func(s applySample) time.Duration { return s.delete.wall }), med(ones, func(s applySample) time.Duration { return s.delete.wall })
	rows = append(rows, fmt.Sprintf("| DeleteFunction API on the %d functions, one call after the other | %.0f ms (%.1f ms per function) | %.1f ms (1 function) | per function %.2fx the single call |",
		o.applyN, ms(del), ms(del)/n, ms(delOne), ms(del)/n/ms(delOne)))
	return rows, nil
}

// benchAdmission measures warm calls of one function with a reserved concurrency limit against
// the same function without one. The limit is set and removed by the API between blocks of
// calls (a reservation does not replace the function's environments), so both sides run on
// the same warm environment, in alternating blocks as pairedLatencies does (which side goes
// first alternating too).
func benchAdmission(c *http.Client, gwBin, base, fnDir, tmp string, payload []byte, o controlOpts) ([]string, error) {
	const name, delay = "admission", "100ms"
	path := filepath.Join(tmp, "admission.hcl")
	if err := os.WriteFile(path, []byte(functionBlock(name, fnDir, delay)), 0o644); err != nil {
		return nil, err
	}
	if _, err := runCLI(gwBin, "Apply complete", "apply", "-address", base, path); err != nil {
		return nil, err
	}
	url := base + "/2015-03-31/functions/" + name + "/invocations"
	concURL := base + "/2017-10-31/functions/" + name + "/concurrency"
	// limit sets the reservation (n >= 0) or removes it (n < 0), and checks it took effect.
	limit := func(n int) error {
		var err error
		if n >= 0 {
			_, err = apiDo(c, "PUT", concURL, fmt.Sprintf(`{"ReservedConcurrentExecutions": %d}`, n))
		} else {
			_, err = apiDo(c, "DELETE", concURL, "")
		}
		if err != nil {
			return err
		}
		b, err := apiDo(c, "GET", base+"/2019-09-30/functions/"+name+"/concurrency", "")
		if err != nil {
			return err
		}
		var got struct{ ReservedConcurrentExecutions *int }
		if err := json.Unmarshal(b, &got); err != nil {
			return err
		}
		if (n < 0) != (got.ReservedConcurrentExecutions == nil) || (n >= 0 && *got.ReservedConcurrentExecutions != n) {
			return fmt.Errorf("GetFunctionConcurrency after setting %d: %s", n, b)
		}
		return nil
	}
	// The limit is enforced on this path: with 0 reserved a call is throttled.
	if err := limit(0); err != nil {
		return nil, err
	}
	resp, err := c.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		return nil, fmt.Errorf("a call with 0 reserved: %s, want 429", resp.Status)
	}

	limited, free := make([]time.Duration, 0, o.admissionN), make([]time.Duration, 0, o.admissionN)
	// block makes k recorded calls after 10 unrecorded ones (as pairedLatencies) and returns the
	// block's p50.
	block := func(out *[]time.Duration, k int) (time.Duration, error) {
		var own []time.Duration
		for i := 0; i < 10+k; i++ {
			d, err := call(c, url, payload)
			if err != nil {
				return 0, err
			}
			if i >= 10 {
				own = append(own, d)
			}
		}
		*out = append(*out, own...)
		sortDur(own)
		return pct(own, 50), nil
	}
	// The difference of the two sides' p50 round by round shows the noise of the comparison.
	var diffs []time.Duration
	for round := 0; len(limited) < o.admissionN; round++ {
		k := min(latencyBlock, o.admissionN-len(limited))
		var l, f time.Duration
		// Which side goes first alternates round by round.
		for side := 0; side < 2; side++ {
			var err error
			if (side+round)%2 == 0 {
				if err = limit(o.admissionLimit); err == nil {
					l, err = block(&limited, k)
				}
			} else {
				if err = limit(-1); err == nil {
					f, err = block(&free, k)
				}
			}
			if err != nil {
				return nil, err
			}
		}
		diffs = append(diffs, l-f)
	}
	sortDur(limited)
	sortDur(free)
	sortDur(diffs)
	if _, err := apiDo(c, "DELETE", base+"/2015-03-31/functions/"+name, ""); err != nil {
		return nil, err
	}
	var rows []string
	for _, p := range []int{50, 99} {
		l, f := pct(limited, p), pct(free, p)
		label := fmt.Sprintf("admission: warm invoke p%d, 1 caller, with `reserved_concurrency = %d` (same function without it alternating by blocks, freeze_delay %s, %d calls each)",
			p, o.admissionLimit, delay, o.admissionN)
		rel := fmt.Sprintf("%+.0f µs, %.3fx", us(l-f), float64(l)/float64(f))
		if p == 50 {
			rel += fmt.Sprintf(" (round by round, %d rounds: median %+.0f µs, quartiles %+.0f..%+.0f µs)", len(diffs), us(pct(diffs, 50)), us(pct(diffs, 25)), us(pct(diffs, 75)))
		}
		rows = append(rows, fmt.Sprintf("| %s | %.0f µs | %.0f µs (no reservation) | %s |", label, us(l), us(f), rel))
		fmt.Printf("%-55s limited %10.0f µs   unlimited %6.0f µs   %s\n", fmt.Sprintf("admission p%d (reserved %d)", p, o.admissionLimit), us(l), us(f), rel)
	}
	return rows, nil
}
