package httpapi

import (
	"net/http"
)

// Health is the node's health (the agent's checks). Both calls must be cheap: they read what
// the node already knows or checked in the background, and never ask a peer.
type Health interface {
	// Checks returns each check's outcome, in a stable order.
	Checks() []HealthCheck
	// Ready reports whether the node can serve invocations now (started, not shutting down,
	// a Raft leader known, its store caught up), and why not.
	Ready() (bool, string)
}

// HealthCheck is one check's outcome. Detail says what is wrong in an operator's words,
// without secrets or host paths.
type HealthCheck struct {
	Name   string
	OK     bool
	Detail string
}

// healthCheckJSON is a check in /v1/health's answer.
type healthCheckJSON struct {
	Status string `json:"status"` // ok or failing
	Detail string `json:"detail,omitempty"`
}

// health answers 200 {"status":"ok","checks":{...}} or, when any check fails, 503 with status
// "failing" and each check's detail.
func (a *api) health(w http.ResponseWriter, r *http.Request, reqID string) error {
	out := struct {
		Status string                     `json:"status"`
		Checks map[string]healthCheckJSON `json:"checks"`
	}{Status: "ok", Checks: map[string]healthCheckJSON{}}
	if a.cfg.Health != nil {
		for _, c := range a.cfg.Health.Checks() {
			st := "ok"
			if !c.OK {
				st, out.Status = "failing", "failing"
			}
			out.Checks[c.Name] = healthCheckJSON{Status: st, Detail: c.Detail}
		}
	}
	status := http.StatusOK
	if out.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, reqID, status, out)
}

// ready is the load balancers' check: 200 when this node can serve invocations, 503 when not,
// with a small body saying which.
func (a *api) ready(w http.ResponseWriter, r *http.Request, reqID string) error {
	ok, why := true, ""
	if a.cfg.Health != nil {
		ok, why = a.cfg.Health.Ready()
	}
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		return writeJSON(w, reqID, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "detail": why})
	}
	return writeJSON(w, reqID, http.StatusOK, map[string]string{"status": "ready"})
}
