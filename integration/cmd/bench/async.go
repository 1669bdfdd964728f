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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// asyncBaseline is the last revision whose Event invocations lived in the node's memory: the
// path the durable queue replaced, measured beside it.
const asyncBaseline = "655dd55"

// asyncEvents is how many events the accept row sends: well within the in-memory path's
// backlog of 10,000, past which it refuses events (429).
const asyncEvents = 5000

// asyncSide is one agent of the async rows: the baseline's in-memory queue or the durable one.
type asyncSide struct {
	name, bin string
	accept    wrkResult
	runRate   float64 // events run a second, from the first event's START to the last one's REPORT
	ran       int
	toStart   []time.Duration // 202 answered -> START logged, events sent one at a time
}

// benchAsync measures Event invocations on the durable queue (JetStream in the agent) against
// the in-memory path of asyncBaseline, built in a worktree of its own, one agent after the
// other with the same no-op function: how many are accepted a second (wrk, 4 connections,
// pinned apart), how many run a second through the function, and the time from the 202 to the
// function's START at p50 and p99, events sent one at a time.
func benchAsync(client *http.Client, gwBin, fnDir, tmp, driver string) ([]string, error) {
	baseBin := filepath.Join(tmp, "gateway-async-baseline")
	_, done, err := buildAtRevision(tmp, asyncBaseline, "build", "-o", baseBin, "./cmd/gateway")
	if err != nil {
		return nil, err
	}
	done()
	fnPath := filepath.Join(tmp, "async-functions.hcl")
	fns := fmt.Sprintf("function \"noop\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  memory_mb = 128\n  timeout = \"10s\"\n}\n", fnDir)
	if err := os.WriteFile(fnPath, []byte(fns), 0o644); err != nil {
		return nil, err
	}
	sides := []*asyncSide{{name: "in memory (" + asyncBaseline + ")", bin: baseBin}, {name: "durable (JetStream)", bin: gwBin}}
	for _, s := range sides {
		if err := s.measure(client, fnDir, fnPath, tmp, driver); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	mem, dur := sides[0], sides[1]
	sortDur(mem.toStart)
	sortDur(dur.toStart)
	rate := func(r wrkResult) float64 { return r.requests / r.seconds }
	return []string{
		fmt.Sprintf("| Event invocations accepted a second, durable (5,000 events over 4 keep-alive connections, the client pinned apart; a no-op function runs them meanwhile) | %.0f/s (p50 %s, p99 %s) | %.0f/s in memory (p50 %s, p99 %s) | %.2fx |",
			rate(dur.accept), usStr(dur.accept.p50), usStr(dur.accept.p99), rate(mem.accept), usStr(mem.accept.p50), usStr(mem.accept.p99), rate(dur.accept)/rate(mem.accept)),
		fmt.Sprintf("| Event invocations run a second through a no-op function (the accepted ones, first START to last REPORT) | %.0f/s (%d events) | %.0f/s in memory (%d events) | %.2fx |",
			dur.runRate, dur.ran, mem.runRate, mem.ran, dur.runRate/mem.runRate),
		fmt.Sprintf("| Event invocation, 202 answered to the function's START (%d sent one at a time), p50 / p99 | %s / %s | %s / %s in memory | |",
			len(dur.toStart), ms1(pct(dur.toStart, 50)), ms1(pct(dur.toStart, 99)), ms1(pct(mem.toStart, 50)), ms1(pct(mem.toStart, 99))),
	}, nil
}

func usStr(d time.Duration) string { return fmt.Sprintf("%.0f µs", us(d)) }
func ms1(d time.Duration) string   { return fmt.Sprintf("%.2f ms", ms(d)) }

func (s *asyncSide) measure(client *http.Client, fnDir, fnPath, tmp, driver string) error {
	a, err := startBenchAgent(client, s.bin, tmp, "async-"+strings.Fields(s.name)[0], driver, "")
	if err != nil {
		return err
	}
	defer a.stop()
	if b, err := exec.Command(s.bin, "apply", "-address", a.base, fnPath).CombinedOutput(); err != nil {
		return fmt.Errorf("apply: %v\n%s", err, b)
	}
	url := a.base + "/2015-03-31/functions/noop/invocations"
	if _, err := call(client, url, []byte(`{}`)); err != nil {
		return err
	}
	start := time.Now()
	if s.accept, err = runEventLoad(url, asyncEvents, 4); err != nil {
		return err
	}
	want := int(s.accept.requests)
	// Every accepted event runs: wait for its REPORT.
	var starts, reports []time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for {
		starts, reports, _, err = asyncLog(client, a.base, nil)
		if err != nil {
			return err
		}
		if len(reports) >= want+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.ran = len(reports) - 1 // the warm-up call's
	if s.ran < want {
		return fmt.Errorf("%d of %d accepted events ran within 5 minutes", s.ran, want)
	}
	// From the first event's START (after the warm-up's) to the last REPORT.
	first := starts[1]
	s.runRate = float64(s.ran) / reports[len(reports)-1].Sub(first).Seconds()
	fmt.Printf("async %-28s accepted %.0f/s, ran %d at %.0f/s (%v after the first was sent)\n", s.name, s.accept.requests/s.accept.seconds,
		s.ran, s.runRate, time.Since(start).Round(time.Millisecond))

	// One at a time: 202 -> START.
	sent := map[string]time.Time{}
	for range 200 {
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{"mode":"hello","name":"bench"}`))
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 202 {
			return fmt.Errorf("an Event invocation answered %s", resp.Status)
		}
		sent[resp.Header.Get("X-Amzn-RequestId")] = time.Now()
		time.Sleep(20 * time.Millisecond)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(300 * time.Millisecond) {
		_, _, byID, err := asyncLog(client, a.base, sent)
		if err != nil {
			return err
		}
		if len(byID) == len(sent) || time.Now().After(deadline) {
			for id, t := range byID {
				s.toStart = append(s.toStart, t.Sub(sent[id]))
			}
			break
		}
	}
	if len(s.toStart) < len(sent) {
		return fmt.Errorf("%d of %d events sent one at a time ran", len(s.toStart), len(sent))
	}
	return nil
}

// asyncLog reads the no-op function's log: the times of its START and REPORT lines, in order,
// and of the START of each request id in ids.
func asyncLog(client *http.Client, base string, ids map[string]time.Time) (starts, reports []time.Time, byID map[string]time.Time, err error) {
	resp, err := client.Get(base + "/v1/functions/noop/logs?lines=100000000")
	if err != nil {
		return nil, nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, nil, nil, fmt.Errorf("reading the function's log: %s", resp.Status)
	}
	byID = map[string]time.Time{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		ts, line, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		t, perr := time.Parse(time.RFC3339Nano, ts)
		if perr != nil {
			continue
		}
		switch {
		case strings.Contains(line, "START RequestId: ") && !strings.Contains(line, "INIT_START"):
			starts = append(starts, t)
			if ids != nil {
				id, _, _ := strings.Cut(line[strings.Index(line, "START RequestId: ")+len("START RequestId: "):], " ")
				if _, ok := ids[id]; ok {
					byID[id] = t
				}
			}
		case strings.Contains(line, "REPORT RequestId: "):
			reports = append(reports, t)
		}
	}
	return starts, reports, byID, sc.Err()
}

// runEventLoad sends n Event invocations to url over conns keep-alive connections from a copy
// of the bench pinned to loadCPU (wrk cannot stop after a count, and the in-memory path refuses
// events past its backlog), and returns their rate and latencies.
func runEventLoad(url string, n, conns int) (wrkResult, error) {
	self, err := os.Executable()
	if err != nil {
		return wrkResult{}, err
	}
	out, err := exec.Command("taskset", "-c", strconv.Itoa(loadCPU), self, "event-load", url, strconv.Itoa(n), strconv.Itoa(conns)).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("event load: %v\n%s", err, out)
	}
	var r struct {
		Requests, Seconds float64
		P50, P99          time.Duration
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return wrkResult{}, fmt.Errorf("event load printed %q: %w", out, err)
	}
	return wrkResult{requests: r.Requests, seconds: r.Seconds, p50: r.P50, p99: r.P99}, nil
}

// eventLoad is the bench's event-load mode: it sends n Event invocations to url over conns
// connections and prints their count, duration and latency percentiles as JSON. Any answer but
// 202 ends it with an error.
func eventLoad(url, nStr, connsStr string) {
	n, _ := strconv.Atoi(nStr)
	conns, _ := strconv.Atoi(connsStr)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	var mu sync.Mutex
	var lat []time.Duration
	var failed error
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	body := []byte(`{"mode":"hello","name":"bench"}`)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("X-Amz-Invocation-Type", "Event")
				t0 := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 202 {
						err = fmt.Errorf("an Event invocation answered %s", resp.Status)
					}
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && failed == nil {
					failed = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed != nil {
		fmt.Fprintln(os.Stderr, failed)
		os.Exit(1)
	}
	slices.Sort(lat)
	out, _ := json.Marshal(map[string]any{"Requests": len(lat), "Seconds": elapsed.Seconds(),
		"P50": lat[len(lat)/2], "P99": lat[min(len(lat)-1, len(lat)*99/100)]})
	fmt.Println(string(out))
}

// buildAtRevision checks rev out in a worktree of its own under tmp and runs `go goArgs...` in
// it (a gateway or a test binary of that revision, to measure beside this one). done removes
// the worktree; the caller keeps it while it runs what it built from there.
func buildAtRevision(tmp, rev string, goArgs ...string) (wt string, done func(), err error) {
	wt = filepath.Join(tmp, "rev-"+rev)
	if out, err := exec.Command("git", "worktree", "add", "--detach", wt, rev).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("git worktree add %s: %v: %s", rev, err, out)
	}
	done = func() { _ = exec.Command("git", "worktree", "remove", "--force", wt).Run() }
	build := exec.Command("go", goArgs...)
	build.Dir = wt
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := build.CombinedOutput(); err != nil {
		done()
		return "", nil, fmt.Errorf("go %s at %s: %v\n%s", strings.Join(goArgs, " "), rev, err, b)
	}
	return wt, done, nil
}
