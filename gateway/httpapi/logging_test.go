package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLoggingConfig: LoggingConfig is taken on CreateFunction and UpdateFunctionConfiguration
// and answered as Lambda does: Text to /aws/lambda/NAME by default, the levels (INFO unless set)
// with JSON only; levels with Text, unknown formats or levels, and bad log groups are refused
// with a 400 naming the field.
func TestLoggingConfig(t *testing.T) {
	_, url := newStack(t, stackOptions{})
	logging := func(name string) map[string]string {
		t.Helper()
		status, _, body := call(t, "GET", url+"/2015-03-31/functions/"+name+"/configuration", "")
		var out struct{ LoggingConfig map[string]string }
		if status != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("get %s: %d %s", name, status, body)
		}
		return out.LoggingConfig
	}
	if status, _, body := call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "plain", nil)); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	if got := logging("plain"); len(got) != 2 || got["LogFormat"] != "Text" || got["LogGroup"] != "/aws/lambda/plain" {
		t.Fatalf("default LoggingConfig: %v", got)
	}
	if status, _, body := call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "js", map[string]any{
		"LoggingConfig": map[string]any{"LogFormat": "JSON", "SystemLogLevel": "WARN", "LogGroup": "/custom/group"}})); status != 201 {
		t.Fatalf("create JSON: %d %s", status, body)
	}
	if got := logging("js"); got["LogFormat"] != "JSON" || got["ApplicationLogLevel"] != "INFO" || got["SystemLogLevel"] != "WARN" || got["LogGroup"] != "/custom/group" {
		t.Fatalf("JSON LoggingConfig: %v", got)
	}
	// An update changes what it sets; back to Text drops the levels.
	if status, _, body := call(t, "PUT", url+"/2015-03-31/functions/js/configuration", `{"LoggingConfig": {"ApplicationLogLevel": "DEBUG"}}`); status != 200 {
		t.Fatalf("update level: %d %s", status, body)
	}
	if got := logging("js"); got["ApplicationLogLevel"] != "DEBUG" || got["SystemLogLevel"] != "WARN" || got["LogGroup"] != "/custom/group" {
		t.Fatalf("after a level update: %v", got)
	}
	if status, _, body := call(t, "PUT", url+"/2015-03-31/functions/js/configuration", `{"LoggingConfig": {"LogFormat": "Text"}}`); status != 200 {
		t.Fatalf("update to Text: %d %s", status, body)
	}
	if got := logging("js"); len(got) != 2 || got["LogFormat"] != "Text" || got["LogGroup"] != "/custom/group" {
		t.Fatalf("after Text: %v", got)
	}
	for name, c := range map[string]struct {
		lc    map[string]any
		field string
	}{
		"levels with text":  {map[string]any{"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"}, "LoggingConfig.ApplicationLogLevel"},
		"levels, no format": {map[string]any{"SystemLogLevel": "WARN"}, "LoggingConfig.SystemLogLevel"},
		"xml":               {map[string]any{"LogFormat": "XML"}, "LoggingConfig.LogFormat"},
		"bad app level":     {map[string]any{"LogFormat": "JSON", "ApplicationLogLevel": "LOUD"}, "LoggingConfig.ApplicationLogLevel"},
		"system trace":      {map[string]any{"LogFormat": "JSON", "SystemLogLevel": "TRACE"}, "LoggingConfig.SystemLogLevel"},
		"bad group":         {map[string]any{"LogGroup": "a group with spaces"}, "LoggingConfig.LogGroup"},
		"long group":        {map[string]any{"LogGroup": "/" + strings.Repeat("g", 512)}, "LoggingConfig.LogGroup"},
	} {
		t.Run(name, func(t *testing.T) {
			status, typ, body := call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "refused", map[string]any{"LoggingConfig": c.lc}))
			if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, c.field) {
				t.Fatalf("%d %s %s; want 400 naming %s", status, typ, body, c.field)
			}
			lc, _ := json.Marshal(c.lc)
			status, typ, body = call(t, "PUT", url+"/2015-03-31/functions/plain/configuration", `{"LoggingConfig": `+string(lc)+`}`)
			if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, c.field) {
				t.Fatalf("update: %d %s %s; want 400 naming %s", status, typ, body, c.field)
			}
		})
	}
}
