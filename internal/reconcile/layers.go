package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
)

// layerState is what the plan of a layer block found: the version its layer.NAME references
// take.
type layerState struct {
	arn string // the latest version's ARN; "" when the layer has none
	// publishing is set from the plan of a new version until it is published: its number is
	// not known before.
	publishing bool
	// err is why the layer's plan or its publishing failed.
	err error
}

// PlanLayer compares a layer block with the latest version of its layer on the agent and
// returns the publishing of a new version when the code or a setting differs (versions are
// immutable); none when they are equal. It writes nothing, and must come before the plans of
// the functions that name the layer: their layer.NAME takes the latest version, the new one
// once published. Errors are *Error.
//
// Layers no file declares any more have nothing to reconcile: their versions stay, as
// functions may name them by ARN.
func (r *Reconciler) PlanLayer(ctx context.Context, l *config.Layer) ([]Change, error) {
	st := &layerState{}
	r.layers[l.Name] = st
	changes, err := r.planLayer(ctx, l, st)
	if err != nil {
		st.err = err
		return nil, &Error{Layer: l.Name, Err: err}
	}
	return changes, nil
}

func (r *Reconciler) planLayer(ctx context.Context, l *config.Layer, st *layerState) ([]Change, error) {
	pkg, err := r.pkg(l.Code)
	if err != nil {
		return nil, err
	}
	versions, err := r.agent.ListLayerVersions(ctx, l.Name)
	if err != nil {
		return nil, fmt.Errorf("listing the layer's versions: %w", err)
	}
	upload := fmt.Sprintf("%s zip to upload", Size(pkg.Size))
	var text string
	if len(versions) == 0 {
		text = "new version to publish (the layer has none; " + upload + ")"
	} else {
		latest := versions[0] // newest first
		cur, err := r.agent.GetLayerVersion(ctx, l.Name, latest.Version)
		if err != nil {
			return nil, fmt.Errorf("reading version %d: %w", latest.Version, err)
		}
		st.arn = cur.LayerVersionArn
		diffs := layerDiffs(cur, l, pkg)
		if len(diffs) == 0 {
			return nil, nil
		}
		text = fmt.Sprintf("new version to publish (version %d differs: %s", cur.Version, strings.Join(diffs, ", "))
		if diffs[0] == "code" {
			text += "; " + upload
		}
		text += ")"
	}
	st.publishing = true
	in := &lambda.PublishLayerVersionInput{Description: l.Description, CompatibleRuntimes: l.CompatibleRuntimes,
		CompatibleArchitectures: l.CompatibleArchitectures, LicenseInfo: l.LicenseInfo}
	return []Change{{Layer: l.Name, Kind: Layer, Text: text,
		apply: func(ctx context.Context, a Agent, progress func(string)) (string, error) {
			req := *in
			code, sent := codeFor(ctx, a, pkg)
			req.Content = lambda.LayerContentInput{ZipFile: code.ZipFile, GatewayCodeSha256: code.GatewayCodeSha256}
			out, err := a.PublishLayerVersion(uploading(ctx, pkg, progress), l.Name, &req)
			if err != nil {
				st.err = err
				return "", fmt.Errorf("publishing a version: %w", err)
			}
			st.arn, st.publishing = out.LayerVersionArn, false
			return fmt.Sprintf("version %d published (%s zip %s)", out.Version, Size(pkg.Size), sent), nil
		}}}, nil
}

// layerDiffs lists what differs between a layer version and the block: "code" first, then
// "attribute old -> new" for each setting.
func layerDiffs(cur *lambda.LayerVersionOutput, l *config.Layer, pkg *codepkg.Package) []string {
	var diffs []string
	if cur.Content == nil || cur.Content.CodeSha256 != pkg.Base64Sha256() {
		diffs = append(diffs, "code")
	}
	if cur.Description != l.Description {
		diffs = append(diffs, fmt.Sprintf("description %q -> %q", cur.Description, l.Description))
	}
	if !slices.Equal(cur.CompatibleRuntimes, l.CompatibleRuntimes) {
		diffs = append(diffs, fmt.Sprintf("compatible_runtimes %s -> %s", listText(cur.CompatibleRuntimes), listText(l.CompatibleRuntimes)))
	}
	if !slices.Equal(cur.CompatibleArchitectures, l.CompatibleArchitectures) {
		diffs = append(diffs, fmt.Sprintf("compatible_architectures %s -> %s", listText(cur.CompatibleArchitectures), listText(l.CompatibleArchitectures)))
	}
	if cur.LicenseInfo != l.LicenseInfo {
		diffs = append(diffs, fmt.Sprintf("license_info %q -> %q", cur.LicenseInfo, l.LicenseInfo))
	}
	return diffs
}

// wantLayers is the layers a function's block wants, as its plan found them.
type wantLayers struct {
	arns []string // the version ARNs, when none is unpublished
	// shown is each layer as plan shows it: "deps:3", or "deps:(new version)" for a
	// layer.NAME whose new version is not published yet.
	shown       []string
	unpublished []string // the layer blocks whose new version fn takes once published
	// resolve gives the ARNs when applying, once the new versions are published.
	resolve func() ([]string, error)
}

// functionLayers resolves fn's layers: an ARN as written, a layer.NAME to the latest version
// of the layer block as planned by PlanLayer, or published since.
func (r *Reconciler) functionLayers(fn *config.Function) (wantLayers, error) {
	w := wantLayers{resolve: func() ([]string, error) { return r.appliedLayers(fn) }}
	for _, ref := range fn.Layers {
		if ref.Layer == "" {
			w.arns, w.shown = append(w.arns, ref.ARN), append(w.shown, layerText(ref.ARN))
			continue
		}
		st := r.layers[ref.Layer]
		switch {
		case st == nil:
			return w, fmt.Errorf("layer.%s: the layer block was not planned (PlanLayer)", ref.Layer)
		case st.err != nil:
			return w, fmt.Errorf("layer.%s failed: %w", ref.Layer, st.err)
		case st.publishing:
			w.unpublished, w.shown = append(w.unpublished, ref.Layer), append(w.shown, ref.Layer+":(new version)")
		default:
			w.arns, w.shown = append(w.arns, st.arn), append(w.shown, layerText(st.arn))
		}
	}
	return w, nil
}

// appliedLayers is fn's layers' ARNs when applying (empty, not nil, for none: an update with
// it removes them all); the new versions they take must be published by then.
func (r *Reconciler) appliedLayers(fn *config.Function) ([]string, error) {
	w, err := r.functionLayers(fn)
	switch {
	case err != nil:
		return nil, err
	case len(w.unpublished) > 0:
		return nil, fmt.Errorf("layer.%s: its new version is not published yet (apply the layer's change first)", w.unpublished[0])
	case w.arns == nil:
		return []string{}, nil
	}
	return w.arns, nil
}

// changed reports whether cur, the agent's layers of a function, differ from the wanted ones.
func (w wantLayers) changed(cur []lambda.FunctionLayer) bool {
	return len(w.unpublished) > 0 || !slices.Equal(layerARNs(cur), w.arns)
}

func layerARNs(ls []lambda.FunctionLayer) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Arn)
	}
	return out
}

// layerText shows a layer version's ARN as NAME:VERSION (the rest is the agent's region and
// account), or whole when it is not one.
func layerText(arn string) string {
	if _, after, ok := strings.Cut(arn, ":layer:"); ok {
		return after
	}
	return arn
}

// layerTexts are ARNs as layerText shows them.
func layerTexts(arns []string) []string {
	out := make([]string, 0, len(arns))
	for _, a := range arns {
		out = append(out, layerText(a))
	}
	return out
}

// listText shows a list setting: "none", or "[a b]" (a function's layers: "[deps:3 tools:1]").
func listText(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return "[" + strings.Join(s, " ") + "]"
}
