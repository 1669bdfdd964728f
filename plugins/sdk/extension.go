package sdk

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/lambdagw/gateway/plugins/sdk/proto"
)

// Extension is an extension plugin: it sees the gateway's telemetry and may decide whether a
// function-URL request goes through.
type Extension interface {
	Schema() Schema
	Configure(ctx context.Context, req ConfigureRequest) ([]Diagnostic, error)
	Capabilities() Capabilities
	// Telemetry is called with each event, in order, when Capabilities().Telemetry is set.
	Telemetry(ctx context.Context, ev TelemetryEvent)
	// Authorize decides a function-URL request when Capabilities().Authorizer is set.
	Authorize(ctx context.Context, req AuthorizeRequest) (AuthorizeResponse, error)
}

// Capabilities says what an extension wants of the gateway.
type Capabilities struct {
	Telemetry  bool
	Authorizer bool
}

// Telemetry event types.
const (
	EventPlatformStart  = "platform.start"
	EventPlatformReport = "platform.report"
	EventFunction       = "function"
)

// TelemetryEvent is one event of the gateway's telemetry.
type TelemetryEvent struct {
	Type      string
	Time      time.Time
	Function  string
	Version   string
	RequestID string
	// Record is the event's record as JSON: Lambda's Telemetry API record for platform events,
	// the log line (a JSON string) for function events.
	Record []byte
}

// AuthorizeRequest is a function-URL request as an authorizer sees it.
type AuthorizeRequest struct {
	Function, Qualifier string
	Method, Path        string
	RawQuery            string
	Headers             map[string]string
	SourceIP            string
}

// AuthorizeResponse allows a request, or denies it with a status (403 when 0) and message.
type AuthorizeResponse struct {
	Allow   bool
	Status  int
	Message string
}

// ExtensionPlugin is the go-plugin plugin of an Extension.
type ExtensionPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Extension
}

// GRPCServer registers the extension's service in the plugin.
func (p *ExtensionPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterExtensionServer(s, &extensionServer{impl: p.Impl})
	return nil
}

// GRPCClient returns the host's view of the extension: an *ExtensionClient.
func (p *ExtensionPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &ExtensionClient{client: pb.NewExtensionClient(c)}, nil
}

// ExtensionClient is the host's side of an extension plugin.
type ExtensionClient struct{ client pb.ExtensionClient }

// Schema returns the plugin's API version and configuration schema. ErrNotServed: the binary
// is no extension.
func (c *ExtensionClient) Schema(ctx context.Context) (int, Schema, error) {
	s, err := c.client.GetSchema(ctx, &pb.Empty{})
	if err != nil {
		return 0, Schema{}, notServed(err)
	}
	v, sch := schemaFromProto(s)
	return v, sch, nil
}

// Configure configures the extension.
func (c *ExtensionClient) Configure(ctx context.Context, req ConfigureRequest) ([]Diagnostic, error) {
	resp, err := c.client.Configure(ctx, &pb.ConfigureRequest{ConfigJson: req.Config, Host: req.HostInfo})
	if err != nil {
		return nil, err
	}
	return diagsFromProto(resp.Diagnostics), nil
}

// Capabilities asks what the extension wants.
func (c *ExtensionClient) Capabilities(ctx context.Context) (Capabilities, error) {
	r, err := c.client.Capabilities(ctx, &pb.Empty{})
	if err != nil {
		return Capabilities{}, err
	}
	return Capabilities{Telemetry: r.Telemetry, Authorizer: r.Authorizer}, nil
}

// Telemetry sends events from ch until it is closed or ctx ends.
func (c *ExtensionClient) Telemetry(ctx context.Context, ch <-chan TelemetryEvent) error {
	st, err := c.client.Telemetry(ctx)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-ch:
			if !ok {
				_, err := st.CloseAndRecv()
				return err
			}
			if err := st.Send(&pb.TelemetryEvent{Type: ev.Type, TimeUnixNano: ev.Time.UnixNano(), Function: ev.Function,
				Version: ev.Version, RequestId: ev.RequestID, Record: ev.Record}); err != nil {
				return err
			}
		}
	}
}

// Authorize asks the extension about a function-URL request.
func (c *ExtensionClient) Authorize(ctx context.Context, req AuthorizeRequest) (AuthorizeResponse, error) {
	r, err := c.client.Authorize(ctx, &pb.AuthorizeRequest{Function: req.Function, Qualifier: req.Qualifier, Method: req.Method,
		Path: req.Path, RawQuery: req.RawQuery, Headers: req.Headers, SourceIp: req.SourceIP})
	if err != nil {
		return AuthorizeResponse{}, err
	}
	return AuthorizeResponse{Allow: r.Allow, Status: int(r.Status), Message: r.Message}, nil
}

type extensionServer struct {
	pb.UnimplementedExtensionServer
	impl Extension
}

func (s *extensionServer) GetSchema(context.Context, *pb.Empty) (*pb.Schema, error) {
	return schemaToProto(ExtensionAPIVersion, s.impl.Schema()), nil
}

func (s *extensionServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	diags, err := s.impl.Configure(ctx, ConfigureRequest{Config: req.ConfigJson, HostInfo: req.Host})
	if err != nil {
		return nil, err
	}
	return &pb.ConfigureResponse{Diagnostics: diagsToProto(diags)}, nil
}

func (s *extensionServer) Capabilities(context.Context, *pb.Empty) (*pb.ExtensionCapabilities, error) {
	c := s.impl.Capabilities()
	return &pb.ExtensionCapabilities{Telemetry: c.Telemetry, Authorizer: c.Authorizer}, nil
}

func (s *extensionServer) Telemetry(st grpc.ClientStreamingServer[pb.TelemetryEvent, pb.TelemetryAck]) error {
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&pb.TelemetryAck{})
		}
		if err != nil {
			return err
		}
		s.impl.Telemetry(st.Context(), TelemetryEvent{Type: ev.Type, Time: time.Unix(0, ev.TimeUnixNano), Function: ev.Function,
			Version: ev.Version, RequestID: ev.RequestId, Record: ev.Record})
	}
}

func (s *extensionServer) Authorize(ctx context.Context, req *pb.AuthorizeRequest) (*pb.AuthorizeResponse, error) {
	r, err := s.impl.Authorize(ctx, AuthorizeRequest{Function: req.Function, Qualifier: req.Qualifier, Method: req.Method,
		Path: req.Path, RawQuery: req.RawQuery, Headers: req.Headers, SourceIP: req.SourceIp})
	if err != nil {
		return nil, err
	}
	return &pb.AuthorizeResponse{Allow: r.Allow, Status: int32(r.Status), Message: r.Message}, nil
}
