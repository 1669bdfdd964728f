// Package sigv4 verifies AWS Signature Version 4 on requests to function URLs
// whose auth type is SIGNED (Lambda's AWS_IAM), against the agent's access keys.
//
// Both forms are accepted: the Authorization header and the presigned query
// string. The signature is recomputed with aws-sdk-go-v2's own signer
// (aws/signer/v4) instead of a hand-written canonicaliser, so the gateway
// canonicalises exactly as the SDKs do. That signer is written for clients, so
// Verify gives it a reconstructed request that carries only what the client
// signed; buildRequest lists where its client-side habits had to be steered.
//
// A server verifies in two steps so that an unsigned or forged request costs it
// no more than its headers: Precheck needs no body; then Pending.VerifyDeclared
// verifies against the body hash the request declares, before the body is read,
// or, when it declares none (the SDKs sign the hash without sending it),
// Pending.Verify over the body read whole.
package sigv4

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzTimeFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"
	scopeTerminator = "aws4_request"
	unsignedPayload = "UNSIGNED-PAYLOAD"

	// DefaultService is the service a credential scope must name, as Lambda's.
	DefaultService = "lambda"
	// DefaultMaxSkew is how far X-Amz-Date may be from the gateway's clock, as AWS allows.
	DefaultMaxSkew = 5 * time.Minute
	// maxPresignExpires is AWS's limit on X-Amz-Expires (a derived signing key
	// is only good for seven days).
	maxPresignExpires = 7 * 24 * time.Hour
)

// Query parameters of a presigned request, and the header names the
// verifier reads. Signed header names are compared in lower case.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qSecurityToken = "X-Amz-Security-Token"
	qContentSHA256 = "X-Amz-Content-Sha256"

	hAuthorization = "Authorization"
	hContentSHA256 = "X-Amz-Content-Sha256"
	hDate          = "X-Amz-Date"
	hSecurityToken = "X-Amz-Security-Token"
)

// Config configures a Verifier.
type Config struct {
	// Keys maps access key IDs to secret access keys. It may be empty (every
	// request is then refused) and is replaced later with SetKeys.
	Keys map[string]string
	// Service is the service a credential scope must name; DefaultService when empty.
	Service string
	// Region, when set, is the only region a credential scope may name; any
	// region is accepted otherwise (the gateway serves them all).
	Region string
	// MaxSkew bounds the distance between X-Amz-Date and now; DefaultMaxSkew when zero.
	MaxSkew time.Duration
	// Now is the clock; time.Now when nil. Tests set it.
	Now func() time.Time
}

// Identity is who signed a verified request.
type Identity struct {
	AccessKeyID string
	// Region is the region of the credential scope the client signed for.
	Region string
}

// Verifier checks SigV4 signatures. It is safe for concurrent use, including
// SetKeys while requests are being verified.
type Verifier struct {
	service string
	region  string
	maxSkew time.Duration
	now     func() time.Time
	keys    atomic.Pointer[keyring]
}

// keyring is one generation of keys with its own signer. The SDK signer caches
// derived signing keys by access key ID and day, not by secret, so a signer
// that outlived a key rotation would keep accepting the old secret for the rest
// of the day: every SetKeys therefore starts a fresh signer.
type keyring struct {
	secrets map[string]string
	signer  *v4.Signer
}

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if cfg.MaxSkew < 0 {
		return nil, fmt.Errorf("sigv4: max skew %s is negative", cfg.MaxSkew)
	}
	v := &Verifier{service: cfg.Service, region: cfg.Region, maxSkew: cfg.MaxSkew, now: cfg.Now}
	if v.service == "" {
		v.service = DefaultService
	}
	if v.maxSkew == 0 {
		v.maxSkew = DefaultMaxSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	if err := v.SetKeys(cfg.Keys); err != nil {
		return nil, err
	}
	return v, nil
}

// SetKeys replaces the access keys (agent configuration reload). Requests
// being verified finish with the keys they started with.
func (v *Verifier) SetKeys(keys map[string]string) error {
	secrets := make(map[string]string, len(keys))
	for id, secret := range keys {
		if id == "" || secret == "" {
			return fmt.Errorf("sigv4: setting keys: access key %q has an empty id or secret", id)
		}
		secrets[id] = secret
	}
	v.keys.Store(&keyring{secrets: secrets, signer: v4.NewSigner()})
	return nil
}

// Verify checks the signature of r, whose body the caller has already read into
// body. A rejection is an *Error carrying the status, the AWS exception name
// and the message to send back; any other error is the gateway's own failure.
// It is Precheck followed by Pending.Verify.
func (v *Verifier) Verify(r *http.Request, body []byte) (*Identity, error) {
	p, err := v.Precheck(r)
	if err != nil {
		return nil, err
	}
	return p.Verify(body)
}

// Pending is a request that passed every check its body is not needed for. One of
// its Verify methods then checks the signature itself.
type Pending struct {
	r      *http.Request
	a      *auth
	signer *v4.Signer
	secret string
	// declared is the payload hash the request states (X-Amz-Content-Sha256, or
	// the presigned query's): a hex SHA-256 or UNSIGNED-PAYLOAD; "" when none.
	declared string
}

// Precheck runs every check that does not need r's body: the signature's form,
// the credential scope, the time window, the presence of the signed headers, the
// access key and the form of X-Amz-Content-Sha256. A server calls it before
// reading a byte of the body, so that a request no key could have signed costs
// it no more than its headers. Rejections are *Error, as Verify's.
func (v *Verifier) Precheck(r *http.Request) (*Pending, error) {
	// Parse the query once, strictly: url.URL.Query, which the signer uses,
	// silently drops malformed pairs, and a pair the signature does not cover
	// must not reach the function.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, incomplete("The query string contains a syntax error.", fmt.Errorf("parsing query: %w", err))
	}
	a, err := parseAuth(r, query)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(a); err != nil {
		return nil, err
	}
	if err := v.checkTime(a); err != nil {
		return nil, err
	}
	if err := checkSignedHeaders(r, a); err != nil {
		return nil, err
	}
	if len(r.Header.Values(hSecurityToken)) > 0 || query.Has(qSecurityToken) {
		// The gateway issues no temporary credentials, so no token can be valid.
		return nil, unrecognizedClient(errors.New("session tokens are not supported"))
	}
	kr := v.keys.Load()
	secret, ok := kr.secrets[a.accessKeyID]
	if !ok {
		return nil, unrecognizedClient(fmt.Errorf("unknown access key id %q", a.accessKeyID))
	}
	declared, err := declaredHash(r, a)
	if err != nil {
		return nil, err
	}
	return &Pending{r: r, a: a, signer: kr.signer, secret: secret, declared: declared}, nil
}

// DeclaresPayload reports whether the request states the hash of its body (a hex
// SHA-256 or UNSIGNED-PAYLOAD), so that VerifyDeclared can check its signature
// without the body. Otherwise the body must be read whole for Verify.
func (p *Pending) DeclaresPayload() bool { return p.declared != "" }

// UnsignedPayload reports whether the client left the body out of the signature
// (UNSIGNED-PAYLOAD, SigV4's form for large uploads).
func (p *Pending) UnsignedPayload() bool { return p.declared == unsignedPayload }

// Verify checks the signature over body, the request's whole body. A declared
// payload hash must match it.
func (p *Pending) Verify(body []byte) (*Identity, error) {
	sum := sha256.Sum256(body)
	computed := hex.EncodeToString(sum[:])
	hash := p.declared
	switch {
	case hash == "":
		hash = computed
	case hash != unsignedPayload && !strings.EqualFold(hash, computed):
		return nil, hashMismatch(computed)
	}
	return p.verify(hash)
}

// VerifyDeclared checks the signature against the payload hash the request
// declares, without reading its body, and returns the body to read instead of
// body: for a hex hash, a reader that hashes what passes through it and, at the
// end of the body, fails with an *Error (InvalidSignatureException) if that is
// not the declared hash. Whoever acts on the body must read it to the end
// first. With UNSIGNED-PAYLOAD the body is returned as it is: the client chose
// not to sign it. It fails when the request declares no hash (DeclaresPayload).
func (p *Pending) VerifyDeclared(body io.ReadCloser) (*Identity, io.ReadCloser, error) {
	if p.declared == "" {
		return nil, nil, errors.New("sigv4: the request declares no payload hash: its body is needed to verify it")
	}
	id, err := p.verify(p.declared)
	if err != nil {
		return nil, nil, err
	}
	if p.declared == unsignedPayload || body == nil || body == http.NoBody {
		if p.declared != unsignedPayload && !strings.EqualFold(p.declared, emptySHA256) {
			return nil, nil, hashMismatch(emptySHA256)
		}
		return id, body, nil
	}
	return id, &checkedBody{r: body, h: sha256.New(), want: p.declared}, nil
}

// verify recomputes the signature with hash as the payload hash.
func (p *Pending) verify(hash string) (*Identity, error) {
	a := p.a
	want, wantSigned, err := sign(p.r.Context(), p.signer, p.r, a, p.secret, hash)
	if err != nil {
		return nil, fmt.Errorf("sigv4: recomputing signature for %s: %w", a.accessKeyID, err)
	}
	if wantSigned != a.signedHeadersRaw {
		// The signer dropped or reordered a declared header (see buildRequest).
		// Even if the signatures then agree, the client did not sign what it
		// declares, so refuse; the cause tells the client's secret is not to blame.
		return nil, invalidSignatureCause(msgSignatureMismatch,
			fmt.Errorf("the signer signs headers %q where the request declares %q", wantSigned, a.signedHeadersRaw))
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(a.signature)), []byte(want)) != 1 {
		return nil, invalidSignatureCause(msgSignatureMismatch, errors.New("signature differs"))
	}
	return &Identity{AccessKeyID: a.accessKeyID, Region: a.region}, nil
}

// emptySHA256 is the SHA-256 of no bytes.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// checkedBody passes a body through while hashing it, and turns its end into an
// *Error when the hash is not the one the signature covers.
type checkedBody struct {
	r    io.ReadCloser
	h    hash.Hash
	want string
	err  error
}

func (c *checkedBody) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(c.h.Sum(nil)); !strings.EqualFold(got, c.want) {
			c.err = hashMismatch(got)
			return n, c.err
		}
	}
	return n, err
}

func (c *checkedBody) Close() error { return c.r.Close() }

func hashMismatch(computed string) *Error {
	return invalidSignatureCause("The provided 'x-amz-content-sha256' header does not match what was computed.",
		fmt.Errorf("body hashes to %s", computed))
}

// auth is the signature material of a request, from either form.
type auth struct {
	presigned        bool
	accessKeyID      string
	scopeDate        string
	region           string
	service          string
	terminator       string
	signedHeadersRaw string
	signedHeaders    []string
	signature        string
	amzDate          string
	signingTime      time.Time
	// expires is X-Amz-Expires; zero when absent (the skew window then applies).
	expires time.Duration
	query   url.Values
}

func (a *auth) signs(header string) bool { return slices.Contains(a.signedHeaders, header) }

func parseAuth(r *http.Request, query url.Values) (*auth, error) {
	headers := r.Header.Values(hAuthorization)
	header := r.Header.Get(hAuthorization)
	presigned := query.Has(qAlgorithm) || query.Has(qSignature) || query.Has(qCredential)
	switch {
	case len(headers) > 1:
		// Which one counts would depend on the reader: a proxy or a log may take another one
		// than this verifier did.
		return nil, incomplete("Only one Authorization header allowed.", nil)
	case header != "" && presigned:
		return nil, incomplete("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.", nil)
	case header != "":
		return parseHeader(r, header, query)
	case presigned:
		return parsePresigned(query)
	default:
		return nil, &Error{Status: http.StatusForbidden, Type: TypeAccessDenied, Message: msgForbidden, Err: ErrUnsigned}
	}
}

// parseHeader reads "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
func parseHeader(r *http.Request, header string, query url.Values) (*auth, error) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	if strings.HasPrefix(alg, "AWS4-") && alg != algorithm {
		return nil, incomplete(fmt.Sprintf("Unsupported AWS 'algorithm': '%s'.", alg), nil)
	}
	params := map[string]string{}
	if alg == algorithm {
		for _, kv := range strings.Split(rest, ",") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, incomplete(fmt.Sprintf("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", kv, header), nil)
			}
			if _, dup := params[k]; dup {
				// The last one would win here, the first one elsewhere: a log or proxy could
				// name another access key than the one that signed.
				return nil, incomplete(fmt.Sprintf("'%s' appears more than once in the Authorization header.", k), nil)
			}
			params[k] = val
		}
	}
	date := r.Header.Get(hDate)
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[k] == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", k))
		}
	}
	if date == "" && r.Header.Get("Date") == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return nil, incomplete(strings.Join(missing, " ")+" Authorization="+header, nil)
	}
	if date == "" {
		// The SDK signer always signs X-Amz-Date; a signature over Date alone
		// cannot be reproduced with it.
		return nil, incomplete("This gateway requires the 'X-Amz-Date' header; signatures over the 'Date' header are not supported.", nil)
	}
	a := &auth{signature: params["Signature"], amzDate: date, query: query}
	if err := a.setCredential(params["Credential"]); err != nil {
		return nil, err
	}
	if err := a.setSignedHeaders(params["SignedHeaders"]); err != nil {
		return nil, err
	}
	if err := a.setDate(); err != nil {
		return nil, err
	}
	if !a.signs("x-amz-date") {
		return nil, incomplete("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.", nil)
	}
	return a, nil
}

func parsePresigned(query url.Values) (*auth, error) {
	var missing []string
	for _, k := range []string{qAlgorithm, qCredential, qSignature, qSignedHeaders, qDate} {
		switch n := len(query[k]); {
		case n == 0 || query.Get(k) == "":
			missing = append(missing, fmt.Sprintf("AWS query-string parameters must include '%s'.", k))
		case n > 1:
			return nil, incomplete(fmt.Sprintf("AWS query-string parameter '%s' must appear only once.", k), nil)
		}
	}
	if len(missing) > 0 {
		return nil, incomplete(strings.Join(missing, " ")+" Re-examine the query-string parameters.", nil)
	}
	if alg := query.Get(qAlgorithm); alg != algorithm {
		return nil, incomplete(fmt.Sprintf("X-Amz-Algorithm only supports \"%s\", got \"%s\".", algorithm, alg), nil)
	}
	a := &auth{presigned: true, signature: query.Get(qSignature), amzDate: query.Get(qDate), query: query}
	if err := a.setCredential(query.Get(qCredential)); err != nil {
		return nil, err
	}
	if err := a.setSignedHeaders(query.Get(qSignedHeaders)); err != nil {
		return nil, err
	}
	if err := a.setDate(); err != nil {
		return nil, err
	}
	if vals := query[qExpires]; len(vals) > 0 {
		secs, err := strconv.ParseInt(vals[0], 10, 64)
		switch {
		case len(vals) > 1 || err != nil:
			return nil, incomplete("X-Amz-Expires should be a number.", err)
		case secs <= 0:
			return nil, incomplete("X-Amz-Expires must be positive.", nil)
		case time.Duration(secs)*time.Second > maxPresignExpires:
			return nil, incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800.", nil)
		}
		a.expires = time.Duration(secs) * time.Second
	}
	return a, nil
}

// setCredential splits "AKID/20261125/us-east-1/lambda/aws4_request".
func (a *auth) setCredential(cred string) error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return incomplete(fmt.Sprintf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'.", cred), nil)
	}
	a.accessKeyID, a.scopeDate, a.region, a.service, a.terminator = parts[0], parts[1], parts[2], parts[3], parts[4]
	return nil
}

func (a *auth) setSignedHeaders(list string) error {
	a.signedHeadersRaw = list
	a.signedHeaders = strings.Split(list, ";")
	if !a.signs("host") {
		return incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.", nil)
	}
	return nil
}

func (a *auth) setDate() error {
	t, err := time.Parse(amzTimeFormat, a.amzDate)
	if err != nil {
		return incomplete(fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", a.amzDate), err)
	}
	a.signingTime = t
	return nil
}

// checkScope checks the credential scope against the request and the verifier.
func (v *Verifier) checkScope(a *auth) error {
	if a.accessKeyID == "" {
		return unrecognizedClient(errors.New("empty access key id"))
	}
	if want := a.signingTime.Format(scopeDateFormat); a.scopeDate != want {
		return invalidSignature(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", a.scopeDate, want, hDate))
	}
	if a.region == "" || (v.region != "" && a.region != v.region) {
		return invalidSignature(fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", a.region))
	}
	if a.service != v.service {
		return invalidSignature(fmt.Sprintf("Credential should be scoped to correct service: '%s'.", v.service))
	}
	if a.terminator != scopeTerminator {
		return invalidSignature(fmt.Sprintf("Credential should be scoped with a valid terminator: '%s', not '%s'.", scopeTerminator, a.terminator))
	}
	return nil
}

// checkTime applies the clock-skew window and, for presigned requests, X-Amz-Expires.
// The messages are the ones Lambda sends, e.g.
// "Signature expired: 20150806T131223Z is now earlier than 20150806T131534Z (20150806T132034Z - 5 min.)".
func (v *Verifier) checkTime(a *auth) error {
	now := v.now().UTC()
	if late := now.Add(v.maxSkew); a.signingTime.After(late) {
		return invalidSignature(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s.)",
			a.amzDate, late.Format(amzTimeFormat), now.Format(amzTimeFormat), durationText(v.maxSkew)))
	}
	window := v.maxSkew
	if a.expires > 0 {
		window = a.expires
	}
	if early := now.Add(-window); a.signingTime.Before(early) {
		return invalidSignature(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s.)",
			a.amzDate, early.Format(amzTimeFormat), now.Format(amzTimeFormat), durationText(window)))
	}
	return nil
}

func durationText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return fmt.Sprintf("%d sec", d/time.Second)
}

// checkSignedHeaders makes sure every signed header is in the request, so a
// missing one is reported as such rather than as a signature mismatch.
func checkSignedHeaders(r *http.Request, a *auth) error {
	for _, h := range a.signedHeaders {
		if _, ok := headerValues(r, h); !ok {
			return incomplete(fmt.Sprintf("'%s' is named as a SignedHeader, but it does not exist in the HTTP request.", h), nil)
		}
	}
	return nil
}

// headerValues returns the values of the signed header h (lower case) as the
// client sent them. Go's server moves Host and Transfer-Encoding out of Header.
func headerValues(r *http.Request, h string) ([]string, bool) {
	switch h {
	case "host":
		return []string{r.Host}, r.Host != ""
	case "transfer-encoding":
		return []string{strings.Join(r.TransferEncoding, ",")}, len(r.TransferEncoding) > 0
	case "content-length":
		if vals := r.Header.Values("Content-Length"); len(vals) > 0 {
			return vals, true
		}
		if r.ContentLength >= 0 && len(r.TransferEncoding) == 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}, true
		}
		return nil, false
	}
	vals := r.Header.Values(h)
	return vals, len(vals) > 0
}

// declaredHash is the payload hash the request states: the X-Amz-Content-Sha256
// header (or, presigned, query parameter), "" when absent.
func declaredHash(r *http.Request, a *auth) (string, error) {
	vals, signed := r.Header.Values(hContentSHA256), a.signs("x-amz-content-sha256")
	if len(vals) == 0 && a.presigned && a.query.Has(qContentSHA256) {
		vals, signed = a.query[qContentSHA256], true // the whole query is signed
	}
	if len(vals) == 0 {
		return "", nil
	}
	claimed := vals[0]
	switch {
	case len(vals) > 1:
		return "", incomplete("x-amz-content-sha256 must appear only once.", nil)
	case claimed == unsignedPayload:
		if !signed {
			// Unsigned, the header could have been added by anyone on the way.
			return "", invalidSignatureCause("'x-amz-content-sha256' must be a 'SignedHeader' when its value is 'UNSIGNED-PAYLOAD'.", nil)
		}
	case !isSHA256Hex(claimed):
		return "", incomplete("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.", nil)
	}
	// A hex hash needs no signing of its own: the signature covers the payload
	// hash, so it only verifies if the client signed this one.
	return claimed, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// sign recomputes the signature of r with the SDK signer and returns it with
// the signed-header list the signer produced.
func sign(ctx context.Context, signer *v4.Signer, r *http.Request, a *auth, secret, payloadHash string) (sig, signedHeaders string, err error) {
	req, err := buildRequest(ctx, r, a)
	if err != nil {
		return "", "", err
	}
	creds := aws.Credentials{AccessKeyID: a.accessKeyID, SecretAccessKey: secret}
	if a.presigned {
		// No hoisting: the headers given are exactly the signed ones and must stay headers.
		signedURL, _, err := signer.PresignHTTP(ctx, creds, req, payloadHash, a.service, a.region, a.signingTime,
			func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })
		if err != nil {
			return "", "", fmt.Errorf("presigning: %w", err)
		}
		u, err := url.Parse(signedURL)
		if err != nil {
			return "", "", fmt.Errorf("reading presigned url: %w", err)
		}
		q := u.Query()
		return q.Get(qSignature), q.Get(qSignedHeaders), nil
	}
	if err := signer.SignHTTP(ctx, creds, req, payloadHash, a.service, a.region, a.signingTime); err != nil {
		return "", "", fmt.Errorf("signing: %w", err)
	}
	_, rest, _ := strings.Cut(req.Header.Get(hAuthorization), " ")
	for _, kv := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "Signature":
			sig = val
		case "SignedHeaders":
			signedHeaders = val
		}
	}
	return sig, signedHeaders, nil
}

// buildRequest reconstructs what the client signed, steering around the SDK
// signer's client-side behaviour:
//   - Host: the signer takes req.Host and strips a default port when the URL
//     scheme is http or https. The received Host is used verbatim and the
//     scheme left empty, so the port is kept exactly as the client sent (and signed) it.
//   - Headers are keyed in lower case. The signer's ignore list (User-Agent,
//     Expect, X-Amzn-Trace-Id, ...) matches canonical keys only, so lower-case
//     keys let a client that did sign one of those verify.
//   - X-Amz-Date is left to the signer in the header form: it always sets it
//     (from the signing time, which is the request's own X-Amz-Date).
//   - Content-Length: the signer ignores the header and signs req.ContentLength
//     when it is positive. A client that signed "content-length:0" cannot be
//     reproduced; Verify then reports the differing header lists.
//   - Query: the signer re-parses and canonicalises it; the presigned form's
//     X-Amz-Signature is removed, the other X-Amz-* parameters it overwrites
//     with the same values.
//   - Path: the escaped path as received; the signer escapes it once more, as
//     SigV4 asks for every service but S3.
func buildRequest(ctx context.Context, r *http.Request, a *auth) (*http.Request, error) {
	query := url.Values{}
	for k, vals := range a.query {
		if a.presigned && k == qSignature {
			continue
		}
		query[k] = vals
	}
	header := http.Header{}
	var contentLength int64
	for _, h := range a.signedHeaders {
		if h == "host" || (h == "x-amz-date" && !a.presigned) {
			continue
		}
		vals, _ := headerValues(r, h)
		if h == "content-length" {
			n, err := strconv.ParseInt(vals[0], 10, 64)
			if err != nil || len(vals) > 1 {
				return nil, fmt.Errorf("reading signed content-length %q: %w", vals, err)
			}
			contentLength = n
			continue
		}
		header[h] = vals
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, "/", nil)
	if err != nil {
		return nil, fmt.Errorf("building request to sign: %w", err)
	}
	req.URL = &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: query.Encode()}
	req.Host = r.Host
	req.Header = header
	req.ContentLength = contentLength
	return req, nil
}

// Exception names, as Lambda sends them in X-Amzn-ErrorType. Sources:
//   - AccessDeniedException with "Forbidden. For troubleshooting Function URL
//     authorization issues, see: ..." is what a function URL answers to a request
//     it does not authorise (awsdocs/aws-lambda-developer-guide#494).
//   - InvalidSignatureException, 403, "The request signature we calculated does
//     not match ..." for a mismatch (erlcloud/erlcloud#690, Lambda Invoke) and
//     "Signature expired: ... (... - 5 min.)" for clock skew
//     (serverless/serverless#27, Lambda CreateFunction); the scope messages
//     ("Date in Credential scope does not match ...", "Credential should be
//     scoped to ...") are from the IAM guide's "Troubleshoot signed requests".
//   - UnrecognizedClientException, 403, "The security token included in the
//     request is invalid." for an unknown access key (iann0036/iamlive#58,
//     Lambda DeleteFunction).
//   - IncompleteSignatureException, 400 as AWS's common errors list it, for a
//     malformed signature: its messages ("Authorization header requires
//     'Credential' parameter.", "'x' is named as a SignedHeader, but it does not
//     exist in the HTTP request.", "'Host' must be a 'SignedHeader' ...") are
//     AWS's as quoted in aws/chalice#828, aws-mobile-appsync-sdk-js#702 and
//     NetSPI/AWSSigner#3. Messages for cases those sources do not cover follow
//     S3's wording (X-Amz-Expires, x-amz-content-sha256) or AWS's style.
const (
	TypeAccessDenied        = "AccessDeniedException"
	TypeInvalidSignature    = "InvalidSignatureException"
	TypeIncompleteSignature = "IncompleteSignatureException"
	TypeUnrecognizedClient  = "UnrecognizedClientException"
)

const (
	msgForbidden         = "Forbidden. For troubleshooting Function URL authorization issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInvalidToken      = "The security token included in the request is invalid."
)

// ErrUnsigned is the cause of the *Error for a request that carries no signature at all, so
// callers can answer it in their own terms (the Lambda API says MissingAuthenticationToken).
var ErrUnsigned = errors.New("request is not signed")

// Error is a rejected request: Status, Type (the exception name for
// X-Amzn-ErrorType) and Message are for the client; Err is the cause, for logs only.
type Error struct {
	Status  int
	Type    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	s := "sigv4: " + e.Type + ": " + e.Message
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func incomplete(msg string, cause error) *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeIncompleteSignature, Message: msg, Err: cause}
}

func invalidSignature(msg string) *Error { return invalidSignatureCause(msg, nil) }

func invalidSignatureCause(msg string, cause error) *Error {
	return &Error{Status: http.StatusForbidden, Type: TypeInvalidSignature, Message: msg, Err: cause}
}

func unrecognizedClient(cause error) *Error {
	return &Error{Status: http.StatusForbidden, Type: TypeUnrecognizedClient, Message: msgInvalidToken, Err: cause}
}

// Secret returns the secret of the access key id, for the web console's login and session
// cookies (gateway/httpapi/console); ok is false for an unknown key.
func (v *Verifier) Secret(id string) (secret string, ok bool) {
	secret, ok = v.keys.Load().secrets[id]
	return secret, ok
}
