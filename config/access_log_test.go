package config

import (
	"strings"
	"testing"
)

// TestHTTPAccessLog: http { access_log } is off by default, on when set, and must be a bool.
func TestHTTPAccessLog(t *testing.T) {
	dir := t.TempDir()
	for src, want := range map[string]bool{
		"": false,
		"http {\n  address = \"127.0.0.1:9600\"\n}\n": false,
		"http {\n  access_log = true\n}\n":            true,
		"http {\n  access_log = false\n}\n":           false,
	} {
		a, _, diags := LoadAgent(write(t, dir, "agent.hcl", "node_name = \"gw1\"\n"+src))
		if diags.HasErrors() || a.HTTP.AccessLog != want {
			t.Errorf("%q: access_log %v, %v; want %v", src, a.HTTP.AccessLog, diags, want)
		}
	}
	if DefaultAgent().HTTP.AccessLog || DevAgent(dir).HTTP.AccessLog {
		t.Error("the access log is on by default")
	}
	_, _, diags := LoadAgent(write(t, dir, "agent.hcl", "http {\n  access_log = \"sometimes\"\n}\n"))
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "agent.hcl:2,") {
		t.Errorf("a value that is not a bool: %v", diags)
	}
}
