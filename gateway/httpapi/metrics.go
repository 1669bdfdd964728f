package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/internal/lambda"
)

// Metrics is the node's metrics as the API serves them (internal/metrics through the agent).
type Metrics interface {
	// Handler serves the node's registry (Prometheus text, or OpenMetrics when asked).
	Handler() http.Handler
	// History is function's recent history across the cluster, minutes points of a minute
	// each ending with the current one (GET /v1/functions/{name}/metrics).
	History(ctx context.Context, function string, minutes int) any
}

// The span of a function's history: what GET /v1/functions/{name}/metrics?minutes=N takes.
const (
	defaultHistoryMinutes = 60
	maxHistoryMinutes     = 180
)

// errMetricsOff answers the metrics routes of an agent whose metrics block turned them off.
func errMetricsOff() error {
	return &lambda.Error{Status: http.StatusNotFound, Type: "ResourceNotFoundException",
		Message: "metrics are disabled on this node: its agent file has metrics { enabled = false }"}
}

func (a *api) metrics(w http.ResponseWriter, r *http.Request, _ string) error {
	if a.cfg.Metrics == nil {
		return errMetricsOff()
	}
	a.cfg.Metrics.Handler().ServeHTTP(w, r)
	return nil
}

func (a *api) functionMetrics(w http.ResponseWriter, r *http.Request, reqID string) error {
	if a.cfg.Metrics == nil {
		return errMetricsOff()
	}
	n, err := parseMinutes(r.URL.Query())
	if err != nil {
		return err
	}
	name, qualifier, err := lambda.ParseFunctionName(mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	if qualifier != "" {
		return lambda.InvalidParameter("the metrics history is a function's, of all its qualifiers: name the function without %q", ":"+qualifier)
	}
	if _, err := a.cfg.Gateway.GetFunction(name, ""); err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, a.cfg.Metrics.History(r.Context(), name, n))
}

// parseMinutes reads the minutes parameter: one whole number from 1 to 180, 60 when absent.
func parseMinutes(q url.Values) (int, error) {
	vs, ok := q["minutes"]
	if !ok {
		return defaultHistoryMinutes, nil
	}
	if len(vs) != 1 {
		return 0, lambda.InvalidParameter("minutes is given %d times: give it once, a number from 1 to %d", len(vs), maxHistoryMinutes)
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < 1 || n > maxHistoryMinutes || len(vs[0]) > 3 {
		return 0, lambda.InvalidParameter("minutes %q must be a whole number from 1 to %d", truncate(vs[0], 32), maxHistoryMinutes)
	}
	return n, nil
}
