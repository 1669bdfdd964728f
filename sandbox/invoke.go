package sandbox

import (
	"errors"
)

// Request is one invocation as the sandbox hands it to a runtime.
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
	Stream *Stream
	// LogTail is the invocation's log lines, when Request.Tail was set (the caller trims to 4 KB).
	LogTail []byte
}

// Errors the invocation path maps to Lambda service errors.
var (
	// ErrNoCapacity: the node cannot start another environment (max_environments reached and
	// none idle). The invoke API answers 429 TooManyRequestsException.
	ErrNoCapacity = errors.New("no capacity for another execution environment")
	// ErrShuttingDown: the node is draining and accepts no new invocations.
	ErrShuttingDown = errors.New("sandbox manager is shutting down")
)
