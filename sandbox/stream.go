package sandbox

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// DefaultMaxStreamBytes bounds a streamed response, as Lambda's 20 MB soft limit.
const DefaultMaxStreamBytes = 20 << 20

// Stream is a response the runtime posts as it writes it (chunked: aws-lambda-go does so for a
// handler's io.Reader without a mode header; other runtimes say
// Lambda-Runtime-Function-Response-Mode: streaming), read by the caller as it arrives. Nothing is buffered in between: Read reads the
// runtime's chunked request body itself, so a slow caller slows the runtime's writes.
//
// The caller reads until Read returns an error, then calls Err for an error the function
// reported after its first bytes (trailers) or the sandbox's own (timeout, crash, size limit),
// and always calls Close. Closing before the end cancels the invocation: the environment is
// reset, since its runtime is still writing a response nobody reads.
type Stream struct {
	// ContentType is the Content-Type the runtime posted, e.g. application/vnd.awslambda.http-integration-response
	// for a function URL response with a prelude.
	ContentType string

	body    io.Reader   // the runtime's POST body, or a forwarded stream from a peer
	trailer http.Header // its trailers (filled at the end of body): the late error
	limit   int64
	// closer, for a forwarded stream, releases its connection (closing it early cancels the
	// invocation on the peer); remoteTail reads the log tail the peer sent in the trailers.
	closer     io.Closer
	remoteTail bool

	mu        sync.Mutex
	n         int64
	ended     bool // Read saw the end, or the stream failed
	broken    bool // ended before the runtime finished its body
	cancelled bool // closed before the end, or over the limit: the environment must be reset
	errType   string
	errBody   []byte
	done      chan struct{}
	closeOnce sync.Once
	inv       *invocation // set when the caller asked for the log tail
}

func newStream(r *http.Request, limit int64) *Stream {
	return &Stream{ContentType: r.Header.Get("Content-Type"), body: r.Body, trailer: r.Trailer, limit: limit, done: make(chan struct{})}
}

// Trailers of a forwarded stream (a peer ran the invocation; see ForwardStream): the function's
// late error as the runtime reports it, and the log tail.
const (
	TrailerErrorType = headerErrorType
	TrailerErrorBody = headerErrorBody
	TrailerLogTail   = "Gateway-Log-Tail"
)

// NewForwardedStream is the Stream of an invocation a peer runs: body is the peer's response
// body, trailer its trailers (filled when body ends, with TrailerErrorType, TrailerErrorBody
// and TrailerLogTail). Closing it before the end closes body, which cancels the invocation there.
func NewForwardedStream(contentType string, body io.ReadCloser, trailer http.Header) *Stream {
	if trailer == nil {
		trailer = http.Header{}
	}
	// The limit is enforced where the function runs; this one only keeps the arithmetic in range.
	return &Stream{ContentType: contentType, body: body, trailer: trailer, limit: 1 << 62, closer: body,
		remoteTail: true, done: make(chan struct{})}
}

// ForwardTrailers are the trailers that carry the end of s to the node a caller is on: its
// error (the function's or the sandbox's) and, once the invocation ended, its log tail. Their
// values take at most limit bytes, since a client reads trailers within a bounded buffer: a
// longer log tail keeps its end (callers show the last 4 KB), a longer error becomes the error
// JSON with the start of its message.
func (s *Stream) ForwardTrailers(ctx context.Context, limit int) http.Header {
	h := http.Header{}
	et, body := s.Err()
	tail := s.LogTail(ctx)
	et = et[:min(len(et), limit/8)]
	// What the two base64 values may hold: 3 bytes per 4, less two blocks of padding.
	room := max((limit-len(et))/4*3-6, 0)
	keep := min(len(tail), max(room/2, room-len(body)))
	tail = tail[len(tail)-keep:]
	if len(body) > room-keep {
		body = cutError(et, body, room-keep)
	}
	if et != "" {
		h.Set(TrailerErrorType, et)
		h.Set(TrailerErrorBody, base64.StdEncoding.EncodeToString(body))
	}
	if len(tail) > 0 {
		h.Set(TrailerLogTail, base64.StdEncoding.EncodeToString(tail))
	}
	return h
}

// cutError shortens an error payload to at most n bytes of error JSON, keeping the start of
// its message (the whole payload when it has none).
func cutError(errType string, payload []byte, n int) []byte {
	var e struct {
		Message string `json:"errorMessage"`
	}
	msg := string(payload)
	if json.Unmarshal(payload, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	// Escaping may make the JSON longer than the message: cut until it fits.
	for cut := min(len(msg), n); ; cut = cut * 3 / 4 {
		if b := errorJSON(errType, msg[:cut]); len(b) <= n || cut == 0 {
			return b
		}
	}
}

// Read reads the function's bytes as they arrive. It returns io.EOF at the end of a complete
// stream and another error when the stream broke off (see Err for why).
func (s *Stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return 0, s.endErr()
	}
	if room := s.limit - s.n; int64(len(p)) > room+1 {
		p = p[:room+1] // one byte past the limit is enough to know it is exceeded
	}
	s.mu.Unlock()

	n, err := s.body.Read(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.n += int64(n)
	switch {
	case s.n > s.limit:
		n -= int(s.n - s.limit)
		s.failLocked("Function.ResponseSizeTooLarge", fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", s.limit))
		s.cancelled, s.broken = true, true
		s.endLocked()
	case errors.Is(err, io.EOF):
		if et := s.trailer.Get(headerErrorType); et != "" {
			payload, _ := base64.StdEncoding.DecodeString(s.trailer.Get(headerErrorBody))
			if !json.Valid(payload) {
				payload = errorJSON(et, string(payload))
			}
			if s.errType == "" {
				s.errType, s.errBody = et, payload
			}
		}
		s.endLocked()
	case err != nil:
		// The connection broke: a timeout or crash recorded its reason before tearing it down;
		// otherwise the runtime went away mid-stream.
		s.failLocked("Runtime.StreamError", "the runtime's response stream broke off: "+err.Error())
		s.broken = true
		s.endLocked()
	}
	if s.ended {
		return n, s.endErr()
	}
	return n, nil
}

// endErr is what Read returns once the stream ended: io.EOF when the runtime finished its body
// (an error it reported in the trailers comes from Err), io.ErrUnexpectedEOF when it broke off.
func (s *Stream) endErr() error {
	if s.broken {
		return io.ErrUnexpectedEOF
	}
	return io.EOF
}

// Err reports the error that ended the stream: the function's (trailers) or the sandbox's
// (Sandbox.Timedout, Runtime.ExitError, Function.ResponseSizeTooLarge, ...). Empty when the
// stream ended normally or has not ended.
func (s *Stream) Err() (errType string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errType, s.errBody
}

func (s *Stream) setTail(inv *invocation) {
	s.mu.Lock()
	s.inv = inv
	s.mu.Unlock()
}

// LogTail returns the invocation's log, START to REPORT, when the request asked for it
// (Request.Tail); nil otherwise. Call it after the stream ended: it waits for the REPORT line,
// which is written once the runtime asks for its next event (or the environment is reset).
func (s *Stream) LogTail(ctx context.Context) []byte {
	s.mu.Lock()
	inv, ended := s.inv, s.ended
	s.mu.Unlock()
	if s.remoteTail {
		if !ended {
			return nil
		}
		tail, _ := base64.StdEncoding.DecodeString(s.trailer.Get(TrailerLogTail))
		if len(tail) == 0 {
			return nil
		}
		return tail
	}
	if inv == nil {
		return nil
	}
	select {
	case <-inv.ended:
		return inv.tail
	case <-ctx.Done():
		return nil
	}
}

// Done is closed once the stream ended: read to its end, broken off, or closed.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Close ends the caller's side. Before the end it cancels the invocation.
func (s *Stream) Close() error {
	s.mu.Lock()
	if !s.ended {
		s.cancelled, s.broken = true, true
		s.failLocked("Client.Disconnected", "the caller closed the response stream")
		s.endLocked()
	}
	s.mu.Unlock()
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

// fail records why the stream is about to break (the sandbox tears the environment down next).
func (s *Stream) fail(errType string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errType == "" && !s.ended {
		s.errType, s.errBody = errType, payload
	}
}

func (s *Stream) failLocked(errType, msg string) {
	if s.errType == "" {
		s.errType, s.errBody = errType, errorJSON(errType, msg)
	}
}

func (s *Stream) endLocked() {
	s.ended = true
	s.closeOnce.Do(func() { close(s.done) })
}

// wait blocks the runtime's connection until the caller is done with the body. It reports
// whether the stream was complete (the connection can answer 202 and be reused).
func (s *Stream) wait(dead, gone <-chan struct{}) bool {
	select {
	case <-s.done:
	case <-dead:
		return false
	case <-gone:
		_ = s.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.cancelled
}
