package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdagw/gateway/gateway/httpapi"
	"github.com/lambdagw/gateway/gateway/sigv4"
)

const (
	adminID      = "AKIAHTTPAPIADMIN0001"
	adminSecret  = "YWRtaW4tc2VjcmV0LWh0dHBhcGk"
	invokeID     = "AKIAHTTPAPIINVOKE001"
	invokeSecret = "aW52b2tlLXNlY3JldC1odHRwYXBp"
	scrapeID     = "AKIAHTTPAPISCRAPE001"
	scrapeSecret = "c2NyYXBlLXNlY3JldC1odHRwYXBp"
)

// countingBody counts what the API read of a request body.
type countingBody struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countingBody) Close() error { return c.r.Close() }

// keyedStack is a stack with an admin and an invoke key, counting how much of each request
// body the API reads (into read, reset per request).
func keyedStack(t *testing.T) (admin *awslambda.Client, url string, read *atomic.Int64) {
	t.Helper()
	return keyedStackWith(t, stackOptions{})
}

// keyedStackWith is keyedStack with more options.
func keyedStackWith(t *testing.T, o stackOptions) (admin *awslambda.Client, url string, read *atomic.Int64) {
	t.Helper()
	v, err := sigv4.New(sigv4.Config{Keys: map[string]string{adminID: adminSecret, invokeID: invokeSecret, scrapeID: scrapeSecret}})
	if err != nil {
		t.Fatal(err)
	}
	read = &atomic.Int64{}
	o.verifier, o.policies = v, map[string]string{adminID: httpapi.PolicyAdmin, invokeID: httpapi.PolicyInvoke, scrapeID: httpapi.PolicyMetrics}
	o.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			read.Store(0)
			r.Body = countingBody{r: r.Body, n: read}
			h.ServeHTTP(w, r)
		})
	}
	c, url := newStack(t, o)
	creds := aws.Credentials{AccessKeyID: adminID, SecretAccessKey: adminSecret}
	admin = awslambda.New(awslambda.Options{Region: "us-east-1", BaseEndpoint: c.Options().BaseEndpoint, RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })})
	return admin, url, read
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// signed is how a test request is signed: nothing (no key), or a key, the hash the signature
// covers, whether X-Amz-Content-Sha256 declares it, and when.
type signed struct {
	id, secret, hash string
	declare          bool
	at               time.Time
}

func sendRaw(t *testing.T, method, url string, body []byte, s signed) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if s.id != "" {
		if s.hash == "" {
			s.hash = sha(body)
		}
		if s.at.IsZero() {
			s.at = time.Now()
		}
		if s.declare {
			req.Header.Set("X-Amz-Content-Sha256", s.hash)
		}
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.id, SecretAccessKey: s.secret},
			req, s.hash, "lambda", "us-east-1", s.at); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
}

// createBody is a CreateFunction request body for name, padded with spaces to at least size.
func createBody(name string, size int) []byte {
	b := []byte(fmt.Sprintf(`{"FunctionName":%q,"Runtime":"provided.al2023","Role":"arn:aws:iam::000000000000:role/x","Handler":"bootstrap","Code":{"ZipFile":%q}}`,
		name, base64.StdEncoding.EncodeToString(zipped)))
	if len(b) < size {
		b = append(b, bytes.Repeat([]byte(" "), size-len(b))...)
	}
	return b
}

// TestSignatureIsCheckedBeforeTheBody: with access keys, whatever the headers can refuse is
// refused before the API reads one byte of the body; a declared payload hash lets the signature
// and the key's policy be checked before the body too; the body is then held to that hash.
func TestSignatureIsCheckedBeforeTheBody(t *testing.T) {
	admin, url, read := keyedStack(t)
	invoke := url + "/2015-03-31/functions/fn/invocations"
	create := url + "/2015-03-31/functions"
	big := bytes.Repeat([]byte(" "), 5<<20) // valid JSON whitespace, under Invoke's 6 MB
	for _, c := range []struct {
		name, url string
		body      []byte
		sign      signed
		status    int
		errType   string
	}{
		{"unsigned invoke", invoke, big, signed{}, 403, "MissingAuthenticationTokenException"},
		{"unsigned create", create, createBody("unsigned", 5<<20), signed{}, 403, "MissingAuthenticationTokenException"},
		{"unknown key", create, createBody("unknown", 5<<20), signed{id: "AKIAUNKNOWNKEY000001", secret: adminSecret}, 403, "UnrecognizedClientException"},
		{"expired", invoke, big, signed{id: adminID, secret: adminSecret, at: time.Now().Add(-time.Hour)}, 403, "InvalidSignatureException"},
		{"wrong secret, declared hash", invoke, big, signed{id: adminID, secret: "not-the-secret", declare: true}, 403, "InvalidSignatureException"},
		{"invoke key on create, declared hash", create, createBody("by-invoke-key", 5<<20), signed{id: invokeID, secret: invokeSecret, declare: true}, 403, "AccessDeniedException"},
		{"over the limit, signed", create, bytes.Repeat([]byte(" "), 71<<20), signed{id: adminID, secret: adminSecret, hash: sha(nil)}, 413, "RequestTooLargeException"},
	} {
		status, errType := sendRaw(t, "POST", c.url, c.body, c.sign)
		if status != c.status || errType != c.errType {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, errType, c.status, c.errType)
		}
		if n := read.Load(); n != 0 {
			t.Errorf("%s: the API read %d bytes of the body before refusing it", c.name, n)
		}
	}

	// A declared hash of another body: the signature verifies, the body does not.
	body := createBody("tampered", 0)
	if status, errType := sendRaw(t, "POST", create, body, signed{id: adminID, secret: adminSecret, declare: true, hash: sha([]byte("{}"))}); status != 403 || errType != "InvalidSignatureException" {
		t.Errorf("a body that is not the one declared: %d %s", status, errType)
	}
	var nf *types.ResourceNotFoundException
	if _, err := admin.GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String("tampered")}); !errors.As(err, &nf) {
		t.Errorf("the refused body created a function: %v", err)
	}
	// Signed bodies pass, hash declared or not (the AWS SDK declares none).
	if status, errType := sendRaw(t, "POST", create, createBody("declared", 0), signed{id: adminID, secret: adminSecret, declare: true}); status != 201 {
		t.Errorf("CreateFunction with a declared hash: %d %s", status, errType)
	}
	if _, err := admin.CreateFunction(context.Background(), &awslambda.CreateFunctionInput{FunctionName: aws.String("sdk"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("arn:aws:iam::000000000000:role/x"), Code: &types.FunctionCode{ZipFile: zipped}}); err != nil {
		t.Errorf("CreateFunction with the AWS SDK: %v", err)
	}
	if status, errType := sendRaw(t, "POST", url+"/2015-03-31/functions/sdk/invocations", []byte(`{"name":"x"}`), signed{id: invokeID, secret: invokeSecret, declare: true}); status != 200 {
		t.Errorf("Invoke with the invoke key and a declared hash: %d %s", status, errType)
	}
}

// TestSignedURLIsCheckedBeforeTheBody: a SIGNED function URL refuses an unsigned or unknown-key
// request without reading its body, and serves a signed one.
func TestSignedURLIsCheckedBeforeTheBody(t *testing.T) {
	admin, url, read := keyedStack(t)
	ctx := context.Background()
	if _, err := admin.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("web"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("arn:aws:iam::000000000000:role/x"), Code: &types.FunctionCode{ZipFile: zipped}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"),
		AuthType: types.FunctionUrlAuthTypeAwsIam}); err != nil {
		t.Fatal(err)
	}
	fn := url + "/fn/web/"
	big := bytes.Repeat([]byte("x"), 5<<20)
	for name, s := range map[string]signed{"unsigned": {}, "unknown key": {id: "AKIAUNKNOWNKEY000001", secret: "s"}} {
		if status, _ := sendRaw(t, "POST", fn, big, s); status != 403 {
			t.Errorf("%s: %d, want 403", name, status)
		}
		if n := read.Load(); n != 0 {
			t.Errorf("%s: the URL read %d bytes of the body before refusing it", name, n)
		}
	}
	for name, s := range map[string]signed{"declared": {id: invokeID, secret: invokeSecret, declare: true}, "not declared": {id: invokeID, secret: invokeSecret}} {
		if status, errType := sendRaw(t, "POST", fn, []byte(`{"name":"url"}`), s); status != 200 {
			t.Errorf("%s: %d %s, want 200", name, status, errType)
		}
	}
}

// TestPprofIsAdminOnly: the profiling endpoints exist only when asked for (debug { pprof }), and
// then answer admin keys only.
func TestPprofIsAdminOnly(t *testing.T) {
	_, url, _ := keyedStackWith(t, stackOptions{debug: true})
	for name, c := range map[string]struct {
		sign   signed
		status int
	}{
		"unsigned":   {signed{}, 403},
		"invoke key": {signed{id: invokeID, secret: invokeSecret}, 403},
		"admin key":  {signed{id: adminID, secret: adminSecret}, 200},
	} {
		if status, errType := sendRaw(t, "GET", url+"/debug/pprof/cmdline", nil, c.sign); status != c.status {
			t.Errorf("%s: %d %s, want %d", name, status, errType, c.status)
		}
	}
	_, url, _ = keyedStack(t)
	if status, errType := sendRaw(t, "GET", url+"/debug/pprof/cmdline", nil, signed{id: adminID, secret: adminSecret}); status != 404 {
		t.Errorf("without debug: %d %s, want 404", status, errType)
	}
}

// The metrics routes are guarded before they say metrics are off: an invoke key is refused, an
// admin key told that this node does not collect them.
func TestMetricsRoutesGuarded(t *testing.T) {
	_, url, _ := keyedStack(t) // no Metrics: as with metrics { enabled = false }
	for _, path := range []string{"/v1/metrics", "/v1/functions/f/metrics"} {
		for name, c := range map[string]struct {
			sign    signed
			status  int
			errType string
		}{
			"unsigned":   {signed{}, 403, "MissingAuthenticationTokenException"},
			"invoke key": {signed{id: invokeID, secret: invokeSecret}, 403, "AccessDeniedException"},
			"admin key":  {signed{id: adminID, secret: adminSecret}, 404, "ResourceNotFoundException"},
		} {
			if status, errType := sendRaw(t, "GET", url+path, nil, c.sign); status != c.status || errType != c.errType {
				t.Errorf("%s %s: %d %s, want %d %s", path, name, status, errType, c.status, c.errType)
			}
		}
	}
}

// A scraper that cannot sign SigV4 sends HTTP Basic credentials (key ID and secret) of a
// metrics key to the metrics routes, and only there (elsewhere it is an incomplete signature);
// other keys' Basic credentials are refused even when right, so an admin secret cannot be
// tried that way; a wrong secret is answered after the failed-login delay.
func TestMetricsBasicAuth(t *testing.T) {
	_, url, _ := keyedStack(t) // no Metrics: past the guard, a metrics key hears they are off
	get := func(path, id, secret string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
	}
	for name, c := range map[string]struct {
		path, id, secret string
		status           int
		errType          string
	}{
		"metrics key":          {"/v1/metrics", scrapeID, scrapeSecret, 404, "ResourceNotFoundException"},
		"metrics key, history": {"/v1/functions/f/metrics", scrapeID, scrapeSecret, 404, "ResourceNotFoundException"},
		"admin key":            {"/v1/metrics", adminID, adminSecret, 403, "AccessDeniedException"},
		"invoke key":           {"/v1/metrics", invokeID, invokeSecret, 403, "AccessDeniedException"},
		"wrong secret":         {"/v1/metrics", scrapeID, scrapeSecret + "x", 403, "UnrecognizedClientException"},
		"secret's prefix":      {"/v1/metrics", scrapeID, scrapeSecret[:10], 403, "UnrecognizedClientException"},
		"empty secret":         {"/v1/metrics", scrapeID, "", 403, "UnrecognizedClientException"},
		"unknown key":          {"/v1/metrics", "AKIANOSUCHKEY00000001", scrapeSecret, 403, "UnrecognizedClientException"},
		"another route":        {"/2015-03-31/functions/", scrapeID, scrapeSecret, 400, "IncompleteSignatureException"},
		"another route, /v1":   {"/v1/status", scrapeID, scrapeSecret, 400, "IncompleteSignatureException"},
	} {
		if status, errType := get(c.path, c.id, c.secret); status != c.status || errType != c.errType {
			t.Errorf("%s: %d %s, want %d %s", name, status, errType, c.status, c.errType)
		}
	}
}
