// Package layout holds the tests that keep the dependency arrows of DESIGN.md section 2 pointing
// one way: cmd -> internal/agent -> {gateway, cluster, sandbox, plugin host} -> {shared types,
// config, plugins/sdk}. Every package gets its rule here; internal/doc.go says which role each
// folder of internal/ plays.
package layout

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/lambdagw/gateway"

// The folders the rules name more than once.
var (
	// builtins are the built-in trigger plugins: main packages written as a third party's.
	builtins = []string{"plugins/queue", "plugins/stream", "plugins/s3"}
	// host is everything of the gateway a plugin must not see.
	host = []string{"cluster", "config", "gateway", "sandbox", "cmd", "internal/agent", "plugins/host", "integration",
		"examples"}
	// sdk is what the SDK and the plugins built on it must not depend on: nothing of the host,
	// nothing internal (a third party cannot import it), no built-in plugin.
	sdk = cat(host, []string{"internal"}, builtins)
)

// fixtures holds the test fixtures: programs and servers tests build or start. Only tests (and
// other fixtures) may depend on them; TestFixturesOnlyInTests holds it.
const fixtures = "internal/testfixtures"

// forbidden lists, per folder, the module folders its packages must not depend on, directly or
// not. The longest matching folder applies. "*" means nothing of the module outside the folder
// itself but the shared types (internal/structs); "=folder" is that folder's package alone, not
// the folders under it.
var forbidden = map[string][]string{
	// Shared types.
	"internal/structs": {"*"},
	"internal/lambda":  {"sandbox", "cluster", "gateway", "config", "internal/agent", "plugins", "cmd"},
	// The invocation as gateway, router and sandbox hand it on: shared by all, owned by none.
	"internal/invoke": {"*"},
	// Configuration.
	"config": {"sandbox", "cluster", "gateway", "internal/agent", "internal/lambda", "plugins", "cmd"},
	// The invocation core and its HTTP front door. The router reaches environments through its
	// Local interface (the agent wires the sandbox in); the HTTP layer sees invocations, never
	// environments.
	"gateway":         cat([]string{"internal/agent", "cmd", "config", "sandbox"}, builtins),
	"gateway/httpapi": cat([]string{"internal/agent", "cmd", "config", "sandbox", "plugins/host"}, builtins),
	"gateway/api":     {"sandbox", "cluster", "gateway/httpapi", "internal/agent", "cmd"},
	"sandbox":         {"cluster", "gateway", "config", "internal/agent", "plugins", "cmd"},
	"cluster":         {"sandbox", "gateway", "config", "internal/agent", "plugins", "cmd"},
	// The plugin host: shared types, config and the SDK below it; no built-in plugin (it runs
	// them as binaries).
	"plugins/host": cat([]string{"cluster", "gateway", "sandbox", "internal/agent", "cmd"}, builtins),
	// The plan/apply reconciler talks to an agent through its API client only.
	"internal/reconcile": {"sandbox", "cluster", "=gateway", "gateway/httpapi", "internal/agent", "plugins", "cmd"},
	// The composition root.
	"internal/agent": {"cmd"},
	// The SDK is what third parties import: nothing of the host (DESIGN.md section 6).
	"plugins/sdk": sdk,
	// The NATS conventions are shared by the agent (which publishes) and the triggers (which
	// consume): plain names and helpers over nats.go, nothing of the module at all.
	"plugins/sdk/natsq":      {"*", "internal"},
	"plugins/sdk/natsstream": {"*", "internal"},
	// The built-in triggers are written as a third party's: the SDK and nothing else of ours.
	"plugins/queue":  sdk,
	"plugins/stream": sdk,
	"plugins/s3":     sdk,
	// Infrastructure: self-contained pieces the layers above put together.
	"internal/natsengine": {"*"},
	// The durable queue of asynchronous invocations: JetStream below the gateway, which decides.
	"internal/asyncq":  {"sandbox", "cluster", "gateway", "config", "internal/agent", "plugins", "cmd"},
	"internal/funclog": {"*"},
	// Span export with the OpenTelemetry SDK, behind invoke.Tracer: the invocation types only.
	"internal/tracing": {"sandbox", "cluster", "gateway", "config", "internal/agent", "plugins", "cmd"},
	// The node's Prometheus registry: the layers count through interfaces of their own.
	"internal/metrics": {"*"},
	"internal/pki":     {"*"},
	"internal/unpack":  {"*"},
	// Code signatures: Sigstore's formats and sigstore-go, nothing of the module but the shared types.
	"internal/signing": {"*"},
	"internal/codepkg": {"sandbox", "cluster", "gateway", "config", "internal/agent", "plugins", "cmd"},
	"internal/image":   {"sandbox", "cluster", "gateway", "config", "internal/agent", "plugins", "cmd", "internal/codepkg", "internal/funclog"},
	// The examples use public APIs only (DESIGN.md section 2): for the functions, none of ours.
	"examples": {"*", "internal"},
	// Test fixtures stand apart from the gateway they test (the test plugin uses the SDK only).
	fixtures: cat(host, builtins, []string{"internal/natsengine", "internal/pki", "internal/funclog"}),
}

// sdkImports lists, per SDK folder, the modules outside the standard library and this module its
// packages may import (DESIGN.md section 2: go-plugin, grpc, hclog; protobuf for the generated
// code). The longest matching folder applies.
var sdkImports = map[string][]string{
	"plugins/sdk": {"github.com/hashicorp/go-plugin", "github.com/hashicorp/go-hclog", "google.golang.org/grpc",
		"google.golang.org/protobuf"},
	// The NATS helpers are packages of their own, so a plugin that reads no NATS pulls none of it.
	"plugins/sdk/natssource": {"github.com/hashicorp/go-hclog", "github.com/nats-io/"},
	"plugins/sdk/natsq":      {"github.com/nats-io/"},
	"plugins/sdk/natsstream": {"github.com/nats-io/"},
}

func cat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func under(rel, folder string) bool { return rel == folder || strings.HasPrefix(rel, folder+"/") }

// rule is the longest folder of rules that holds rel, or "".
func rule[T any](rules map[string]T, rel string) string {
	best := ""
	for folder := range rules {
		if under(rel, folder) && len(folder) > len(best) {
			best = folder
		}
	}
	return best
}

// pkg is a package of the module: its folder and the module folders it depends on (not counting
// its tests' imports), and its direct imports.
type pkg struct {
	rel     string
	deps    []string
	imports []string
}

func TestDependenciesPointOneWay(t *testing.T) {
	for _, p := range packages(t) {
		r := rule(forbidden, p.rel)
		if r == "" {
			continue
		}
		for _, drel := range p.deps {
			for _, bad := range forbidden[r] {
				exact, isExact := strings.CutPrefix(bad, "=")
				switch {
				case bad == "*" && !under(drel, "internal/structs") && !under(drel, r),
					isExact && drel == exact,
					bad != "*" && !isExact && under(drel, bad):
					t.Errorf("%s depends on %s, against DESIGN.md section 2 (rule %q)", p.rel, drel, r)
				}
			}
		}
	}
}

// TestEveryPackageHasARule keeps the rules complete: a new folder gets its rule (DESIGN.md's
// table) when it is made.
func TestEveryPackageHasARule(t *testing.T) {
	for _, p := range packages(t) {
		// internal itself is documentation only (internal/doc.go); cmd and integration may
		// import anything.
		if rule(forbidden, p.rel) == "" && p.rel != "internal" && !under(p.rel, "integration") &&
			!under(p.rel, "cmd") && !under(p.rel, "internal/layout") {
			t.Errorf("%s has no rule in forbidden", p.rel)
		}
	}
}

// TestFixturesOnlyInTests: the fixtures are built or started by tests, never linked into the
// gateway (or anything else that is not a test).
func TestFixturesOnlyInTests(t *testing.T) {
	for _, p := range packages(t) {
		if under(p.rel, fixtures) {
			continue
		}
		for _, drel := range p.deps {
			if under(drel, fixtures) {
				t.Errorf("%s depends on the test fixture %s", p.rel, drel)
			}
		}
	}
}

// TestSDKImportsOnlyItsModules: a third party's plugin pulls in the SDK's dependencies, so they
// stay few.
func TestSDKImportsOnlyItsModules(t *testing.T) {
	for _, p := range packages(t) {
		r := rule(sdkImports, p.rel)
		if r == "" {
			continue
		}
	imports:
		for _, imp := range p.imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") || strings.HasPrefix(imp, module+"/") {
				continue // the standard library; this module's folders are TestDependenciesPointOneWay's
			}
			for _, ok := range sdkImports[r] {
				if strings.HasPrefix(imp, ok) {
					continue imports
				}
			}
			t.Errorf("%s imports %s, which the SDK's rule %q does not allow", p.rel, imp, r)
		}
	}
}

// packages lists the module's packages (one go list for all, as each test needs them all).
func packages(t *testing.T) []pkg {
	t.Helper()
	var out []pkg
	for _, line := range goList(t, "-f", "{{.ImportPath}}|{{join .Deps \" \"}}|{{join .Imports \" \"}}", "./...") {
		f := strings.Split(line, "|")
		p := pkg{rel: rel(f[0]), imports: strings.Fields(f[2])}
		for _, d := range strings.Fields(f[1]) {
			if strings.HasPrefix(d, module+"/") {
				p.deps = append(p.deps, rel(d))
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	if len(out) < 10 {
		t.Fatalf("go list found only %d packages", len(out))
	}
	return out
}

func rel(importPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
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
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
