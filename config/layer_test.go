package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// layerDir is a folder with a code folder build/, a layer folder deps/ and a layer zip
// tools.zip, for function files to name.
func layerDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"build", "deps"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, dir, "tools.zip", "PK\x05\x06"+strings.Repeat("\x00", 18))
	return dir
}

// TestLayerBlocks: layer blocks of any of the files, and a function's layers naming them
// (layer.NAME) or a layer version's ARN, in order.
func TestLayerBlocks(t *testing.T) {
	dir := layerDir(t)
	write(t, dir, "a.hcl", `
layer "deps" {
  code                     = "deps"
  description              = "node_modules"
  compatible_runtimes      = ["nodejs20.x", "provided.al2023"]
  compatible_architectures = ["x86_64"]
  license_info             = "MIT"
}
`)
	write(t, dir, "b.hcl", `
variable "shared" { default = "arn:aws:lambda:us-east-1:000000000000:layer:shared:3" }
layer "tools" {
  code = "./tools.zip"
}
function "api" {
  runtime = "provided.al2023"
  code    = "build"
  layers  = [layer.deps, var.shared, layer.tools]
}
function "plain" {
  runtime = "provided.al2023"
  code    = "build"
}
function "listed" {
  runtime = "provided.al2023"
  code    = "build"
  layers  = [var.shared]
}
`)
	ff, _, diags := LoadFunctionFiles(Inputs{}, dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(ff.Layers) != 2 || len(ff.Functions) != 3 {
		t.Fatalf("decoded %d layers and %d functions", len(ff.Layers), len(ff.Functions))
	}
	deps := *ff.Layers[0]
	deps.DeclRange = ff.Layers[0].DeclRange
	want := Layer{Name: "deps", Code: filepath.Join(dir, "deps"), Description: "node_modules",
		CompatibleRuntimes: []string{"nodejs20.x", "provided.al2023"}, CompatibleArchitectures: []string{"x86_64"},
		LicenseInfo: "MIT", DeclRange: deps.DeclRange}
	if !reflect.DeepEqual(deps, want) || deps.DeclRange.Start.Line != 2 {
		t.Fatalf("layer deps decoded as %+v", deps)
	}
	if tools := ff.Layers[1]; tools.Name != "tools" || tools.Code != filepath.Join(dir, "tools.zip") || tools.Description != "" || tools.CompatibleRuntimes != nil {
		t.Fatalf("layer tools decoded as %+v", tools)
	}
	refs := ff.Functions[0].Layers
	if len(refs) != 3 || refs[0].Layer != "deps" || refs[0].ARN != "" || refs[1].ARN != "arn:aws:lambda:us-east-1:000000000000:layer:shared:3" ||
		refs[1].Layer != "" || refs[2].Layer != "tools" {
		t.Fatalf("layers decoded as %+v", refs)
	}
	if r := refs[0].Range; r.Start.Line != 9 || r.Start.Column != 14 || !strings.HasSuffix(r.Filename, "b.hcl") {
		t.Errorf("layer.deps is at %s", r)
	}
	if ff.Functions[1].Layers != nil {
		t.Errorf("a function without layers has %+v", ff.Functions[1].Layers)
	}
	// A list that is not written out holds ARNs.
	if refs := ff.Functions[2].Layers; len(refs) != 1 || refs[0].ARN != "arn:aws:lambda:us-east-1:000000000000:layer:shared:3" {
		t.Errorf("layers = var.list decoded as %+v", refs)
	}
	// LoadFunctions returns the same functions.
	if fns, _, diags := LoadFunctions(dir); diags.HasErrors() || len(fns) != 3 || len(fns[0].Layers) != 3 {
		t.Errorf("LoadFunctions: %d functions, %v", len(fns), diags)
	}
}

// TestLayerDiagnostics: every mistake of a layer block or a function's layers names its line
// and column.
func TestLayerDiagnostics(t *testing.T) {
	fn := func(layers string) string {
		return "layer \"deps\" {\n  code = \"deps\"\n}\nfunction \"f\" {\n  runtime = \"provided\"\n  code = \"build\"\n  layers = " + layers + "\n}\n"
	}
	arn := func(name, version string) string {
		return `"arn:aws:lambda:us-east-1:000000000000:layer:` + name + `:` + version + `"`
	}
	cases := []struct{ name, src, at, summary string }{
		{"name", "layer \"deps layer\" {\n  code = \"deps\"\n}\n", ":1:7", "Invalid layer name"},
		{"no code", "layer \"deps\" {\n  description = \"x\"\n}\n", ":1:1", "Missing code"},
		{"null code", "layer \"deps\" {\n  code = null\n}\n", ":1:1", "Missing code"},
		{"code not found", "layer \"deps\" {\n  code = \"missing\"\n}\n", ":2:10", "Code not found"},
		{"code not a zip", "layer \"deps\" {\n  code = \"f.hcl\"\n}\n", ":2:10", "Invalid code"},
		{"runtime", "layer \"deps\" {\n  code = \"deps\"\n  compatible_runtimes = [\"NodeJS 20\"]\n}\n", ":3:25", "Invalid compatible_runtimes"},
		{"architecture", "layer \"deps\" {\n  code = \"deps\"\n  compatible_architectures = [\"x86\"]\n}\n", ":3:30", "Invalid compatible_architectures"},
		{"description", "layer \"deps\" {\n  code = \"deps\"\n  description = \"" + strings.Repeat("d", 257) + "\"\n}\n", ":3:17", "Invalid description"},
		{"license", "layer \"deps\" {\n  code = \"deps\"\n  license_info = \"" + strings.Repeat("l", 513) + "\"\n}\n", ":3:18", "Invalid license_info"},
		{"unknown attribute", "layer \"deps\" {\n  code = \"deps\"\n  runtime = \"provided\"\n}\n", ":3:3", "Unsupported argument"},
		{"duplicate", "layer \"deps\" {\n  code = \"deps\"\n}\n\nlayer \"deps\" {\n  code = \"deps\"\n}\n", ":5:1", "Duplicate layer"},
		{"unknown layer", fn("[layer.deps, layer.nope]"), ":7:25", "Unknown layer"},
		{"reference", fn("[layer.deps.arn]"), ":7:13", "Invalid layer reference"},
		{"indexed reference", fn(`[layer["deps"]]`), ":7:13", "Invalid layer reference"},
		{"not a list", fn("layer.deps"), ":7:12", "Invalid layers"},
		{"function ARN", fn(`["arn:aws:lambda:us-east-1:000000000000:function:f"]`), ":7:13", "Invalid layer ARN"},
		{"ARN without a version", fn(`["arn:aws:lambda:us-east-1:000000000000:layer:deps"]`), ":7:13", "Invalid layer ARN"},
		{"version 0", fn("[layer.deps, " + arn("other", "0") + "]"), ":7:25", "Invalid layer ARN"},
		{"ARN name", fn("[" + arn("a.b", "1") + "]"), ":7:13", "Invalid layer ARN"},
		{"not a string", fn("[layer.deps, {}]"), ":7:25", "Unsuitable value type"},
		{"six", fn("[layer.deps, " + arn("a", "1") + ", " + arn("b", "1") + ", " + arn("c", "1") + ", " + arn("d", "1") + ", " + arn("e", "1") + "]"), ":7:12", "Invalid layers"},
		{"twice", fn("[layer.deps, " + arn("deps", "1") + "]"), ":7:12", "Invalid layers"},
		{"image", "layer \"deps\" {\n  code = \"deps\"\n}\nfunction \"f\" {\n  package_type = \"Image\"\n  image_uri = \"r.example/f:1\"\n  layers = [layer.deps]\n}\n", ":7:12", "Invalid layers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := layerDir(t)
			p := write(t, dir, "f.hcl", c.src)
			_, files, diags := LoadFunctionFiles(Inputs{}, p)
			var b strings.Builder
			_ = files.WriteDiagnostics(&b, diags)
			if !diags.HasErrors() || !strings.Contains(b.String(), "f.hcl"+c.at) || !strings.Contains(b.String(), ": error: "+c.summary) {
				t.Fatalf("want %q at f.hcl%s, got:\n%s", c.summary, c.at, b.String())
			}
		})
	}
	// A layer block of another file may be named; a duplicate across files is an error.
	dir := layerDir(t)
	write(t, dir, "a.hcl", "layer \"deps\" {\n  code = \"deps\"\n}\n")
	write(t, dir, "b.hcl", "function \"f\" {\n  runtime = \"provided\"\n  code = \"build\"\n  layers = [layer.deps]\n}\n")
	if _, _, diags := LoadFunctionFiles(Inputs{}, dir); diags.HasErrors() {
		t.Fatalf("a layer of another file: %v", diags)
	}
	write(t, dir, "c.hcl", "layer \"deps\" {\n  code = \"deps\"\n}\n")
	if _, _, diags := LoadFunctionFiles(Inputs{}, dir); !diags.HasErrors() || !strings.Contains(diags.Error(), "c.hcl:1,1-13: Duplicate layer") {
		t.Fatalf("a duplicate across files: %v", diags)
	}
}
