package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/internal/agent"
)

// runCLI runs the CLI as main does, with its output captured.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw strings.Builder
	code = runIO(args, strings.NewReader(""), &out, &errw)
	return code, out.String(), errw.String()
}

// TestUsage: `gateway`, `gateway help` and `gateway -h` print the usage (listing the commands,
// not the hidden docs one) on stdout and exit 0; `gateway help CMD` prints CMD's help.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"-h"}, {"--help"}} {
		code, out, errs := runCLI(t, args...)
		if code != 0 || !strings.HasPrefix(out, "Usage: gateway") || !strings.Contains(out, "    apply ") ||
			!strings.Contains(out, "    queue ") || strings.Contains(out, "    docs ") || errs != "" {
			t.Errorf("gateway %v: exit %d, stdout:\n%s\nstderr:\n%s", args, code, out, errs)
		}
	}
	code, out, _ := runCLI(t, "help", "apply")
	if code != 0 || !strings.HasPrefix(out, "Usage: gateway apply") {
		t.Errorf("gateway help apply: exit %d:\n%s", code, out)
	}
}

// TestUnknownCommand: an unknown command, or an unknown subcommand of a group, is named and
// exits 1, with the usage.
func TestUnknownCommand(t *testing.T) {
	for args, name := range map[string]string{"deploy": "deploy", "queue purge": "queue purge", "tls ca rotate": "tls ca rotate", "help deploy": "deploy"} {
		code, out, errs := runCLI(t, strings.Fields(args)...)
		if code != 1 || !strings.Contains(errs, `unknown command "`+name+`"`) || !strings.Contains(errs, "Usage: gateway") || out != "" {
			t.Errorf("gateway %s: exit %d, stdout %q, stderr:\n%s", args, code, out, errs)
		}
	}
	// A command's own arguments are not commands.
	if code, _, errs := runCLI(t, "plugin", "checksum", "/nonexistent"); code != 1 || strings.Contains(errs, "unknown command") {
		t.Errorf("plugin checksum /nonexistent: exit %d, %s", code, errs)
	}
}

// TestVersion: -v, -version, --version and the version command print one string.
func TestVersion(t *testing.T) {
	want := "gateway " + agent.Version + "\n"
	for _, arg := range []string{"-v", "-version", "--version", "version"} {
		if code, out, errs := runCLI(t, arg); code != 0 || out != want {
			t.Errorf("gateway %s: exit %d, %q %q; want %q", arg, code, out, errs, want)
		}
	}
}

// TestNoAgent: with nothing listening at the address, a command says where it looked and how to
// point it elsewhere, instead of a raw URL error; apply stops at the first function.
func TestNoAgent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "build", "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	fns := ""
	for _, n := range []string{"a", "b"} {
		fns += "function \"" + n + "\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n}\n"
	}
	_ = os.WriteFile(filepath.Join(dir, "f.hcl"), []byte(fns), 0o644)
	want := "Error: no agent answers at " + addr + " (connection refused). Start one with `make run` or `gateway agent -dev`, or point at another with -address or GATEWAY_ADDR.\n"
	for _, args := range [][]string{
		{"functions", "-address", addr},
		{"invoke", "-address", addr, "f"},
		{"logs", "-address", addr, "f"},
		{"queue", "send", "-address", addr, "q", "hello"},
		{"cluster", "members", "-address", addr},
		{"apply", "-address", addr, dir},
	} {
		code, _, errs := runCLI(t, args...)
		if code != 1 || errs != want {
			t.Errorf("gateway %v: exit %d, stderr:\n%s\nwant:\n%s", args, code, errs, want)
		}
	}
	t.Setenv("GATEWAY_ADDR", addr)
	if _, _, errs := runCLI(t, "functions"); !strings.Contains(errs, "no agent answers at "+addr+" ") {
		t.Errorf("with GATEWAY_ADDR: %s", errs)
	}
}

// TestDiagnosticsOnce: each HCL diagnostic is printed once: its file:line:column and summary,
// then the source snippet and the detail.
func TestDiagnosticsOnce(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	p := filepath.Join(dir, "f.hcl")
	_ = os.WriteFile(p, []byte("function \"f\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n  nope = 1\n}\n"), 0o644)
	for _, cmd := range []string{"validate", "plan", "apply"} {
		code, out, errs := runCLI(t, cmd, "-address", "http://127.0.0.1:1", p)
		if cmd == "validate" {
			code, out, errs = runCLI(t, cmd, p)
		}
		if code != 1 || out != "" {
			t.Errorf("%s: exit %d, stdout %q", cmd, code, out)
		}
		if n := strings.Count(errs, "Unsupported argument"); n != 1 {
			t.Errorf("%s: the summary is printed %d times:\n%s", cmd, n, errs)
		}
		for _, want := range []string{p + ":4:3: error: Unsupported argument\n", "in function \"f\":\n   4:   nope = 1\n", `An argument named "nope" is not expected here.`} {
			if !strings.Contains(errs, want) {
				t.Errorf("%s: lacks %q:\n%s", cmd, want, errs)
			}
		}
	}
}

// TestSensitiveDiagnostic: a diagnostic about a secret names its file:line but not the line.
func TestSensitiveDiagnostic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.hcl")
	_ = os.WriteFile(p, []byte("access_key \"ci\" {\n  id     = \"AKIAEXAMPLECI00001\"\n  secret = \"s3cr3t value\"\n  policy = \"admin\"\n}\n"), 0o600)
	code, _, errs := runCLI(t, "agent", "-config", p)
	if code != 1 || strings.Count(errs, "Invalid access key secret") != 1 || !strings.Contains(errs, p+":3:") ||
		!strings.Contains(errs, "source line is not shown") || strings.Contains(errs, "s3cr3t") {
		t.Errorf("exit %d:\n%s", code, errs)
	}
}

// A function's log line cannot drive the terminal `gateway logs` prints to: control characters
// (escape sequences, carriage returns) are shown escaped, tabs and text kept.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttext é":            "plain\ttext é",
		"\x1b[2J\x1b[31mred":       `\x1b[2J\x1b[31mred`,
		"fake line\rREPORT forged": `fake line\rREPORT forged`,
		"bell\a del\x7f c1\u0085":  `bell\a del\x7f c1\u0085`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
