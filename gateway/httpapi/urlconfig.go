package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/internal/lambda"
)

// The function URL configuration operations of the Lambda API (2021-10-31).

func (a *api) createURLConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.FunctionURLConfigInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.CreateFunctionURLConfig(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"), &in)
	if err != nil {
		return err
	}
	out.LastModifiedTime = "" // CreateFunctionUrlConfig's answer has none
	return writeJSON(w, reqID, 201, out)
}

func (a *api) getURLConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetFunctionURLConfig(mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) updateURLConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.FunctionURLConfigInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.UpdateFunctionURLConfig(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) deleteURLConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteFunctionURLConfig(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier")); err != nil {
		return err
	}
	return noContent(w, reqID)
}

func (a *api) listURLConfigs(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.ListFunctionURLConfigs(mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, map[string]any{"FunctionUrlConfigs": out})
}
