package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// urlQualifier checks a function URL's qualifier: none ($LATEST) or an existing alias (Lambda
// gives versions no URLs).
func (g *Gateway) urlQualifier(name, qualifier string) (string, error) {
	if qualifier == "" || qualifier == structs.LatestVersion {
		return "", nil
	}
	if strings.Contains(qualifier, structs.URLIDSeparator) {
		return "", lambda.InvalidParameter("Qualifier %q may not contain %q", qualifier, structs.URLIDSeparator)
	}
	if _, ok := g.cfg.Store.Alias(name, qualifier); !ok {
		return "", lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, name, qualifier))
	}
	return qualifier, nil
}

func (g *Gateway) urlAddress(id string) string {
	if g.cfg.URLAddress == nil {
		return ""
	}
	return g.cfg.URLAddress(id)
}

func (g *Gateway) urlConfig(u *structs.FunctionURL) *lambda.FunctionURLConfig {
	c := lambda.FunctionURLConfigFrom(u, g.cfg.Region, g.urlAddress(u.ID()))
	return &c
}

// applyURLInput sets u's fields from in (only those set, for an update) and validates them.
func applyURLInput(u *structs.FunctionURL, in *lambda.FunctionURLConfigInput) error {
	if in.AuthType != "" {
		u.AuthType = in.AuthType
	}
	if in.InvokeMode != "" {
		u.InvokeMode = in.InvokeMode
	}
	if u.InvokeMode == "" {
		u.InvokeMode = structs.InvokeBuffered
	}
	if u.AuthType == "" {
		return lambda.InvalidParameter("AuthType is required: NONE or AWS_IAM")
	}
	if in.Cors != nil {
		cors := in.Cors.Structs()
		cors.Normalize()
		u.Cors = &cors
		if cors.IsZero() {
			u.Cors = nil // an empty policy (how apply clears one) is no policy
		}
	}
	return lambda.InvalidFields(u.Validate())
}

// CreateFunctionURLConfig gives a function (or alias) a URL.
func (g *Gateway) CreateFunctionURLConfig(ctx context.Context, name, qualifier string, in *lambda.FunctionURLConfigInput) (*lambda.FunctionURLConfig, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	q, err := g.urlQualifier(fn.Name, qualifier)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	u := &structs.FunctionURL{Function: fn.Name, Qualifier: q, CreationTime: now, LastModified: now}
	if err := applyURLInput(u, in); err != nil {
		return nil, err
	}
	stored, err := g.cfg.Store.PutFunctionURL(ctx, u, true, false)
	if err != nil {
		return nil, g.urlStoreError(u.ID(), fn.Name, err)
	}
	return g.urlConfig(stored), nil
}

// UpdateFunctionURLConfig changes the fields of in that are set.
func (g *Gateway) UpdateFunctionURLConfig(ctx context.Context, name, qualifier string, in *lambda.FunctionURLConfigInput) (*lambda.FunctionURLConfig, error) {
	cur, err := g.functionURL(name, qualifier)
	if err != nil {
		return nil, err
	}
	u := cur.Copy()
	u.LastModified = time.Now().UTC()
	if err := applyURLInput(u, in); err != nil {
		return nil, err
	}
	stored, err := g.cfg.Store.PutFunctionURL(ctx, u, false, true)
	if err != nil {
		return nil, g.urlStoreError(u.ID(), u.Function, err)
	}
	return g.urlConfig(stored), nil
}

// GetFunctionURLConfig describes a function URL.
func (g *Gateway) GetFunctionURLConfig(name, qualifier string) (*lambda.FunctionURLConfig, error) {
	u, err := g.functionURL(name, qualifier)
	if err != nil {
		return nil, err
	}
	return g.urlConfig(u), nil
}

// ListFunctionURLConfigs lists a function's URLs.
func (g *Gateway) ListFunctionURLConfigs(name string) ([]lambda.FunctionURLConfig, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	out := []lambda.FunctionURLConfig{}
	for _, u := range g.cfg.Store.FunctionURLs(fn.Name) {
		out = append(out, *g.urlConfig(u))
	}
	return out, nil
}

// DeleteFunctionURLConfig removes a function URL.
func (g *Gateway) DeleteFunctionURLConfig(ctx context.Context, name, qualifier string) error {
	u, err := g.functionURL(name, qualifier)
	if err != nil {
		return err
	}
	if err := g.cfg.Store.DeleteFunctionURL(ctx, u.ID()); err != nil {
		return g.urlStoreError(u.ID(), u.Function, err)
	}
	return nil
}

func (g *Gateway) functionURL(name, qualifier string) (*structs.FunctionURL, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	q, err := g.urlQualifier(fn.Name, qualifier)
	if err != nil {
		return nil, err
	}
	u, ok := g.cfg.Store.FunctionURL(structs.URLID(fn.Name, q))
	if !ok {
		return nil, lambda.ResourceNotFound("The resource you requested does not exist.")
	}
	return u, nil
}

func (g *Gateway) urlStoreError(id, fn string, err error) error {
	se := g.cfg.StoreErrors
	switch {
	case se.Exists != nil && errors.Is(err, se.Exists):
		return lambda.ResourceConflict("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", lambda.FunctionARN(g.cfg.Region, fn, ""))
	case se.NotFound != nil && errors.Is(err, se.NotFound):
		return lambda.ResourceNotFound("The resource you requested does not exist.")
	}
	return g.storeError(fn, err)
}

// FunctionURLByID finds the function URL a request names by its URL id (the host label of
// <id>.<url_domain>, or the segment after /fn/). Unknown ids, and functions without a URL,
// are not found: a function is reachable this way only once it has a URL config.
func (g *Gateway) FunctionURLByID(id string) (*structs.FunctionURL, error) {
	if u, ok := g.cfg.Store.FunctionURL(id); ok {
		return u, nil
	}
	// Browsers and resolvers lower-case host names, function names need not be: a host
	// label that matches no id exactly matches one that differs only in case.
	for _, u := range g.cfg.Store.FunctionURLs("") {
		if strings.EqualFold(u.ID(), id) {
			return u, nil
		}
	}
	return nil, lambda.ResourceNotFound("Function URL not found: %s", id)
}
