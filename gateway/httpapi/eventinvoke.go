package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/lambdagw/gateway/internal/lambda"
)

// The event invoke configuration operations of the Lambda API (2019-09-25): a function's (or a
// version's, or an alias's) asynchronous invocation settings. As for every Lambda request,
// fields the API does not know are ignored; all of Lambda's fields of these requests are
// implemented.

// eventInvokeInput reads the body of Put and Update, which may be empty (Put then removes
// every setting, as Lambda's does).
func eventInvokeInput(r *http.Request) (*lambda.EventInvokeConfigInput, error) {
	var in lambda.EventInvokeConfigInput
	if r.ContentLength != 0 {
		if err := decodeBody(r, &in); err != nil {
			return nil, err
		}
	}
	return &in, nil
}

func (a *api) putEventInvokeConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	in, err := eventInvokeInput(r)
	if err != nil {
		return err
	}
	out, err := a.cfg.Gateway.PutFunctionEventInvokeConfig(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) updateEventInvokeConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	in, err := eventInvokeInput(r)
	if err != nil {
		return err
	}
	out, err := a.cfg.Gateway.UpdateFunctionEventInvokeConfig(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) getEventInvokeConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetFunctionEventInvokeConfig(mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) deleteEventInvokeConfig(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteFunctionEventInvokeConfig(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier")); err != nil {
		return err
	}
	return noContent(w, reqID)
}

func (a *api) listEventInvokeConfigs(w http.ResponseWriter, r *http.Request, reqID string) error {
	max, err := maxItems(r)
	if err != nil {
		return err
	}
	out, err := a.cfg.Gateway.ListFunctionEventInvokeConfigs(mux.Vars(r)["name"], r.URL.Query().Get("Marker"), max)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}
