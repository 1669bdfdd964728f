package reconcile_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/reconcile"
	"github.com/lambdagw/gateway/internal/structs"
)

// codeDir is a code folder holding a bootstrap with content, and its package.
func codeDir(t *testing.T, content string) (string, *codepkg.Package) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	pkg, err := codepkg.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, pkg
}

// function is a block as config decodes it.
func function(name, code string) *config.Function {
	return &config.Function{Name: name, Runtime: "provided.al2023", Handler: "bootstrap", Code: code, MemoryMB: 128,
		Timeout: 3 * time.Second, EphemeralStorageMB: 512, Environment: map[string]string{}}
}

func trigger(name, source string) *config.Trigger {
	return &config.Trigger{Trigger: structs.Trigger{Name: name, Plugin: "queue", Source: source, MaximumRetryAttempts: -1, Enabled: true}}
}

type step struct {
	kind reconcile.Kind
	text string
}

func steps(changes []reconcile.Change) []step {
	var out []step
	for _, c := range changes {
		out = append(out, step{c.Kind, c.Text})
	}
	return out
}

// plan plans fn and fails the test on an error.
func plan(t *testing.T, r *reconcile.Reconciler, fn *config.Function) []reconcile.Change {
	t.Helper()
	changes, err := r.Plan(context.Background(), fn)
	if err != nil {
		t.Fatalf("plan %s: %v", fn.Name, err)
	}
	return changes
}

// apply plans and applies fn, and returns what apply said and the progress lines.
func apply(t *testing.T, r *reconcile.Reconciler, fn *config.Function) (done, progress []string) {
	t.Helper()
	done, err := r.Apply(context.Background(), plan(t, r, fn), func(function, line string) {
		progress = append(progress, function+": "+line)
	})
	if err != nil {
		t.Fatalf("apply %s: %v", fn.Name, err)
	}
	return done, progress
}

// converged checks that a plan after apply finds nothing to do.
func converged(t *testing.T, r *reconcile.Reconciler, g *fakeAgent, fn *config.Function) {
	t.Helper()
	if again := plan(t, r, fn); len(again) != 0 {
		t.Errorf("a plan after apply: %v", steps(again))
	}
	if w := g.take(); len(w) != 0 {
		t.Errorf("a plan wrote %q", w)
	}
}

// TestCreate: a function the agent lacks is created with everything its block declares, in
// the order that lets each step name the previous ones; plan writes nothing, and once applied
// there is nothing left to do.
func TestCreate(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, pkg := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	three := 3
	fn.Publish, fn.ReservedConcurrency = true, &three
	fn.Aliases = []*config.Alias{{Name: "live", Version: "1"}}
	fn.Provisioned = []*config.Provisioned{{Qualifier: "live", Count: 2}}
	fn.URL = &config.FunctionURL{AuthType: "NONE", InvokeMode: "BUFFERED"}
	orders := trigger("orders", "orders")
	orders.Qualifier = "live"
	fn.Triggers = []*config.Trigger{orders}

	zip := reconcile.Size(pkg.Size)
	want := []step{
		{reconcile.Create, "to create (" + zip + " zip to upload)"},
		{reconcile.Publish, "version 1 to publish"},
		{reconcile.Reserved, "reserved_concurrency none -> 3"},
		{reconcile.Alias, "alias live to create (-> 1)"},
		{reconcile.Provisioned, "provisioned_concurrency live none -> 2"},
		{reconcile.Provisioned, ""}, // the wait, which plan does not show
		{reconcile.URL, "URL to create"},
		{reconcile.Trigger, "trigger orders to create (queue: orders -> live)"},
	}
	changes := plan(t, r, fn)
	if got := steps(changes); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%v\nwant\n%v", got, want)
	}
	if w := g.take(); len(w) != 0 {
		t.Fatalf("plan wrote %q", w)
	}
	for _, c := range changes {
		if c.Function != "fn" {
			t.Errorf("a change of %q", c.Function)
		}
	}

	done, progress := apply(t, r, fn)
	wantDone := []string{"created (code: " + zip + " zip uploaded)", "version 1 published", "reserved_concurrency none -> 3",
		"alias live created (-> 1)", "provisioned_concurrency live none -> 2", "provisioned environments ready in 0s",
		"URL http://fn.lambda-url.localhost/ created", "trigger orders created (queue: orders -> live)"}
	done[5] = regexp.MustCompile(`in \S+$`).ReplaceAllString(done[5], "in 0s")
	if !reflect.DeepEqual(done, wantDone) {
		t.Errorf("apply said:\n%q\nwant\n%q", done, wantDone)
	}
	if want := []string{"fn: waiting for 2 provisioned environment(s) to finish Init"}; !reflect.DeepEqual(progress, want) {
		t.Errorf("progress %q, want %q", progress, want)
	}
	wantWrites := []string{"POST /2015-03-31/functions", "POST /2015-03-31/functions/fn/versions",
		"PUT /2017-10-31/functions/fn/concurrency", "POST /2015-03-31/functions/fn/aliases",
		"PUT /2019-09-30/functions/fn/provisioned-concurrency?Qualifier=live", "POST /2021-10-31/functions/fn/url",
		"PUT /v1/functions/fn/triggers/orders"}
	if w := g.take(); !reflect.DeepEqual(w, wantWrites) {
		t.Errorf("writes:\n%q\nwant\n%q", w, wantWrites)
	}
	if c := g.fns["fn"]; c.MemorySize != 128 || c.Timeout != 3 || c.CodeSha256 != pkg.Base64Sha256() {
		t.Errorf("created %+v", c)
	}
	converged(t, r, g, fn)
}

// TestSharedCodeUploadedOnce: a second function of the same code folder names the zip the
// agent got with the first instead of uploading it again.
func TestSharedCodeUploadedOnce(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, pkg := codeDir(t, "#!/bin/sh\n")
	apply(t, r, function("a", code))
	done, _ := apply(t, r, function("b", code))
	if want := "created (code: " + reconcile.Size(pkg.Size) + " zip already on the agent)"; len(done) != 1 || done[0] != want {
		t.Errorf("the second function: %q, want %q", done, want)
	}
}

// existing makes the agent hold fn as its block says (through the reconciler) and forgets
// the writes.
func existing(t *testing.T, g *fakeAgent, r *reconcile.Reconciler, fn *config.Function) {
	t.Helper()
	apply(t, r, fn)
	g.take()
}

// TestUnchanged: a function equal to its block plans nothing and applies nothing.
func TestUnchanged(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	fn.Environment = map[string]string{"A": "1"}
	fn.Publish = true
	existing(t, g, r, fn)
	converged(t, r, g, fn)
	if done, err := r.Apply(context.Background(), nil, nil); err != nil || len(done) != 0 || len(g.take()) != 0 {
		t.Errorf("applying no changes: %q, %v", done, err)
	}
	// A change made by hand has nothing to apply.
	if _, err := r.Apply(context.Background(), []reconcile.Change{{Function: "fn", Kind: reconcile.Alias, Text: "alias x to create"}}, nil); err == nil {
		t.Error("a change Plan did not make was applied")
	}
}

// TestConfigChangeHidesEnvironment: a configuration change names the environment variables
// that differ without their values, unless ShowSensitive; apply sends the values.
func TestConfigChangeHidesEnvironment(t *testing.T) {
	g := newFakeAgent()
	client := g.start(t)
	r := reconcile.New(client, reconcile.Options{})
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	fn.Environment = map[string]string{"TOKEN": "old-secret", "GONE": "bye"}
	existing(t, g, r, fn)

	fn.Environment = map[string]string{"TOKEN": "new-secret", "ADDED": "plain"}
	fn.MemoryMB = 256
	want := []step{{reconcile.UpdateConfig, "configuration to update (memory_mb 128 -> 256, " +
		"environment: + ADDED, - GONE, ~ TOKEN (values hidden; -show-sensitive shows them))"}}
	if got := steps(plan(t, r, fn)); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%v\nwant\n%v", got, want)
	}
	shown := reconcile.New(client, reconcile.Options{ShowSensitive: true})
	if got := reconcile.Lines(plan(t, shown, fn)); len(got) != 1 ||
		!strings.Contains(got[0], `environment: + ADDED = "plain", - GONE = "bye", ~ TOKEN = "old-secret" -> "new-secret")`) {
		t.Fatalf("plan with ShowSensitive: %q", got)
	}
	done, _ := apply(t, r, fn)
	if len(done) != 1 || strings.Contains(done[0], "secret") || !strings.HasPrefix(done[0], "configuration updated (memory_mb 128 -> 256, environment: + ADDED") {
		t.Errorf("apply said %q", done)
	}
	if w := g.take(); !reflect.DeepEqual(w, []string{"PUT /2015-03-31/functions/fn/configuration"}) {
		t.Errorf("writes %q", w)
	}
	if c := g.fns["fn"]; c.MemorySize != 256 || !reflect.DeepEqual(c.Environment.Variables, fn.Environment) {
		t.Errorf("the agent holds %+v %v", c, c.Environment)
	}
	converged(t, r, g, fn)
}

// TestCodeChange: new code is uploaded and, with publish, becomes a new version.
func TestCodeChange(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	fn.Publish = true
	existing(t, g, r, fn)

	fn.Code, _ = codeDir(t, "#!/bin/sh\necho v2\n")
	pkg, _ := codepkg.Build(fn.Code)
	zip := reconcile.Size(pkg.Size)
	want := []step{{reconcile.UpdateCode, "code to update (" + zip + " zip to upload)"}, {reconcile.Publish, "a new version to publish"}}
	if got := steps(plan(t, r, fn)); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%v\nwant\n%v", got, want)
	}
	done, _ := apply(t, r, fn)
	if want := []string{"code updated (" + zip + " zip uploaded)", "version 2 published"}; !reflect.DeepEqual(done, want) {
		t.Errorf("apply said %q, want %q", done, want)
	}
	if g.fns["fn"].CodeSha256 != pkg.Base64Sha256() {
		t.Errorf("the agent's code is %s, want %s", g.fns["fn"].CodeSha256, pkg.Base64Sha256())
	}
	if w := g.take(); !reflect.DeepEqual(w, []string{"PUT /2015-03-31/functions/fn/code", "POST /2015-03-31/functions/fn/versions"}) {
		t.Errorf("writes %q", w)
	}
	converged(t, r, g, fn)
}

// TestDependentChanges: aliases, provisioned concurrency, the URL, triggers and the reserved
// concurrency follow their blocks: changed ones are updated, dropped ones deleted (aliases
// after the triggers that may name them), and apply waits for provisioned environments.
func TestDependentChanges(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	five := 5
	fn.Publish, fn.ReservedConcurrency = true, &five
	fn.Aliases = []*config.Alias{{Name: "live", Version: "1"}, {Name: "old", Version: "1"}}
	fn.Provisioned = []*config.Provisioned{{Qualifier: "live", Count: 1}, {Qualifier: "old", Count: 1}}
	fn.URL = &config.FunctionURL{AuthType: "NONE", InvokeMode: "BUFFERED", Qualifier: "old"}
	fn.Triggers = []*config.Trigger{trigger("kept", "k"), trigger("changed", "c"), trigger("gone", "g")}
	existing(t, g, r, fn)
	g.versions["fn"] = 2 // version 2 was published elsewhere

	fn.ReservedConcurrency = nil
	fn.Aliases = []*config.Alias{{Name: "live", Version: "1", Routing: map[string]float64{"2": 0.1}}}
	fn.Provisioned = []*config.Provisioned{{Qualifier: "live", Count: 2}}
	fn.URL = &config.FunctionURL{AuthType: structs.AuthSigned, InvokeMode: "BUFFERED", Qualifier: "live"}
	changed := trigger("changed", "c")
	changed.BatchSize, changed.Qualifier = 20, "live"
	added := trigger("added", "orders")
	added.Enabled = false
	fn.Triggers = []*config.Trigger{trigger("kept", "k"), changed, added}

	want := []step{
		{reconcile.Reserved, "reserved_concurrency 5 -> none"},
		{reconcile.Alias, "alias live to update (1 -> 1 + 10% to 2)"},
		{reconcile.Provisioned, "provisioned_concurrency live 1 -> 2"},
		{reconcile.Provisioned, "provisioned_concurrency old 1 -> none"},
		{reconcile.Provisioned, ""},
		{reconcile.URL, "URL http://fn--old.lambda-url.localhost/ to delete"},
		{reconcile.URL, "URL to create"},
		{reconcile.Trigger, "trigger changed to update (qualifier none -> live, batch_size default -> 20)"},
		{reconcile.Trigger, "trigger added to create (queue: orders, disabled)"},
		{reconcile.Trigger, "trigger gone to delete"},
		{reconcile.Alias, "alias old to delete"},
	}
	if got := steps(plan(t, r, fn)); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%v\nwant\n%v", got, want)
	}
	done, progress := apply(t, r, fn)
	if len(done) != len(want) || done[6] != "URL http://fn--live.lambda-url.localhost/ created" ||
		done[7] != "trigger changed updated (qualifier none -> live, batch_size default -> 20)" || done[10] != "alias old deleted" ||
		!strings.HasPrefix(done[4], "provisioned environments ready in ") {
		t.Errorf("apply said %q", done)
	}
	if want := []string{"fn: waiting for 2 provisioned environment(s) to finish Init"}; !reflect.DeepEqual(progress, want) {
		t.Errorf("progress %q", progress)
	}
	wantWrites := []string{"DELETE /2017-10-31/functions/fn/concurrency", "PUT /2015-03-31/functions/fn/aliases/live",
		"PUT /2019-09-30/functions/fn/provisioned-concurrency?Qualifier=live", "DELETE /2019-09-30/functions/fn/provisioned-concurrency?Qualifier=old",
		"DELETE /2021-10-31/functions/fn/url?Qualifier=old", "POST /2021-10-31/functions/fn/url?Qualifier=live",
		"PUT /v1/functions/fn/triggers/changed", "PUT /v1/functions/fn/triggers/added", "DELETE /v1/functions/fn/triggers/gone",
		"DELETE /2015-03-31/functions/fn/aliases/old"}
	if w := g.take(); !reflect.DeepEqual(w, wantWrites) {
		t.Errorf("writes:\n%q\nwant\n%q", w, wantWrites)
	}
	if tr := g.triggers["fn"]["changed"]; tr.UUID != "uuid-changed" || tr.BatchSize != 20 || tr.Function != "fn" {
		t.Errorf("the updated trigger: %+v", tr)
	}
	converged(t, r, g, fn)

	// A URL whose settings changed is updated in place.
	fn.URL.AuthType, fn.URL.Cors = "NONE", &structs.CORS{AllowOrigins: []string{"*"}}
	if got := reconcile.Lines(plan(t, r, fn)); !reflect.DeepEqual(got, []string{"URL to update (auth_type SIGNED -> NONE, cors)"}) {
		t.Errorf("plan of a URL change: %q", got)
	}
	apply(t, r, fn)
	if w := g.take(); !reflect.DeepEqual(w, []string{"PUT /2021-10-31/functions/fn/url?Qualifier=live"}) {
		t.Errorf("writes of a URL change: %q", w)
	}
	converged(t, r, g, fn)
}

// TestPrune: the agent's functions no block declares are deleted, in name order, and only
// those.
func TestPrune(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, _ := codeDir(t, "#!/bin/sh\n")
	kept := function("kept", code)
	for _, name := range []string{"zeta", "kept", "alpha"} {
		existing(t, g, r, function(name, code))
	}
	deletions, err := r.Prune(context.Background(), []*config.Function{kept})
	if err != nil {
		t.Fatal(err)
	}
	want := []step{{reconcile.Delete, "to delete (no file declares it)"}, {reconcile.Delete, "to delete (no file declares it)"}}
	if got := steps(deletions); !reflect.DeepEqual(got, want) || deletions[0].Function != "alpha" || deletions[1].Function != "zeta" {
		t.Fatalf("prune: %v of %q, %q", got, deletions[0].Function, deletions[1].Function)
	}
	if w := g.take(); len(w) != 0 {
		t.Fatalf("prune wrote %q", w)
	}
	done, err := r.Apply(context.Background(), deletions, nil)
	if err != nil || !reflect.DeepEqual(done, []string{"deleted (no file declares it)", "deleted (no file declares it)"}) {
		t.Fatalf("apply: %q, %v", done, err)
	}
	if w := g.take(); !reflect.DeepEqual(w, []string{"DELETE /2015-03-31/functions/alpha", "DELETE /2015-03-31/functions/zeta"}) {
		t.Errorf("writes %q", w)
	}
	if len(g.fns) != 1 || g.fns["kept"] == nil {
		t.Errorf("left %v", g.fns)
	}
}

// TestAPIErrors: a failed request stops the function's apply with an error that names the
// function, what was done and what failed, and keeps the agent's error; a failed read fails
// the plan the same way.
func TestAPIErrors(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	existing(t, g, r, fn)

	fn.Code, _ = codeDir(t, "#!/bin/sh\necho v2\n")
	fn.Description = "new"
	g.fail["PUT /2015-03-31/functions/fn/configuration"] = true
	_, err := r.Apply(context.Background(), plan(t, r, fn), nil)
	var re *reconcile.Error
	var le *lambda.Error
	if !errors.As(err, &re) || re.Function != "fn" || len(re.Done) != 1 || !errors.As(err, &le) || le.Type != "InvalidParameterValueException" {
		t.Fatalf("apply: %v", err)
	}
	if ok, _ := regexp.MatchString(`^fn: code updated \(\S+ B zip uploaded\), but then: updating the configuration: InvalidParameterValueException: injected failure$`, err.Error()); !ok {
		t.Errorf("the error says %q", err)
	}

	g.fail["GET /2015-03-31/functions/fn/aliases"] = true
	if _, err := r.Plan(context.Background(), fn); err == nil || err.Error() != "fn: listing aliases: InvalidParameterValueException: injected failure" {
		t.Errorf("plan: %v", err)
	}
	g.fail["GET /2015-03-31/functions/"] = true
	if _, err := r.Prune(context.Background(), nil); err == nil || !strings.HasPrefix(err.Error(), "listing the agent's functions: ") {
		t.Errorf("prune: %v", err)
	}
}

// TestBadCode: code that cannot be packaged fails the plan before the agent is asked.
func TestBadCode(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	_, err := r.Plan(context.Background(), function("fn", filepath.Join(t.TempDir(), "missing")))
	if err == nil || !strings.HasPrefix(err.Error(), "fn: reading code: ") {
		t.Errorf("plan: %v", err)
	}
}
