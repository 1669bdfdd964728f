package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/lambdagw/gateway/plugins/sdk/proto"
)

// TriggerSource is a trigger plugin: it reads records from a source (a queue, a stream, an
// object store), delivers them in batches to the gateway through Host.Deliver, and acks,
// redelivers or dead-letters each record by the result.
type TriggerSource interface {
	// Schema describes the plugin's configuration block.
	Schema() Schema
	// Configure is called once, before any mapping. Diagnostics refuse the configuration.
	Configure(ctx context.Context, req ConfigureRequest, host Host) ([]Diagnostic, error)
	// SetMappings gives the mappings this node runs now (all of them: the ones left out stop).
	// It returns quickly; the plugin consumes in its own goroutines.
	SetMappings(ctx context.Context, mappings []Mapping) ([]MappingStatus, error)
	// Status reports how each mapping fares.
	Status(ctx context.Context) ([]MappingStatus, error)
}

// RecordAcceptor is what a TriggerSource implements, besides, to be a destination: the gateway
// hands it records for "<plugin>:<target>", the destinations of asynchronous invocations, of
// dead-lettered events and of triggers' on-failure records. AcceptRecord returns once the
// record is stored as durably as the source stores anything; an error makes the gateway keep
// the record and try again later, so a record is never lost to a plugin that is down.
type RecordAcceptor interface {
	AcceptRecord(ctx context.Context, r Record) error
}

// Record is a record for a plugin's target.
type Record struct {
	// Target is what the destination names after "<plugin>:" (a stream, a topic, a queue).
	Target string
	// Key is the request id of the invocation the record is about: a partition key, or an id
	// to drop a duplicate by (records are delivered at least once).
	Key string
	// Data is the record as JSON: Lambda's destination record, a trigger's on-failure record, or
	// a dead-lettered event's payload.
	Data []byte
}

// ErrNoRecords means the plugin takes no records: it does not implement RecordAcceptor.
var ErrNoRecords = errors.New("the plugin does not accept records (its trigger does not implement sdk.RecordAcceptor)")

// Host is the gateway as a trigger plugin sees it.
type Host interface {
	// Deliver invokes the mapping's function with a batch and returns how each record fared.
	// An error means the result is unknown (the host went away): deliver the batch again.
	Deliver(ctx context.Context, b Batch) (BatchResult, error)
	// SendOnFailure sends an on-failure record to the mapping's destination.
	SendOnFailure(ctx context.Context, mappingUUID string, record []byte) error
}

// Starting positions of stream mappings.
const (
	TrimHorizon = "TRIM_HORIZON"
	Latest      = "LATEST"
	AtTimestamp = "AT_TIMESTAMP"
)

// Mapping is an event source mapping: one function's trigger on one source.
type Mapping struct {
	UUID        string
	Name        string // the trigger block's label
	Function    string
	Qualifier   string
	FunctionARN string
	Source      string
	BatchSize   int
	// BatchWindow is how long to gather records before delivering a batch smaller than BatchSize.
	BatchWindow time.Duration
	// StartingPosition: TrimHorizon, Latest or AtTimestamp (with StartingPositionTimestamp).
	StartingPosition          string
	StartingPositionTimestamp time.Time
	// MaximumRetryAttempts: -1 retries until the record expires.
	MaximumRetryAttempts int
	// MaximumRecordAge: 0 (or less) means records never expire.
	MaximumRecordAge           time.Duration
	BisectBatchOnFunctionError bool
	ReportBatchItemFailures    bool
	OnFailureDestination       string // function:NAME or queue:NAME, or ""
	Enabled                    bool
	Options                    map[string]string
}

// MappingStatus is how a mapping fares on this node.
type MappingStatus struct {
	UUID    string
	State   string // StateOK or StateError
	Message string
}

// Mapping states.
const (
	StateOK    = "OK"
	StateError = "ERROR"
)

// Batch is a batch of records: the event as the function receives it (Lambda's shape for the
// source), and its records' identifiers in the event's order.
type Batch struct {
	MappingUUID string
	Event       []byte
	ItemIDs     []string
}

// Outcome is how a delivered batch fared.
type Outcome int

// Outcomes of a batch.
const (
	// Success: every record succeeded (ack them all).
	Success Outcome = iota
	// Partial: the records in FailedItemIDs failed (batchItemFailures); ack the others.
	Partial
	// FunctionError: the function failed; the whole batch failed (an attempt used).
	FunctionError
	// RetryLater: the gateway could not run the function now (throttled, no capacity, the
	// function or mapping is gone): deliver again later; no attempt was used.
	RetryLater
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "Success"
	case Partial:
		return "Partial"
	case FunctionError:
		return "FunctionError"
	case RetryLater:
		return "RetryLater"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// BatchResult is the gateway's answer to a batch.
type BatchResult struct {
	Outcome       Outcome
	FailedItemIDs []string
	ErrorType     string
	ErrorMessage  string
	Response      []byte
}

// TriggerPlugin is the go-plugin plugin of a TriggerSource (Impl on the plugin's side).
type TriggerPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl TriggerSource
}

// GRPCServer registers the trigger's service in the plugin.
func (p *TriggerPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterTriggerSourceServer(s, &triggerServer{impl: p.Impl, broker: broker})
	return nil
}

// GRPCClient returns the host's view of the trigger: a *TriggerClient.
func (p *TriggerPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &TriggerClient{client: pb.NewTriggerSourceClient(c), broker: broker}, nil
}

// ErrNotServed means the plugin binary does not implement the plugin type asked for.
var ErrNotServed = errors.New("the plugin does not implement this plugin type")

func notServed(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("%w: %v", ErrNotServed, err)
	}
	return err
}

// TriggerClient is the host's side of a trigger plugin.
type TriggerClient struct {
	client pb.TriggerSourceClient
	broker *plugin.GRPCBroker
}

// Schema returns the plugin's API version and configuration schema. ErrNotServed: the binary
// is no trigger.
func (c *TriggerClient) Schema(ctx context.Context) (int, Schema, error) {
	s, err := c.client.GetSchema(ctx, &pb.Empty{})
	if err != nil {
		return 0, Schema{}, notServed(err)
	}
	v, sch := schemaFromProto(s)
	return v, sch, nil
}

// Configure configures the plugin and serves host to it.
func (c *TriggerClient) Configure(ctx context.Context, req ConfigureRequest, host Host) ([]Diagnostic, error) {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pb.RegisterHostServer(s, &hostServer{impl: host})
		return s
	})
	resp, err := c.client.Configure(ctx, &pb.ConfigureRequest{ConfigJson: req.Config, Host: req.HostInfo, HostBrokerId: id})
	if err != nil {
		return nil, err
	}
	return diagsFromProto(resp.Diagnostics), nil
}

// SetMappings gives the plugin the mappings it runs.
func (c *TriggerClient) SetMappings(ctx context.Context, ms []Mapping) ([]MappingStatus, error) {
	req := &pb.SetMappingsRequest{}
	for _, m := range ms {
		req.Mappings = append(req.Mappings, mappingToProto(m))
	}
	resp, err := c.client.SetMappings(ctx, req)
	if err != nil {
		return nil, err
	}
	return statusesFromProto(resp.Statuses), nil
}

// Status asks the plugin how its mappings fare.
func (c *TriggerClient) Status(ctx context.Context) ([]MappingStatus, error) {
	resp, err := c.client.Status(ctx, &pb.Empty{})
	if err != nil {
		return nil, err
	}
	return statusesFromProto(resp.Statuses), nil
}

// AcceptRecord hands the plugin a record for one of its targets. ErrNoRecords: the plugin does
// not take records.
func (c *TriggerClient) AcceptRecord(ctx context.Context, r Record) error {
	_, err := c.client.AcceptRecord(ctx, &pb.Record{Target: r.Target, Key: r.Key, Data: r.Data})
	if status.Code(err) == codes.Unimplemented {
		return ErrNoRecords
	}
	if s, ok := status.FromError(err); ok && err != nil {
		// The plugin's own words, without gRPC's "rpc error: code = Unknown desc =".
		return errors.New(s.Message())
	}
	return err
}

// triggerServer is the plugin's side of the TriggerSource service.
type triggerServer struct {
	pb.UnimplementedTriggerSourceServer
	impl   TriggerSource
	broker *plugin.GRPCBroker
}

func (s *triggerServer) GetSchema(context.Context, *pb.Empty) (*pb.Schema, error) {
	return schemaToProto(TriggerAPIVersion, s.impl.Schema()), nil
}

func (s *triggerServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	conn, err := s.broker.Dial(req.HostBrokerId)
	if err != nil {
		return nil, fmt.Errorf("connecting to the gateway's host service: %w", err)
	}
	host := &hostClient{client: pb.NewHostClient(conn)}
	diags, err := s.impl.Configure(ctx, ConfigureRequest{Config: req.ConfigJson, HostInfo: req.Host}, host)
	if err != nil {
		return nil, err
	}
	return &pb.ConfigureResponse{Diagnostics: diagsToProto(diags)}, nil
}

func (s *triggerServer) SetMappings(ctx context.Context, req *pb.SetMappingsRequest) (*pb.SetMappingsResponse, error) {
	var ms []Mapping
	for _, m := range req.Mappings {
		ms = append(ms, mappingFromProto(m))
	}
	st, err := s.impl.SetMappings(ctx, ms)
	if err != nil {
		return nil, err
	}
	return &pb.SetMappingsResponse{Statuses: statusesToProto(st)}, nil
}

func (s *triggerServer) Status(ctx context.Context, _ *pb.Empty) (*pb.StatusResponse, error) {
	st, err := s.impl.Status(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.StatusResponse{Statuses: statusesToProto(st)}, nil
}

func (s *triggerServer) AcceptRecord(ctx context.Context, r *pb.Record) (*pb.Empty, error) {
	ra, ok := s.impl.(RecordAcceptor)
	if !ok {
		return nil, status.Error(codes.Unimplemented, ErrNoRecords.Error())
	}
	if err := ra.AcceptRecord(ctx, Record{Target: r.Target, Key: r.Key, Data: r.Data}); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// hostClient is the plugin's view of the gateway.
type hostClient struct{ client pb.HostClient }

func (h *hostClient) Deliver(ctx context.Context, b Batch) (BatchResult, error) {
	r, err := h.client.Deliver(ctx, &pb.Batch{MappingUuid: b.MappingUUID, Event: b.Event, ItemIds: b.ItemIDs})
	if err != nil {
		return BatchResult{}, fmt.Errorf("delivering a batch to the gateway: %w", err)
	}
	return BatchResult{Outcome: Outcome(r.Outcome), FailedItemIDs: r.FailedItemIds, ErrorType: r.ErrorType,
		ErrorMessage: r.ErrorMessage, Response: r.Response}, nil
}

func (h *hostClient) SendOnFailure(ctx context.Context, mappingUUID string, record []byte) error {
	if _, err := h.client.SendOnFailure(ctx, &pb.FailureRequest{MappingUuid: mappingUUID, Record: record}); err != nil {
		return fmt.Errorf("sending an on-failure record to the gateway: %w", err)
	}
	return nil
}

// hostServer is the host's side of the Host service.
type hostServer struct {
	pb.UnimplementedHostServer
	impl Host
}

func (s *hostServer) Deliver(ctx context.Context, b *pb.Batch) (*pb.BatchResult, error) {
	r, err := s.impl.Deliver(ctx, Batch{MappingUUID: b.MappingUuid, Event: b.Event, ItemIDs: b.ItemIds})
	if err != nil {
		return nil, err
	}
	return &pb.BatchResult{Outcome: pb.BatchResult_Outcome(r.Outcome), FailedItemIds: r.FailedItemIDs, ErrorType: r.ErrorType,
		ErrorMessage: r.ErrorMessage, Response: r.Response}, nil
}

func (s *hostServer) SendOnFailure(ctx context.Context, r *pb.FailureRequest) (*pb.Empty, error) {
	if err := s.impl.SendOnFailure(ctx, r.MappingUuid, r.Record); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

func mappingToProto(m Mapping) *pb.Mapping {
	out := &pb.Mapping{Uuid: m.UUID, Name: m.Name, Function: m.Function, Qualifier: m.Qualifier, FunctionArn: m.FunctionARN,
		Source: m.Source, BatchSize: int32(m.BatchSize), BatchWindowMs: m.BatchWindow.Milliseconds(),
		StartingPosition: m.StartingPosition, MaximumRetryAttempts: int32(m.MaximumRetryAttempts),
		MaximumRecordAgeMs: m.MaximumRecordAge.Milliseconds(), BisectBatchOnFunctionError: m.BisectBatchOnFunctionError,
		ReportBatchItemFailures: m.ReportBatchItemFailures, OnFailureDestination: m.OnFailureDestination,
		Enabled: m.Enabled, Options: m.Options}
	if !m.StartingPositionTimestamp.IsZero() {
		out.StartingPositionTimestampMs = m.StartingPositionTimestamp.UnixMilli()
	}
	return out
}

func mappingFromProto(m *pb.Mapping) Mapping {
	out := Mapping{UUID: m.Uuid, Name: m.Name, Function: m.Function, Qualifier: m.Qualifier, FunctionARN: m.FunctionArn,
		Source: m.Source, BatchSize: int(m.BatchSize), BatchWindow: time.Duration(m.BatchWindowMs) * time.Millisecond,
		StartingPosition: m.StartingPosition, MaximumRetryAttempts: int(m.MaximumRetryAttempts),
		MaximumRecordAge: time.Duration(m.MaximumRecordAgeMs) * time.Millisecond, BisectBatchOnFunctionError: m.BisectBatchOnFunctionError,
		ReportBatchItemFailures: m.ReportBatchItemFailures, OnFailureDestination: m.OnFailureDestination,
		Enabled: m.Enabled, Options: m.Options}
	if m.StartingPositionTimestampMs != 0 {
		out.StartingPositionTimestamp = time.UnixMilli(m.StartingPositionTimestampMs)
	}
	return out
}

func statusesToProto(st []MappingStatus) []*pb.MappingStatus {
	var out []*pb.MappingStatus
	for _, s := range st {
		out = append(out, &pb.MappingStatus{Uuid: s.UUID, State: s.State, Message: s.Message})
	}
	return out
}

func statusesFromProto(st []*pb.MappingStatus) []MappingStatus {
	var out []MappingStatus
	for _, s := range st {
		out = append(out, MappingStatus{UUID: s.Uuid, State: s.State, Message: s.Message})
	}
	return out
}
