package api

import (
	"context"
	"net/url"
	"strconv"
	"time"

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

// QueueMessage is a message waiting on a queue.
type QueueMessage struct {
	Sequence      uint64            `json:"Sequence"` // what DeleteQueueMessage takes
	MessageID     string            `json:"MessageId"`
	Body          string            `json:"Body"`
	Headers       map[string]string `json:"Headers,omitempty"`
	SentTimestamp time.Time         `json:"SentTimestamp"`
}

// ReceiveQueueMessages returns up to max (1 to 100) of a queue's oldest messages, leaving them
// on the queue: DeleteQueueMessage removes one.
func (c *Client) ReceiveQueueMessages(ctx context.Context, queue string, max int) ([]QueueMessage, error) {
	var out struct{ Messages []QueueMessage }
	err := c.json(ctx, "GET", "/v1/queues/"+url.PathEscape(queue)+"/messages?max="+strconv.Itoa(max), nil, &out)
	return out.Messages, err
}

// DeleteQueueMessage removes the message of sequence seq from a queue.
func (c *Client) DeleteQueueMessage(ctx context.Context, queue string, seq uint64) error {
	_, _, err := c.do(ctx, "DELETE", "/v1/queues/"+url.PathEscape(queue)+"/messages/"+strconv.FormatUint(seq, 10), nil, nil)
	return err
}

// PutRecordOutput is where a record went.
type PutRecordOutput struct {
	SequenceNumber string `json:"SequenceNumber"`
	ShardID        string `json:"ShardId"`
}

// PutStreamRecord puts data with partitionKey on a stream of the agent's NATS JetStream, as
// Kinesis's PutRecord: the stream triggers reading it get it.
func (c *Client) PutStreamRecord(ctx context.Context, stream, partitionKey string, data []byte) (*PutRecordOutput, error) {
	in := struct {
		PartitionKey string `json:"PartitionKey"`
		Data         []byte `json:"Data"`
	}{partitionKey, data}
	var out PutRecordOutput
	return &out, c.json(ctx, "POST", "/v1/streams/"+url.PathEscape(stream)+"/records", in, &out)
}
