package sigv4_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lambdagw/gateway/gateway/sigv4"
)

const fuzzHost = "fn.lambda-url.localhost:9500"

// FuzzVerify sends Verify requests whose signature material is fuzzed: the request line (method,
// path, query: the presigned form), the Authorization, X-Amz-Date, X-Amz-Content-Sha256 and
// Content-Type headers and the body, read by net/http's server-side parser. The seeds are
// requests the SDK signed with the configured key; the fuzzer cannot forge one, so every
// request that verifies must be one of them or differ only in what the signature does not cover.
// Properties:
//   - Verify never panics, and refuses with an *Error (400 or 403), never its own failure;
//   - a request that verifies carries the SDK's signature for what the function is given (its
//     method, path, query, Host, the headers it names as signed and the body, at its
//     X-Amz-Date, which is within the allowed window), each part of it once;
//   - the same request does not verify with another secret for the key id.
func FuzzVerify(f *testing.F) {
	for _, s := range signedSeeds(f) {
		f.Add(s.method, s.target, s.authorization, s.amzDate, s.contentSHA, s.contentType, s.body)
	}
	now := signTime.Add(30 * time.Second)
	v, err := sigv4.New(sigv4.Config{Keys: map[string]string{testKeyID: testSecret}, Now: clock(now)})
	if err != nil {
		f.Fatal(err)
	}
	other, err := sigv4.New(sigv4.Config{Keys: map[string]string{testKeyID: "another" + testSecret}, Now: clock(now)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, authorization, amzDate, contentSHA, contentType string, body []byte) {
		r, body, ok := readFuzzRequest(method, target, authorization, amzDate, contentSHA, contentType, body)
		if !ok {
			return // net/http refuses it before any handler runs
		}
		id, err := v.Verify(r, body)
		if err != nil {
			var e *sigv4.Error
			if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusForbidden) || e.Type == "" || e.Message == "" {
				t.Fatalf("Verify failed on a client's request with %#v; want a 400 or 403 *sigv4.Error", err)
			}
			return
		}
		if _, err := other.Verify(r, body); err == nil {
			t.Fatal("the request verifies with another secret as well")
		}
		wantAuth, signedAt, region := resign(t, r, body)
		if id.AccessKeyID != testKeyID || id.Region != region {
			t.Errorf("identity %+v; the request is signed by %s in %s", id, testKeyID, region)
		}
		if d := signedAt.Sub(now); d > sigv4.DefaultMaxSkew || d < -presignWindow(r) {
			t.Errorf("verified a request signed at %s, %s from now", signedAt, d)
		}
		if got := sentAuth(r); !equalAuth(got, wantAuth) {
			t.Errorf("verified a request whose signature is not the SDK's for what the function gets:\nsent   %+v\nsigner %+v", got, wantAuth)
		}
	})
}

// fuzzSeed is one FuzzVerify input.
type fuzzSeed struct {
	method, target, authorization, amzDate, contentSHA, contentType string
	body                                                            []byte
}

// signedSeeds are requests signed with the SDK as clients sign them, in both forms.
func signedSeeds(tb testing.TB) []fuzzSeed {
	type input struct {
		method, path, contentSHA, contentType, body string
		presign                                     bool
	}
	var out []fuzzSeed
	for _, in := range []input{
		{method: "GET", path: "/"},
		{method: "POST", path: "/fn/hello?b=2&a=1&a=0&q=hello%20world", contentType: "application/json", body: `{"hello":"world"}`},
		{method: "PUT", path: "/fn/a%20b/c%2Fd/~x", contentSHA: bodyHash("data"), body: "data"},
		{method: "POST", path: "/upload", contentSHA: "UNSIGNED-PAYLOAD", body: "unsigned"},
		{method: "GET", path: "/fn/hello?X-Amz-Expires=300&x=1", presign: true},
		{method: "POST", path: "/fn/hello?X-Amz-Expires=60", contentType: "text/plain", body: "presigned body", presign: true},
		{method: "POST", path: "/fn/hello?X-Amz-Content-Sha256=UNSIGNED-PAYLOAD", contentSHA: "UNSIGNED-PAYLOAD", body: "x", presign: true},
	} {
		req, err := http.NewRequest(in.method, "http://"+fuzzHost+in.path, strings.NewReader(in.body))
		if err != nil {
			tb.Fatal(err)
		}
		if in.body == "" {
			req.Body, req.ContentLength = nil, 0
		}
		if in.contentType != "" {
			req.Header.Set("Content-Type", in.contentType)
		}
		hash := bodyHash(in.body)
		if in.contentSHA != "" {
			hash = in.contentSHA
			if !in.presign {
				req.Header.Set("X-Amz-Content-Sha256", in.contentSHA)
			}
		}
		s := fuzzSeed{method: in.method, target: in.path, contentType: in.contentType, body: []byte(in.body)}
		if in.presign {
			signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), signing{}.creds(), req, hash, "lambda", testRegion, signTime)
			if err != nil {
				tb.Fatal(err)
			}
			u, err := url.Parse(signed)
			if err != nil {
				tb.Fatal(err)
			}
			s.target = u.RequestURI()
		} else {
			if err := v4.NewSigner().SignHTTP(context.Background(), signing{}.creds(), req, hash, "lambda", testRegion, signTime); err != nil {
				tb.Fatal(err)
			}
			s.authorization, s.amzDate, s.contentSHA = req.Header.Get("Authorization"), req.Header.Get("X-Amz-Date"), req.Header.Get("X-Amz-Content-Sha256")
		}
		out = append(out, s)
	}
	return out
}

// readFuzzRequest writes the request as a client would send it and reads it with the parser
// the gateway's HTTP server uses, then reads its body as the function-URL handler does.
func readFuzzRequest(method, target, authorization, amzDate, contentSHA, contentType string, body []byte) (*http.Request, []byte, bool) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, fuzzHost)
	for _, h := range [][2]string{{"Authorization", authorization}, {"X-Amz-Date", amzDate},
		{"X-Amz-Content-Sha256", contentSHA}, {"Content-Type", contentType}} {
		if h[1] != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
		}
	}
	if len(body) > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	r, err := http.ReadRequest(bufio.NewReader(&b))
	if err != nil {
		return nil, nil, false
	}
	got, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, false
	}
	return r, got, true
}

// authFields are the parts of a signature: Credential, SignedHeaders and Signature, from the
// Authorization header or the presigned query.
type authFields struct {
	fields    map[string]string
	duplicate bool // a part given twice
	extra     bool // another algorithm, or several Authorization headers
}

func sentAuth(r *http.Request) authFields {
	a := authFields{fields: map[string]string{}}
	set := func(k, v string) {
		if _, dup := a.fields[k]; dup {
			a.duplicate = true
		}
		a.fields[k] = v
	}
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		alg, rest, _ := strings.Cut(strings.TrimSpace(h[0]), " ")
		a.extra = len(h) > 1 || alg != "AWS4-HMAC-SHA256"
		for _, kv := range strings.Split(rest, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			// Other parameters are ignored, as by the verifier: they change neither what was
			// signed nor who signed it.
			switch k {
			case "Credential", "SignedHeaders", "Signature":
				set(k, v)
			}
		}
		return a
	}
	q := r.URL.Query()
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		vals := q["X-Amz-"+k]
		a.duplicate = a.duplicate || len(vals) > 1
		if len(vals) > 0 {
			a.fields[k] = vals[0]
		}
	}
	return a
}

func equalAuth(got, want authFields) bool {
	if got.duplicate || got.extra || len(got.fields) != 3 {
		return false
	}
	return got.fields["Credential"] == want.fields["Credential"] &&
		got.fields["SignedHeaders"] == want.fields["SignedHeaders"] &&
		strings.EqualFold(got.fields["Signature"], want.fields["Signature"])
}

// resign signs what the function is given with the SDK and the real secret, for the headers
// and time the request names, and returns the SDK's signature parts, the time and the region.
func resign(t *testing.T, r *http.Request, body []byte) (authFields, time.Time, string) {
	t.Helper()
	sent := sentAuth(r)
	query := r.URL.Query()
	presigned := r.Header.Get("Authorization") == ""
	date := r.Header.Get("X-Amz-Date")
	if presigned {
		date = query.Get("X-Amz-Date")
	}
	at, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		t.Fatalf("verified a request whose X-Amz-Date %q is not a time: %v", date, err)
	}
	scope := strings.Split(sent.fields["Credential"], "/")
	if len(scope) != 5 {
		t.Fatalf("verified a request whose credential %q is not a scope", sent.fields["Credential"])
	}
	req, err := http.NewRequest(r.Method, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	delete(query, "X-Amz-Signature")
	req.URL = &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: query.Encode()}
	req.Host = r.Host
	req.ContentLength = int64(len(body))
	for _, h := range strings.Split(sent.fields["SignedHeaders"], ";") {
		switch h {
		case "host", "content-length":
		case "x-amz-date":
			if presigned {
				req.Header[h] = r.Header.Values(h)
			}
		default:
			req.Header[h] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if claimed := r.Header.Get("X-Amz-Content-Sha256") + query.Get("X-Amz-Content-Sha256"); claimed == "UNSIGNED-PAYLOAD" {
		hash = claimed
	}
	creds := signing{}.creds()
	want := authFields{fields: map[string]string{}}
	if presigned {
		signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hash, scope[3], scope[2], at,
			func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(signed)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
			want.fields[k] = u.Query().Get("X-Amz-" + k)
		}
		return want, at, scope[2]
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, scope[3], scope[2], at); err != nil {
		t.Fatal(err)
	}
	want = sentAuth(req)
	return want, at, scope[2]
}

// presignWindow is how long ago a request may have been signed: X-Amz-Expires for a presigned
// one that sets it, the clock skew otherwise.
func presignWindow(r *http.Request) time.Duration {
	if r.Header.Get("Authorization") == "" {
		if s, err := strconv.Atoi(r.URL.Query().Get("X-Amz-Expires")); err == nil {
			return time.Duration(s) * time.Second
		}
	}
	return sigv4.DefaultMaxSkew
}

// TestFuzzVerifySeedsVerify: FuzzVerify's generated seeds are valid requests, so its checks of
// a verified request run on every go test.
func TestFuzzVerifySeedsVerify(t *testing.T) {
	v, err := sigv4.New(sigv4.Config{Keys: map[string]string{testKeyID: testSecret}, Now: clock(signTime.Add(30 * time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signedSeeds(t) {
		r, body, ok := readFuzzRequest(s.method, s.target, s.authorization, s.amzDate, s.contentSHA, s.contentType, s.body)
		if !ok {
			t.Fatalf("seed %s %s does not parse", s.method, s.target)
		}
		if _, err := v.Verify(r, body); err != nil {
			t.Errorf("seed %s %s: %v", s.method, s.target, err)
		}
	}
}
