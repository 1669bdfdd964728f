package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/lambdagw/gateway/internal/invoke"
)

// Trailers that end a forwarded stream (a peer ran the invocation): the function's late error,
// named as the Runtime API names it, and the log tail. Nodes of one cluster must agree on them.
const (
	trailerErrorType = invoke.TrailerErrorType
	trailerErrorBody = invoke.TrailerErrorBody
	trailerLogTail   = "Gateway-Log-Tail"
)

// remoteStream is the invoke.Stream of an invocation a peer runs: its response body, read
// through, and its trailers (filled when the body ends) with the late error and the log tail.
// The size limit is enforced where the function runs. Closing it before the end closes the
// body, which cancels the invocation on the peer.
type remoteStream struct {
	contentType string
	body        io.ReadCloser
	trailer     http.Header

	mu        sync.Mutex
	ended     bool
	broken    bool
	errType   string
	errBody   []byte
	done      chan struct{}
	closeOnce sync.Once
}

func newRemoteStream(contentType string, body io.ReadCloser, trailer http.Header) *remoteStream {
	if trailer == nil {
		trailer = http.Header{}
	}
	return &remoteStream{contentType: contentType, body: body, trailer: trailer, done: make(chan struct{})}
}

func (s *remoteStream) ContentType() string { return s.contentType }

// Read reads the peer's bytes as they arrive: io.EOF at the end of a complete stream,
// io.ErrUnexpectedEOF when the connection broke off (Err says why).
func (s *remoteStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return 0, s.endErr()
	}
	s.mu.Unlock()
	n, err := s.body.Read(p)
	if err == nil {
		return n, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended { // closed meanwhile
		return n, s.endErr()
	}
	if errors.Is(err, io.EOF) {
		s.errType, s.errBody = invoke.TrailerError(s.trailer)
	} else {
		s.failLocked("Runtime.StreamError", "the forwarded response stream broke off: "+err.Error())
	}
	s.endLocked()
	return n, s.endErr()
}

func (s *remoteStream) endErr() error {
	if s.broken {
		return io.ErrUnexpectedEOF
	}
	return io.EOF
}

func (s *remoteStream) Err() (string, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errType, s.errBody
}

// LogTail is the tail the peer sent in the trailers, once the stream ended.
func (s *remoteStream) LogTail(context.Context) []byte {
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if !ended {
		return nil
	}
	tail, _ := base64.StdEncoding.DecodeString(s.trailer.Get(trailerLogTail))
	if len(tail) == 0 {
		return nil
	}
	return tail
}

func (s *remoteStream) Done() <-chan struct{} { return s.done }

// Close releases the connection; before the end it cancels the invocation on the peer.
func (s *remoteStream) Close() error {
	s.mu.Lock()
	if !s.ended {
		s.failLocked("Client.Disconnected", "the caller closed the response stream")
		s.endLocked()
	}
	s.mu.Unlock()
	return s.body.Close()
}

func (s *remoteStream) failLocked(errType, msg string) {
	s.broken = true
	if s.errType == "" {
		s.errType, s.errBody = errType, invoke.ErrorJSON(errType, msg)
	}
}

func (s *remoteStream) endLocked() {
	s.ended = true
	s.closeOnce.Do(func() { close(s.done) })
}

// forwardTrailers are the trailers that carry the end of st to the node a caller is on: its
// error (the function's or the sandbox's) and, once the invocation ended, its log tail. Their
// values take at most limit bytes, since a client reads trailers within a bounded buffer: a
// longer log tail keeps its end (callers show the last 4 KB), a longer error becomes the error
// JSON with the start of its message.
func forwardTrailers(ctx context.Context, st invoke.Stream, limit int) http.Header {
	h := http.Header{}
	et, body := st.Err()
	tail := st.LogTail(ctx)
	et = et[:min(len(et), limit/8)]
	// What the two base64 values may hold: 3 bytes per 4, less two blocks of padding.
	room := max((limit-len(et))/4*3-6, 0)
	keep := min(len(tail), max(room/2, room-len(body)))
	tail = tail[len(tail)-keep:]
	if len(body) > room-keep {
		body = cutError(et, body, room-keep)
	}
	if et != "" {
		h.Set(trailerErrorType, et)
		h.Set(trailerErrorBody, base64.StdEncoding.EncodeToString(body))
	}
	if len(tail) > 0 {
		h.Set(trailerLogTail, base64.StdEncoding.EncodeToString(tail))
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
		if b := invoke.ErrorJSON(errType, msg[:cut]); len(b) <= n || cut == 0 {
			return b
		}
	}
}
