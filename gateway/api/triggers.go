package api

import (
	"context"
	"net/url"

	"github.com/lambdagw/gateway/internal/structs"
)

// Triggers (event source mappings) through the gateway's /v1 endpoints.

func triggersPath(fn string) string { return "/v1/functions/" + url.PathEscape(fn) + "/triggers" }

// PutTrigger creates or replaces trigger t.Name of function t.Function and returns it as stored
// (with its UUID).
func (c *Client) PutTrigger(ctx context.Context, t *structs.Trigger) (*structs.Trigger, error) {
	var out structs.Trigger
	if err := c.json(ctx, "PUT", triggersPath(t.Function)+"/"+url.PathEscape(t.Name), t, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteTrigger deletes a function's trigger.
func (c *Client) DeleteTrigger(ctx context.Context, fn, name string) error {
	return c.json(ctx, "DELETE", triggersPath(fn)+"/"+url.PathEscape(name), nil, nil)
}

// ListTriggers returns a function's triggers by name, or every function's when fn is empty.
func (c *Client) ListTriggers(ctx context.Context, fn string) ([]*structs.Trigger, error) {
	path := "/v1/triggers"
	if fn != "" {
		path = triggersPath(fn)
	}
	var out struct {
		Triggers []*structs.Trigger
	}
	if err := c.json(ctx, "GET", path, nil, &out); err != nil {
		return nil, err
	}
	return out.Triggers, nil
}

// SendQueueMessage puts body on a queue of the agent's NATS JetStream, for its queue triggers.
func (c *Client) SendQueueMessage(ctx context.Context, queue string, body []byte) error {
	_, _, err := c.do(ctx, "POST", "/v1/queues/"+url.PathEscape(queue)+"/messages", nil, body)
	return err
}
