package httpapi

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/lambda"
)

// incomingTrace is the request's trace header (invoke.IncomingTrace), read once by traced.
type incomingTrace struct {
	id         string
	fromCaller bool
}

type traceKey struct{}

// traced wraps an invocation handler in the receive phase's span when tracing is on; h itself
// when it is off, at no cost.
func (a *api) traced(h handler) handler {
	if a.cfg.Tracer == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request, reqID string) error {
		id, fromCaller := invoke.IncomingTrace(r.Header)
		// The invoke API names its function and qualifier; a function URL's query is its own
		// caller's, and its function is known once the URL is resolved (its later spans name it).
		name, version := mux.Vars(r)["name"], ""
		if name != "" {
			version = r.URL.Query().Get("Qualifier")
		}
		ctx, sp := a.cfg.Tracer.Start(r.Context(), invoke.PhaseReceive, invoke.SpanInfo{TraceID: id, FromCaller: fromCaller,
			RequestID: reqID, Function: name, Version: version})
		ctx = context.WithValue(ctx, traceKey{}, incomingTrace{id, fromCaller})
		err := h(w, r.WithContext(ctx), reqID)
		errType := w.Header().Get("X-Amz-Function-Error")
		if err != nil {
			errType = lambda.ErrorType(err)
		}
		sp.End(errType)
		return err
	}
}

// requestTrace is the trace header an invocation request carries (or was given here), and
// whether its caller sent it.
func requestTrace(r *http.Request) (string, bool) {
	if t, ok := r.Context().Value(traceKey{}).(incomingTrace); ok {
		return t.id, t.fromCaller
	}
	return invoke.IncomingTrace(r.Header)
}
