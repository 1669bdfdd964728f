package httpapi

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

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

// mapping describes t in Lambda's shape. Its on_failure destination reads as an ARN too:
// function:NAME as the function's ARN, queue:NAME as arn:lambdagw:queue:<region>::NAME.
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
	if kind, name, ok := strings.Cut(t.OnFailure, ":"); ok {
		dest := sourceARN(kind, region, name)
		if kind == "function" {
			dest = lambda.FunctionARN(region, name, "")
		}
		m.DestinationConfig = &destinationConfig{OnFailure: &onFailure{Destination: dest}}
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
	id := mux.Vars(r)["uuid"]
	all, err := a.cfg.Gateway.ListTriggers("")
	if err != nil {
		return err
	}
	for _, t := range all {
		if t.UUID == id {
			return writeJSON(w, reqID, 200, a.mapping(t))
		}
	}
	return lambda.ResourceNotFound("The resource you requested does not exist: no event source mapping has UUID %s", id)
}
