package config

import (
	"strings"
	"testing"
)

// The metrics block: on by default, off when asked; a value of the wrong type is a diagnostic
// naming the file and line; a metrics key is a policy of its own.
func TestMetricsBlock(t *testing.T) {
	dir := t.TempDir()
	a, _, diags := LoadAgent(write(t, dir, "default.hcl", "node_name = \"n\"\n"))
	if diags.HasErrors() || !a.Metrics.Enabled {
		t.Fatalf("default: enabled %v, %v", a.Metrics.Enabled, diags)
	}
	a, _, diags = LoadAgent(write(t, dir, "off.hcl", "metrics {\n  enabled = false\n}\n"))
	if diags.HasErrors() || a.Metrics.Enabled {
		t.Fatalf("enabled = false: enabled %v, %v", a.Metrics.Enabled, diags)
	}
	for _, c := range []struct{ name, body, at string }{
		{"not a bool", "\n\nmetrics {\n  enabled = \"sometimes\"\n}\n", "bad.hcl:4"},
		{"unknown attr", "\n\nmetrics {\n  port = 9100\n}\n", "bad.hcl:4"},
		{"two blocks", "\n\nmetrics {\n}\nmetrics {\n}\n", "bad.hcl:5"},
	} {
		_, _, diags := LoadAgent(write(t, dir, "bad.hcl", c.body))
		if !diags.HasErrors() {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if msg := diags.Error(); !strings.Contains(msg, c.at) {
			t.Errorf("%s: %q does not name %s", c.name, msg, c.at)
		}
	}
	a, _, diags = LoadAgent(write(t, dir, "keys.hcl", `
access_key "prometheus" {
  id     = "AKIAEXAMPLEPROM001"
  secret = "`+testSecret+`"
  policy = "metrics"
}
`))
	if diags.HasErrors() || a.AccessKeyPolicies()["AKIAEXAMPLEPROM001"] != PolicyMetrics {
		t.Fatalf("a metrics key: %v %v", a.AccessKeyPolicies(), diags)
	}
	_, _, diags = LoadAgent(write(t, dir, "badkey.hcl", `
access_key "x" {
  id     = "AKIAEXAMPLEPROM001"
  secret = "`+testSecret+`"
  policy = "scrape"
}
`))
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `"metrics" (reading metrics only)`) {
		t.Errorf("an unknown policy: %v, want the three policies named", diags)
	}
}
