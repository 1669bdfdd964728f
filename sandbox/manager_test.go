package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/internal/testfixtures/testfunction/testbuild"
	"github.com/lambdagw/gateway/sandbox"
	"github.com/lambdagw/gateway/sandbox/libcontainer"
	"github.com/lambdagw/gateway/sandbox/process"
)

// codeDir holds the real aws-lambda-go test function, built once as bootstrap.
var codeDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandbox-test-code-")
	if err == nil {
		codeDir, err = testbuild.Build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// Every environment of every test followed the lifecycle's table.
	if n := sandbox.BadTransitions(); n > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "%d environment lifecycle transitions were refused (logged as errors above)\n", n)
		code = 1
	}
	os.Exit(code)
}

type dirCode struct{ dir string }

func (d dirCode) Unpacked(context.Context, string) (string, error) { return d.dir, nil }

// memLogs keeps log lines in memory, per function.
type memLogs struct {
	mu    sync.Mutex
	lines map[string][]string
}

func (l *memLogs) Log(fn, _ string, _ bool, lines []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lines == nil {
		l.lines = map[string][]string{}
	}
	l.lines[fn] = append(l.lines[fn], lines...)
}

func (l *memLogs) get(fn string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[fn]...)
}

type driverCase struct {
	name string
	new  func(t testing.TB) sandbox.Driver
}

func drivers() []driverCase {
	return []driverCase{
		{"libcontainer", func(t testing.TB) sandbox.Driver { return newLibcontainer(t, libcontainer.SeccompDefault, false) }},
		{"libcontainer-userns", func(t testing.TB) sandbox.Driver { return newLibcontainer(t, libcontainer.SeccompDefault, true) }},
		{"process", func(t testing.TB) sandbox.Driver {
			d, err := process.New(process.Config{WorkDir: t.TempDir(), Logger: hclog.NewNullLogger()})
			if err != nil {
				t.Fatalf("process driver: %v", err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		}},
	}
}

// newLibcontainer is the libcontainer driver with the seccomp setting given, and user namespaces
// when userns (skipped without root).
func newLibcontainer(t testing.TB, seccomp string, userns bool) sandbox.Driver {
	return newLibcontainerWith(t, seccomp, userns, nil)
}

// newLibcontainerWith is newLibcontainer with private networks (nets may be nil).
func newLibcontainerWith(t testing.TB, seccomp string, userns bool, nets libcontainer.Networks) sandbox.Driver {
	if os.Getuid() != 0 {
		t.Skip("the libcontainer driver needs root and cgroups; CI runs as root")
	}
	var ids *libcontainer.IDRange
	if userns {
		r, err := libcontainer.DetectUserNamespaces()
		if err != nil {
			t.Fatalf("user namespaces: %v", err)
		}
		ids = &r
	}
	workDir := t.TempDir()
	// Runs after Close: the overlay roots of image environments are unmounted and their folder
	// gone. The mount table read is the main thread's (sandbox/libcontainer keeps it out of any
	// container's mount namespace).
	t.Cleanup(func() {
		roots := libcontainer.RootsDir(workDir)
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), roots) {
			t.Errorf("an environment's root is still mounted under %s", roots)
		}
		if _, err := os.Stat(roots); !os.IsNotExist(err) {
			t.Errorf("%s is left after the driver closed (%v)", roots, err)
		}
	})
	d, err := libcontainer.New(libcontainer.Config{
		WorkDir:        workDir,
		CgroupParent:   fmt.Sprintf("/lambdagw-test/%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()),
		Seccomp:        seccomp,
		UserNamespaces: ids,
		Networks:       nets,
		Logger:         hclog.NewNullLogger(),
	})
	if err != nil {
		t.Fatalf("libcontainer driver: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

type harness struct {
	m    *sandbox.Manager
	logs *memLogs
}

func newHarness(t testing.TB, d sandbox.Driver, mod func(*sandbox.ManagerConfig)) *harness {
	t.Helper()
	logs := &memLogs{}
	cfg := sandbox.ManagerConfig{
		Driver:          d,
		Code:            dirCode{codeDir},
		Logs:            logs,
		Logger:          hclog.NewNullLogger(),
		MaxEnvironments: 10,
		IdleTimeout:     time.Minute,
		InitTimeout:     5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := sandbox.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if n := m.Stats().Environments; n != 0 {
			t.Errorf("%d environments left after shutdown", n)
		}
	})
	return &harness{m: m, logs: logs}
}

func testFunction(name string, mod func(*structs.Function)) *structs.Function {
	zero := time.Duration(0)
	fn := &structs.Function{
		Name: name, Runtime: "provided.al2023", CodeSha256: strings.Repeat("a", 64),
		MemoryMB: 128, Timeout: 5 * time.Second, EphemeralStorageMB: 512,
		RevisionID: "rev-1", FreezeDelay: &zero,
	}
	if mod != nil {
		mod(fn)
	}
	return fn
}

var reqSeq int64
var reqMu sync.Mutex

func request(payload string) *invoke.Request {
	reqMu.Lock()
	reqSeq++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", reqSeq)
	reqMu.Unlock()
	return &invoke.Request{RequestID: id, Payload: []byte(payload), InvokedFunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:test"}
}

func callFn(t *testing.T, h *harness, fn *structs.Function, payload string) *invoke.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.m.Invoke(ctx, fn, request(payload))
	if err != nil {
		t.Fatalf("invoke %s: %v", payload, err)
	}
	return resp
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

func forEachDriver(t *testing.T, f func(t *testing.T, d sandbox.Driver)) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) { f(t, dc.new(t)) })
	}
}

func TestWarmEnvironmentIsReusedAndFrozenBetweenInvocations(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("warm", nil)
		for want := 1; want <= 3; want++ {
			resp := callFn(t, h, fn, `{"mode":"counter"}`)
			if resp.FunctionError {
				t.Fatalf("function error: %s", resp.Payload)
			}
			if got := decode(t, resp.Payload)["count"]; got != float64(want) {
				t.Fatalf("count = %v, want %d (the warm environment must be reused)", got, want)
			}
			waitFor(t, "environment frozen", func() bool {
				envs := h.m.Environments()
				return len(envs) == 1 && envs[0].State == "frozen"
			})
		}
		if n := h.m.Stats().Environments; n != 1 {
			t.Fatalf("%d environments, want 1", n)
		}
	})
}

func TestLogTailHasStartOutputEndReportInOrder(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("logs", nil)
		req := request(`{"mode":"log","n":3}`)
		req.Tail = true
		resp, err := h.m.Invoke(context.Background(), fn, req)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(resp.LogTail)), "\n")
		want := []string{
			"START RequestId: " + req.RequestID + " Version: $LATEST",
			"log line 0", "log line 1", "log line 2", "no newline at the end",
			"END RequestId: " + req.RequestID,
		}
		if len(lines) != len(want)+1 {
			t.Fatalf("tail has %d lines, want %d:\n%s", len(lines), len(want)+1, resp.LogTail)
		}
		for i, w := range want {
			if lines[i] != w {
				t.Errorf("line %d = %q, want %q", i, lines[i], w)
			}
		}
		report := lines[len(lines)-1]
		for _, part := range []string{"REPORT RequestId: " + req.RequestID, "\tDuration: ", " ms\tBilled Duration: ", "\tMemory Size: 128 MB", "\tMax Memory Used: ", "\tInit Duration: "} {
			if !strings.Contains(report, part) {
				t.Errorf("REPORT %q lacks %q", report, part)
			}
		}
		// The function log has the same lines, after the INIT_START line.
		logged := h.logs.get("logs")
		if len(logged) < len(lines) || !strings.HasPrefix(logged[0], "INIT_START") {
			t.Fatalf("function log: %q", logged)
		}
		// A warm invocation's REPORT has no Init Duration.
		req2 := request(`{"mode":"hello"}`)
		req2.Tail = true
		resp2, err := h.m.Invoke(context.Background(), fn, req2)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(resp2.LogTail), "Init Duration") {
			t.Errorf("warm REPORT has an Init Duration: %s", resp2.LogTail)
		}
	})
}

func TestTimeoutResetsTheEnvironment(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("slow", func(f *structs.Function) { f.Timeout = time.Second })
		callFn(t, h, fn, `{"mode":"counter"}`)
		req := request(`{"mode":"sleep","ms":5000}`)
		req.Tail = true
		resp, err := h.m.Invoke(context.Background(), fn, req)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.FunctionError || resp.ErrorType != "Sandbox.Timedout" {
			t.Fatalf("got %+v, want a Sandbox.Timedout function error", resp)
		}
		body := decode(t, resp.Payload)
		if msg, _ := body["errorMessage"].(string); !strings.HasSuffix(msg, req.RequestID+" Task timed out after 1.00 seconds") {
			t.Errorf("errorMessage = %q", msg)
		}
		if !strings.Contains(string(resp.LogTail), "Status: timeout") {
			t.Errorf("REPORT lacks Status: timeout:\n%s", resp.LogTail)
		}
		// The next invocation runs in a fresh environment: globals start over.
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(1) {
			t.Fatalf("count after reset = %v, want 1", got)
		}
	})
}

func TestCrashIsRuntimeExitErrorAndResets(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("crash", nil)
		callFn(t, h, fn, `{"mode":"counter"}`)
		req := request(`{"mode":"crash"}`)
		req.Tail = true
		resp, err := h.m.Invoke(context.Background(), fn, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorType != "Runtime.ExitError" {
			t.Fatalf("error type %q, want Runtime.ExitError: %s", resp.ErrorType, resp.Payload)
		}
		msg, _ := decode(t, resp.Payload)["errorMessage"].(string)
		if want := "RequestId: " + req.RequestID + " Error: Runtime exited with error: exit status 3"; msg != want {
			t.Errorf("errorMessage = %q, want %q", msg, want)
		}
		if !strings.Contains(string(resp.LogTail), "about to crash") || !strings.Contains(string(resp.LogTail), "Error Type: Runtime.ExitError") {
			t.Errorf("log tail:\n%s", resp.LogTail)
		}
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(1) {
			t.Fatalf("count after crash = %v, want 1 (fresh environment)", got)
		}
	})
}

func TestFunctionErrorKeepsTheEnvironment(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("fails", nil)
		callFn(t, h, fn, `{"mode":"counter"}`)
		resp := callFn(t, h, fn, `{"mode":"error"}`)
		if !resp.FunctionError || resp.ErrorType != "errorString" {
			t.Fatalf("got %+v %s", resp, resp.Payload)
		}
		if msg := decode(t, resp.Payload)["errorMessage"]; msg != "something went wrong" {
			t.Errorf("errorMessage = %v", msg)
		}
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(3) {
			t.Fatalf("count = %v, want 3 (a handled error keeps the environment)", got)
		}
	})
}

// TestRuntimeAPIRefusesWhatARuntimeMayNotDo has the function itself call its Runtime API the
// ways a correct runtime never does, then checks the invocation and the environment survive.
func TestRuntimeAPIRefusesWhatARuntimeMayNotDo(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("probe", nil)
		resp := callFn(t, h, fn, `{"mode":"probe"}`)
		if resp.FunctionError {
			t.Fatalf("probe failed: %s", resp.Payload)
		}
		got := map[string]string{}
		if err := json.Unmarshal(resp.Payload, &got); err != nil {
			t.Fatalf("decoding %s: %v", resp.Payload, err)
		}
		want := map[string]string{
			"unknown path":          "404 InvalidRequest",
			"wrong method":          "405 InvalidRequest",
			"unknown request id":    "400 InvalidRequestID",
			"unknown action":        "404 InvalidRequest",
			"init error after init": "403 InvalidStateTransition",
			"expect continue":       "400 InvalidRequestID",
			"after expect continue": "404 InvalidRequest",
			"http/1.0":              "404 closed",
			"malformed":             "400 closed",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: got %q, want %q", k, got[k], v)
			}
		}
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(2) {
			t.Fatalf("count = %v, want 2 (refused calls leave the environment alone)", got)
		}
	})
}

// TestRuntimeAPIFloodIsBounded: a function that opens thousands of connections to its Runtime
// API, each with half a request, gets at most MaxRuntimeConns of them held; a 100 KB header and
// a header left unfinished past the deadline are cut off; the environment keeps working.
func TestRuntimeAPIFloodIsBounded(t *testing.T) {
	defer sandbox.SetHeaderTimeout(300 * time.Millisecond)()
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("flood", func(f *structs.Function) { f.Timeout = 60 * time.Second })
		resp := callFn(t, h, fn, `{"mode":"flood","n":3000,"size":500,"ms":1000}`)
		if resp.FunctionError {
			t.Fatalf("flood failed: %s", resp.Payload)
		}
		got := decode(t, resp.Payload)
		if held := got["held_max"].(float64); held > sandbox.MaxRuntimeConns || held < 1 {
			t.Errorf("the API held %v connections at once; want 1 to %d", held, sandbox.MaxRuntimeConns)
		}
		if got["dialed"] != float64(3000) {
			t.Errorf("dialed %v", got["dialed"])
		}
		if got["big_header_open"] != false {
			t.Errorf("a 100 KB header was kept: %v", got)
		}
		if got["slow_header_open"] != false {
			t.Errorf("an unfinished header was kept past the deadline: %v", got)
		}
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(2) {
			t.Fatalf("count = %v, want 2 (the flood left the environment working)", got)
		}
	})
}

// TestFirstAnswerWins: a second answer to an invocation is refused (403); the caller gets the
// first. The runtime exits on the refusal (aws-lambda-go does), so the next call starts afresh.
func TestFirstAnswerWins(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("twice", nil)
		resp := callFn(t, h, fn, `{"mode":"answer-twice"}`)
		if resp.FunctionError || string(resp.Payload) != `{"first":true}` {
			t.Fatalf("got %s (error %v), want the first answer", resp.Payload, resp.FunctionError)
		}
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(1) {
			t.Fatalf("count = %v, want 1 (a fresh environment)", got)
		}
		var answers string
		for _, l := range h.logs.get("twice") {
			if strings.HasPrefix(l, "answers:") {
				answers = l
			}
		}
		if answers != "answers: 202 403" {
			t.Errorf("runtime saw %q, want \"answers: 202 403\"", answers)
		}
	})
}

func TestInitFailureIsReportedAndRetriedOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("badinit", func(f *structs.Function) { f.Environment = map[string]string{"INIT_MODE": "crash"} })
		resp := callFn(t, h, fn, `{}`)
		if !resp.FunctionError || resp.ErrorType != "Runtime.ExitError" {
			t.Fatalf("got %+v %s", resp, resp.Payload)
		}
		var reports int
		for _, l := range h.logs.get("badinit") {
			if strings.HasPrefix(l, "INIT_REPORT") {
				reports++
				if !strings.Contains(l, "Status: error") || !strings.Contains(l, "Error Type: Runtime.ExitError") {
					t.Errorf("INIT_REPORT line: %q", l)
				}
			}
		}
		if reports != 2 {
			t.Errorf("%d INIT_REPORT lines, want 2 (the init and its suppressed retry): %q", reports, h.logs.get("badinit"))
		}
		waitFor(t, "no environment left", func() bool { return h.m.Stats().Environments == 0 })
	})
}

func TestInitTimeout(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, func(c *sandbox.ManagerConfig) { c.InitTimeout = 300 * time.Millisecond })
		fn := testFunction("hang", func(f *structs.Function) {
			f.Environment = map[string]string{"INIT_MODE": "hang"}
			f.Timeout = time.Second
		})
		resp := callFn(t, h, fn, `{}`)
		if !resp.FunctionError || resp.ErrorType != "Sandbox.Timedout" {
			t.Fatalf("got %+v %s", resp, resp.Payload)
		}
		found := false
		for _, l := range h.logs.get("hang") {
			if strings.HasPrefix(l, "INIT_REPORT") && strings.Contains(l, "Status: timeout") {
				found = true
			}
		}
		if !found {
			t.Errorf("no INIT_REPORT with Status: timeout: %q", h.logs.get("hang"))
		}
	})
}

func TestResponseTooLarge(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("big", nil)
		resp := callFn(t, h, fn, fmt.Sprintf(`{"mode":"big","n":%d}`, 7<<20))
		if resp.ErrorType != "Function.ResponseSizeTooLarge" {
			t.Fatalf("got %q %.200s", resp.ErrorType, resp.Payload)
		}
		// Just under the limit passes.
		resp = callFn(t, h, fn, fmt.Sprintf(`{"mode":"big","n":%d}`, 5<<20))
		if resp.FunctionError || len(resp.Payload) < 5<<20 {
			t.Fatalf("5 MB response: error %q, %d bytes", resp.ErrorType, len(resp.Payload))
		}
	})
}

func TestNoCapacityIsReportedNotQueued(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, func(c *sandbox.ManagerConfig) { c.MaxEnvironments = 1 })
		fn := testFunction("cap", nil)
		callFn(t, h, fn, `{}`)
		waitFor(t, "idle environment", func() bool { return len(h.m.Environments()) == 1 })
		done := make(chan *invoke.Response)
		go func() {
			resp, _ := h.m.Invoke(context.Background(), fn, request(`{"mode":"sleep","ms":1500}`))
			done <- resp
		}()
		waitFor(t, "busy environment", func() bool { return len(h.m.Environments()) == 0 })
		_, err := h.m.Invoke(context.Background(), fn, request(`{}`))
		if !errors.Is(err, invoke.ErrNoCapacity) {
			t.Fatalf("err = %v, want invoke.ErrNoCapacity", err)
		}
		if resp := <-done; resp == nil || resp.FunctionError {
			t.Fatalf("the running invocation failed: %+v", resp)
		}
	})
}

func TestIdleEnvironmentsAreReclaimed(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, func(c *sandbox.ManagerConfig) { c.IdleTimeout = 200 * time.Millisecond })
		callFn(t, h, testFunction("idle", nil), `{}`)
		waitFor(t, "idle environment reclaimed", func() bool { return h.m.Stats().Environments == 0 })
	})
}

func TestUpdatedFunctionGetsNewEnvironments(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		v1 := testFunction("upd", func(f *structs.Function) { f.Environment = map[string]string{"V": "1"} })
		callFn(t, h, v1, `{}`)
		v2 := testFunction("upd", func(f *structs.Function) { f.Environment = map[string]string{"V": "2"}; f.RevisionID = "rev-2" })
		h.m.Sync([]*structs.Function{v2}, nil)
		waitFor(t, "old revision retired", func() bool { return h.m.Stats().Environments == 0 })
		env := decode(t, callFn(t, h, v2, `{"mode":"env"}`).Payload)
		if env["V"] != "2" {
			t.Fatalf("V = %v, want 2", env["V"])
		}
	})
}

// TestCodeInUse: the code of an environment still running an invocation of a replaced revision
// is in use until that environment is gone, as is the code of every revision deployed.
func TestCodeInUse(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
		v1 := testFunction("code", nil)
		callFn(t, h, v1, `{}`)
		waitFor(t, "idle environment", func() bool { return len(h.m.Environments()) == 1 })
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = h.m.Invoke(context.Background(), v1, request(`{"mode":"sleep","ms":1000}`))
		}()
		waitFor(t, "the invocation running", func() bool { return len(h.m.Environments()) == 0 })
		v2 := testFunction("code", func(f *structs.Function) { f.CodeSha256 = b; f.RevisionID = "rev-2" })
		h.m.Sync([]*structs.Function{v2}, nil)
		if got := h.m.CodeInUse(); !slices.Equal(got, []string{a, b}) {
			t.Fatalf("while the old revision runs: %v, want a's and b's", got)
		}
		<-done
		waitFor(t, "the old revision's environment gone", func() bool { return slices.Equal(h.m.CodeInUse(), []string{b}) })
	})
}

func TestRuntimeEnvironmentVariables(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, func(c *sandbox.ManagerConfig) { c.Region = "eu-west-3" })
		fn := testFunction("envfn", func(f *structs.Function) {
			f.MemoryMB = 256
			f.Handler = "my.handler"
			f.Environment = map[string]string{"GREETING": "hi", "AWS_REGION": "ignored"}
		})
		env := decode(t, callFn(t, h, fn, `{"mode":"env"}`).Payload)
		for k, v := range map[string]string{
			"AWS_LAMBDA_FUNCTION_NAME": "envfn", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "_HANDLER": "my.handler", "AWS_REGION": "eu-west-3",
			"AWS_DEFAULT_REGION": "eu-west-3", "TZ": ":UTC", "GREETING": "hi",
			"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/envfn",
		} {
			if env[k] != v {
				t.Errorf("%s = %v, want %q", k, env[k], v)
			}
		}
		for _, k := range []string{"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_LAMBDA_LOG_STREAM_NAME"} {
			if env[k] == nil || env[k] == "" {
				t.Errorf("%s is not set", k)
			}
		}
		ctx := decode(t, callFn(t, h, fn, `{"mode":"context"}`).Payload)
		if ctx["function_arn"] != "arn:aws:lambda:us-east-1:000000000000:function:test" {
			t.Errorf("invoked function ARN = %v", ctx["function_arn"])
		}
		if dl, _ := ctx["deadline_ms"].(float64); time.UnixMilli(int64(dl)).Before(time.Now()) {
			t.Errorf("deadline %v is in the past", dl)
		}
	})
}

func TestShutdownLetsInFlightInvocationsFinish(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("drain", nil)
		callFn(t, h, fn, `{}`)
		waitFor(t, "idle environment", func() bool { return len(h.m.Environments()) == 1 })
		done := make(chan *invoke.Response, 1)
		go func() {
			resp, _ := h.m.Invoke(context.Background(), fn, request(`{"mode":"sleep","ms":500}`))
			done <- resp
		}()
		waitFor(t, "invocation running", func() bool { return len(h.m.Environments()) == 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.m.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		resp := <-done
		if resp == nil || resp.FunctionError {
			t.Fatalf("in-flight invocation did not finish cleanly: %+v", resp)
		}
		if _, err := h.m.Invoke(context.Background(), fn, request(`{}`)); !errors.Is(err, invoke.ErrShuttingDown) {
			t.Fatalf("invoke after shutdown: %v", err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countingDriver observes how many Create calls of the real driver run at once.
type countingDriver struct {
	sandbox.Driver
	mu        sync.Mutex
	now, peak int
}

func (c *countingDriver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	c.mu.Lock()
	c.now++
	c.peak = max(c.peak, c.now)
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.now--; c.mu.Unlock() }()
	return c.Driver.Create(ctx, spec)
}

// A burst of cold starts creates at most MaxParallelCreates environments at once; the others
// wait their turn and every invocation is answered.
func TestColdStartBurstIsCapped(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		cd := &countingDriver{Driver: d}
		h := newHarness(t, cd, func(c *sandbox.ManagerConfig) { c.MaxParallelCreates = 2; c.MaxEnvironments = 12 })
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				fn := testFunction(fmt.Sprintf("burst%d", i), nil) // one cold start each
				resp, err := h.m.Invoke(context.Background(), fn, request(`{}`))
				if err == nil && resp.FunctionError {
					err = fmt.Errorf("function error: %s", resp.Payload)
				}
				errs <- err
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if cd.peak > 2 {
			t.Fatalf("%d environments were created at once, over the cap of 2", cd.peak)
		}
		if cd.peak < 2 {
			t.Logf("the burst never overlapped (peak %d): the cap was not exercised", cd.peak)
		}
	})
}

// What a runtime wrote before its answer is in the function's log when the caller gets the
// answer: a caller reading the log then, or invoking again in another environment, sees the lines
// in the order the function made them.
func TestOutputLoggedBeforeAnswer(t *testing.T) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			h := newHarness(t, dc.new(t), nil)
			fn := testFunction("logs", nil)
			for i := 0; i < 30; i++ {
				callFn(t, h, fn, `{"mode":"log","n":3}`)
				lines := h.logs.get("logs")
				found := 0
				for _, l := range lines {
					if strings.Contains(l, "log line 2") {
						found++
					}
				}
				if found != i+1 {
					t.Fatalf("call %d: %d of its lines written before its answer are in the log: %q", i+1, found, lines)
				}
			}
		})
	}
}
