package config

// Code signing in function files: code_signing_config blocks, a function's
// code_signing_config = "NAME", and code_signature, the Sigstore bundle of its zip.
//
//	code_signing_config "prod" {
//	  description                      = "release team only"
//	  allowed_publishers               = ["release-team"]   # the agents' signing_publisher blocks
//	  untrusted_artifact_on_deployment = "Enforce"          # or "Warn", the default
//	}

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/lambdagw/gateway/internal/structs"
)

// CodeSigningConfig is a code_signing_config block: apply makes the agent's configuration of
// that name match it.
type CodeSigningConfig struct {
	structs.CodeSigningConfig
	DeclRange hcl.Range
}

// codeSigningAttrs maps the Lambda API's names of a configuration's settings to a block's
// attributes; "GatewayName" is the label.
var codeSigningAttrs = map[string]string{"GatewayName": "", "Description": "description",
	"AllowedPublishers.SigningProfileVersionArns": "allowed_publishers", "CodeSigningPolicies.UntrustedArtifactOnDeployment": "untrusted_artifact_on_deployment"}

// decodeCodeSigningConfig reads a code_signing_config block.
func decodeCodeSigningConfig(blk *hcl.Block, ctx *hcl.EvalContext) (*CodeSigningConfig, hcl.Diagnostics) {
	var raw struct {
		Description *string  `hcl:"description,optional"`
		Publishers  []string `hcl:"allowed_publishers"`
		Policy      *string  `hcl:"untrusted_artifact_on_deployment,optional"`
	}
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	c := &CodeSigningConfig{CodeSigningConfig: structs.CodeSigningConfig{Name: blk.Labels[0], AllowedPublishers: raw.Publishers,
		UntrustedArtifactOnDeployment: structs.CodeSigningWarn}, DeclRange: blk.DefRange}
	c.ID = structs.CodeSigningConfigID(c.Name)
	if raw.Description != nil {
		c.Description = *raw.Description
	}
	if raw.Policy != nil {
		c.UntrustedArtifactOnDeployment = *raw.Policy
	}
	// The rules the Lambda API applies too (internal/structs), on the attributes' ranges.
	attrs, _ := blk.Body.JustAttributes()
	diags = append(diags, fieldDiags(c.Check(), codeSigningAttrs, func(attr string) hcl.Range {
		if attr == "" {
			return blk.LabelRanges[0]
		}
		if a, ok := attrs[attr]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	})...)
	return c, diags
}

// codeSignaturePath reads a function's code_signature: a Sigstore bundle file (relative to the
// function file), which goes with code that is a .zip (the bundle signs its bytes).
func codeSignaturePath(expr hcl.Expression, ctx *hcl.EvalContext, baseDir, code string) (string, hcl.Diagnostics) {
	var p string
	if d := gohcl.DecodeExpression(expr, ctx, &p); d.HasErrors() {
		return "", d
	}
	p = absPath(baseDir, p)
	if _, err := os.Stat(p); err != nil {
		return p, hcl.Diagnostics{rangeDiag("Code signature not found", fmt.Sprintf("%s: %v. Sign the zip first (gateway sign, or cosign sign-blob --bundle), or fix the path (relative to this file).", p, err), expr.Range())}
	}
	if code != "" && !strings.HasSuffix(strings.ToLower(code), ".zip") {
		return p, hcl.Diagnostics{rangeDiag("Code signature of a folder", fmt.Sprintf("code_signature is the signature of a zip, and %s is a folder: build the zip and sign it (gateway sign -key KEY -out fn.zip FOLDER signs a folder as the zip apply would upload).", code), expr.Range())}
	}
	return p, nil
}
