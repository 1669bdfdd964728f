package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/lambdagw/gateway/gateway/httpapi/console"
	"github.com/lambdagw/gateway/gateway/sigv4"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// API authentication: when the node has access keys, every API request must carry an AWS
// Signature V4 of one of them, and the key's policy decides what it may do. Without keys the
// API is open (the agent warns at start). Function URLs have their own auth_type instead.

// The access key policies (the agent's access_key blocks).
const (
	PolicyAdmin   = "admin"   // every operation
	PolicyInvoke  = "invoke"  // invoking functions only
	PolicyMetrics = "metrics" // reading metrics only (a Prometheus scraper's key)
)

// policyScope says what a policy allows, for the refusals.
var policyScope = map[string]string{PolicyAdmin: "may do anything", PolicyInvoke: "may only invoke functions",
	PolicyMetrics: "may only read metrics"}

// access is what a route needs from its caller.
type access int

const (
	// open routes answer anyone: the health check load balancers and orchestrators poll.
	open access = iota
	// invokeAccess routes invoke functions: keys of either policy may call them.
	invokeAccess
	// adminAccess routes read or change the node's state: admin keys only.
	adminAccess
	// metricsAccess routes read metrics: admin and metrics keys.
	metricsAccess
)

// authorize checks r against the route's access, reading as little of it as the signature
// allows (verifyBody): a request no key could have signed is refused on its headers alone.
func (a *api) authorize(r *http.Request, need access, limit int64) error {
	if need == open || a.cfg.Verifier == nil {
		return nil
	}
	if id, ok, err := a.consoleIdentity(r); ok {
		if err != nil {
			return err
		}
		return a.checkPolicy(r, id, need)
	}
	if need == metricsAccess {
		// Scrapers (Prometheus, the Grafana agent, Vector) do not sign SigV4 requests; they send
		// HTTP Basic credentials, which the metrics routes take from keys of the metrics policy
		// only: key ID and secret.
		if id, secret, ok := r.BasicAuth(); ok {
			return a.basicAuth(r, id, secret)
		}
	}
	_, _, err := a.verifyBody(r, limit, func() error { return tooLarge(need, limit) }, func(id *sigv4.Identity) error {
		return a.checkPolicy(r, id, need)
	})
	return signatureError(err)
}

// verifyBody verifies r's signature, and allow the key's right to the request, before the
// body is read wherever it can be:
//   - every check of the headers (form, scope, date window, key) comes first (Precheck);
//   - a request that declares its body's hash (X-Amz-Content-Sha256) is verified against it
//     without the body, then its body is read through a reader that checks that hash;
//   - otherwise (the Lambda SDKs sign the hash without sending it) the body, at most limit
//     bytes, must be read to verify the signature over it.
//
// The body, read whole, is put back for the handler and returned; with UNSIGNED-PAYLOAD
// (SigV4's form for large uploads) it is left unread and body is nil. A refused signature is
// a *sigv4.Error, for the caller to answer in its own terms.
func (a *api) verifyBody(r *http.Request, limit int64, tooLarge func() error, allow func(*sigv4.Identity) error) (*sigv4.Identity, []byte, error) {
	p, err := a.cfg.Verifier.Precheck(r)
	if err != nil {
		return nil, nil, err
	}
	if !p.DeclaresPayload() {
		body, err := readBody(r, r.Body, limit, tooLarge)
		if err != nil {
			return nil, nil, err
		}
		id, err := p.Verify(body)
		if err != nil {
			return nil, nil, err
		}
		if err := allow(id); err != nil {
			return nil, nil, err
		}
		return id, body, nil
	}
	id, checked, err := p.VerifyDeclared(r.Body)
	if err != nil {
		return nil, nil, err
	}
	if err := allow(id); err != nil {
		return nil, nil, err
	}
	if p.UnsignedPayload() {
		return id, nil, nil
	}
	// Handlers act on a body as they decode it: it is read whole, and its hash checked, first.
	body, err := readBody(r, checked, limit, tooLarge)
	if err != nil {
		return nil, nil, err
	}
	return id, body, nil
}

// readBody reads r's body from src, at most limit bytes, and puts it back in r for the handler.
func readBody(r *http.Request, src io.Reader, limit int64, tooLarge func() error) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // one allocation, not a doubling series
	}
	if _, err := buf.ReadFrom(io.LimitReader(src, limit+1)); err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return nil, err // the body is not the one signed
		}
		return nil, lambda.InvalidRequestContent("reading the request body: %v", err)
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge()
	}
	r.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
	return buf.Bytes(), nil
}

// tooLarge is Lambda's answer to a body over the route's limit.
func tooLarge(need access, limit int64) error {
	if need == invokeAccess {
		return lambda.RequestTooLarge("Request must be smaller than %d bytes for the InvokeFunction operation", limit)
	}
	return lambda.RequestTooLarge("Request must be smaller than %d bytes for this operation", limit)
}

// signatureError answers a refused signature (a *sigv4.Error) in the Lambda API's terms; other
// errors pass unchanged.
func signatureError(err error) error {
	var se *sigv4.Error
	switch {
	case errors.Is(err, sigv4.ErrUnsigned):
		return &lambda.Error{Status: http.StatusForbidden, Type: "MissingAuthenticationTokenException",
			Message: "Missing Authentication Token: this node's API requires requests signed with AWS Signature V4 by one of its access keys"}
	case errors.As(err, &se):
		return &lambda.Error{Status: se.Status, Type: se.Type, Message: se.Message}
	}
	return err
}

// basicAuth admits a metrics request with HTTP Basic credentials of a key of the metrics
// policy. The secret is checked as the console's login checks it: in constant time, a failure
// answered only after the failed-login delay, so Basic is no faster oracle for guessing one.
func (a *api) basicAuth(r *http.Request, id, secret string) error {
	if !a.sessions.CheckSecret(r.Context(), id, secret) {
		return &lambda.Error{Status: http.StatusForbidden, Type: "UnrecognizedClientException",
			Message: "basic authentication refused: unknown access key ID or wrong secret"}
	}
	if p := a.policy(id); p != PolicyMetrics {
		return &lambda.Error{Status: http.StatusForbidden, Type: "AccessDeniedException",
			Message: fmt.Sprintf("access key %s has the %q policy: HTTP Basic credentials are taken from keys of the %q policy only (sign other keys' requests with SigV4)", id, p, PolicyMetrics)}
	}
	return nil
}

// checkPolicy checks the verified key's policy against need.
func (a *api) checkPolicy(r *http.Request, identity *sigv4.Identity, need access) error {
	policy := a.policy(identity.AccessKeyID)
	var needs string
	switch {
	case need == adminAccess && policy != PolicyAdmin:
		needs = fmt.Sprintf("the %q policy", PolicyAdmin)
	case need == metricsAccess && policy != PolicyAdmin && policy != PolicyMetrics:
		needs = fmt.Sprintf("the %q or %q policy", PolicyMetrics, PolicyAdmin)
	case need == invokeAccess && policy == PolicyMetrics:
		needs = fmt.Sprintf("the %q or %q policy", PolicyInvoke, PolicyAdmin)
	default:
		return nil
	}
	return &lambda.Error{Status: http.StatusForbidden, Type: "AccessDeniedException",
		Message: fmt.Sprintf("access key %s has the %q policy, which %s: %s %s needs a key with %s",
			identity.AccessKeyID, policy, policyScope[policy], r.Method, r.URL.Path, needs)}
}

// bodyLimit is the largest request body a route takes.
func bodyLimit(need access) int64 {
	if need == invokeAccess {
		return structs.MaxSyncPayloadBytes
	}
	return maxManagementBody
}

// guard runs h once the request is authorized for need.
func (a *api) guard(need access, h handler) handler {
	if need == open {
		return h
	}
	limit := bodyLimit(need)
	return func(w http.ResponseWriter, r *http.Request, reqID string) error {
		if err := a.authorize(r, need, limit); err != nil {
			return err
		}
		if r.Header.Get(console.Header) != "" { // the console's data stays out of caches
			w.Header().Set("Cache-Control", "no-store")
		}
		return h(w, r, reqID)
	}
}
