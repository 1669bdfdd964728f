package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// extensionLayer is a layer whose extensions/ holds the test function under each name (it runs
// as an external extension from there, its behaviour chosen by the name).
func extensionLayer(t *testing.T, names ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layer")
	if err := os.MkdirAll(filepath.Join(dir, "extensions"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(codeDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, "extensions", n), bin, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// extHarness runs functions whose one layer is extensionLayer(names...) on the libcontainer driver.
func extHarness(t *testing.T, names ...string) (*harness, func(name string, env map[string]string) *structs.Function) {
	sha := func(c byte) string { return strings.Repeat(string(c), 64) }
	code := shaCode{sha('c'): codeDir, sha('x'): extensionLayer(t, names...)}
	h := newHarness(t, drivers()[0].new(t), func(c *sandbox.ManagerConfig) { c.Code = code })
	return h, func(name string, env map[string]string) *structs.Function {
		return testFunction(name, func(f *structs.Function) {
			f.CodeSha256 = sha('c')
			f.Layers = []structs.FunctionLayer{{Name: "exts", Version: 1, CodeSha256: sha('x')}}
			f.Environment = env
		})
	}
}

// waitLog waits until the function's log has a line containing all of parts.
func waitLog(t *testing.T, h *harness, fn string, parts ...string) []string {
	t.Helper()
	var lines []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if lines = h.logs.get(fn); logIndex(lines, parts...) >= 0 {
			return lines
		}
	}
	t.Fatalf("no line with %q in the log:\n%s", parts, strings.Join(lines, "\n"))
	return nil
}

// External extensions from /opt/extensions start before the runtime, in name order, and
// register under their file names; each gets INVOKE with every invocation, which ends once
// both polled again; at the shutdown they get SHUTDOWN (spindown) first, and the runtime its
// SIGTERM after them.
func TestExternalExtensions(t *testing.T) {
	h, fnWith := extHarness(t, "b-watch", "a-watch")
	fn := fnWith("external", map[string]string{"TEST_EXTENSION_WORK_MS": "100", "TEST_SIGTERM": "1"})
	r1, r2 := request(`{"mode":"hello","name":"a"}`), request(`{"mode":"hello","name":"b"}`)
	for _, rq := range []*invoke.Request{r1, r2} {
		if resp, err := h.m.Invoke(context.Background(), fn, rq); err != nil || resp.FunctionError {
			t.Fatalf("invoking with external extensions: %v %+v", err, resp)
		}
	}
	lines := waitLog(t, h, "external", "REPORT", r2.RequestID)
	regA := logIndex(lines, "EXTENSION Name: a-watch State: Registered Events: [INVOKE,SHUTDOWN]")
	regB := logIndex(lines, "EXTENSION Name: b-watch State: Registered")
	doneA := logIndex(lines, "EXT a-watch done", r1.RequestID)
	doneB := logIndex(lines, "EXT b-watch done", r1.RequestID)
	end1 := logIndex(lines, "END RequestId: "+r1.RequestID)
	start2 := logIndex(lines, "START RequestId: "+r2.RequestID)
	if regA < 0 || regB < 0 || doneA < 0 || doneB < 0 || end1 < 0 || start2 < 0 ||
		!(regA < regB && regB < end1 && doneA < end1 && doneB < end1 && end1 < start2) {
		t.Fatalf("order (registered %d %d, done %d %d, END %d, START %d):\n%s", regA, regB, doneA, doneB, end1, start2, strings.Join(lines, "\n"))
	}
	// Every environment variable the runtime has, the extension has: it saw the function's name.
	if logIndex(lines, "EXT a-watch registered 200", `"functionName":"external"`) < 0 {
		t.Fatalf("the registration's answer:\n%s", strings.Join(lines, "\n"))
	}
	if err := h.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines = h.logs.get("external")
	sdA := logIndex(lines, "EXT a-watch SHUTDOWN", "spindown")
	doneSD := logIndex(lines, "EXT b-watch done")
	term := logIndex(lines, "RUNTIME SIGTERM")
	if sdA < 0 || term < 0 || logIndex(lines, "EXT b-watch SHUTDOWN", "spindown") < 0 || !(sdA < term) || doneSD < 0 {
		t.Fatalf("the shutdown (SHUTDOWN %d, SIGTERM %d):\n%s", sdA, term, strings.Join(lines, "\n"))
	}
}

// An external extension that exits during Init, before or after registering, fails Init with
// Extension.Crash; so does one that exits later, with the invocation it was in.
func TestExternalExtensionCrash(t *testing.T) {
	for _, name := range []string{"early-exit", "crash-after-register"} {
		t.Run(name, func(t *testing.T) {
			h, fnWith := extHarness(t, name)
			fn := fnWith("crashing", nil)
			resp, err := h.m.Invoke(context.Background(), fn, request(`{}`))
			if err == nil && (resp == nil || !resp.FunctionError || !strings.Contains(string(resp.Payload), "Extension.Crash")) {
				t.Fatalf("Init with a crashing extension: %v %+v", err, resp)
			}
			lines := waitLog(t, h, "crashing", "INIT_REPORT", "Status: error", "Error Type: Extension.Crash")
			if logIndex(lines, "EXTENSION Name: "+name+" State: Crashed") < 0 {
				t.Fatalf("the crash is not logged:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// An extension that never polls after SHUTDOWN is killed at the 2,000 ms deadline and the
// shutdown goes on; one that never polls after INVOKE holds the invocation until the
// function's timeout, while the caller has its answer.
func TestExternalExtensionsThatHang(t *testing.T) {
	h, fnWith := extHarness(t, "deaf", "stall")
	fn := fnWith("hanging", nil)
	fn.Timeout = time.Second
	req := request(`{"mode":"hello","name":"a"}`)
	if resp, err := h.m.Invoke(context.Background(), fn, req); err != nil || resp.FunctionError {
		t.Fatalf("the caller's answer: %v %+v", err, resp)
	}
	waitLog(t, h, "hanging", "REPORT", req.RequestID, "Status: timeout")
	if resp, err := h.m.Invoke(context.Background(), fn, request(`{"mode":"hello","name":"b"}`)); err != nil || resp.FunctionError {
		t.Fatalf("the next invocation: %v %+v", err, resp)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- h.m.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the shutdown waits for an extension that never polls after SHUTDOWN")
	}
	lines := h.logs.get("hanging")
	if logIndex(lines, "EXT deaf SHUTDOWN") < 0 {
		t.Fatalf("no SHUTDOWN event:\n%s", strings.Join(lines, "\n"))
	}
	t.Logf("shutdown with an extension ignoring SHUTDOWN: %v", time.Since(start))
}
