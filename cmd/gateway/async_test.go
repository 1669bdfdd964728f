package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/reconcile"
)

// TestApplyAsync: plan and apply of async blocks and dead_letter_target against a real node's
// API: created with the function (an alias's after the alias), updated with what differs,
// deleted when the file drops them, and nothing planned once applied.
func TestApplyAsync(t *testing.T) {
	url := apiServer(t)
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "build", "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	pkg, err := codepkg.Build(filepath.Join(dir, "build"))
	if err != nil {
		t.Fatal(err)
	}
	zip := reconcile.Size(pkg.Size)
	p := filepath.Join(dir, "f.hcl")
	writeHCL := func(body string) {
		_ = os.WriteFile(p, []byte(`function "sink" {
  runtime = "provided.al2023"
  code    = "build"
}
function "fn" {
  runtime = "provided.al2023"
  code    = "build"
`+body+`
}
`), 0o644)
	}
	run := func(wantExit int, want string, args ...string) {
		t.Helper()
		exit, out, errs := runCLI(t, append(append(args, "-address", url), p)...)
		if exit != wantExit || out != want || errs != "" {
			t.Fatalf("%s: exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", args[0], exit, out, want, errs)
		}
	}
	writeHCL(`  dead_letter_target = "queue:dlq"
  alias "live" {
    version = "$LATEST"
    async {
      maximum_retry_attempts = 0
    }
  }
  async {
    maximum_retry_attempts = 1
    maximum_event_age      = "1h"
    on_success {
      destination = "queue:done"
    }
    on_failure {
      destination = "function:sink"
    }
  }`)
	run(2, "sink: to create ("+zip+" zip to upload)\n"+
		"fn: to create ("+zip+" zip to upload); alias live to create (-> $LATEST); async live to create (maximum_retry_attempts 0); "+
		"async $LATEST to create (maximum_retry_attempts 1, maximum_event_age 1h0m0s, on_success queue:done, on_failure function:sink)\n"+
		"Plan: 2 to change, 0 unchanged, 0 to delete, 0 failed.\n", "plan")
	run(0, "sink: created (code: "+zip+" zip uploaded)\n"+
		"fn: created (code: "+zip+" zip already on the agent); alias live created (-> $LATEST); async live created (maximum_retry_attempts 0); "+
		"async $LATEST created (maximum_retry_attempts 1, maximum_event_age 1h0m0s, on_success queue:done, on_failure function:sink)\n"+
		"Apply complete: 2 changed, 0 unchanged, 0 deleted, 0 failed.\n", "apply")
	run(0, "sink: unchanged\nfn: unchanged\nPlan: 0 to change, 2 unchanged, 0 to delete, 0 failed.\n", "plan")

	client, err := api.New(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := client.GetFunctionEventInvokeConfig(ctx, "fn", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := got.Structs()
	if err != nil || c.Retries() != 1 || c.EventAge().String() != "1h0m0s" || c.OnSuccess != "queue:done" || c.OnFailure != "function:sink" {
		t.Fatalf("fn's configuration on the agent: %+v %v", c, err)
	}
	if fn, err := client.GetFunction(ctx, "fn"); err != nil || fn.Configuration.DeadLetterConfig == nil ||
		fn.Configuration.DeadLetterConfig.TargetArn != "arn:lambdagw:queue:us-east-1::dlq" {
		t.Fatalf("fn's DeadLetterConfig: %+v %v", fn, err)
	}

	// The alias's block goes, the function's changes, the dead-letter target moves to a stream.
	writeHCL(`  dead_letter_target = "stream:dead"
  alias "live" {
    version = "$LATEST"
  }
  async {
    maximum_retry_attempts = 2
    on_failure {
      destination = "function:sink"
    }
  }`)
	run(0, "sink: unchanged\n"+
		"fn: configuration updated (dead_letter_target queue:dlq -> stream:dead); "+
		"async $LATEST updated (maximum_retry_attempts 1 -> 2, maximum_event_age 1h0m0s -> default, on_success queue:done -> none); async live deleted\n"+
		"Apply complete: 1 changed, 1 unchanged, 0 deleted, 0 failed.\n", "apply")
	if all, err := client.ListFunctionEventInvokeConfigs(ctx, "fn"); err != nil || len(all) != 1 || all[0].MaximumEventAgeInSeconds != nil {
		t.Fatalf("fn's configurations: %+v %v", all, err)
	}

	// No async settings at all.
	writeHCL(`  alias "live" {
    version = "$LATEST"
  }`)
	run(0, "sink: unchanged\n"+
		"fn: configuration updated (dead_letter_target stream:dead -> none); async $LATEST deleted\n"+
		"Apply complete: 1 changed, 1 unchanged, 0 deleted, 0 failed.\n", "apply")
	run(0, "sink: unchanged\nfn: unchanged\nPlan: 0 to change, 2 unchanged, 0 to delete, 0 failed.\n", "plan")
	if fn, err := client.GetFunction(ctx, "fn"); err != nil || fn.Configuration.DeadLetterConfig != nil {
		t.Fatalf("fn's DeadLetterConfig after removing it: %+v %v", fn.Configuration.DeadLetterConfig, err)
	}

	// A file with a bad value never reaches the agent.
	writeHCL(`  async {
    maximum_retry_attempts = 5
  }`)
	exit, out, errs := runCLI(t, "plan", "-address", url, p)
	if exit != 1 || out != "" || !containsAll(errs, "f.hcl:9:30: error: Invalid maximum_retry_attempts", "5 is out of range") {
		t.Fatalf("plan of a bad async block: exit %d\n%s\n%s", exit, out, errs)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
