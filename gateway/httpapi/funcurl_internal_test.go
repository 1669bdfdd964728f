package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lambdagw/gateway/internal/structs"
)

func TestURLHostID(t *testing.T) {
	const domain = "lambda-url.localhost"
	cases := []struct {
		host, id string
		ok       bool
	}{
		{"hello.lambda-url.localhost", "hello", true},
		{"hello.lambda-url.localhost:9500", "hello", true},
		{"MyFn.Lambda-URL.localhost:80", "MyFn", true}, // the domain is case-insensitive, the id is not
		{"hello--live.lambda-url.localhost", "hello--live", true},
		{"hello.lambda-url.localhost.", "hello", true},
		{"lambda-url.localhost", "", false},
		{".lambda-url.localhost", "", false},
		{"a.b.lambda-url.localhost", "", false},
		{"hello.other.localhost", "", false},
		{"127.0.0.1:9500", "", false},
		{"xlambda-url.localhost", "", false},
	}
	for _, c := range cases {
		id, ok := urlHostID(c.host, domain)
		if id != c.id || ok != c.ok {
			t.Errorf("urlHostID(%q) = %q, %v; want %q, %v", c.host, id, ok, c.id, c.ok)
		}
	}
	if _, ok := urlHostID("hello.lambda-url.localhost", ""); ok {
		t.Error("an empty domain matched")
	}
}

func TestURLPathID(t *testing.T) {
	cases := []struct {
		path, id, raw string
		ok            bool
	}{
		{"/fn/hello", "hello", "/", true},
		{"/fn/hello/", "hello", "/", true},
		{"/fn/hello/a/b%2Fc", "hello", "/a/b%2Fc", true},
		{"/fn/hello//x", "hello", "//x", true},
		{"/fn/", "", "", false},
		{"/fn//x", "", "", false},
		{"/fnx/hello", "", "", false},
		{"/2015-03-31/functions", "", "", false},
	}
	for _, c := range cases {
		id, raw, ok := urlPathID(c.path)
		if id != c.id || raw != c.raw || ok != c.ok {
			t.Errorf("urlPathID(%q) = %q, %q, %v; want %q, %q, %v", c.path, id, raw, ok, c.id, c.raw, c.ok)
		}
	}
}

func TestCORSRules(t *testing.T) {
	list := &structs.CORS{AllowOrigins: []string{"https://a.example"}, AllowMethods: []string{"GET", "POST"},
		AllowHeaders: []string{"x-one"}, ExposeHeaders: []string{"x-out"}, MaxAge: 60}
	wild := &structs.CORS{AllowOrigins: []string{"*"}}
	wildCred := &structs.CORS{AllowOrigins: []string{"*"}, AllowCredentials: true}
	for _, c := range []struct {
		name   string
		policy *structs.CORS
		origin string
		want   string
	}{
		{"listed", list, "https://a.example", "https://a.example"},
		{"listed, other case", list, "HTTPS://A.EXAMPLE", "HTTPS://A.EXAMPLE"},
		{"not listed", list, "https://b.example", ""},
		{"no origin", list, "", ""},
		{"wildcard", wild, "https://b.example", "*"},
		{"wildcard with credentials echoes", wildCred, "https://b.example", "https://b.example"},
	} {
		if got := allowedOrigin(c.policy, c.origin); got != c.want {
			t.Errorf("%s: allowed origin %q, want %q", c.name, got, c.want)
		}
	}

	pre := httptest.NewRequest(http.MethodOptions, "/", nil)
	pre.Header.Set("Origin", "https://a.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	if !isPreflight(pre) {
		t.Fatal("a preflight was not recognised")
	}
	rec := httptest.NewRecorder()
	writePreflight(rec, pre, "rid", list)
	h := rec.Header()
	if rec.Code != 200 || h.Get("Access-Control-Allow-Origin") != "https://a.example" || h.Get("Access-Control-Allow-Methods") != "GET,POST" ||
		h.Get("Access-Control-Allow-Headers") != "x-one" || h.Get("Access-Control-Max-Age") != "60" || h.Get("X-Amzn-RequestId") != "rid" {
		t.Errorf("preflight answer %d %v", rec.Code, h)
	}
	plain := httptest.NewRequest(http.MethodOptions, "/", nil)
	if isPreflight(plain) {
		t.Error("an OPTIONS without Origin was taken for a preflight")
	}

	// The policy replaces the function's own CORS headers.
	fnHeaders := http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Max-Age": {"999"}, "X-Other": {"kept"}}
	applyCORS(fnHeaders, pre, list)
	if fnHeaders.Get("Access-Control-Allow-Origin") != "https://a.example" || fnHeaders.Get("Access-Control-Expose-Headers") != "x-out" ||
		fnHeaders.Get("Access-Control-Max-Age") != "" || fnHeaders.Get("X-Other") != "kept" || fnHeaders.Get("Vary") != "Origin" {
		t.Errorf("response headers with a policy: %v", fnHeaders)
	}
	untouched := http.Header{"Access-Control-Allow-Origin": {"*"}}
	applyCORS(untouched, pre, nil)
	if untouched.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("without a policy the function's headers changed: %v", untouched)
	}
}
