package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/lambdagw/gateway/internal/structs"
)

// The Runtime API, version 2018-06-01, as one environment serves it to its runtime
// (PROTOCOLS.md section 1).
const (
	headerRequestID       = "Lambda-Runtime-Aws-Request-Id"
	headerDeadline        = "Lambda-Runtime-Deadline-Ms"
	headerFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID         = "Lambda-Runtime-Trace-Id"
	headerClientContext   = "Lambda-Runtime-Client-Context"
	headerCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	headerErrorType       = "Lambda-Runtime-Function-Error-Type"
	headerErrorBody       = "Lambda-Runtime-Function-Error-Body"
	headerResponseMode    = "Lambda-Runtime-Function-Response-Mode"
)

// maxErrorBytes bounds an error report; Lambda truncates larger ones too.
const maxErrorBytes = 1 << 20

func (e *environment) runtimeAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", e.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", e.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", e.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", e.handleInitError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "InvalidRequest", fmt.Sprintf("unknown Runtime API call %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// handleNext is the runtime's long poll. Its first call ends Init; every later call ends the
// invocation in progress (END, REPORT, the environment goes back to the pool, maybe frozen).
func (e *environment) handleNext(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	first := !e.inited
	e.inited = true
	prev := e.cur
	e.mu.Unlock()
	if first {
		close(e.initDone)
	}
	if prev != nil {
		e.finish(prev)
	}
	var inv *invocation
	select {
	case inv = <-e.events:
	case <-e.dead:
		apiError(w, http.StatusInternalServerError, "Runtime.Shutdown", "the execution environment is shutting down")
		return
	case <-r.Context().Done():
		return
	}
	req := inv.req
	h := w.Header()
	h.Set(headerRequestID, req.RequestID)
	h.Set(headerDeadline, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(headerFunctionARN, req.InvokedFunctionARN)
	h.Set(headerTraceID, req.TraceID)
	if req.ClientContext != "" {
		h.Set(headerClientContext, req.ClientContext)
	}
	if req.CognitoIdentity != "" {
		h.Set(headerCognitoIdentity, req.CognitoIdentity)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(req.Payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(req.Payload)
}

// claim checks that id names the invocation in progress and that it has not been answered, and
// marks it answered. It writes the API's error and returns nil otherwise.
func (e *environment) claim(w http.ResponseWriter, id string) *invocation {
	e.mu.Lock()
	inv := e.cur
	switch {
	case inv == nil || inv.req.RequestID != id:
		e.mu.Unlock()
		apiError(w, http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("request id %q is not the invocation in progress", id))
		return nil
	case inv.answered:
		e.mu.Unlock()
		apiError(w, http.StatusForbidden, "InvalidStateTransition", fmt.Sprintf("invocation %s was already answered", id))
		return nil
	}
	inv.answered = true
	e.mu.Unlock()
	e.m.markFinishing(e, 1)
	return inv
}

func (e *environment) handleResponse(w http.ResponseWriter, r *http.Request) {
	inv := e.claim(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, structs.MaxSyncPayloadBytes+1))
	if err != nil {
		inv.complete(e.errorResponse(inv, "Runtime.Unknown", "reading the runtime's response: "+err.Error()))
		apiError(w, http.StatusBadRequest, "InvalidRequest", "reading the response body: "+err.Error())
		return
	}
	if len(body) > structs.MaxSyncPayloadBytes {
		inv.complete(e.errorResponse(inv, "Function.ResponseSizeTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", structs.MaxSyncPayloadBytes)))
		_, _ = io.Copy(io.Discard, r.Body)
		apiError(w, http.StatusRequestEntityTooLarge, "Function.ResponseSizeTooLarge",
			fmt.Sprintf("response is larger than %d bytes", structs.MaxSyncPayloadBytes))
		return
	}
	// A streamed response reports an error raised after its first bytes in trailers.
	if r.Header.Get(headerResponseMode) == "streaming" {
		if et := r.Trailer.Get(headerErrorType); et != "" {
			payload, _ := base64.StdEncoding.DecodeString(r.Trailer.Get(headerErrorBody))
			if !json.Valid(payload) {
				payload = errorJSON(et, string(payload))
			}
			inv.complete(&Response{Payload: payload, FunctionError: true, ErrorType: et, ExecutedVersion: inv.req.Version})
			writeAccepted(w)
			return
		}
	}
	inv.complete(&Response{Payload: body, ExecutedVersion: inv.req.Version})
	writeAccepted(w)
}

func (e *environment) handleError(w http.ResponseWriter, r *http.Request) {
	inv := e.claim(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	errType, payload := readErrorReport(r)
	inv.complete(&Response{Payload: payload, FunctionError: true, ErrorType: errType, ExecutedVersion: inv.req.Version})
	writeAccepted(w)
}

func (e *environment) handleInitError(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	inited := e.inited
	e.mu.Unlock()
	if inited {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "init/error is only valid before the first invocation/next")
		return
	}
	errType, payload := readErrorReport(r)
	var report struct {
		Message string `json:"errorMessage"`
	}
	_ = json.Unmarshal(payload, &report)
	select {
	case e.initFail <- &initError{errorType: errType, message: report.Message, body: payload, status: "error"}:
	default:
	}
	writeAccepted(w)
}

// readErrorReport reads an error posted by the runtime: the type from the header (or the body),
// the body passed to the caller as is when it is JSON, wrapped otherwise.
func readErrorReport(r *http.Request) (string, []byte) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBytes))
	errType := r.Header.Get(headerErrorType)
	var report struct {
		Type string `json:"errorType"`
	}
	valid := json.Valid(body)
	if valid {
		_ = json.Unmarshal(body, &report)
	}
	if errType == "" {
		errType = report.Type
	}
	if errType == "" {
		errType = "Runtime.Unknown"
	}
	if !valid {
		body = errorJSON(errType, string(body))
	}
	return errType, body
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func apiError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorJSON(errType, msg))
}
