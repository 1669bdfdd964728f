package gateway

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"strconv"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// PublishVersion publishes the function's $LATEST as a new immutable version (or returns the
// last one when nothing changed since it was published).
func (g *Gateway) PublishVersion(ctx context.Context, name string, in *lambda.PublishVersionInput) (*lambda.FunctionConfiguration, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	var codeHex string
	if in.CodeSha256 != "" {
		raw, err := base64.StdEncoding.DecodeString(in.CodeSha256)
		if err != nil || len(raw) != 32 {
			return nil, lambda.InvalidParameter("CodeSha256 %q is not a base64 SHA-256", in.CodeSha256)
		}
		if codeHex = hex.EncodeToString(raw); codeHex != fn.CodeSha256 {
			return nil, lambda.InvalidParameter("CodeSha256 (%s) is different from current CodeSha256 in $LATEST (%s). Please try again with the CodeSha256 in $LATEST.",
				in.CodeSha256, lambda.Base64Sha256(fn.CodeSha256))
		}
	}
	v, err := g.cfg.Store.PublishVersion(ctx, fn.Name, in.Description, in.RevisionId, codeHex)
	if err != nil {
		return nil, g.storeError(fn.Name, err)
	}
	c := lambda.ConfigurationFrom(v, g.cfg.Region)
	return &c, nil
}

// ListVersionsByFunction lists $LATEST and the published versions, oldest first, paged by
// version number (the marker is the last number of the previous page).
func (g *Gateway) ListVersionsByFunction(name, marker string, maxItems int) (*lambda.ListVersionsOutput, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if maxItems <= 0 || maxItems > 50 {
		maxItems = 50
	}
	after := -1 // $LATEST comes first, as number 0
	if marker != "" {
		n, err := strconv.Atoi(markerName(marker))
		if err != nil {
			return nil, lambda.InvalidParameter("Marker %q is not one this API returned", marker)
		}
		after = n
	}
	all := append([]*structs.Function{fn}, g.cfg.Store.Versions(fn.Name)...)
	out := &lambda.ListVersionsOutput{Versions: []lambda.FunctionConfiguration{}}
	last := after
	for _, v := range all {
		n, _ := strconv.Atoi(v.Version) // "" ($LATEST) is 0
		if n <= after {
			continue
		}
		if len(out.Versions) == maxItems {
			next := encodeMarker(strconv.Itoa(last))
			out.NextMarker = &next
			break
		}
		out.Versions = append(out.Versions, lambda.ConfigurationFrom(v, g.cfg.Region))
		last = n
	}
	return out, nil
}

// FunctionVersion returns the configuration of a function at a qualifier ($LATEST, a version
// number, or an alias, read as its main version), for GetFunction and GetFunctionConfiguration.
func (g *Gateway) FunctionVersion(nameOrARN, qualifier string) (*structs.Function, error) {
	fn, alias, err := g.qualified(nameOrARN, qualifier)
	if err != nil || alias == nil {
		return fn, err
	}
	return g.atVersion(fn, alias.FunctionVersion)
}
