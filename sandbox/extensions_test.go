package sandbox_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// logIndex is the index of the first line of lines containing all of parts, -1 for none.
func logIndex(lines []string, parts ...string) int {
	return slices.IndexFunc(lines, func(l string) bool {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	})
}

// An internal extension registers during Init, gets an INVOKE event with each invocation, and
// the invocation ends (its END and REPORT, the next invocation's START) only once the extension
// polled again.
func TestInternalExtension(t *testing.T) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			h := newHarness(t, dc.new(t), nil)
			fn := testFunction("withext", func(f *structs.Function) {
				f.Environment = map[string]string{"TEST_EXTENSION": "watcher", "TEST_EXTENSION_WORK_MS": "150", "TEST_SIGTERM": "1"}
			})
			r1, r2 := request(`{"mode":"hello","name":"a"}`), request(`{"mode":"hello","name":"b"}`)
			for _, rq := range []*invoke.Request{r1, r2} {
				resp, err := h.m.Invoke(context.Background(), fn, rq)
				if err != nil || resp.FunctionError {
					t.Fatalf("invoking with an extension: %v %+v", err, resp)
				}
			}
			// The second START waits for the first invocation's END, which waits for the
			// extension's poll after its work.
			var lines []string
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				lines = h.logs.get("withext")
				if logIndex(lines, "EXT watcher done", r2.RequestID) >= 0 && logIndex(lines, "REPORT", r2.RequestID) >= 0 {
					break
				}
			}
			reg := logIndex(lines, "EXT watcher registered 200", `"functionName":"withext"`)
			inv1 := logIndex(lines, "EXT watcher INVOKE", r1.RequestID, "true", "arn:aws:lambda:")
			done1 := logIndex(lines, "EXT watcher done", r1.RequestID)
			end1 := logIndex(lines, "END RequestId: "+r1.RequestID)
			start2 := logIndex(lines, "START RequestId: "+r2.RequestID)
			inv2 := logIndex(lines, "EXT watcher INVOKE", r2.RequestID)
			if reg < 0 || inv1 < 0 || done1 < 0 || end1 < 0 || start2 < 0 || inv2 < 0 ||
				!(reg < inv1 && inv1 < done1 && done1 < end1 && end1 < start2 && start2 <= inv2) {
				t.Fatalf("order of the extension's events and the invocations (registered %d, INVOKE %d, done %d, END %d, START %d, INVOKE %d):\n%s",
					reg, inv1, done1, end1, start2, inv2, strings.Join(lines, "\n"))
			}
			// Registering after Init is refused.
			got := decode(t, callFn(t, h, fn, `{"mode":"register"}`).Payload)
			if got["status"] != float64(403) || !strings.Contains(got["body"].(string), "Extension.RegistrationClosed") {
				t.Fatalf("a registration after Init: %v", got)
			}
			// Shutting down gives the runtime SIGTERM (an internal extension gets no SHUTDOWN),
			// thawing the frozen environment for it.
			if err := h.m.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			lines = h.logs.get("withext")
			if logIndex(lines, "RUNTIME SIGTERM") < 0 || logIndex(lines, "EXT watcher SHUTDOWN") >= 0 {
				t.Fatalf("the shutdown of a function with an internal extension:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// An extension that never polls after its INVOKE event holds the invocation until the
// function's timeout, which resets the environment; the caller has its answer meanwhile.
func TestExtensionThatNeverPolls(t *testing.T) {
	h := newHarness(t, drivers()[2].new(t), nil)
	fn := testFunction("stall", func(f *structs.Function) {
		f.Timeout = time.Second
		f.Environment = map[string]string{"TEST_EXTENSION": "stall-internal"}
	})
	req := request(`{"mode":"hello","name":"a"}`)
	resp, err := h.m.Invoke(context.Background(), fn, req)
	if err != nil || resp.FunctionError {
		t.Fatalf("the caller's answer: %v %+v", err, resp)
	}
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = h.logs.get("stall")
		if logIndex(lines, "Task timed out") >= 0 {
			break
		}
	}
	if logIndex(lines, "REPORT", req.RequestID, "Status: timeout") < 0 {
		t.Fatalf("the invocation the extension held was not ended by the timeout:\n%s", strings.Join(lines, "\n"))
	}
	if resp := callFn(t, h, fn, `{"mode":"hello","name":"b"}`); resp.FunctionError {
		t.Fatalf("the next invocation: %s", resp.Payload)
	}
}

// An extension's init/error fails Init with its error type.
func TestExtensionInitError(t *testing.T) {
	h := newHarness(t, drivers()[2].new(t), nil)
	fn := testFunction("extinit", func(f *structs.Function) {
		f.Environment = map[string]string{"TEST_EXTENSION": "broken", "TEST_EXTENSION_INIT_ERROR": "Extension.ConfigMissing"}
	})
	resp, err := h.m.Invoke(context.Background(), fn, request(`{}`))
	if err == nil && (resp == nil || !resp.FunctionError || !strings.Contains(string(resp.Payload), "Extension.ConfigMissing")) {
		t.Fatalf("Init with a failing extension: %v %+v", err, resp)
	}
	if err != nil && !strings.Contains(err.Error(), "Extension.ConfigMissing") {
		t.Fatalf("Init with a failing extension: %v", err)
	}
	if lines := h.logs.get("extinit"); logIndex(lines, "INIT_REPORT", "Extension.ConfigMissing") < 0 {
		t.Fatalf("INIT_REPORT does not name the extension's error:\n%s", strings.Join(lines, "\n"))
	}
}

// What a careless or hostile extension tries is refused with Lambda's status and error type,
// and the environment still serves: no name, a name with '/', an unknown event, a body that is
// not JSON, no or an unknown identifier, the wrong method, an unknown path, a name registered
// twice, and an eleventh extension.
func TestExtensionMisuse(t *testing.T) {
	h := newHarness(t, drivers()[2].new(t), nil)
	fn := testFunction("misuse", func(f *structs.Function) {
		f.Environment = map[string]string{"TEST_EXTENSION": "probe", "TEST_EXTENSION_MISUSE": "1"}
	})
	if resp := callFn(t, h, fn, `{"mode":"hello","name":"a"}`); resp.FunctionError {
		t.Fatalf("invoking after the misuse: %s", resp.Payload)
	}
	lines := h.logs.get("misuse")
	want := map[string]string{
		"no-name": "403 Extension.InvalidExtensionName", "bad-name": "403 Extension.InvalidExtensionName",
		"bad-event": "400 Extension.InvalidEventType", "not-json": "400 InvalidRequestFormat",
		"no-id": "403 Extension.MissingHeader", "unknown-id": "403 Extension.UnknownExtensionIdentifier",
		"wrong-method": "405 InvalidRequest", "unknown-path": "404 InvalidRequest",
		"same-name": "403 Extension.InvalidExtensionState", "internal-shutdown": "403 ShutdownEventNotSupportedForInternalExtension", "extra-2": "200 ", "extra-10": "200 ",
		"extra-11": "403 Extension.TooManyExtensions",
	}
	for what, got := range want {
		if logIndex(lines, "EXT misuse "+what+" "+got) < 0 {
			t.Errorf("%s: want %q in the log:\n%s", what, got, strings.Join(lines, "\n"))
		}
	}
}
