package api

import (
	"context"
	"net/url"
	"strconv"

	"github.com/lambdagw/gateway/internal/lambda"
)

// Layers (Lambda's layer versions).

func layerVersionsPath(name string) string {
	return "/2018-10-31/layers/" + url.PathEscape(name) + "/versions"
}

// PublishLayerVersion publishes a new version of a layer from a zip (ZipFile, or
// GatewayCodeSha256 for a zip the node holds: see HasCode).
func (c *Client) PublishLayerVersion(ctx context.Context, name string, in *lambda.PublishLayerVersionInput) (*lambda.LayerVersionOutput, error) {
	var out lambda.LayerVersionOutput
	if err := c.json(ctx, "POST", layerVersionsPath(name), in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetLayerVersion describes one version of a layer, with its content's hash.
func (c *Client) GetLayerVersion(ctx context.Context, name string, version int64) (*lambda.LayerVersionOutput, error) {
	var out lambda.LayerVersionOutput
	if err := c.json(ctx, "GET", layerVersionsPath(name)+"/"+strconv.FormatInt(version, 10), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListLayerVersions returns every version of a layer, newest first, following the pages; none
// for a layer that has no version.
func (c *Client) ListLayerVersions(ctx context.Context, name string) ([]lambda.LayerVersionsListItem, error) {
	return listAll(ctx, c, layerVersionsPath(name), url.Values{"MaxItems": {"50"}},
		func(p *lambda.ListLayerVersionsOutput) ([]lambda.LayerVersionsListItem, *string) {
			return p.LayerVersions, p.NextMarker
		})
}
