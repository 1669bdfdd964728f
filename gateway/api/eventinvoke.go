package api

import (
	"context"
	"net/url"

	"github.com/lambdagw/gateway/internal/lambda"
)

// The event invoke configuration operations (2019-09-25): a function's asynchronous invocation
// settings, per qualifier ("" is the unqualified function, $LATEST).

func eventInvokePath(name, qualifier string) string {
	p := "/2019-09-25/functions/" + url.PathEscape(name) + "/event-invoke-config"
	if qualifier != "" {
		p += "?Qualifier=" + url.QueryEscape(qualifier)
	}
	return p
}

// PutFunctionEventInvokeConfig replaces a qualifier's configuration (what in leaves out is
// removed).
func (c *Client) PutFunctionEventInvokeConfig(ctx context.Context, name, qualifier string, in *lambda.EventInvokeConfigInput) (*lambda.FunctionEventInvokeConfig, error) {
	var out lambda.FunctionEventInvokeConfig
	return &out, c.json(ctx, "PUT", eventInvokePath(name, qualifier), in, &out)
}

// UpdateFunctionEventInvokeConfig changes what in sets of an existing configuration.
func (c *Client) UpdateFunctionEventInvokeConfig(ctx context.Context, name, qualifier string, in *lambda.EventInvokeConfigInput) (*lambda.FunctionEventInvokeConfig, error) {
	var out lambda.FunctionEventInvokeConfig
	return &out, c.json(ctx, "POST", eventInvokePath(name, qualifier), in, &out)
}

// GetFunctionEventInvokeConfig reads a qualifier's configuration (ResourceNotFoundException
// when it has none).
func (c *Client) GetFunctionEventInvokeConfig(ctx context.Context, name, qualifier string) (*lambda.FunctionEventInvokeConfig, error) {
	var out lambda.FunctionEventInvokeConfig
	return &out, c.json(ctx, "GET", eventInvokePath(name, qualifier), nil, &out)
}

// DeleteFunctionEventInvokeConfig removes a qualifier's configuration.
func (c *Client) DeleteFunctionEventInvokeConfig(ctx context.Context, name, qualifier string) error {
	return c.json(ctx, "DELETE", eventInvokePath(name, qualifier), nil, nil)
}

// ListFunctionEventInvokeConfigs returns every configuration of a function, following the
// pages (FunctionArn names each one's qualifier).
func (c *Client) ListFunctionEventInvokeConfigs(ctx context.Context, name string) ([]lambda.FunctionEventInvokeConfig, error) {
	return listAll(ctx, c, "/2019-09-25/functions/"+url.PathEscape(name)+"/event-invoke-config/list", url.Values{},
		func(p *lambda.ListFunctionEventInvokeConfigsOutput) ([]lambda.FunctionEventInvokeConfig, *string) {
			return p.FunctionEventInvokeConfigs, p.NextMarker
		})
}
