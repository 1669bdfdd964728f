package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/lambdagw/gateway/gateway/sigv4"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// API authentication: when the node has access keys, every API request must carry an AWS
// Signature V4 of one of them, and the key's policy decides what it may do. Without keys the
// API is open (the agent warns at start). Function URLs have their own auth_type instead.

// The access key policies (the agent's access_key blocks).
const (
	PolicyAdmin  = "admin"  // every operation
	PolicyInvoke = "invoke" // invoking functions only
)

// access is what a route needs from its caller.
type access int

const (
	// open routes answer anyone: the health check load balancers and orchestrators poll.
	open access = iota
	// invokeAccess routes invoke functions: keys of either policy may call them.
	invokeAccess
	// adminAccess routes read or change the node's state: admin keys only.
	adminAccess
)

// authorize checks r against the route's access. It reads the body to verify the signature
// over it (the Lambda SDKs sign the payload hash without sending it), at most limit bytes,
// and puts it back for the handler.
func (a *api) authorize(r *http.Request, need access, limit int64) error {
	if need == open || a.cfg.Verifier == nil {
		return nil
	}
	if r.Header.Get("X-Amz-Content-Sha256") == "UNSIGNED-PAYLOAD" {
		// The client signed everything but the body (SigV4's form for large uploads, such as a
		// snapshot archive): verify without reading it.
		return a.checkSignature(r, nil, need)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return lambda.InvalidRequestContent("reading the request body: %v", err)
	}
	if int64(len(body)) > limit {
		if need == invokeAccess {
			return lambda.RequestTooLarge("Request must be smaller than %d bytes for the InvokeFunction operation", limit)
		}
		return lambda.RequestTooLarge("Request must be smaller than %d bytes for this operation", limit)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return a.checkSignature(r, body, need)
}

// checkSignature verifies r's signature over body and the key's policy against need.
func (a *api) checkSignature(r *http.Request, body []byte, need access) error {
	identity, err := a.cfg.Verifier.Verify(r, body)
	if err != nil {
		var se *sigv4.Error
		switch {
		case errors.Is(err, sigv4.ErrUnsigned):
			return &lambda.Error{Status: http.StatusForbidden, Type: "MissingAuthenticationTokenException",
				Message: "Missing Authentication Token: this node's API requires requests signed with AWS Signature V4 by one of its access keys"}
		case errors.As(err, &se):
			return &lambda.Error{Status: se.Status, Type: se.Type, Message: se.Message}
		}
		return fmt.Errorf("verifying the request's signature: %w", err)
	}
	if need == adminAccess && a.cfg.Policies[identity.AccessKeyID] != PolicyAdmin {
		return &lambda.Error{Status: http.StatusForbidden, Type: "AccessDeniedException",
			Message: fmt.Sprintf("access key %s has the %q policy, which may only invoke functions: %s %s needs a key with the %q policy",
				identity.AccessKeyID, a.cfg.Policies[identity.AccessKeyID], r.Method, r.URL.Path, PolicyAdmin)}
	}
	return nil
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
		return h(w, r, reqID)
	}
}
