// Package furl speaks the Lambda function URL payload format 2.0: it turns an HTTP request into
// the event a function receives, and the function's result (buffered, or the prelude of a
// streamed one) back into an HTTP response. It does no I/O beyond the reader it is handed.
//
// Where Lambda's behaviour is not written down, the rules follow what was observed against AWS:
// LocalStack's AWS-validated snapshots (tests/aws/services/lambda_/test_lambda.py, TestLambdaURL),
// the AWS Lambda developer guide (urls-invocation.md) and aws-lambda-go's events package.
package furl

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// PreludeContentType is the Content-Type a runtime posts a streamed response with when the body
// starts with an HTTP prelude (aws-lambda-go's LambdaFunctionURLStreamingResponse, Node's
// awslambda.HttpResponseStream.from).
const PreludeContentType = "application/vnd.awslambda.http-integration-response"

// DefaultContentType is what Lambda sends when a buffered result names no Content-Type, whether
// or not it is an HTTP response object (AWS-validated: {"statusCode":200,"body":"body123"} is
// served as application/json).
const DefaultContentType = "application/json"

// DefaultStreamContentType is used for a streamed body whose runtime and prelude name no type: a
// stream is arbitrary bytes, so claiming JSON would be wrong. This is the gateway's choice, not
// observed Lambda behaviour.
const DefaultStreamContentType = "application/octet-stream"

// preludeDelimiter ends the prelude. JSON cannot contain a raw NUL, so the first NUL starts it.
const preludeDelimiter = "\x00\x00\x00\x00\x00\x00\x00\x00"

// timeLayout is requestContext.time, e.g. "12/Mar/2020:19:03:58 +0000".
const timeLayout = "02/Jan/2006:15:04:05 -0700"

var (
	// ErrInvalidResponse marks a function result (or prelude) Lambda would refuse; the front
	// door answers 502 as Lambda does.
	ErrInvalidResponse = errors.New("invalid function URL response")
	// ErrPreludeTooLarge is returned when no delimiter follows within the prelude limit.
	ErrPreludeTooLarge = errors.New("function URL response prelude too large")
)

// Meta is what the gateway knows about a request beyond the request itself.
type Meta struct {
	RequestID  string
	URLID      string // the URL's id: apiId and domainPrefix
	DomainName string
	AccountID  string // "anonymous" when empty, as Lambda sends for auth type NONE
	// RawPath is the escaped path the function sees (the gateway may serve the URL under a
	// prefix it strips). Empty means r.URL.EscapedPath().
	RawPath string
	Time    time.Time // when the request arrived; zero means now
	// IAM is the verified caller of a signed URL; nil omits requestContext.authorizer.
	IAM *IAMIdentity
}

// IAMIdentity is requestContext.authorizer.iam.
type IAMIdentity struct {
	AccessKey string `json:"accessKey"`
	AccountID string `json:"accountId"`
	CallerID  string `json:"callerId"`
	UserARN   string `json:"userArn"`
	UserID    string `json:"userId"`
}

// Response is a buffered function result as an HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Prelude is the head of a streamed response; the body follows in the stream.
type Prelude struct {
	Status int
	Header http.Header
}

type event struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        requestContext    `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type requestContext struct {
	AccountID    string      `json:"accountId"`
	APIID        string      `json:"apiId"`
	Authorizer   *authorizer `json:"authorizer,omitempty"`
	DomainName   string      `json:"domainName"`
	DomainPrefix string      `json:"domainPrefix"`
	HTTP         httpContext `json:"http"`
	RequestID    string      `json:"requestId"`
	RouteKey     string      `json:"routeKey"`
	Stage        string      `json:"stage"`
	Time         string      `json:"time"`
	TimeEpoch    int64       `json:"timeEpoch"`
}

type authorizer struct {
	IAM *IAMIdentity `json:"iam"`
}

type httpContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// BuildEvent returns the payload format 2.0 event for r, whose body the caller has already read
// (and bounded) into body.
//
// Headers are lower-cased and repeated values joined with ","; Cookie headers move to cookies.
// queryStringParameters holds the decoded query values, repeated ones joined with "," (AWS turns
// "multiQuery=foo&multiQuery=%2Fbar" into "foo,/bar"); rawQueryString and rawPath stay as
// received. The body is omitted when empty and base64-encoded unless isTextBody says otherwise.
func BuildEvent(r *http.Request, body []byte, m Meta) ([]byte, error) {
	rawPath := m.RawPath
	if rawPath == "" {
		rawPath = r.URL.EscapedPath()
	}
	account := m.AccountID
	if account == "" {
		account = "anonymous"
	}
	at := m.Time
	if at.IsZero() {
		at = time.Now()
	}
	ev := event{
		Version:               "2.0",
		RouteKey:              "$default",
		RawPath:               rawPath,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies(r.Header),
		Headers:               eventHeaders(r),
		QueryStringParameters: queryParameters(r.URL.RawQuery),
		RequestContext: requestContext{
			AccountID:    account,
			APIID:        m.URLID,
			DomainName:   m.DomainName,
			DomainPrefix: m.URLID,
			HTTP: httpContext{
				Method:    r.Method,
				Path:      rawPath,
				Protocol:  r.Proto,
				SourceIP:  SourceIP(r.RemoteAddr),
				UserAgent: r.UserAgent(),
			},
			RequestID: m.RequestID,
			RouteKey:  "$default",
			Stage:     "$default",
			Time:      at.UTC().Format(timeLayout),
			TimeEpoch: at.UnixMilli(),
		},
	}
	if m.IAM != nil {
		ev.RequestContext.Authorizer = &authorizer{IAM: m.IAM}
	}
	if len(body) > 0 {
		if isTextBody(r.Header.Get("Content-Type"), body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Bodies are passed verbatim; HTML escaping would only make them harder to read in logs.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("encode function URL event: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// isTextBody decides whether a request body travels as a JSON string rather than base64.
//
// Lambda infers this from the Content-Type alone: AWS's own function URL material says the body
// is base64 unless the type is application/json or text/*, and observed behaviour agrees
// (application/json and text/plain arrive as text; multipart/form-data and
// application/x-www-form-urlencoded arrive base64; no Content-Type means base64). The other
// structured-text types (application/xml, application/javascript, +json and +xml suffixes) are
// treated as text too; that part is an assumption. Whatever the type, bytes that are not valid
// UTF-8 are base64 so that no byte is lost in the JSON string.
func isTextBody(contentType string, body []byte) bool {
	if !utf8.Valid(body) {
		return false
	}
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch {
	case strings.HasPrefix(mt, "text/"):
		return true
	case mt == "application/json", mt == "application/xml", mt == "application/javascript":
		return true
	case strings.HasPrefix(mt, "application/") && (strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml")):
		return true
	}
	return false
}

func cookies(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Cookie") {
		for c := range strings.SplitSeq(line, ";") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

func eventHeaders(r *http.Request) map[string]string {
	out := make(map[string]string, len(r.Header)+1)
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if lower == "cookie" {
			continue
		}
		if prev, ok := out[lower]; ok { // non-canonical keys set by hand
			values = append([]string{prev}, values...)
		}
		out[lower] = strings.Join(values, ",")
	}
	// net/http moves Host out of the header map; Lambda lists it.
	if r.Host != "" {
		out["host"] = r.Host
	}
	return out
}

// queryParameters decodes the query the way form decoding does ("+" is a space). A part that is
// not validly escaped is kept as received rather than failing the request.
func queryParameters(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	values := map[string][]string{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = unescape(k), unescape(v)
		values[k] = append(values[k], v)
	}
	if len(values) == 0 {
		return nil
	}
	out := make(map[string]string, len(values))
	for k, vs := range values {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// SourceIP is the client address of a request's RemoteAddr, without the port.
func SourceIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// ParseResponse turns a buffered function result into the HTTP response Lambda sends:
//
//   - a JSON object with a non-null statusCode (a number, or a string holding one: AWS accepts
//     "418") is an HTTP response: headers (payload 2.0 has no multiValueHeaders, so they are
//     ignored), cookies (one Set-Cookie each), body (a string, base64-decoded when
//     isBase64Encoded; any other JSON value is sent as its compact JSON), Content-Type
//     application/json unless the headers name one;
//   - a JSON string is the body, unquoted (AWS-validated: "hello" is served as hello);
//   - any other JSON value, including an object without statusCode, is the body as compact JSON
//     (AWS-validated: Lambda strips the runtime's insignificant whitespace) with status 200;
//   - a payload that is not JSON at all (a runtime streaming raw bytes into a buffered URL) is
//     the body as is with status 200.
//
// Errors wrap ErrInvalidResponse: Lambda answers those results with 502.
func ParseResponse(payload []byte) (*Response, error) {
	resp := &Response{Status: http.StatusOK, Header: http.Header{}}
	trimmed := bytes.TrimSpace(payload)
	if !json.Valid(trimmed) {
		resp.Header.Set("Content-Type", DefaultContentType)
		resp.Body = payload
		return resp, nil
	}
	switch trimmed[0] {
	case '"':
		var s string
		if err := json.Unmarshal(trimmed, &s); err != nil {
			return nil, fmt.Errorf("%w: decode string result: %v", ErrInvalidResponse, err)
		}
		resp.Header.Set("Content-Type", DefaultContentType)
		resp.Body = []byte(s)
		return resp, nil
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return nil, fmt.Errorf("%w: decode result object: %v", ErrInvalidResponse, err)
		}
		if sc, ok := obj["statusCode"]; ok && !isNull(sc) {
			return httpResponse(obj)
		}
	}
	resp.Header.Set("Content-Type", DefaultContentType)
	resp.Body = compact(trimmed)
	return resp, nil
}

func httpResponse(obj map[string]json.RawMessage) (*Response, error) {
	status, err := parseStatus(obj["statusCode"])
	if err != nil {
		return nil, err
	}
	h, err := parseHead(obj["headers"], obj["cookies"])
	if err != nil {
		return nil, err
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", DefaultContentType)
	}
	body, err := parseBody(obj["body"], obj["isBase64Encoded"])
	if err != nil {
		return nil, err
	}
	return &Response{Status: status, Header: h, Body: body}, nil
}

func parseBody(raw, b64 json.RawMessage) ([]byte, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	if raw[0] != '"' {
		return compact(raw), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: decode body: %v", ErrInvalidResponse, err)
	}
	encoded := false
	if len(b64) > 0 && !isNull(b64) {
		if err := json.Unmarshal(b64, &encoded); err != nil {
			return nil, fmt.Errorf("%w: isBase64Encoded is not a boolean: %s", ErrInvalidResponse, b64)
		}
	}
	if !encoded {
		return []byte(s), nil
	}
	body, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: decode base64 body: %v", ErrInvalidResponse, err)
	}
	return body, nil
}

// parseStatus accepts what Lambda accepts: an integer in 100..599, as a number or a string.
func parseStatus(raw json.RawMessage) (int, error) {
	text := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, fmt.Errorf("%w: decode statusCode: %v", ErrInvalidResponse, err)
		}
		text = strings.TrimSpace(text)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != math.Trunc(f) || f < 100 || f > 599 {
		return 0, fmt.Errorf("%w: statusCode %s is not an HTTP status", ErrInvalidResponse, raw)
	}
	return int(f), nil
}

// parseHead builds the header of a response or prelude: "headers" maps a name to one value
// (numbers and booleans are accepted as their JSON text), each of "cookies" becomes a Set-Cookie.
func parseHead(headers, cookieList json.RawMessage) (http.Header, error) {
	h := http.Header{}
	if len(headers) > 0 && !isNull(headers) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(headers, &m); err != nil {
			return nil, fmt.Errorf("%w: headers is not an object: %v", ErrInvalidResponse, err)
		}
		for name, raw := range m {
			if isNull(raw) {
				continue
			}
			value := string(raw)
			switch raw[0] {
			case '"':
				if err := json.Unmarshal(raw, &value); err != nil {
					return nil, fmt.Errorf("%w: decode header %q: %v", ErrInvalidResponse, name, err)
				}
			case '{', '[':
				return nil, fmt.Errorf("%w: header %q is not a string", ErrInvalidResponse, name)
			}
			if err := addHeader(h, name, value); err != nil {
				return nil, err
			}
		}
	}
	if len(cookieList) > 0 && !isNull(cookieList) {
		var cs []string
		if err := json.Unmarshal(cookieList, &cs); err != nil {
			return nil, fmt.Errorf("%w: cookies is not a list of strings: %v", ErrInvalidResponse, err)
		}
		for _, c := range cs {
			if err := addHeader(h, "Set-Cookie", c); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// addHeader refuses names and values net/http would drop or that could split the response.
func addHeader(h http.Header, name, value string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("%w: invalid header name %q", ErrInvalidResponse, name)
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return fmt.Errorf("%w: invalid value for header %q", ErrInvalidResponse, name)
	}
	h.Add(name, value)
	return nil
}

// HasPrelude reports whether a streamed response whose runtime posted it with this Content-Type
// starts with a prelude. Any other type means the whole stream is the body: send
// DefaultPrelude(contentType) and copy the stream untouched.
func HasPrelude(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), PreludeContentType)
}

// DefaultPrelude is the head of a stream without a prelude: 200, and the runtime's Content-Type
// (as Node's responseStream.setContentType sets it) or DefaultStreamContentType when none.
func DefaultPrelude(contentType string) *Prelude {
	if contentType == "" || HasPrelude(contentType) {
		contentType = DefaultStreamContentType
	}
	return &Prelude{Status: http.StatusOK, Header: http.Header{"Content-Type": {contentType}}}
}

// ReadPrelude reads the prelude of a stream posted with PreludeContentType: a JSON object
// {"statusCode", "headers", "cookies"} followed by eight NUL bytes, exactly as aws-lambda-go's
// events.LambdaFunctionURLStreamingResponse writes it. r is left at the first body byte, so the
// caller copies the rest of r as the body.
//
// A missing or zero statusCode means 200 (aws-lambda-go writes 200 for an unset StatusCode). A
// prelude that names no Content-Type gets DefaultStreamContentType. An empty stream is a 200
// with no body: Node's HttpResponseStream.from writes the prelude only on the first write, so a
// handler that writes nothing sends nothing. At most limit bytes of JSON are read; beyond that the error wraps ErrPreludeTooLarge. Other errors wrap
// ErrInvalidResponse, or the reader's error.
func ReadPrelude(r *bufio.Reader, limit int) (*Prelude, error) {
	var head []byte
	for {
		chunk, err := r.ReadSlice(0)
		head = append(head, chunk...)
		if len(head) > limit+1 { // +1: the delimiter's first NUL
			return nil, fmt.Errorf("%w: no delimiter within %d bytes", ErrPreludeTooLarge, limit)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(head) == 0 {
				return DefaultPrelude(""), nil
			}
			return nil, fmt.Errorf("%w: stream ended inside the prelude: %w", ErrInvalidResponse, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("read function URL response prelude: %w", err)
	}
	rest := make([]byte, len(preludeDelimiter)-1)
	if _, err := io.ReadFull(r, rest); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: stream ended inside the prelude delimiter: %w", ErrInvalidResponse, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("read function URL response prelude: %w", err)
	}
	if string(rest) != preludeDelimiter[1:] {
		return nil, fmt.Errorf("%w: prelude not followed by 8 NUL bytes", ErrInvalidResponse)
	}
	return parsePrelude(head[:len(head)-1])
}

func parsePrelude(data []byte) (*Prelude, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%w: prelude is not a JSON object: %v", ErrInvalidResponse, err)
	}
	status := http.StatusOK
	if raw, ok := obj["statusCode"]; ok && !isNull(raw) && string(raw) != "0" {
		var err error
		if status, err = parseStatus(raw); err != nil {
			return nil, err
		}
	}
	h, err := parseHead(obj["headers"], obj["cookies"])
	if err != nil {
		return nil, err
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", DefaultStreamContentType)
	}
	return &Prelude{Status: status, Header: h}, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// compact drops insignificant whitespace from valid JSON.
func compact(data []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return data
	}
	return buf.Bytes()
}
