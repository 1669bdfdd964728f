package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// trailerBody fills its trailer when the body ends, as net/http does.
type trailerBody struct {
	io.Reader
	trailer, set http.Header
	closed       bool
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		for k, v := range b.set {
			b.trailer[k] = v
		}
	}
	return n, err
}

func (b *trailerBody) Close() error { b.closed = true; return nil }

// TestRemoteStream: a peer's stream reads through, and its trailers give the function's late
// error and the log tail; closing it closes the connection's body.
func TestRemoteStream(t *testing.T) {
	trailer := http.Header{}
	body := &trailerBody{Reader: strings.NewReader(strings.Repeat("x", 100000)), trailer: trailer, set: http.Header{
		trailerErrorType: {"Handler.Failed"},
		trailerErrorBody: {base64.StdEncoding.EncodeToString([]byte(`{"errorType":"Handler.Failed","errorMessage":"late"}`))},
		trailerLogTail:   {base64.StdEncoding.EncodeToString([]byte("START\nREPORT\n"))},
	}}
	st := newRemoteStream("text/plain", body, trailer)
	if st.LogTail(context.Background()) != nil {
		t.Error("a log tail before the end")
	}
	b, err := io.ReadAll(st)
	if err != nil || len(b) != 100000 {
		t.Fatalf("read %d bytes: %v", len(b), err)
	}
	if et, payload := st.Err(); et != "Handler.Failed" || !strings.Contains(string(payload), "late") {
		t.Errorf("Err: %q %s", et, payload)
	}
	if tail := st.LogTail(context.Background()); string(tail) != "START\nREPORT\n" {
		t.Errorf("LogTail: %q", tail)
	}
	select {
	case <-st.Done():
	default:
		t.Error("Done is open after the end")
	}
	_ = st.Close()
	if !body.closed {
		t.Error("Close did not close the body")
	}
}

// TestForwardTrailersFitTheLimit: the trailers that end a forwarded stream fit the caller's
// buffer (net/http refuses longer ones and the stream would break at its end), keeping the end
// of the log tail and the start of the error; what fits is passed whole.
func TestForwardTrailersFitTheLimit(t *testing.T) {
	long := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		return b
	}
	for _, tc := range []struct {
		errBody, tail []byte
		limit         int
		whole         bool
	}{
		{errBody: []byte(`{"errorType":"E","errorMessage":"m"}`), tail: []byte("START\nEND\n"), limit: 4096, whole: true},
		{errBody: long(100000), tail: long(60000), limit: 8000},
		{errBody: long(10), tail: long(60000), limit: 8000},
		{errBody: long(60000), tail: long(10), limit: 8000},
	} {
		trailer := http.Header{}
		body := &trailerBody{Reader: strings.NewReader("x"), trailer: trailer, set: http.Header{
			trailerErrorType: {"E"},
			trailerErrorBody: {base64.StdEncoding.EncodeToString(tc.errBody)},
			trailerLogTail:   {base64.StdEncoding.EncodeToString(tc.tail)},
		}}
		st := newRemoteStream("text/plain", body, trailer)
		if _, err := io.ReadAll(st); err != nil {
			t.Fatal(err)
		}
		_, errBody := st.Err()
		h := forwardTrailers(context.Background(), st, tc.limit)
		size := 0
		for _, v := range h {
			size += len(v[0])
		}
		gotBody, _ := base64.StdEncoding.DecodeString(h.Get(trailerErrorBody))
		gotTail, _ := base64.StdEncoding.DecodeString(h.Get(trailerLogTail))
		switch {
		case size > tc.limit:
			t.Errorf("%d+%d bytes: trailers of %d bytes, over the limit %d", len(tc.errBody), len(tc.tail), size, tc.limit)
		case h.Get(trailerErrorType) != "E" || !strings.HasPrefix(message(t, errBody), message(t, gotBody)) || !bytes.HasSuffix(tc.tail, gotTail):
			t.Errorf("%d+%d bytes: error %q, body %.100q (not the start), tail %d bytes (not the end)",
				len(tc.errBody), len(tc.tail), h.Get(trailerErrorType), gotBody, len(gotTail))
		case tc.whole && (!bytes.Equal(gotBody, errBody) || !bytes.Equal(gotTail, tc.tail)):
			t.Errorf("trailers that fit were cut: %q %q", gotBody, gotTail)
		case !tc.whole && len(gotBody)+len(gotTail) < tc.limit/2:
			t.Errorf("%d+%d bytes: only %d+%d kept of a %d-byte limit", len(tc.errBody), len(tc.tail), len(gotBody), len(gotTail), tc.limit)
		}
	}
}

// message is the errorMessage of an error JSON.
func message(t *testing.T, payload []byte) string {
	t.Helper()
	var e struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}
	if err := json.Unmarshal(payload, &e); err != nil || e.Type == "" {
		t.Fatalf("the error is not the error JSON: %.100q", payload)
	}
	return e.Message
}

// brokenBody gives its bytes, then a connection error.
type brokenBody struct {
	r      io.Reader
	closed bool
}

func (b *brokenBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}

func (b *brokenBody) Close() error { b.closed = true; return nil }

// TestRemoteStreamBreaks: a peer connection that breaks mid-stream ends the stream with
// io.ErrUnexpectedEOF and Runtime.StreamError; a stream closed before its end reports the
// caller's disconnect and closes the connection (which cancels the call on the peer).
func TestRemoteStreamBreaks(t *testing.T) {
	body := &brokenBody{r: strings.NewReader("partial")}
	st := newRemoteStream("text/plain", body, nil)
	b, err := io.ReadAll(st)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != "partial" {
		t.Fatalf("read %q, %v; want the bytes, then io.ErrUnexpectedEOF", b, err)
	}
	if et, payload := st.Err(); et != "Runtime.StreamError" || !strings.Contains(string(payload), "connection reset") {
		t.Errorf("Err: %q %s", et, payload)
	}
	if n, err := st.Read(make([]byte, 8)); n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a read after the end: %d, %v", n, err)
	}

	body = &brokenBody{r: strings.NewReader(strings.Repeat("x", 1000))}
	st = newRemoteStream("text/plain", body, nil)
	if _, err := st.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	if et, _ := st.Err(); et != "Client.Disconnected" || !body.closed {
		t.Errorf("after an early Close: error %q, body closed %v", et, body.closed)
	}
	select {
	case <-st.Done():
	default:
		t.Error("Done is open after Close")
	}
	if _, err := st.Read(make([]byte, 10)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a read after Close: %v", err)
	}
}
