package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/lambdagw/gateway/internal/funclog"
)

// fakeLogs answers every read with two past entries, then (following) one new one.
type fakeLogs struct {
	mu   sync.Mutex
	last funclog.Params
}

func (f *fakeLogs) Read(_ context.Context, function string, p funclog.Params, out func(funclog.Entry) error) error {
	f.mu.Lock()
	f.last = p
	f.mu.Unlock()
	if function == "broken" {
		return errors.New("disk on fire")
	}
	for _, e := range []funclog.Entry{
		{Time: "2026-01-02T03:04:05.1Z", Node: "n1", Function: function, RequestID: "r1", Type: "platform", Message: "START RequestId: r1 Version: $LATEST"},
		{Time: "2026-01-02T03:04:05.2Z", Node: "n2", Function: function, Type: "error", Message: "[gateway] node n2 could not be read: refused"},
	} {
		if err := out(e); err != nil {
			return err
		}
	}
	if !p.Follow {
		return nil
	}
	if err := out(funclog.Entry{Type: funclog.TypeCaughtUp}); err != nil {
		return err
	}
	return out(funclog.Entry{Time: "2026-01-02T03:04:06Z", Node: "n3", Function: function, RequestID: "r2", Type: "function", Message: "later\tline"})
}

// TestLogsAPI: GET /v1/functions/{name}/logs keeps its text form by default, answers
// newline-delimited JSON with format=json (the web console's lines=50&follow=true&format=json),
// passes the parsed query on, and refuses each bad or hostile parameter with a 400 naming it.
func TestLogsAPI(t *testing.T) {
	logs := &fakeLogs{}
	_, base := newStack(t, stackOptions{logs: logs})
	if status, _, body := call(t, "POST", base+"/2015-03-31/functions", createRequest(t, "fn", nil)); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	get := func(q string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(base + "/v1/functions/fn/logs?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	status, typ, body := get("")
	if status != 200 || !strings.HasPrefix(typ, "text/plain") ||
		body != "2026-01-02T03:04:05.1Z\tSTART RequestId: r1 Version: $LATEST\n2026-01-02T03:04:05.2Z\t[gateway] node n2 could not be read: refused\n" {
		t.Fatalf("text: %d %s %q", status, typ, body)
	}
	status, typ, body = get("lines=50&follow=true&format=json")
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if status != 200 || typ != "application/x-ndjson" || len(lines) != 3 {
		t.Fatalf("json: %d %s %q", status, typ, body)
	}
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		for _, k := range []string{"time", "node", "request_id", "message"} {
			if _, ok := e[k]; !ok {
				t.Errorf("%q lacks %s", l, k)
			}
		}
		if e["type"] == funclog.TypeCaughtUp {
			t.Errorf("the caught-up marker was written: %q", l)
		}
	}
	logs.mu.Lock()
	p := logs.last
	logs.mu.Unlock()
	if p.Limit != 50 || !p.Follow || !p.JSON {
		t.Errorf("params: %+v", p)
	}
	if status, _, _ := get("since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z&filter=" + url.QueryEscape(strings.Repeat("*a", 100)) + "&request_id=abc"); status != 200 {
		t.Errorf("far times, a starry filter: %d", status)
	}
	for _, c := range []struct{ q, param string }{ // the error type is X-Amzn-ErrorType's
		{"lines=-1", "lines"}, {"lines=1e9", "lines"}, {"lines=1&lines=2", "lines"},
		{"since=yesterday", "since"}, {"since=1e400h", "since"}, {"since=-5m", "since"}, {"since=99999999999h", "since"},
		{"until=2026-02-30T00:00:00Z", "until"}, {"since=1m&until=1h", "until"},
		{"filter=" + strings.Repeat("a", 257), "filter"},
		{"request_id=" + url.QueryEscape("a\nb"), "request_id"}, {"request_id=" + url.QueryEscape("a b"), "request_id"},
		{"follow=yes", "follow"}, {"format=xml", "format"},
	} {
		status, typ, body := call(t, "GET", base+"/v1/functions/fn/logs?"+c.q, "")
		var e struct{ Type, Message string }
		_ = json.Unmarshal([]byte(body), &e)
		if status != 400 || typ != "InvalidParameterValueException" || !strings.HasPrefix(e.Message, c.param+":") {
			t.Errorf("%.60s: %d %s; want 400 naming %s", c.q, status, body, c.param)
		}
	}
	if status, _, _ := get("lines=1"); status != 200 {
		t.Error("a good query after bad ones failed")
	}
	// A log that cannot be read at all is an error answer, not an empty 200.
	if status, _, body := call(t, "POST", base+"/2015-03-31/functions", createRequest(t, "broken", nil)); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, _, body := call(t, "GET", base+"/v1/functions/broken/logs", ""); status != 500 || !strings.Contains(body, "internal error") {
		t.Errorf("an unreadable log: %d %s", status, body)
	}
	resp, err := http.Get(base + "/v1/functions/nope/logs")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("an unknown function's logs: %d", resp.StatusCode)
		}
	}
}
