package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/internal/lambda"
)

// Lambda operations tools call around the ones the gateway is about: resource-based policies
// (stored and read back; see gateway/policy.go).

func (a *api) addPermission(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.AddPermissionInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	stmt, err := a.cfg.Gateway.AddPermission(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 201, map[string]string{"Statement": stmt})
}

func (a *api) getPolicy(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetPolicy(mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) removePermission(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.RemovePermission(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"), mux.Vars(r)["sid"]); err != nil {
		return err
	}
	return noContent(w, reqID)
}
