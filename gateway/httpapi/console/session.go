package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sessions are stateless: the cookie is the key ID and an expiry, with an HMAC whose key is
// derived from that access key's secret. Every node configured with the same key accepts the
// cookie (a console behind a load balancer), changing the key's secret ends its sessions, and
// forging one needs the secret, which grants the API anyway. The cookie never carries the
// policy: it is the key's policy at each request, so a changed policy applies at once.

// CookieName is the session cookie over plain HTTP; over TLS it is SecureCookieName, whose
// __Host- prefix makes browsers refuse one set by another host (a sibling function URL host
// setting it for the parent domain) or for a narrower path.
const (
	CookieName       = "gateway_console"
	SecureCookieName = "__Host-" + CookieName
)

// cookieName is the session cookie's name on a listener with or without TLS.
func cookieName(secure bool) string {
	if secure {
		return SecureCookieName
	}
	return CookieName
}

// IsSessionCookie reports whether a cookie of this name is the console's session, in either form.
func IsSessionCookie(name string) bool { return name == CookieName || name == SecureCookieName }

// TTL is how long a session lasts.
const TTL = 12 * time.Hour

// FailDelay is how long a failed login waits before it is answered. Failures wait one after
// another, so guessing a secret goes at most one try per FailDelay per node, while a right
// secret is answered at once. A failure waits for its turn only as long as its request lasts.
const FailDelay = time.Second

const (
	version  = "v1"
	macLabel = "lambdagw console session v1"
	// maxCookie bounds what ParseCookie reads: an ID of 128 bytes in base64 and the rest.
	maxCookie = 256
	maxIDLen  = 128
)

// Keys looks up access keys' secrets (the API's SigV4 verifier).
type Keys interface {
	Secret(id string) (string, bool)
}

// Sessions issues and checks session cookies for the node's access keys.
type Sessions struct {
	keys  Keys
	now   func() time.Time
	delay time.Duration
	fail  chan struct{} // one slot, held through each failed login's delay
}

// NewSessions returns the sessions of keys.
func NewSessions(keys Keys) *Sessions {
	return &Sessions{keys: keys, now: time.Now, delay: FailDelay, fail: make(chan struct{}, 1)}
}

// Session is a parsed cookie, not yet checked.
type Session struct {
	KeyID   string
	Expires int64 // Unix seconds
	MAC     []byte
}

// b64 is the cookie's base64: strict, so each session has one encoding only.
var b64 = base64.RawURLEncoding.Strict()

// ErrNoSession is a request without a session cookie.
var ErrNoSession = errors.New("no console session cookie")

// ParseCookie splits a cookie value "v1.<base64url key ID>.<unix expiry>.<base64url MAC>",
// refusing anything else; it checks nothing cryptographic.
func ParseCookie(v string) (Session, error) {
	if len(v) > maxCookie {
		return Session{}, fmt.Errorf("console session cookie is %d bytes, more than %d", len(v), maxCookie)
	}
	parts := strings.Split(v, ".")
	if len(parts) != 4 || parts[0] != version {
		return Session{}, errors.New("console session cookie is not of the form v1.ID.EXPIRY.MAC")
	}
	id, err := b64.DecodeString(parts[1])
	if err != nil || len(id) == 0 || len(id) > maxIDLen {
		return Session{}, errors.New("console session cookie has a malformed key ID")
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || exp <= 0 || parts[2] != strconv.FormatInt(exp, 10) {
		return Session{}, errors.New("console session cookie has a malformed expiry")
	}
	mac, err := b64.DecodeString(parts[3])
	if err != nil || len(mac) != sha256.Size {
		return Session{}, errors.New("console session cookie has a malformed signature")
	}
	return Session{KeyID: string(id), Expires: exp, MAC: mac}, nil
}

// String is the cookie value of s.
func (s Session) String() string {
	return version + "." + base64.RawURLEncoding.EncodeToString([]byte(s.KeyID)) + "." +
		strconv.FormatInt(s.Expires, 10) + "." + base64.RawURLEncoding.EncodeToString(s.MAC)
}

// sign is the MAC of (id, exp) under a key derived from the access key's secret.
func sign(secret, id string, exp int64) []byte {
	k := hmac.New(sha256.New, []byte(secret))
	k.Write([]byte(macLabel))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(version + "\x00" + id + "\x00" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// CheckSecret reports whether secret is id's, in time independent of where they differ (and of
// whether id exists). A failure returns only after the failed-login delay, or ctx's end.
func (s *Sessions) CheckSecret(ctx context.Context, id, secret string) bool {
	want, ok := s.keys.Secret(id)
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(a[:], b[:]) == 1 && ok {
		return true
	}
	select {
	case s.fail <- struct{}{}:
		defer func() { <-s.fail }()
	case <-ctx.Done():
		return false
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Issue returns the session cookie of key id (whose secret was checked), Secure when the
// console is served over TLS.
func (s *Sessions) Issue(id string, secure bool) (*http.Cookie, error) {
	secret, ok := s.keys.Secret(id)
	if !ok || len(id) > maxIDLen {
		return nil, fmt.Errorf("no access key %q to issue a session for", id)
	}
	exp := s.now().Add(TTL).Unix()
	v := Session{KeyID: id, Expires: exp, MAC: sign(secret, id, exp)}
	return &http.Cookie{Name: cookieName(secure), Value: v.String(), Path: "/", Expires: time.Unix(exp, 0),
		MaxAge: int(TTL / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode}, nil
}

// Clear is the cookie that ends a session in the browser.
func Clear(secure bool) *http.Cookie {
	return &http.Cookie{Name: cookieName(secure), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode}
}

// Check returns the key ID of r's valid session cookie, or why there is none (ErrNoSession
// without a cookie).
func (s *Sessions) Check(r *http.Request) (string, error) {
	c, err := r.Cookie(cookieName(r.TLS != nil))
	if err != nil || c.Value == "" {
		return "", ErrNoSession
	}
	return s.CheckValue(c.Value)
}

// CheckValue returns the key ID of a valid session cookie value.
func (s *Sessions) CheckValue(v string) (string, error) {
	sess, err := ParseCookie(v)
	if err != nil {
		return "", err
	}
	secret, ok := s.keys.Secret(sess.KeyID)
	if !ok {
		return "", errors.New("console session is for an access key this node does not have")
	}
	if !hmac.Equal(sess.MAC, sign(secret, sess.KeyID, sess.Expires)) {
		return "", errors.New("console session cookie has a wrong signature")
	}
	now := s.now().Unix()
	if sess.Expires <= now {
		return "", errors.New("console session expired: log in again")
	}
	if sess.Expires > now+int64(TTL/time.Second)+60 {
		return "", errors.New("console session cookie expires later than any session this node issues")
	}
	return sess.KeyID, nil
}
