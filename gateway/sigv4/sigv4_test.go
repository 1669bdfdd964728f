package sigv4_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lambdagw/gateway/gateway/sigv4"
)

const (
	testKeyID  = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"

	msgMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

var signTime = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// outcome is what a client sees: the rendered identity or Lambda-shaped error.
type outcome struct {
	Status  int
	Type    string
	Message string
	// Cause is Error.Err, passed back in a test-only header.
	Cause    string
	Identity sigv4.Identity
}

// newServer starts an HTTP server whose handler verifies every request, so
// requests go through a real round trip (header canonicalisation, Host, path
// parsing) before Verify sees them.
func newServer(t *testing.T, cfg sigv4.Config) (*httptest.Server, *sigv4.Verifier) {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = map[string]string{testKeyID: testSecret}
	}
	v, err := sigv4.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, err := v.Verify(r, body)
		var e *sigv4.Error
		switch {
		case err == nil:
			_ = json.NewEncoder(w).Encode(id)
		case errors.As(err, &e):
			w.Header().Set("X-Amzn-ErrorType", e.Type)
			if e.Err != nil {
				w.Header().Set("X-Test-Cause", e.Err.Error())
			}
			w.WriteHeader(e.Status)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": e.Message})
		default:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, v
}

func send(t *testing.T, srv *httptest.Server, req *http.Request) outcome {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("sending request: %v", err)
	}
	defer resp.Body.Close()
	return readOutcome(t, resp)
}

func readOutcome(t *testing.T, resp *http.Response) outcome {
	t.Helper()
	o := outcome{Status: resp.StatusCode, Type: resp.Header.Get("X-Amzn-ErrorType"), Cause: resp.Header.Get("X-Test-Cause")}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &o.Identity); err != nil {
			t.Fatalf("decoding identity %q: %v", raw, err)
		}
		return o
	}
	var body struct{ Message string }
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("decoding error %q (status %d): %v", raw, resp.StatusCode, err)
	}
	o.Message = body.Message
	return o
}

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func bodyHash(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

func newRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	return req
}

// signing is how a test client signs; zero fields take the defaults.
type signing struct {
	keyID, secret, token, service, region string
	at                                    time.Time
	payloadHash                           string
}

func (s signing) creds() aws.Credentials {
	c := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret, SessionToken: s.token}
	if s.keyID != "" {
		c.AccessKeyID = s.keyID
	}
	if s.secret != "" {
		c.SecretAccessKey = s.secret
	}
	return c
}

func (s signing) params(body string) (hash, service, region string, at time.Time) {
	hash, service, region, at = s.payloadHash, s.service, s.region, s.at
	if hash == "" {
		hash = bodyHash(body)
	}
	if service == "" {
		service = "lambda"
	}
	if region == "" {
		region = testRegion
	}
	if at.IsZero() {
		at = signTime
	}
	return hash, service, region, at
}

// signHeader signs req in the Authorization header form, as the SDKs do.
func signHeader(t *testing.T, req *http.Request, body string, s signing) *http.Request {
	t.Helper()
	hash, service, region, at := s.params(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), s.creds(), req, hash, service, region, at); err != nil {
		t.Fatalf("signing: %v", err)
	}
	return req
}

// presign returns a request for the presigned form of req.
func presign(t *testing.T, req *http.Request, body string, s signing) *http.Request {
	t.Helper()
	hash, service, region, at := s.params(body)
	signed, headers, err := v4.NewSigner().PresignHTTP(context.Background(), s.creds(), req, hash, service, region, at)
	if err != nil {
		t.Fatalf("presigning: %v", err)
	}
	out := newRequest(t, req.Method, signed, body)
	for k, vals := range headers {
		if k != "Host" {
			out.Header[k] = vals
		}
	}
	return out
}

func TestVerifyAcceptsSignedRequests(t *testing.T) {
	const body = `{"hello":"world"}`
	tests := []struct {
		name   string
		region string
		build  func(t *testing.T, base string) *http.Request
	}{
		{name: "header form without body", build: func(t *testing.T, base string) *http.Request {
			return signHeader(t, newRequest(t, "GET", base+"/fn/hello", ""), "", signing{})
		}},
		{name: "header form with body", build: func(t *testing.T, base string) *http.Request {
			req := newRequest(t, "POST", base+"/fn/hello", body)
			req.Header.Set("Content-Type", "application/json")
			return signHeader(t, req, body, signing{})
		}},
		{name: "signed x-amz-content-sha256", build: func(t *testing.T, base string) *http.Request {
			req := newRequest(t, "PUT", base+"/fn/hello", body)
			req.Header.Set("X-Amz-Content-Sha256", bodyHash(body))
			return signHeader(t, req, body, signing{})
		}},
		{name: "signed UNSIGNED-PAYLOAD", build: func(t *testing.T, base string) *http.Request {
			req := newRequest(t, "POST", base+"/fn/hello", body)
			req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			return signHeader(t, req, body, signing{payloadHash: "UNSIGNED-PAYLOAD"})
		}},
		{name: "repeated and escaped query parameters", build: func(t *testing.T, base string) *http.Request {
			url := base + "/fn/hello?b=2&a=1&a=0&q=hello%20world&s=%2F%3D%26&plus=a%2Bb&empty=&u=%E2%82%AC"
			return signHeader(t, newRequest(t, "GET", url, ""), "", signing{})
		}},
		{name: "query re-encoded on the wire", build: func(t *testing.T, base string) *http.Request {
			req := signHeader(t, newRequest(t, "GET", base+"/fn/hello?b=2&a=1&a=0&q=hello%20world", ""), "", signing{})
			// Same parameters in another order and another space encoding: same canonical query.
			req.URL.RawQuery = "q=hello+world&a=1&b=2&a=0"
			return req
		}},
		{name: "path with escaped characters", build: func(t *testing.T, base string) *http.Request {
			return signHeader(t, newRequest(t, "GET", base+"/fn/a%20b/c%2Fd/%E2%82%AC/~x;y", ""), "", signing{})
		}},
		{name: "extra headers with repeated values and inner spaces", build: func(t *testing.T, base string) *http.Request {
			req := newRequest(t, "POST", base+"/fn/hello", body)
			req.Header.Set("X-Custom", "a   b  c")
			req.Header.Add("X-Multi", "one")
			req.Header.Add("X-Multi", " two ")
			return signHeader(t, req, body, signing{})
		}},
		{name: "user-agent signed by a client", build: func(t *testing.T, base string) *http.Request {
			// The SDK never signs User-Agent, other signers may: sign it under a
			// lower-case key (which the SDK's ignore list misses), then send it normally.
			req := newRequest(t, "GET", base+"/fn/hello", "")
			req.Header["user-agent"] = []string{"my-client/1.0"}
			signHeader(t, req, "", signing{})
			if !strings.Contains(req.Header.Get("Authorization"), "user-agent") {
				t.Fatalf("test setup: user-agent not signed: %s", req.Header.Get("Authorization"))
			}
			delete(req.Header, "user-agent")
			req.Header.Set("User-Agent", "my-client/1.0")
			return req
		}},
		{name: "another region", region: "eu-west-1", build: func(t *testing.T, base string) *http.Request {
			return signHeader(t, newRequest(t, "GET", base+"/fn/hello", ""), "", signing{region: "eu-west-1"})
		}},
		{name: "presigned without body", build: func(t *testing.T, base string) *http.Request {
			req := newRequest(t, "GET", base+"/fn/hello?b=2&a=1&a=0&q=x%20y&X-Amz-Expires=300", "")
			return presign(t, req, "", signing{})
		}},
		{name: "presigned with body", build: func(t *testing.T, base string) *http.Request {
			return presign(t, newRequest(t, "POST", base+"/fn/a%20b?X-Amz-Expires=60", body), body, signing{})
		}},
		{name: "presigned with UNSIGNED-PAYLOAD in the query", build: func(t *testing.T, base string) *http.Request {
			req := newRequest(t, "POST", base+"/fn/hello?X-Amz-Content-Sha256=UNSIGNED-PAYLOAD", body)
			return presign(t, req, body, signing{payloadHash: "UNSIGNED-PAYLOAD"})
		}},
		{name: "presigned with a signed header", build: func(t *testing.T, base string) *http.Request {
			req := newRequest(t, "GET", base+"/fn/hello", "")
			req.Header.Set("Content-Type", "text/plain")
			out := presign(t, req, "", signing{})
			if out.Header.Get("Content-Type") != "text/plain" || !strings.Contains(out.URL.RawQuery, "content-type") {
				t.Fatalf("test setup: content-type not signed: %s", out.URL)
			}
			return out
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, sigv4.Config{Now: clock(signTime.Add(30 * time.Second))})
			got := send(t, srv, tt.build(t, srv.URL))
			region := tt.region
			if region == "" {
				region = testRegion
			}
			want := outcome{Status: http.StatusOK, Identity: sigv4.Identity{AccessKeyID: testKeyID, Region: region}}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	const body = "payload"
	// base is a valid request: body, query, a signed custom header.
	base := func(t *testing.T, url string) *http.Request {
		req := newRequest(t, "POST", url+"/fn/hello?a=1", body)
		req.Header.Set("X-Custom", "v")
		return req
	}
	signed := func(t *testing.T, url string) *http.Request { return signHeader(t, base(t, url), body, signing{}) }
	mismatch := outcome{Status: http.StatusForbidden, Type: sigv4.TypeInvalidSignature, Message: msgMismatch}
	incomplete := func(msg string) outcome {
		return outcome{Status: http.StatusBadRequest, Type: sigv4.TypeIncompleteSignature, Message: msg}
	}
	invalid := func(msg string) outcome {
		return outcome{Status: http.StatusForbidden, Type: sigv4.TypeInvalidSignature, Message: msg}
	}
	unrecognized := outcome{Status: http.StatusForbidden, Type: sigv4.TypeUnrecognizedClient, Message: "The security token included in the request is invalid."}

	tests := []struct {
		name   string
		now    time.Time // signTime when zero
		region string    // Config.Region
		build  func(t *testing.T, url string) *http.Request
		want   outcome
		// cause, when set, must be contained in the logged cause.
		cause string
	}{
		{name: "no signature", want: outcome{Status: http.StatusForbidden, Type: sigv4.TypeAccessDenied,
			Message: "Forbidden. For troubleshooting Function URL authorization issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"},
			build: base},
		{name: "tampered body", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := signed(t, url)
			req.Body = io.NopCloser(strings.NewReader("PAYLOAD"))
			return req
		}},
		{name: "body not matching x-amz-content-sha256",
			want: invalid("The provided 'x-amz-content-sha256' header does not match what was computed."),
			build: func(t *testing.T, url string) *http.Request {
				req := base(t, url)
				req.Header.Set("X-Amz-Content-Sha256", bodyHash(body))
				signHeader(t, req, body, signing{})
				req.Body = io.NopCloser(strings.NewReader("PAYLOAD"))
				return req
			}},
		{name: "tampered signed header", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := signed(t, url)
			req.Header.Set("X-Custom", "w")
			return req
		}},
		{name: "signed header removed",
			want: incomplete("'x-custom' is named as a SignedHeader, but it does not exist in the HTTP request."),
			build: func(t *testing.T, url string) *http.Request {
				req := signed(t, url)
				req.Header.Del("X-Custom")
				return req
			}},
		{name: "tampered path", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := signed(t, url)
			req.URL.Path = "/fn/other"
			return req
		}},
		{name: "tampered query value", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := signed(t, url)
			req.URL.RawQuery = "a=2"
			return req
		}},
		{name: "query parameter added", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := signed(t, url)
			req.URL.RawQuery += "&admin=true"
			return req
		}},
		{name: "malformed query", want: incomplete("The query string contains a syntax error."),
			build: func(t *testing.T, url string) *http.Request {
				req := signed(t, url)
				req.URL.RawQuery += "&x=%zz"
				return req
			}},
		{name: "tampered date", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := signed(t, url)
			req.Header.Set("X-Amz-Date", signTime.Add(time.Second).Format("20060102T150405Z"))
			return req
		}},
		{name: "date outside the credential scope",
			want: invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261125' != '20261126', from 'X-Amz-Date'."),
			build: func(t *testing.T, url string) *http.Request {
				req := signed(t, url)
				req.Header.Set("X-Amz-Date", "20261126T000000Z")
				return req
			}},
		{name: "malformed date",
			want: incomplete("Date must be in ISO-8601 'basic format'. Got '2026-11-25T12:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"),
			build: func(t *testing.T, url string) *http.Request {
				req := signed(t, url)
				req.Header.Set("X-Amz-Date", "2026-11-25T12:00:00Z")
				return req
			}},
		{name: "tampered signature", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := signed(t, url)
			auth := req.Header.Get("Authorization")
			last := auth[len(auth)-1]
			flipped := byte('0')
			if last == '0' {
				flipped = '1'
			}
			req.Header.Set("Authorization", auth[:len(auth)-1]+string(flipped))
			return req
		}},
		{name: "unknown access key", want: unrecognized, cause: `unknown access key id "AKIDUNKNOWN"`,
			build: func(t *testing.T, url string) *http.Request {
				return signHeader(t, base(t, url), body, signing{keyID: "AKIDUNKNOWN"})
			}},
		{name: "wrong secret", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			return signHeader(t, base(t, url), body, signing{secret: "not-the-secret"})
		}},
		{name: "session token", want: unrecognized, cause: "session tokens are not supported",
			build: func(t *testing.T, url string) *http.Request {
				return signHeader(t, base(t, url), body, signing{token: "FQoGZXIvYXdzE"})
			}},
		{name: "wrong service", want: invalid("Credential should be scoped to correct service: 'lambda'."),
			build: func(t *testing.T, url string) *http.Request {
				return signHeader(t, base(t, url), body, signing{service: "execute-api"})
			}},
		{name: "region not served", region: "us-east-1",
			want: invalid("Credential should be scoped to a valid region, not 'eu-west-1'."),
			build: func(t *testing.T, url string) *http.Request {
				return signHeader(t, base(t, url), body, signing{region: "eu-west-1"})
			}},
		{name: "expired", now: signTime.Add(6 * time.Minute),
			want:  invalid("Signature expired: 20261125T120000Z is now earlier than 20261125T120100Z (20261125T120600Z - 5 min.)"),
			build: signed},
		{name: "not yet current", now: signTime.Add(-6 * time.Minute),
			want:  invalid("Signature not yet current: 20261125T120000Z is still later than 20261125T115900Z (20261125T115400Z + 5 min.)"),
			build: signed},
		{name: "not a SigV4 authorization",
			want: incomplete("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc.def"),
			build: func(t *testing.T, url string) *http.Request {
				req := base(t, url)
				req.Header.Set("Authorization", "Bearer abc.def")
				return req
			}},
		{name: "malformed credential",
			want: incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20261125/us-east-1/lambda'."),
			build: func(t *testing.T, url string) *http.Request {
				req := signed(t, url)
				req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "/aws4_request", "", 1))
				return req
			}},
		{name: "credential given twice", want: incomplete("'Credential' appears more than once in the Authorization header."),
			build: func(t *testing.T, url string) *http.Request {
				// The signed one last: a reader taking the first would see another key id.
				req := signed(t, url)
				auth := req.Header.Get("Authorization")
				req.Header.Set("Authorization", strings.Replace(auth, "Credential=", "Credential=AKIDOTHER/20261125/us-east-1/lambda/aws4_request, Credential=", 1))
				return req
			}},
		{name: "signature given twice", want: incomplete("'Signature' appears more than once in the Authorization header."),
			build: func(t *testing.T, url string) *http.Request {
				req := signed(t, url)
				auth := req.Header.Get("Authorization")
				req.Header.Set("Authorization", strings.Replace(auth, "Signature=", "Signature=00, Signature=", 1))
				return req
			}},
		{name: "two Authorization headers", want: incomplete("Only one Authorization header allowed."),
			build: func(t *testing.T, url string) *http.Request {
				req := signed(t, url)
				req.Header.Add("Authorization", "Bearer abc.def")
				return req
			}},
		{name: "host not signed", want: incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization."),
			build: func(t *testing.T, url string) *http.Request {
				req := signed(t, url)
				auth := req.Header.Get("Authorization")
				i, j := strings.Index(auth, "SignedHeaders="), strings.Index(auth, ", Signature=")
				req.Header.Set("Authorization", auth[:i]+"SignedHeaders=x-amz-date;x-custom"+auth[j:])
				return req
			}},
		{name: "content-length 0 signed", want: mismatch,
			// The SDK signer never signs a zero Content-Length, so such a
			// signature cannot be reproduced: the cause says which list differs.
			cause: `the signer signs headers "host;x-amz-date;x-custom" where the request declares "content-length;host;x-amz-date;x-custom"`,
			build: func(t *testing.T, url string) *http.Request {
				req := newRequest(t, "GET", url+"/fn/hello", "")
				req.Header.Set("X-Custom", "v")
				signHeader(t, req, "", signing{})
				auth := req.Header.Get("Authorization")
				req.Header.Set("Authorization", strings.Replace(auth, "SignedHeaders=", "SignedHeaders=content-length;", 1))
				return req
			}},
		{name: "UNSIGNED-PAYLOAD not signed",
			want: invalid("'x-amz-content-sha256' must be a 'SignedHeader' when its value is 'UNSIGNED-PAYLOAD'."),
			build: func(t *testing.T, url string) *http.Request {
				req := signHeader(t, base(t, url), body, signing{payloadHash: "UNSIGNED-PAYLOAD"})
				req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
				return req
			}},
		{name: "both forms", want: incomplete("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified."),
			build: func(t *testing.T, url string) *http.Request {
				req := presign(t, base(t, url), body, signing{})
				req.Header.Set("Authorization", signed(t, url).Header.Get("Authorization"))
				return req
			}},
		{name: "presigned and expired", now: signTime.Add(2 * time.Minute),
			want: invalid("Signature expired: 20261125T120000Z is now earlier than 20261125T120100Z (20261125T120200Z - 1 min.)"),
			build: func(t *testing.T, url string) *http.Request {
				return presign(t, newRequest(t, "GET", url+"/fn/hello?X-Amz-Expires=60", ""), "", signing{})
			}},
		{name: "presigned with tampered query", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := presign(t, newRequest(t, "GET", url+"/fn/hello?a=1", ""), "", signing{})
			req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "a=1", "a=2", 1)
			return req
		}},
		{name: "presigned with tampered expiry", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := presign(t, newRequest(t, "GET", url+"/fn/hello?X-Amz-Expires=60", ""), "", signing{})
			req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "X-Amz-Expires=60", "X-Amz-Expires=600", 1)
			return req
		}},
		{name: "presigned with tampered body", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := presign(t, newRequest(t, "POST", url+"/fn/hello", body), body, signing{})
			req.Body = io.NopCloser(strings.NewReader("PAYLOAD"))
			return req
		}},
		{name: "presigned with tampered signature", want: mismatch, build: func(t *testing.T, url string) *http.Request {
			req := presign(t, newRequest(t, "GET", url+"/fn/hello", ""), "", signing{})
			q := req.URL.Query()
			sig := q.Get("X-Amz-Signature")
			q.Set("X-Amz-Signature", strings.Repeat("0", len(sig)))
			req.URL.RawQuery = q.Encode()
			return req
		}},
		{name: "presigned without a signature",
			want: incomplete("AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters."),
			build: func(t *testing.T, url string) *http.Request {
				req := presign(t, newRequest(t, "GET", url+"/fn/hello", ""), "", signing{})
				q := req.URL.Query()
				q.Del("X-Amz-Signature")
				req.URL.RawQuery = q.Encode()
				return req
			}},
		{name: "presign expiry too long", want: incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800."),
			build: func(t *testing.T, url string) *http.Request {
				return presign(t, newRequest(t, "GET", url+"/fn/hello?X-Amz-Expires=604801", ""), "", signing{})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = signTime
			}
			srv, _ := newServer(t, sigv4.Config{Now: clock(now), Region: tt.region})
			got := send(t, srv, tt.build(t, srv.URL))
			cause := got.Cause
			got.Cause = ""
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v (cause %q)", got, tt.want, cause)
			}
			if !strings.Contains(cause, tt.cause) {
				t.Errorf("cause %q does not contain %q", cause, tt.cause)
			}
		})
	}
}

// TestSetKeysRotatesSecret checks that a replaced secret stops verifying at
// once: the SDK signer caches derived keys by access key id and day, not by secret.
func TestSetKeysRotatesSecret(t *testing.T) {
	srv, v := newServer(t, sigv4.Config{Now: clock(signTime)})
	oldReq := func() *http.Request {
		return signHeader(t, newRequest(t, "GET", srv.URL+"/fn/hello", ""), "", signing{})
	}
	if got := send(t, srv, oldReq()); got.Status != http.StatusOK {
		t.Fatalf("before rotation: %+v", got)
	}
	if err := v.SetKeys(map[string]string{testKeyID: "rotated-secret", "AKIDOTHER": "other"}); err != nil {
		t.Fatalf("SetKeys: %v", err)
	}
	if got := send(t, srv, oldReq()); got.Type != sigv4.TypeInvalidSignature {
		t.Errorf("old secret after rotation: got %+v, want %s", got, sigv4.TypeInvalidSignature)
	}
	newReq := signHeader(t, newRequest(t, "GET", srv.URL+"/fn/hello", ""), "", signing{secret: "rotated-secret"})
	if got := send(t, srv, newReq); got.Status != http.StatusOK {
		t.Errorf("new secret after rotation: %+v", got)
	}
	if err := v.SetKeys(map[string]string{"AKIDOTHER": "other"}); err != nil {
		t.Fatalf("SetKeys: %v", err)
	}
	if got := send(t, srv, oldReq()); got.Type != sigv4.TypeUnrecognizedClient {
		t.Errorf("removed key: got %+v, want %s", got, sigv4.TypeUnrecognizedClient)
	}
	if err := v.SetKeys(map[string]string{"AKIDEMPTY": ""}); err == nil {
		t.Error("SetKeys accepted an empty secret")
	}
}

// TestVerifyDuringKeyReload runs verifications while keys are replaced; run with -race.
func TestVerifyDuringKeyReload(t *testing.T) {
	srv, v := newServer(t, sigv4.Config{Now: clock(signTime)})
	ctx, cancel := context.WithCancel(context.Background())
	var reloads sync.WaitGroup
	reloads.Add(1)
	go func() {
		defer reloads.Done()
		for i := 0; ctx.Err() == nil; i++ {
			keys := map[string]string{testKeyID: testSecret, "AKID" + strconv.Itoa(i): "s"}
			if err := v.SetKeys(keys); err != nil {
				t.Errorf("SetKeys: %v", err)
				return
			}
		}
	}()
	var clients sync.WaitGroup
	for range 8 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for range 25 {
				req := signHeader(t, newRequest(t, "POST", srv.URL+"/fn/hello", "x"), "x", signing{})
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Errorf("sending: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d during reload", resp.StatusCode)
				}
			}
		}()
	}
	clients.Wait()
	cancel()
	reloads.Wait()
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]sigv4.Config{
		"negative skew": {MaxSkew: -time.Second},
		"empty key id":  {Keys: map[string]string{"": "secret"}},
	} {
		if _, err := sigv4.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

// TestCurlSignedRequestsVerify runs curl's own SigV4 implementation
// (--aws-sigv4 "aws:amz:REGION:lambda") against the verifier. curl 7.88 signs
// the query as written (unsorted, '+' kept) and the path without the second
// escaping SigV4 asks of non-S3 services, which AWS rejects as well; so the
// requests here keep to sorted queries and unescaped paths.
func TestCurlSignedRequestsVerify(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed: skipping the curl --aws-sigv4 interoperability test")
	}
	srv, _ := newServer(t, sigv4.Config{}) // real clock: curl signs with the current time
	tests := []struct {
		name   string
		args   []string
		secret string
		want   outcome
	}{
		{name: "GET", args: []string{srv.URL + "/fn/hello"}},
		{name: "POST with -d body", args: []string{"-d", `{"hello":"world"}`, srv.URL + "/fn/hello"}},
		{name: "query and custom header", args: []string{"-H", "X-Custom: v", "-d", "x=1", srv.URL + "/fn/hello?a=1&a=2&b=3"}},
		{name: "wrong secret", secret: "wrong", args: []string{"-d", "body", srv.URL + "/fn/hello"},
			want: outcome{Status: http.StatusForbidden, Type: sigv4.TypeInvalidSignature, Message: msgMismatch}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := testSecret
			if tt.secret != "" {
				secret = tt.secret
			}
			want := tt.want
			if want.Status == 0 {
				want = outcome{Status: http.StatusOK, Identity: sigv4.Identity{AccessKeyID: testKeyID, Region: testRegion}}
			}
			args := append([]string{"--silent", "--show-error", "--include",
				"--aws-sigv4", "aws:amz:" + testRegion + ":lambda", "--user", testKeyID + ":" + secret}, tt.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, curl, args...).Output()
			if err != nil {
				t.Fatalf("running curl %s: %v", strings.Join(args, " "), err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
			if err != nil {
				t.Fatalf("reading curl's output %q: %v", out, err)
			}
			defer resp.Body.Close()
			got := readOutcome(t, resp)
			cause := got.Cause
			got.Cause = ""
			if got != want {
				t.Errorf("got  %+v\nwant %+v (cause %q)", got, want, cause)
			}
		})
	}
}

// countingBody records how much of a request body was read.
type countingBody struct {
	r io.ReadCloser
	n int
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingBody) Close() error { return c.r.Close() }

// stepResult is what a server doing Precheck, then VerifyDeclared and reading the body, saw.
type stepResult struct {
	precheck, verify, read error
	declares               bool
	// readAt* is how much of the body had been read when that step ended.
	readAtPrecheck, readAtVerify int
	body                         string
}

// stepServer verifies each request in steps, as the gateway's API does, and reports each step.
func stepServer(t *testing.T) (*httptest.Server, <-chan stepResult) {
	t.Helper()
	v, err := sigv4.New(sigv4.Config{Keys: map[string]string{testKeyID: testSecret}, Now: clock(signTime)})
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan stepResult, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res stepResult
		defer func() { results <- res }()
		body := &countingBody{r: r.Body}
		r.Body = body
		p, err := v.Precheck(r)
		res.precheck, res.readAtPrecheck = err, body.n
		if err != nil {
			return
		}
		res.declares = p.DeclaresPayload()
		if !res.declares {
			return
		}
		_, checked, err := p.VerifyDeclared(r.Body)
		res.verify, res.readAtVerify = err, body.n
		if err != nil {
			return
		}
		b, err := io.ReadAll(checked)
		res.body, res.read = string(b), err
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

func errType(err error) string {
	var e *sigv4.Error
	if errors.As(err, &e) {
		return e.Type
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

// TestPrecheckAndVerifyDeclaredReadNoBody: every rejection Precheck can make, and a signature
// verified against a declared payload hash, happen before one byte of the body is read; the
// body is then checked against that hash as it is read.
func TestPrecheckAndVerifyDeclaredReadNoBody(t *testing.T) {
	const body = `{"big":"body"}`
	declared := func(t *testing.T, url, hash string, s signing) *http.Request {
		req := newRequest(t, "POST", url+"/fn/hello", body)
		req.Header.Set("X-Amz-Content-Sha256", hash)
		s.payloadHash = hash
		return signHeader(t, req, body, s)
	}
	tests := []struct {
		name                   string
		build                  func(t *testing.T, url string) *http.Request
		precheck, verify, read string // error types; "" none
		declares               bool
		wantBody               string
	}{
		{name: "unsigned", precheck: sigv4.TypeAccessDenied, build: func(t *testing.T, url string) *http.Request {
			return newRequest(t, "POST", url+"/fn/hello", body)
		}},
		{name: "unknown key", precheck: sigv4.TypeUnrecognizedClient, build: func(t *testing.T, url string) *http.Request {
			return signHeader(t, newRequest(t, "POST", url+"/fn/hello", body), body, signing{keyID: "AKIDUNKNOWN"})
		}},
		{name: "bad scope", precheck: sigv4.TypeInvalidSignature, build: func(t *testing.T, url string) *http.Request {
			return signHeader(t, newRequest(t, "POST", url+"/fn/hello", body), body, signing{service: "s3"})
		}},
		{name: "expired", precheck: sigv4.TypeInvalidSignature, build: func(t *testing.T, url string) *http.Request {
			return signHeader(t, newRequest(t, "POST", url+"/fn/hello", body), body, signing{at: signTime.Add(-time.Hour)})
		}},
		{name: "malformed declared hash", precheck: sigv4.TypeIncompleteSignature, build: func(t *testing.T, url string) *http.Request {
			return declared(t, url, "not-a-hash", signing{})
		}},
		{name: "hash not declared", build: func(t *testing.T, url string) *http.Request {
			return signHeader(t, newRequest(t, "POST", url+"/fn/hello", body), body, signing{})
		}},
		{name: "wrong secret, declared hash", declares: true, verify: sigv4.TypeInvalidSignature, build: func(t *testing.T, url string) *http.Request {
			return declared(t, url, bodyHash(body), signing{secret: "not-the-secret"})
		}},
		{name: "declared hash of another body", declares: true, read: sigv4.TypeInvalidSignature, wantBody: body,
			build: func(t *testing.T, url string) *http.Request {
				return declared(t, url, bodyHash("another body"), signing{})
			}},
		{name: "declared hash", declares: true, wantBody: body, build: func(t *testing.T, url string) *http.Request {
			return declared(t, url, bodyHash(body), signing{})
		}},
		{name: "declared hash in upper case", declares: true, wantBody: body, build: func(t *testing.T, url string) *http.Request {
			return declared(t, url, strings.ToUpper(bodyHash(body)), signing{})
		}},
		{name: "UNSIGNED-PAYLOAD", declares: true, wantBody: body, build: func(t *testing.T, url string) *http.Request {
			return declared(t, url, "UNSIGNED-PAYLOAD", signing{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, results := stepServer(t)
			resp, err := srv.Client().Do(tt.build(t, srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			res := <-results
			if got := errType(res.precheck); got != tt.precheck {
				t.Fatalf("Precheck: %q (%v), want %q", got, res.precheck, tt.precheck)
			}
			if res.readAtPrecheck != 0 {
				t.Errorf("Precheck read %d bytes of the body", res.readAtPrecheck)
			}
			if tt.precheck != "" {
				return
			}
			if res.declares != tt.declares {
				t.Fatalf("DeclaresPayload %v, want %v", res.declares, tt.declares)
			}
			if !tt.declares {
				return
			}
			if got := errType(res.verify); got != tt.verify || res.readAtVerify != 0 {
				t.Fatalf("VerifyDeclared: %q (%v) after reading %d bytes, want %q after none", got, res.verify, res.readAtVerify, tt.verify)
			}
			if tt.verify != "" {
				return
			}
			if got := errType(res.read); got != tt.read || res.body != tt.wantBody {
				t.Errorf("reading the body: %q (%v), %q; want %q, %q", got, res.read, res.body, tt.read, tt.wantBody)
			}
		})
	}
}

// TestVerifyChecksTheDeclaredHash: Pending.Verify over a whole body refuses one the declared hash
// does not match, and accepts it otherwise.
func TestVerifyChecksTheDeclaredHash(t *testing.T) {
	v, err := sigv4.New(sigv4.Config{Keys: map[string]string{testKeyID: testSecret}, Now: clock(signTime)})
	if err != nil {
		t.Fatal(err)
	}
	req := newRequest(t, "POST", "http://gw.example/fn/hello", "body")
	req.Host = "gw.example"
	req.Header.Set("X-Amz-Content-Sha256", bodyHash("body"))
	signHeader(t, req, "body", signing{})
	p, err := v.Precheck(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verify([]byte("tampered")); errType(err) != sigv4.TypeInvalidSignature {
		t.Errorf("a body the declared hash does not match: %v", err)
	}
	if id, err := p.Verify([]byte("body")); err != nil || id.AccessKeyID != testKeyID {
		t.Errorf("the body signed: %v %v", id, err)
	}
}
