package sandbox_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// extensionLayer is a layer whose extensions/ holds the test function under each name (it runs
// as an external extension from there, its behaviour chosen by the name).
func extensionLayer(t testing.TB, names ...string) string {
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

// An external extension that exits during Init, before or after registering (under its own name
// or, refused, under another), fails Init with Extension.Crash.
func TestExternalExtensionCrash(t *testing.T) {
	for _, name := range []string{"early-exit", "crash-after-register", "impostor"} {
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
			// An external extension registers under its file's name, or not at all.
			if name == "impostor" && logIndex(lines, "EXT not-impostor registered 403", "Extension.InvalidExtensionName") < 0 {
				t.Fatalf("a registration under another name was not refused:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// An external extension that exits after Init resets the environment: the invocation it was in
// ends with Extension.Crash (its caller already had the runtime's answer) and the next runs in a
// new environment.
func TestExternalExtensionDiesLater(t *testing.T) {
	h, fnWith := extHarness(t, "dies")
	fn := fnWith("dying", nil)
	r1 := request(`{"mode":"hello","name":"a"}`)
	if resp, err := h.m.Invoke(context.Background(), fn, r1); err != nil || resp == nil {
		t.Fatalf("the first call: %v %+v", err, resp)
	}
	lines := waitLog(t, h, "dying", "REPORT", r1.RequestID, "Status: error", "Error Type: Extension.Crash")
	if logIndex(lines, "EXTENSION Name: dies State: Crashed") < 0 {
		t.Fatalf("the crash is not logged:\n%s", strings.Join(lines, "\n"))
	}
	if resp, err := h.m.Invoke(context.Background(), fn, request(`{"mode":"hello","name":"b"}`)); err != nil || resp == nil {
		t.Fatalf("the next call: %v %+v", err, resp)
	}
	if lines := h.logs.get("dying"); strings.Count(strings.Join(lines, "\n"), "INIT_START") < 2 {
		t.Fatalf("the next call did not run in a new environment:\n%s", strings.Join(lines, "\n"))
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

// teleEvent is an event as a Telemetry or Logs API subscriber receives it.
type teleEvent struct {
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

// seen asks the extension listening on port what it received, through the function.
func seen(t *testing.T, h *harness, fn *structs.Function, port int) []teleEvent {
	t.Helper()
	got := decode(t, callFn(t, h, fn, fmt.Sprintf(`{"mode":"fetch","path":"http://sandbox.localdomain:%d/seen"}`, port)).Payload)
	body, _ := got["body"].(string)
	var evs []teleEvent
	if err := json.Unmarshal([]byte(body), &evs); err != nil {
		t.Fatalf("what the extension saw: %v (%v)", err, got)
	}
	return evs
}

// firstOf is the index of the first event of type typ whose record contains all of parts.
func firstOf(evs []teleEvent, typ string, parts ...string) int {
	return slices.IndexFunc(evs, func(ev teleEvent) bool {
		if ev.Type != typ {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(string(ev.Record), p) {
				return false
			}
		}
		return true
	})
}

// An extension subscribed to the Telemetry API gets every platform event of Init and of each
// invocation, the function's lines and the extensions' lines, in Lambda's order and shapes,
// POSTed to its listener at sandbox.localdomain; one subscribed to the Logs API gets the older
// shapes. Before their SHUTDOWN, they have everything.
func TestTelemetryAPI(t *testing.T) {
	h, fnWith := extHarness(t, "telemetry", "logs")
	fn := fnWith("telemetry", map[string]string{"TEST_SIGTERM": "1"})
	r1 := request(`{"mode":"log","n":3}`)
	if resp, err := h.m.Invoke(context.Background(), fn, r1); err != nil || resp.FunctionError {
		t.Fatalf("invoking: %v %+v", err, resp)
	}
	var evs []teleEvent
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if evs = seen(t, h, fn, 4243); firstOf(evs, "platform.report", r1.RequestID) >= 0 {
			break
		}
	}
	at := func(typ string, parts ...string) int {
		i := firstOf(evs, typ, parts...)
		if i < 0 {
			t.Errorf("no %s with %q among what the extension got:\n%s", typ, parts, dump(evs))
		}
		return i
	}
	initStart := at("platform.initStart", `"initializationType":"on-demand"`, `"functionName":"telemetry"`)
	at("platform.extension", `"name":"logs"`, `"events":["INVOKE","SHUTDOWN"]`)
	at("platform.extension", `"name":"telemetry"`, `"state":"Ready"`)
	sub := at("platform.telemetrySubscription", `"name":"telemetry"`, `"types":["platform","function","extension"]`)
	at("extension", "EXT telemetry registered 200")
	rtInit := at("platform.initRuntimeDone", `"status":"success"`)
	initRep := at("platform.initReport", `"status":"success"`, `"durationMs"`)
	start := at("platform.start", r1.RequestID, `"version":"$LATEST"`)
	line := at("function", "log line 1")
	rtDone := at("platform.runtimeDone", r1.RequestID, `"status":"success"`, `"producedBytes"`, `"responseLatency"`)
	report := at("platform.report", r1.RequestID, `"billedDurationMs"`, `"maxMemoryUsedMB"`, `"memorySizeMB":128`, `"initDurationMs"`)
	if t.Failed() {
		return
	}
	if !(initStart < sub && sub < rtInit && rtInit < initRep && initRep < start && start < line && line < rtDone && rtDone < report) {
		t.Fatalf("order: initStart %d, subscription %d, initRuntimeDone %d, initReport %d, start %d, line %d, runtimeDone %d, report %d:\n%s",
			initStart, sub, rtInit, initRep, start, line, rtDone, report, dump(evs))
	}
	for _, ev := range evs {
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", ev.Time); err != nil {
			t.Fatalf("a time not in Lambda's form: %+v", ev)
		}
	}
	logs := seen(t, h, fn, 4244)
	for _, want := range []struct{ typ, part string }{
		{"platform.logsSubscription", `"name":"logs"`}, {"platform.start", r1.RequestID}, {"platform.end", r1.RequestID},
		{"platform.report", `"initDurationMs"`}, {"function", "log line 2"}, {"platform.extension", `"name":"telemetry"`},
	} {
		if firstOf(logs, want.typ, want.part) < 0 {
			t.Errorf("the Logs API subscriber has no %s with %q:\n%s", want.typ, want.part, dump(logs))
		}
	}
	if firstOf(logs, "platform.initStart") >= 0 || firstOf(logs, "platform.telemetrySubscription") >= 0 {
		t.Errorf("the Logs API subscriber got the Telemetry API's events:\n%s", dump(logs))
	}
	if err := h.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := h.logs.get("telemetry")
	if logIndex(lines, "EXT telemetry saw", "platform.report=", "function=", "extension=") < 0 || logIndex(lines, "EXT logs saw", "platform.end=") < 0 {
		t.Fatalf("the subscribers' summaries at SHUTDOWN:\n%s", strings.Join(lines, "\n"))
	}
}

// A subscriber that does not keep up never holds the function up: what its queue cannot take is
// dropped and counted in platform.logsDropped, and what it received and what was dropped add up
// to every line the function wrote.
func TestTelemetryDrops(t *testing.T) {
	h, fnWith := extHarness(t, "slow")
	fn := fnWith("flood", nil)
	const n = 20000
	start := time.Now()
	if resp, err := h.m.Invoke(context.Background(), fn, request(fmt.Sprintf(`{"mode":"log","n":%d}`, n))); err != nil || resp.FunctionError {
		t.Fatalf("invoking: %v %+v", err, resp)
	}
	t.Logf("%d lines written in %v with a subscriber taking 300 ms per batch", n, time.Since(start))
	received, dropped := 0, 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		received, dropped = 0, 0
		for _, ev := range seen(t, h, fn, 4245) {
			switch ev.Type {
			case "function":
				received++
			case "platform.logsDropped":
				var r struct{ DroppedRecords int }
				_ = json.Unmarshal(ev.Record, &r)
				dropped += r.DroppedRecords
			}
		}
		if received+dropped >= n+1 {
			break
		}
	}
	if dropped == 0 || received+dropped != n+1 {
		t.Fatalf("received %d and dropped %d of %d lines", received, dropped, n+1)
	}
}

func dump(evs []teleEvent) string {
	var b strings.Builder
	for i, ev := range evs {
		fmt.Fprintf(&b, "%d %s %s %s\n", i, ev.Time, ev.Type, ev.Record)
	}
	return b.String()
}

// An image's /opt/extensions holds external extensions too: an upper layer's whiteout removes a
// lower layer's.
func TestExternalExtensionsInAnImage(t *testing.T) {
	bootstrap, err := os.ReadFile(filepath.Join(codeDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	base := unpackedLayer(t,
		layerFile{name: "app/handler", typ: tar.TypeReg, body: bootstrap, mode: 0o755},
		layerFile{name: "opt/extensions/img-watch", typ: tar.TypeReg, body: bootstrap, mode: 0o755},
		layerFile{name: "opt/extensions/removed", typ: tar.TypeReg, body: bootstrap, mode: 0o755})
	top := unpackedLayer(t, layerFile{name: "opt/extensions/.wh.removed", typ: tar.TypeReg})
	root := &sandbox.ImageRoot{Layers: []string{base, top}, Entrypoint: []string{"/app/handler"}}
	h := newHarness(t, drivers()[0].new(t), func(c *sandbox.ManagerConfig) { c.Images = staticImages{root} })
	fn := testFunction("imgext", func(f *structs.Function) {
		f.PackageType = structs.PackageImage
		f.ImageURI = "registry.example/team/img:1"
		f.ResolvedImageURI = "registry.example/team/img@sha256:" + strings.Repeat("2", 64)
	})
	req := request(`{"mode":"hello","name":"a"}`)
	if resp, err := h.m.Invoke(context.Background(), fn, req); err != nil || resp.FunctionError {
		t.Fatalf("invoking: %v %+v", err, resp)
	}
	lines := waitLog(t, h, "imgext", "EXT img-watch done", req.RequestID)
	if logIndex(lines, "EXTENSION Name: img-watch State: Registered") < 0 || logIndex(lines, "removed") >= 0 {
		t.Fatalf("the image's extensions:\n%s", strings.Join(lines, "\n"))
	}
}
