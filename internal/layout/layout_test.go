// Package layout holds a test that keeps the dependency arrows of DESIGN.md section 2 pointing one
// way: cmd -> internal/agent -> {gateway, cluster, sandbox, plugin host} -> {shared types, config}.
package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lambdagw/gateway/"

// forbidden lists, per package pattern, the module packages it must not depend on (directly or
// not). A prefix ending in "/" covers the folder and everything under it.
var forbidden = map[string][]string{
	"./internal/structs/...": {""}, // imports nothing of the module
	"./config/...":           {"sandbox", "cluster", "gateway", "internal/agent", "internal/lambda", "plugins", "cmd"},
	"./sandbox/...":          {"cluster", "gateway", "config", "internal/agent", "plugins", "cmd"},
	"./cluster/...":          {"sandbox", "gateway", "config", "internal/agent", "plugins", "cmd"},
	"./gateway/...":          {"internal/agent", "cmd", "config"},
	"./gateway/api/...":      {"sandbox", "cluster", "gateway/httpapi", "internal/agent", "cmd"},
	"./internal/lambda/...":  {"sandbox", "cluster", "gateway", "config", "internal/agent", "cmd"},
	"./internal/agent/...":   {"cmd"},
}

func TestDependenciesPointOneWay(t *testing.T) {
	for pattern, bad := range forbidden {
		pattern, bad := pattern, bad
		t.Run(pattern, func(t *testing.T) {
			pkgs := goList(t, "-f", "{{.ImportPath}}", pattern)
			for _, pkg := range pkgs {
				for _, dep := range goList(t, "-deps", "-f", "{{.ImportPath}}", pkg) {
					if !strings.HasPrefix(dep, module) || dep == pkg {
						continue
					}
					rel := strings.TrimPrefix(dep, module)
					for _, b := range bad {
						if b == "" && pattern == "./internal/structs/..." && !strings.HasPrefix(rel, "internal/structs") {
							t.Errorf("%s imports %s: shared types import nothing of the module", pkg, dep)
						}
						if b != "" && (rel == b || strings.HasPrefix(rel, b+"/")) {
							t.Errorf("%s depends on %s, against DESIGN.md section 2", pkg, dep)
						}
					}
				}
			}
		})
	}
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}
