package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"
)

// asyncStatus answers a function's asynchronous invocations as the durable queue holds them
// (gateway async status).
func (a *api) asyncStatus(w http.ResponseWriter, r *http.Request, reqID string) error {
	st, err := a.cfg.Gateway.AsyncStatus(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, st)
}
