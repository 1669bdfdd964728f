package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/internal/lambda"
)

// The code signing operations of the Lambda API: code signing configurations (2020-04-22) and a
// function's configuration (2020-06-30). Terraform's AWS provider reads a function's after every
// change.

func (a *api) createCodeSigningConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.CodeSigningConfigInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.CreateCodeSigningConfig(r.Context(), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 201, out)
}

func (a *api) getCodeSigningConfigByARN(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetCodeSigningConfig(mux.Vars(r)["arn"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) updateCodeSigningConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.CodeSigningConfigInput
	if r.ContentLength != 0 {
		if err := decodeBody(r, &in); err != nil {
			return err
		}
	}
	out, err := a.cfg.Gateway.UpdateCodeSigningConfig(r.Context(), mux.Vars(r)["arn"], &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) deleteCodeSigningConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteCodeSigningConfig(r.Context(), mux.Vars(r)["arn"]); err != nil {
		return err
	}
	return noContent(w, reqID)
}

func (a *api) listCodeSigningConfigs(w http.ResponseWriter, r *http.Request, reqID string) error {
	max, err := maxItems(r)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, a.cfg.Gateway.ListCodeSigningConfigs(r.URL.Query().Get("Marker"), max))
}

func (a *api) listFunctionsByCodeSigningConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	max, err := maxItems(r)
	if err != nil {
		return err
	}
	out, err := a.cfg.Gateway.ListFunctionsByCodeSigningConfig(mux.Vars(r)["arn"], r.URL.Query().Get("Marker"), max)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) putFunctionCodeSigningConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.FunctionCodeSigningConfig
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.PutFunctionCodeSigningConfig(r.Context(), mux.Vars(r)["name"], in.CodeSigningConfigArn)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

// getCodeSigningConfig is GetFunctionCodeSigningConfig ("" when the function has none).
func (a *api) getCodeSigningConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetFunctionCodeSigningConfig(mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) deleteFunctionCodeSigningConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteFunctionCodeSigningConfig(r.Context(), mux.Vars(r)["name"]); err != nil {
		return err
	}
	return noContent(w, reqID)
}
