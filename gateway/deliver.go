package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/plugins/sdk"
)

// QueuePublisher sends on-failure records to a named queue (the agent's NATS JetStream).
type QueuePublisher interface {
	PublishQueue(ctx context.Context, name string, body []byte) error
}

// TriggerHost is the gateway as trigger plugins see it (sdk.Host): batches are invoked
// synchronously, as Lambda's event source mappings do, and the function's answer becomes a
// per-record result.
type TriggerHost struct{ g *Gateway }

// TriggerHost returns the sdk.Host of this gateway.
func (g *Gateway) TriggerHost() *TriggerHost { return &TriggerHost{g} }

var _ sdk.Host = (*TriggerHost)(nil)

// TriggerByUUID finds a trigger by its UUID (an event source mapping's).
func (g *Gateway) TriggerByUUID(uuid string) (*structs.Trigger, bool) {
	return g.cfg.Store.TriggerByUUID(uuid)
}

// Deliver invokes the mapping's function with the batch.
func (h *TriggerHost) Deliver(ctx context.Context, b sdk.Batch) (sdk.BatchResult, error) {
	g := h.g
	t, ok := g.TriggerByUUID(b.MappingUUID)
	if !ok || !t.Enabled {
		return sdk.BatchResult{Outcome: sdk.RetryLater, ErrorType: "MappingNotFound",
			ErrorMessage: fmt.Sprintf("no enabled trigger has UUID %s (deleted or disabled)", b.MappingUUID)}, nil
	}
	out, err := g.Invoke(ctx, &InvokeInput{FunctionName: t.Function, Qualifier: t.Qualifier, Payload: b.Event, InvocationType: RequestResponse})
	if err != nil {
		if ctx.Err() != nil {
			return sdk.BatchResult{}, ctx.Err()
		}
		var le *lambda.Error
		r := sdk.BatchResult{Outcome: sdk.RetryLater, ErrorType: "ServiceException", ErrorMessage: err.Error()}
		if errors.As(err, &le) {
			r.ErrorType, r.ErrorMessage = le.Type, le.Message
			if le.Status == 400 || le.Status == 413 {
				// The event itself is refused (too large): retrying it cannot help.
				r.Outcome = sdk.FunctionError
			}
		}
		g.logger.Debug("a trigger's batch was not run", "trigger", t.Name, "function", t.Function, "error", err)
		return r, nil
	}
	if out.FunctionError != "" {
		var fe struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		if fe.ErrorType == "" {
			fe.ErrorType = "Unhandled"
		}
		return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: fe.ErrorType, ErrorMessage: fe.ErrorMessage, Response: out.Payload}, nil
	}
	if !t.ReportBatchItemFailures {
		return sdk.BatchResult{Outcome: sdk.Success, Response: out.Payload}, nil
	}
	failed, err := batchItemFailures(out.Payload, b.ItemIDs)
	if err != nil {
		// Lambda's rule: a response it cannot read as a partial batch response fails the batch.
		return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: "InvalidBatchItemFailures", ErrorMessage: err.Error(), Response: out.Payload}, nil
	}
	if len(failed) == 0 {
		return sdk.BatchResult{Outcome: sdk.Success, Response: out.Payload}, nil
	}
	return sdk.BatchResult{Outcome: sdk.Partial, FailedItemIDs: failed, Response: out.Payload}, nil
}

// batchItemFailures reads a partial batch response: {"batchItemFailures":[{"itemIdentifier":
// "..."}]}. An empty or null response, or an empty list, is success; an identifier that is
// empty or not one of the batch's is an invalid response.
func batchItemFailures(payload []byte, ids []string) ([]string, error) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) {
		return nil, nil
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(p, &resp); err != nil {
		return nil, fmt.Errorf("the function's response is not a partial batch response: %v", err)
	}
	in := make(map[string]bool, len(ids))
	for _, id := range ids {
		in[id] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == nil || *f.ItemIdentifier == "" {
			return nil, errors.New("a batchItemFailures entry has no itemIdentifier")
		}
		id := *f.ItemIdentifier
		if !in[id] {
			return nil, fmt.Errorf("batchItemFailures names %q, which is not in the batch", id)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// SendOnFailure sends an on-failure record to the mapping's destination (a function, invoked
// asynchronously, a queue, a stream or a plugin's target), keyed by the mapping's UUID.
func (h *TriggerHost) SendOnFailure(ctx context.Context, uuid string, record []byte) error {
	t, ok := h.g.TriggerByUUID(uuid)
	if !ok {
		return fmt.Errorf("no trigger has UUID %s", uuid)
	}
	if t.OnFailure == "" {
		return fmt.Errorf("trigger %s has no on_failure destination", t.Name)
	}
	if err := h.g.sendTo(ctx, t.OnFailure, uuid, record); err != nil {
		return fmt.Errorf("trigger %s: sending an on-failure record to %s: %w", t.Name, t.OnFailure, err)
	}
	return nil
}

// SendQueueMessage puts a message on a queue of the agent's NATS JetStream, as SQS's
// SendMessage does: the queue triggers of that name get it.
func (g *Gateway) SendQueueMessage(ctx context.Context, queue string, body []byte) error {
	if g.cfg.Queues == nil {
		return lambda.InvalidParameter("this agent has no queues: add a plugin block (NATS JetStream runs in the agent) or nats { url }")
	}
	if len(body) == 0 {
		return lambda.InvalidParameter("a message needs a body")
	}
	if len(body) > 256<<10 {
		return lambda.RequestTooLarge("a queue message is at most 256 KB, as in SQS")
	}
	if err := g.cfg.Queues.PublishQueue(ctx, queue, body); err != nil {
		if errors.Is(err, ErrInvalidQueue) {
			return lambda.InvalidParameter("%v", err)
		}
		return fmt.Errorf("sending to queue %s: %w", queue, err)
	}
	return nil
}

// ErrInvalidQueue is a queue name the publisher refuses (a QueuePublisher wraps it).
var ErrInvalidQueue = errors.New("invalid queue name")
