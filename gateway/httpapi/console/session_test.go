package console

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

type keys map[string]string

func (k keys) Secret(id string) (string, bool) { s, ok := k[id]; return s, ok }

var testKeys = keys{"AKIAADMIN": "admin-secret", "AKIAINVOKE": "invoke-secret"}

func newTestSessions(now time.Time) *Sessions {
	s := NewSessions(testKeys)
	s.now = func() time.Time { return now }
	s.delay = time.Millisecond
	return s
}

func TestSessionRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newTestSessions(now)
	c, err := s.Issue("AKIAADMIN", true)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge != int(TTL/time.Second) {
		t.Fatalf("cookie attributes: %+v", c)
	}
	if id, err := s.CheckValue(c.Value); err != nil || id != "AKIAADMIN" {
		t.Fatalf("CheckValue = %q, %v", id, err)
	}
	// Another node with the same keys accepts it; one whose key has another secret does not.
	other := NewSessions(testKeys)
	other.now = s.now
	if _, err := other.CheckValue(c.Value); err != nil {
		t.Fatalf("a node with the same key refused the session: %v", err)
	}
	rotated := NewSessions(keys{"AKIAADMIN": "new-secret"})
	rotated.now = s.now
	if _, err := rotated.CheckValue(c.Value); err == nil || !strings.Contains(err.Error(), "wrong signature") {
		t.Fatalf("a rotated secret accepted the old session: %v", err)
	}
	// Expired: the moment TTL has passed.
	late := newTestSessions(now.Add(TTL))
	if _, err := late.CheckValue(c.Value); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired session: %v", err)
	}
	// Clear ends it in the browser.
	if cl := Clear(false); cl.MaxAge >= 0 || cl.Value != "" {
		t.Fatalf("Clear: %+v", cl)
	}
}

func TestSessionForgeries(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newTestSessions(now)
	c, _ := s.Issue("AKIAINVOKE", false)
	good, _ := ParseCookie(c.Value)
	mod := func(f func(*Session)) string {
		v := good
		v.MAC = append([]byte(nil), good.MAC...)
		f(&v)
		return v.String()
	}
	// The invoke key's MAC under the admin key's ID, with a later expiry, with a flipped bit,
	// or signed with a guessed secret: all refused.
	forged, _ := s.Issue("AKIAADMIN", false)
	adminMAC, _ := ParseCookie(forged.Value)
	cases := map[string]string{
		"other key ID":        mod(func(v *Session) { v.KeyID = "AKIAADMIN" }),
		"later expiry":        mod(func(v *Session) { v.Expires += 3600 }),
		"flipped MAC bit":     mod(func(v *Session) { v.MAC[0] ^= 1 }),
		"mac of another key":  mod(func(v *Session) { v.MAC = adminMAC.MAC }),
		"guessed secret":      Session{KeyID: "AKIAADMIN", Expires: good.Expires, MAC: sign("guess", "AKIAADMIN", good.Expires)}.String(),
		"unknown key":         Session{KeyID: "AKIAOTHER", Expires: good.Expires, MAC: sign("x", "AKIAOTHER", good.Expires)}.String(),
		"far future (signed)": Session{KeyID: "AKIAINVOKE", Expires: good.Expires + 86400*365, MAC: sign("invoke-secret", "AKIAINVOKE", good.Expires+86400*365)}.String(),
		"empty":               "",
		"v2":                  "v2" + c.Value[2:],
		"extra part":          c.Value + ".x",
		"missing part":        c.Value[:strings.LastIndexByte(c.Value, '.')],
		"padded base64":       "v1." + base64.URLEncoding.EncodeToString([]byte("AKIAINVOKE")) + c.Value[strings.Index(c.Value[3:], ".")+3:],
		"leading zero expiry": strings.Replace(c.Value, ".1", ".01", 1),
		"huge":                strings.Repeat("A", 10000),
	}
	for name, v := range cases {
		if id, err := s.CheckValue(v); err == nil {
			t.Errorf("%s: accepted as %q", name, id)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	s := newTestSessions(time.Now())
	ctx := context.Background()
	if !s.CheckSecret(ctx, "AKIAADMIN", "admin-secret") {
		t.Fatal("right secret refused")
	}
	for _, c := range [][2]string{{"AKIAADMIN", "admin-secreT"}, {"AKIAADMIN", ""}, {"AKIAADMIN", "invoke-secret"}, {"AKIANONE", ""}, {"AKIANONE", "admin-secret"}} {
		if s.CheckSecret(ctx, c[0], c[1]) {
			t.Errorf("CheckSecret(%q, %q) accepted", c[0], c[1])
		}
	}
}

// FuzzParseCookie: any cookie value parses or is refused without panicking, and what parses
// prints back as itself (one encoding per session: nothing else is accepted).
func FuzzParseCookie(f *testing.F) {
	s := newTestSessions(time.Unix(1_800_000_000, 0))
	c, _ := s.Issue("AKIAADMIN", false)
	f.Add(c.Value)
	f.Add("v1..1.")
	f.Add("v1.QUtJQQ.18000.AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		sess, err := ParseCookie(v)
		if err != nil {
			return
		}
		if sess.String() != v {
			t.Fatalf("ParseCookie(%q) prints back as %q", v, sess.String())
		}
		if _, err := s.CheckValue(v); err == nil && v != c.Value {
			t.Fatalf("CheckValue accepted a cookie it did not issue: %q", v)
		}
	})
}
