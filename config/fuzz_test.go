package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/lambdagw/gateway/internal/structs"
)

// FuzzLoadConfig feeds the same source to both loaders, as an agent file and as a function
// file. Neither may panic; a result without errors must be valid; every error must have a
// summary and point at a place inside the file it came from (the file:line:column promise),
// and the diagnostics must render.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(`node_name = "gw1"
data_dir  = "data"
http { address = "127.0.0.1:9500" }
cluster {
  address   = "127.0.0.1:9501"
  bootstrap = true
}
sandbox {
  driver       = "process"
  idle_timeout = "10m"
  freeze_delay = 0.5
}
`))
	f.Add([]byte(`access_key "ci" {
  id     = "AKIAIOSFODNN7EXAMPLE"
  secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
  policy = "invoke"
}
plugin "queue" {
  path     = "./q"
  checksum = "sha256:fc0402fbeb0a6732af65f40f0e851c86ceaea041c8cdb7e111d8e0475b0242d3"
}
nats { listen = "127.0.0.1:4222" }
`))
	f.Add([]byte(`variable "mem" { default = 256 }
function "hello" {
  runtime     = "provided.al2023"
  code        = "."
  memory_mb   = var.mem
  timeout     = "30s"
  environment = { GREETING = trimspace(" hi ") }
  url {
    auth_type   = "NONE"
    invoke_mode = "RESPONSE_STREAM"
    cors { allow_origins = ["*"] }
  }
  alias "live" {
    version = 1
    routing = { "2" = 0.1 }
  }
  provisioned_concurrency {
    qualifier = "live"
    count     = 1
  }
  trigger "orders" {
    plugin     = "queue"
    source     = "orders"
    batch_size = 10
  }
}
`))
	f.Add([]byte("function \"f\" {\n  runtime = \"provided\"\n  code = \"${\"\n}\n"))
	f.Add([]byte(`layer "deps" {
  code                = "."
  compatible_runtimes = ["provided.al2023"]
}
function "f" {
  runtime = "provided.al2023"
  code    = "."
  layers  = [layer.deps, "arn:aws:lambda:us-east-1:000000000000:layer:shared:2"]
}
`))
	f.Fuzz(func(t *testing.T, src []byte) {
		// The loaders read the files a configuration names (secret_file, ca, seccomp, file()):
		// device files would block or never end, which is the operator's business, not a bug.
		for _, special := range []string{"/dev", "/proc", "/sys"} {
			if bytes.Contains(src, []byte(special)) {
				t.Skip("names a special file")
			}
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "in.hcl")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}

		a, files, diags := LoadAgent(path)
		checkDiagnostics(t, "agent", path, src, files, diags)
		if !diags.HasErrors() {
			if a == nil {
				t.Fatal("agent: no configuration and no error")
			}
			if a.NodeName == "" || a.Sandbox.MaxEnvironments < 1 || a.Sandbox.PidsLimit < 16 ||
				(a.Sandbox.Driver != "libcontainer" && a.Sandbox.Driver != "process") {
				t.Fatalf("agent: invalid configuration without an error: %+v", a)
			}
		}

		fns, files, diags := LoadFunctions(path)
		checkDiagnostics(t, "functions", path, src, files, diags)
		if !diags.HasErrors() {
			for _, fn := range fns {
				checkFunction(t, fn)
			}
		}
	})
}

// checkDiagnostics checks what every diagnostic of a file that was read must satisfy.
func checkDiagnostics(t *testing.T, what, path string, src []byte, files *Files, diags hcl.Diagnostics) {
	t.Helper()
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if strings.TrimSpace(d.Summary) == "" {
			t.Errorf("%s: an error without a summary: %+v", what, d)
		}
		if d.Subject == nil {
			t.Errorf("%s: error %q has no file:line", what, d.Summary)
			continue
		}
		s := d.Subject
		lines := bytes.Count(src, []byte("\n")) + 1
		if s.Filename != path || s.Start.Line < 1 || s.End.Line > lines || s.Start.Byte > s.End.Byte || s.End.Byte > len(src) {
			t.Errorf("%s: error %q points at %s (%d-%d), outside %s (%d lines, %d bytes)",
				what, d.Summary, s, s.Start.Byte, s.End.Byte, path, lines, len(src))
		}
	}
	var out strings.Builder
	if err := files.WriteDiagnostics(&out, diags); err != nil {
		t.Fatalf("%s: rendering diagnostics: %v", what, err)
	}
	for _, d := range diags {
		if d.Subject != nil && !strings.Contains(out.String(), fmt.Sprintf("%s:%d:%d: ", path, d.Subject.Start.Line, d.Subject.Start.Column)) {
			t.Errorf("%s: the rendered diagnostics lack %q's file:line:column:\n%s", what, d.Summary, out.String())
		}
	}
}

// checkFunction checks the limits a function the loader accepted must be within.
func checkFunction(t *testing.T, fn *Function) {
	t.Helper()
	switch {
	case fn == nil:
		t.Fatal("functions: a nil function without an error")
	case !structs.ValidFunctionName(fn.Name):
		t.Errorf("functions: accepted name %q", fn.Name)
	case !slices.Contains(structs.Runtimes, fn.Runtime):
		t.Errorf("functions: accepted runtime %q", fn.Runtime)
	case fn.MemoryMB < structs.MinMemoryMB || fn.MemoryMB > structs.MaxMemoryMB:
		t.Errorf("functions: accepted memory_mb %d", fn.MemoryMB)
	case fn.Timeout < structs.MinTimeout || fn.Timeout > structs.MaxTimeout:
		t.Errorf("functions: accepted timeout %s", fn.Timeout)
	case fn.Code == "":
		t.Errorf("functions: accepted function %s without code", fn.Name)
	case len(fn.Layers) > structs.MaxLayersPerFunction:
		t.Errorf("functions: accepted %d layers", len(fn.Layers))
	}
	for _, a := range fn.Aliases {
		if !structs.ValidAlias(a.Name) {
			t.Errorf("functions: accepted alias %q", a.Name)
		}
	}
	for _, tr := range fn.Triggers {
		if err := tr.Validate(); err != nil {
			t.Errorf("functions: accepted a trigger the gateway refuses: %v", err)
		}
	}
}
