package config

import (
	"strings"
	"testing"

	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/testfixtures/sigtest"
)

// TestSigningPublishers: key and certificate-identity publishers and revocations are read with
// their files, relative to the agent file; each mistake is a diagnostic on its line.
func TestSigningPublishers(t *testing.T) {
	dir := t.TempDir()
	_, pub, err := signing.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, leaked, _ := signing.GenerateKey(nil)
	ca, err := sigtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "release.pub", string(pub))
	write(t, dir, "leaked.pub", string(leaked))
	write(t, dir, "trusted_root.json", string(ca.TrustedRoot()))
	p := write(t, dir, "agent.hcl", `
signing_publisher "release" { public_key = "release.pub" }
signing_publisher "ci" {
  certificate_identity    = "https://ci.example/release"
  certificate_oidc_issuer = "https://token.ci.example"
  trusted_root            = "trusted_root.json"
}
code_signing {
  revoked = ["leaked.pub", "sha256:0000000000000000000000000000000000000000000000000000000000000000"]
}
`)
	a, _, diags := LoadAgent(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := strings.Join(a.Signing.Names(), ","); got != "ci,release" {
		t.Errorf("publishers %s", got)
	}
	fp, _ := signing.RevocationEntry(leaked)
	if len(a.Signing.Revoked) != 2 || !a.Signing.Revoked[fp[0]] {
		t.Errorf("revoked %v", a.Signing.Revoked)
	}
	for _, c := range []struct{ name, hcl, want string }{
		{"missing key file", `signing_publisher "a" { public_key = "nope.pub" }`, "Cannot read public_key"},
		{"not a key", `signing_publisher "a" { public_key = "trusted_root.json" }`, "Invalid public key"},
		{"key and identity", `signing_publisher "a" {
  public_key = "release.pub"
  certificate_identity = "x"
}`, "Key and certificate identity"},
		{"no issuer", `signing_publisher "a" {
  certificate_identity = "x"
  trusted_root = "trusted_root.json"
}`, "Missing certificate_oidc_issuer"},
		{"no trusted root", `signing_publisher "a" {
  certificate_identity = "x"
  certificate_oidc_issuer = "y"
}`, "Missing trusted_root"},
		{"bad trusted root", `signing_publisher "a" {
  certificate_identity = "x"
  certificate_oidc_issuer = "y"
  trusted_root = "release.pub"
}`, "Invalid certificate identity"},
		{"empty", `signing_publisher "a" {}`, "Empty signing_publisher"},
		{"duplicate", "signing_publisher \"a\" { public_key = \"release.pub\" }\nsigning_publisher \"a\" { public_key = \"release.pub\" }", "Duplicate signing_publisher"},
		{"bad name", `signing_publisher "a b" { public_key = "release.pub" }`, "Invalid publisher name"},
		{"bad revocation", `code_signing { revoked = ["sha256:12"] }`, "Invalid revocation"},
	} {
		p := write(t, dir, "bad.hcl", c.hcl+"\n")
		_, _, diags := LoadAgent(p)
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) || !strings.Contains(diags.Error(), "bad.hcl:") {
			t.Errorf("%s: %v, want %q at a line of bad.hcl", c.name, diags, c.want)
		}
	}
}
