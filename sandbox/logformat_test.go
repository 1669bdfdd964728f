package sandbox

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// The runtime's JSON lines below the application log level are dropped; no level, an unknown
// one, and plain text read as INFO or are kept; Text keeps everything.
func TestLogFormatFilter(t *testing.T) {
	lines := []string{
		`{"level":"DEBUG","msg":"debug"}`, `{"level":"info","msg":"info"}`, `{"level":"WARN","msg":"warn"}`,
		`{"msg":"no level"}`, `{"level":"LOUD","msg":"unknown level"}`, `plain text`, `{"level":"TRACE"`,
		` {"level":"ERROR","msg":"spaced"} `, `{"level":"debug","nested":{"level":"ERROR"}}`,
	}
	f := newLogFormat(&structs.LoggingConfig{LogFormat: "JSON", ApplicationLogLevel: "WARN"})
	got := f.filter(append([]string(nil), lines...))
	want := []string{`{"level":"WARN","msg":"warn"}`, `plain text`, `{"level":"TRACE"`, ` {"level":"ERROR","msg":"spaced"} `}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("WARN kept %q, want %q", got, want)
	}
	f = newLogFormat(&structs.LoggingConfig{LogFormat: "JSON"}) // INFO
	if got := f.filter(append([]string(nil), lines...)); len(got) != 7 {
		t.Errorf("INFO kept %d of %d: %q", len(got), len(lines), got)
	}
	if got := newLogFormat(nil).filter(append([]string(nil), lines...)); len(got) != len(lines) {
		t.Errorf("Text dropped lines: %q", got)
	}
	if f := newLogFormat(&structs.LoggingConfig{LogFormat: "JSON", SystemLogLevel: "WARN"}); f.system(rankInfo) || !f.system(rankWarn) {
		t.Errorf("system WARN: %+v", f)
	}
}

// The platform records are Lambda's shapes, valid JSON whatever the request id holds.
func TestPlatformRecords(t *testing.T) {
	var rec struct {
		Time   string         `json:"time"`
		Type   string         `json:"type"`
		Record map[string]any `json:"record"`
	}
	parse := func(s string) {
		t.Helper()
		rec.Record = nil
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if _, err := time.Parse(recordTime, rec.Time); err != nil {
			t.Fatalf("time %q: %v", rec.Time, err)
		}
	}
	id := `req"with\quotes`
	parse(startRecord(id, "$LATEST"))
	if rec.Type != "platform.start" || rec.Record["requestId"] != id || rec.Record["version"] != "$LATEST" {
		t.Errorf("start: %+v", rec)
	}
	parse(reportRecord(id, "timeout", "Sandbox.Timedout", reportMetrics{dur: 1234567 * time.Microsecond, initDur: 50 * time.Millisecond, memoryMB: 128, maxMB: 42}))
	m, _ := rec.Record["metrics"].(map[string]any)
	if rec.Type != "platform.report" || rec.Record["status"] != "timeout" || rec.Record["errorType"] != "Sandbox.Timedout" ||
		m["durationMs"] != 1234.57 || m["billedDurationMs"] != float64(1235) || m["memorySizeMB"] != float64(128) ||
		m["maxMemoryUsedMB"] != float64(42) || m["initDurationMs"] != float64(50) {
		t.Errorf("report: %+v", rec)
	}
	parse(reportRecord("r", "success", "", reportMetrics{dur: time.Millisecond, memoryMB: 128}))
	if m, _ := rec.Record["metrics"].(map[string]any); m["initDurationMs"] != nil || rec.Record["errorType"] != nil {
		t.Errorf("warm report: %+v", rec)
	}
	parse(runtimeDoneRecord("r", "success", "", time.Millisecond))
	if rec.Type != "platform.runtimeDone" || rec.Record["status"] != "success" {
		t.Errorf("runtimeDone: %+v", rec)
	}
	var e map[string]string
	if err := json.Unmarshal([]byte(errorRecord("r", "Task timed out")), &e); err != nil || e["level"] != "ERROR" || e["requestId"] != "r" || e["message"] != "Task timed out" {
		t.Errorf("error record: %v %v", e, err)
	}
}
