package structs

import (
	"strings"
	"time"
)

// Function URL settings, in the Lambda API's terms (the HCL says SIGNED for AWS_IAM: here the
// signature is checked against the agent's access keys, not IAM).
const (
	AuthNone   = "NONE"
	AuthSigned = "AWS_IAM"

	InvokeBuffered = "BUFFERED"
	InvokeStream   = "RESPONSE_STREAM"
)

// URLIDSeparator joins a function name and an alias in a URL id ("name--alias"). Function
// names and aliases may contain '-', but "--" leaves the split unambiguous when the id is read
// from the right: aliases cannot contain "--" (ValidAlias).
const URLIDSeparator = "--"

// FunctionURL is a function URL: the function (or one of its aliases) reachable over plain
// HTTP at <id>.<url_domain> and /fn/<id>/. It is stored apart from the function, as in Lambda,
// so changing it never replaces the function's environments.
type FunctionURL struct {
	Function string `json:"function"`
	// Qualifier is the alias the URL invokes; empty for $LATEST.
	Qualifier    string    `json:"qualifier,omitempty"`
	AuthType     string    `json:"auth_type"`
	InvokeMode   string    `json:"invoke_mode"`
	Cors         *CORS     `json:"cors,omitempty"`
	CreationTime time.Time `json:"creation_time"`
	LastModified time.Time `json:"last_modified"`
	CreateIndex  uint64    `json:"create_index"`
	ModifyIndex  uint64    `json:"modify_index"`
}

// ID is the URL id: the host label and the /fn/ path segment.
func (u *FunctionURL) ID() string { return URLID(u.Function, u.Qualifier) }

// URLID is the id of the URL of function name at qualifier ("" or $LATEST for the function).
func URLID(name, qualifier string) string {
	if qualifier == "" || qualifier == LatestVersion {
		return name
	}
	return name + URLIDSeparator + qualifier
}

// ParseURLID splits a URL id into function name and qualifier.
func ParseURLID(id string) (name, qualifier string) {
	if i := strings.LastIndex(id, URLIDSeparator); i > 0 && i+len(URLIDSeparator) < len(id) {
		return id[:i], id[i+len(URLIDSeparator):]
	}
	return id, ""
}

// Copy returns a deep copy.
func (u *FunctionURL) Copy() *FunctionURL {
	if u == nil {
		return nil
	}
	c := *u
	if u.Cors != nil {
		cors := u.Cors.Copy()
		c.Cors = &cors
	}
	return &c
}

// CORS is a function URL's cross-origin policy; the gateway answers preflights from it and
// adds its headers to the function's responses.
type CORS struct {
	AllowCredentials bool     `json:"allow_credentials,omitempty"`
	AllowHeaders     []string `json:"allow_headers,omitempty"`
	AllowMethods     []string `json:"allow_methods,omitempty"`
	AllowOrigins     []string `json:"allow_origins,omitempty"`
	ExposeHeaders    []string `json:"expose_headers,omitempty"`
	MaxAge           int      `json:"max_age,omitempty"`
}

// Copy returns a deep copy.
func (c CORS) Copy() CORS {
	dup := func(s []string) []string {
		if s == nil {
			return nil
		}
		return append([]string(nil), s...)
	}
	return CORS{AllowCredentials: c.AllowCredentials, AllowHeaders: dup(c.AllowHeaders), AllowMethods: dup(c.AllowMethods),
		AllowOrigins: dup(c.AllowOrigins), ExposeHeaders: dup(c.ExposeHeaders), MaxAge: c.MaxAge}
}

// IsZero reports whether the policy sets nothing: the URL then has no CORS policy at all.
func (c CORS) IsZero() bool {
	return !c.AllowCredentials && c.MaxAge == 0 && len(c.AllowHeaders) == 0 && len(c.AllowMethods) == 0 &&
		len(c.AllowOrigins) == 0 && len(c.ExposeHeaders) == 0
}

// Limits of a function URL's CORS configuration, as Lambda's.
const (
	MaxCORSMaxAge = 86400
	MaxCORSItems  = 100
)

var corsMethods = map[string]bool{"*": true, "GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// IsCORSMethod reports whether m (upper case) may stand in AllowMethods.
func IsCORSMethod(m string) bool { return corsMethods[m] }

// IsCORSOrigin reports whether o may stand in AllowOrigins: * or scheme://host[:port].
func IsCORSOrigin(o string) bool { return o == "*" || strings.Contains(o, "://") }
