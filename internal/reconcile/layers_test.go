package reconcile_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/reconcile"
)

// layerBlock is a layer block whose code is a folder holding lib/dep.js with content.
func layerBlock(t *testing.T, name, content string) (*config.Layer, *codepkg.Package) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lib", "dep.js"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, err := codepkg.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &config.Layer{Name: name, Code: dir, Description: "deps", CompatibleRuntimes: []string{"provided.al2023"}}, pkg
}

// planLayer plans l and fails the test on an error.
func planLayer(t *testing.T, r *reconcile.Reconciler, l *config.Layer) []reconcile.Change {
	t.Helper()
	changes, err := r.PlanLayer(context.Background(), l)
	if err != nil {
		t.Fatalf("plan layer %s: %v", l.Name, err)
	}
	return changes
}

// applyAll plans the layers, then the functions (as gateway plan does: a new layer version is
// not published yet when its functions are planned), and applies every change in that order.
func applyAll(t *testing.T, r *reconcile.Reconciler, layers []*config.Layer, fns ...*config.Function) []string {
	t.Helper()
	var changes []reconcile.Change
	for _, l := range layers {
		changes = append(changes, planLayer(t, r, l)...)
	}
	for _, fn := range fns {
		changes = append(changes, plan(t, r, fn)...)
	}
	done, err := r.Apply(context.Background(), changes, nil)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return done
}

// layersConverged checks that a plan after apply, by a new reconciler as the next gateway
// apply would make, finds nothing to do for the layers and functions.
func layersConverged(t *testing.T, g *fakeAgent, layers []*config.Layer, fns ...*config.Function) {
	t.Helper()
	r := reconcile.New(g.start(t), reconcile.Options{})
	for _, l := range layers {
		if again := planLayer(t, r, l); len(again) != 0 {
			t.Errorf("a plan of layer %s after apply: %v", l.Name, steps(again))
		}
	}
	for _, fn := range fns {
		converged(t, r, g, fn)
	}
}

func layerARNs(g *fakeAgent, fn string) []string {
	var out []string
	for _, l := range g.fns[fn].Layers {
		out = append(out, l.Arn)
	}
	return out
}

// TestLayerFirstApply: a layer the agent lacks gets its first version, and a function naming
// it (layer.NAME) is created with that version; plan shows the version as new, writes nothing,
// and once applied there is nothing left to do.
func TestLayerFirstApply(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	deps, lpkg := layerBlock(t, "deps", "module.exports = 1\n")
	code, pkg := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	fn.Layers = []config.LayerRef{{Layer: "deps"}}

	lz, fz := reconcile.Size(lpkg.Size), reconcile.Size(pkg.Size)
	layerChanges := planLayer(t, r, deps)
	if got, want := steps(layerChanges), []step{{reconcile.Layer, "new version to publish (the layer has none; " + lz + " zip to upload)"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("plan of the layer:\n%v\nwant\n%v", got, want)
	}
	if c := layerChanges[0]; c.Layer != "deps" || c.Function != "" {
		t.Errorf("the layer's change is to function %q, layer %q", c.Function, c.Layer)
	}
	fnChanges := plan(t, r, fn)
	if got, want := steps(fnChanges), []step{{reconcile.Create, "to create (" + fz + " zip to upload, layers [deps:(new version)])"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("plan of the function:\n%v\nwant\n%v", got, want)
	}
	if w := g.take(); len(w) != 0 {
		t.Fatalf("plan wrote %q", w)
	}

	done, err := r.Apply(context.Background(), append(layerChanges, fnChanges...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"version 1 published (" + lz + " zip uploaded)", "created (code: " + fz + " zip uploaded, layers [deps:1])"}; !reflect.DeepEqual(done, want) {
		t.Errorf("apply said:\n%q\nwant\n%q", done, want)
	}
	if w, want := g.take(), []string{"POST /2018-10-31/layers/deps/versions", "POST /2015-03-31/functions"}; !reflect.DeepEqual(w, want) {
		t.Errorf("writes %q, want %q", w, want)
	}
	if got := layerARNs(g, "fn"); !reflect.DeepEqual(got, []string{lambda.LayerARN(region, "deps", 1)}) {
		t.Errorf("the function's layers: %q", got)
	}
	if v := g.layers["deps"][0]; v.Content.CodeSha256 != lpkg.Base64Sha256() || v.Description != "deps" ||
		!reflect.DeepEqual(v.CompatibleRuntimes, []string{"provided.al2023"}) {
		t.Errorf("published %+v", v)
	}
	layersConverged(t, g, []*config.Layer{deps}, fn)
	// The same reconciler knows the version it published.
	if again := plan(t, r, fn); len(again) != 0 {
		t.Errorf("a plan by the same reconciler: %v", steps(again))
	}
}

// TestLayerChange: new code publishes version 2 and moves the function (with publish, a new
// version of it) there; a changed setting alone publishes a version naming the zip the agent
// holds. Applied layer first and function planned after (as gateway apply does), the function's
// plan shows the new number.
func TestLayerChange(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	deps, _ := layerBlock(t, "deps", "v1\n")
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	fn.Publish = true
	fn.Layers = []config.LayerRef{{Layer: "deps"}}
	layers := []*config.Layer{deps}
	applyAll(t, r, layers, fn)
	g.take()

	r = reconcile.New(g.start(t), reconcile.Options{})
	deps2, lpkg := layerBlock(t, "deps", "v2\n")
	lz := reconcile.Size(lpkg.Size)
	layers = []*config.Layer{deps2}
	if got, want := steps(planLayer(t, r, deps2)), []step{{reconcile.Layer, "new version to publish (version 1 differs: code; " + lz + " zip to upload)"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("plan of the layer:\n%v\nwant\n%v", got, want)
	}
	want := []step{{reconcile.UpdateConfig, "configuration to update (layers [deps:1] -> [deps:(new version)])"}, {reconcile.Publish, "a new version to publish"}}
	if got := steps(plan(t, r, fn)); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan of the function:\n%v\nwant\n%v", got, want)
	}
	done := applyAll(t, r, layers, fn)
	if want := []string{"version 2 published (" + lz + " zip uploaded)", "configuration updated (layers [deps:1] -> [deps:2])", "version 2 published"}; !reflect.DeepEqual(done, want) {
		t.Errorf("apply said:\n%q\nwant\n%q", done, want)
	}
	if w, want := g.take(), []string{"POST /2018-10-31/layers/deps/versions", "PUT /2015-03-31/functions/fn/configuration", "POST /2015-03-31/functions/fn/versions"}; !reflect.DeepEqual(w, want) {
		t.Errorf("writes %q, want %q", w, want)
	}
	if got := layerARNs(g, "fn"); !reflect.DeepEqual(got, []string{lambda.LayerARN(region, "deps", 2)}) {
		t.Errorf("the function's layers: %q", got)
	}
	layersConverged(t, g, layers, fn)

	// A setting alone: the zip is the agent's already.
	deps2.CompatibleRuntimes = []string{"provided.al2023", "provided.al2"}
	r = reconcile.New(g.start(t), reconcile.Options{})
	changes := planLayer(t, r, deps2)
	if got, want := reconcile.Lines(changes), []string{"new version to publish (version 2 differs: compatible_runtimes [provided.al2023] -> [provided.al2023 provided.al2])"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("plan of a setting: %q, want %q", got, want)
	}
	done, err := r.Apply(context.Background(), changes, nil)
	if want := []string{"version 3 published (" + lz + " zip already on the agent)"}; err != nil || !reflect.DeepEqual(done, want) {
		t.Fatalf("apply said %q, %v; want %q", done, err, want)
	}
	if got, want := reconcile.Lines(plan(t, r, fn)), []string{"configuration to update (layers [deps:2] -> [deps:3])", "a new version to publish"}; !reflect.DeepEqual(got, want) {
		t.Errorf("plan of the function after the layer's apply: %q, want %q", got, want)
	}
}

// TestLayerARN: a layer version's ARN is passed to the agent as written, and a function's
// layers keep their order.
func TestLayerARN(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	g.publishLayer("shared", "c2hhcmVk", 10)
	g.publishLayer("shared", "c2hhcmVk", 10)
	deps, _ := layerBlock(t, "deps", "v1\n")
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	shared1 := lambda.LayerARN(region, "shared", 1)
	fn.Layers = []config.LayerRef{{ARN: shared1}, {Layer: "deps"}}
	layers := []*config.Layer{deps}
	applyAll(t, r, layers, fn)
	if got := layerARNs(g, "fn"); !reflect.DeepEqual(got, []string{shared1, lambda.LayerARN(region, "deps", 1)}) {
		t.Errorf("the function's layers: %q", got)
	}
	g.take()
	layersConverged(t, g, layers, fn)

	fn.Layers = []config.LayerRef{{Layer: "deps"}, {ARN: lambda.LayerARN(region, "shared", 2)}}
	if got, want := reconcile.Lines(plan(t, r, fn)), []string{"configuration to update (layers [shared:1 deps:1] -> [deps:1 shared:2])"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("plan: %q, want %q", got, want)
	}
	apply(t, r, fn)
	if w := g.take(); !reflect.DeepEqual(w, []string{"PUT /2015-03-31/functions/fn/configuration"}) {
		t.Errorf("writes %q", w)
	}
	if got := layerARNs(g, "fn"); !reflect.DeepEqual(got, []string{lambda.LayerARN(region, "deps", 1), lambda.LayerARN(region, "shared", 2)}) {
		t.Errorf("the function's layers: %q", got)
	}
	layersConverged(t, g, layers, fn)
}

// TestLayersRemoved: a function whose block no longer has layers is updated with Layers: []
// (an absent Layers would leave them), and the layer's versions stay.
func TestLayersRemoved(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	deps, _ := layerBlock(t, "deps", "v1\n")
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	fn.Layers = []config.LayerRef{{Layer: "deps"}}
	applyAll(t, r, []*config.Layer{deps}, fn)
	g.take()

	fn.Layers = nil
	r = reconcile.New(g.start(t), reconcile.Options{})
	if got, want := reconcile.Lines(plan(t, r, fn)), []string{"configuration to update (layers [deps:1] -> none)"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("plan: %q, want %q", got, want)
	}
	done, _ := apply(t, r, fn)
	if want := []string{"configuration updated (layers [deps:1] -> none)"}; !reflect.DeepEqual(done, want) {
		t.Errorf("apply said %q, want %q", done, want)
	}
	if w := g.take(); !reflect.DeepEqual(w, []string{"PUT /2015-03-31/functions/fn/configuration"}) {
		t.Errorf("writes %q", w)
	}
	if b := g.configBodies[len(g.configBodies)-1]; !strings.Contains(b, `"Layers":[]`) {
		t.Errorf("the update sent %s", b)
	}
	if len(g.fns["fn"].Layers) != 0 || len(g.layers["deps"]) != 1 {
		t.Errorf("the function's layers %v, the layer's versions %d", g.fns["fn"].Layers, len(g.layers["deps"]))
	}
	converged(t, r, g, fn)
	// Other changes leave the layers alone.
	fn.Layers = []config.LayerRef{{Layer: "deps"}}
	r = reconcile.New(g.start(t), reconcile.Options{})
	applyAll(t, r, []*config.Layer{deps}, fn)
	fn.MemoryMB = 256
	apply(t, r, fn)
	if b := g.configBodies[len(g.configBodies)-1]; strings.Contains(b, `"Layers"`) {
		t.Errorf("a memory update sent %s", b)
	}
}

// TestLayerErrors: a layer whose plan or publishing failed fails the functions that name it,
// with the layer's error; a function's layers are resolved only from planned layers and
// published versions.
func TestLayerErrors(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, _ := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	fn.Layers = []config.LayerRef{{Layer: "deps"}}
	ctx := context.Background()

	if _, err := r.Plan(ctx, fn); err == nil || err.Error() != "fn: layer.deps: the layer block was not planned (PlanLayer)" {
		t.Errorf("a function naming a layer not planned: %v", err)
	}

	missing := &config.Layer{Name: "deps", Code: filepath.Join(t.TempDir(), "missing")}
	_, err := r.PlanLayer(ctx, missing)
	var re *reconcile.Error
	if !errors.As(err, &re) || re.Layer != "deps" || re.Function != "" || !strings.HasPrefix(err.Error(), "layer deps: reading code: ") {
		t.Fatalf("plan of a layer without code: %v", err)
	}
	if _, err := r.Plan(ctx, fn); err == nil || !strings.HasPrefix(err.Error(), "fn: layer.deps failed: reading code: ") {
		t.Errorf("a function naming it: %v", err)
	}

	// Publishing fails: the function's change made before then cannot be applied.
	deps, _ := layerBlock(t, "deps", "v1\n")
	changes := planLayer(t, r, deps)
	fnChanges := plan(t, r, fn)
	if _, err := r.Apply(ctx, fnChanges, nil); err == nil || err.Error() != "fn: layer.deps: its new version is not published yet (apply the layer's change first)" {
		t.Errorf("the function's change before the layer's: %v", err)
	}
	g.fail["POST /2018-10-31/layers/deps/versions"] = true
	if _, err := r.Apply(ctx, changes, nil); err == nil || err.Error() != "layer deps: publishing a version: InvalidParameterValueException: injected failure" {
		t.Errorf("publishing: %v", err)
	}
	if _, err := r.Apply(ctx, fnChanges, nil); err == nil || !strings.HasPrefix(err.Error(), "fn: layer.deps failed: InvalidParameterValueException") {
		t.Errorf("the function's change after the layer failed: %v", err)
	}
	if _, err := r.Plan(ctx, fn); err == nil || !strings.HasPrefix(err.Error(), "fn: layer.deps failed: ") {
		t.Errorf("a function planned after the layer failed: %v", err)
	}
	if len(g.fns) != 0 {
		t.Errorf("created %v", g.fns)
	}

	g.fail["GET /2018-10-31/layers/deps/versions"] = true
	if _, err := r.PlanLayer(ctx, deps); err == nil || err.Error() != "layer deps: listing the layer's versions: InvalidParameterValueException: injected failure" {
		t.Errorf("listing: %v", err)
	}
}
