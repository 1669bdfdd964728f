package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/lambdagw/gateway/internal/structs"
)

// CORS for function URLs, as Lambda applies a URL's Cors configuration: the gateway answers
// preflight requests itself (the function never sees them), and on every other response its
// CORS headers replace whatever the function set.

// isPreflight reports whether r is a CORS preflight request (not just any OPTIONS).
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// allowedOrigin is the Access-Control-Allow-Origin value for origin, or "" when the policy does
// not allow it. A wildcard is echoed as "*" unless credentials are allowed, which browsers only
// accept with the origin spelled out.
func allowedOrigin(c *structs.CORS, origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range c.AllowOrigins {
		switch {
		case o == "*" && c.AllowCredentials:
			return origin
		case o == "*":
			return "*"
		case strings.EqualFold(o, origin):
			return origin
		}
	}
	return ""
}

// writePreflight answers a preflight from the policy. A disallowed origin gets no CORS headers,
// which makes the browser refuse the real request.
func writePreflight(w http.ResponseWriter, r *http.Request, reqID string, c *structs.CORS) {
	h := w.Header()
	h.Set("X-Amzn-RequestId", reqID)
	h.Add("Vary", "Origin")
	if origin := allowedOrigin(c, r.Header.Get("Origin")); origin != "" {
		h.Set("Access-Control-Allow-Origin", origin)
		if len(c.AllowMethods) > 0 {
			h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
		}
		if len(c.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
		}
		if c.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if c.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAge))
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// corsHeaders are the response headers a URL's CORS policy owns.
var corsHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
	"Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age",
}

// applyCORS sets the policy's headers on a function's response to r, replacing the function's
// own. Without a policy the function's headers pass untouched.
func applyCORS(h http.Header, r *http.Request, c *structs.CORS) {
	if c == nil {
		return
	}
	for _, name := range corsHeaders {
		h.Del(name)
	}
	h.Add("Vary", "Origin")
	origin := allowedOrigin(c, r.Header.Get("Origin"))
	if origin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
}
