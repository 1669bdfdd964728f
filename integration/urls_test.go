package integration

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
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

const (
	testKeyID     = "AKIAGATEWAYTEST00001"
	testKeySecret = "c2VjcmV0LWtleS1mb3ItdGVzdHM"
)

// urlFunctionsHCL declares the test function behind each kind of function URL, and once without.
func urlFunctionsHCL() string {
	return fmt.Sprintf(`
function "web" {
  runtime = "provided.al2023"
  code    = %[1]q
  timeout = "10s"
  url {
    auth_type = "NONE"
    cors {
      allow_origins  = ["https://app.example"]
      allow_methods  = ["GET", "POST"]
      allow_headers  = ["content-type"]
      expose_headers = ["x-custom"]
      max_age        = 60
    }
  }
}

function "live" {
  runtime = "provided.al2023"
  code    = %[1]q
  timeout = "30s"
  url {
    auth_type   = "NONE"
    invoke_mode = "RESPONSE_STREAM"
  }
}

function "locked" {
  runtime = "provided.al2023"
  code    = %[1]q
  url { auth_type = "SIGNED" }
}

function "plain" {
  runtime = "provided.al2023"
  code    = %[1]q
}
`, fnDir)
}

// urlCall is one request to a function URL through Go's client.
type urlCall struct {
	status int
	header http.Header
	body   []byte
}

// hostURL is the address of a function URL by host name: *.localhost resolves to loopback.
func hostURL(a *agentProc, id, pathAndQuery string) string {
	return "http://" + id + ".lambda-url.localhost:" + a.port() + pathAndQuery
}

func (a *agentProc) port() string { return a.addr[strings.LastIndex(a.addr, ":")+1:] }

// urlClient reaches <id>.lambda-url.localhost as curl and browsers do: Go's own resolver asks
// DNS, which does not know *.localhost.
var urlClient = &http.Client{Transport: &http.Transport{
	DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	},
}}

func doURL(t *testing.T, req *http.Request) urlCall {
	t.Helper()
	resp, err := urlClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return urlCall{status: resp.StatusCode, header: resp.Header, body: body}
}

func getURL(t *testing.T, url string) urlCall {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return doURL(t, req)
}

// event is the part of the payload format 2.0 event the tests look at.
type event struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters"`
	Body                  string            `json:"body"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
	RequestContext        struct {
		AccountID    string `json:"accountId"`
		APIID        string `json:"apiId"`
		DomainName   string `json:"domainName"`
		DomainPrefix string `json:"domainPrefix"`
		RequestID    string `json:"requestId"`
		RouteKey     string `json:"routeKey"`
		Stage        string `json:"stage"`
		Time         string `json:"time"`
		TimeEpoch    int64  `json:"timeEpoch"`
		HTTP         struct {
			Method, Path, Protocol, SourceIP, UserAgent string
		} `json:"http"`
		Authorizer *struct {
			IAM struct {
				AccessKey string `json:"accessKey"`
				AccountID string `json:"accountId"`
			} `json:"iam"`
		} `json:"authorizer"`
	} `json:"requestContext"`
}

func decodeEvent(t *testing.T, c urlCall) event {
	t.Helper()
	if c.status != 200 || c.header.Get("X-Echo") != "yes" {
		t.Fatalf("echo answered %d %v: %s", c.status, c.header, c.body)
	}
	var ev event
	if err := json.Unmarshal(c.body, &ev); err != nil {
		t.Fatalf("the echoed event is not JSON: %v\n%s", err, c.body)
	}
	return ev
}

func TestFunctionURLs(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "urls", extra: "max_stream_mb = 200",
		keys: []testKey{{"ci", testKeyID, testKeySecret, "admin"}}})
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, urlFunctionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}

	t.Run("EventByHost", func(t *testing.T) {
		req, _ := http.NewRequest("GET", hostURL(a, "web", "/a/b?x=1&x=2&y=%20z"), nil)
		req.Header.Set("Cookie", "c1=v1; c2=v2")
		req.Header.Add("X-Many", "one")
		req.Header.Add("X-Many", "two")
		req.Header.Set("User-Agent", "url-test")
		c := doURL(t, req)
		ev := decodeEvent(t, c)
		rc := ev.RequestContext
		for _, check := range []struct {
			what      string
			got, want any
		}{
			{"version", ev.Version, "2.0"},
			{"routeKey", ev.RouteKey, "$default"},
			{"rawPath", ev.RawPath, "/a/b"},
			{"rawQueryString", ev.RawQueryString, "x=1&x=2&y=%20z"},
			{"cookies", strings.Join(ev.Cookies, ";"), "c1=v1;c2=v2"},
			{"repeated header", ev.Headers["x-many"], "one,two"},
			{"host header", ev.Headers["host"], "web.lambda-url.localhost:" + a.port()},
			{"cookie header dropped", ev.Headers["cookie"], ""},
			{"x-forwarded-proto", ev.Headers["x-forwarded-proto"], "http"},
			{"repeated query", ev.QueryStringParameters["x"], "1,2"},
			{"decoded query", ev.QueryStringParameters["y"], " z"},
			{"accountId", rc.AccountID, "anonymous"},
			{"apiId", rc.APIID, "web"},
			{"domainName", rc.DomainName, "web.lambda-url.localhost"},
			{"domainPrefix", rc.DomainPrefix, "web"},
			{"http.method", rc.HTTP.Method, "GET"},
			{"http.path", rc.HTTP.Path, "/a/b"},
			{"http.protocol", rc.HTTP.Protocol, "HTTP/1.1"},
			{"http.sourceIp", rc.HTTP.SourceIP, "127.0.0.1"},
			{"http.userAgent", rc.HTTP.UserAgent, "url-test"},
			{"requestId", rc.RequestID, c.header.Get("X-Amzn-RequestId")},
			{"stage", rc.Stage, "$default"},
			{"isBase64Encoded", ev.IsBase64Encoded, false},
			{"no authorizer", rc.Authorizer == nil, true},
		} {
			if check.got != check.want {
				t.Errorf("%s = %#v, want %#v", check.what, check.got, check.want)
			}
		}
		if rc.RequestID == "" || time.Since(time.UnixMilli(rc.TimeEpoch)) > time.Minute || rc.Time == "" {
			t.Errorf("requestId %q, time %q, timeEpoch %d", rc.RequestID, rc.Time, rc.TimeEpoch)
		}
	})

	t.Run("BinaryBodyByPath", func(t *testing.T) {
		payload := make([]byte, 256)
		for i := range payload {
			payload[i] = byte(i)
		}
		req, _ := http.NewRequest("PUT", a.addr+"/fn/web/upload/it?mode=echo", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/octet-stream")
		ev := decodeEvent(t, doURL(t, req))
		got, err := base64.StdEncoding.DecodeString(ev.Body)
		if !ev.IsBase64Encoded || err != nil || !bytes.Equal(got, payload) {
			t.Errorf("binary body: isBase64Encoded %v, body %q", ev.IsBase64Encoded, ev.Body)
		}
		if ev.RawPath != "/upload/it" || ev.RequestContext.HTTP.Method != "PUT" || ev.RequestContext.DomainName != "web.lambda-url.localhost" {
			t.Errorf("rawPath %q, method %q, domainName %q", ev.RawPath, ev.RequestContext.HTTP.Method, ev.RequestContext.DomainName)
		}
		req, _ = http.NewRequest("POST", a.addr+"/fn/web", strings.NewReader(`{"text":true}`))
		req.Header.Set("Content-Type", "application/json")
		ev = decodeEvent(t, doURL(t, req))
		if ev.IsBase64Encoded || ev.Body != `{"text":true}` || ev.RawPath != "/" {
			t.Errorf("JSON body: isBase64Encoded %v, body %q, rawPath %q", ev.IsBase64Encoded, ev.Body, ev.RawPath)
		}
	})

	t.Run("ResponseShape", func(t *testing.T) {
		c := getURL(t, a.addr+"/fn/web/?mode=respond&status=201&header=h1&cookies=a=1|b=2;%20Path=/&value=hi")
		if c.status != 201 || c.header.Get("X-Custom") != "h1" || string(c.body) != "hi" ||
			strings.Join(c.header.Values("Set-Cookie"), "|") != "a=1|b=2; Path=/" {
			t.Errorf("respond: %d %v %q", c.status, c.header, c.body)
		}
		c = getURL(t, a.addr+"/fn/web/?mode=respond&status=200&value=binary%00bytes&b64=true")
		if c.status != 200 || string(c.body) != "binary\x00bytes" || c.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("base64 response: %d %v %q", c.status, c.header, c.body)
		}
		// A status without a body drops the body the function sent.
		c = getURL(t, a.addr+"/fn/web/?mode=respond&status=204&value=ignored")
		if c.status != 204 || len(c.body) != 0 {
			t.Errorf("204: %d %q", c.status, c.body)
		}
		// A streaming runtime's raw bytes on a BUFFERED URL keep the runtime's content type.
		c = getURL(t, a.addr+"/fn/web/?mode=stream&n=2")
		if c.status != 200 || string(c.body) != "chunk 0\nchunk 1\n" || c.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("raw stream on a BUFFERED URL: %d %v %q", c.status, c.header, c.body)
		}
		// A result that is not a function URL response object is a 200 JSON body.
		c = getURL(t, a.addr+"/fn/web/?mode=counter")
		if c.status != 200 || c.header.Get("Content-Type") != "application/json" || !strings.Contains(string(c.body), `"count"`) {
			t.Errorf("plain result: %d %v %q", c.status, c.header, c.body)
		}
		// Through curl, by host name.
		out, err := exec.Command("curl", "-s", "-i", hostURL(a, "web", "/?mode=respond&status=202&value=curl&cookies=k=v")).Output()
		if err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 202") || !strings.Contains(string(out), "Set-Cookie: k=v") ||
			!strings.HasSuffix(string(out), "\r\n\r\ncurl") {
			t.Errorf("curl: %v\n%s", err, out)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		for _, url := range []string{a.addr + "/fn/nope/", a.addr + "/fn/plain/", hostURL(a, "plain", "/"), hostURL(a, "nope", "/x")} {
			c := getURL(t, url)
			var body map[string]any
			_ = json.Unmarshal(c.body, &body)
			if c.status != 404 || c.header.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" || body["message"] == nil {
				t.Errorf("%s: %d %v %s, want a 404 ResourceNotFoundException", url, c.status, c.header, c.body)
			}
		}
		// Host names reach the gateway lower- or upper-cased; the id still matches.
		if c := getURL(t, hostURL(a, "WEB", "/?mode=counter")); c.status != 200 {
			t.Errorf("WEB.lambda-url.localhost: %d %s", c.status, c.body)
		}
		c := getURL(t, a.addr+"/fn/web/?mode=error")
		if c.status != 502 || string(c.body) != "Internal Server Error" {
			t.Errorf("function error: %d %q, want 502 Internal Server Error", c.status, c.body)
		}
		big := strings.Repeat("x", 6<<20+1)
		c = doURL(t, mustRequest(t, "POST", a.addr+"/fn/web/", big))
		if c.status != 413 || c.header.Get("X-Amzn-ErrorType") != "RequestTooLargeException" {
			t.Errorf("7 MB request: %d %v", c.status, c.header)
		}
	})

	t.Run("CORS", func(t *testing.T) {
		pre := mustRequest(t, "OPTIONS", a.addr+"/fn/web/", "")
		pre.Header.Set("Origin", "https://app.example")
		pre.Header.Set("Access-Control-Request-Method", "POST")
		c := doURL(t, pre)
		h := c.header
		if c.status != 200 || h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Methods") != "GET,POST" ||
			h.Get("Access-Control-Allow-Headers") != "content-type" || h.Get("Access-Control-Max-Age") != "60" || h.Get("X-Echo") != "" ||
			h.Get("Access-Control-Expose-Headers") != "" {
			t.Errorf("preflight: %d %v %s", c.status, h, c.body)
		}
		pre.Header.Set("Origin", "https://evil.example")
		if c := doURL(t, pre); c.status != 200 || c.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from a disallowed origin: %d %v", c.status, c.header)
		}
		req := mustRequest(t, "GET", a.addr+"/fn/web/?mode=respond&status=200&header=x&value=ok", "")
		req.Header.Set("Origin", "https://app.example")
		c = doURL(t, req)
		if c.header.Get("Access-Control-Allow-Origin") != "https://app.example" || c.header.Get("Access-Control-Expose-Headers") != "x-custom" ||
			!strings.Contains(strings.Join(c.header.Values("Vary"), ","), "Origin") {
			t.Errorf("response to a cross-origin request: %v", c.header)
		}
		// Without a CORS policy, OPTIONS is the function's to answer.
		pre = mustRequest(t, "OPTIONS", a.addr+"/fn/live/", "")
		pre.Header.Set("Origin", "https://app.example")
		pre.Header.Set("Access-Control-Request-Method", "POST")
		if c := doURL(t, pre); c.status != 200 || !strings.Contains(string(c.body), `OPTIONS`) {
			t.Errorf("OPTIONS without a policy: %d %s", c.status, c.body)
		}
	})

	t.Run("SignedWithGoSigner", func(t *testing.T) {
		signed := func(key, secret, body string, at time.Time) *http.Request {
			req := mustRequest(t, "POST", a.addr+"/fn/locked/signed?mode=echo", body)
			sum := sha256.Sum256([]byte(body))
			req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "lambda", "eu-west-1", at); err != nil {
				t.Fatal(err)
			}
			return req
		}
		c := doURL(t, signed(testKeyID, testKeySecret, `{"a":1}`, time.Now()))
		ev := decodeEvent(t, c)
		if az := ev.RequestContext.Authorizer; az == nil || az.IAM.AccessKey != testKeyID || az.IAM.AccountID != "000000000000" || ev.RequestContext.AccountID != "000000000000" {
			t.Errorf("signed request: authorizer %+v, accountId %q", az, ev.RequestContext.AccountID)
		}
		tampered := signed(testKeyID, testKeySecret, `{"a":1}`, time.Now())
		tampered.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
		for name, req := range map[string]*http.Request{
			"unsigned":     mustRequest(t, "POST", a.addr+"/fn/locked/", `{}`),
			"tampered":     tampered,
			"expired":      signed(testKeyID, testKeySecret, `{}`, time.Now().Add(-10*time.Minute)),
			"unknown key":  signed("AKIAUNKNOWNKEY000001", testKeySecret, `{}`, time.Now()),
			"wrong secret": signed(testKeyID, "not-the-secret", `{}`, time.Now()),
		} {
			c := doURL(t, req)
			var body map[string]any
			_ = json.Unmarshal(c.body, &body)
			if c.status != 403 || c.header.Get("X-Amzn-ErrorType") == "" || body["message"] == nil || c.header.Get("X-Echo") != "" {
				t.Errorf("%s: %d %v %s, want 403 in Lambda's error shape", name, c.status, c.header, c.body)
			}
		}
	})

	t.Run("SignedWithCurl", func(t *testing.T) {
		// curl 7.88 signs correctly only a sorted query and an unescaped path.
		out, err := exec.Command("curl", "-s", "-i", "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", testKeyID+":"+testKeySecret,
			"-H", "Content-Type: application/json", "-d", `{"via":"curl"}`, a.addr+"/fn/locked/p?mode=echo").Output()
		if err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 200") || !strings.Contains(string(out), `"accessKey":"`+testKeyID+`"`) {
			t.Errorf("curl --aws-sigv4: %v\n%s", err, out)
		}
		out, _ = exec.Command("curl", "-s", "-i", "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user", testKeyID+":wrong",
			"-d", `{}`, a.addr+"/fn/locked/").Output()
		if !strings.HasPrefix(string(out), "HTTP/1.1 403") {
			t.Errorf("curl with a wrong secret:\n%s", out)
		}
	})

	t.Run("StreamArrivesAsWritten", func(t *testing.T) {
		resp, err := http.Get(a.addr + "/fn/live/?mode=stream&n=4&ms=400&url=true")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 201 || resp.Header.Get("X-Streamed") != "yes" || resp.Header.Get("Content-Type") != "text/plain" ||
			strings.Join(resp.Header.Values("Set-Cookie"), "|") != "a=1|b=2; Path=/" || len(resp.TransferEncoding) == 0 {
			t.Fatalf("head: %d %v %v", resp.StatusCode, resp.Header, resp.TransferEncoding)
		}
		var arrivals []time.Time
		br := bufio.NewReader(resp.Body)
		var lines []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
			arrivals = append(arrivals, time.Now())
			lines = append(lines, line)
		}
		if strings.Join(lines, "") != "chunk 0\nchunk 1\nchunk 2\nchunk 3\n" {
			t.Fatalf("body %q", lines)
		}
		// The function sleeps 400 ms between chunks: a buffered response would bring all four at once.
		if spread := arrivals[3].Sub(arrivals[0]); spread < 800*time.Millisecond {
			t.Errorf("the first chunk arrived only %v before the last: the response was buffered", spread)
		}
		// Without a prelude the stream is the body, 200, with the runtime's content type.
		c := getURL(t, hostURL(a, "live", "/?mode=stream&n=2"))
		if c.status != 200 || c.header.Get("Content-Type") != "application/octet-stream" || string(c.body) != "chunk 0\nchunk 1\n" {
			t.Errorf("stream without a prelude: %d %v %q", c.status, c.header, c.body)
		}
		// curl -N shows the same stream.
		out, err := exec.Command("curl", "-sN", hostURL(a, "live", "/?mode=stream&n=3&ms=100&url=true")).Output()
		if err != nil || string(out) != "chunk 0\nchunk 1\nchunk 2\n" {
			t.Errorf("curl -N: %v %q", err, out)
		}
	})

	t.Run("MidStreamError", func(t *testing.T) {
		resp, err := http.Get(a.addr + "/fn/live/?mode=stream&n=2&fail=true&url=true")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 || string(body) != "chunk 0\nchunk 1\n" || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("mid-stream error: %d %q, read error %v (want the chunks, then io.ErrUnexpectedEOF)", resp.StatusCode, body, err)
		}
		cmd := exec.Command("curl", "-sN", a.addr+"/fn/live/?mode=stream&n=2&fail=true")
		out, _ := cmd.Output()
		if code := cmd.ProcessState.ExitCode(); code != 18 || string(out) != "chunk 0\nchunk 1\n" {
			t.Errorf("curl exited %d with %q, want 18 (transfer closed with outstanding data) after the chunks", code, out)
		}
	})

	t.Run("ClientDisconnects", func(t *testing.T) {
		before := strings.Count(a.out.String(), "reason=\"stream cancelled\"") + strings.Count(a.out.String(), "reason=stream cancelled")
		resp, err := http.Get(a.addr + "/fn/live/?mode=stream&n=50&ms=200&url=true")
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "chunk 0\n" {
			t.Fatalf("first chunk %q: %v", line, err)
		}
		resp.Body.Close()
		waitUntil(t, "the environment of the abandoned stream reset", 15*time.Second, func() bool {
			out := a.out.String()
			return strings.Count(out, "reason=\"stream cancelled\"")+strings.Count(out, "reason=stream cancelled") > before
		})
		if c := getURL(t, a.addr+"/fn/live/?mode=stream&n=1&url=true"); c.status != 201 || string(c.body) != "chunk 0\n" {
			t.Errorf("after a disconnect: %d %q", c.status, c.body)
		}
	})

	t.Run("LargeStreamBoundedMemory", func(t *testing.T) {
		const chunks, size = 100, 1 << 20
		base, err := vmRSS(a.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		var peak, samples int64
		var mu sync.Mutex
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if v, err := vmRSS(a.cmd.Process.Pid); err == nil {
						mu.Lock()
						peak, samples = max(peak, v), samples+1
						mu.Unlock()
					}
				}
			}
		}()
		resp, err := http.Get(fmt.Sprintf("%s/fn/live/?mode=stream&n=%d&size=%d&url=true", a.addr, chunks, size))
		if err != nil {
			close(stop)
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		close(stop)
		<-sampled
		if err != nil || n != chunks*size {
			t.Fatalf("read %d bytes (%v), want %d", n, err, chunks*size)
		}
		mu.Lock()
		defer mu.Unlock()
		if samples == 0 {
			t.Fatal("the agent's RSS was never sampled during the stream")
		}
		if growth := peak - base; growth > 64<<20 {
			t.Errorf("the agent's RSS grew by %d MB while streaming 100 MB (from %d MB): the stream is being buffered", growth>>20, base>>20)
		}
		t.Logf("agent RSS %d MB before, %d MB at most while streaming 100 MB", base>>20, peak>>20)
	})

	t.Run("InvokeWithResponseStreamSDK", func(t *testing.T) {
		client := a.sdk()
		type received struct {
			chunks   []string
			times    []time.Time
			complete *types.InvokeWithResponseStreamCompleteEvent
			doneAt   time.Time
		}
		run := func(payload string) received {
			t.Helper()
			out, err := client.InvokeWithResponseStream(context.Background(), &awslambda.InvokeWithResponseStreamInput{
				FunctionName: aws.String("live"), Payload: []byte(payload), LogType: types.LogTypeTail,
			})
			if err != nil {
				t.Fatalf("InvokeWithResponseStream %s: %v", payload, err)
			}
			stream := out.GetStream()
			defer stream.Close()
			var r received
			for ev := range stream.Events() {
				switch e := ev.(type) {
				case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
					r.chunks = append(r.chunks, string(e.Value.Payload))
					r.times = append(r.times, time.Now())
				case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
					v := e.Value
					r.complete, r.doneAt = &v, time.Now()
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("event stream of %s: %v", payload, err)
			}
			if r.complete == nil {
				t.Fatalf("no InvokeComplete for %s", payload)
			}
			if aws.ToString(out.ExecutedVersion) != "$LATEST" {
				t.Errorf("executed version %q", aws.ToString(out.ExecutedVersion))
			}
			return r
		}
		r := run(`{"mode":"stream","n":3,"ms":300}`)
		if strings.Join(r.chunks, "") != "chunk 0\nchunk 1\nchunk 2\n" || r.complete.ErrorCode != nil {
			t.Errorf("chunks %q, error code %v", r.chunks, aws.ToString(r.complete.ErrorCode))
		}
		if r.doneAt.Sub(r.times[0]) < 400*time.Millisecond {
			t.Errorf("the first chunk came only %v before InvokeComplete: not streamed", r.doneAt.Sub(r.times[0]))
		}
		logs, _ := base64.StdEncoding.DecodeString(aws.ToString(r.complete.LogResult))
		if !strings.Contains(string(logs), "REPORT RequestId") {
			t.Errorf("LogResult %q lacks the REPORT line", logs)
		}
		r = run(`{"mode":"error"}`)
		if aws.ToString(r.complete.ErrorCode) == "" || !strings.Contains(aws.ToString(r.complete.ErrorDetails), "something went wrong") {
			t.Errorf("function error: code %q details %q", aws.ToString(r.complete.ErrorCode), aws.ToString(r.complete.ErrorDetails))
		}
		r = run(`{"mode":"stream","n":2,"fail":true}`)
		if strings.Join(r.chunks, "") != "chunk 0\nchunk 1\n" || aws.ToString(r.complete.ErrorCode) == "" {
			t.Errorf("mid-stream failure: chunks %q, code %q", r.chunks, aws.ToString(r.complete.ErrorCode))
		}
		_, err := client.InvokeWithResponseStream(context.Background(), &awslambda.InvokeWithResponseStreamInput{FunctionName: aws.String("missing")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("missing function: %T %v", err, err)
		}
	})

	t.Run("SDKRequestBodyRace", func(t *testing.T) {
		// The race inMemoryBodies (harness_test.go) works around, made certain: the
		// connection's writer pauses after sending the request body, so the gateway's answer
		// arrives before net/http's last read of that body. With the SDK's own transport the
		// stream dies; through inMemoryBodies it completes. When the first half stops
		// failing, the SDK has fixed its race and the harness can drop the workaround.
		sdkTransport := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return slowBodyConn{c}, nil
			}
		}).GetTransport()
		stream := func(rt http.RoundTripper) error {
			client := a.sdk(func(o *awslambda.Options) { o.HTTPClient = &http.Client{Transport: rt} })
			out, err := client.InvokeWithResponseStream(context.Background(), &awslambda.InvokeWithResponseStreamInput{
				FunctionName: aws.String("live"), Payload: []byte(`{"mode":"stream","n":3,"ms":200}`),
			})
			if err != nil {
				return err
			}
			s := out.GetStream()
			defer s.Close()
			complete := false
			for ev := range s.Events() {
				_, done := ev.(*types.InvokeWithResponseStreamResponseEventMemberInvokeComplete)
				complete = complete || done
			}
			if err := s.Err(); err != nil {
				return err
			}
			if !complete {
				return errors.New("no InvokeComplete")
			}
			return nil
		}
		if err := stream(sdkTransport); err == nil || !strings.Contains(err.Error(), "use of closed network connection") {
			t.Errorf("with the SDK's transport: %v; want the closed connection of its request body race (fixed upstream? then drop inMemoryBodies)", err)
		}
		if err := stream(inMemoryBodies{sdkTransport}); err != nil {
			t.Errorf("through inMemoryBodies: %v", err)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

// slowBodyConn pauses 300 ms after each write that is not the start of a request (a body
// sent after its headers were flushed), as a busy machine may pause the transport's writer.
type slowBodyConn struct{ net.Conn }

func (c slowBodyConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if !bytes.HasPrefix(b, []byte("POST ")) && !bytes.HasPrefix(b, []byte("GET ")) {
		time.Sleep(300 * time.Millisecond)
	}
	return n, err
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}
