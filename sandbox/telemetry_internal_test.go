package sandbox

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lambdagw/gateway/internal/invoke"
)

// addrInstance is an Instance whose Runtime API is at addr; nothing else of it is used.
type addrInstance struct {
	Instance
	addr string
}

func (i addrInstance) RuntimeAPIAddr() string { return i.addr }

func subscriptionEnv() *environment {
	return &environment{inst: addrInstance{addr: "127.0.0.1:9001"}}
}

// What a hostile extension would subscribe with is refused, naming the problem: a destination
// outside the environment, the Runtime API's own port, another scheme, buffering outside
// Lambda's bounds, an unknown type or schema.
func TestSubscriptionRefusals(t *testing.T) {
	ok := `{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080/t"}}`
	if _, err := subscriptionEnv().parseSubscription([]byte(ok), false); err != nil {
		t.Fatalf("a valid subscription: %v", err)
	}
	for name, c := range map[string]struct{ body, want string }{
		"another host":    {strings.Replace(ok, "sandbox.localdomain", "10.0.0.1", 1), "inside the environment"},
		"the agent's api": {strings.Replace(ok, "8080", "9001", 1), "Runtime API"},
		"no port":         {strings.Replace(ok, ":8080", "", 1), "not a port"},
		"https":           {strings.Replace(ok, "http://", "https://", 1), "not an http:// URL"},
		"credentials":     {strings.Replace(ok, "http://", "http://u:p@", 1), "not an http:// URL"},
		"file":            {strings.Replace(ok, "http://sandbox.localdomain:8080/t", "file:///etc/passwd", 1), "not an http:// URL"},
		"schema":          {strings.Replace(ok, "2022-12-13", "2099-01-01", 1), "schemaVersion"},
		"type":            {strings.Replace(ok, `"platform"`, `"kernel"`, 1), "not a telemetry type"},
		"no types":        {strings.Replace(ok, `"platform"`, ``, 1), "at least one"},
		"protocol":        {strings.Replace(ok, `"HTTP"`, `"UDP"`, 1), "not HTTP or TCP"},
		"tcp port 0":      {`{"schemaVersion":"2022-07-01","types":["function"],"destination":{"protocol":"TCP","port":0}}`, "not a port"},
		"few items":       {strings.Replace(ok, `"types"`, `"buffering":{"maxItems":10},"types"`, 1), "maxItems 10"},
		"many bytes":      {strings.Replace(ok, `"types"`, `"buffering":{"maxBytes":1073741824},"types"`, 1), "maxBytes"},
		"short timeout":   {strings.Replace(ok, `"types"`, `"buffering":{"timeoutMs":1},"types"`, 1), "timeoutMs"},
		"not json":        {`types=all`, "not JSON"},
	} {
		_, err := subscriptionEnv().parseSubscription([]byte(c.body), false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}

// FuzzSubscription: whatever a subscription request says, parsing never panics, and one that
// is accepted asks for something, buffers within Lambda's bounds, and is delivered only to a
// port of the environment's own loopback other than the Runtime API's.
func FuzzSubscription(f *testing.F) {
	f.Add(`{"schemaVersion":"2022-12-13","types":["platform","function","extension"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243/t"}}`, false)
	f.Add(`{"types":["platform","function"],"buffering":{"timeoutMs":100},"destination":{"protocol":"HTTP","URI":"http://sandbox:1234/lambda_logs"}}`, true)
	f.Add(`{"schemaVersion":"2022-07-01","types":["function"],"destination":{"protocol":"TCP","port":4244}}`, false)
	f.Add(`{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://169.254.169.254:80/latest"}}`, false)
	f.Add(`{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain@10.0.0.1:80/"}}`, false)
	f.Fuzz(func(t *testing.T, body string, logsAPI bool) {
		s, err := subscriptionEnv().parseSubscription([]byte(body), logsAPI)
		if err != nil {
			if err.Error() == "" || !utf8.ValidString(err.Error()) && utf8.ValidString(body) {
				t.Fatalf("an unclear error: %q", err)
			}
			return
		}
		if s.kinds == 0 || s.maxItems < minBufItems || s.maxItems > maxBufItems || s.maxBytes < minBufBytes || s.maxBytes > maxBufBytes ||
			s.timeout < minBufTimeoutMs*time.Millisecond || s.timeout > maxBufTimeoutMs*time.Millisecond {
			t.Fatalf("accepted outside the bounds: %+v", s)
		}
		if s.port == "9001" || s.port == "" {
			t.Fatalf("accepted port %q", s.port)
		}
		if !s.tcp {
			u, err := url.Parse(s.url)
			if err != nil || u.Scheme != "http" || u.Port() != s.port {
				t.Fatalf("accepted URL %q (port %s)", s.url, s.port)
			}
			switch u.Hostname() {
			case "sandbox.localdomain", "sandbox", "localhost", "127.0.0.1":
			default:
				t.Fatalf("accepted host %q", u.Hostname())
			}
		}
		// An event encodes as JSON, whatever the line holds.
		var ev struct{ Record string }
		line := body
		if b := appendLineRecord(nil, []byte("2026-01-01T00:00:00.000Z"), "function", line); json.Unmarshal(b, &ev) != nil ||
			(utf8.ValidString(line) && ev.Record != line) {
			t.Fatalf("a line does not survive its encoding: %q -> %q", line, b)
		}
	})
}

// The INVOKE event, appended by hand, is the JSON Lambda sends, whatever the ids hold.
func TestInvokeEventJSON(t *testing.T) {
	inv := &invocation{req: &invoke.Request{RequestID: `a"b\c`, InvokedFunctionARN: "arn:aws:lambda:us-east-1:0:function:f\n", TraceID: "Root=1-\x01"},
		deadline: time.UnixMilli(1700000000123)}
	var got struct {
		EventType, RequestID, InvokedFunctionArn string
		DeadlineMs                               int64
		Tracing                                  struct{ Type, Value string }
	}
	if err := json.Unmarshal(invokeEvent(inv), &got); err != nil {
		t.Fatalf("%s: %v", invokeEvent(inv), err)
	}
	if got.EventType != "INVOKE" || got.RequestID != inv.req.RequestID || got.InvokedFunctionArn != inv.req.InvokedFunctionARN ||
		got.DeadlineMs != 1700000000123 || got.Tracing.Type != "X-Amzn-Trace-Id" || got.Tracing.Value != inv.req.TraceID {
		t.Fatalf("the INVOKE event: %+v", got)
	}
}
