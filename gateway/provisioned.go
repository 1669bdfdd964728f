package gateway

import (
	"context"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// Provisioned concurrency (Lambda's PutProvisionedConcurrencyConfig and friends): a published
// version or an alias keeps a number of environments initialised and frozen. The configuration
// lives in the replicated state; ProvisionTargets turns it into what the sandbox keeps, and
// the sandbox reports readiness back for the API's Status.

// provisionedQualifier checks that qualifier of fn can take provisioned concurrency: a
// published version, or an alias whose versions are all published.
func (g *Gateway) provisionedQualifier(fn *structs.Function, qualifier string) error {
	if err := lambda.InvalidFields(structs.ValidateProvisionedQualifier(qualifier)); err != nil {
		return err
	}
	if _, ok := g.cfg.Store.Version(fn.Name, qualifier); ok {
		return nil
	}
	a, ok := g.cfg.Store.Alias(fn.Name, qualifier)
	if !ok {
		return lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, fn.Name, qualifier))
	}
	if a.FunctionVersion == structs.LatestVersion {
		return lambda.InvalidParameter("Provisioned Concurrency Configs cannot be applied to unpublished function versions: alias %s points to $LATEST", qualifier)
	}
	return nil
}

// PutProvisionedConcurrencyConfig sets how many environments qualifier keeps initialised. The
// answer is IN_PROGRESS until they are (Lambda's 202).
func (g *Gateway) PutProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string, n int) (*lambda.ProvisionedConcurrencyConfig, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if err := g.provisionedQualifier(fn, qualifier); err != nil {
		return nil, err
	}
	if err := lambda.InvalidFields(structs.ValidateProvisionedCount(n)); err != nil {
		return nil, err
	}
	// Provisioned environments run within the function's reservation and the node's limit.
	others, all := 0, 0
	for _, p := range g.cfg.Store.ProvisionedConcurrencies("") {
		if p.Function == fn.Name && p.Qualifier == qualifier {
			continue
		}
		all += p.Requested
		if p.Function == fn.Name {
			others += p.Requested
		}
	}
	if r, ok := g.cfg.Store.ReservedConcurrency(fn.Name); ok && others+n > r {
		return nil, lambda.InvalidParameter("Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function: %d requested here, %d by its other qualifiers, %d reserved",
			n, others, r)
	}
	if g.cfg.MaxConcurrency > 0 && all+n > g.cfg.MaxConcurrency {
		return nil, lambda.InvalidParameter("Requested Provisioned Concurrency exceeds the node's max_concurrency: %d requested here, %d by other functions and qualifiers, max_concurrency %d",
			n, all, g.cfg.MaxConcurrency)
	}
	pc := &structs.ProvisionedConcurrency{Function: fn.Name, Qualifier: qualifier, Requested: n,
		LastModified: time.Now().UTC().Format("2006-01-02T15:04:05-0700")}
	if err := g.cfg.Store.PutProvisionedConcurrency(ctx, pc); err != nil {
		return nil, g.storeError(fn.Name, err)
	}
	return g.provisionedConfig(pc, false), nil
}

// GetProvisionedConcurrencyConfig reports a qualifier's configuration and how much of it is ready.
func (g *Gateway) GetProvisionedConcurrencyConfig(name, qualifier string) (*lambda.ProvisionedConcurrencyConfig, error) {
	pc, err := g.provisioned(name, qualifier)
	if err != nil {
		return nil, err
	}
	return g.provisionedConfig(pc, false), nil
}

// DeleteProvisionedConcurrencyConfig removes a qualifier's configuration; its environments
// then serve on demand or are retired.
func (g *Gateway) DeleteProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string) error {
	pc, err := g.provisioned(name, qualifier)
	if err != nil {
		return err
	}
	if err := g.cfg.Store.DeleteProvisionedConcurrency(ctx, pc.Function, pc.Qualifier); err != nil {
		return g.storeError(pc.Function, err)
	}
	return nil
}

// ListProvisionedConcurrencyConfigs lists a function's configurations, paged by qualifier.
func (g *Gateway) ListProvisionedConcurrencyConfigs(name, marker string, max int) (*lambda.ListProvisionedConcurrencyConfigsOutput, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if max <= 0 {
		max = 50
	}
	out := &lambda.ListProvisionedConcurrencyConfigsOutput{ProvisionedConcurrencyConfigs: []lambda.ProvisionedConcurrencyConfig{}}
	for _, pc := range g.cfg.Store.ProvisionedConcurrencies(fn.Name) {
		if marker != "" && pc.Qualifier <= marker {
			continue
		}
		if len(out.ProvisionedConcurrencyConfigs) == max {
			next := out.ProvisionedConcurrencyConfigs[max-1].FunctionArn
			last := next[len(lambda.FunctionARN(g.cfg.Region, fn.Name, ""))+1:]
			out.NextMarker = &last
			break
		}
		out.ProvisionedConcurrencyConfigs = append(out.ProvisionedConcurrencyConfigs, *g.provisionedConfig(pc, true))
	}
	return out, nil
}

func (g *Gateway) provisioned(name, qualifier string) (*structs.ProvisionedConcurrency, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if qualifier == "" {
		return nil, lambda.InvalidParameter("Qualifier is required: provisioned concurrency applies to a published version or an alias")
	}
	pc, ok := g.cfg.Store.ProvisionedConcurrency(fn.Name, qualifier)
	if !ok {
		return nil, &lambda.Error{Status: 404, Type: "ProvisionedConcurrencyConfigNotFoundException",
			Message: "No Provisioned Concurrency Config found for this function: " + lambda.FunctionARN(g.cfg.Region, fn.Name, qualifier)}
	}
	return pc, nil
}

// provisionedConfig is the API's view of pc: readiness summed over the versions it covers.
func (g *Gateway) provisionedConfig(pc *structs.ProvisionedConcurrency, withARN bool) *lambda.ProvisionedConcurrencyConfig {
	out := &lambda.ProvisionedConcurrencyConfig{RequestedProvisionedConcurrentExecutions: pc.Requested, LastModified: pc.LastModified,
		Status: lambda.ProvisionedInProgress}
	if withARN {
		out.FunctionArn = lambda.FunctionARN(g.cfg.Region, pc.Function, pc.Qualifier)
	}
	if g.cfg.Provisioning == nil {
		return out
	}
	ready, failure := 0, ""
	for version, n := range g.provisionedShare(pc) {
		r, f := g.cfg.Provisioning.ProvisionedStatus(pc.Function, version)
		ready += min(r, n)
		if f != "" {
			failure = f
		}
	}
	out.AvailableProvisionedConcurrentExecutions = ready
	out.AllocatedProvisionedConcurrentExecutions = ready
	switch {
	case ready >= pc.Requested:
		out.Status = lambda.ProvisionedReady
	case failure != "":
		out.Status, out.StatusReason = lambda.ProvisionedFailed, failure
	}
	return out
}

// provisionedShare maps the versions pc covers to their share of it: an alias's environments
// are split between its versions by their weights, as Lambda does.
func (g *Gateway) provisionedShare(pc *structs.ProvisionedConcurrency) map[string]int {
	if a, ok := g.cfg.Store.Alias(pc.Function, pc.Qualifier); ok {
		share := a.Share(pc.Requested)
		delete(share, structs.LatestVersion)
		return share
	}
	return map[string]int{pc.Qualifier: pc.Requested}
}

// ProvisionTargets is what this node's sandbox should keep initialised, per published version,
// for every provisioned concurrency configuration in the state: share gives this node's part
// of a version's environments (the whole on a single node).
func (g *Gateway) ProvisionTargets(share func(fn *structs.Function, version string, n int) int) []invoke.Provision {
	var out []invoke.Provision
	for _, pc := range g.cfg.Store.ProvisionedConcurrencies("") {
		for version, n := range g.provisionedShare(pc) {
			if v, ok := g.cfg.Store.Version(pc.Function, version); ok && n > 0 {
				if n = share(v, version, n); n > 0 {
					out = append(out, invoke.Provision{Function: v, Count: n})
				}
			}
		}
	}
	return out
}
