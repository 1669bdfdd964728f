package httpapi

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/internal/lambda"
)

// The tagging operations (2017-03-31): see gateway/tags.go.

func (a *api) listTags(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.CheckTaggable(mux.Vars(r)["arn"]); err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, map[string]map[string]string{"Tags": {}})
}

// tagResource refuses tags, as CreateFunction does; an empty set changes nothing.
func (a *api) tagResource(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in struct{ Tags map[string]string }
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil && err != io.EOF {
		return lambda.InvalidParameter("reading the request: %v", err)
	}
	if err := a.cfg.Gateway.CheckTaggable(mux.Vars(r)["arn"]); err != nil {
		return err
	}
	if len(in.Tags) > 0 {
		return lambda.InvalidParameter("Tags is not supported by this gateway: resources carry no tags")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// untagResource removes nothing: there is no tag to remove.
func (a *api) untagResource(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.CheckTaggable(mux.Vars(r)["arn"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
