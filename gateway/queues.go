package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lambdagw/gateway/internal/lambda"
)

// QueueMessage is a message waiting on a queue, as gateway queue receive shows it.
type QueueMessage struct {
	// Sequence is the message's place in the queue's JetStream stream: what deletes it.
	Sequence uint64 `json:"Sequence"`
	// MessageID is the messageId its function sees: the Nats-Msg-Id header, else Sequence.
	MessageID string            `json:"MessageId"`
	Body      string            `json:"Body"`
	Headers   map[string]string `json:"Headers,omitempty"`
	Sent      time.Time         `json:"SentTimestamp"`
}

// QueueReader is a QueuePublisher that also reads its queues: the agent's NATS JetStream.
type QueueReader interface {
	// PeekQueue returns up to max of the queue's oldest messages, leaving them on the queue.
	PeekQueue(ctx context.Context, name string, max int) ([]QueueMessage, error)
	// DeleteQueueMessage removes the message of sequence seq from the queue.
	DeleteQueueMessage(ctx context.Context, name string, seq uint64) error
}

// StreamPublisher is a QueuePublisher that also puts records on streams (the stream plugin's
// Kinesis-like streams on the agent's NATS JetStream).
type StreamPublisher interface {
	// PublishStream puts data with partitionKey on stream name and returns its sequence
	// number and the shard (shardId-000000000000) its key hashes to.
	PublishStream(ctx context.Context, name, partitionKey string, data []byte) (seq uint64, shard string, err error)
}

// ErrNotFound is a queue or message that does not exist (a QueueReader wraps it).
var ErrNotFound = errors.New("not found")

// ErrInvalidRecord is a stream name, partition key or record a StreamPublisher refuses.
var ErrInvalidRecord = errors.New("invalid stream record")

// MaxQueueReceive is the most messages one ReceiveQueueMessages returns.
const MaxQueueReceive = 100

// ReceiveQueueMessages returns up to max of a queue's oldest messages without consuming them:
// they stay for the queue's triggers (inspect an on-failure queue, then delete what is done).
func (g *Gateway) ReceiveQueueMessages(ctx context.Context, queue string, max int) ([]QueueMessage, error) {
	r, ok := g.cfg.Queues.(QueueReader)
	if !ok {
		return nil, lambda.InvalidParameter("this agent has no queues: add a plugin block (NATS JetStream runs in the agent) or nats { url }")
	}
	if max < 1 || max > MaxQueueReceive {
		return nil, lambda.InvalidParameter("max must be between 1 and %d", MaxQueueReceive)
	}
	msgs, err := r.PeekQueue(ctx, queue, max)
	return msgs, queueError(queue, err)
}

// DeleteQueueMessage removes one message from a queue, by its sequence.
func (g *Gateway) DeleteQueueMessage(ctx context.Context, queue string, seq uint64) error {
	r, ok := g.cfg.Queues.(QueueReader)
	if !ok {
		return lambda.InvalidParameter("this agent has no queues: add a plugin block (NATS JetStream runs in the agent) or nats { url }")
	}
	return queueError(queue, r.DeleteQueueMessage(ctx, queue, seq))
}

func queueError(queue string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalidQueue):
		return lambda.InvalidParameter("%v", err)
	case errors.Is(err, ErrNotFound):
		return lambda.ResourceNotFound("%v", err)
	}
	return fmt.Errorf("queue %s: %w", queue, err)
}

// MaxStreamRecord is the largest record data, as in Kinesis.
const MaxStreamRecord = 1 << 20

// PutStreamRecord puts a record on a stream, as Kinesis's PutRecord: the stream triggers
// reading it get it, in order with the other records of its partition key.
func (g *Gateway) PutStreamRecord(ctx context.Context, stream, partitionKey string, data []byte) (uint64, string, error) {
	p, ok := g.cfg.Queues.(StreamPublisher)
	if !ok {
		return 0, "", lambda.InvalidParameter("this agent has no streams: add a plugin block (NATS JetStream runs in the agent) or nats { url }")
	}
	if len(data) == 0 {
		return 0, "", lambda.InvalidParameter("a record needs data")
	}
	if len(data) > MaxStreamRecord {
		return 0, "", lambda.RequestTooLarge("a stream record is at most 1 MB, as in Kinesis")
	}
	seq, shard, err := p.PublishStream(ctx, stream, partitionKey, data)
	if errors.Is(err, ErrInvalidRecord) {
		return 0, "", lambda.InvalidParameter("%v", err)
	}
	if err != nil {
		return 0, "", fmt.Errorf("putting a record on stream %s: %w", stream, err)
	}
	return seq, shard, nil
}
