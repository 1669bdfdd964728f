package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVariablesAndFunctions(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "motd.txt")
	if err := os.WriteFile(secret, []byte("  hello from a file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vars := write("vars.hcl", `
variable "memory" { default = 256 }
variable "stage" {}
variable "greeting" { default = "hi" }
`)
	fns := write("fns.hcl", `
function "app" {
  runtime     = "provided.al2023"
  code        = "./build"
  memory_mb   = var.memory
  description = "app in ${var.stage}"
  environment = {
    GREETING = var.greeting
    MOTD     = trimspace(file("`+secret+`"))
    SUM      = filesha256("`+secret+`")
    HOME_DIR = env("HOME")
  }
}
`)
	varFile := write("prod.vars", `greeting = "from the var file"`)
	t.Setenv("GATEWAY_VAR_memory", "512")
	got, _, diags := LoadFunctionsWith(Inputs{Vars: map[string]string{"stage": "prod"}, VarFiles: []string{varFile}}, vars, fns)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	fn := got[0]
	if fn.MemoryMB != 512 || fn.Description != "app in prod" || fn.Environment["GREETING"] != "from the var file" ||
		fn.Environment["MOTD"] != "hello from a file" || len(fn.Environment["SUM"]) != 64 || fn.Environment["HOME_DIR"] != os.Getenv("HOME") {
		t.Errorf("function: %+v", fn)
	}

	for name, c := range map[string]struct {
		in   Inputs
		want string
	}{
		"no value":        {Inputs{}, "No value for variable"},
		"undeclared -var": {Inputs{Vars: map[string]string{"stage": "x", "nope": "1"}}, "Undeclared variable"},
	} {
		_, files, diags := LoadFunctionsWith(c.in, vars, fns)
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, diags, c.want)
		}
		var b strings.Builder
		_ = files.WriteDiagnostics(&b, diags)
		if c.want == "No value for variable" && !strings.Contains(b.String(), "vars.hcl:3") {
			t.Errorf("%s: the diagnostic does not point at the variable block:\n%s", name, b.String())
		}
	}
}
