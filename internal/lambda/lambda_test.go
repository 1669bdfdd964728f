package lambda

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

func TestParseFunctionName(t *testing.T) {
	cases := []struct{ in, name, qualifier string }{
		{"hello", "hello", ""},
		{"hello:live", "hello", "live"},
		{"123456789012:function:hello", "hello", ""},
		{"123456789012:function:hello:3", "hello", "3"},
		{"arn:aws:lambda:us-east-1:123456789012:function:hello", "hello", ""},
		{"arn:aws:lambda:us-east-1:123456789012:function:hello:$LATEST", "hello", "$LATEST"},
	}
	for _, c := range cases {
		name, q, err := ParseFunctionName(c.in)
		if err != nil || name != c.name || q != c.qualifier {
			t.Errorf("%q: got %q %q %v", c.in, name, q, err)
		}
	}
	for _, bad := range []string{"", "a:b:c:d:e", "arn:aws:lambda:us-east-1:1:layer:x"} {
		if _, _, err := ParseFunctionName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestErrorRoundTrip(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, "req-1", TooManyRequests("ConcurrentInvocationLimitExceeded", "Rate Exceeded."))
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || resp.Header.Get("X-Amzn-ErrorType") != "TooManyRequestsException" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	e := ReadError(resp, body)
	if e.Type != "TooManyRequestsException" || e.Reason != "ConcurrentInvocationLimitExceeded" || e.Message != "Rate Exceeded." {
		t.Fatalf("read back %+v", e)
	}
	// Internal errors never leak their cause.
	rec = httptest.NewRecorder()
	WriteError(rec, "req-2", io.ErrUnexpectedEOF)
	if rec.Code != 500 || rec.Header().Get("X-Amzn-ErrorType") != "ServiceException" || len(rec.Body.String()) == 0 ||
		contains(rec.Body.String(), "unexpected EOF") {
		t.Fatalf("internal error: %d %s", rec.Code, rec.Body.String())
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestConfigurationFrom(t *testing.T) {
	d := 5 * time.Millisecond
	c := ConfigurationFrom(&structs.Function{Name: "f", Runtime: "provided", CodeSha256: "00ff", MemoryMB: 128,
		Timeout: 3 * time.Second, EphemeralStorageMB: 512, FreezeDelay: &d}, "eu-west-1")
	if c.FunctionArn != "arn:aws:lambda:eu-west-1:000000000000:function:f" || c.CodeSha256 != "AP8=" || c.Timeout != 3 ||
		c.Version != "$LATEST" || *c.GatewayOptions.FreezeDelayMs != 5 || c.Environment != nil {
		t.Fatalf("%+v", c)
	}
	// Variables are answered when there are some, and only then (as Lambda).
	c = ConfigurationFrom(&structs.Function{Name: "f", Runtime: "provided", Environment: map[string]string{"A": "1"}}, "eu-west-1")
	if c.Environment == nil || c.Environment.Variables["A"] != "1" {
		t.Fatalf("%+v", c.Environment)
	}
}
