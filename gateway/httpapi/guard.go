package httpapi

import (
	"net"
	"net/http"
	"strings"

	"github.com/lambdagw/gateway/internal/lambda"
)

// Browser-borne attacks on the API. A web page the operator visits can make the browser send
// requests to the agent on 127.0.0.1 (a "simple" cross-site POST, text/plain, needs no CORS
// preflight), or rebind its own DNS name to 127.0.0.1 so that its scripts reach the agent as
// same-origin. Clients that are not browsers (curl, the CLI, the AWS SDKs and CLI, Terraform)
// send no Origin and no Sec-Fetch-Site, and are unaffected.

// hostAllowed reports whether host (a Host header, port and all) is one this node answers to:
// the allow-list, or a function URL under the URL domain.
func (a *api) hostAllowed(host string) bool {
	if len(a.allowedHosts) == 0 {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	name := hostName(host)
	if _, ok := a.allowedHosts[name]; ok {
		return true
	}
	d := strings.ToLower(a.cfg.URLDomain)
	return d != "" && (name == d || strings.HasSuffix(name, "."+d))
}

// hostName is a host name or address as the allow-list compares it: lower case, without IPv6
// brackets or a trailing dot.
func hostName(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
}

// guardHosts refuses a request whose Host is not the node's (DNS rebinding).
func (a *api) guardHosts(next http.Handler) http.Handler {
	deny := a.wrap(func(w http.ResponseWriter, r *http.Request, _ string) error {
		return &lambda.Error{Status: http.StatusForbidden, Type: "AccessDeniedException",
			Message: "the Host " + quoteHeader(r.Host) + " is not a name of this gateway; add it to the agent's http { allowed_hosts }"}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			deny.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossOrigin refuses API requests a browser sends from another site (Sec-Fetch-Site, or an
// Origin whose host is not the request's), except from http { allowed_origins }. Function URLs
// do not pass here: they answer browsers by their own CORS configuration.
func (a *api) crossOrigin() (*http.CrossOriginProtection, error) {
	p := http.NewCrossOriginProtection()
	for _, o := range a.cfg.AllowedOrigins {
		if err := p.AddTrustedOrigin(o); err != nil {
			return nil, err
		}
	}
	p.SetDenyHandler(a.wrap(func(w http.ResponseWriter, r *http.Request, _ string) error {
		return &lambda.Error{Status: http.StatusForbidden, Type: "AccessDeniedException",
			Message: "cross-site request refused: the API answers browsers only from its own origin or http { allowed_origins }"}
	}))
	return p, nil
}

func quoteHeader(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + `"`
}
