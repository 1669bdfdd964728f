package gateway

import (
	"context"
	"errors"
	"math"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// route picks the version an invocation of alias a runs. With a weighted second version, the
// k-th invocation goes to it when floor(k*w) grows, so over any run of calls its share is w
// within one call (Lambda draws at random; an exact split keeps canaries predictable). The
// count is this node's.
func (g *Gateway) route(a *structs.Alias) string {
	for v, w := range a.AdditionalVersionWeights {
		key := a.Function + ":" + a.Name + ":" + a.RevisionID
		c, _ := g.routing.LoadOrStore(key, new(atomic.Uint64))
		k := float64(c.(*atomic.Uint64).Add(1))
		if math.Floor(k*w) > math.Floor((k-1)*w) {
			return v
		}
	}
	return a.FunctionVersion
}

// CreateAlias creates an alias of a function.
func (g *Gateway) CreateAlias(ctx context.Context, name string, in *lambda.AliasInput) (*lambda.AliasConfiguration, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	a := &structs.Alias{Function: fn.Name, Name: in.Name}
	if err := g.applyAliasInput(a, in); err != nil {
		return nil, err
	}
	stored, err := g.cfg.Store.PutAlias(ctx, a, true, false, "")
	if err != nil {
		return nil, g.aliasStoreError(a, err)
	}
	return g.aliasConfig(stored), nil
}

// UpdateAlias changes what is set in in.
func (g *Gateway) UpdateAlias(ctx context.Context, name, alias string, in *lambda.AliasInput) (*lambda.AliasConfiguration, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	cur, ok := g.cfg.Store.Alias(fn.Name, alias)
	if !ok {
		return nil, g.aliasNotFound(fn.Name, alias)
	}
	a := cur.Copy()
	if err := g.applyAliasInput(a, in); err != nil {
		return nil, err
	}
	stored, err := g.cfg.Store.PutAlias(ctx, a, false, true, in.RevisionId)
	if err != nil {
		return nil, g.aliasStoreError(a, err)
	}
	return g.aliasConfig(stored), nil
}

// GetAlias describes an alias.
func (g *Gateway) GetAlias(name, alias string) (*lambda.AliasConfiguration, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	a, ok := g.cfg.Store.Alias(fn.Name, alias)
	if !ok {
		return nil, g.aliasNotFound(fn.Name, alias)
	}
	return g.aliasConfig(a), nil
}

// ListAliases lists a function's aliases by name.
func (g *Gateway) ListAliases(name string) (*lambda.ListAliasesOutput, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	out := &lambda.ListAliasesOutput{Aliases: []lambda.AliasConfiguration{}}
	for _, a := range g.cfg.Store.Aliases(fn.Name) {
		out.Aliases = append(out.Aliases, *g.aliasConfig(a))
	}
	return out, nil
}

// DeleteAlias removes an alias (and its function URL).
func (g *Gateway) DeleteAlias(ctx context.Context, name, alias string) error {
	fn, err := g.existing(name)
	if err != nil {
		return err
	}
	if err := g.cfg.Store.DeleteAlias(ctx, fn.Name, alias); err != nil {
		return g.aliasStoreError(&structs.Alias{Function: fn.Name, Name: alias}, err)
	}
	return nil
}

// applyAliasInput sets a's fields from in (those set) and checks them against the function's
// versions. Every change gets a new revision.
func (g *Gateway) applyAliasInput(a *structs.Alias, in *lambda.AliasInput) error {
	if in.FunctionVersion != "" {
		a.FunctionVersion = in.FunctionVersion
	}
	if in.Description != nil {
		a.Description = *in.Description
	}
	if in.RoutingConfig != nil {
		a.AdditionalVersionWeights = in.RoutingConfig.AdditionalVersionWeights
	}
	// The alias's own rules first (those of HCL alias blocks), then its versions must exist.
	if err := lambda.InvalidFields(a.Validate()); err != nil {
		return err
	}
	if a.FunctionVersion != structs.LatestVersion {
		if _, ok := g.cfg.Store.Version(a.Function, a.FunctionVersion); !ok {
			return lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, a.Function, a.FunctionVersion))
		}
	}
	for v := range a.AdditionalVersionWeights {
		if _, ok := g.cfg.Store.Version(a.Function, v); !ok {
			return lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, a.Function, v))
		}
	}
	a.RevisionID = uuid.NewString()
	return nil
}

func (g *Gateway) aliasConfig(a *structs.Alias) *lambda.AliasConfiguration {
	c := &lambda.AliasConfiguration{
		AliasArn: lambda.FunctionARN(g.cfg.Region, a.Function, a.Name), Name: a.Name, FunctionVersion: a.FunctionVersion,
		Description: a.Description, RevisionId: a.RevisionID,
	}
	if len(a.AdditionalVersionWeights) > 0 {
		c.RoutingConfig = &lambda.AliasRoutingConfiguration{AdditionalVersionWeights: a.AdditionalVersionWeights}
	}
	return c
}

func (g *Gateway) aliasNotFound(fn, alias string) error {
	return lambda.ResourceNotFound("Alias not found: %s", lambda.FunctionARN(g.cfg.Region, fn, alias))
}

func (g *Gateway) aliasStoreError(a *structs.Alias, err error) error {
	se := g.cfg.StoreErrors
	switch {
	case se.Exists != nil && errors.Is(err, se.Exists):
		return lambda.ResourceConflict("Alias already exists: %s", lambda.FunctionARN(g.cfg.Region, a.Function, a.Name))
	case se.NotFound != nil && errors.Is(err, se.NotFound):
		if _, ok := g.cfg.Store.Alias(a.Function, a.Name); !ok {
			return g.aliasNotFound(a.Function, a.Name)
		}
	}
	return g.storeError(a.Function, err)
}
