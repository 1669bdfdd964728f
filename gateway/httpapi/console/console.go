// Package console is the agent's web console: its static single-page app (embedded, served at
// /ui/) and its login sessions, cookies an access key's holder gets for its secret. The routes
// and the API's acceptance of a session live in gateway/httpapi.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Prefix is the path the console is served under.
const Prefix = "/ui/"

// Header must accompany every API request a session cookie authorizes: a cross-site form or
// link cannot send a custom header, so a cookie alone never acts (CSRF).
const Header = "X-Gateway-Console"

// CSP lets the console's pages load and run only the console's own files: no inline script or
// style, no eval, no frames, no other origin.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// SecurityHeaders sets the headers every console response carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// Files serves the embedded app under Prefix. The files hold no data (the app reads it from
// the API), so anyone may load them; browsers revalidate them so an upgrade shows at once.
func Files() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Prefix, http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
