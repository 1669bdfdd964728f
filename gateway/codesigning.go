package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/structs"
)

// Code signing (Lambda's 2020-04-22 and 2020-06-30 operations): code signing configurations,
// stored apart from functions, attached to them, and the check of a function's code (its zip or
// image, and its layers) when it is deployed under one. Each node checks the code again before it
// runs it (the agent's sandbox hook, with the same Verifier).

// CodeSigningStore is the replicated state of code signing (the cluster node).
type CodeSigningStore interface {
	CodeSigningConfig(id string) (*structs.CodeSigningConfig, bool)
	CodeSigningConfigs() []*structs.CodeSigningConfig
	FunctionCodeSigningConfig(fn string) (string, bool)
	FunctionsByCodeSigningConfig(id string) []string
	PutCodeSigningConfig(ctx context.Context, c *structs.CodeSigningConfig, create, update bool) (*structs.CodeSigningConfig, error)
	DeleteCodeSigningConfig(ctx context.Context, id string) error
	PutFunctionCodeSigningConfig(ctx context.Context, fn, id string) error
	DeleteFunctionCodeSigningConfig(ctx context.Context, fn string) error
	// PutFunctionWithCodeSigning creates a function with a configuration attached, in one write.
	PutFunctionWithCodeSigning(ctx context.Context, fn *structs.Function, config string) (*structs.Function, error)
}

// CodeVerifier checks code signatures with this node's publishers (the agent's
// signing_publisher blocks). Its errors are internal/signing's: signing.ErrUnsigned, an
// *IntegrityError or an *UntrustedError.
type CodeVerifier interface {
	// HasPublisher says whether this node declares a publisher of that name.
	HasPublisher(name string) bool
	// VerifyCode checks the signature a stored zip carries, and returns the allowed publisher
	// who signed it.
	VerifyCode(ctx context.Context, sha string, allowed []string) (string, error)
	// VerifyImage checks the signatures beside a pinned image in its registry.
	VerifyImage(ctx context.Context, resolvedURI string, allowed []string) (string, error)
}

// maxCodeSigningPage is the most the list operations answer at once, as Lambda.
const maxCodeSigningPage = 50

func (g *Gateway) noCodeSigningConfig(arn string) error {
	return lambda.CodeSigningConfigNotFound("The code signing configuration cannot be found. Check that the provided configuration is not deleted: %s", arn)
}

// codeSigningConfig finds the configuration an ARN (or ID) names.
func (g *Gateway) codeSigningConfig(arn string) (*structs.CodeSigningConfig, error) {
	id, err := lambda.ParseCodeSigningConfigARN(arn)
	if err != nil {
		return nil, err
	}
	c, ok := g.cfg.Store.CodeSigningConfig(id)
	if !ok {
		return nil, g.noCodeSigningConfig(arn)
	}
	return c, nil
}

// applyCodeSigningInput sets c's fields from in (those given) and checks c against the rules
// function files obey too, and its publishers against this node's.
func (g *Gateway) applyCodeSigningInput(c *structs.CodeSigningConfig, in *lambda.CodeSigningConfigInput) error {
	if len(in.Tags) > 0 {
		return lambda.InvalidParameter("Tags is not supported by this gateway: code signing configurations have no tags")
	}
	if ap := in.AllowedPublishers; ap != nil {
		c.AllowedPublishers, c.AllowedPublisherARNs = nil, nil
		for _, arn := range ap.SigningProfileVersionArns {
			name, err := lambda.ParseSigningProfileARN(arn)
			if err != nil {
				return err
			}
			c.AllowedPublishers = append(c.AllowedPublishers, name)
			c.AllowedPublisherARNs = append(c.AllowedPublisherARNs, arn)
		}
	}
	if p := in.CodeSigningPolicies; p != nil && p.UntrustedArtifactOnDeployment != "" {
		c.UntrustedArtifactOnDeployment = p.UntrustedArtifactOnDeployment
	}
	if in.Description != nil {
		c.Description = *in.Description
	}
	if c.Name != "" {
		// A function file's configuration names its publishers by name: answered in the
		// gateway's form, in this region.
		c.AllowedPublisherARNs = nil
	}
	if err := lambda.InvalidFields(c.Check()); err != nil {
		return err
	}
	return g.checkPublishers(c.AllowedPublishers)
}

// checkPublishers refuses publishers this node does not declare: a configuration naming one
// could never verify here.
func (g *Gateway) checkPublishers(names []string) error {
	for _, p := range names {
		if g.cfg.Verifier == nil || !g.cfg.Verifier.HasPublisher(p) {
			return lambda.InvalidParameter("publisher %q is not a signing_publisher of this node's agent file: declare it there (a public key or a certificate identity) on every node", p)
		}
	}
	return nil
}

// newCodeSigningID is a random configuration ID, as Lambda's: csc- and 17 letters and digits.
func newCodeSigningID() string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 17)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return structs.CodeSigningConfigPrefix + string(b)
}

func (g *Gateway) codeSigningStoreError(id string, err error) error {
	se := g.cfg.StoreErrors
	switch {
	case se.NotFound != nil && errors.Is(err, se.NotFound):
		return g.noCodeSigningConfig(lambda.CodeSigningConfigARN(g.cfg.Region, id))
	case se.Exists != nil && errors.Is(err, se.Exists):
		return lambda.ResourceConflict("The code signing configuration %s already exists", lambda.CodeSigningConfigARN(g.cfg.Region, id))
	case se.Conflict != nil && errors.Is(err, se.Conflict):
		return lambda.ResourceConflict("The code signing configuration %s is used by functions: detach it from them first (DeleteFunctionCodeSigningConfig)", lambda.CodeSigningConfigARN(g.cfg.Region, id))
	}
	return g.storeError("", err)
}

// CreateCodeSigningConfig stores a new configuration: its ID is random, or, with GatewayName,
// the name's.
func (g *Gateway) CreateCodeSigningConfig(ctx context.Context, in *lambda.CodeSigningConfigInput) (*lambda.CodeSigningConfigOutput, error) {
	if in.AllowedPublishers == nil {
		return nil, lambda.InvalidParameter("AllowedPublishers is required")
	}
	c := &structs.CodeSigningConfig{Name: in.GatewayName, UntrustedArtifactOnDeployment: structs.CodeSigningWarn}
	if err := g.applyCodeSigningInput(c, in); err != nil {
		return nil, err
	}
	c.ID = newCodeSigningID()
	if c.Name != "" {
		c.ID = structs.CodeSigningConfigID(c.Name)
	}
	for c.Name == "" {
		if _, taken := g.cfg.Store.CodeSigningConfig(c.ID); !taken {
			break
		}
		c.ID = newCodeSigningID()
	}
	c.LastModified = time.Now().UTC()
	stored, err := g.cfg.Store.PutCodeSigningConfig(ctx, c, true, false)
	if err != nil {
		return nil, g.codeSigningStoreError(c.ID, err)
	}
	return &lambda.CodeSigningConfigOutput{CodeSigningConfig: lambda.CodeSigningConfigFrom(stored, g.cfg.Region)}, nil
}

// GetCodeSigningConfig describes a configuration.
func (g *Gateway) GetCodeSigningConfig(arn string) (*lambda.CodeSigningConfigOutput, error) {
	c, err := g.codeSigningConfig(arn)
	if err != nil {
		return nil, err
	}
	return &lambda.CodeSigningConfigOutput{CodeSigningConfig: lambda.CodeSigningConfigFrom(c, g.cfg.Region)}, nil
}

// UpdateCodeSigningConfig changes what in sets; a configuration keeps its name.
func (g *Gateway) UpdateCodeSigningConfig(ctx context.Context, arn string, in *lambda.CodeSigningConfigInput) (*lambda.CodeSigningConfigOutput, error) {
	cur, err := g.codeSigningConfig(arn)
	if err != nil {
		return nil, err
	}
	if in.GatewayName != "" && in.GatewayName != cur.Name {
		return nil, lambda.InvalidParameter("a code signing configuration's GatewayName cannot change (%q)", cur.Name)
	}
	c := cur.Copy()
	if err := g.applyCodeSigningInput(c, in); err != nil {
		return nil, err
	}
	c.LastModified = time.Now().UTC()
	stored, err := g.cfg.Store.PutCodeSigningConfig(ctx, c, false, true)
	if err != nil {
		return nil, g.codeSigningStoreError(c.ID, err)
	}
	return &lambda.CodeSigningConfigOutput{CodeSigningConfig: lambda.CodeSigningConfigFrom(stored, g.cfg.Region)}, nil
}

// DeleteCodeSigningConfig deletes a configuration no function uses.
func (g *Gateway) DeleteCodeSigningConfig(ctx context.Context, arn string) error {
	c, err := g.codeSigningConfig(arn)
	if err != nil {
		return err
	}
	if fns := g.cfg.Store.FunctionsByCodeSigningConfig(c.ID); len(fns) > 0 {
		return lambda.ResourceConflict("The code signing configuration cannot be deleted because it is used by the following functions: [%s]", strings.Join(fns, ", "))
	}
	if err := g.cfg.Store.DeleteCodeSigningConfig(ctx, c.ID); err != nil {
		return g.codeSigningStoreError(c.ID, err)
	}
	return nil
}

// ListCodeSigningConfigs pages through the configurations by ID; marker is the last ID of the
// previous page.
func (g *Gateway) ListCodeSigningConfigs(marker string, maxItems int) *lambda.ListCodeSigningConfigsOutput {
	if maxItems <= 0 || maxItems > maxCodeSigningPage {
		maxItems = maxCodeSigningPage
	}
	out := &lambda.ListCodeSigningConfigsOutput{CodeSigningConfigs: []lambda.CodeSigningConfig{}}
	after := markerName(marker)
	for _, c := range g.cfg.Store.CodeSigningConfigs() {
		if marker != "" && c.ID <= after {
			continue
		}
		if len(out.CodeSigningConfigs) == maxItems {
			next := encodeMarker(out.CodeSigningConfigs[maxItems-1].CodeSigningConfigId)
			out.NextMarker = &next
			break
		}
		out.CodeSigningConfigs = append(out.CodeSigningConfigs, lambda.CodeSigningConfigFrom(c, g.cfg.Region))
	}
	return out
}

// ListFunctionsByCodeSigningConfig pages through the ARNs of the functions a configuration is
// attached to.
func (g *Gateway) ListFunctionsByCodeSigningConfig(arn, marker string, maxItems int) (*lambda.ListFunctionsByCodeSigningConfigOutput, error) {
	c, err := g.codeSigningConfig(arn)
	if err != nil {
		return nil, err
	}
	if maxItems <= 0 || maxItems > maxCodeSigningPage {
		maxItems = maxCodeSigningPage
	}
	out := &lambda.ListFunctionsByCodeSigningConfigOutput{FunctionArns: []string{}}
	after := markerName(marker)
	var last string
	for _, fn := range g.cfg.Store.FunctionsByCodeSigningConfig(c.ID) {
		if marker != "" && fn <= after {
			continue
		}
		if len(out.FunctionArns) == maxItems {
			next := encodeMarker(last)
			out.NextMarker = &next
			break
		}
		out.FunctionArns = append(out.FunctionArns, lambda.FunctionARN(g.cfg.Region, fn, ""))
		last = fn
	}
	return out, nil
}

// PutFunctionCodeSigningConfig attaches a configuration to a function; it applies from the
// function's next deploy, as in Lambda.
func (g *Gateway) PutFunctionCodeSigningConfig(ctx context.Context, name, arn string) (*lambda.FunctionCodeSigningConfig, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if arn == "" {
		return nil, lambda.InvalidParameter("CodeSigningConfigArn is required")
	}
	c, err := g.codeSigningConfig(arn)
	if err != nil {
		return nil, err
	}
	if err := g.cfg.Store.PutFunctionCodeSigningConfig(ctx, fn.Name, c.ID); err != nil {
		return nil, g.codeSigningStoreError(c.ID, err)
	}
	return &lambda.FunctionCodeSigningConfig{CodeSigningConfigArn: lambda.CodeSigningConfigARN(g.cfg.Region, c.ID), FunctionName: fn.Name}, nil
}

// GetFunctionCodeSigningConfig names a function's configuration ("" when it has none).
func (g *Gateway) GetFunctionCodeSigningConfig(name string) (*lambda.FunctionCodeSigningConfig, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	out := &lambda.FunctionCodeSigningConfig{FunctionName: fn.Name}
	if id, ok := g.cfg.Store.FunctionCodeSigningConfig(fn.Name); ok {
		out.CodeSigningConfigArn = lambda.CodeSigningConfigARN(g.cfg.Region, id)
	}
	return out, nil
}

// DeleteFunctionCodeSigningConfig detaches a function's configuration (none: nothing to do).
func (g *Gateway) DeleteFunctionCodeSigningConfig(ctx context.Context, name string) error {
	fn, err := g.existing(name)
	if err != nil {
		return err
	}
	if _, ok := g.cfg.Store.FunctionCodeSigningConfig(fn.Name); !ok {
		return nil
	}
	if err := g.cfg.Store.DeleteFunctionCodeSigningConfig(ctx, fn.Name); err != nil && !errors.Is(err, g.cfg.StoreErrors.NotFound) {
		return g.storeError(fn.Name, err)
	}
	return nil
}

// attachedCodeSigning is the configuration attached to function name, nil when none.
func (g *Gateway) attachedCodeSigning(name string) *structs.CodeSigningConfig {
	id, ok := g.cfg.Store.FunctionCodeSigningConfig(name)
	if !ok {
		return nil
	}
	c, _ := g.cfg.Store.CodeSigningConfig(id)
	return c
}

// artifact is code to check: a zip of the code store or a pinned image.
type artifact struct {
	what  string // "code", "layer deps:3"
	sha   string
	image string
}

// codeArtifacts are fn's code and, with layers, its layers.
func codeArtifacts(fn *structs.Function, layers bool) []artifact {
	var out []artifact
	if fn.IsImage() {
		out = append(out, artifact{what: "image " + fn.ResolvedImageURI, image: fn.ResolvedImageURI})
	} else if fn.CodeSha256 != "" {
		out = append(out, artifact{what: "code", sha: fn.CodeSha256})
	}
	if layers {
		for _, l := range fn.Layers {
			out = append(out, artifact{what: fmt.Sprintf("layer %s:%d", l.Name, l.Version), sha: l.CodeSha256})
		}
	}
	return out
}

// VerifySigned checks what of fn's code arts names under configuration c with v, as every
// deploy and every node before it runs code does: the publisher who signed the first, or the
// error that refuses it (an InvalidCodeSignatureException, whatever the policy, or a
// CodeVerificationFailedException under Enforce). Under Warn, what did not verify is logged by
// the caller from warn.
func verifySigned(ctx context.Context, v CodeVerifier, c *structs.CodeSigningConfig, region string, arts []artifact) (publisher string, warn error, err error) {
	for i, a := range arts {
		var p string
		var verr error
		switch {
		case v == nil:
			verr = &signing.UntrustedError{Reason: "this node declares no signing_publisher"}
		case a.image != "":
			p, verr = v.VerifyImage(ctx, a.image, c.AllowedPublishers)
		default:
			p, verr = v.VerifyCode(ctx, a.sha, c.AllowedPublishers)
		}
		var ie *signing.IntegrityError
		var ue *signing.UntrustedError
		switch {
		case verr == nil:
		case errors.As(verr, &ie):
			return "", nil, lambda.InvalidCodeSignature("The %s's signature failed the integrity check: %s", a.what, ie.Reason)
		case errors.Is(verr, signing.ErrUnsigned), errors.As(verr, &ue):
			if c.Enforce() {
				return "", nil, lambda.CodeVerificationFailed("The %s failed the checks of code signing configuration %s (Enforce): %v",
					a.what, lambda.CodeSigningConfigARN(region, c.ID), verr)
			}
			warn = errors.Join(warn, fmt.Errorf("%s: %w", a.what, verr))
		case ctx.Err() != nil:
			return "", nil, ctx.Err()
		default:
			return "", nil, lambda.ServiceError("checking the signature of the %s: %v", a.what, verr)
		}
		if i == 0 {
			publisher = p
		}
	}
	return publisher, warn, nil
}

// checkSignature checks fn's code (and, with layers, its layers) under configuration c (nil:
// nothing to check) at deploy, and records what it found in fn.CodeSignature.
func (g *Gateway) checkSignature(ctx context.Context, fn *structs.Function, c *structs.CodeSigningConfig, layers bool) error {
	if c == nil {
		fn.CodeSignature = nil
		return nil
	}
	p, warn, err := verifySigned(ctx, g.cfg.Verifier, c, g.cfg.Region, codeArtifacts(fn, layers))
	if err != nil {
		return err
	}
	if warn != nil {
		g.logger.Warn("deploying code that does not verify: the code signing configuration warns only (Warn)", "function", fn.Name,
			"code_signing_config", c.ID, "reason", warn)
	}
	fn.CodeSignature = &structs.CodeSignature{Config: c.ID, Publisher: p}
	return nil
}

// checkLayers checks layers added to a function under its configuration.
func (g *Gateway) checkLayers(ctx context.Context, fn *structs.Function, before []structs.FunctionLayer) error {
	c := g.attachedCodeSigning(fn.Name)
	if c == nil {
		return nil
	}
	var added []artifact
	for _, l := range fn.Layers {
		if !slices.ContainsFunc(before, func(b structs.FunctionLayer) bool { return b.CodeSha256 == l.CodeSha256 }) {
			added = append(added, artifact{what: fmt.Sprintf("layer %s:%d", l.Name, l.Version), sha: l.CodeSha256})
		}
	}
	_, warn, err := verifySigned(ctx, g.cfg.Verifier, c, g.cfg.Region, added)
	if warn != nil {
		g.logger.Warn("adding layers that do not verify: the code signing configuration warns only (Warn)", "function", fn.Name,
			"code_signing_config", c.ID, "reason", warn)
	}
	return err
}

// CheckRun is the check a node makes before it starts an environment of fn: code deployed under
// a code signing configuration is checked again, with this node's publishers, under the
// configuration attached now (none: nothing to check, as a detached function runs what it has).
// Code deployed before any configuration was attached runs, as in Lambda, until its next
// deploy. It returns nil to run, or why not (Enforce), and logs what Warn lets through.
func CheckRun(ctx context.Context, v CodeVerifier, store CodeSigningStore, region string, fn *structs.Function) (warn, err error) {
	if fn.CodeSignature == nil {
		return nil, nil
	}
	id, ok := store.FunctionCodeSigningConfig(fn.Name)
	if !ok {
		return nil, nil
	}
	c, ok := store.CodeSigningConfig(id)
	if !ok {
		return nil, nil
	}
	_, warn, err = verifySigned(ctx, v, c, region, codeArtifacts(fn, true))
	return warn, err
}
