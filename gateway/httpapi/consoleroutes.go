package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/gateway/httpapi/console"
	"github.com/lambdagw/gateway/gateway/sigv4"
	"github.com/lambdagw/gateway/internal/lambda"
)

// The web console (gateway/httpapi/console): its files, and its sessions, which authorize API
// requests as the access key that logged in when they carry console.Header as well.

// maxLoginBody bounds the login form: a key ID and a secret.
const maxLoginBody = 4 << 10

// consoleRoutes adds the console's routes to r; cop refuses cross-site browser requests.
func (a *api) consoleRoutes(r *mux.Router, cop *http.CrossOriginProtection) {
	if a.cfg.Verifier != nil {
		a.sessions = console.NewSessions(a.cfg.Verifier)
	}
	headers := func(h handler) http.Handler {
		inner := cop.Handler(a.wrap(h))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			console.SecurityHeaders(w.Header())
			w.Header().Set("Cache-Control", "no-store")
			inner.ServeHTTP(w, r)
		})
	}
	r.Handle("/ui", http.RedirectHandler(console.Prefix, http.StatusMovedPermanently)).Methods("GET", "HEAD")
	r.Handle("/ui/login", headers(a.consoleLogin)).Methods("POST")
	r.Handle("/ui/logout", headers(a.consoleLogout)).Methods("POST")
	r.Handle("/ui/session", headers(a.consoleSession)).Methods("GET")
	r.PathPrefix(console.Prefix).Handler(console.Files()).Methods("GET", "HEAD")
}

// sessionInfo is GET /ui/session's answer, and POST /ui/login's.
type sessionInfo struct {
	// LoginRequired is false when the node has no access keys (its API is open) or the
	// request carries a valid session.
	LoginRequired bool      `json:"login_required"`
	KeyID         string    `json:"key_id,omitempty"`
	Policy        string    `json:"policy,omitempty"`
	Expires       time.Time `json:"expires,omitzero"`
}

func (a *api) consoleSession(w http.ResponseWriter, r *http.Request, reqID string) error {
	if a.sessions == nil {
		return writeJSON(w, reqID, 200, sessionInfo{Policy: PolicyAdmin})
	}
	id, err := a.sessions.Check(r)
	if err != nil {
		return writeJSON(w, reqID, 200, sessionInfo{LoginRequired: true})
	}
	return writeJSON(w, reqID, 200, sessionInfo{KeyID: id, Policy: a.policy(id)})
}

// consoleLogin checks an access key's secret (form fields access_key_id, secret_access_key)
// and answers a session cookie.
func (a *api) consoleLogin(w http.ResponseWriter, r *http.Request, reqID string) error {
	if a.sessions == nil {
		return lambda.InvalidParameter("this node has no access keys: its API and console are open, no login is needed")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return lambda.RequestTooLarge("the login form must be smaller than %d bytes", maxLoginBody)
		}
		return lambda.InvalidRequestContent("reading the login form: %v", err)
	}
	id, secret := r.PostForm.Get("access_key_id"), r.PostForm.Get("secret_access_key")
	if id == "" || secret == "" {
		return lambda.InvalidParameter("the login form needs access_key_id and secret_access_key")
	}
	if !a.sessions.CheckSecret(r.Context(), id, secret) {
		a.logger.Warn("console login refused", "access_key_id", truncate(id, 128), "remote", r.RemoteAddr)
		return &lambda.Error{Status: http.StatusForbidden, Type: "AccessDeniedException",
			Message: "wrong access key ID or secret access key"}
	}
	c, err := a.sessions.Issue(id, r.TLS != nil)
	if err != nil {
		return err
	}
	http.SetCookie(w, c)
	a.logger.Info("console login", "access_key_id", id, "remote", r.RemoteAddr)
	return writeJSON(w, reqID, 200, sessionInfo{KeyID: id, Policy: a.policy(id), Expires: c.Expires.UTC()})
}

func (a *api) consoleLogout(w http.ResponseWriter, r *http.Request, reqID string) error {
	http.SetCookie(w, console.Clear(r.TLS != nil))
	return writeJSON(w, reqID, 200, sessionInfo{LoginRequired: a.sessions != nil})
}

// policy is key id's policy; a key without one may only invoke (Config.Policies).
func (a *api) policy(id string) string {
	if p := a.cfg.Policies[id]; p != "" {
		return p
	}
	return PolicyInvoke
}

// consoleIdentity is the access key a console session authorizes r as. ok is false when r
// does not come from the console (no session cookie, or a signed request), leaving it to SigV4.
func (a *api) consoleIdentity(r *http.Request) (id *sigv4.Identity, ok bool, err error) {
	if r.Header.Get("Authorization") != "" || r.URL.Query().Has("X-Amz-Signature") {
		return nil, false, nil // signed: judged by its signature alone, whatever cookie rides along
	}
	if r.Header.Get(console.Header) == "" {
		if !hasSessionCookie(r) {
			return nil, false, nil
		}
		return nil, true, &lambda.Error{Status: http.StatusForbidden, Type: "AccessDeniedException",
			Message: "a console session cookie authorizes only requests with the " + console.Header + " header (cross-site request forgery protection)"}
	}
	key, err := a.sessions.Check(r)
	if err != nil {
		return nil, true, &lambda.Error{Status: http.StatusForbidden, Type: "AccessDeniedException",
			Message: "console session refused: " + err.Error()}
	}
	return &sigv4.Identity{AccessKeyID: key}, true, nil
}

// hasSessionCookie reports whether r carries the console's session cookie, in either form.
func hasSessionCookie(r *http.Request) bool {
	return slices.ContainsFunc(r.Cookies(), func(c *http.Cookie) bool { return console.IsSessionCookie(c.Name) })
}

// truncate bounds a client's string for a log line or an error message.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
