package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/structs"
)

// Code signing: a code_signing_config block is the agent's configuration of its name (the ID
// the name gives, structs.CodeSigningConfigID), created or updated before the functions that
// name it are planned; a function's code_signing_config attaches it before the function's code
// is updated (so the new code is checked under it); and a function's code_signature is uploaded
// with its zip, as a signed zip.

// CodeSigningAgent is the part of the agent's API code signing reads and writes (*api.Client).
type CodeSigningAgent interface {
	GetCodeSigningConfig(ctx context.Context, arn string) (*lambda.CodeSigningConfig, error)
	CreateCodeSigningConfig(ctx context.Context, in *lambda.CodeSigningConfigInput) (*lambda.CodeSigningConfig, error)
	UpdateCodeSigningConfig(ctx context.Context, arn string, in *lambda.CodeSigningConfigInput) (*lambda.CodeSigningConfig, error)
	DeleteCodeSigningConfig(ctx context.Context, arn string) error
	ListCodeSigningConfigs(ctx context.Context) ([]lambda.CodeSigningConfig, error)
	GetFunctionCodeSigningConfig(ctx context.Context, name string) (string, error)
	PutFunctionCodeSigningConfig(ctx context.Context, name, arn string) error
	DeleteFunctionCodeSigningConfig(ctx context.Context, name string) error
}

// CodeSigning is the kind of a change to a code signing configuration (Change.Layer names it,
// "code_signing_config NAME"), or to a function's attachment.
const CodeSigning Kind = "code-signing"

// isNotFound says whether err is the agent's answer for something that does not exist.
func isNotFound(err error) bool {
	var le *lambda.Error
	return errors.As(err, &le) && (le.Type == "ResourceNotFoundException" || le.Type == "CodeSigningConfigNotFoundException")
}

// publisherNames maps a configuration's publishers' ARNs to their names.
func publisherNames(arns []string) []string {
	out := make([]string, 0, len(arns))
	for _, a := range arns {
		n, err := lambda.ParseSigningProfileARN(a)
		if err != nil {
			n = a
		}
		out = append(out, n)
	}
	return out
}

// signingInput is the API's request for a block.
func signingInput(c *config.CodeSigningConfig) *lambda.CodeSigningConfigInput {
	// The agent answers a named configuration's publishers in its own region; the region here
	// is not read.
	arns := make([]string, len(c.AllowedPublishers))
	for i, p := range c.AllowedPublishers {
		arns[i] = lambda.SigningProfileARN("", p)
	}
	desc := c.Description
	return &lambda.CodeSigningConfigInput{AllowedPublishers: &lambda.AllowedPublishers{SigningProfileVersionArns: arns},
		CodeSigningPolicies: &lambda.CodeSigningPolicies{UntrustedArtifactOnDeployment: c.UntrustedArtifactOnDeployment},
		Description:         &desc, GatewayName: c.Name}
}

// PlanCodeSigningConfig compares a code_signing_config block with the agent's configuration of
// its name and returns its creation or update; none when they are equal. It must come before
// the plans of the functions that name it. Errors are *Error.
func (r *Reconciler) PlanCodeSigningConfig(ctx context.Context, c *config.CodeSigningConfig) ([]Change, error) {
	subject := "code_signing_config " + c.Name
	cur, err := r.agent.GetCodeSigningConfig(ctx, c.ID)
	if err != nil && !isNotFound(err) {
		return nil, &Error{Layer: subject, Err: fmt.Errorf("reading the configuration: %w", err)}
	}
	what := fmt.Sprintf("%s, publishers %s", c.UntrustedArtifactOnDeployment, strings.Join(c.AllowedPublishers, ", "))
	if cur == nil {
		return []Change{{Layer: subject, Kind: CodeSigning, Text: "to create (" + what + ")",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if _, err := a.CreateCodeSigningConfig(ctx, signingInput(c)); err != nil {
					return "", fmt.Errorf("creating: %w", err)
				}
				return "created (" + what + ")", nil
			}}}, nil
	}
	var diffs []string
	if p := cur.CodeSigningPolicies.UntrustedArtifactOnDeployment; p != c.UntrustedArtifactOnDeployment {
		diffs = append(diffs, fmt.Sprintf("untrusted_artifact_on_deployment %s -> %s", p, c.UntrustedArtifactOnDeployment))
	}
	if have := publisherNames(cur.AllowedPublishers.SigningProfileVersionArns); !slices.Equal(have, c.AllowedPublishers) {
		diffs = append(diffs, fmt.Sprintf("allowed_publishers [%s] -> [%s]", strings.Join(have, ", "), strings.Join(c.AllowedPublishers, ", ")))
	}
	if cur.Description != c.Description {
		diffs = append(diffs, fmt.Sprintf("description %q -> %q", cur.Description, c.Description))
	}
	if len(diffs) == 0 {
		return nil, nil
	}
	text := "to update (" + strings.Join(diffs, ", ") + ")"
	return []Change{{Layer: subject, Kind: CodeSigning, Text: text,
		apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
			if _, err := a.UpdateCodeSigningConfig(ctx, c.ID, signingInput(c)); err != nil {
				return "", fmt.Errorf("updating: %w", err)
			}
			return "updated (" + strings.Join(diffs, ", ") + ")", nil
		}}}, nil
}

// PruneCodeSigningConfigs returns the deletion of the agent's configurations that a function
// file made (they have a name) and none of cscs declares; after the functions' plans and
// prunes, which detach them. Configurations made through the API are left alone.
func (r *Reconciler) PruneCodeSigningConfigs(ctx context.Context, cscs []*config.CodeSigningConfig) ([]Change, error) {
	declared := map[string]bool{}
	for _, c := range cscs {
		declared[c.Name] = true
	}
	all, err := r.agent.ListCodeSigningConfigs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the agent's code signing configurations: %w", err)
	}
	var out []Change
	for _, c := range all {
		if c.GatewayName == "" || declared[c.GatewayName] {
			continue
		}
		id, name := c.CodeSigningConfigId, c.GatewayName
		out = append(out, Change{Layer: "code_signing_config " + name, Kind: Delete, Text: "to delete (no file declares it)",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.DeleteCodeSigningConfig(ctx, id); err != nil {
					return "", fmt.Errorf("deleting: %w", err)
				}
				return "deleted (no file declares it)", nil
			}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Layer < out[j].Layer })
	return out, nil
}

// signingChange attaches the function's configuration, or detaches the one it has, when the
// file says otherwise; cur is the ARN of the one attached ("" none).
func signingChange(fn *config.Function, cur string) []Change {
	want := ""
	if fn.CodeSigningConfig != "" {
		want = structs.CodeSigningConfigID(fn.CodeSigningConfig)
	}
	have := ""
	if cur != "" {
		have, _ = lambda.ParseCodeSigningConfigARN(cur)
	}
	switch {
	case want == have:
		return nil
	case want == "":
		return []Change{{Function: fn.Name, Kind: CodeSigning, Text: "code signing config to detach",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.DeleteFunctionCodeSigningConfig(ctx, fn.Name); err != nil {
					return "", fmt.Errorf("detaching the code signing config: %w", err)
				}
				return "code signing config detached", nil
			}}}
	}
	return []Change{{Function: fn.Name, Kind: CodeSigning, Text: "code signing config to attach (" + fn.CodeSigningConfig + ")",
		apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
			if err := a.PutFunctionCodeSigningConfig(ctx, fn.Name, want); err != nil {
				return "", fmt.Errorf("attaching code signing config %s: %w", fn.CodeSigningConfig, err)
			}
			return "code signing config attached (" + fn.CodeSigningConfig + ")", nil
		}}}
}

// signedPkg is the package of a function's zip with its code_signature attached: the signed zip
// the agent stores and checks.
func signedPkg(pkg *codepkg.Package, bundlePath string) (*codepkg.Package, error) {
	b, err := os.ReadFile(bundlePath)
	if err != nil {
		return nil, fmt.Errorf("reading the code signature: %w", err)
	}
	if len(b) > signing.MaxBundleBytes {
		return nil, fmt.Errorf("the code signature %s is %d bytes; a bundle has at most %d", bundlePath, len(b), signing.MaxBundleBytes)
	}
	data, err := signing.Attach(pkg.Data, b)
	if err != nil {
		return nil, fmt.Errorf("attaching the code signature %s: %w", bundlePath, err)
	}
	return codepkg.FromZip(data), nil
}
