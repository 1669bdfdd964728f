package main

import (
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/cli"
)

// TestCLIDocs: docs/cli.md is what `gateway docs` makes from the commands' help now.
func TestCLIDocs(t *testing.T) {
	want, err := cliDocs(commands(cli.NewMockUi()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/cli.md")
	if err != nil || string(got) != want {
		t.Fatalf("docs/cli.md is out of date with the commands' help (%v): run `make docs`", err)
	}
	// It documents every command, and `gateway docs` prints exactly it.
	for _, name := range []string{"## gateway apply\n", "## gateway queue receive\n", "## gateway stream put\n", "Usage: gateway tls cert create"} {
		if !strings.Contains(want, name) {
			t.Errorf("the reference lacks %q", name)
		}
	}
	if strings.Contains(want, "## gateway docs") {
		t.Error("the reference documents the hidden docs command")
	}
	if code, out, errs := runCLI(t, "docs"); code != 0 || out != want {
		t.Errorf("gateway docs: exit %d, %s; its output differs from the reference", code, errs)
	}
}
