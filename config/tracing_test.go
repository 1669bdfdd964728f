package config

import (
	"strings"
	"testing"
)

// TestTracing: no tracing block, no tracing; a block is read with its defaults; a bad endpoint
// or ratio is an error at its line.
func TestTracing(t *testing.T) {
	dir := t.TempDir()
	a, _, diags := LoadAgent(write(t, dir, "agent.hcl", "node_name = \"gw1\"\n"))
	if diags.HasErrors() || a.Tracing != nil {
		t.Fatalf("no block: tracing %+v, %v", a.Tracing, diags)
	}
	a, _, diags = LoadAgent(write(t, dir, "agent.hcl", `node_name = "gw1"
tracing {
  otlp_endpoint = "http://collector:4318"
}
`))
	if diags.HasErrors() || a.Tracing == nil || a.Tracing.OTLPEndpoint != "http://collector:4318" || a.Tracing.SampleRatio != 1 ||
		a.Tracing.ServiceName != "lambdagw" || a.Tracing.Insecure {
		t.Fatalf("defaults: %+v, %v", a.Tracing, diags)
	}
	a, _, diags = LoadAgent(write(t, dir, "agent.hcl", `node_name = "gw1"
tracing {
  otlp_endpoint = "https://otel.example.com/otlp/v1/traces"
  insecure      = true
  headers       = { "api-key" = "k" }
  sample_ratio  = 0.25
  service_name  = "edge"
}
`))
	if diags.HasErrors() || !a.Tracing.Insecure || a.Tracing.Headers["api-key"] != "k" || a.Tracing.SampleRatio != 0.25 || a.Tracing.ServiceName != "edge" {
		t.Fatalf("set: %+v, %v", a.Tracing, diags)
	}
	for _, tc := range []struct{ body, want string }{
		{`otlp_endpoint = "collector:4318"`, "agent.hcl:3,"},
		{`otlp_endpoint = "ftp://collector:4318"`, "not an http(s) URL"},
		{`otlp_endpoint = "http://"`, "not an http(s) URL"},
		{`otlp_endpoint = "http://user:pw@collector:4318"`, "not an http(s) URL"},
		{"otlp_endpoint = \"http://c:4318\"\n  sample_ratio = 1.5", "agent.hcl:4,"},
		{"otlp_endpoint = \"http://c:4318\"\n  sample_ratio = -0.1", "sample_ratio is from 0"},
		{"otlp_endpoint = \"http://c:4318\"\n  service_name = \"\"", "service_name must not be empty"},
		{`sample_ratio = 1`, "otlp_endpoint"},
	} {
		_, _, diags := LoadAgent(write(t, dir, "agent.hcl", "node_name = \"gw1\"\ntracing {\n  "+tc.body+"\n}\n"))
		if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.body, diags, tc.want)
		}
	}
}
