package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistries(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "pw", "\n  s3cret-from-file \n")
	p := write(t, dir, "agent.hcl", `
registry "registry.example:5000" {
  username = "ci"
  password = "s3cret"
}
registry "10.0.0.5:5000" {
  insecure = true
}
registry "ghcr.io" {
  username      = "bot"
  password_file = "pw"
}
`)
	a, _, diags := LoadAgent(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := []Registry{
		{Host: "registry.example:5000", Username: "ci", Password: "s3cret"},
		{Host: "10.0.0.5:5000", Insecure: true},
		{Host: "ghcr.io", Username: "bot", Password: "s3cret-from-file"},
	}
	if fmt.Sprint(a.Registries) != fmt.Sprint(want) || a.Registries[2].Password != want[2].Password || a.Registries[0].Password != "s3cret" {
		t.Fatalf("registries %v", a.Registries)
	}
	if strings.Contains(fmt.Sprintf("%v %+v %s", a.Registries[0], a.Registries[0], a.Registries[0]), "s3cret") {
		t.Fatal("a registry's password is printed")
	}
}

func TestRegistryDiagnostics(t *testing.T) {
	cases := []struct {
		name, src, summary, detail string
		line                       int
	}{
		{"scheme", "registry \"https://registry.example\" {\n}\n", "Invalid registry host", "without a scheme or path", 1},
		{"path", "registry \"registry.example/team\" {\n}\n", "Invalid registry host", `"registry.example/team"`, 1},
		{"duplicate", "registry \"r.example\" {\n}\n\nregistry \"r.example\" {\n}\n", "Duplicate registry block", "also declared at", 4},
		{"user without password", "registry \"r.example\" {\n  username = \"ci\"\n}\n", "Incomplete registry credentials", "both username and a password", 1},
		{"both passwords", "registry \"r.example\" {\n  username = \"ci\"\n  password = \"a\"\n  password_file = \"x\"\n}\n", "Conflicting registry passwords", "keep one", 4},
		{"missing password_file", "registry \"r.example\" {\n  username = \"ci\"\n  password_file = \"nope\"\n}\n", "Cannot read password_file", "nope", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := write(t, dir, "agent.hcl", c.src)
			_, _, diags := LoadAgent(p)
			for _, d := range diags {
				if d.Summary == c.summary && strings.Contains(d.Detail, c.detail) && d.Subject != nil &&
					d.Subject.Start.Line == c.line && d.Subject.Filename == filepath.Join(dir, "agent.hcl") {
					return
				}
			}
			t.Fatalf("want %q (%s) at line %d, got %v", c.summary, c.detail, c.line, diags)
		})
	}
}

func TestRuntimeBlocks(t *testing.T) {
	p := write(t, t.TempDir(), "agent.hcl", `
runtime "nodejs20.x" {
  image = "registry.example:5000/lambda/nodejs:20"
}
runtime "python3.12" {
  image = "oci-layout:/srv/images/python:3.12"
}
`)
	a, _, diags := LoadAgent(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := []RuntimeImage{{"nodejs20.x", "registry.example:5000/lambda/nodejs:20"}, {"python3.12", "oci-layout:/srv/images/python:3.12"}}
	if fmt.Sprint(a.Runtimes) != fmt.Sprint(want) {
		t.Fatalf("runtimes %v", a.Runtimes)
	}
	cases := []struct {
		name, src, summary string
		line               int
	}{
		{"built-in", "runtime \"provided.al2023\" {\n  image = \"x/y:1\"\n}\n", "Built-in runtime", 1},
		{"bad name", "runtime \"Node 20\" {\n  image = \"x/y:1\"\n}\n", "Invalid runtime name", 1},
		{"duplicate", "runtime \"n\" {\n  image = \"x/y:1\"\n}\nruntime \"n\" {\n  image = \"x/y:2\"\n}\n", "Duplicate runtime block", 4},
		{"empty image", "runtime \"n\" {\n  image = \"\"\n}\n", "Invalid runtime image", 2},
		{"no image", "runtime \"n\" {\n}\n", "Missing required argument", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, diags := LoadAgent(write(t, t.TempDir(), "agent.hcl", c.src))
			for _, d := range diags {
				if d.Summary == c.summary && d.Subject != nil && d.Subject.Start.Line == c.line {
					return
				}
			}
			t.Fatalf("want %q at line %d, got %v", c.summary, c.line, diags)
		})
	}
}
