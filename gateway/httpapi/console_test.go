package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/gateway/httpapi/console"
)

// consoleDo sends a request to the API with an optional session cookie and console header.
func consoleDo(t *testing.T, method, u string, cookie *http.Cookie, header bool, body io.Reader, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if header {
		req.Header.Set(console.Header, "1")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func login(t *testing.T, base, id, secret string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"access_key_id": {id}, "secret_access_key": {secret}}
	return consoleDo(t, "POST", base+"/ui/login", nil, false, strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", console.CookieName, resp.Header.Values("Set-Cookie"))
	return nil
}

// TestConsoleFilesAndHeaders: the console's files are served with a strict CSP, no framing and
// no sniffing; /ui redirects to /ui/.
func TestConsoleFilesAndHeaders(t *testing.T) {
	_, base, _ := keyedStack(t)
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/app.css", "/ui/session"} {
		resp, body := consoleDo(t, "GET", base+p, nil, false, nil)
		if resp.StatusCode != 200 || body == "" {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", p, resp.Header)
		}
	}
	resp, body := consoleDo(t, "GET", base+"/ui/session", nil, false, nil)
	if resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(body, `"login_required":true`) {
		t.Fatalf("session without a cookie: %s %v", body, resp.Header)
	}
	req, _ := http.NewRequest("GET", base+"/ui", nil)
	r, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	// No directory listing or file outside the embedded app.
	for _, p := range []string{"/ui/../httpapi.go", "/ui/%2e%2e/console.go", "/ui/nothing.js"} {
		if resp, _ := consoleDo(t, "GET", base+p, nil, false, nil); resp.StatusCode == 200 {
			t.Errorf("GET %s answered 200", p)
		}
	}
}

// TestConsoleLogin: the login form takes a node key's ID and secret and nothing else.
func TestConsoleLogin(t *testing.T) {
	_, base, _ := keyedStack(t)
	for _, c := range []struct{ id, secret, want string }{
		{adminID, "wrong", "wrong access key ID or secret access key"},
		{adminID, invokeSecret, "wrong access key ID or secret access key"},
		{"AKIANOSUCHKEY", adminSecret, "wrong access key ID or secret access key"},
		{adminID, "", "needs access_key_id and secret_access_key"},
	} {
		resp, body := login(t, base, c.id, c.secret)
		if resp.StatusCode/100 != 4 || !strings.Contains(body, c.want) || len(resp.Cookies()) != 0 {
			t.Errorf("login %s/%q: %d %s %v", c.id, c.secret, resp.StatusCode, body, resp.Cookies())
		}
	}
	huge := "access_key_id=" + adminID + "&secret_access_key=" + strings.Repeat("x", 1<<20)
	resp, body := consoleDo(t, "POST", base+"/ui/login", nil, false, strings.NewReader(huge), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "login form must be smaller") {
		t.Errorf("huge login form: %d %s", resp.StatusCode, body)
	}
	// A login form posted from another site (login CSRF) is refused.
	form := url.Values{"access_key_id": {adminID}, "secret_access_key": {adminSecret}}
	resp, body = consoleDo(t, "POST", base+"/ui/login", nil, false, strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site login: %d %s", resp.StatusCode, body)
	}

	resp, body = login(t, base, adminID, adminSecret)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	c := sessionCookie(t, resp)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge != 12*3600 {
		t.Fatalf("session cookie %+v (plain HTTP: not Secure)", c)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(body), &info); err != nil || info["key_id"] != adminID || info["policy"] != "admin" {
		t.Fatalf("login answered %s", body)
	}
	if _, body := consoleDo(t, "GET", base+"/ui/session", c, false, nil); !strings.Contains(body, `"key_id":"`+adminID+`"`) {
		t.Fatalf("session with the cookie: %s", body)
	}
	resp, _ = consoleDo(t, "POST", base+"/ui/logout", c, true, nil)
	if cl := sessionCookie(t, resp); cl.MaxAge >= 0 || cl.Value != "" {
		t.Fatalf("logout cookie %+v", cl)
	}
}

// TestConsoleSessionAuth: a session authorizes API requests as its key, only with the console
// header, and never more than the key's policy.
func TestConsoleSessionAuth(t *testing.T) {
	_, base, _ := keyedStack(t)
	resp, _ := login(t, base, adminID, adminSecret)
	admin := sessionCookie(t, resp)
	resp, _ = login(t, base, invokeID, invokeSecret)
	invoke := sessionCookie(t, resp)
	list := base + "/2015-03-31/functions"

	resp, body := consoleDo(t, "GET", list, admin, true, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"Functions"`) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("admin session listing functions: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	// A cookie without the header (what a cross-site form would send) acts for no one.
	resp, body = consoleDo(t, "GET", list, admin, false, nil)
	if resp.StatusCode != 403 || !strings.Contains(body, console.Header) {
		t.Fatalf("cookie without the header: %d %s", resp.StatusCode, body)
	}
	resp, body = consoleDo(t, "POST", base+"/2015-03-31/functions/fn/invocations", admin, false, strings.NewReader("{}"), "Content-Type", "text/plain")
	if resp.StatusCode != 403 || !strings.Contains(body, console.Header) {
		t.Fatalf("invoke with a cookie without the header: %d %s", resp.StatusCode, body)
	}
	// The header without a cookie, or with forged ones.
	val := admin.Value
	i := strings.LastIndexByte(val, '.')
	flip := "A"
	if val[i+1] == 'A' {
		flip = "B"
	}
	forged := map[string]string{
		"no cookie":        "",
		"garbage":          "hello",
		"tampered MAC":     val[:i+1] + flip + val[i+2:],
		"tampered expiry":  strings.Replace(val, ".1", ".2", 1),
		"invoke as admin":  strings.Replace(invoke.Value, strings.Split(invoke.Value, ".")[1], strings.Split(val, ".")[1], 1),
		"admin mac+invoke": strings.Replace(val, strings.Split(val, ".")[1], strings.Split(invoke.Value, ".")[1], 1),
	}
	for name, v := range forged {
		var c *http.Cookie
		if v != "" {
			c = &http.Cookie{Name: console.CookieName, Value: v}
		}
		resp, body := consoleDo(t, "GET", list, c, true, nil)
		if resp.StatusCode != 403 || !strings.Contains(body, "console session") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	// An invoke key's session may invoke, not manage.
	resp, body = consoleDo(t, "GET", list, invoke, true, nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "may only invoke functions") {
		t.Fatalf("invoke session on an admin route: %d %s", resp.StatusCode, body)
	}
	resp, body = consoleDo(t, "POST", base+"/2015-03-31/functions/nosuch/invocations", invoke, true, strings.NewReader("{}"))
	if resp.StatusCode != 404 || !strings.Contains(body, "nosuch") {
		t.Fatalf("invoke session invoking (past auth, to a missing function): %d %s", resp.StatusCode, body)
	}
	// A signed request is judged by its signature, whatever cookie rides along.
	resp, body = consoleDo(t, "GET", list, admin, false, nil, "Authorization", "AWS4-HMAC-SHA256 Credential=AKIAHTTPAPIADMIN0001/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00")
	if resp.StatusCode/100 != 4 || strings.Contains(body, "console") {
		t.Fatalf("bad signature with a good cookie: %d %s", resp.StatusCode, body)
	}
}

// TestConsoleOpenAPI: without access keys the console needs no login.
func TestConsoleOpenAPI(t *testing.T) {
	_, base := newStack(t, stackOptions{})
	if _, body := consoleDo(t, "GET", base+"/ui/session", nil, false, nil); !strings.Contains(body, `"login_required":false`) {
		t.Fatalf("open API session: %s", body)
	}
	resp, body := login(t, base, "x", "y")
	if resp.StatusCode != 400 || !strings.Contains(body, "no login is needed") {
		t.Fatalf("login on an open API: %d %s", resp.StatusCode, body)
	}
	if resp, body := consoleDo(t, "GET", base+"/2015-03-31/functions", nil, true, nil); resp.StatusCode != 200 {
		t.Fatalf("open API from the console: %d %s", resp.StatusCode, body)
	}
}
