package httpapi_test

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// get makes a GET request and returns the response's request ID.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Amzn-RequestId")
}

// TestAccessLog: with AccessLog, each request is one INFO line on http.access with its method,
// path, function (when the route names one), status, duration as text and request ID; without
// it, nothing is logged at INFO.
func TestAccessLog(t *testing.T) {
	var out logBuffer
	_, url := newStack(t, stackOptions{accessLog: true, logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})})
	missing := get(t, url+"/2015-03-31/functions/nope")
	listed := get(t, url+"/2015-03-31/functions/")
	if missing == "" || listed == "" {
		t.Fatal("no request IDs")
	}
	logs := out.String()
	dur := `duration=[0-9.]+(ns|us|ms|s) `
	for _, want := range []string{
		`\[INFO\]  http\.access: request: method=GET path=/2015-03-31/functions/nope function=nope status=404 ` + dur + `request_id=` + missing + `\n`,
		`\[INFO\]  http\.access: request: method=GET path=/2015-03-31/functions/ status=200 ` + dur + `request_id=` + listed + `\n`,
	} {
		if !regexp.MustCompile(want).MatchString(logs) {
			t.Errorf("no line matching %q in:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "http.access"); n != 2 {
		t.Errorf("want 2 access lines, got %d:\n%s", n, logs)
	}

	var quiet logBuffer
	_, url = newStack(t, stackOptions{logger: hclog.New(&hclog.LoggerOptions{Output: &quiet, Level: hclog.Info})})
	get(t, url+"/2015-03-31/functions/nope")
	if strings.Contains(quiet.String(), "request") {
		t.Errorf("without access_log, a request was logged at INFO:\n%s", quiet.String())
	}
}
