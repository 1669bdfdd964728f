package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/reconcile"
)

// TestApplyLayers: plan and apply of a layer block and a function naming it, against a real
// node's API: the first apply publishes version 1 and creates the function with it; nothing
// changed plans nothing; new layer code publishes version 2 and moves the function there;
// a function without layers any more loses them, and the layer stays.
func TestApplyLayers(t *testing.T) {
	url := apiServer(t)
	dir := t.TempDir()
	for _, d := range []string{"build", "deps/lib"} {
		_ = os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	_ = os.WriteFile(filepath.Join(dir, "build", "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	writeDep := func(content string) string {
		t.Helper()
		_ = os.WriteFile(filepath.Join(dir, "deps", "lib", "dep.sh"), []byte(content), 0o644)
		pkg, err := codepkg.Build(filepath.Join(dir, "deps"))
		if err != nil {
			t.Fatal(err)
		}
		return reconcile.Size(pkg.Size)
	}
	p := filepath.Join(dir, "f.hcl")
	writeHCL := func(layers string) {
		_ = os.WriteFile(p, []byte(`layer "deps" {
  code                = "deps"
  description         = "shared scripts"
  compatible_runtimes = ["provided.al2023"]
}
function "fn" {
  runtime = "provided.al2023"
  code    = "build"
  `+layers+`
}
`), 0o644)
	}
	pkg, err := codepkg.Build(filepath.Join(dir, "build"))
	if err != nil {
		t.Fatal(err)
	}
	zip, lzip := reconcile.Size(pkg.Size), writeDep("echo 1\n")
	writeHCL("layers = [layer.deps]")
	client, err := api.New(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	layersOf := func() []string {
		t.Helper()
		out, err := client.GetFunction(context.Background(), "fn")
		if err != nil {
			t.Fatal(err)
		}
		var arns []string
		for _, l := range out.Configuration.Layers {
			arns = append(arns, l.Arn)
		}
		return arns
	}
	run := func(wantExit int, want string, args ...string) {
		t.Helper()
		exit, out, errs := runCLI(t, append(append(args, "-address", url), p)...)
		if exit != wantExit || out != want || errs != "" {
			t.Fatalf("%s: exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", args[0], exit, out, want, errs)
		}
	}

	run(2, "layer deps: new version to publish (the layer has none; "+lzip+" zip to upload)\n"+
		"fn: to create ("+zip+" zip to upload, layers [deps:(new version)])\n"+
		"Plan: 2 to change, 0 unchanged, 0 to delete, 0 failed.\n", "plan")
	run(0, "layer deps: version 1 published ("+lzip+" zip uploaded)\n"+
		"fn: created (code: "+zip+" zip uploaded, layers [deps:1])\n"+
		"Apply complete: 2 changed, 0 unchanged, 0 deleted, 0 failed.\n", "apply")
	if got := layersOf(); !reflect.DeepEqual(got, []string{lambda.LayerARN("us-east-1", "deps", 1)}) {
		t.Fatalf("the function's layers: %q", got)
	}
	run(0, "layer deps: unchanged\nfn: unchanged\nPlan: 0 to change, 2 unchanged, 0 to delete, 0 failed.\n", "plan")

	lzip = writeDep("echo 2\n")
	run(2, "layer deps: new version to publish (version 1 differs: code; "+lzip+" zip to upload)\n"+
		"fn: configuration to update (layers [deps:1] -> [deps:(new version)])\n"+
		"Plan: 2 to change, 0 unchanged, 0 to delete, 0 failed.\n", "plan")
	run(0, "layer deps: version 2 published ("+lzip+" zip uploaded)\n"+
		"fn: configuration updated (layers [deps:1] -> [deps:2])\n"+
		"Apply complete: 2 changed, 0 unchanged, 0 deleted, 0 failed.\n", "apply")
	if got := layersOf(); !reflect.DeepEqual(got, []string{lambda.LayerARN("us-east-1", "deps", 2)}) {
		t.Fatalf("the function's layers: %q", got)
	}

	// An ARN is passed as written; then no layers at all.
	writeHCL(`layers = ["` + lambda.LayerARN("us-east-1", "deps", 1) + `"]`)
	run(0, "layer deps: unchanged\nfn: configuration updated (layers [deps:2] -> [deps:1])\n"+
		"Apply complete: 1 changed, 1 unchanged, 0 deleted, 0 failed.\n", "apply")
	writeHCL("")
	run(0, "layer deps: unchanged\nfn: configuration updated (layers [deps:1] -> none)\n"+
		"Apply complete: 1 changed, 1 unchanged, 0 deleted, 0 failed.\n", "apply")
	if got := layersOf(); len(got) != 0 {
		t.Fatalf("the function's layers: %q", got)
	}
	if versions, err := client.ListLayerVersions(context.Background(), "deps"); err != nil || len(versions) != 2 || versions[0].Version != 2 {
		t.Fatalf("the layer's versions: %+v, %v", versions, err)
	}
}

// TestValidateLayers: validate packs each layer's code as it does a function's (an image
// function has none), and counts the layers.
func TestValidateLayers(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "deps"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "deps", "dep.sh"), []byte("echo\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "bad.zip"), []byte("not a zip"), 0o644)
	p := filepath.Join(dir, "f.hcl")
	_ = os.WriteFile(p, []byte(`layer "deps" {
  code = "deps"
}
function "fn" {
  runtime = "provided.al2023"
  code    = "deps"
  layers  = [layer.deps]
}
function "img" {
  package_type = "Image"
  image_uri    = "registry.example/img:1"
}
`), 0o644)
	if exit, out, errs := runCLI(t, "validate", p); exit != 0 || out != "The configuration is valid (2 functions, 1 layers).\n" {
		t.Fatalf("validate: exit %d:\n%s\n%s", exit, out, errs)
	}
	_ = os.WriteFile(filepath.Join(dir, "g.hcl"), []byte("layer \"broken\" {\n  code = \"bad.zip\"\n}\n"), 0o644)
	if exit, _, errs := runCLI(t, "validate", dir); exit != 1 || !strings.Contains(errs, "g.hcl:1,1-15: layer \"broken\": packaging ") {
		t.Fatalf("validate of a layer that is not a zip: exit %d:\n%s", exit, errs)
	}
}
