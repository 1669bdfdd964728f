// Package invoke holds the invocation as the gateway, the router and the sandbox pass it to each
// other: a Request in, a Response out, and a Stream when the response is read as it is written.
// The sandbox makes local streams from a runtime's chunked body; the router makes remote ones
// from a peer's forwarded response. Neither knows the other's.
package invoke

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// Request is one invocation as it is handed to a runtime.
type Request struct {
	// RequestID is the invocation's id (a UUID), echoed as Lambda-Runtime-Aws-Request-Id.
	RequestID string
	// Payload is the event, passed to the runtime as the body of GET /runtime/invocation/next.
	Payload []byte
	// InvokedFunctionARN is the ARN the caller used, qualifier included when one was given.
	InvokedFunctionARN string
	// Version is the version executed ("$LATEST" or a number), logged in START lines.
	Version string
	// ClientContext is the decoded JSON of X-Amz-Client-Context, passed as Lambda-Runtime-Client-Context.
	ClientContext string
	// CognitoIdentity is passed as Lambda-Runtime-Cognito-Identity when set.
	CognitoIdentity string
	// TraceID is passed as Lambda-Runtime-Trace-Id; one is made up when empty.
	TraceID string
	// AcceptStream says the caller takes a streamed response as a Stream (function URLs in
	// RESPONSE_STREAM mode, InvokeWithResponseStream). Otherwise a runtime that streams is read
	// whole, within the 6 MB synchronous limit.
	AcceptStream bool
	// Tail asks for the invocation's log (START to REPORT) in Response.LogTail; the response then
	// waits until the runtime has asked for its next event.
	Tail bool
}

// Response is the outcome of an invocation that reached a runtime (or failed in the sandbox in a
// way Lambda reports as a function error: timeout, crash, out of memory, oversized response).
type Response struct {
	// Payload is the function's response, or the error JSON when FunctionError is set.
	Payload []byte
	// FunctionError is set when the function failed; Lambda then answers 200 with
	// X-Amz-Function-Error: Unhandled and Payload as the body.
	FunctionError bool
	// ErrorType is the error's type: the runtime's Lambda-Runtime-Function-Error-Type, or the
	// sandbox's own (Sandbox.Timedout, Runtime.ExitError, Runtime.OutOfMemory,
	// Function.ResponseSizeTooLarge).
	ErrorType string
	// ExecutedVersion is the version that ran.
	ExecutedVersion string
	// ContentType is the Content-Type the runtime posted its response with (buffered
	// responses; a Stream has its own).
	ContentType string
	// Stream is set when the runtime streamed its response and Request.AcceptStream was set;
	// Payload is then empty. The caller reads it and must Close it.
	Stream Stream
	// LogTail is the invocation's log lines, when Request.Tail was set (the caller trims to 4 KB).
	LogTail []byte
}

// Stream is a response read as the function writes it.
//
// The caller reads until Read returns an error (io.EOF at the end of a complete stream,
// io.ErrUnexpectedEOF when it broke off), then calls Err for an error the function reported
// after its first bytes or one of the path's own (timeout, crash, size limit), and always calls
// Close. Closing before the end cancels the invocation.
type Stream interface {
	io.ReadCloser
	// ContentType is the Content-Type the runtime posted, e.g.
	// application/vnd.awslambda.http-integration-response for a function URL response with a
	// prelude.
	ContentType() string
	// Err reports the error that ended the stream; empty when it ended normally or has not
	// ended.
	Err() (errType string, payload []byte)
	// LogTail returns the invocation's log, START to REPORT, when the request asked for it
	// (Request.Tail); nil otherwise. Called after the stream ended, it may wait for the REPORT
	// line, within ctx.
	LogTail(ctx context.Context) []byte
	// Done is closed once the stream ended: read to its end, broken off, or closed.
	Done() <-chan struct{}
}

// Errors the invocation path maps to Lambda service errors.
var (
	// ErrNoCapacity: the node cannot start another environment (max_environments reached and
	// none idle). The invoke API answers 429 TooManyRequestsException.
	ErrNoCapacity = errors.New("no capacity for another execution environment")
	// ErrShuttingDown: the node is draining and accepts no new invocations.
	ErrShuttingDown = errors.New("sandbox manager is shutting down")
	// ErrFileSystem: a file system of the function cannot be mounted on this node (not declared
	// there, its folder missing). The invoke API answers 403 EFSMountFailureException, as
	// Lambda does when a function's EFS cannot be mounted. Wrapped in a FileSystemError.
	ErrFileSystem = errors.New("the function's file system cannot be mounted")
)

// FileSystemError says why a function's file system cannot be mounted, in words the caller
// may see (no host path).
type FileSystemError struct{ Message string }

func (e *FileSystemError) Error() string { return e.Message }

// Is makes every FileSystemError match ErrFileSystem.
func (e *FileSystemError) Is(target error) bool { return target == ErrFileSystem }

// ErrorJSON is a function error as Lambda reports it: {"errorMessage":...,"errorType":...}.
func ErrorJSON(errType, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, errType})
	return b
}

// The trailers that carry an error raised after a response's first bytes, as the Runtime API
// names them: a runtime's chunked response ends with them, and so does a stream forwarded from
// the peer that ran it.
const (
	TrailerErrorType = "Lambda-Runtime-Function-Error-Type"
	TrailerErrorBody = "Lambda-Runtime-Function-Error-Body"
)

// TrailerError reads the error those trailers carry: its type ("" when none) and its payload,
// the error JSON (a body that is not JSON is wrapped in it).
func TrailerError(trailer http.Header) (errType string, payload []byte) {
	errType = trailer.Get(TrailerErrorType)
	if errType == "" {
		return "", nil
	}
	payload, _ = base64.StdEncoding.DecodeString(trailer.Get(TrailerErrorBody))
	if !json.Valid(payload) {
		payload = ErrorJSON(errType, string(payload))
	}
	return errType, payload
}
