package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const (
	testKeyID  = "AKIAEXAMPLECI00001"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func TestAccessKeys(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "secrets"), "deploy", "\n  fileSecretXYZ0123456789/abc+def  \n")
	p := write(t, dir, "agent.hcl", `
access_key "ci" {
  id     = "`+testKeyID+`"
  secret = "`+testSecret+`"
  policy = "admin"
}
access_key "deploy" {
  id          = "AKIAEXAMPLEDEPLOY1"
  secret_file = "secrets/deploy"
  policy      = "invoke"
}
`)
	a, _, diags := LoadAgent(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := []AccessKey{
		{Name: "ci", ID: testKeyID, Secret: testSecret, Policy: PolicyAdmin},
		{Name: "deploy", ID: "AKIAEXAMPLEDEPLOY1", Secret: "fileSecretXYZ0123456789/abc+def", Policy: PolicyInvoke},
	}
	if len(a.AccessKeys) != len(want) {
		t.Fatalf("decoded %d keys, want %d", len(a.AccessKeys), len(want))
	}
	for i, k := range a.AccessKeys {
		if k.Name != want[i].Name || k.ID != want[i].ID || k.Secret != want[i].Secret || k.Policy != want[i].Policy {
			t.Errorf("key %d: got %s with a secret of %d bytes, want %s", i, k, len(k.Secret), want[i])
		}
	}
	m := a.AccessKeyMap()
	if len(m) != 2 || m[testKeyID] != testSecret || m["AKIAEXAMPLEDEPLOY1"] != want[1].Secret {
		t.Errorf("AccessKeyMap has %d keys, or the wrong secrets", len(m))
	}
	if p := a.AccessKeyPolicies(); len(p) != 2 || p[testKeyID] != PolicyAdmin || p["AKIAEXAMPLEDEPLOY1"] != PolicyInvoke {
		t.Errorf("AccessKeyPolicies: %v", p)
	}
	if len(DefaultAgent().AccessKeys) != 0 || len(DefaultAgent().AccessKeyMap()) != 0 {
		t.Error("the default agent has access keys")
	}
}

// TestAccessKeySecretNotPrinted: a config dump, in any fmt verb or as JSON, has no secret.
func TestAccessKeySecretNotPrinted(t *testing.T) {
	a := DefaultAgent()
	a.AccessKeys = []AccessKey{{Name: "ci", ID: testKeyID, Secret: testSecret}}
	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	k := a.AccessKeys[0]
	for _, s := range []string{
		fmt.Sprintf("%v", a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprintf("%+v", *a),
		fmt.Sprintf("%s", k), fmt.Sprintf("%q", k), fmt.Sprintf("%x", k), fmt.Sprintf("%d", k),
		fmt.Sprint(a.AccessKeys), k.String(), string(js),
	} {
		if strings.Contains(s, testSecret) || strings.Contains(s, fmt.Sprintf("%x", testSecret)) {
			t.Fatalf("the secret is printed: %s", s)
		}
	}
	if !strings.Contains(k.String(), testKeyID) || !strings.Contains(k.String(), `"ci"`) {
		t.Errorf("String does not name the key: %s", k)
	}
}

func TestAccessKeyDiagnostics(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "empty", " \n\t\n")
	write(t, dir, "spaced", "two words\n")
	// The policy goes last, so the lines of the other attributes are those of body.
	key := func(name, body string) string {
		return "access_key \"" + name + "\" {\n" + body + "  policy = \"admin\"\n}\n"
	}
	ok := "  id     = \"" + testKeyID + "\"\n  secret = \"" + testSecret + "\"\n"
	cases := []struct {
		name     string
		src      string
		summary  string
		detail   string // a part of the detail
		line     int    // of the diagnostic's subject
		filename string // of the subject, when not agent.hcl
	}{
		{"lower-case id", key("ci", "  id     = \"akiaexampleci00001\"\n  secret = \""+testSecret+"\"\n"),
			"Invalid access key id", `"akiaexampleci00001" is not an access key id`, 2, ""},
		{"short id", key("ci", "  secret = \""+testSecret+"\"\n  id     = \"AKIA123\"\n"),
			"Invalid access key id", "16 to 128 upper-case letters and digits", 3, ""},
		{"id with a dash", key("ci", "  id     = \"AKIA-EXAMPLE-CI-0001\"\n  secret = \""+testSecret+"\"\n"),
			"Invalid access key id", `"AKIA-EXAMPLE-CI-0001"`, 2, ""},
		{"empty secret", key("ci", "  id     = \""+testKeyID+"\"\n  secret = \"\"\n"),
			"Invalid access key secret", `access_key "ci": the secret is empty`, 3, ""},
		{"secret with a space", key("ci", "  id     = \""+testKeyID+"\"\n  secret = \"abc def\"\n"),
			"Invalid access key secret", "contains whitespace", 3, ""},
		{"secret with a newline", key("ci", "  id     = \""+testKeyID+"\"\n  secret = \"abcdef\\n\"\n"),
			"Invalid access key secret", "contains whitespace", 3, ""},
		{"duplicate name", key("ci", ok) + "\n" + key("ci", "  id     = \"AKIAEXAMPLECI00002\"\n  secret = \"other\"\n"),
			"Duplicate access_key block", `access_key "ci" is also declared at ` + "%DIR%/agent.hcl:1,", 7, ""},
		{"duplicate id", key("ci", ok) + key("ci2", "  id     = \""+testKeyID+"\"\n  secret = \"other\"\n"),
			"Duplicate access key id", `access_key "ci2" uses id ` + testKeyID + `, as access_key "ci" does`, 7, ""},
		{"both secrets", key("ci", ok+"  secret_file = \"empty\"\n"),
			"Conflicting access key secrets", "sets both secret and secret_file", 4, ""},
		{"no secret", "\n" + key("ci", "  id = \""+testKeyID+"\"\n"),
			"Missing access key secret", `access_key "ci" needs a secret`, 2, ""},
		{"missing secret_file", key("ci", "  id          = \""+testKeyID+"\"\n  secret_file = \"nope\"\n"),
			"Cannot read secret_file", "%DIR%/nope", 3, ""},
		{"empty secret_file", key("ci", "  id          = \""+testKeyID+"\"\n  secret_file = \"empty\"\n"),
			"Invalid access key secret", "the secret in %DIR%/empty is empty", 3, ""},
		{"secret_file with a space", key("ci", "  id          = \""+testKeyID+"\"\n  secret_file = \"spaced\"\n"),
			"Invalid access key secret", "the secret in %DIR%/spaced contains whitespace", 3, ""},
		{"missing id", key("ci", "  secret = \""+testSecret+"\"\n"),
			"Missing required argument", `"id" is required`, 1, ""},
		{"no policy", "access_key \"ci\" {\n" + ok + "}\n",
			"Missing access key policy", `access_key "ci" needs a policy: "admin"`, 1, ""},
		{"unknown policy", "access_key \"ci\" {\n" + ok + "  policy = \"root\"\n}\n",
			"Invalid access key policy", `policy "root" is not one of "admin"`, 4, ""},
		{"unknown attribute", key("ci", ok+"  region = \"eu-west-1\"\n"),
			"Unsupported argument", `"region" is not expected`, 4, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, dir, "agent.hcl", c.src)
			_, files, diags := LoadAgent(p)
			detail := strings.ReplaceAll(c.detail, "%DIR%", dir)
			var found *hcl.Diagnostic
			for _, d := range diags {
				if d.Summary == c.summary {
					found = d
				}
			}
			if found == nil || !strings.Contains(found.Detail, detail) {
				t.Fatalf("want %q with %q, got %v", c.summary, detail, diags)
			}
			if len(diags) != 1 {
				t.Errorf("want one diagnostic, got %v", diags)
			}
			if s := found.Subject; s == nil || s.Filename != p || s.Start.Line != c.line {
				t.Fatalf("%q points at %v, want %s line %d", c.summary, s, p, c.line)
			}
			var b strings.Builder
			_ = files.WriteDiagnostics(&b, diags)
			if head := fmt.Sprintf("%s:%d:", p, c.line); !strings.Contains(b.String(), head+"") || !strings.Contains(b.String(), ": error: "+c.summary) {
				t.Fatalf("rendered diagnostics lack %s ... error: %s:\n%s", head, c.summary, b.String())
			}
			for _, s := range []string{testSecret, "abc def", "other"} {
				if strings.Contains(b.String(), s) {
					t.Fatalf("rendered diagnostics show a secret (%s):\n%s", s, b.String())
				}
			}
		})
	}
}

// A cluster of nodes with access keys must have mutual TLS on its cluster port; a lone node
// gets its own (the agent's) and needs no tls block.
func TestAccessKeysNeedClusterTLS(t *testing.T) {
	dir := t.TempDir()
	key := `
access_key "ci" {
  id     = "` + testKeyID + `"
  secret = "` + testSecret + `"
  policy = "admin"
}
`
	p := write(t, dir, "cluster.hcl", key+`
cluster {
  bootstrap_expect = 3
  join             = ["10.0.0.1:9501", "10.0.0.2:9501"]
}
`)
	_, _, diags := LoadAgent(p)
	if !diags.HasErrors() || diags[0].Summary != "Cluster port without mutual TLS" {
		t.Fatalf("keys in a cluster without tls: %v", diags)
	}
	if s := diags[0].Subject; s == nil || s.Filename != p || s.Start.Line != 8 {
		t.Errorf("the diagnostic should point at the cluster block (line 8): %v", diags[0].Subject)
	}
	if !strings.Contains(diags[0].Detail, "gateway tls ca create") {
		t.Errorf("the diagnostic should say how to make certificates: %s", diags[0].Detail)
	}
	lone := write(t, dir, "lone.hcl", key+`
cluster {
  address = "0.0.0.0:9501"
}
`)
	if _, _, diags := LoadAgent(lone); diags.HasErrors() {
		t.Fatalf("a lone node with keys: %v", diags)
	}
}
