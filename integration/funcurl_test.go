package integration

// End-to-end tests of function URLs (buffered and streamed), CORS, SigV4-signed URLs and
// InvokeWithResponseStream, against real agents with real sandboxes, through real clients:
// Go's net/http, the curl binary and aws-sdk-go-v2.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// urlDomain is the agent's default url_domain; curl resolves *.localhost to the loopback itself.
const urlDomain = "lambda-url.localhost"

// fnHCL declares the test function as name, with more HCL (a url block) in its body.
func fnHCL(name, timeout, memoryMB, body string) string {
	return codeHCL(name, fnDir, timeout, memoryMB, body)
}

// codeHCL is fnHCL for the code in dir.
func codeHCL(name, dir, timeout, memoryMB, body string) string {
	return fmt.Sprintf(`
function %q {
  runtime   = "provided.al2023"
  code      = %q
  memory_mb = %s
  timeout   = %q
  %s
}
`, name, dir, memoryMB, timeout, body)
}

// applyHCL applies the functions in hcl to the agent.
func applyHCL(t *testing.T, a *agentProc, hcl string) {
	t.Helper()
	if stdout, stderr, code := a.cli("apply", "-address", a.addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, stdout, stderr)
	}
}

// httpPort is the agent's HTTP port.
func (a *agentProc) httpPort() string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(a.addr, "http://"))
	return port
}

// urlHost is the host (with the agent's port) of the function URL id.
func (a *agentProc) urlHost(id string) string { return id + "." + urlDomain + ":" + a.httpPort() }

// urlBase is http://<id>.lambda-url.localhost:<port>.
func (a *agentProc) urlBase(id string) string { return "http://" + a.urlHost(id) }

// urlClient connects to the agent whatever host a request names, so requests carry the
// function URL's host name in their URL and Host header as a browser's would.
func (a *agentProc) urlClient(t *testing.T) *http.Client {
	hostport := strings.TrimPrefix(a.addr, "http://")
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, hostport)
		},
		DisableCompression: true, // no Accept-Encoding the event would show
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// httpResult is a whole HTTP answer.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func doRequest(t *testing.T, c *http.Client, req *http.Request) httpResult {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: body}
}

func newRequest(t *testing.T, method, url string, body []byte, headers ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}

// checkLambdaError checks Lambda's error shape: the status, X-Amzn-ErrorType and a JSON body
// with a message.
func checkLambdaError(t *testing.T, what string, r httpResult, status int, errType string) {
	t.Helper()
	if r.status != status || r.header.Get("X-Amzn-ErrorType") != errType {
		t.Errorf("%s: status %d, X-Amzn-ErrorType %q; want %d %s (body %s)", what, r.status, r.header.Get("X-Amzn-ErrorType"), status, errType, r.body)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Errorf("%s: the error body is not JSON: %q", what, r.body)
		return
	}
	msg, _ := m["message"].(string)
	if msg == "" {
		msg, _ = m["Message"].(string)
	}
	if msg == "" {
		t.Errorf("%s: the error body has no message: %s", what, r.body)
	}
	if r.header.Get("X-Amzn-RequestId") == "" {
		t.Errorf("%s: no X-Amzn-RequestId", what)
	}
}

// urlEvent is the payload format 2.0 event, as the echo mode returns it.
type urlEvent struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters"`
	RequestContext        struct {
		AccountID  string `json:"accountId"`
		APIID      string `json:"apiId"`
		Authorizer *struct {
			IAM *struct {
				AccessKey string `json:"accessKey"`
				AccountID string `json:"accountId"`
				CallerID  string `json:"callerId"`
				UserARN   string `json:"userArn"`
				UserID    string `json:"userId"`
			} `json:"iam"`
		} `json:"authorizer"`
		DomainName   string `json:"domainName"`
		DomainPrefix string `json:"domainPrefix"`
		HTTP         struct {
			Method    string `json:"method"`
			Path      string `json:"path"`
			Protocol  string `json:"protocol"`
			SourceIP  string `json:"sourceIp"`
			UserAgent string `json:"userAgent"`
		} `json:"http"`
		RequestID string `json:"requestId"`
		RouteKey  string `json:"routeKey"`
		Stage     string `json:"stage"`
		Time      string `json:"time"`
		TimeEpoch int64  `json:"timeEpoch"`
	} `json:"requestContext"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

// decodeURLEvent decodes an echoed event. encoding/json matches keys case-insensitively, so the
// exact key names are checked on the raw object too.
func decodeURLEvent(t *testing.T, body []byte) urlEvent {
	t.Helper()
	var ev urlEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("decoding the event %s: %v", body, err)
	}
	var raw struct {
		Top map[string]json.RawMessage
		RC  map[string]json.RawMessage
	}
	_ = json.Unmarshal(body, &raw.Top)
	_ = json.Unmarshal(raw.Top["requestContext"], &raw.RC)
	for _, k := range []string{"version", "routeKey", "rawPath", "rawQueryString", "headers", "requestContext", "isBase64Encoded"} {
		if _, ok := raw.Top[k]; !ok {
			t.Errorf("the event has no key %q: %s", k, body)
		}
	}
	for _, k := range []string{"accountId", "apiId", "domainName", "domainPrefix", "http", "requestId", "routeKey", "stage", "time", "timeEpoch"} {
		if _, ok := raw.RC[k]; !ok {
			t.Errorf("the event's requestContext has no key %q: %s", k, body)
		}
	}
	return ev
}

// runCurl runs the curl binary and returns its stdout, stderr and exit code.
func runCurl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running curl %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// parseCurlResponse splits the output of curl -i into status, header and body.
func parseCurlResponse(t *testing.T, out string) httpResult {
	t.Helper()
	head, body, ok := strings.Cut(out, "\r\n\r\n")
	if !ok {
		t.Fatalf("curl -i output without a head: %q", out)
	}
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head + "\r\n\r\n")))
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	var proto string
	var status int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &status); err != nil {
		t.Fatalf("curl status line %q: %v", line, err)
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("curl head %q: %v", head, err)
	}
	return httpResult{status: status, header: http.Header(mh), body: []byte(body)}
}

// counterOf calls a function URL in counter mode: the count of invocations its (warm)
// environment served, this one included.
func counterOf(t *testing.T, c *http.Client, req *http.Request) int {
	t.Helper()
	r := doRequest(t, c, req)
	var v struct{ Count int }
	if r.status != 200 || json.Unmarshal(r.body, &v) != nil || v.Count == 0 {
		t.Fatalf("counter: %d %s", r.status, r.body)
	}
	return v.Count
}

// TestFunctionURLBuffered calls a BUFFERED function URL with Go's client and curl.
func TestFunctionURLBuffered(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "furl"})
	applyHCL(t, a, fnHCL("buf", "10s", "128", `url { auth_type = "NONE" }`)+fnHCL("plain", "10s", "128", ""))
	c := a.urlClient(t)
	base := a.urlBase("buf")

	t.Run("EventShape", func(t *testing.T) {
		req := newRequest(t, "POST", base+"/some/path?b=2&a=1&a=x%2Fy&sp=a+b", []byte("hello"),
			"X-Multi", "one", "X-Multi", "two", "Cookie", "c1=v1; c2=v2", "User-Agent", "funcurl-test/1.0",
			"Content-Type", "text/plain")
		before := time.Now()
		r := doRequest(t, c, req)
		after := time.Now()
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Echo") != "yes" {
			t.Fatalf("echo: %d %v %s", r.status, r.header, r.body)
		}
		ev := decodeURLEvent(t, r.body)
		if ev.Version != "2.0" || ev.RouteKey != "$default" || ev.RawPath != "/some/path" || ev.RawQueryString != "b=2&a=1&a=x%2Fy&sp=a+b" {
			t.Errorf("version %q routeKey %q rawPath %q rawQueryString %q", ev.Version, ev.RouteKey, ev.RawPath, ev.RawQueryString)
		}
		if want := map[string]string{"a": "1,x/y", "b": "2", "sp": "a b"}; !mapsEqual(ev.QueryStringParameters, want) {
			t.Errorf("queryStringParameters %v, want %v", ev.QueryStringParameters, want)
		}
		if !slices.Equal(ev.Cookies, []string{"c1=v1", "c2=v2"}) {
			t.Errorf("cookies %q", ev.Cookies)
		}
		h := ev.Headers
		if h["x-multi"] != "one,two" || h["content-type"] != "text/plain" || h["user-agent"] != "funcurl-test/1.0" ||
			h["host"] != a.urlHost("buf") || h["content-length"] != "5" {
			t.Errorf("headers %v", h)
		}
		// What Lambda's front end adds about the connection.
		if h["x-forwarded-for"] != "127.0.0.1" || h["x-forwarded-proto"] != "http" || h["x-forwarded-port"] != a.httpPort() {
			t.Errorf("x-forwarded-* headers: %v", h)
		}
		for k := range h {
			if k != strings.ToLower(k) || k == "cookie" {
				t.Errorf("header key %q in the event (keys are lower case, cookies go to cookies)", k)
			}
		}
		rc := ev.RequestContext
		if rc.AccountID != "anonymous" || rc.APIID != "buf" || rc.DomainName != "buf."+urlDomain || rc.DomainPrefix != "buf" ||
			rc.RouteKey != "$default" || rc.Stage != "$default" || rc.Authorizer != nil {
			t.Errorf("requestContext %+v", rc)
		}
		if rc.HTTP.Method != "POST" || rc.HTTP.Path != "/some/path" || rc.HTTP.Protocol != "HTTP/1.1" ||
			rc.HTTP.SourceIP != "127.0.0.1" || rc.HTTP.UserAgent != "funcurl-test/1.0" {
			t.Errorf("requestContext.http %+v", rc.HTTP)
		}
		if rc.RequestID == "" || rc.RequestID != r.header.Get("X-Amzn-RequestId") {
			t.Errorf("requestId %q, X-Amzn-RequestId %q", rc.RequestID, r.header.Get("X-Amzn-RequestId"))
		}
		if rc.TimeEpoch < before.Add(-time.Second).UnixMilli() || rc.TimeEpoch > after.Add(time.Second).UnixMilli() {
			t.Errorf("timeEpoch %d is not between %d and %d", rc.TimeEpoch, before.UnixMilli(), after.UnixMilli())
		}
		if at, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.Time); err != nil || at.Unix() != rc.TimeEpoch/1000 {
			t.Errorf("time %q (%v) does not match timeEpoch %d", rc.Time, err, rc.TimeEpoch)
		}
		if ev.Body != "hello" || ev.IsBase64Encoded {
			t.Errorf("body %q, isBase64Encoded %v", ev.Body, ev.IsBase64Encoded)
		}
	})

	t.Run("BinaryBodyIsBase64", func(t *testing.T) {
		bin := []byte{0, 1, 2, 0xfe, 0xff, '\n', 'x'}
		r := doRequest(t, c, newRequest(t, "POST", base+"/bin", bin, "Content-Type", "application/octet-stream"))
		ev := decodeURLEvent(t, r.body)
		got, err := base64.StdEncoding.DecodeString(ev.Body)
		if r.status != 200 || !ev.IsBase64Encoded || err != nil || !bytes.Equal(got, bin) {
			t.Errorf("binary body: %d isBase64Encoded %v body %q (%v)", r.status, ev.IsBase64Encoded, ev.Body, err)
		}
		// A JSON body travels as text.
		r = doRequest(t, c, newRequest(t, "POST", base+"/json", []byte(`{"k":"<v>"}`), "Content-Type", "application/json"))
		if ev := decodeURLEvent(t, r.body); ev.IsBase64Encoded || ev.Body != `{"k":"<v>"}` {
			t.Errorf("JSON body: isBase64Encoded %v body %q", ev.IsBase64Encoded, ev.Body)
		}
	})

	t.Run("Response", func(t *testing.T) {
		r := doRequest(t, c, newRequest(t, "GET", base+"/?mode=respond&status=201&header=v&cookies=a%3D1%7Cb%3D2&value=hi", nil))
		if r.status != 201 || r.header.Get("X-Custom") != "v" || !slices.Equal(r.header.Values("Set-Cookie"), []string{"a=1", "b=2"}) ||
			string(r.body) != "hi" || r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Amzn-RequestId") == "" {
			t.Errorf("respond: %d %v %q", r.status, r.header, r.body)
		}
		r = doRequest(t, c, newRequest(t, "GET", base+"/?mode=respond&status=200&header=b&value=bytes%20out&b64=true", nil))
		if r.status != 200 || string(r.body) != "bytes out" || r.header.Get("Content-Type") != "application/octet-stream" ||
			r.header.Get("Content-Length") != "9" {
			t.Errorf("base64 response: %d %v %q", r.status, r.header, r.body)
		}
		// A status without a body drops the one the function set.
		r = doRequest(t, c, newRequest(t, "GET", base+"/?mode=respond&status=204&header=n&value=dropped", nil))
		if r.status != 204 || len(r.body) != 0 || r.header.Get("X-Custom") != "n" {
			t.Errorf("204 response: %d %v %q", r.status, r.header, r.body)
		}
	})

	t.Run("Curl", func(t *testing.T) {
		dir := t.TempDir()
		bin := filepath.Join(dir, "body.bin")
		if err := os.WriteFile(bin, []byte{0xff, 0, 'a'}, 0o644); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := runCurl(t, "-sS", "-i", "-b", "k1=v1; k2=v2", "-H", "X-Twice: 1", "-H", "X-Twice: 2",
			"-H", "Content-Type: application/octet-stream", "--data-binary", "@"+bin, base+"/curl/p?z=1&z=2")
		if code != 0 {
			t.Fatalf("curl exited %d: %s", code, stderr)
		}
		r := parseCurlResponse(t, out)
		if r.status != 200 {
			t.Fatalf("curl echo: %d %s", r.status, r.body)
		}
		ev := decodeURLEvent(t, r.body)
		got, _ := base64.StdEncoding.DecodeString(ev.Body)
		if ev.RawPath != "/curl/p" || ev.QueryStringParameters["z"] != "1,2" || !slices.Equal(ev.Cookies, []string{"k1=v1", "k2=v2"}) ||
			ev.Headers["x-twice"] != "1,2" || ev.Headers["host"] != a.urlHost("buf") || !ev.IsBase64Encoded || !bytes.Equal(got, []byte{0xff, 0, 'a'}) ||
			!strings.HasPrefix(ev.RequestContext.HTTP.UserAgent, "curl/") || ev.RequestContext.RequestID != r.header.Get("X-Amzn-RequestId") {
			t.Errorf("curl event: %s", r.body)
		}
		out, stderr, code = runCurl(t, "-sS", "-i", base+"/?mode=respond&status=202&header=c&cookies=a%3D1%7Cb%3D2&value=from%20curl")
		if code != 0 {
			t.Fatalf("curl exited %d: %s", code, stderr)
		}
		r = parseCurlResponse(t, out)
		if r.status != 202 || r.header.Get("X-Custom") != "c" || !slices.Equal(r.header.Values("Set-Cookie"), []string{"a=1", "b=2"}) || string(r.body) != "from curl" {
			t.Errorf("curl respond: %d %v %q", r.status, r.header, r.body)
		}
	})

	t.Run("PathRouting", func(t *testing.T) {
		for _, c := range []struct{ path, rawPath string }{
			{"/fn/buf/x/y%2Fz?q=1", "/x/y%2Fz"},
			{"/fn/buf", "/"},
			{"/fn/buf/", "/"},
		} {
			r := doRequest(t, http.DefaultClient, newRequest(t, "GET", a.addr+c.path, nil))
			if r.status != 200 {
				t.Errorf("%s: %d %s", c.path, r.status, r.body)
				continue
			}
			ev := decodeURLEvent(t, r.body)
			if ev.RawPath != c.rawPath || ev.RequestContext.HTTP.Path != c.rawPath || ev.RequestContext.APIID != "buf" ||
				ev.RequestContext.DomainName != "buf."+urlDomain || ev.Headers["host"] != strings.TrimPrefix(a.addr, "http://") {
				t.Errorf("%s: rawPath %q http.path %q apiId %q domainName %q host %q", c.path, ev.RawPath, ev.RequestContext.HTTP.Path,
					ev.RequestContext.APIID, ev.RequestContext.DomainName, ev.Headers["host"])
			}
		}
		// curl keeps the escaped path as given.
		out, stderr, code := runCurl(t, "-sS", "-i", a.addr+"/fn/buf/a%20b/c?x=%2F")
		if code != 0 {
			t.Fatalf("curl exited %d: %s", code, stderr)
		}
		if ev := decodeURLEvent(t, parseCurlResponse(t, out).body); ev.RawPath != "/a%20b/c" || ev.QueryStringParameters["x"] != "/" {
			t.Errorf("curl /fn/ path: rawPath %q query %v", ev.RawPath, ev.QueryStringParameters)
		}
	})

	t.Run("HostRouting", func(t *testing.T) {
		// With the port (the URLs above) and without it; the domain is case-insensitive.
		for _, host := range []string{"buf." + urlDomain, "buf.LAMBDA-URL.localhost:" + a.httpPort()} {
			req := newRequest(t, "GET", a.addr+"/h?x=1", nil)
			req.Host = host
			r := doRequest(t, http.DefaultClient, req)
			if r.status != 200 {
				t.Errorf("Host %s: %d %s", host, r.status, r.body)
				continue
			}
			if ev := decodeURLEvent(t, r.body); ev.Headers["host"] != host || ev.RawPath != "/h" || ev.RequestContext.APIID != "buf" {
				t.Errorf("Host %s: host %q rawPath %q apiId %q", host, ev.Headers["host"], ev.RawPath, ev.RequestContext.APIID)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		checkLambdaError(t, "unknown id by host", doRequest(t, c, newRequest(t, "GET", a.urlBase("nope")+"/", nil)), 404, "ResourceNotFoundException")
		checkLambdaError(t, "unknown id by path", doRequest(t, c, newRequest(t, "GET", a.addr+"/fn/nope/x", nil)), 404, "ResourceNotFoundException")
		checkLambdaError(t, "no id", doRequest(t, c, newRequest(t, "GET", a.addr+"/fn/", nil)), 404, "ResourceNotFoundException")
		checkLambdaError(t, "function without a url, by host", doRequest(t, c, newRequest(t, "POST", a.urlBase("plain")+"/", []byte("{}"))), 404, "ResourceNotFoundException")
		checkLambdaError(t, "function without a url, by path", doRequest(t, c, newRequest(t, "GET", a.addr+"/fn/plain/", nil)), 404, "ResourceNotFoundException")
		// The function itself exists: only its URL does not.
		if r := a.invoke("plain", `{}`, nil); r.status != 200 {
			t.Errorf("invoking plain: %d %s", r.status, r.body)
		}
	})

	t.Run("FunctionError", func(t *testing.T) {
		r := doRequest(t, c, newRequest(t, "GET", base+"/?mode=error", nil))
		if r.status != 502 || string(r.body) != "Internal Server Error" || r.header.Get("X-Amzn-RequestId") == "" {
			t.Errorf("function error: %d %v %q", r.status, r.header, r.body)
		}
	})

	t.Run("Methods", func(t *testing.T) {
		for _, m := range []string{"PUT", "DELETE", "PATCH"} {
			r := doRequest(t, c, newRequest(t, m, base+"/m", []byte(`{"k":1}`), "Content-Type", "application/json"))
			if r.status != 200 {
				t.Errorf("%s: %d %s", m, r.status, r.body)
				continue
			}
			if ev := decodeURLEvent(t, r.body); ev.RequestContext.HTTP.Method != m || ev.Body != `{"k":1}` || ev.IsBase64Encoded {
				t.Errorf("%s: method %q body %q", m, ev.RequestContext.HTTP.Method, ev.Body)
			}
		}
		// HEAD reaches the function (its status and header come back) and gets no body.
		resp, err := c.Do(newRequest(t, "HEAD", base+"/?mode=respond&status=203&header=head&value=hello", nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 203 || resp.Header.Get("X-Custom") != "head" || len(body) != 0 || resp.ContentLength != 5 {
			t.Errorf("HEAD: %d %v content length %d body %q", resp.StatusCode, resp.Header, resp.ContentLength, body)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// readLines reads body line by line and records when each line arrived, relative to start.
func readLines(body io.Reader, start time.Time) (lines []string, at []time.Duration, err error) {
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			lines = append(lines, line)
			at = append(at, time.Since(start))
		}
		if err == io.EOF {
			return lines, at, nil
		}
		if err != nil {
			return lines, at, err
		}
	}
}

// TestStreamFunctionURL calls a RESPONSE_STREAM function URL: the body arrives as the
// function writes it, with its prelude's head, and a failure in mid-stream cuts it off.
func TestStreamFunctionURL(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "fstream"})
	applyHCL(t, a, fnHCL("streamer", "30s", "128", `url { invoke_mode = "RESPONSE_STREAM" }`)+
		fnHCL("bufstream", "30s", "128", `url { invoke_mode = "BUFFERED" }`))
	c := a.urlClient(t)
	base := a.urlBase("streamer")
	const want = "chunk 0\nchunk 1\nchunk 2\nchunk 3\n"

	t.Run("ChunksArriveAsWritten", func(t *testing.T) {
		start := time.Now()
		resp, err := c.Do(newRequest(t, "GET", base+"/s?mode=stream&n=4&ms=400&url=true", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		lines, at, err := readLines(resp.Body, start)
		if err != nil {
			t.Fatalf("reading the stream: %v (read %q)", err, lines)
		}
		if strings.Join(lines, "") != want {
			t.Fatalf("body %q, want %q", strings.Join(lines, ""), want)
		}
		// The chunks are 400 ms apart: 1.2 s between the first and the last when streamed.
		if gap := at[len(at)-1] - at[0]; gap < 800*time.Millisecond {
			t.Errorf("the first chunk arrived only %v before the last (arrivals %v): the response was not streamed", gap, at)
		}
		if resp.StatusCode != 201 || resp.Header.Get("X-Streamed") != "yes" || resp.Header.Get("Content-Type") != "text/plain" ||
			!slices.Equal(resp.Header.Values("Set-Cookie"), []string{"a=1", "b=2; Path=/"}) || resp.Header.Get("X-Amzn-RequestId") == "" {
			t.Errorf("head: %d %v", resp.StatusCode, resp.Header)
		}
		if resp.ContentLength != -1 || !slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
			t.Errorf("content length %d, transfer encoding %v: want a chunked response", resp.ContentLength, resp.TransferEncoding)
		}
	})

	t.Run("Curl", func(t *testing.T) {
		// curl -N prints each chunk as it comes: time the lines on its stdout.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		hdr := filepath.Join(t.TempDir(), "head")
		cmd := exec.CommandContext(ctx, "curl", "-sS", "-N", "-D", hdr, base+"/c?mode=stream&n=4&ms=400&url=true")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines, at, rerr := readLines(stdout, start)
		if err := cmd.Wait(); err != nil || rerr != nil {
			t.Fatalf("curl: %v %v %s", err, rerr, stderr.String())
		}
		if strings.Join(lines, "") != want {
			t.Fatalf("curl body %q", strings.Join(lines, ""))
		}
		if gap := at[len(at)-1] - at[0]; gap < 800*time.Millisecond {
			t.Errorf("curl got the first chunk only %v before the last (%v)", gap, at)
		}
		head, _ := os.ReadFile(hdr)
		r := parseCurlResponse(t, string(head))
		if r.status != 201 || r.header.Get("X-Streamed") != "yes" || !slices.Equal(r.header.Values("Set-Cookie"), []string{"a=1", "b=2; Path=/"}) {
			t.Errorf("curl head: %s", head)
		}
	})

	t.Run("WithoutPrelude", func(t *testing.T) {
		r := doRequest(t, c, newRequest(t, "GET", base+"/?mode=stream&n=3", nil))
		if r.status != 200 || r.header.Get("Content-Type") != "application/octet-stream" || string(r.body) != "chunk 0\nchunk 1\nchunk 2\n" {
			t.Errorf("stream without a prelude: %d %v %q", r.status, r.header, r.body)
		}
	})

	t.Run("BufferedURLWaitsForTheWhole", func(t *testing.T) {
		start := time.Now()
		resp, err := c.Do(newRequest(t, "GET", a.urlBase("bufstream")+"/?mode=stream&n=3&ms=300", nil))
		if err != nil {
			t.Fatal(err)
		}
		headAt := time.Since(start)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "chunk 0\nchunk 1\nchunk 2\n" || resp.ContentLength != int64(len(body)) {
			t.Fatalf("buffered stream: %d %v content length %d %q", resp.StatusCode, err, resp.ContentLength, body)
		}
		if headAt < 500*time.Millisecond {
			t.Errorf("a BUFFERED URL answered after %v, before the function wrote its last chunk (600 ms)", headAt)
		}
		// A streamed function URL response (with a prelude) to a BUFFERED URL: its head is
		// honoured, and the rest is the body, whole.
		r := doRequest(t, c, newRequest(t, "GET", a.urlBase("bufstream")+"/?mode=stream&n=3&ms=50&url=true", nil))
		if r.status != 201 || r.header.Get("X-Streamed") != "yes" || r.header.Get("Content-Type") != "text/plain" ||
			!slices.Equal(r.header.Values("Set-Cookie"), []string{"a=1", "b=2; Path=/"}) ||
			string(r.body) != "chunk 0\nchunk 1\nchunk 2\n" || r.header.Get("Content-Length") != "24" {
			t.Errorf("a prelude stream to a BUFFERED URL: %d %v %q", r.status, r.header, r.body)
		}
	})

	t.Run("MidStreamError", func(t *testing.T) {
		resp, err := c.Do(newRequest(t, "GET", base+"/?mode=stream&n=2&ms=100&fail=true&url=true", nil))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 || string(body) != "chunk 0\nchunk 1\n" || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("mid-stream failure: status %d body %q error %v; want the chunks, then io.ErrUnexpectedEOF", resp.StatusCode, body, err)
		}
		out, stderr, code := runCurl(t, "-sS", "-N", base+"/?mode=stream&n=2&ms=100&fail=true&url=true")
		if code != 18 || out != "chunk 0\nchunk 1\n" {
			t.Errorf("curl: exit %d stdout %q stderr %q; want exit 18 (partial transfer) after the chunks", code, out, stderr)
		}
		// A function that fails before it streams anything gets a 502.
		r := doRequest(t, c, newRequest(t, "GET", base+"/?mode=error", nil))
		if r.status != 502 || string(r.body) != "Internal Server Error" {
			t.Errorf("error before the stream: %d %q", r.status, r.body)
		}
		// The failures left the function usable.
		if r := doRequest(t, c, newRequest(t, "GET", base+"/?mode=stream&n=2&url=true", nil)); r.status != 201 || string(r.body) != "chunk 0\nchunk 1\n" {
			t.Errorf("after the failures: %d %q", r.status, r.body)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

// TestStreamCustomRuntime streams from a runtime that speaks the Runtime API itself and says
// so (Lambda-Runtime-Function-Response-Mode: streaming), in chunks of 1 MB: they arrive as
// written, whole, and an error it reports in its trailers breaks the client's stream off.
func TestStreamCustomRuntime(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "fraw"})
	applyHCL(t, a, codeHCL("raw", rawDir, "30s", "128", `url { invoke_mode = "RESPONSE_STREAM" }`))
	c := a.urlClient(t)
	base := a.urlBase("raw")

	start := time.Now()
	resp, err := c.Do(newRequest(t, "GET", base+"/?n=4&ms=400&url=true", nil))
	if err != nil {
		t.Fatal(err)
	}
	lines, at, err := readLines(resp.Body, start)
	resp.Body.Close()
	if err != nil || strings.Join(lines, "") != "chunk 0\nchunk 1\nchunk 2\nchunk 3\n" {
		t.Fatalf("stream: %v %q", err, lines)
	}
	if gap := at[len(at)-1] - at[0]; gap < 800*time.Millisecond {
		t.Errorf("the first chunk arrived only %v before the last (arrivals %v): the response was not streamed", gap, at)
	}
	if resp.StatusCode != 201 || resp.Header.Get("X-Streamed") != "yes" || !slices.Equal(resp.Header.Values("Set-Cookie"), []string{"a=1", "b=2; Path=/"}) {
		t.Errorf("head: %d %v", resp.StatusCode, resp.Header)
	}

	// 16 chunks of 1 MB (under the default 20 MB limit), each ending with its label: every
	// byte arrives, in order.
	resp, err = c.Do(newRequest(t, "GET", base+"/?n=16&size=1048576&url=true", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) != 16<<20 {
		t.Fatalf("16 MB stream: %v, %d bytes", err, len(body))
	}
	for i := 0; i < 16; i++ {
		chunk := body[i<<20 : (i+1)<<20]
		if label := fmt.Sprintf("chunk %d\n", i); !bytes.HasSuffix(chunk, []byte(label)) || bytes.Count(chunk, []byte("\n")) != 2 {
			t.Fatalf("chunk %d does not end with %q", i, label)
		}
	}

	// The error in the trailers: the chunks, then a broken stream (curl: partial transfer).
	out, stderr, code := runCurl(t, "-sS", "-N", base+"/?n=2&ms=100&fail=true&url=true")
	if code != 18 || out != "chunk 0\nchunk 1\n" {
		t.Errorf("curl: exit %d stdout %q stderr %q; want exit 18 (partial transfer) after the chunks", code, out, stderr)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestStreamClientDisconnect closes a stream the function is still writing: the invocation
// is cancelled (its environment reset), and the function keeps working.
func TestStreamClientDisconnect(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "fdisc"})
	applyHCL(t, a, fnHCL("streamer", "30s", "128", `url { invoke_mode = "RESPONSE_STREAM" }`))
	c := a.urlClient(t)
	base := a.urlBase("streamer")

	// 50 chunks 200 ms apart: 10 s if nobody stopped it.
	resp, err := c.Do(newRequest(t, "GET", base+"/?mode=stream&n=50&ms=200&url=true", nil))
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "chunk 0\n" || resp.StatusCode != 201 {
		resp.Body.Close()
		t.Fatalf("first chunk: %d %q %v", resp.StatusCode, line, err)
	}
	if strings.Contains(a.out.String(), "resetting environment") {
		t.Fatalf("an environment was reset before the client went away:\n%s", a.out.String())
	}
	closed := time.Now()
	resp.Body.Close() // the transport closes the connection of an unread body
	waitUntil(t, "the agent to reset the environment of the cancelled stream", 5*time.Second, func() bool {
		return streamResets(a, "streamer") > 0
	})
	if d := time.Since(closed); d > 4*time.Second {
		t.Errorf("the environment was reset %v after the client went away: the stream was not cancelled", d)
	}
	r := doRequest(t, c, newRequest(t, "GET", base+"/?mode=stream&n=3&url=true", nil))
	if r.status != 201 || string(r.body) != "chunk 0\nchunk 1\nchunk 2\n" {
		t.Errorf("the next invocation: %d %q", r.status, r.body)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// streamResets counts the agent's log lines saying an environment of function fn was reset
// because its response stream was cancelled.
func streamResets(a *agentProc, fn string) int {
	n := 0
	for _, l := range strings.Split(a.out.String(), "\n") {
		if strings.Contains(l, "resetting environment") && strings.Contains(l, "function="+fn+" ") && strings.Contains(l, `reason="stream cancelled"`) {
			n++
		}
	}
	return n
}

// vmRSS is the resident set of process pid, in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// countingWriter counts what it is given.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// TestStreamLargeResponse streams 100 MB through the agent with bounded memory, and checks the
// default 20 MB limit.
func TestStreamLargeResponse(t *testing.T) {
	needRoot(t)
	const mb = 1 << 20

	t.Run("BoundedMemory", func(t *testing.T) {
		a := startAgent(t, agentOptions{node: "fbig", extra: "max_stream_mb = 200"})
		applyHCL(t, a, fnHCL("big", "60s", "256", `url { invoke_mode = "RESPONSE_STREAM" }`))
		c := a.urlClient(t)
		// Warm up: the environment and the streaming path exist before the baseline.
		if r := doRequest(t, c, newRequest(t, "GET", a.urlBase("big")+"/?mode=stream&n=4&size=1048576", nil)); r.status != 200 || len(r.body) != 4*mb {
			t.Fatalf("warm-up: %d, %d bytes", r.status, len(r.body))
		}
		pid := a.cmd.Process.Pid
		baseline, err := vmRSS(pid)
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu   sync.Mutex
			peak = baseline
			stop = make(chan struct{})
			wg   sync.WaitGroup
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if rss, err := vmRSS(pid); err == nil {
					mu.Lock()
					peak = max(peak, rss)
					mu.Unlock()
				}
			}
		}()
		start := time.Now()
		resp, err := c.Do(newRequest(t, "GET", a.urlBase("big")+"/?mode=stream&n=100&size=1048576", nil))
		var got countingWriter
		if err == nil {
			_, err = io.Copy(&got, resp.Body)
			resp.Body.Close()
		}
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("reading the 100 MB stream: %v after %d bytes", err, got.n)
		}
		if got.n != 100*mb {
			t.Fatalf("received %d bytes, want %d", got.n, 100*mb)
		}
		growth := peak - baseline
		t.Logf("100 MB in %v; agent RSS %d MB before, peak %d MB (+%d MB)", time.Since(start).Round(time.Millisecond), baseline/mb, peak/mb, growth/mb)
		if growth >= 64*mb {
			t.Errorf("the agent's RSS grew by %d MB while streaming 100 MB: the stream is buffered", growth/mb)
		}
		a.stop()
		checkNothingLeft(t, a)
	})

	t.Run("DefaultLimit", func(t *testing.T) {
		a := startAgent(t, agentOptions{node: "fbigdef"})
		applyHCL(t, a, fnHCL("big", "60s", "256", `url { invoke_mode = "RESPONSE_STREAM" }`))
		c := a.urlClient(t)
		resp, err := c.Do(newRequest(t, "GET", a.urlBase("big")+"/?mode=stream&n=30&size=1048576", nil))
		if err != nil {
			t.Fatal(err)
		}
		var got countingWriter
		_, err = io.Copy(&got, resp.Body)
		resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("a 30 MB stream over the 20 MB limit ended with %v after %d bytes; want io.ErrUnexpectedEOF", err, got.n)
		}
		if got.n < 19*mb || got.n > 20*mb {
			t.Errorf("the stream was cut off after %d bytes, want about 20 MB (%d)", got.n, 20*mb)
		}
		// Under the limit is fine, and the function still works.
		r := doRequest(t, c, newRequest(t, "GET", a.urlBase("big")+"/?mode=stream&n=10&size=1048576", nil))
		if r.status != 200 || len(r.body) != 10*mb {
			t.Errorf("10 MB after the cut-off: %d, %d bytes", r.status, len(r.body))
		}
		a.stop()
		checkNothingLeft(t, a)
	})
}

// TestFunctionURLCORS checks the preflight answers and the CORS headers of responses.
func TestFunctionURLCORS(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "fcors"})
	applyHCL(t, a, fnHCL("cors", "10s", "128", `url {
    cors {
      allow_origins  = ["https://app.example"]
      allow_methods  = ["GET", "POST"]
      allow_headers  = ["x-one", "content-type"]
      expose_headers = ["x-custom"]
      max_age        = 60
    }
  }`)+fnHCL("credwild", "10s", "128", `url {
    cors {
      allow_origins     = ["*"]
      allow_methods     = ["*"]
      allow_credentials = true
    }
  }`)+fnHCL("wild", "10s", "128", `url {
    cors {
      allow_origins = ["*"]
    }
  }`))
	c := a.urlClient(t)
	base := a.urlBase("cors")
	preflight := func(t *testing.T, url, origin string) httpResult {
		return doRequest(t, c, newRequest(t, "OPTIONS", url, nil, "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-one"))
	}

	t.Run("PreflightAllowed", func(t *testing.T) {
		before := counterOf(t, c, newRequest(t, "GET", base+"/?mode=counter", nil))
		r := preflight(t, base+"/any/path", "https://app.example")
		h := r.header
		if r.status != 200 || h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Methods") != "GET,POST" ||
			h.Get("Access-Control-Allow-Headers") != "x-one,content-type" || h.Get("Access-Control-Max-Age") != "60" ||
			h.Get("Access-Control-Allow-Credentials") != "" || len(r.body) != 0 {
			t.Errorf("preflight: %d %v %q", r.status, h, r.body)
		}
		// The gateway answered it: the function did not run.
		if after := counterOf(t, c, newRequest(t, "GET", base+"/?mode=counter", nil)); after != before+1 {
			t.Errorf("the function's count went from %d to %d around a preflight: it reached the function", before, after)
		}
		out, stderr, code := runCurl(t, "-sS", "-i", "-X", "OPTIONS", "-H", "Origin: https://app.example", "-H", "Access-Control-Request-Method: GET", base+"/")
		if code != 0 {
			t.Fatalf("curl: %d %s", code, stderr)
		}
		if r := parseCurlResponse(t, out); r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" || r.header.Get("Access-Control-Max-Age") != "60" {
			t.Errorf("curl preflight: %s", out)
		}
	})

	t.Run("PreflightDisallowedOrigin", func(t *testing.T) {
		r := preflight(t, base+"/", "https://evil.example")
		for k := range r.header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("a disallowed origin got %s: %v", k, r.header[k])
			}
		}
	})

	t.Run("PlainOptionsReachesTheFunction", func(t *testing.T) {
		// OPTIONS without Access-Control-Request-Method is no preflight.
		r := doRequest(t, c, newRequest(t, "OPTIONS", base+"/o", nil, "Origin", "https://app.example"))
		if r.status != 200 || r.header.Get("X-Echo") != "yes" {
			t.Fatalf("plain OPTIONS: %d %v %s", r.status, r.header, r.body)
		}
		if ev := decodeURLEvent(t, r.body); ev.RequestContext.HTTP.Method != "OPTIONS" {
			t.Errorf("method %q", ev.RequestContext.HTTP.Method)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("the function's answer lacks CORS headers: %v", r.header)
		}
	})

	t.Run("ResponseHeaders", func(t *testing.T) {
		r := doRequest(t, c, newRequest(t, "GET", base+"/?mode=respond&status=200&header=v&value=ok", nil, "Origin", "https://app.example"))
		h := r.header
		if r.status != 200 || string(r.body) != "ok" || h.Get("X-Custom") != "v" || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			h.Get("Access-Control-Expose-Headers") != "x-custom" || h.Get("Access-Control-Allow-Credentials") != "" ||
			!slices.Contains(h.Values("Vary"), "Origin") {
			t.Errorf("allowed origin: %d %v %q", r.status, h, r.body)
		}
		r = doRequest(t, c, newRequest(t, "GET", base+"/?mode=respond&status=200&header=v&value=ok", nil, "Origin", "https://evil.example"))
		if r.status != 200 || string(r.body) != "ok" || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Expose-Headers") != "" {
			t.Errorf("disallowed origin: %d %v %q", r.status, r.header, r.body)
		}
		// Error answers carry the policy too.
		r = doRequest(t, c, newRequest(t, "GET", base+"/?mode=error", nil, "Origin", "https://app.example"))
		if r.status != 502 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("502 with an allowed origin: %d %v", r.status, r.header)
		}
	})

	t.Run("WildcardWithCredentialsEchoes", func(t *testing.T) {
		r := doRequest(t, c, newRequest(t, "GET", a.urlBase("credwild")+"/?mode=respond&status=200&header=v&value=ok", nil, "Origin", "https://any.example"))
		if r.header.Get("Access-Control-Allow-Origin") != "https://any.example" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("wildcard with credentials: %v", r.header)
		}
		r = preflight(t, a.urlBase("credwild")+"/", "https://other.example")
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://other.example" ||
			r.header.Get("Access-Control-Allow-Credentials") != "true" || r.header.Get("Access-Control-Allow-Methods") != "*" {
			t.Errorf("wildcard with credentials, preflight: %v", r.header)
		}
		r = doRequest(t, c, newRequest(t, "GET", a.urlBase("wild")+"/?mode=respond&status=200&header=v&value=ok", nil, "Origin", "https://any.example"))
		if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("wildcard without credentials: %v", r.header)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

const (
	sigKeyID     = "AKIAGATEWAYTEST00001"
	sigKeySecret = "c2VjcmV0LWtleS1mb3ItdGVzdHM/gateway+it"
)

// signRequest signs req (whose body is body) with SigV4 for service lambda.
func signRequest(t *testing.T, req *http.Request, body []byte, id, secret, region string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256(body)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), "lambda", region, at)
	if err != nil {
		t.Fatal(err)
	}
}

// TestFunctionURLSigned checks SIGNED function URLs: SigV4 from aws-sdk-go-v2's signer and from
// curl is accepted, anything else refused before the function runs.
func TestFunctionURLSigned(t *testing.T) {
	needRoot(t)
	// An invoke key may call SIGNED URLs as an admin key may.
	a := startAgent(t, agentOptions{node: "fsig", keys: []testKey{
		{"ci", sigKeyID, sigKeySecret, "admin"},
		{"other", "AKIAGATEWAYTEST00002", "another-secret", "invoke"},
	}})
	applyHCL(t, a, fnHCL("signed", "10s", "128", `url { auth_type = "SIGNED" }`))
	c := a.urlClient(t)
	base := a.urlBase("signed")

	checkIdentity := func(t *testing.T, what string, r httpResult, id string) urlEvent {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%s: %d %v %s", what, r.status, r.header, r.body)
		}
		ev := decodeURLEvent(t, r.body)
		rc := ev.RequestContext
		if rc.AccountID != "000000000000" || rc.Authorizer == nil || rc.Authorizer.IAM == nil ||
			rc.Authorizer.IAM.AccessKey != id || rc.Authorizer.IAM.AccountID != "000000000000" {
			t.Errorf("%s: requestContext %s", what, r.body)
		}
		return ev
	}

	t.Run("GoSigner", func(t *testing.T) {
		body := []byte(`{"order":42}`)
		req := newRequest(t, "POST", base+"/orders/new?b=2&a=0&a=1", body, "Content-Type", "application/json")
		signRequest(t, req, body, sigKeyID, sigKeySecret, "us-east-1", time.Now())
		sent := req.URL.RawQuery // the signer rewrites the query in its canonical order
		ev := checkIdentity(t, "signed POST", doRequest(t, c, req), sigKeyID)
		if ev.Body != string(body) || ev.RawPath != "/orders/new" || ev.RawQueryString != sent || ev.QueryStringParameters["a"] != "0,1" {
			t.Errorf("event body %q rawPath %q rawQueryString %q (sent %q) query %v", ev.Body, ev.RawPath, ev.RawQueryString, sent, ev.QueryStringParameters)
		}
		// Any region, the other key, and the /fn/ route (signed for the API's own host).
		req = newRequest(t, "GET", a.addr+"/fn/signed/p%20q", nil)
		signRequest(t, req, nil, "AKIAGATEWAYTEST00002", "another-secret", "eu-west-1", time.Now())
		if ev := checkIdentity(t, "signed GET via /fn/", doRequest(t, c, req), "AKIAGATEWAYTEST00002"); ev.RawPath != "/p%20q" {
			t.Errorf("rawPath %q", ev.RawPath)
		}
	})

	t.Run("Presigned", func(t *testing.T) {
		req := newRequest(t, "GET", base+"/pre?x=1", nil)
		sum := sha256.Sum256(nil)
		u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: sigKeyID, SecretAccessKey: sigKeySecret},
			req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		preq := newRequest(t, "GET", u, nil)
		for k, vs := range hdr {
			if k != "Host" {
				preq.Header[k] = vs
			}
		}
		checkIdentity(t, "presigned GET", doRequest(t, c, preq), sigKeyID)
	})

	t.Run("Curl", func(t *testing.T) {
		// curl 7.88 signs correctly only a sorted query and an unescaped path.
		out, stderr, code := runCurl(t, "-sS", "-i", "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", sigKeyID+":"+sigKeySecret,
			"-H", "Content-Type: application/json", "--data-binary", `{"from":"curl"}`, base+"/c/d?a=1&b=2")
		if code != 0 {
			t.Fatalf("curl: %d %s", code, stderr)
		}
		ev := checkIdentity(t, "curl --aws-sigv4", parseCurlResponse(t, out), sigKeyID)
		if ev.Body != `{"from":"curl"}` || ev.RawPath != "/c/d" {
			t.Errorf("curl event: body %q rawPath %q", ev.Body, ev.RawPath)
		}
		out, _, _ = runCurl(t, "-sS", "-i", "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", sigKeyID+":wrong-secret", base+"/c")
		checkLambdaError(t, "curl with a wrong secret", parseCurlResponse(t, out), 403, "InvalidSignatureException")
	})

	t.Run("Rejected", func(t *testing.T) {
		counter := func() int {
			req := newRequest(t, "GET", base+"/?mode=counter", nil)
			signRequest(t, req, nil, sigKeyID, sigKeySecret, "us-east-1", time.Now())
			return counterOf(t, c, req)
		}
		before := counter()

		body := []byte(`{"amount":100}`)
		checkLambdaError(t, "unsigned", doRequest(t, c, newRequest(t, "POST", base+"/", body)), 403, "AccessDeniedException")

		req := newRequest(t, "POST", base+"/", body, "Content-Type", "application/json")
		signRequest(t, req, body, sigKeyID, sigKeySecret, "us-east-1", time.Now())
		tampered := []byte(`{"amount":999}`) // same length: only the content differs
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tampered)), nil }
		checkLambdaError(t, "body changed after signing", doRequest(t, c, req), 403, "InvalidSignatureException")

		req = newRequest(t, "POST", base+"/", body)
		signRequest(t, req, body, sigKeyID, sigKeySecret, "us-east-1", time.Now().Add(-10*time.Minute))
		r := doRequest(t, c, req)
		checkLambdaError(t, "signed 10 minutes ago", r, 403, "InvalidSignatureException")
		if !strings.Contains(string(r.body), "Signature expired") {
			t.Errorf("expired signature: %s", r.body)
		}

		req = newRequest(t, "POST", base+"/", body)
		signRequest(t, req, body, "AKIAUNKNOWNKEY000001", sigKeySecret, "us-east-1", time.Now())
		checkLambdaError(t, "unknown key", doRequest(t, c, req), 403, "UnrecognizedClientException")

		req = newRequest(t, "POST", base+"/", body)
		signRequest(t, req, body, sigKeyID, "not-the-secret", "us-east-1", time.Now())
		checkLambdaError(t, "wrong secret", doRequest(t, c, req), 403, "InvalidSignatureException")

		// Signed for another function URL's host.
		req = newRequest(t, "POST", a.urlBase("other")+"/", body)
		signRequest(t, req, body, sigKeyID, sigKeySecret, "us-east-1", time.Now())
		req.Host = a.urlHost("signed")
		checkLambdaError(t, "signed for another host", doRequest(t, c, req), 403, "InvalidSignatureException")

		if after := counter(); after != before+1 {
			t.Errorf("the function's count went from %d to %d around the rejected requests: some reached it", before, after)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

// streamEvent is one event of an InvokeWithResponseStream answer, with when it arrived.
type streamEvent struct {
	at       time.Duration
	chunk    []byte
	complete *types.InvokeWithResponseStreamCompleteEvent
}

func invokeStream(t *testing.T, client *awslambda.Client, in *awslambda.InvokeWithResponseStreamInput) (*awslambda.InvokeWithResponseStreamOutput, []streamEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	out, err := client.InvokeWithResponseStream(ctx, in)
	if err != nil {
		t.Fatalf("InvokeWithResponseStream: %v", err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var events []streamEvent
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			events = append(events, streamEvent{at: time.Since(start), chunk: v.Value.Payload})
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			c := v.Value
			events = append(events, streamEvent{at: time.Since(start), complete: &c})
		default:
			t.Errorf("unexpected event %T", ev)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("reading the event stream: %v", err)
	}
	if len(events) == 0 || events[len(events)-1].complete == nil {
		t.Fatalf("the stream did not end with InvokeComplete: %+v", events)
	}
	for _, e := range events[:len(events)-1] {
		if e.complete != nil {
			t.Fatalf("InvokeComplete before the end: %+v", events)
		}
	}
	return out, events
}

func chunksOf(events []streamEvent) (all string, n int) {
	for _, e := range events {
		if e.complete == nil {
			all += string(e.chunk)
			n++
		}
	}
	return all, n
}

// TestInvokeWithResponseStream calls InvokeWithResponseStream with aws-sdk-go-v2.
func TestInvokeWithResponseStream(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "fiwrs"})
	applyHCL(t, a, fnHCL("fn", "30s", "128", ""))
	client := a.sdk()

	t.Run("Streamed", func(t *testing.T) {
		out, events := invokeStream(t, client, &awslambda.InvokeWithResponseStreamInput{
			FunctionName: aws.String("fn"), Payload: []byte(`{"mode":"stream","n":3,"ms":300}`), LogType: types.LogTypeTail,
		})
		if out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "$LATEST" {
			t.Errorf("status %d, executed version %q", out.StatusCode, aws.ToString(out.ExecutedVersion))
		}
		all, n := chunksOf(events)
		if all != "chunk 0\nchunk 1\nchunk 2\n" {
			t.Fatalf("payload %q", all)
		}
		if n != 3 {
			t.Errorf("%d PayloadChunk events, want 3, one per write 300 ms apart", n)
		}
		complete := events[len(events)-1]
		if gap := complete.at - events[0].at; gap < 400*time.Millisecond {
			t.Errorf("the first chunk arrived only %v before InvokeComplete: not streamed (%+v)", gap, events)
		}
		if code := aws.ToString(complete.complete.ErrorCode); code != "" {
			t.Errorf("InvokeComplete.ErrorCode %q: %s", code, aws.ToString(complete.complete.ErrorDetails))
		}
		logs, err := base64.StdEncoding.DecodeString(aws.ToString(complete.complete.LogResult))
		if err != nil || !strings.Contains(string(logs), "REPORT RequestId") {
			t.Errorf("LogResult %q (%v)", logs, err)
		}
	})

	t.Run("Buffered", func(t *testing.T) {
		_, events := invokeStream(t, client, &awslambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn"), Payload: []byte(`{"name":"sdk"}`)})
		if all, _ := chunksOf(events); all != `{"message":"Hello, sdk!"}` || aws.ToString(events[len(events)-1].complete.ErrorCode) != "" {
			t.Errorf("a buffered answer: %q %+v", all, events[len(events)-1].complete)
		}
	})

	t.Run("FunctionError", func(t *testing.T) {
		_, events := invokeStream(t, client, &awslambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn"), Payload: []byte(`{"mode":"error"}`)})
		c := events[len(events)-1].complete
		if aws.ToString(c.ErrorCode) == "" || !strings.Contains(aws.ToString(c.ErrorDetails), "something went wrong") {
			t.Errorf("function error: code %q details %q", aws.ToString(c.ErrorCode), aws.ToString(c.ErrorDetails))
		}
		if all, _ := chunksOf(events); all != "" {
			t.Errorf("function error: payload %q", all)
		}
	})

	t.Run("MidStreamError", func(t *testing.T) {
		_, events := invokeStream(t, client, &awslambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn"), Payload: []byte(`{"mode":"stream","n":2,"fail":true}`)})
		c := events[len(events)-1].complete
		if all, _ := chunksOf(events); all != "chunk 0\nchunk 1\n" {
			t.Errorf("mid-stream error: payload %q", all)
		}
		if aws.ToString(c.ErrorCode) == "" || !strings.Contains(aws.ToString(c.ErrorDetails), "failed in mid-stream") {
			t.Errorf("mid-stream error: code %q details %q", aws.ToString(c.ErrorCode), aws.ToString(c.ErrorDetails))
		}
	})

	t.Run("ClientGoesAway", func(t *testing.T) {
		// 50 chunks 200 ms apart; the caller leaves after the first: the invocation is cancelled.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, err := client.InvokeWithResponseStream(ctx, &awslambda.InvokeWithResponseStreamInput{
			FunctionName: aws.String("fn"), Payload: []byte(`{"mode":"stream","n":50,"ms":200}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		first := <-stream.Events()
		if c, ok := first.(*types.InvokeWithResponseStreamResponseEventMemberPayloadChunk); !ok || string(c.Value.Payload) != "chunk 0\n" {
			t.Fatalf("first event %#v", first)
		}
		before := streamResets(a, "fn")
		cancel()
		stream.Close()
		left := time.Now()
		waitUntil(t, "the agent to reset the environment of the abandoned stream", 5*time.Second, func() bool {
			return streamResets(a, "fn") > before
		})
		if d := time.Since(left); d > 4*time.Second {
			t.Errorf("the environment was reset %v after the caller left: the stream was not cancelled", d)
		}
		_, events := invokeStream(t, client, &awslambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn"), Payload: []byte(`{"mode":"stream","n":2}`)})
		if all, _ := chunksOf(events); all != "chunk 0\nchunk 1\n" {
			t.Errorf("after the cancelled stream: %q", all)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := client.InvokeWithResponseStream(context.Background(), &awslambda.InvokeWithResponseStreamInput{FunctionName: aws.String("missing")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("a missing function: %T %v", err, err)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}
