package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/lambdagw/gateway/internal/invoke"
)

// DefaultMaxStreamBytes bounds a streamed response, as Lambda's 20 MB soft limit.
const DefaultMaxStreamBytes = 20 << 20

// stream is a response the runtime posts as it writes it (chunked: aws-lambda-go does so for a
// handler's io.Reader without a mode header; other runtimes say
// Lambda-Runtime-Function-Response-Mode: streaming), read by the caller as it arrives through
// the invoke.Stream interface. Nothing is buffered in between: Read reads the runtime's chunked
// request body itself, so a slow caller slows the runtime's writes. Closing it before the end
// cancels the invocation: the environment is reset, since its runtime is still writing a
// response nobody reads.
type stream struct {
	contentType string

	body    io.Reader   // the runtime's POST body
	trailer http.Header // its trailers (filled at the end of body): the late error
	limit   int64

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

func newStream(r *http.Request, limit int64) *stream {
	return &stream{contentType: r.Header.Get("Content-Type"), body: r.Body, trailer: r.Trailer, limit: limit, done: make(chan struct{})}
}

// ContentType is the Content-Type the runtime posted its stream with.
func (s *stream) ContentType() string { return s.contentType }

// Read reads the function's bytes as they arrive. It returns io.EOF at the end of a complete
// stream and another error when the stream broke off (see Err for why).
func (s *stream) Read(p []byte) (int, error) {
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
		if et, payload := invoke.TrailerError(s.trailer); et != "" {
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
func (s *stream) endErr() error {
	if s.broken {
		return io.ErrUnexpectedEOF
	}
	return io.EOF
}

// Err reports the error that ended the stream: the function's (trailers) or the sandbox's
// (Sandbox.Timedout, Runtime.ExitError, Function.ResponseSizeTooLarge, ...). Empty when the
// stream ended normally or has not ended.
func (s *stream) Err() (errType string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errType, s.errBody
}

func (s *stream) setTail(inv *invocation) {
	s.mu.Lock()
	s.inv = inv
	s.mu.Unlock()
}

// LogTail returns the invocation's log, START to REPORT, when the request asked for it
// (invoke.Request.Tail); nil otherwise. Call it after the stream ended: it waits for the REPORT line,
// which is written once the runtime asks for its next event (or the environment is reset).
func (s *stream) LogTail(ctx context.Context) []byte {
	s.mu.Lock()
	inv := s.inv
	s.mu.Unlock()
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
func (s *stream) Done() <-chan struct{} { return s.done }

// Close ends the caller's side. Before the end it cancels the invocation.
func (s *stream) Close() error {
	s.mu.Lock()
	if !s.ended {
		s.cancelled, s.broken = true, true
		s.failLocked("Client.Disconnected", "the caller closed the response stream")
		s.endLocked()
	}
	s.mu.Unlock()
	return nil
}

// fail records why the stream is about to break (the sandbox tears the environment down next).
func (s *stream) fail(errType string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errType == "" && !s.ended {
		s.errType, s.errBody = errType, payload
	}
}

func (s *stream) failLocked(errType, msg string) {
	if s.errType == "" {
		s.errType, s.errBody = errType, invoke.ErrorJSON(errType, msg)
	}
}

func (s *stream) endLocked() {
	s.ended = true
	s.closeOnce.Do(func() { close(s.done) })
}

// wait blocks the runtime's connection until the caller is done with the body. It reports
// whether the stream was complete (the connection can answer 202 and be reused).
func (s *stream) wait(dead, gone <-chan struct{}) bool {
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

// written is how many bytes of the function's stream were read so far.
func (s *stream) written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
