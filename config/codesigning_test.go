package config

import (
	"strings"
	"testing"

	"github.com/lambdagw/gateway/internal/structs"
)

// TestCodeSigningConfigBlocks: code_signing_config blocks and the functions that name them,
// with the API's rules as diagnostics on their lines.
func TestCodeSigningConfigBlocks(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "fn.zip", "PK\x05\x06"+strings.Repeat("\x00", 18))
	write(t, dir, "fn.zip.sigstore.json", "{}")
	p := write(t, dir, "fns.hcl", `
code_signing_config "prod" {
  description                      = "release only"
  allowed_publishers               = ["release"]
  untrusted_artifact_on_deployment = "Enforce"
}
code_signing_config "lenient" {
  allowed_publishers = ["release", "ci"]
}
function "api" {
  runtime             = "provided.al2023"
  code                = "fn.zip"
  code_signature      = "fn.zip.sigstore.json"
  code_signing_config = "prod"
}
`)
	ff, _, diags := LoadFunctionFiles(Inputs{}, p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(ff.CodeSigningConfigs) != 2 {
		t.Fatalf("configurations: %+v", ff.CodeSigningConfigs)
	}
	prod, lenient := ff.CodeSigningConfigs[0], ff.CodeSigningConfigs[1]
	if prod.ID != structs.CodeSigningConfigID("prod") || !prod.Enforce() || prod.Description != "release only" ||
		lenient.UntrustedArtifactOnDeployment != structs.CodeSigningWarn || len(lenient.AllowedPublishers) != 2 {
		t.Errorf("decoded %+v %+v", prod.CodeSigningConfig, lenient.CodeSigningConfig)
	}
	fn := ff.Functions[0]
	if fn.CodeSigningConfig != "prod" || !strings.HasSuffix(fn.CodeSignature, "/fn.zip.sigstore.json") {
		t.Errorf("function: %q %q", fn.CodeSigningConfig, fn.CodeSignature)
	}
	for _, c := range []struct{ name, hcl, want, line string }{
		{"unknown config", "function \"f\" {\n  runtime = \"provided\"\n  code = \"fn.zip\"\n  code_signing_config = \"nope\"\n}", "Unknown code signing config", "fns.hcl:4"},
		{"bad policy", "code_signing_config \"c\" {\n  allowed_publishers = [\"a\"]\n  untrusted_artifact_on_deployment = \"Block\"\n}", "Block", "fns.hcl:3"},
		{"no publishers", "code_signing_config \"c\" {\n  allowed_publishers = []\n}", "Missing allowed publishers", "fns.hcl:2"},
		{"a bad publisher", "code_signing_config \"c\" {\n  allowed_publishers = [\"a b\"]\n}", "Invalid publisher", "fns.hcl:2"},
		{"duplicate", "code_signing_config \"c\" {\n  allowed_publishers = [\"a\"]\n}\ncode_signing_config \"c\" {\n  allowed_publishers = [\"a\"]\n}", "Duplicate code signing config", "fns.hcl:4"},
		{"missing signature", "function \"f\" {\n  runtime = \"provided\"\n  code = \"fn.zip\"\n  code_signature = \"nope.json\"\n}", "Code signature not found", "fns.hcl:4"},
		{"signature of a folder", "function \"f\" {\n  runtime = \"provided\"\n  code = \".\"\n  code_signature = \"fn.zip.sigstore.json\"\n}", "Code signature of a folder", "fns.hcl:4"},
	} {
		p := write(t, dir, "fns.hcl", c.hcl+"\n")
		_, _, diags := LoadFunctionFiles(Inputs{}, p)
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) || !strings.Contains(diags.Error(), c.line) {
			t.Errorf("%s: %v, want %q at %s", c.name, diags, c.want, c.line)
		}
	}
}
