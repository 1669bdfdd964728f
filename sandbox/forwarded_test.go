package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
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

// TestForwardedStream: a peer's stream reads through, and its trailers give the function's late
// error and the log tail; closing it closes the connection's body.
func TestForwardedStream(t *testing.T) {
	trailer := http.Header{}
	body := &trailerBody{Reader: strings.NewReader(strings.Repeat("x", 100000)), trailer: trailer, set: http.Header{
		TrailerErrorType: {"Handler.Failed"},
		TrailerErrorBody: {base64.StdEncoding.EncodeToString([]byte(`{"errorType":"Handler.Failed","errorMessage":"late"}`))},
		TrailerLogTail:   {base64.StdEncoding.EncodeToString([]byte("START\nREPORT\n"))},
	}}
	st := NewForwardedStream("text/plain", body, trailer)
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
			TrailerErrorType: {"E"},
			TrailerErrorBody: {base64.StdEncoding.EncodeToString(tc.errBody)},
			TrailerLogTail:   {base64.StdEncoding.EncodeToString(tc.tail)},
		}}
		st := NewForwardedStream("text/plain", body, trailer)
		if _, err := io.ReadAll(st); err != nil {
			t.Fatal(err)
		}
		_, errBody := st.Err()
		h := st.ForwardTrailers(context.Background(), tc.limit)
		size := 0
		for _, v := range h {
			size += len(v[0])
		}
		gotBody, _ := base64.StdEncoding.DecodeString(h.Get(TrailerErrorBody))
		gotTail, _ := base64.StdEncoding.DecodeString(h.Get(TrailerLogTail))
		switch {
		case size > tc.limit:
			t.Errorf("%d+%d bytes: trailers of %d bytes, over the limit %d", len(tc.errBody), len(tc.tail), size, tc.limit)
		case h.Get(TrailerErrorType) != "E" || !strings.HasPrefix(message(t, errBody), message(t, gotBody)) || !bytes.HasSuffix(tc.tail, gotTail):
			t.Errorf("%d+%d bytes: error %q, body %.100q (not the start), tail %d bytes (not the end)",
				len(tc.errBody), len(tc.tail), h.Get(TrailerErrorType), gotBody, len(gotTail))
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
