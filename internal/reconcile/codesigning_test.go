package reconcile_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/reconcile"
	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/structs"
)

// TestCodeSigning: a code_signing_config block is created, then updated where it differs; a
// function naming it is created with it attached and its zip uploaded with its code_signature
// (a signed zip); dropping code_signing_config detaches it before the code is updated; -prune
// deletes the configurations a file made that no file declares any more.
func TestCodeSigning(t *testing.T) {
	g := newFakeAgent()
	client := g.start(t)
	r := reconcile.New(client, reconcile.Options{})
	ctx := context.Background()
	csc := &config.CodeSigningConfig{CodeSigningConfig: structs.CodeSigningConfig{ID: structs.CodeSigningConfigID("prod"), Name: "prod",
		AllowedPublishers: []string{"release"}, UntrustedArtifactOnDeployment: structs.CodeSigningEnforce}}
	planCSC := func(r *reconcile.Reconciler) []reconcile.Change {
		t.Helper()
		ch, err := r.PlanCodeSigningConfig(ctx, csc)
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	if got := steps(planCSC(r)); !reflect.DeepEqual(got, []step{{reconcile.CodeSigning, "to create (Enforce, publishers release)"}}) {
		t.Fatalf("plan of a new configuration: %v", got)
	}
	if _, err := r.Apply(ctx, planCSC(r), nil); err != nil {
		t.Fatal(err)
	}
	if again := planCSC(r); len(again) != 0 {
		t.Errorf("a plan after apply: %v", steps(again))
	}
	csc.UntrustedArtifactOnDeployment = structs.CodeSigningWarn
	csc.AllowedPublishers = []string{"release", "ci"}
	if got := steps(planCSC(r)); len(got) != 1 || !strings.Contains(got[0].text, "untrusted_artifact_on_deployment Enforce -> Warn") ||
		!strings.Contains(got[0].text, "allowed_publishers [release] -> [release, ci]") {
		t.Errorf("plan of a change: %v", got)
	}
	if _, err := r.Apply(ctx, planCSC(r), nil); err != nil {
		t.Fatal(err)
	}

	// A function whose zip comes with its signature beside it.
	dir := t.TempDir()
	_, pkg := codeDir(t, "#!/bin/sh\n")
	zipPath := filepath.Join(dir, "fn.zip")
	_ = os.WriteFile(zipPath, pkg.Data, 0o644)
	priv, _, _ := signing.GenerateKey(nil)
	key, _ := signing.LoadPrivateKey(priv, nil)
	bundle, _ := signing.SignDigest(key, sha256.Sum256(pkg.Data))
	bundlePath := filepath.Join(dir, "fn.zip.sigstore.json")
	_ = os.WriteFile(bundlePath, bundle, 0o644)
	fn := function("fn", zipPath)
	fn.CodeSigningConfig, fn.CodeSignature = "prod", bundlePath
	g.take()
	apply(t, r, fn)
	if id := g.signing["fn"]; id != csc.ID {
		t.Errorf("the function's configuration: %q", id)
	}
	signed, _ := signing.Attach(pkg.Data, bundle)
	sum := sha256.Sum256(signed)
	if h, b64 := codeSha(signed); g.fns["fn"].CodeSha256 != b64 || !g.code[h] {
		t.Errorf("the code uploaded is not the signed zip (%x)", sum)
	}
	g.take()
	converged(t, r, g, fn)

	// Without code_signing_config: detached, before the code update.
	fn.CodeSigningConfig, fn.CodeSignature = "", ""
	if got := steps(plan(t, r, fn)); len(got) < 2 || got[0].text != "code signing config to detach" || got[1].kind != reconcile.UpdateCode {
		t.Errorf("plan without code_signing_config: %v", got)
	}
	apply(t, r, fn)
	if _, ok := g.signing["fn"]; ok {
		t.Error("still attached")
	}
	prune, err := r.PruneCodeSigningConfigs(ctx, nil)
	if err != nil || len(prune) != 1 || prune[0].Text != "to delete (no file declares it)" {
		t.Fatalf("prune: %v, %v", steps(prune), err)
	}
	if _, err := r.Apply(ctx, prune, nil); err != nil || len(g.cscs) != 0 {
		t.Errorf("prune applied: %v, %d left", err, len(g.cscs))
	}
}
