package furl

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

var testTime = time.Date(2026, 11, 24, 19, 3, 58, 123e6, time.FixedZone("CET", 3600))

// decodeEvent unmarshals an event the way an aws-lambda-go function receives it.
func decodeEvent(t *testing.T, raw []byte) events.LambdaFunctionURLRequest {
	t.Helper()
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event does not decode as events.LambdaFunctionURLRequest: %v\n%s", err, raw)
	}
	return ev
}

func TestBuildEventMatchesLambdaFunctionURLRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost,
		"http://gw.example/fn/abc123/caf%C3%A9/a%2Fb?a=1&a=2&b=x%20y&c=%2Fbar&plus=a+b&flag", strings.NewReader(`{"k":"v"}`))
	r.RemoteAddr = "[2001:db8::7]:54321"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "curl/7.88.1")
	r.Header.Add("X-Many", "v1")
	r.Header.Add("X-Many", "v2")
	r.Header.Add("Cookie", "c1=v1; c2=v2")
	r.Header.Add("Cookie", "c3=v3")

	raw, err := BuildEvent(r, []byte(`{"k":"v"}`), Meta{
		RequestID:  "req-1",
		URLID:      "abc123",
		DomainName: "abc123.lambda-url.example",
		RawPath:    "/caf%C3%A9/a%2Fb",
		Time:       testTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeEvent(t, raw)
	want := events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        "/caf%C3%A9/a%2Fb",
		RawQueryString: "a=1&a=2&b=x%20y&c=%2Fbar&plus=a+b&flag",
		Cookies:        []string{"c1=v1", "c2=v2", "c3=v3"},
		Headers: map[string]string{
			"content-type": "application/json",
			"user-agent":   "curl/7.88.1",
			"x-many":       "v1,v2",
			"host":         "gw.example",
		},
		QueryStringParameters: map[string]string{"a": "1,2", "b": "x y", "c": "/bar", "plus": "a b", "flag": ""},
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "anonymous",
			RequestID:    "req-1",
			APIID:        "abc123",
			DomainName:   "abc123.lambda-url.example",
			DomainPrefix: "abc123",
			Time:         "24/Nov/2026:18:03:58 +0000",
			TimeEpoch:    testTime.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method:    "POST",
				Path:      "/caf%C3%A9/a%2Fb",
				Protocol:  "HTTP/1.1",
				SourceIP:  "2001:db8::7",
				UserAgent: "curl/7.88.1",
			},
		},
		Body: `{"k":"v"}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("event mismatch\n got %+v\nwant %+v", got, want)
	}

	// What aws-lambda-go does not model: the exact key sets and the fixed routeKey and stage.
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	wantKeys := map[string][]string{
		"": {"body", "cookies", "headers", "isBase64Encoded", "queryStringParameters", "rawPath",
			"rawQueryString", "requestContext", "routeKey", "version"},
		"requestContext": {"accountId", "apiId", "domainName", "domainPrefix", "http", "requestId",
			"routeKey", "stage", "time", "timeEpoch"},
	}
	for where, want := range wantKeys {
		obj := generic
		if where != "" {
			obj = generic[where].(map[string]any)
		}
		var got []string
		for k := range obj {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("keys of %q: %v, want %v", where, got, want)
		}
	}
	if generic["routeKey"] != "$default" {
		t.Errorf("routeKey = %v", generic["routeKey"])
	}
	rc := generic["requestContext"].(map[string]any)
	if rc["routeKey"] != "$default" || rc["stage"] != "$default" {
		t.Errorf("requestContext routeKey/stage = %v/%v", rc["routeKey"], rc["stage"])
	}
	if _, ok := generic["headers"].(map[string]any)["cookie"]; ok {
		t.Error("cookie header not removed")
	}
}

func TestBuildEventOmissionsAndDefaults(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/a%20b", nil)
	r.RemoteAddr = "not-a-host-port"
	before := time.Now()
	raw, err := BuildEvent(r, nil, Meta{AccountID: "123456789012", URLID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"body", "cookies", "queryStringParameters"} {
		if _, ok := generic[key]; ok {
			t.Errorf("%s present: %s", key, raw)
		}
	}
	ev := decodeEvent(t, raw)
	if ev.IsBase64Encoded || ev.RawQueryString != "" {
		t.Errorf("isBase64Encoded=%v rawQueryString=%q", ev.IsBase64Encoded, ev.RawQueryString)
	}
	if ev.RawPath != "/a%20b" || ev.RequestContext.HTTP.Path != "/a%20b" {
		t.Errorf("default raw path: %q %q", ev.RawPath, ev.RequestContext.HTTP.Path)
	}
	if ev.RequestContext.AccountID != "123456789012" || ev.RequestContext.HTTP.SourceIP != "not-a-host-port" {
		t.Errorf("account %q source %q", ev.RequestContext.AccountID, ev.RequestContext.HTTP.SourceIP)
	}
	if ms := ev.RequestContext.TimeEpoch; ms < before.UnixMilli() || ms > time.Now().UnixMilli() {
		t.Errorf("zero Meta.Time not replaced by now: %d", ms)
	}
}

func TestBuildEventIAMAuthorizer(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	id := &IAMIdentity{AccessKey: "AKIDEXAMPLE", AccountID: "111122223333", CallerID: "AIDAEXAMPLE",
		UserARN: "arn:aws:iam::111122223333:user/u", UserID: "AIDAEXAMPLE"}
	raw, err := BuildEvent(r, nil, Meta{AccountID: "111122223333", IAM: id})
	if err != nil {
		t.Fatal(err)
	}
	ev := decodeEvent(t, raw)
	want := &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{AccessKey: "AKIDEXAMPLE",
		AccountID: "111122223333", CallerID: "AIDAEXAMPLE", UserARN: "arn:aws:iam::111122223333:user/u", UserID: "AIDAEXAMPLE"}
	if ev.RequestContext.Authorizer == nil || !reflect.DeepEqual(ev.RequestContext.Authorizer.IAM, want) {
		t.Fatalf("authorizer = %+v", ev.RequestContext.Authorizer)
	}
}

func TestBuildEventBodyEncoding(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe}
	cases := []struct {
		name, contentType string
		body              []byte
		base64            bool
	}{
		{"json", "application/json", []byte(`{"a":1}`), false},
		{"text with charset", "text/plain; charset=utf-8", []byte("héllo <b>"), false},
		{"upper-case type", "TEXT/HTML", []byte("<p>x</p>"), false},
		{"xml", "application/xml", []byte("<a/>"), false},
		{"json suffix", "application/vnd.api+json", []byte(`{}`), false},
		{"javascript", "application/javascript", []byte("f()"), false},
		{"form is base64 on Lambda", "application/x-www-form-urlencoded", []byte("a=1&b=2"), true},
		{"multipart is base64 on Lambda", "multipart/form-data; boundary=x", []byte("--x--"), true},
		{"no content type", "", []byte("hello"), true},
		{"octet-stream", "application/octet-stream", []byte("hello"), true},
		{"binary", "image/png", binary, true},
		{"text type but not UTF-8", "text/plain", []byte{'a', 0xff, 'b'}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(c.body))
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			raw, err := BuildEvent(r, c.body, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			ev := decodeEvent(t, raw)
			if ev.IsBase64Encoded != c.base64 {
				t.Fatalf("isBase64Encoded = %v, want %v", ev.IsBase64Encoded, c.base64)
			}
			got := []byte(ev.Body)
			if ev.IsBase64Encoded {
				if got, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, c.body) {
				t.Fatalf("body round trip: %q, want %q", got, c.body)
			}
		})
	}
}

// TestBuildEventFromServer checks what a real net/http server hands over: Host and
// Content-Length in the headers, the escaped path as the client sent it, the peer address.
func TestBuildEventFromServer(t *testing.T) {
	received := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		raw, err := BuildEvent(r, body, Meta{RawPath: strings.TrimPrefix(r.URL.EscapedPath(), "/fn/u1"), URLID: "u1"})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		received <- raw
	}))
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodPut, srv.URL+"/fn/u1/a%2Fb/%7Euser/x%20y?q=%41&q=b", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ev := decodeEvent(t, <-received)
	if ev.RawPath != "/a%2Fb/%7Euser/x%20y" || ev.RequestContext.HTTP.Path != ev.RawPath {
		t.Errorf("rawPath %q path %q", ev.RawPath, ev.RequestContext.HTTP.Path)
	}
	if ev.RawQueryString != "q=%41&q=b" || ev.QueryStringParameters["q"] != "A,b" {
		t.Errorf("query %q %v", ev.RawQueryString, ev.QueryStringParameters)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if ev.Headers["host"] != host || ev.Headers["content-length"] != "7" || ev.Body != "payload" {
		t.Errorf("headers %v body %q", ev.Headers, ev.Body)
	}
	if ev.RequestContext.HTTP.SourceIP != "127.0.0.1" || ev.RequestContext.HTTP.Method != "PUT" {
		t.Errorf("source %q method %q", ev.RequestContext.HTTP.SourceIP, ev.RequestContext.HTTP.Method)
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseResponseFromLambdaFunctionURLResponse(t *testing.T) {
	payload := marshal(t, events.LambdaFunctionURLResponse{
		StatusCode: 201,
		Headers:    map[string]string{"Content-Type": "text/html", "x-custom": "Custom Value"},
		Body:       "<p>hi</p>",
		Cookies:    []string{"Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT", "Cookie_2=Value2; Max-Age=78000"},
	})
	resp, err := ParseResponse(payload)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || string(resp.Body) != "<p>hi</p>" {
		t.Errorf("status %d body %q", resp.Status, resp.Body)
	}
	if resp.Header.Get("Content-Type") != "text/html" || resp.Header.Get("X-Custom") != "Custom Value" {
		t.Errorf("header %v", resp.Header)
	}
	wantCookies := []string{"Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT", "Cookie_2=Value2; Max-Age=78000"}
	if got := resp.Header.Values("Set-Cookie"); !reflect.DeepEqual(got, wantCookies) {
		t.Errorf("Set-Cookie %q", got)
	}

	binary := []byte{0, 1, 2, 0xfe, 0xff}
	resp, err = ParseResponse(marshal(t, events.LambdaFunctionURLResponse{
		StatusCode:      200,
		Headers:         map[string]string{"Content-Type": "image/png"},
		Body:            base64.StdEncoding.EncodeToString(binary),
		IsBase64Encoded: true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.Body, binary) || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("base64 body %v type %q", resp.Body, resp.Header.Get("Content-Type"))
	}

	// Nil headers, nil cookies and an empty body, as the zero value marshals.
	resp, err = ParseResponse(marshal(t, events.LambdaFunctionURLResponse{StatusCode: 204}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 204 || len(resp.Body) != 0 || resp.Header.Get("Content-Type") != DefaultContentType ||
		len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("zero response: %d %v %q", resp.Status, resp.Header, resp.Body)
	}
}

// TestParseResponseInference covers the results AWS served through a function URL in
// LocalStack's AWS-validated snapshot (test_lambda_url_invocation), whose Content-Length values
// show that Lambda re-serialises non-response JSON compactly, plus the edges around them.
func TestParseResponseInference(t *testing.T) {
	cases := []struct {
		name, payload string
		status        int
		contentType   string
		body          string
	}{
		{"dict (AWS)", `{"hello": "world"}`, 200, "application/json", `{"hello":"world"}`},
		{"http response without headers (AWS)", `{"statusCode": 200, "body": "body123"}`, 200, "application/json", "body123"},
		{"http response with JSON body (AWS)", `{"statusCode": 200, "body": "{\"hello\": \"world\"}"}`, 200, "application/json", `{"hello": "world"}`},
		{"list (AWS)", `["hello", 3, true]`, 200, "application/json", `["hello",3,true]`},
		{"string (AWS)", `"hello"`, 200, "application/json", "hello"},
		{"integer (AWS)", `3`, 200, "application/json", "3"},
		{"float (AWS)", `3.1`, 200, "application/json", "3.1"},
		{"boolean (AWS)", `true`, 200, "application/json", "true"},
		{"string status code (AWS)", `{"statusCode": "418", "body": "i'm a teapot"}`, 418, "application/json", "i'm a teapot"},
		{"null", `null`, 200, "application/json", "null"},
		{"object with null statusCode", `{"statusCode": null, "a": 1}`, 200, "application/json", `{"statusCode":null,"a":1}`},
		{"object body", `{"statusCode": 200, "headers": {"content-type": "application/json"}, "body": {"data": [1, 2]}}`, 200, "application/json", `{"data":[1,2]}`},
		{"no body", `{"statusCode": 302, "headers": {"Location": "/x"}}`, 302, "application/json", ""},
		{"numeric header value", `{"statusCode": 200, "headers": {"X-N": 5, "Content-Type": "text/plain"}, "body": "x"}`, 200, "text/plain", "x"},
		{"not JSON", "plain text\x00", 200, "application/json", "plain text\x00"},
		{"surrounding whitespace", "\n {\"statusCode\": 201.0}\n", 201, "application/json", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := ParseResponse([]byte(c.payload))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != c.status || resp.Header.Get("Content-Type") != c.contentType || string(resp.Body) != c.body {
				t.Fatalf("got %d %q %q, want %d %q %q", resp.Status, resp.Header.Get("Content-Type"), resp.Body,
					c.status, c.contentType, c.body)
			}
		})
	}
}

func TestParseResponseHeaderValuesAndMultiValueHeaders(t *testing.T) {
	resp, err := ParseResponse([]byte(`{"statusCode": 200, "headers": {"X-N": 5, "X-B": true, "X-Null": null},
		"multiValueHeaders": {"X-M": ["a", "b"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-N") != "5" || resp.Header.Get("X-B") != "true" {
		t.Errorf("scalar header values: %v", resp.Header)
	}
	if _, ok := resp.Header["X-Null"]; ok {
		t.Error("null header kept")
	}
	if _, ok := resp.Header["X-M"]; ok {
		t.Error("multiValueHeaders honoured; payload format 2.0 has none")
	}
}

func TestParseResponseRejects(t *testing.T) {
	cases := map[string]string{
		"status out of range":       `{"statusCode": 700}`,
		"status below range":        `{"statusCode": 99}`,
		"status not a number":       `{"statusCode": "abc"}`,
		"fractional status":         `{"statusCode": 200.5}`,
		"status is an object":       `{"statusCode": {}}`,
		"headers not an object":     `{"statusCode": 200, "headers": ["a"]}`,
		"header value is an object": `{"statusCode": 200, "headers": {"X": {"a": 1}}}`,
		"header name with space":    `{"statusCode": 200, "headers": {"Bad Name": "v"}}`,
		"header value with CRLF":    `{"statusCode": 200, "headers": {"X": "a\r\nSet-Cookie: evil=1"}}`,
		"cookies not strings":       `{"statusCode": 200, "cookies": [1]}`,
		"cookie with newline":       `{"statusCode": 200, "cookies": ["a=1\nb"]}`,
		"bad base64":                `{"statusCode": 200, "body": "!!!", "isBase64Encoded": true}`,
		"isBase64Encoded not bool":  `{"statusCode": 200, "body": "aGk=", "isBase64Encoded": "yes"}`,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			resp, err := ParseResponse([]byte(payload))
			if !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("got %+v, %v; want ErrInvalidResponse", resp, err)
			}
		})
	}
}

// streamBytes is what aws-lambda-go posts to the runtime API for a streaming response.
func streamBytes(t *testing.T, r *events.LambdaFunctionURLStreamingResponse) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadPreludeFromAWSLambdaGo(t *testing.T) {
	body := "data: one\n\n" + preludeDelimiter + "data: two\n\n" // NULs inside the body stay body
	sr := &events.LambdaFunctionURLStreamingResponse{
		StatusCode: 201,
		Headers:    map[string]string{"Content-Type": "text/event-stream", "X-Probe": "yes"},
		Cookies:    []string{"a=1; Path=/", "b=2"},
		Body:       strings.NewReader(body),
	}
	if !HasPrelude(sr.ContentType()) {
		t.Fatalf("HasPrelude(%q) = false", sr.ContentType())
	}
	// The smallest bufio buffer makes the prelude span several ReadSlice calls.
	br := bufio.NewReaderSize(bytes.NewReader(streamBytes(t, sr)), 16)
	p, err := ReadPrelude(br, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 201 || p.Header.Get("Content-Type") != "text/event-stream" || p.Header.Get("X-Probe") != "yes" {
		t.Errorf("prelude %d %v", p.Status, p.Header)
	}
	if got := p.Header.Values("Set-Cookie"); !reflect.DeepEqual(got, []string{"a=1; Path=/", "b=2"}) {
		t.Errorf("Set-Cookie %q", got)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != body {
		t.Fatalf("body after prelude = %q, want %q", rest, body)
	}
}

func TestReadPreludeDefaults(t *testing.T) {
	// aws-lambda-go turns an unset StatusCode into 200 and omits nil headers and cookies.
	br := bufio.NewReader(bytes.NewReader(streamBytes(t, &events.LambdaFunctionURLStreamingResponse{})))
	p, err := ReadPrelude(br, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 || p.Header.Get("Content-Type") != DefaultStreamContentType || len(p.Header) != 1 {
		t.Errorf("prelude %d %v", p.Status, p.Header)
	}
	if n, _ := io.Copy(io.Discard, br); n != 0 {
		t.Errorf("nil Body left %d bytes", n)
	}

	// A prelude with statusCode 0 (written by hand) also means 200.
	p, err = ReadPrelude(bufio.NewReader(strings.NewReader(`{"statusCode":0}`+preludeDelimiter)), 1024)
	if err != nil || p.Status != 200 {
		t.Errorf("statusCode 0: %+v %v", p, err)
	}

	// An empty stream is what a handler that never writes produces.
	p, err = ReadPrelude(bufio.NewReader(strings.NewReader("")), 1024)
	if err != nil || p.Status != 200 || p.Header.Get("Content-Type") != DefaultStreamContentType {
		t.Errorf("empty stream: %+v %v", p, err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadPreludeLimit(t *testing.T) {
	prelude := `{"statusCode":200,"headers":{"X":"` + strings.Repeat("a", 100) + `"}}`
	if _, err := ReadPrelude(bufio.NewReader(strings.NewReader(prelude+preludeDelimiter)), len(prelude)); err != nil {
		t.Fatalf("prelude of exactly the limit refused: %v", err)
	}
	_, err := ReadPrelude(bufio.NewReader(strings.NewReader(prelude+preludeDelimiter)), len(prelude)-1)
	if !errors.Is(err, ErrPreludeTooLarge) {
		t.Fatalf("prelude over the limit: %v", err)
	}

	// A stream that never delimits is not read much past the limit.
	cr := &countingReader{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	_, err = ReadPrelude(bufio.NewReaderSize(cr, 512), 1000)
	if !errors.Is(err, ErrPreludeTooLarge) || cr.n > 2000 {
		t.Fatalf("err %v after reading %d bytes", err, cr.n)
	}
}

func TestReadPreludeMalformed(t *testing.T) {
	cases := map[string]string{
		"no delimiter":        `{"statusCode":200}`,
		"short delimiter":     `{"statusCode":200}` + "\x00\x00\x00",
		"broken delimiter":    `{"statusCode":200}` + "\x00\x00\x00x\x00\x00\x00\x00",
		"not JSON":            `statusCode=200` + preludeDelimiter,
		"JSON array":          `[200]` + preludeDelimiter,
		"bad status":          `{"statusCode":1000}` + preludeDelimiter,
		"bad header name":     `{"headers":{"a b":"c"}}` + preludeDelimiter,
		"cookies not strings": `{"cookies":{"a":"b"}}` + preludeDelimiter,
	}
	for name, stream := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := ReadPrelude(bufio.NewReader(strings.NewReader(stream)), 1024)
			if !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("got %+v, %v; want ErrInvalidResponse", p, err)
			}
		})
	}
	_, err := ReadPrelude(bufio.NewReader(strings.NewReader(`{"statusCode":200}`)), 1024)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated prelude error %v does not wrap io.ErrUnexpectedEOF", err)
	}
}

func TestHasPreludeAndDefaultPrelude(t *testing.T) {
	cases := map[string]bool{
		PreludeContentType: true,
		"Application/Vnd.AWSLambda.Http-Integration-Response; charset=utf-8": true,
		// What aws-lambda-go posts for a JSON result and for a plain io.Reader result
		// (lambda/runtime_api_client.go: contentTypeJSON, contentTypeBytes).
		"application/json":         false,
		"application/octet-stream": false,
		"":                         false,
	}
	for ct, want := range cases {
		if HasPrelude(ct) != want {
			t.Errorf("HasPrelude(%q) = %v", ct, !want)
		}
	}
	if p := DefaultPrelude("text/event-stream"); p.Status != 200 || p.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("DefaultPrelude(text/event-stream) = %+v", p)
	}
	if p := DefaultPrelude(""); p.Header.Get("Content-Type") != DefaultStreamContentType {
		t.Errorf("DefaultPrelude(\"\") = %+v", p)
	}
}

// Example_stream shows how the front door consumes a streamed response: the runtime's
// Content-Type decides whether a prelude is read, and no body byte is lost either way.
func Example_stream() {
	serve := func(contentType string, stream io.Reader) {
		br := bufio.NewReader(stream)
		p := DefaultPrelude(contentType)
		if HasPrelude(contentType) {
			var err error
			if p, err = ReadPrelude(br, 64<<10); err != nil {
				fmt.Println("502:", err)
				return
			}
		}
		body, _ := io.ReadAll(br)
		fmt.Println(p.Status, p.Header.Get("Content-Type"), string(body))
	}
	serve(PreludeContentType, strings.NewReader(`{"statusCode":201,"headers":{"Content-Type":"text/plain"}}`+preludeDelimiter+"hi"))
	serve("application/json", strings.NewReader(`{"statusCode":201}`))
	// Output:
	// 201 text/plain hi
	// 200 application/json {"statusCode":201}
}
