package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/gateway/httpapi/console"
	"github.com/lambdagw/gateway/gateway/sigv4"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/lambda/furl"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/plugins/sdk"
)

// Function URLs: a request whose Host is <url-id>.<url_domain> (any port), or whose path is
// /fn/<url-id>/<path> for networks without wildcard DNS, invokes the function (or alias) the
// URL id names with the payload format 2.0 event, and gets the function's HTTP response back,
// whole (BUFFERED) or as the function writes it (RESPONSE_STREAM).

// urlPathPrefix serves function URLs under the API's own host.
const urlPathPrefix = "/fn/"

// maxPreludeBytes bounds the JSON head of a streamed function URL response (status, headers,
// cookies); Lambda's limit on response headers is far below it.
const maxPreludeBytes = 1 << 20

// urlHostID returns the URL id of a request addressed to <id>.<domain>, port ignored. The
// domain compares case-insensitively (DNS does); the id keeps its case, as function names do.
func urlHostID(host, domain string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	suffix := "." + domain
	if domain == "" || len(host) <= len(suffix) || !strings.EqualFold(host[len(host)-len(suffix):], suffix) {
		return "", false
	}
	id := host[:len(host)-len(suffix)]
	if strings.Contains(id, ".") {
		return "", false
	}
	return id, true
}

// urlPathID splits an escaped /fn/<id>/<rest> path into the URL id and the path the function
// sees (/<rest>, or / when there is none).
func urlPathID(escapedPath string) (id, rawPath string, ok bool) {
	rest, ok := strings.CutPrefix(escapedPath, urlPathPrefix)
	if !ok {
		return "", "", false
	}
	id, path, _ := strings.Cut(rest, "/")
	id, err := url.PathUnescape(id)
	if err != nil || id == "" {
		return "", "", false
	}
	return id, "/" + path, true
}

// isURLRequest is the route matcher of function URLs.
func (a *api) isURLRequest(r *http.Request) bool {
	if _, ok := urlHostID(r.Host, a.cfg.URLDomain); ok {
		return true
	}
	return strings.HasPrefix(r.URL.EscapedPath(), urlPathPrefix)
}

// functionURL serves one function URL request.
func (a *api) functionURL(w http.ResponseWriter, r *http.Request, reqID string) error {
	arrived := time.Now()
	id, hostRouted := urlHostID(r.Host, a.cfg.URLDomain)
	rawPath := r.URL.EscapedPath()
	if !hostRouted {
		var ok bool
		if id, rawPath, ok = urlPathID(rawPath); !ok {
			return lambda.ResourceNotFound("no function URL at %s: use %s<url-id>/<path>", r.URL.Path, urlPathPrefix)
		}
	}
	u, err := a.cfg.Gateway.FunctionURLByID(id)
	if err != nil {
		return err
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.function = u.Function
	}
	dropConsoleCookie(r)
	if u.Cors != nil && isPreflight(r) {
		writePreflight(w, r, reqID, u.Cors)
		return nil
	}
	urlTooLarge := func() error {
		return lambda.RequestTooLarge("Request must be smaller than %d bytes for a function URL", structs.MaxSyncPayloadBytes)
	}
	meta := furl.Meta{RequestID: reqID, URLID: id, DomainName: id + "." + a.cfg.URLDomain, RawPath: rawPath, Time: arrived}
	var body []byte
	if u.AuthType == structs.AuthSigned {
		// Verified before the body is read where the request allows it (verifyBody).
		var identity *sigv4.Identity
		if identity, body, err = a.verifyURLSignature(r, urlTooLarge); err != nil {
			return err
		}
		meta.AccountID = lambda.DefaultAccount
		meta.IAM = &furl.IAMIdentity{
			AccessKey: identity.AccessKeyID, AccountID: lambda.DefaultAccount, CallerID: identity.AccessKeyID,
			UserARN: "arn:aws:iam::" + lambda.DefaultAccount + ":user/" + identity.AccessKeyID, UserID: identity.AccessKeyID,
		}
	}
	if body == nil {
		if body, err = readBody(r, r.Body, structs.MaxSyncPayloadBytes, urlTooLarge); err != nil {
			return err
		}
	}
	if az := a.cfg.Authorizer; az != nil && az.Authorizing() {
		if err := a.authorizeURL(r, u); err != nil {
			return err
		}
	}
	addForwardedHeaders(r)
	event, err := furl.BuildEvent(r, body, meta)
	if err != nil {
		return err
	}
	trace, fromCaller := requestTrace(r)
	out, err := a.cfg.Gateway.Invoke(r.Context(), &gateway.InvokeInput{
		FunctionName: u.Function, Qualifier: u.Qualifier, Payload: event, RequestID: reqID,
		AcceptStream: u.InvokeMode == structs.InvokeStream, TraceID: trace, TraceFromCaller: fromCaller,
	})
	if err != nil {
		return err
	}
	if out.Stream != nil {
		a.streamURLResponse(w, r, reqID, u, out.Stream)
		return nil
	}
	if out.FunctionError != "" {
		errType, _ := errorDetails(out.Payload)
		a.badGateway(w, r, reqID, u, "the function failed", errType)
		return nil
	}
	resp, err := bufferedURLResponse(out)
	if err != nil {
		a.badGateway(w, r, reqID, u, "the function's result is not a valid function URL response", err.Error())
		return nil
	}
	h := w.Header()
	copyResponseHeader(h, resp.Header)
	a.confineURLResponse(h, r)
	applyCORS(h, r, u.Cors)
	h.Set("X-Amzn-RequestId", reqID)
	if !bodyAllowed(resp.Status) {
		w.WriteHeader(resp.Status) // a body the function sent anyway cannot be sent
		return nil
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
	return nil
}

// bodyAllowed reports whether an HTTP response with this status may have a body.
func bodyAllowed(status int) bool {
	return !(status >= 100 && status < 200) && status != http.StatusNoContent && status != http.StatusNotModified
}

// bufferedURLResponse is the HTTP response of a function result read whole. A runtime that
// streamed a response with a prelude (aws-lambda-go's LambdaFunctionURLStreamingResponse) to a
// BUFFERED URL gets its prelude honoured, with the rest as the body.
func bufferedURLResponse(out *gateway.InvokeOutput) (*furl.Response, error) {
	if !furl.HasPrelude(out.ContentType) {
		resp, err := furl.ParseResponse(out.Payload)
		if err == nil && out.ContentType != "" && !json.Valid(bytes.TrimSpace(out.Payload)) {
			// Raw bytes (a streaming runtime on a BUFFERED URL) keep the type they were posted with.
			resp.Header.Set("Content-Type", out.ContentType)
		}
		return resp, err
	}
	br := bufio.NewReader(bytes.NewReader(out.Payload))
	p, err := furl.ReadPrelude(br, maxPreludeBytes)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(br)
	return &furl.Response{Status: p.Status, Header: p.Header, Body: body}, nil
}

// verifyURLSignature checks the AWS Signature V4 of a request to a SIGNED URL against the
// agent's access keys, and returns the body it read (nil when it read none).
func (a *api) verifyURLSignature(r *http.Request, tooLarge func() error) (*sigv4.Identity, []byte, error) {
	if a.cfg.Verifier == nil {
		return nil, nil, &lambda.Error{Status: http.StatusForbidden, Type: sigv4.TypeUnrecognizedClient,
			Message: "this function URL requires signed requests, and this node has no access keys (access_key blocks)"}
	}
	identity, body, err := a.verifyBody(r, structs.MaxSyncPayloadBytes, tooLarge, func(id *sigv4.Identity) error {
		return a.checkPolicy(r, id, invokeAccess) // a metrics key invokes nothing
	})
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return nil, nil, &lambda.Error{Status: http.StatusForbidden, Type: se.Type, Message: se.Message}
		}
		return nil, nil, err
	}
	return identity, body, nil
}

// badGateway answers a failed invocation as Lambda does for function URLs: 502 with a body
// that says nothing about the function (its error is in its logs).
func (a *api) badGateway(w http.ResponseWriter, r *http.Request, reqID string, u *structs.FunctionURL, what, detail string) {
	a.logger.Debug("function URL answered 502", "url", u.ID(), "request_id", reqID, "reason", what, "detail", detail)
	h := w.Header()
	applyCORS(h, r, u.Cors)
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-RequestId", reqID)
	w.WriteHeader(http.StatusBadGateway)
	_, _ = io.WriteString(w, "Internal Server Error")
}

// streamURLResponse sends a streamed function response: the head from the prelude (or the
// runtime's Content-Type when it sent none), then every piece of the body as it arrives,
// flushed at once. An error after the head was sent cannot change the status any more: the
// response is cut off without its final chunk, so the client knows it is incomplete.
func (a *api) streamURLResponse(w http.ResponseWriter, r *http.Request, reqID string, u *structs.FunctionURL, st invoke.Stream) {
	defer st.Close()
	// A client that goes away cancels the invocation even while the function writes nothing.
	stop := context.AfterFunc(r.Context(), func() { _ = st.Close() })
	defer stop()

	prelude := furl.DefaultPrelude(st.ContentType())
	var body io.Reader = st
	if furl.HasPrelude(st.ContentType()) {
		br := bufio.NewReaderSize(st, 4096)
		p, err := furl.ReadPrelude(br, maxPreludeBytes)
		if err != nil {
			if errType, _ := st.Err(); errType != "" {
				a.badGateway(w, r, reqID, u, "the function failed before its response head", errType)
			} else {
				a.badGateway(w, r, reqID, u, "the function's response head is not valid", err.Error())
			}
			return
		}
		prelude, body = p, br
	}
	h := w.Header()
	copyResponseHeader(h, prelude.Header)
	a.confineURLResponse(h, r)
	applyCORS(h, r, u.Cors)
	h.Set("X-Amzn-RequestId", reqID)
	w.WriteHeader(prelude.Status)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	send := func(p []byte) error {
		if _, err := w.Write(p); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := pump(body, send, func() { _ = st.Close() }); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return // the client went away; the stream was closed, which cancels the invocation
	}
	if errType, _ := st.Err(); errType != "" {
		a.logger.Debug("function URL stream cut off", "url", u.ID(), "request_id", reqID, "error_type", errType)
		// net/http closes the connection without finishing the response.
		panic(http.ErrAbortHandler)
	}
}

// addForwardedHeaders adds what Lambda's front end tells a function about the connection, so
// code that builds absolute URLs or logs client addresses works unchanged: the client address
// appended to X-Forwarded-For, and the scheme and port it connected to (unless a proxy in
// front already said so).
func addForwardedHeaders(r *http.Request) {
	h := r.Header
	if ip := furl.SourceIP(r.RemoteAddr); ip != "" {
		if prior := h.Get("X-Forwarded-For"); prior != "" {
			ip = prior + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	}
	if h.Get("X-Forwarded-Proto") == "" {
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		h.Set("X-Forwarded-Proto", proto)
	}
	if h.Get("X-Forwarded-Port") == "" {
		if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if _, port, err := net.SplitHostPort(addr.String()); err == nil {
				h.Set("X-Forwarded-Port", port)
			}
		}
	}
}

// hopByHop are headers of one connection, which a function cannot set on the client's.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Content-Length": true,
}

func copyResponseHeader(dst, src http.Header) {
	for k, vs := range src {
		if hopByHop[http.CanonicalHeaderKey(k)] {
			continue
		}
		dst[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
}

// authorizeURL asks the agent's authorizer extensions about a function-URL request; a denial is
// answered with the status and message the extension chose, in Lambda's error shape.
func (a *api) authorizeURL(r *http.Request, u *structs.FunctionURL) error {
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	resp, _ := a.cfg.Authorizer.Authorize(r.Context(), sdk.AuthorizeRequest{Function: u.Function, Qualifier: u.Qualifier, Method: r.Method,
		Path: r.URL.Path, RawQuery: r.URL.RawQuery, Headers: headers, SourceIP: ip})
	if resp.Allow {
		return nil
	}
	msg := resp.Message
	if msg == "" {
		msg = "Forbidden"
	}
	typ := "AccessDeniedException"
	switch {
	case resp.Status == 401:
		typ = "UnauthorizedException"
	case resp.Status >= 500:
		typ = "ServiceException"
	}
	return &lambda.Error{Status: resp.Status, Type: typ, Message: msg}
}

// A function URL served on the API's own host (the path-routed /fn/<id>/ form) shares the
// console's origin. The console's session cookie is host-only, so only those requests could carry
// it; a function must neither read it (from its event, or an authorizer plugin from the headers)
// nor set or clear it, nor run script in the console's origin.

// dropConsoleCookie removes the console's session cookie from a function URL request.
func dropConsoleCookie(r *http.Request) {
	cookies := r.Cookies()
	if !slices.ContainsFunc(cookies, func(c *http.Cookie) bool { return console.IsSessionCookie(c.Name) }) {
		return
	}
	kept := make([]string, 0, len(cookies))
	for _, c := range cookies {
		if !console.IsSessionCookie(c.Name) {
			kept = append(kept, c.Name+"="+c.Value)
		}
	}
	r.Header.Del("Cookie")
	if len(kept) > 0 {
		r.Header.Set("Cookie", strings.Join(kept, "; "))
	}
}

// confineURLResponse drops any Set-Cookie of the console's session from a function's response
// and, when the node has access keys (so console sessions exist) and the URL is path-routed,
// sandboxes the response (CSP sandbox without allow-same-origin): its page runs in an opaque
// origin, so its scripts cannot call the API as the console's logged-in user.
func (a *api) confineURLResponse(h http.Header, r *http.Request) {
	if sc := h.Values("Set-Cookie"); len(sc) > 0 {
		kept := sc[:0:0]
		for _, v := range sc {
			name, _, _ := strings.Cut(v, "=")
			if !console.IsSessionCookie(strings.TrimSpace(name)) {
				kept = append(kept, v)
			}
		}
		h.Del("Set-Cookie")
		for _, v := range kept {
			h.Add("Set-Cookie", v)
		}
	}
	if _, hostRouted := urlHostID(r.Host, a.cfg.URLDomain); !hostRouted && a.cfg.Verifier != nil {
		h.Add("Content-Security-Policy", "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads")
	}
}
