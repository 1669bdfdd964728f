package httpapi

import (
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// Triggers (event source mappings): the gateway's own /v1 operations, which manage them as
// structs.Trigger JSON, and Lambda's read-only ones (ListEventSourceMappings and
// GetEventSourceMapping), which describe them in Lambda's EventSourceMappingConfiguration shape.
// Lambda's create, update and delete operations are not served: a trigger names a plugin and
// options Lambda's API has no field for, so triggers are written through /v1 (gateway apply).

// listTriggersOutput is the answer of GET /v1/functions/{name}/triggers and GET /v1/triggers.
type listTriggersOutput struct {
	Triggers []*structs.Trigger `json:"Triggers"`
}

// listTriggers lists a function's triggers, or without {name} (GET /v1/triggers) every function's.
func (a *api) listTriggers(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.ListTriggers(mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, listTriggersOutput{Triggers: out})
}

// putTrigger creates or replaces a trigger; the path names its function and the trigger.
func (a *api) putTrigger(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in structs.Trigger
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	in.Function, in.Name = mux.Vars(r)["name"], mux.Vars(r)["trigger"]
	in.UUID = "" // given by the gateway
	out, err := a.cfg.Gateway.PutTrigger(r.Context(), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

// sendQueueMessage puts the request body on a queue of the agent's NATS (SQS's SendMessage).
func (a *api) sendQueueMessage(w http.ResponseWriter, r *http.Request, reqID string) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 256<<10+1))
	if err != nil {
		return lambda.InvalidRequestContent("reading the message: %v", err)
	}
	if err := a.cfg.Gateway.SendQueueMessage(r.Context(), mux.Vars(r)["queue"], body); err != nil {
		return err
	}
	return noContent(w, reqID)
}

// receiveQueueMessages answers GET /v1/queues/{queue}/messages?max=N: up to N (default 10) of
// the queue's oldest messages, left on the queue ({"Messages": [...]}).
func (a *api) receiveQueueMessages(w http.ResponseWriter, r *http.Request, reqID string) error {
	max := 10
	if s := r.URL.Query().Get("max"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > gateway.MaxQueueReceive {
			return lambda.InvalidParameter("max %q must be a number from 1 to %d", s, gateway.MaxQueueReceive)
		}
		max = n
	}
	msgs, err := a.cfg.Gateway.ReceiveQueueMessages(r.Context(), mux.Vars(r)["queue"], max)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []gateway.QueueMessage{}
	}
	return writeJSON(w, reqID, http.StatusOK, struct{ Messages []gateway.QueueMessage }{msgs})
}

// deleteQueueMessage answers DELETE /v1/queues/{queue}/messages/{seq}: the message is gone.
func (a *api) deleteQueueMessage(w http.ResponseWriter, r *http.Request, reqID string) error {
	seq, err := strconv.ParseUint(mux.Vars(r)["seq"], 10, 64)
	if err != nil || seq == 0 {
		return lambda.InvalidParameter("%q is not a message's sequence number", mux.Vars(r)["seq"])
	}
	if err := a.cfg.Gateway.DeleteQueueMessage(r.Context(), mux.Vars(r)["queue"], seq); err != nil {
		return err
	}
	return noContent(w, reqID)
}

// putRecordInput is the body of POST /v1/streams/{stream}/records, as Kinesis's PutRecord.
type putRecordInput struct {
	PartitionKey string `json:"PartitionKey"`
	Data         []byte `json:"Data"` // base64 in JSON
}

// putRecordOutput is its answer.
type putRecordOutput struct {
	SequenceNumber string `json:"SequenceNumber"`
	ShardID        string `json:"ShardId"`
}

// putStreamRecord puts a record on a stream of the agent's NATS (Kinesis's PutRecord).
func (a *api) putStreamRecord(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in putRecordInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	seq, shard, err := a.cfg.Gateway.PutStreamRecord(r.Context(), mux.Vars(r)["stream"], in.PartitionKey, in.Data)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, http.StatusOK, putRecordOutput{SequenceNumber: strconv.FormatUint(seq, 10), ShardID: shard})
}

func (a *api) deleteTrigger(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteTrigger(r.Context(), mux.Vars(r)["name"], mux.Vars(r)["trigger"]); err != nil {
		return err
	}
	return noContent(w, reqID)
}

// eventSourceMapping is Lambda's EventSourceMappingConfiguration: how it describes a mapping.
type eventSourceMapping struct {
	UUID                           string             `json:"UUID"`
	EventSourceMappingArn          string             `json:"EventSourceMappingArn"`
	FunctionArn                    string             `json:"FunctionArn"`
	EventSourceArn                 string             `json:"EventSourceArn"`
	BatchSize                      *int               `json:"BatchSize,omitempty"` // nil: the plugin's default
	MaximumBatchingWindowInSeconds int                `json:"MaximumBatchingWindowInSeconds"`
	StartingPosition               string             `json:"StartingPosition,omitempty"`
	StartingPositionTimestamp      *int64             `json:"StartingPositionTimestamp,omitempty"` // epoch seconds
	MaximumRetryAttempts           int                `json:"MaximumRetryAttempts"`                // -1: until the record expires
	MaximumRecordAgeInSeconds      int                `json:"MaximumRecordAgeInSeconds"`           // -1: no limit
	BisectBatchOnFunctionError     bool               `json:"BisectBatchOnFunctionError"`
	FunctionResponseTypes          []string           `json:"FunctionResponseTypes,omitempty"`
	DestinationConfig              *destinationConfig `json:"DestinationConfig,omitempty"`
	State                          string             `json:"State"`
	StateTransitionReason          string             `json:"StateTransitionReason"`
	LastModified                   float64            `json:"LastModified"` // epoch seconds
}

// destinationConfig is where Lambda sends the records a mapping gave up on.
type destinationConfig struct {
	OnFailure *onFailure `json:"OnFailure,omitempty"`
}

// onFailure names a destination by ARN.
type onFailure struct {
	Destination string `json:"Destination"`
}

// listEventSourceMappingsOutput is a page of ListEventSourceMappings.
type listEventSourceMappingsOutput struct {
	EventSourceMappings []eventSourceMapping `json:"EventSourceMappings"`
	NextMarker          *string              `json:"NextMarker,omitempty"`
}

// maxMappingsPage is the most ListEventSourceMappings returns at once, as in Lambda.
const maxMappingsPage = 100

// sourceARN is a trigger's source as an ARN: arn:lambdagw:<plugin>:<region>::<source>.
func sourceARN(plugin, region, source string) string {
	return "arn:lambdagw:" + plugin + ":" + region + "::" + source
}

// mapping describes t in Lambda's shape. Its on_failure destination reads as an ARN too, as
// lambda.DestinationARN writes it.
func (a *api) mapping(t *structs.Trigger) eventSourceMapping {
	region := a.cfg.Gateway.Region()
	m := eventSourceMapping{
		UUID:                           t.UUID,
		EventSourceMappingArn:          "arn:aws:lambda:" + region + ":" + lambda.DefaultAccount + ":event-source-mapping:" + t.UUID,
		FunctionArn:                    lambda.FunctionARN(region, t.Function, t.Qualifier),
		EventSourceArn:                 sourceARN(t.Plugin, region, t.Source),
		MaximumBatchingWindowInSeconds: int(t.BatchWindow.Seconds()),
		StartingPosition:               t.StartingPosition,
		MaximumRetryAttempts:           t.MaximumRetryAttempts,
		MaximumRecordAgeInSeconds:      -1,
		BisectBatchOnFunctionError:     t.BisectBatchOnFunctionError,
		State:                          "Disabled",
		StateTransitionReason:          "USER_INITIATED",
		LastModified:                   float64(t.LastModified.UnixMilli()) / 1000,
	}
	if t.BatchSize > 0 {
		n := t.BatchSize
		m.BatchSize = &n
	}
	if !t.StartingPositionTimestamp.IsZero() {
		s := t.StartingPositionTimestamp.Unix()
		m.StartingPositionTimestamp = &s
	}
	if t.MaximumRecordAge > 0 {
		m.MaximumRecordAgeInSeconds = int(t.MaximumRecordAge.Seconds())
	}
	if t.ReportBatchItemFailures {
		m.FunctionResponseTypes = []string{"ReportBatchItemFailures"}
	}
	if t.OnFailure != "" {
		m.DestinationConfig = &destinationConfig{OnFailure: &onFailure{Destination: lambda.DestinationARN(region, t.OnFailure)}}
	}
	if t.Enabled {
		m.State = "Enabled"
	}
	return m
}

// listEventSourceMappings is ListEventSourceMappings: every trigger, or those of FunctionName
// (a name or ARN; with a qualifier, only the triggers at that qualifier) and of EventSourceArn,
// paged by function and trigger name.
func (a *api) listEventSourceMappings(w http.ResponseWriter, r *http.Request, reqID string) error {
	q := r.URL.Query()
	max, err := maxItems(r)
	if err != nil {
		return err
	}
	if max == 0 || max > maxMappingsPage {
		max = maxMappingsPage
	}
	fn, qualifier := "", ""
	if s := q.Get("FunctionName"); s != "" {
		if fn, qualifier, err = lambda.ParseFunctionName(s); err != nil {
			return err
		}
	}
	after := ""
	if m := q.Get("Marker"); m != "" {
		b, err := base64.RawURLEncoding.DecodeString(m)
		if err != nil || !strings.Contains(string(b), "\x00") {
			return lambda.InvalidParameter("Marker %q is not one this API returned", m)
		}
		after = string(b)
	}
	all, err := a.cfg.Gateway.ListTriggers(fn)
	if err != nil {
		return err
	}
	source := q.Get("EventSourceArn")
	out := &listEventSourceMappingsOutput{EventSourceMappings: []eventSourceMapping{}}
	last := ""
	for _, t := range all {
		// The store sorts by function, then name; NUL sorts before any character of either.
		key := t.Function + "\x00" + t.Name
		if after != "" && key <= after {
			continue
		}
		if qualifier != "" && t.Qualifier != qualifier {
			continue
		}
		m := a.mapping(t)
		if source != "" && m.EventSourceArn != source {
			continue
		}
		if len(out.EventSourceMappings) == max {
			next := base64.RawURLEncoding.EncodeToString([]byte(last))
			out.NextMarker = &next
			break
		}
		out.EventSourceMappings = append(out.EventSourceMappings, m)
		last = key
	}
	return writeJSON(w, reqID, 200, out)
}

// getEventSourceMapping is GetEventSourceMapping: the trigger with that UUID.
func (a *api) getEventSourceMapping(w http.ResponseWriter, r *http.Request, reqID string) error {
	t, err := a.triggerByUUID(mux.Vars(r)["uuid"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, a.mapping(t))
}

// eventSourceMappingInput is the body of CreateEventSourceMapping and UpdateEventSourceMapping;
// a field left out keeps its value on update.
type eventSourceMappingInput struct {
	FunctionName                   string             `json:"FunctionName"`
	EventSourceArn                 string             `json:"EventSourceArn"`
	Enabled                        *bool              `json:"Enabled"`
	BatchSize                      *int               `json:"BatchSize"`
	MaximumBatchingWindowInSeconds *int               `json:"MaximumBatchingWindowInSeconds"`
	StartingPosition               *string            `json:"StartingPosition"`
	StartingPositionTimestamp      *float64           `json:"StartingPositionTimestamp"`
	MaximumRetryAttempts           *int               `json:"MaximumRetryAttempts"`
	MaximumRecordAgeInSeconds      *int               `json:"MaximumRecordAgeInSeconds"`
	BisectBatchOnFunctionError     *bool              `json:"BisectBatchOnFunctionError"`
	FunctionResponseTypes          *[]string          `json:"FunctionResponseTypes"`
	DestinationConfig              *destinationConfig `json:"DestinationConfig"`
	lambda.UnsupportedMappingSettings
}

// parseSourceARN maps an event source ARN to a trigger plugin and source: the gateway's own
// arn:lambdagw:<plugin>:<region>::<source>, an SQS queue's ARN to the queue plugin and a Kinesis
// stream's to the stream plugin, so mappings written for AWS (Terraform's
// aws_lambda_event_source_mapping) find the agent's queues and streams of the same names.
func parseSourceARN(arn string) (plugin, source string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" {
		switch {
		case parts[1] == "lambdagw" && parts[2] != "" && parts[5] != "":
			return parts[2], parts[5], nil
		case parts[2] == "sqs" && parts[5] != "":
			return "queue", parts[5], nil
		case parts[2] == "kinesis" && strings.HasPrefix(parts[5], "stream/") && len(parts[5]) > len("stream/"):
			return "stream", strings.TrimPrefix(parts[5], "stream/"), nil
		}
	}
	return "", "", lambda.InvalidParameter("EventSourceArn %q: use arn:lambdagw:<plugin>:<region>::<source>, an SQS queue ARN (the queue plugin) or a Kinesis stream ARN (the stream plugin)", arn)
}

// parseDestinationARN maps an on-failure destination ARN to a destination, as those of
// asynchronous invocations.
func parseDestinationARN(arn string) (string, error) {
	dest, err := lambda.ParseDestinationARN(arn)
	if err != nil {
		return "", lambda.InvalidParameter("DestinationConfig.OnFailure.Destination: %v", err)
	}
	return dest, nil
}

// applyMappingInput sets t's fields from in (those given), refusing settings the triggers do
// not implement.
func applyMappingInput(t *structs.Trigger, in *eventSourceMappingInput) error {
	if err := in.Unsupported(); err != nil {
		return err
	}
	if in.Enabled != nil {
		t.Enabled = *in.Enabled
	}
	if in.BatchSize != nil {
		t.BatchSize = *in.BatchSize
	}
	if in.MaximumBatchingWindowInSeconds != nil {
		t.BatchWindow = time.Duration(*in.MaximumBatchingWindowInSeconds) * time.Second
	}
	if in.StartingPosition != nil {
		t.StartingPosition = *in.StartingPosition
	}
	if in.StartingPositionTimestamp != nil {
		t.StartingPositionTimestamp = time.UnixMilli(int64(*in.StartingPositionTimestamp * 1000)).UTC()
	}
	if in.MaximumRetryAttempts != nil {
		t.MaximumRetryAttempts = *in.MaximumRetryAttempts
	}
	if in.MaximumRecordAgeInSeconds != nil {
		t.MaximumRecordAge = 0
		if *in.MaximumRecordAgeInSeconds > 0 {
			t.MaximumRecordAge = time.Duration(*in.MaximumRecordAgeInSeconds) * time.Second
		}
	}
	if in.BisectBatchOnFunctionError != nil {
		t.BisectBatchOnFunctionError = *in.BisectBatchOnFunctionError
	}
	if in.FunctionResponseTypes != nil {
		t.ReportBatchItemFailures = false
		for _, ft := range *in.FunctionResponseTypes {
			if ft != "ReportBatchItemFailures" {
				return lambda.InvalidParameter("FunctionResponseTypes: %q is not ReportBatchItemFailures", ft)
			}
			t.ReportBatchItemFailures = true
		}
	}
	if dc := in.DestinationConfig; dc != nil {
		t.OnFailure = ""
		if dc.OnFailure != nil && dc.OnFailure.Destination != "" {
			dest, err := parseDestinationARN(dc.OnFailure.Destination)
			if err != nil {
				return err
			}
			t.OnFailure = dest
		}
	}
	return nil
}

// createEventSourceMapping is CreateEventSourceMapping: a trigger named esm-<its UUID's first
// part>, answered 202 as Lambda does.
func (a *api) createEventSourceMapping(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in eventSourceMappingInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.FunctionName == "" || in.EventSourceArn == "" {
		return lambda.InvalidParameter("FunctionName and EventSourceArn are required")
	}
	fn, qualifier, err := lambda.ParseFunctionName(in.FunctionName)
	if err != nil {
		return err
	}
	plugin, source, err := parseSourceARN(in.EventSourceArn)
	if err != nil {
		return err
	}
	id := uuid.NewString()
	t := &structs.Trigger{UUID: id, Function: fn, Qualifier: qualifier, Name: "esm-" + id[:8], Plugin: plugin, Source: source,
		MaximumRetryAttempts: -1, Enabled: true}
	if err := applyMappingInput(t, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.PutTrigger(r.Context(), t)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, http.StatusAccepted, a.mapping(out))
}

// triggerByUUID finds the trigger an event source mapping UUID names.
func (a *api) triggerByUUID(id string) (*structs.Trigger, error) {
	if t, ok := a.cfg.Gateway.TriggerByUUID(id); ok {
		return t, nil
	}
	return nil, lambda.ResourceNotFound("The resource you requested does not exist: no event source mapping has UUID %s", id)
}

// updateEventSourceMapping is UpdateEventSourceMapping (202).
func (a *api) updateEventSourceMapping(w http.ResponseWriter, r *http.Request, reqID string) error {
	cur, err := a.triggerByUUID(mux.Vars(r)["uuid"])
	if err != nil {
		return err
	}
	var in eventSourceMappingInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	t := *cur
	if in.FunctionName != "" {
		fn, qualifier, err := lambda.ParseFunctionName(in.FunctionName)
		if err != nil {
			return err
		}
		if fn != cur.Function {
			return lambda.InvalidParameter("an event source mapping stays with its function (%s)", cur.Function)
		}
		t.Qualifier = qualifier
	}
	if err := applyMappingInput(&t, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.PutTrigger(r.Context(), &t)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, http.StatusAccepted, a.mapping(out))
}

// deleteEventSourceMapping is DeleteEventSourceMapping: 202 with the mapping, State Deleting.
func (a *api) deleteEventSourceMapping(w http.ResponseWriter, r *http.Request, reqID string) error {
	t, err := a.triggerByUUID(mux.Vars(r)["uuid"])
	if err != nil {
		return err
	}
	if err := a.cfg.Gateway.DeleteTrigger(r.Context(), t.Function, t.Name); err != nil {
		return err
	}
	m := a.mapping(t)
	m.State = "Deleting"
	return writeJSON(w, reqID, http.StatusAccepted, m)
}
