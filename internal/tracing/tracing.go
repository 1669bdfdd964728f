// Package tracing exports the spans of invocations' phases (invoke.Tracer) over OTLP/HTTP with
// the OpenTelemetry Go SDK, to the collector the agent's tracing block names. The gateway and
// the sandbox see only invoke.Tracer; the agent wires this in when tracing is configured, and
// nothing at all when it is not.
package tracing

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lambdagw/gateway/internal/invoke"
)

// Config is the agent's tracing block.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP URL (http or https); without a path, spans go to
	// /v1/traces under it.
	Endpoint string
	// Insecure skips the verification of an https collector's certificate.
	Insecure bool
	// Headers are sent with every export (a collector's API key).
	Headers map[string]string
	// SampleRatio is the fraction of traces recorded (0..1) that the caller has not sampled
	// already; a caller's sampled trace is always recorded.
	SampleRatio float64
	// ServiceName is service.name; NodeName service.instance.id and each span's lambdagw.node.
	ServiceName, NodeName string
	Logger                hclog.Logger
}

// Tracer is invoke.Tracer over an OpenTelemetry tracer provider with a batch span processor.
type Tracer struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	node   attribute.KeyValue
}

var _ invoke.Tracer = (*Tracer)(nil)

// New starts the exporter. Nothing is sent until the first batch; a collector that is down
// costs dropped spans (logged), never an invocation.
func New(cfg Config) (*Tracer, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing: otlp_endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	path := u.Path
	if path == "" || path == "/" {
		path = "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path),
		otlptracehttp.WithTimeout(10 * time.Second)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	} else if cfg.Insecure {
		opts = append(opts, otlptracehttp.WithTLSClientConfig(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec // the operator's choice, documented
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: starting the OTLP exporter: %w", err)
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "lambdagw"
	}
	if cfg.Logger != nil {
		// The SDK's one hook for its errors is process-wide. A collector that is down fails
		// every batch: say so once a minute, with how many failed meanwhile.
		logger := cfg.Logger.Named("tracing")
		var mu sync.Mutex
		var last time.Time
		failed := 0
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			mu.Lock()
			defer mu.Unlock()
			failed++
			if time.Since(last) < time.Minute {
				return
			}
			logger.Warn("exporting spans failed", "error", err, "failures_since_last_warning", failed)
			last, failed = time.Now(), 0
		}))
	}
	ratio := sdktrace.TraceIDRatioBased(cfg.SampleRatio)
	// Span attributes carry what callers send (a qualifier, a function URL's path): capped, so
	// no caller can make the batch queue large.
	limits := sdktrace.NewSpanLimits()
	limits.AttributeValueLengthLimit = maxAttributeBytes
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithRawSpanLimits(limits),
		sdktrace.WithIDGenerator(idGenerator{}),
		// A caller's sampled trace is recorded; the others (unsampled or none) by the ratio,
		// decided on the trace id, so every node decides the same for one trace.
		sdktrace.WithSampler(sdktrace.ParentBased(ratio, sdktrace.WithRemoteParentNotSampled(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", cfg.ServiceName),
			attribute.String("service.instance.id", cfg.NodeName),
		)),
	)
	return &Tracer{tp: tp, tracer: tp.Tracer("github.com/lambdagw/gateway"), node: attribute.String("lambdagw.node", cfg.NodeName)}, nil
}

// maxAttributeBytes bounds a span attribute's value.
const maxAttributeBytes = 256

// Shutdown exports the spans still buffered (bounded by ctx) and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("flushing spans: %w", err)
	}
	return nil
}

// rootTraceKey carries the trace id a root span must have (the invocation's) to the id
// generator: the SDK makes up a new one for a span without a parent otherwise.
type rootTraceKey struct{}

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	tid, ok := ctx.Value(rootTraceKey{}).(trace.TraceID)
	if !ok {
		tid = randomTraceID()
	}
	return tid, randomSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return randomSpanID() }

// parent returns ctx with what the first span of an invocation here descends from: the span
// already in ctx, else the caller's span the trace header names, else nothing but the trace id.
func parent(ctx context.Context, info *invoke.SpanInfo) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	tc, ok := invoke.ParseTraceContext(info.TraceID)
	if !ok {
		return ctx // no trace header (a caller that bypassed the entry points): a trace of its own
	}
	if info.FromCaller && tc.ParentID != [8]byte{} {
		flags := trace.TraceFlags(0)
		if tc.Sampled {
			flags = trace.FlagsSampled
		}
		return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tc.TraceID, SpanID: tc.ParentID, TraceFlags: flags, Remote: true}))
	}
	return context.WithValue(ctx, rootTraceKey{}, trace.TraceID(tc.TraceID))
}

func (t *Tracer) attrs(phase string, info *invoke.SpanInfo) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 6)
	a = append(a, t.node, attribute.String("faas.invocation_id", info.RequestID))
	if info.Function != "" {
		a = append(a, attribute.String("faas.name", info.Function))
	}
	if info.Version != "" {
		a = append(a, attribute.String("faas.version", info.Version))
	}
	if phase == invoke.PhaseRuntime {
		a = append(a, attribute.Bool("faas.coldstart", info.Cold))
	}
	return a
}

// spanKind: the receive span serves a caller, the forward span calls a peer.
func spanKind(phase string) trace.SpanKind {
	switch phase {
	case invoke.PhaseReceive:
		return trace.SpanKindServer
	case invoke.PhaseForward:
		return trace.SpanKindClient
	}
	return trace.SpanKindInternal
}

// Start begins phase's span.
func (t *Tracer) Start(ctx context.Context, phase string, info invoke.SpanInfo) (context.Context, invoke.Span) {
	ctx, s := t.tracer.Start(parent(ctx, &info), phase, trace.WithSpanKind(spanKind(phase)), trace.WithAttributes(t.attrs(phase, &info)...))
	return ctx, span{s}
}

// Record adds a phase that ran from start to end.
func (t *Tracer) Record(ctx context.Context, phase string, info invoke.SpanInfo, start, end time.Time, errType string) {
	_, s := t.tracer.Start(parent(ctx, &info), phase, trace.WithSpanKind(spanKind(phase)), trace.WithTimestamp(start),
		trace.WithAttributes(t.attrs(phase, &info)...))
	endSpan(s, errType, trace.WithTimestamp(end))
}

// Remote continues a peer's span from its traceparent header.
func (t *Tracer) Remote(ctx context.Context, traceparent string) context.Context {
	x, ok := invoke.TraceparentToXRay(traceparent)
	if !ok {
		return ctx
	}
	tc, _ := invoke.ParseTraceContext(x)
	flags := trace.TraceFlags(0)
	if tc.Sampled {
		flags = trace.FlagsSampled
	}
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tc.TraceID, SpanID: tc.ParentID, TraceFlags: flags, Remote: true}))
}

type span struct{ s trace.Span }

func (s span) End(errType string) { endSpan(s.s, errType) }

// Traceparent is W3C's header for this span: 00-<trace id>-<span id>-<flags>.
func (s span) Traceparent() string {
	sc := s.s.SpanContext()
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, []byte{byte(sc.TraceFlags())})
	return string(b)
}

func endSpan(s trace.Span, errType string, opts ...trace.SpanEndOption) {
	if errType != "" {
		s.SetAttributes(attribute.String("error.type", errType))
		s.SetStatus(codes.Error, errType)
	}
	s.End(opts...)
}

// randomTraceID and randomSpanID: math/rand/v2's global source is ChaCha8, safe for concurrent
// use and never zero in practice (a zero id is retried, as W3C forbids it).
func randomTraceID() (t trace.TraceID) {
	for !t.IsValid() {
		binary.LittleEndian.PutUint64(t[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t
}

func randomSpanID() (s trace.SpanID) {
	for !s.IsValid() {
		binary.LittleEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}
