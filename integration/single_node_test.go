package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// functionsHCL declares the test function under a few configurations.
func functionsHCL() string {
	return fmt.Sprintf(`
function "fn" {
  runtime      = "provided.al2023"
  code         = %[1]q
  memory_mb    = 128
  timeout      = "2s"
  freeze_delay = "0s"
  environment  = { GREETING = "hi" }
}

# Only CrashResets calls crashy: with one environment at most, its count after a crash is
# deterministic (fn may have two warm environments left by earlier subtests).
function "crashy" {
  runtime      = "provided.al2023"
  code         = %[1]q
  memory_mb    = 128
  timeout      = "2s"
}

function "roomy" {
  runtime              = "provided.al2023"
  code                 = %[1]q
  memory_mb            = 1024
  ephemeral_storage_mb = 512
  timeout              = "20s"
}

function "small" {
  runtime              = "provided.al2023"
  code                 = %[1]q
  memory_mb            = 128
  ephemeral_storage_mb = 512
  timeout              = "10s"
}
`, fnDir)
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

// cgroupRoots are the per-controller (v1) or unified (v2) roots where this agent's cgroups live.
func agentCgroupDirs(t *testing.T, node string) []string {
	t.Helper()
	var dirs []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/lambdagw/" + node + "-*", "/sys/fs/cgroup/lambdagw/" + node + "-*"} {
		m, _ := filepath.Glob(pattern)
		dirs = append(dirs, m...)
	}
	return dirs
}

// envCgroupDirs lists the environment cgroups (children of the agent's parent) in the freezer
// (v1) or unified (v2) hierarchy.
func envCgroupDirs(t *testing.T, node string) []string {
	t.Helper()
	var out []string
	for _, parent := range agentCgroupDirs(t, node) {
		if !strings.Contains(parent, "/freezer/") && strings.Count(parent, "/") > 5 {
			continue
		}
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			// freeze.anchor is the driver's permanently frozen, empty cgroup, not an environment.
			if e.IsDir() && e.Name() != "freeze.anchor" {
				out = append(out, filepath.Join(parent, e.Name()))
			}
		}
	}
	return out
}

func freezerState(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "freezer.state")); err == nil {
		return strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); err == nil {
		if strings.TrimSpace(string(b)) == "1" {
			return "FROZEN"
		}
		return "THAWED"
	}
	return "unknown"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNothingLeft asserts that a stopped agent left no cgroup, mount or process behind.
func checkNothingLeft(t *testing.T, a *agentProc) {
	t.Helper()
	for _, d := range agentCgroupDirs(t, a.name) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("cgroup left behind: %s/%s", d, e.Name())
			}
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, a.dataDir) {
			t.Errorf("mount left behind: %s", line)
		}
	}
	// A process of a node that was killed (kill -9 tests) is killed by the restarted node's sweep
	// and then reaped by init, which may take a moment: zombies are not leftovers, and live ones
	// get a short grace.
	var left []string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = liveProcesses(a.name)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, l := range left {
		t.Errorf("process left behind: %s", l)
	}
	// With user namespaces the libcontainer driver generates its root outside data_dir, named
	// after its work dir (sandbox/libcontainer: /run/lambdagw/rootfs-<hash>); Close, or the
	// reaper after a death, removes it.
	// The folder where image environments' roots are mounted (/run/lambdagw/roots-<hash>) goes
	// the same way.
	sum := sha256.Sum256([]byte(filepath.Join(a.dataDir, "sandbox")))
	for _, root := range []string{"/run/lambdagw/rootfs-" + hex.EncodeToString(sum[:6]), "/run/lambdagw/roots-" + hex.EncodeToString(sum[:6])} {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if _, err := os.Stat(root); os.IsNotExist(err) {
				break
			} else if time.Now().After(deadline) {
				t.Errorf("generated root filesystem left behind: %s", root)
				_ = os.RemoveAll(root)
				break
			}
		}
	}
}

// liveProcesses lists the processes (zombies aside) in the environment cgroups of node.
// sweepNode removes what a node's dead agent left, as its reaper would: its environments'
// cgroups thawed, their processes killed, the cgroups removed.
func sweepNode(node string) {
	for attempt := 0; attempt < 50; attempt++ {
		left := false
		for _, pattern := range []string{"/sys/fs/cgroup/*/lambdagw/" + node + "-*/*/", "/sys/fs/cgroup/lambdagw/" + node + "-*/*/"} {
			dirs, _ := filepath.Glob(pattern)
			for _, d := range dirs {
				_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0o644)
				b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
				for _, pid := range strings.Fields(string(b)) {
					if n, err := strconv.Atoi(pid); err == nil {
						_ = syscall.Kill(n, syscall.SIGKILL)
					}
				}
				if os.Remove(d) != nil {
					left = true
				}
			}
		}
		if !left {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func liveProcesses(node string) []string {
	var left []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "/lambdagw/"+node+"-") {
			continue
		}
		if stat, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "stat")); isZombie(string(stat)) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		left = append(left, fmt.Sprintf("%s %q", p, cmd))
	}
	return left
}

// isZombie reads the state field of /proc/<pid>/stat ("pid (comm) S ...").
func isZombie(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i >= 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

func TestSingleNodeEndToEnd(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "e2e", extra: "pids_limit = 64"})
	fnFile := writeFunctions(t, functionsHCL())

	stdout, stderr, code := a.cli("apply", "-address", a.addr, fnFile)
	if code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, stdout, stderr)
	}

	t.Run("InvokeAndWarmReuse", func(t *testing.T) {
		r := a.invoke("fn", `{"mode":"counter"}`, nil)
		if r.status != 200 || r.header.Get("X-Amz-Executed-Version") != "$LATEST" {
			t.Fatalf("status %d, executed version %q, body %s", r.status, r.header.Get("X-Amz-Executed-Version"), r.body)
		}
		first := decodeJSON(t, r.body)["count"].(float64)
		r = a.invoke("fn", `{"mode":"counter"}`, nil)
		if got := decodeJSON(t, r.body)["count"].(float64); got != first+1 {
			t.Fatalf("count %v after %v: the warm environment was not reused", got, first)
		}
	})

	t.Run("FrozenBetweenInvocations", func(t *testing.T) {
		a.invoke("fn", `{}`, nil)
		waitUntil(t, "an environment cgroup FROZEN", 5*time.Second, func() bool {
			for _, d := range envCgroupDirs(t, a.name) {
				if freezerState(d) == "FROZEN" {
					return true
				}
			}
			return false
		})
		// And it thaws for the next call.
		r := a.invoke("fn", `{"name":"again"}`, nil)
		if r.status != 200 || !strings.Contains(string(r.body), "Hello, again!") {
			t.Fatalf("after freeze: %d %s", r.status, r.body)
		}
	})

	t.Run("TmpKeptWhileWarm", func(t *testing.T) {
		r := a.invoke("fn", `{"mode":"writefile","path":"/tmp/state","value":"kept"}`, nil)
		if e := decodeJSON(t, r.body)["error"]; e != "" {
			t.Fatalf("writing /tmp: %v", e)
		}
		r = a.invoke("fn", `{"mode":"readfile","path":"/tmp/state"}`, nil)
		if got := decodeJSON(t, r.body)["content"]; got != "kept" {
			t.Fatalf("/tmp content %v, want kept", got)
		}
	})

	t.Run("Isolation", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "host-secret")
		if err := os.WriteFile(marker, []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ payload, want string }{
			{fmt.Sprintf(`{"mode":"readfile","path":%q}`, marker), "no such file"},
			{`{"mode":"readfile","path":"/etc/shadow"}`, "no such file"},
			{`{"mode":"writefile","path":"/var/task/x","value":"x"}`, "read-only file system"},
			{`{"mode":"writefile","path":"/x","value":"x"}`, "read-only file system"},
			{`{"mode":"dial","addr":"` + strings.TrimPrefix(a.addr, "http://") + `"}`, "connection refused"},
		} {
			r := a.invoke("fn", c.payload, nil)
			if !strings.Contains(string(r.body), c.want) {
				t.Errorf("%s: got %s, want an error containing %q", c.payload, r.body, c.want)
			}
		}
		r := a.invoke("fn", `{"mode":"interfaces"}`, nil)
		var ifs struct{ Interfaces []string }
		_ = json.Unmarshal(r.body, &ifs)
		if len(ifs.Interfaces) != 1 || ifs.Interfaces[0] != "lo" {
			t.Errorf("network interfaces %v, want only lo", ifs.Interfaces)
		}
	})

	t.Run("Limits", func(t *testing.T) {
		// pids_limit is 64 for this agent: 200 processes cannot start.
		r := a.invoke("fn", `{"mode":"spawn","n":200}`, nil)
		body := decodeJSON(t, r.body)
		if started, _ := body["started"].(float64); started >= 64 || body["error"] == "" {
			t.Fatalf("spawning 200 processes under pids_limit 64: %s", r.body)
		}
		// The memory cgroup of a 128 MB function is capped at 128 MB.
		found := false
		for _, parent := range agentCgroupDirs(t, a.name) {
			if !strings.Contains(parent, "/memory/") {
				continue
			}
			limits, _ := filepath.Glob(filepath.Join(parent, "*", "memory.limit_in_bytes"))
			for _, l := range limits {
				b, _ := os.ReadFile(l)
				if strings.TrimSpace(string(b)) == fmt.Sprint(128<<20) {
					found = true
				}
			}
		}
		if !found && len(agentCgroupDirs(t, a.name)) > 0 && fileExists("/sys/fs/cgroup/memory") {
			t.Errorf("no environment memory cgroup limited to 128 MB")
		}
		// A 128 MB function runs on one CPU (Lambda: one vCPU per 1,769 MB).
		r = a.invoke("fn", `{"mode":"cpus"}`, nil)
		cpus := decodeJSON(t, r.body)
		if got := cpus["cpus"]; got != 1.0 {
			t.Errorf("a 128 MB function can run on %v CPUs, want 1: %s", got, r.body)
		}
		// Every thread of the runtime, those started after the exec included, runs under
		// SCHED_BATCH (cpu_policy "batch", the default).
		if ps, ok := cpus["policies"].([]any); !ok || len(ps) < 2 {
			t.Errorf("want the scheduling policies of the runtime's threads: %s", r.body)
		} else {
			for _, p := range ps {
				if p != 3.0 {
					t.Errorf("a runtime thread runs under scheduling policy %v, want 3 (SCHED_BATCH): %s", p, r.body)
					break
				}
			}
		}
	})

	t.Run("LogTail", func(t *testing.T) {
		r := a.invoke("fn", `{"mode":"log","n":2}`, map[string]string{"X-Amz-Log-Type": "Tail"})
		raw, err := base64.StdEncoding.DecodeString(r.header.Get("X-Amz-Log-Result"))
		if err != nil {
			t.Fatalf("X-Amz-Log-Result: %v", err)
		}
		reqID := r.header.Get("X-Amzn-RequestId")
		tail := string(raw)
		for _, want := range []string{"START RequestId: " + reqID + " Version: $LATEST", "log line 0\nlog line 1\n", "END RequestId: " + reqID, "REPORT RequestId: " + reqID, "Max Memory Used: "} {
			if !strings.Contains(tail, want) {
				t.Errorf("log tail lacks %q:\n%s", want, tail)
			}
		}
	})

	t.Run("CrashResets", func(t *testing.T) {
		a.invoke("crashy", `{}`, nil)
		r := a.invoke("crashy", `{"mode":"crash"}`, nil)
		if r.status != 200 || r.header.Get("X-Amz-Function-Error") != "Unhandled" {
			t.Fatalf("crash: status %d function error %q", r.status, r.header.Get("X-Amz-Function-Error"))
		}
		body := decodeJSON(t, r.body)
		if body["errorType"] != "Runtime.ExitError" || !strings.Contains(body["errorMessage"].(string), "exit status 3") {
			t.Fatalf("crash body: %s", r.body)
		}
		if got := decodeJSON(t, a.invoke("crashy", `{"mode":"counter"}`, nil).body)["count"]; got != float64(1) {
			t.Fatalf("count %v after a crash, want 1 (fresh environment)", got)
		}
	})

	t.Run("TimeoutResets", func(t *testing.T) {
		r := a.invoke("fn", `{"mode":"sleep","ms":5000}`, nil)
		body := decodeJSON(t, r.body)
		if r.header.Get("X-Amz-Function-Error") != "Unhandled" || body["errorType"] != "Sandbox.Timedout" ||
			!strings.Contains(body["errorMessage"].(string), "Task timed out after 2.00 seconds") {
			t.Fatalf("timeout: %d %v %s", r.status, r.header, r.body)
		}
		if got := decodeJSON(t, a.invoke("fn", `{"mode":"counter"}`, nil).body)["count"]; got != float64(1) {
			t.Fatalf("count %v after a timeout, want 1", got)
		}
	})

	t.Run("OutOfMemory", func(t *testing.T) {
		r := a.invoke("small", `{"mode":"oom","n":400}`, nil)
		body := decodeJSON(t, r.body)
		if body["errorType"] != "Runtime.OutOfMemory" {
			t.Fatalf("allocating 400 MB in a 128 MB function: %s", r.body)
		}
		if r := a.invoke("small", `{}`, nil); r.status != 200 || r.header.Get("X-Amz-Function-Error") != "" {
			t.Fatalf("after OOM: %d %s", r.status, r.body)
		}
	})

	t.Run("TmpIsSizeLimited", func(t *testing.T) {
		// /tmp is a 512 MB tmpfs: 600 MB must fail with ENOSPC, not fill the host.
		r := a.invoke("roomy", `{"mode":"fill","path":"/tmp/big","n":600}`, nil)
		if e, _ := decodeJSON(t, r.body)["error"].(string); !strings.Contains(e, "no space left on device") {
			t.Fatalf("writing 600 MB to a 512 MB /tmp: %s", r.body)
		}
		r = a.invoke("roomy", `{"mode":"fill","path":"/tmp/ok","n":100}`, nil)
		if e := decodeJSON(t, r.body)["error"]; e != "" {
			t.Fatalf("writing 100 MB to /tmp: %v", e)
		}
	})

	t.Run("ErrorShapes", func(t *testing.T) {
		cases := []struct {
			name, fn, payload string
			status            int
			errType           string
		}{
			{"unknown function", "nope", `{}`, 404, "ResourceNotFoundException"},
			{"not JSON", "fn", `{not json`, 400, "InvalidRequestContentException"},
			{"too large", "fn", `"` + strings.Repeat("x", 6<<20) + `"`, 413, "RequestTooLargeException"},
		}
		for _, c := range cases {
			r := a.invoke(c.fn, c.payload, nil)
			if r.status != c.status || r.header.Get("X-Amzn-ErrorType") != c.errType {
				t.Errorf("%s: status %d type %q, want %d %s (%s)", c.name, r.status, r.header.Get("X-Amzn-ErrorType"), c.status, c.errType, r.body)
			}
			if m := decodeJSON(t, r.body); m["message"] == nil && m["Message"] == nil {
				t.Errorf("%s: body has no message: %s", c.name, r.body)
			}
		}
		r := a.invoke("fn", `{"mode":"error"}`, nil)
		if r.header.Get("X-Amz-Function-Error") != "Unhandled" || decodeJSON(t, r.body)["errorMessage"] != "something went wrong" {
			t.Errorf("function error: %v %s", r.header, r.body)
		}
		r = a.invoke("fn", `{}`, map[string]string{"X-Amz-Invocation-Type": "DryRun"})
		if r.status != 204 {
			t.Errorf("DryRun: %d", r.status)
		}
		r = a.invoke("fn", `{}`, map[string]string{"X-Amz-Invocation-Type": "Event"})
		if r.status != 202 {
			t.Errorf("Event: %d", r.status)
		}
	})

	t.Run("AWSSDK", func(t *testing.T) {
		client := a.sdk()
		ctx := context.Background()
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"name":"sdk"}`), LogType: types.LogTypeTail})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out.Payload), "Hello, sdk!") || out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "$LATEST" || out.LogResult == nil {
			t.Fatalf("SDK invoke: %+v %s", out, out.Payload)
		}
		_, err = client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("missing")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("SDK error for a missing function: %T %v", err, err)
		}
		cfg, err := client.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(cfg.MemorySize) != 128 || aws.ToInt32(cfg.Timeout) != 2 || cfg.Environment.Variables["GREETING"] != "hi" {
			t.Fatalf("configuration: %+v", cfg)
		}
	})

	t.Run("CLI", func(t *testing.T) {
		stdout, stderr, code := a.cli("invoke", "-address", a.addr, "-payload", `{"name":"cli"}`, "-log-tail", "fn")
		if code != 0 || !strings.Contains(stdout, "Hello, cli!") || !strings.Contains(stderr, "REPORT RequestId:") {
			t.Fatalf("invoke: %d\n%s\n%s", code, stdout, stderr)
		}
		_, _, code = a.cli("invoke", "-address", a.addr, "-payload", `{"mode":"error"}`, "fn")
		if code != 1 {
			t.Errorf("invoke of a failing function exited %d, want 1", code)
		}
		stdout, _, code = a.cli("functions", "-address", a.addr)
		if code != 0 || !strings.Contains(stdout, "fn") || !strings.Contains(stdout, "small") {
			t.Errorf("functions: %d %s", code, stdout)
		}
		stdout, _, code = a.cli("logs", "-address", a.addr, "-n", "50", "fn")
		if code != 0 || !strings.Contains(stdout, "START RequestId:") || !strings.Contains(stdout, "REPORT RequestId:") {
			t.Errorf("logs: %d %s", code, stdout)
		}
		// Re-applying unchanged files uploads nothing.
		stdout, stderr, code = a.cli("apply", "-address", a.addr, fnFile)
		if code != 0 || strings.Contains(stdout, "uploaded") || !strings.Contains(stdout, "unchanged") {
			t.Errorf("re-apply: %d\n%s\n%s", code, stdout, stderr)
		}
	})

	t.Run("RestartKeepsFunctions", func(t *testing.T) {
		a.stop()
		checkNothingLeft(t, a)
		a.start()
		r := a.invoke("fn", `{"name":"after restart"}`, nil)
		if r.status != 200 || !strings.Contains(string(r.body), "Hello, after restart!") {
			t.Fatalf("after restart: %d %s", r.status, r.body)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

func TestFollowLogs(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "logs"})
	if _, stderr, code := a.cli("apply", "-address", a.addr, writeFunctions(t, functionsHCL())); code != 0 {
		t.Fatalf("apply: %s", stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.addr+"/v1/functions/fn/logs?follow=true&lines=0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := a.invoke("fn", `{"mode":"log","n":1}`, nil)
	reqID := r.header.Get("X-Amzn-RequestId")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "REPORT RequestId: "+reqID) {
			return
		}
	}
	t.Fatalf("followed logs ended without the REPORT of %s: %v", reqID, sc.Err())
}

// TestExampleHelloFunction applies the example function the quick start uses and calls it the
// way the README says.
func TestExampleHelloFunction(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "example"})
	src, err := os.ReadFile(filepath.Join(repoRoot, "examples", "functions.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	hcl := strings.Replace(string(src), `"./functions/hello/build"`, fmt.Sprintf("%q", helloDir), 1)
	if _, stderr, code := a.cli("apply", "-address", a.addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply: %s", stderr)
	}
	r := a.invoke("hello", `{"name":"you"}`, nil)
	if r.status != 200 || string(r.body) != `{"message":"Hello, you!"}` {
		t.Fatalf("hello: %d %s", r.status, r.body)
	}
	stdout, _, code := a.cli("invoke", "-address", a.addr, "-payload", "{}", "hello")
	if code != 0 || !strings.Contains(stdout, "Hello, world!") {
		t.Fatalf("gateway invoke: %d %s", code, stdout)
	}
}

// TestDriverFallbackOnlyInDevMode runs the real binary as an unprivileged user, where libcontainer
// cannot run: an agent with a configuration file refuses to start, a -dev agent falls back to the
// process driver and says so loudly.
func TestDriverFallbackOnlyInDevMode(t *testing.T) {
	needRoot(t) // to switch to an unprivileged user
	// t.TempDir's parent is private to root; the unprivileged agent needs a directory of its own.
	dir, err := os.MkdirTemp("", "gateway-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) *exec.Cmd {
		cmd := exec.Command(gatewayBin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Pdeathsig: syscall.SIGKILL}
		cmd.Dir = dir
		return cmd
	}
	conf := filepath.Join(dir, "agent.hcl")
	hcl := fmt.Sprintf("data_dir = %q\nhttp { address = \"127.0.0.1:%d\" }\ncluster { address = \"127.0.0.1:%d\" }\n",
		filepath.Join(dir, "data"), freePort(t), freePort(t))
	if err := os.WriteFile(conf, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := asNobody("agent", "-config", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "libcontainer") || !strings.Contains(string(out), "needs root") {
		t.Fatalf("a configured agent without root must refuse to start: %v\n%s", err, out)
	}

	for _, port := range []int{9500, 9501} {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			t.Skipf("-dev listens on 127.0.0.1:%d, which is in use here", port)
		} else {
			l.Close()
		}
	}
	cmd := asNobody("agent", "-dev", "-data-dir", filepath.Join(dir, "dev"))
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	waitUntil(t, "the -dev agent to serve", 30*time.Second, func() bool {
		resp, err := http.Get("http://127.0.0.1:9500/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&st)
		if st["driver"] != "process" {
			t.Fatalf("-dev without root runs driver %v, want process", st["driver"])
		}
		return true
	})
	if !strings.Contains(logs.String(), "NO isolation") {
		t.Fatalf("the fallback was not announced loudly:\n%s", logs.String())
	}
}
