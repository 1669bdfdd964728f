// Package layout holds a test that keeps the dependency arrows of DESIGN.md section 2 pointing one
// way: cmd -> internal/agent -> {gateway, cluster, sandbox, plugin host} -> {shared types, config}.
package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lambdagw/gateway"

// forbidden lists, per folder, the module folders its packages must not depend on, directly or
// not. The longest matching folder applies; "*" means nothing of the module but shared types;
// "=folder" is that folder's package alone, not the folders under it.
var forbidden = map[string][]string{
	"internal/structs": {"*"},
	"internal/unpack":  {"*"},
	// The invocation as gateway, router and sandbox hand it on: shared by all, owned by none.
	"internal/invoke": {"*"},
	// The HTTP front door sees invocations, never environments.
	"gateway/httpapi": {"sandbox", "internal/agent", "cmd", "config"},
	"config":          {"sandbox", "cluster", "gateway", "internal/agent", "internal/lambda", "plugins", "cmd"},
	"sandbox":         {"cluster", "gateway", "config", "internal/agent", "plugins", "cmd"},
	"cluster":         {"sandbox", "gateway", "config", "internal/agent", "plugins", "cmd"},
	// The router reaches environments through its Local interface; the agent wires the sandbox in.
	"gateway":         {"internal/agent", "cmd", "config", "sandbox"},
	"gateway/api":     {"sandbox", "cluster", "gateway/httpapi", "internal/agent", "cmd"},
	"internal/lambda": {"sandbox", "cluster", "gateway", "config", "internal/agent", "cmd"},
	"internal/agent":  {"cmd"},
	// The plan/apply reconciler talks to an agent through its API client only.
	"internal/reconcile": {"sandbox", "cluster", "=gateway", "gateway/httpapi", "internal/agent", "plugins", "cmd"},
	// The SDK is what third parties import: nothing of the host (DESIGN.md section 6).
	"plugins/sdk": {"cluster", "config", "gateway", "internal", "sandbox", "cmd", "integration", "examples",
		"plugins/host", "plugins/queue", "plugins/stream", "plugins/s3"},
}

func under(rel, folder string) bool { return rel == folder || strings.HasPrefix(rel, folder+"/") }

func TestDependenciesPointOneWay(t *testing.T) {
	for _, line := range goList(t, "-deps=false", "-f", "{{.ImportPath}}", "./...") {
		rel := strings.TrimPrefix(strings.TrimPrefix(line, module), "/")
		rule := ""
		for folder := range forbidden {
			if under(rel, folder) && len(folder) > len(rule) {
				rule = folder
			}
		}
		if rule == "" {
			continue
		}
		for _, dep := range goList(t, "-deps", "-f", "{{.ImportPath}}", line) {
			if !strings.HasPrefix(dep, module+"/") || dep == line {
				continue
			}
			drel := strings.TrimPrefix(dep, module+"/")
			for _, bad := range forbidden[rule] {
				exact, isExact := strings.CutPrefix(bad, "=")
				switch {
				case bad == "*" && !under(drel, "internal/structs"),
					isExact && drel == exact,
					bad != "*" && !isExact && under(drel, bad):
					t.Errorf("%s depends on %s, against DESIGN.md section 2", line, dep)
				}
			}
		}
	}
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %v: %v\n%s", args, err, msg)
	}
	return strings.Fields(string(out))
}
