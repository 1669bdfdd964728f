package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
)

// echoTrigger delivers one batch per mapping it is given and keeps what it saw.
type echoTrigger struct {
	mu  sync.Mutex
	cfg struct {
		Subject string `json:"subject"`
	}
	info     map[string]string
	host     sdk.Host
	mappings []sdk.Mapping
	results  []sdk.BatchResult
}

func (e *echoTrigger) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{Name: "subject", Type: sdk.TypeString, Required: true}}}
}

func (e *echoTrigger) Configure(_ context.Context, req sdk.ConfigureRequest, host sdk.Host) ([]sdk.Diagnostic, error) {
	if err := req.DecodeConfig(&e.cfg); err != nil {
		return nil, err
	}
	if e.cfg.Subject == "bad" {
		return []sdk.Diagnostic{{Attribute: "subject", Summary: "bad subject"}}, nil
	}
	e.info, e.host = req.HostInfo, host
	return nil, nil
}

func (e *echoTrigger) SetMappings(ctx context.Context, ms []sdk.Mapping) ([]sdk.MappingStatus, error) {
	var st []sdk.MappingStatus
	for _, m := range ms {
		r, err := e.host.Deliver(ctx, sdk.Batch{MappingUUID: m.UUID, Event: []byte(`{"Records":[{"id":"a"},{"id":"b"}]}`), ItemIDs: []string{"a", "b"}})
		if err != nil {
			return nil, err
		}
		if r.Outcome == sdk.FunctionError {
			if err := e.host.SendOnFailure(ctx, m.UUID, []byte(`{"failed":true}`)); err != nil {
				return nil, err
			}
		}
		e.mu.Lock()
		e.mappings = append(e.mappings, m)
		e.results = append(e.results, r)
		e.mu.Unlock()
		st = append(st, sdk.MappingStatus{UUID: m.UUID, State: sdk.StateOK})
	}
	return st, nil
}

func (e *echoTrigger) Status(context.Context) ([]sdk.MappingStatus, error) {
	return []sdk.MappingStatus{{UUID: "x", State: sdk.StateError, Message: "source gone"}}, nil
}

// TestTriggerRoundTrip: everything crosses the gRPC boundary both ways intact: the schema, the
// configuration and its diagnostics, mappings, batches, results and on-failure records.
func TestTriggerRoundTrip(t *testing.T) {
	ctx := context.Background()
	impl := &echoTrigger{}
	c := sdktest.Trigger(t, impl)
	v, schema, err := c.Schema(ctx)
	if err != nil || v != sdk.TriggerAPIVersion || len(schema.Attributes) != 1 || !schema.Attributes[0].Required {
		t.Fatalf("schema: %d %+v %v", v, schema, err)
	}
	host := &sdktest.Host{Result: func(b sdk.Batch) sdk.BatchResult {
		if b.MappingUUID == "m2" {
			return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: "Runtime.ExitError", ErrorMessage: "boom"}
		}
		return sdk.BatchResult{Outcome: sdk.Partial, FailedItemIDs: []string{"b"}, Response: []byte(`{"batchItemFailures":[{"itemIdentifier":"b"}]}`)}
	}}
	diags, err := c.Configure(ctx, sdk.ConfigureRequest{Config: json.RawMessage(`{"subject":"bad"}`)}, host)
	if err != nil || len(diags) != 1 || diags[0].Attribute != "subject" {
		t.Fatalf("a bad configuration: %+v %v", diags, err)
	}
	diags, err = c.Configure(ctx, sdk.ConfigureRequest{Config: json.RawMessage(`{"subject":"orders"}`), HostInfo: map[string]string{"node_name": "gw1"}}, host)
	if err != nil || len(diags) != 0 || impl.cfg.Subject != "orders" || impl.info["node_name"] != "gw1" {
		t.Fatalf("configure: %+v %v %+v", diags, err, impl)
	}
	m1 := sdk.Mapping{UUID: "m1", Name: "orders", Function: "fn", Qualifier: "live", FunctionARN: "arn:aws:lambda:r:1:function:fn:live",
		Source: "orders", BatchSize: 10, BatchWindow: 1500 * time.Millisecond, StartingPosition: sdk.AtTimestamp,
		StartingPositionTimestamp: time.UnixMilli(1700000000123), MaximumRetryAttempts: -1, MaximumRecordAge: time.Hour,
		BisectBatchOnFunctionError: true, ReportBatchItemFailures: true, OnFailureDestination: "queue:dlq", Enabled: true,
		Options: map[string]string{"prefix": "in/"}}
	m2 := sdk.Mapping{UUID: "m2", Function: "fn2", Source: "other", BatchSize: 1}
	st, err := c.SetMappings(ctx, []sdk.Mapping{m1, m2})
	if err != nil || len(st) != 2 || st[0].UUID != "m1" || st[0].State != sdk.StateOK {
		t.Fatalf("set mappings: %+v %v", st, err)
	}
	if !reflect.DeepEqual(impl.mappings[0], m1) {
		t.Errorf("mapping crossed as\n%+v\nwant\n%+v", impl.mappings[0], m1)
	}
	if r := impl.results[0]; r.Outcome != sdk.Partial || !reflect.DeepEqual(r.FailedItemIDs, []string{"b"}) || len(r.Response) == 0 {
		t.Errorf("partial result: %+v", r)
	}
	if r := impl.results[1]; r.Outcome != sdk.FunctionError || r.ErrorType != "Runtime.ExitError" || r.ErrorMessage != "boom" {
		t.Errorf("error result: %+v", r)
	}
	if b := host.Batches(); len(b) != 2 || !reflect.DeepEqual(b[0].ItemIDs, []string{"a", "b"}) {
		t.Errorf("batches: %+v", b)
	}
	if f := host.Failures(); len(f) != 1 || f[0].MappingUUID != "m2" || string(f[0].Record) != `{"failed":true}` {
		t.Errorf("failures: %+v", f)
	}
	if st, err := c.Status(ctx); err != nil || len(st) != 1 || st[0].Message != "source gone" {
		t.Errorf("status: %+v %v", st, err)
	}
}

type recExtension struct {
	mu     sync.Mutex
	events []sdk.TelemetryEvent
}

func (r *recExtension) Schema() sdk.Schema { return sdk.Schema{} }
func (r *recExtension) Configure(context.Context, sdk.ConfigureRequest) ([]sdk.Diagnostic, error) {
	return nil, nil
}
func (r *recExtension) Capabilities() sdk.Capabilities {
	return sdk.Capabilities{Telemetry: true, Authorizer: true}
}
func (r *recExtension) Telemetry(_ context.Context, ev sdk.TelemetryEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}
func (r *recExtension) Authorize(_ context.Context, req sdk.AuthorizeRequest) (sdk.AuthorizeResponse, error) {
	if req.Headers["x-token"] == "let-me-in" {
		return sdk.AuthorizeResponse{Allow: true}, nil
	}
	return sdk.AuthorizeResponse{Status: 401, Message: "no token for " + req.Function + req.Path}, nil
}

// TestExtensionRoundTrip: telemetry arrives in order and authorisation answers both ways.
func TestExtensionRoundTrip(t *testing.T) {
	ctx := context.Background()
	impl := &recExtension{}
	c := sdktest.Extension(t, impl)
	if v, _, err := c.Schema(ctx); err != nil || v != sdk.ExtensionAPIVersion {
		t.Fatalf("schema: %d %v", v, err)
	}
	if caps, err := c.Capabilities(ctx); err != nil || !caps.Telemetry || !caps.Authorizer {
		t.Fatalf("capabilities: %+v %v", caps, err)
	}
	ch := make(chan sdk.TelemetryEvent)
	done := make(chan error, 1)
	go func() { done <- c.Telemetry(ctx, ch) }()
	at := time.Unix(1700000000, 5)
	for i := 0; i < 100; i++ {
		ch <- sdk.TelemetryEvent{Type: sdk.EventFunction, Time: at, Function: "fn", RequestID: string(rune('a' + i%26)), Record: []byte(`"line"`)}
	}
	close(ch)
	if err := <-done; err != nil {
		t.Fatalf("telemetry: %v", err)
	}
	if len(impl.events) != 100 || impl.events[3].RequestID != "d" || !impl.events[0].Time.Equal(at) {
		t.Errorf("telemetry arrived as %d events: %+v", len(impl.events), impl.events[:1])
	}
	if r, err := c.Authorize(ctx, sdk.AuthorizeRequest{Function: "fn", Path: "/x", Headers: map[string]string{"x-token": "let-me-in"}}); err != nil || !r.Allow {
		t.Errorf("allowed request: %+v %v", r, err)
	}
	if r, err := c.Authorize(ctx, sdk.AuthorizeRequest{Function: "fn", Path: "/x"}); err != nil || r.Allow || r.Status != 401 || r.Message != "no token for fn/x" {
		t.Errorf("denied request: %+v %v", r, err)
	}
}

// recordTrigger is an echoTrigger that also takes records, refusing targets it does not know.
type recordTrigger struct {
	echoTrigger
	records []sdk.Record
}

func (r *recordTrigger) AcceptRecord(_ context.Context, rec sdk.Record) error {
	if rec.Target != "audit" {
		return errors.New("no target " + rec.Target)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}

// TestAcceptRecord: a trigger that implements RecordAcceptor gets records intact across gRPC,
// and its refusal comes back in its own words; one that does not says so (ErrNoRecords).
func TestAcceptRecord(t *testing.T) {
	ctx := context.Background()
	impl := &recordTrigger{}
	c := sdktest.Trigger(t, impl)
	rec := sdk.Record{Target: "audit", Key: "req-1", Data: []byte(`{"version":"1.0"}`)}
	if err := c.AcceptRecord(ctx, rec); err != nil || len(impl.records) != 1 || !reflect.DeepEqual(impl.records[0], rec) {
		t.Fatalf("a record crossed as %+v (%v), want %+v", impl.records, err, rec)
	}
	if err := c.AcceptRecord(ctx, sdk.Record{Target: "other"}); err == nil || err.Error() != "no target other" {
		t.Errorf("a refused record: %v", err)
	}
	if err := sdktest.Trigger(t, &echoTrigger{}).AcceptRecord(ctx, rec); !errors.Is(err, sdk.ErrNoRecords) {
		t.Errorf("a trigger without AcceptRecord: %v, want ErrNoRecords", err)
	}
}
