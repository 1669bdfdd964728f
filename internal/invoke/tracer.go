package invoke

import (
	"context"
	"time"
)

// The phases of an invocation that a Tracer records as spans.
const (
	PhaseReceive = "receive" // the HTTP handler that took the call (invoke API, function URL)
	PhaseAdmit   = "admit"   // the concurrency check
	PhaseForward = "forward" // the router's call to the peer that runs it
	PhaseThaw    = "thaw"    // thawing a frozen environment
	PhaseRuntime = "runtime" // from the event handed to the runtime to its response
	PhaseFreeze  = "freeze"  // freezing the environment after the response
)

// Tracer records an invocation's phases as spans (internal/tracing, with OpenTelemetry). It is
// nil when tracing is off: every caller checks for nil first, so an untraced invocation pays a
// nil check and nothing else.
type Tracer interface {
	// Start begins phase's span, a child of the span in ctx; without one, of the caller's span
	// named by the trace header (SpanInfo.TraceID), in the same trace.
	Start(ctx context.Context, phase string, info SpanInfo) (context.Context, Span)
	// Record adds a phase timed where it ran (the sandbox's), as Start and End would have.
	Record(ctx context.Context, phase string, info SpanInfo, start, end time.Time, errType string)
	// Remote returns ctx carrying a peer's span, from the traceparent header it forwarded, so
	// the spans made here join its trace; ctx as it is when the header is malformed.
	Remote(ctx context.Context, traceparent string) context.Context
}

// Span is a phase in progress.
type Span interface {
	// End ends the span; errType, when set, marks it failed (error.type).
	End(errType string)
	// Traceparent is the W3C header that makes a peer's spans this span's children.
	Traceparent() string
}

// SpanInfo is what a span says of its invocation.
type SpanInfo struct {
	// TraceID is the invocation's X-Ray trace header (ValidXRay): the span's trace id.
	TraceID string
	// FromCaller says the caller sent the trace header: its Parent is the first span's parent.
	// Otherwise the gateway made it and the first span is the trace's root.
	FromCaller bool
	// RequestID is faas.invocation_id.
	RequestID string
	// Function and Version are faas.name and faas.version (the version or alias called).
	Function, Version string
	// Cold is faas.coldstart, for the runtime phase.
	Cold bool
}
