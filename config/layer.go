package config

// Layer blocks of function files, and the layers attribute of a function that names them.

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/lambdagw/gateway/internal/structs"
)

// Layer is a layer block: files functions see under /opt. Its versions are immutable: apply
// publishes a new one whenever the code or a setting differs from the latest version's.
type Layer struct {
	Name                    string
	Code                    string // absolute path of a folder or a .zip
	Description             string
	CompatibleRuntimes      []string
	CompatibleArchitectures []string
	LicenseInfo             string
	DeclRange               hcl.Range
}

// LayerRef is one element of a function's layers: a reference layer.NAME to a layer block
// of the files (Layer; the block's latest version when applied), or a layer version's ARN.
type LayerRef struct {
	Layer string
	ARN   string
	Range hcl.Range
}

// layerAttrs maps the Lambda API's names of a layer version's settings to a layer block's
// attributes; "" is the block's label.
var layerAttrs = map[string]string{"LayerName": "", "Description": "description", "LicenseInfo": "license_info",
	"CompatibleRuntimes": "compatible_runtimes", "CompatibleArchitectures": "compatible_architectures"}

// decodeLayer reads a layer block: layer "deps" { code = "build/deps.zip" ... }.
func decodeLayer(blk *hcl.Block, ctx *hcl.EvalContext, baseDir string) (*Layer, hcl.Diagnostics) {
	var raw struct {
		Code                    hcl.Expression `hcl:"code,optional"`
		Description             *string        `hcl:"description,optional"`
		CompatibleRuntimes      *[]string      `hcl:"compatible_runtimes,optional"`
		CompatibleArchitectures *[]string      `hcl:"compatible_architectures,optional"`
		LicenseInfo             *string        `hcl:"license_info,optional"`
	}
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	l := &Layer{Name: blk.Labels[0], DeclRange: blk.DefRange}
	if !isSet(raw.Code) {
		diags = append(diags, rangeDiag("Missing code", "A layer needs code: a folder or a .zip file (relative to this file).", blk.DefRange))
	} else {
		code, d := codePath(raw.Code, ctx, baseDir, "layer")
		diags = append(diags, d...)
		l.Code = code
	}
	if raw.Description != nil {
		l.Description = *raw.Description
	}
	if raw.CompatibleRuntimes != nil {
		l.CompatibleRuntimes = *raw.CompatibleRuntimes
	}
	if raw.CompatibleArchitectures != nil {
		l.CompatibleArchitectures = *raw.CompatibleArchitectures
	}
	if raw.LicenseInfo != nil {
		l.LicenseInfo = *raw.LicenseInfo
	}
	// The rules PublishLayerVersion applies too (internal/structs), on the attributes' ranges.
	sl := structs.LayerVersion{Name: l.Name, Description: l.Description, CompatibleRuntimes: l.CompatibleRuntimes,
		CompatibleArchitectures: l.CompatibleArchitectures, LicenseInfo: l.LicenseInfo}
	errs := sl.Validate()
	for i := range errs {
		if errs[i].Field == "LayerName" && errs[i].Summary == "" {
			errs[i].Summary = "Invalid layer name" // its attribute is the label, which has no name
		}
	}
	attrs, _ := blk.Body.JustAttributes()
	diags = append(diags, fieldDiags(errs, layerAttrs, func(attr string) hcl.Range {
		if attr == "" {
			return blk.LabelRanges[0]
		}
		if a, ok := attrs[attr]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	})...)
	return l, diags
}

// decodeLayerRefs reads a function's layers attribute: a list whose elements are layer.NAME
// (read from the expression itself, so it needs no variable) or a layer version's ARN. A list
// that is not written out (a variable) may hold ARNs only. Whether each NAME is a layer
// block is checked once every file is read.
func decodeLayerRefs(expr hcl.Expression, ctx *hcl.EvalContext) ([]LayerRef, hcl.Diagnostics) {
	elems, d := hcl.ExprList(expr)
	if d.HasErrors() {
		if _, ok := layerTraversal(expr); ok {
			return nil, hcl.Diagnostics{rangeDiag("Invalid layers", "The layers attribute is a list: write layers = [layer.NAME, ...].", expr.Range())}
		}
		var arns []string
		if d := gohcl.DecodeExpression(expr, ctx, &arns); d.HasErrors() {
			return nil, d
		}
		var refs []LayerRef
		var diags hcl.Diagnostics
		for _, arn := range arns {
			if msg := layerARNProblem(arn); msg != "" {
				diags = append(diags, rangeDiag("Invalid layer ARN", msg, expr.Range()))
				continue
			}
			refs = append(refs, LayerRef{ARN: arn, Range: expr.Range()})
		}
		return refs, diags
	}
	var refs []LayerRef
	var diags hcl.Diagnostics
	for _, e := range elems {
		if tr, ok := layerTraversal(e); ok {
			name, ok := layerRefName(tr)
			if !ok {
				diags = append(diags, rangeDiag("Invalid layer reference", "Write layer.NAME to name a layer block of these files.", e.Range()))
				continue
			}
			refs = append(refs, LayerRef{Layer: name, Range: e.Range()})
			continue
		}
		var arn string
		if d := gohcl.DecodeExpression(e, ctx, &arn); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		if msg := layerARNProblem(arn); msg != "" {
			diags = append(diags, rangeDiag("Invalid layer ARN", msg, e.Range()))
			continue
		}
		refs = append(refs, LayerRef{ARN: arn, Range: e.Range()})
	}
	return refs, diags
}

// layerTraversal is expr as a traversal from the root name "layer".
func layerTraversal(expr hcl.Expression) (hcl.Traversal, bool) {
	tr, d := hcl.AbsTraversalForExpr(expr)
	if d.HasErrors() || tr.RootName() != "layer" {
		return nil, false
	}
	return tr, true
}

// layerRefName is NAME of the traversal layer.NAME.
func layerRefName(tr hcl.Traversal) (string, bool) {
	if len(tr) != 2 {
		return "", false
	}
	attr, ok := tr[1].(hcl.TraverseAttr)
	return attr.Name, ok
}

// layerARNProblem says what is wrong with the form of a layer version's ARN, "" when nothing
// is. The agent checks the region and account, which it knows.
func layerARNProblem(arn string) string {
	if _, err := structs.ParseLayerVersionARN(arn); err != nil {
		return err.Error() + "; a layer block of these files is named as layer.NAME."
	}
	return ""
}

// layerARNName is the layer's name in a layer version ARN of the right form.
func layerARNName(arn string) string {
	p := strings.Split(arn, ":")
	return p[len(p)-2]
}
