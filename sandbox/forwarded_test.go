package sandbox

import (
	"context"
	"encoding/base64"
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
