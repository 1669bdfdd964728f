package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/lambda/eventstream"
)

// invokeWithResponseStream serves InvokeWithResponseStream: the function's response as
// PayloadChunk events while the function writes it, then InvokeComplete. Errors found before
// the function runs (unknown function, bad payload, throttling) are ordinary Lambda errors; a
// function error, buffered or after the first chunk, is reported in InvokeComplete.
func (a *api) invokeWithResponseStream(w http.ResponseWriter, r *http.Request, reqID string) error {
	in, err := invokeInput(r, reqID)
	if err != nil {
		return err
	}
	switch in.InvocationType {
	case "", gateway.RequestResponse, gateway.DryRun:
	default:
		return lambda.InvalidParameter("invalid invocation type %q for InvokeWithResponseStream: use RequestResponse or DryRun", in.InvocationType)
	}
	in.AcceptStream = true
	out, err := a.cfg.Gateway.Invoke(r.Context(), in)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("X-Amzn-RequestId", reqID)
	if out.ExecutedVersion != "" {
		h.Set("X-Amz-Executed-Version", out.ExecutedVersion)
	}
	if out.Status != http.StatusOK {
		w.WriteHeader(out.Status)
		return nil
	}
	h.Set("Content-Type", eventstream.ContentType)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	ew := eventstream.NewWriter(w, rc.Flush)
	if out.Stream == nil {
		// The runtime answered in one piece (or failed before streaming).
		var code, details, logs string
		if out.FunctionError != "" {
			if code, details = errorDetails(out.Payload); code == "" {
				code = out.FunctionError
			}
		} else if err := ew.WritePayloadChunk(out.Payload); err != nil {
			return nil
		}
		if in.LogTail && out.LogTail != nil {
			logs = logResult(out.LogTail)
		}
		_ = ew.WriteInvokeComplete(code, details, logs)
		return nil
	}

	st := out.Stream
	defer st.Close()
	stop := context.AfterFunc(r.Context(), func() { _ = st.Close() })
	defer stop()
	if err := pump(st, ew.WritePayloadChunk, func() { _ = st.Close() }); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil // the client went away; the stream was closed, which cancels the invocation
	}
	var code, details, logs string
	if errType, payload := st.Err(); errType != "" {
		code, details = errorDetails(payload)
		if code == "" {
			code = errType
		}
	}
	if in.LogTail {
		if tail := st.LogTail(r.Context()); tail != nil {
			logs = logResult(tail)
		}
	}
	_ = ew.WriteInvokeComplete(code, details, logs)
	return nil
}

// errorDetails splits a function error payload into InvokeComplete's ErrorCode (its errorType)
// and ErrorDetails (its errorMessage, or the whole payload when it has none).
func errorDetails(payload []byte) (code, details string) {
	var e struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(payload, &e) != nil || e.ErrorMessage == "" {
		return e.ErrorType, string(payload)
	}
	return e.ErrorType, e.ErrorMessage
}
