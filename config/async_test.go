package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// TestAsyncBlocks: a function's async block is $LATEST's, one naming a qualifier is that
// version's or alias's, one inside an alias block is the alias's; dead_letter_target is the
// function's own.
func TestAsyncBlocks(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	write(t, dir, "f.hcl", `
function "worker" {
  runtime            = "provided"
  code               = "build"
  dead_letter_target = "queue:dlq"
  async {
    maximum_retry_attempts = 1
    maximum_event_age      = "1h"
    on_success {
      destination = "queue:done"
    }
    on_failure {
      destination = "function:sink"
    }
  }
  async {
    qualifier         = 2
    maximum_event_age = 120
  }
  alias "live" {
    version = 1
    async {
      maximum_retry_attempts = 0
      on_failure {
        destination = "stream:failures"
      }
    }
  }
}
function "plain" {
  runtime = "provided"
  code    = "build"
}
`)
	fns, _, diags := LoadFunctions(dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	w := fns[0]
	if w.DeadLetterTarget != "queue:dlq" || w.Structs().DeadLetterTarget != "queue:dlq" {
		t.Errorf("dead_letter_target decoded as %q", w.DeadLetterTarget)
	}
	if len(w.Async) != 3 {
		t.Fatalf("async blocks: %+v", w.Async)
	}
	one, zero := 1, 0
	want := []structs.EventInvokeConfig{
		{Function: "worker", Qualifier: "$LATEST", MaximumRetryAttempts: &one, MaximumEventAge: time.Hour, OnSuccess: "queue:done", OnFailure: "function:sink"},
		{Function: "worker", Qualifier: "2", MaximumEventAge: 2 * time.Minute},
		{Function: "worker", Qualifier: "live", MaximumRetryAttempts: &zero, OnFailure: "stream:failures"},
	}
	for i, a := range w.Async {
		got, exp := a.EventInvokeConfig, want[i]
		if got.Function != exp.Function || got.Qualifier != exp.Qualifier || got.Retries() != exp.Retries() ||
			(got.MaximumRetryAttempts == nil) != (exp.MaximumRetryAttempts == nil) || got.MaximumEventAge != exp.MaximumEventAge ||
			got.OnSuccess != exp.OnSuccess || got.OnFailure != exp.OnFailure {
			t.Errorf("async block %d decoded as %+v, want %+v", i, got, exp)
		}
		if a.DeclRange.Filename == "" || a.DeclRange.Start.Line == 0 {
			t.Errorf("async block %d has no range", i)
		}
	}
	if p := fns[1]; len(p.Async) != 0 || p.DeadLetterTarget != "" {
		t.Errorf("a function without async settings: %+v %q", p.Async, p.DeadLetterTarget)
	}
}

// TestAsyncDiagnostics: every misuse of async blocks and dead_letter_target is an error on the
// line of the attribute or block at fault, with the rule's words (those of the Lambda API's
// refusals: internal/structs).
func TestAsyncDiagnostics(t *testing.T) {
	const head = "runtime = \"provided\"\n  code = \"./build\"\n" // lines 2 and 3 of the file
	cases := []struct {
		name, body string
		// summary and detail are in the diagnostic, on line (of f.hcl).
		summary, detail string
		line            int
	}{
		{"retries", "  async {\n    maximum_retry_attempts = 3\n  }", "Invalid maximum_retry_attempts", "3 is out of range", 5},
		{"negative retries", "  async {\n    maximum_retry_attempts = -1\n  }", "Invalid maximum_retry_attempts", "-1 is out of range", 5},
		{"age too short", "  async {\n    maximum_event_age = \"30s\"\n  }", "Invalid maximum_event_age", "30s is out of range", 5},
		{"age too long", "  async {\n    maximum_event_age = \"7h\"\n  }", "Invalid maximum_event_age", "7h0m0s is out of range", 5},
		{"age zero", "  async {\n    maximum_event_age = 0\n  }", "Invalid maximum_event_age", "0s is out of range", 5},
		{"age fraction", "  async {\n    maximum_event_age = \"90.5s\"\n  }", "Invalid maximum_event_age", "whole seconds", 5},
		{"age not a duration", "  async {\n    maximum_event_age = \"soon\"\n  }", "Invalid duration", "\"soon\" is not a duration", 5},
		{"bad destination", "  async {\n    on_success {\n      destination = \"sqs:the done\"\n    }\n  }", "Invalid destination", `"sqs:the done": use "function:NAME"`, 6},
		{"bad failure destination", "  async {\n    on_failure {\n      destination = \"queue:\"\n    }\n  }", "Invalid destination", `"queue:"`, 6},
		{"own destination", "  async {\n    on_success {\n      destination = \"function:f\"\n    }\n  }", "Invalid destination", "cannot be its own destination", 6},
		{"missing destination", "  async {\n    on_failure {\n    }\n  }", "Missing required argument", "destination", 5},
		{"duplicate on_failure", "  async {\n    on_failure {\n      destination = \"queue:a\"\n    }\n    on_failure {\n      destination = \"queue:b\"\n    }\n  }", "Duplicate on_failure block", "f.hcl:5", 8},
		{"duplicate async", "  async {\n  }\n  async {\n    qualifier = \"$LATEST\"\n  }", "Duplicate async block", "Qualifier \"$LATEST\" already has an async block at", 6},
		{"duplicate alias async", "  alias \"live\" {\n    version = 1\n    async {\n    }\n  }\n  async {\n    qualifier = \"live\"\n  }", "Duplicate async block", "Qualifier \"live\"", 9},
		{"two in an alias", "  alias \"live\" {\n    version = 1\n    async {\n    }\n    async {\n    }\n  }", "Duplicate async block", "Qualifier \"live\"", 8},
		{"unknown alias", "  async {\n    qualifier = \"live\"\n  }", "Unknown qualifier", "nor an alias block of this function", 5},
		{"bad qualifier", "  async {\n    qualifier = \"a b\"\n  }", "Invalid qualifier", `"a b"`, 5},
		{"qualifier in an alias", "  alias \"live\" {\n    version = 1\n    async {\n      qualifier = \"2\"\n    }\n  }", "Qualifier in an alias's async block", "remove qualifier", 7},
		{"unknown attribute", "  async {\n    retries = 1\n  }", "Unsupported argument", "retries", 5},
		{"dead letter function", "  dead_letter_target = \"function:sink\"", "Invalid dead-letter target", `"function:sink": use "queue:NAME", "stream:NAME" or "<plugin>:<target>" (never a function)`, 4},
		{"dead letter garbage", "  dead_letter_target = \"arn:aws:sqs:us-east-1:1:dlq\"", "Invalid dead-letter target", "use \"queue:NAME\"", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
			p := write(t, dir, "f.hcl", "function \"f\" {\n  "+head+c.body+"\n}\n")
			_, files, diags := LoadFunctions(p)
			var b strings.Builder
			_ = files.WriteDiagnostics(&b, diags)
			out := b.String()
			head := ""
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, ": error: "+c.summary) {
					head = l
					break
				}
			}
			at := "f.hcl:" + strconv.Itoa(c.line) + ":"
			if !diags.HasErrors() || !strings.Contains(head, at) || !strings.Contains(out, c.detail) {
				t.Fatalf("want %q saying %q at %s, got:\n%s", c.summary, c.detail, at, out)
			}
		})
	}
}
