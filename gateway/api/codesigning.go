package api

import (
	"context"
	"net/url"

	"github.com/lambdagw/gateway/internal/lambda"
)

// The code signing operations: code signing configurations (2020-04-22), named by ARN or ID,
// and a function's configuration (2020-06-30).

func codeSigningPath(arn string) string {
	return "/2020-04-22/code-signing-configs/" + url.PathEscape(arn)
}

// CreateCodeSigningConfig makes a configuration.
func (c *Client) CreateCodeSigningConfig(ctx context.Context, in *lambda.CodeSigningConfigInput) (*lambda.CodeSigningConfig, error) {
	var out lambda.CodeSigningConfigOutput
	if err := c.json(ctx, "POST", "/2020-04-22/code-signing-configs/", in, &out); err != nil {
		return nil, err
	}
	return &out.CodeSigningConfig, nil
}

// GetCodeSigningConfig reads a configuration.
func (c *Client) GetCodeSigningConfig(ctx context.Context, arn string) (*lambda.CodeSigningConfig, error) {
	var out lambda.CodeSigningConfigOutput
	if err := c.json(ctx, "GET", codeSigningPath(arn), nil, &out); err != nil {
		return nil, err
	}
	return &out.CodeSigningConfig, nil
}

// UpdateCodeSigningConfig changes what in sets of a configuration.
func (c *Client) UpdateCodeSigningConfig(ctx context.Context, arn string, in *lambda.CodeSigningConfigInput) (*lambda.CodeSigningConfig, error) {
	var out lambda.CodeSigningConfigOutput
	if err := c.json(ctx, "PUT", codeSigningPath(arn), in, &out); err != nil {
		return nil, err
	}
	return &out.CodeSigningConfig, nil
}

// DeleteCodeSigningConfig deletes a configuration no function uses.
func (c *Client) DeleteCodeSigningConfig(ctx context.Context, arn string) error {
	return c.json(ctx, "DELETE", codeSigningPath(arn), nil, nil)
}

// ListCodeSigningConfigs returns every configuration, following the pages.
func (c *Client) ListCodeSigningConfigs(ctx context.Context) ([]lambda.CodeSigningConfig, error) {
	return listAll(ctx, c, "/2020-04-22/code-signing-configs/", url.Values{},
		func(p *lambda.ListCodeSigningConfigsOutput) ([]lambda.CodeSigningConfig, *string) {
			return p.CodeSigningConfigs, p.NextMarker
		})
}

// ListFunctionsByCodeSigningConfig returns the ARNs of the functions a configuration is
// attached to.
func (c *Client) ListFunctionsByCodeSigningConfig(ctx context.Context, arn string) ([]string, error) {
	return listAll(ctx, c, codeSigningPath(arn)+"/functions", url.Values{},
		func(p *lambda.ListFunctionsByCodeSigningConfigOutput) ([]string, *string) {
			return p.FunctionArns, p.NextMarker
		})
}

func functionSigningPath(name string) string {
	return "/2020-06-30/functions/" + url.PathEscape(name) + "/code-signing-config"
}

// PutFunctionCodeSigningConfig attaches a configuration to a function.
func (c *Client) PutFunctionCodeSigningConfig(ctx context.Context, name, arn string) error {
	return c.json(ctx, "PUT", functionSigningPath(name), &lambda.FunctionCodeSigningConfig{CodeSigningConfigArn: arn}, nil)
}

// GetFunctionCodeSigningConfig returns the ARN of a function's configuration ("" for none).
func (c *Client) GetFunctionCodeSigningConfig(ctx context.Context, name string) (string, error) {
	var out lambda.FunctionCodeSigningConfig
	if err := c.json(ctx, "GET", functionSigningPath(name), nil, &out); err != nil {
		return "", err
	}
	return out.CodeSigningConfigArn, nil
}

// DeleteFunctionCodeSigningConfig detaches a function's configuration.
func (c *Client) DeleteFunctionCodeSigningConfig(ctx context.Context, name string) error {
	return c.json(ctx, "DELETE", functionSigningPath(name), nil, nil)
}
