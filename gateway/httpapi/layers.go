package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/internal/lambda"
)

func (a *api) publishLayerVersion(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.PublishLayerVersionInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.PublishLayerVersion(r.Context(), mux.Vars(r)["layer"], &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 201, out)
}

func (a *api) getLayerVersion(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetLayerVersion(mux.Vars(r)["layer"], mux.Vars(r)["version"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

// listLayers is ListLayers, or GetLayerVersionByArn (?find=LayerVersion&Arn=...), which Lambda
// serves at the same path.
func (a *api) listLayers(w http.ResponseWriter, r *http.Request, reqID string) error {
	q := r.URL.Query()
	if q.Get("find") == "LayerVersion" {
		out, err := a.cfg.Gateway.GetLayerVersionByArn(q.Get("Arn"))
		if err != nil {
			return err
		}
		return writeJSON(w, reqID, 200, out)
	}
	max, err := maxItems(r)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, a.cfg.Gateway.ListLayers(q.Get("CompatibleRuntime"), q.Get("CompatibleArchitecture"), q.Get("Marker"), max))
}

func (a *api) listLayerVersions(w http.ResponseWriter, r *http.Request, reqID string) error {
	max, err := maxItems(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out, err := a.cfg.Gateway.ListLayerVersions(mux.Vars(r)["layer"], q.Get("CompatibleRuntime"), q.Get("CompatibleArchitecture"), q.Get("Marker"), max)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) deleteLayerVersion(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteLayerVersion(r.Context(), mux.Vars(r)["layer"], mux.Vars(r)["version"]); err != nil {
		return err
	}
	return noContent(w, reqID)
}

func (a *api) addLayerVersionPermission(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.AddLayerVersionPermissionInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	v := mux.Vars(r)
	out, err := a.cfg.Gateway.AddLayerVersionPermission(r.Context(), v["layer"], v["version"], r.URL.Query().Get("RevisionId"), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 201, out)
}

func (a *api) getLayerVersionPolicy(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetLayerVersionPolicy(mux.Vars(r)["layer"], mux.Vars(r)["version"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) removeLayerVersionPermission(w http.ResponseWriter, r *http.Request, reqID string) error {
	v := mux.Vars(r)
	if err := a.cfg.Gateway.RemoveLayerVersionPermission(r.Context(), v["layer"], v["version"], v["sid"], r.URL.Query().Get("RevisionId")); err != nil {
		return err
	}
	return noContent(w, reqID)
}
