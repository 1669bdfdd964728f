package eventstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsstream "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

type decoded struct {
	messageType, eventType, contentType string
	payload                             []byte
}

func decodeAll(t *testing.T, data []byte) []decoded {
	t.Helper()
	dec := awsstream.NewDecoder()
	r := bytes.NewReader(data)
	var out []decoded
	for r.Len() > 0 {
		msg, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatalf("decode message %d: %v", len(out), err)
		}
		header := func(name string) string {
			if v := msg.Headers.Get(name); v != nil {
				return v.String()
			}
			return ""
		}
		out = append(out, decoded{header(":message-type"), header(":event-type"), header(":content-type"),
			append([]byte(nil), msg.Payload...)})
	}
	return out
}

func TestWriterMessagesDecodeWithSDKDecoder(t *testing.T) {
	var buf bytes.Buffer
	flushes := 0
	w := NewWriter(&buf, func() error { flushes++; return nil })

	big := bytes.Repeat([]byte("0123456789"), MaxChunk/10+2) // just over MaxChunk
	steps := []struct {
		write       func() error
		wantFlushes int
	}{
		{func() error { return w.WritePayloadChunk([]byte("hello\x00")) }, 1},
		{func() error { return w.WritePayloadChunk(nil) }, 1},
		{func() error { return w.WritePayloadChunk(big) }, 2},
		{func() error { return w.WriteInvokeComplete("Function.ResponseSizeTooLarge", "too big", "bG9n") }, 3},
	}
	for i, s := range steps {
		if err := s.write(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if flushes != s.wantFlushes {
			t.Fatalf("step %d: %d flushes, want %d", i, flushes, s.wantFlushes)
		}
	}
	if err := w.WritePayloadChunk([]byte("late")); !errors.Is(err, ErrComplete) {
		t.Errorf("chunk after InvokeComplete: %v", err)
	}
	if err := w.WriteInvokeComplete("", "", ""); !errors.Is(err, ErrComplete) {
		t.Errorf("second InvokeComplete: %v", err)
	}

	msgs := decodeAll(t, buf.Bytes())
	chunk := func(p []byte) decoded { return decoded{"event", "PayloadChunk", "application/octet-stream", p} }
	want := []decoded{
		chunk([]byte("hello\x00")),
		chunk(big[:MaxChunk]),
		chunk(big[MaxChunk:]),
		{"event", "InvokeComplete", "application/json",
			[]byte(`{"ErrorCode":"Function.ResponseSizeTooLarge","ErrorDetails":"too big","LogResult":"bG9n"}`)},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i := range want {
		g, w := msgs[i], want[i]
		if g.messageType != w.messageType || g.eventType != w.eventType || g.contentType != w.contentType ||
			!bytes.Equal(g.payload, w.payload) {
			t.Errorf("message %d: %s/%s/%s %d bytes, want %s/%s/%s %d bytes", i, g.messageType, g.eventType,
				g.contentType, len(g.payload), w.messageType, w.eventType, w.contentType, len(w.payload))
		}
	}
}

func TestInvokeCompleteOmitsEmptyFields(t *testing.T) {
	cases := []struct {
		code, details, log, want string
	}{
		{"", "", "", `{}`},
		{"", "", "bG9n", `{"LogResult":"bG9n"}`},
		{"Sandbox.Timedout", "", "", `{"ErrorCode":"Sandbox.Timedout"}`},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		if err := NewWriter(&buf, nil).WriteInvokeComplete(c.code, c.details, c.log); err != nil {
			t.Fatal(err)
		}
		msgs := decodeAll(t, buf.Bytes())
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want 1", len(msgs))
		}
		if string(msgs[0].payload) != c.want {
			t.Errorf("InvokeComplete(%q, %q, %q) = %q, want %q", c.code, c.details, c.log, msgs[0].payload, c.want)
		}
	}
}

func TestWriterFlushes(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := NewWriter(rec, nil).WritePayloadChunk([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Error("http.Flusher not flushed when no flush func is given")
	}

	boom := errors.New("connection gone")
	err := NewWriter(io.Discard, func() error { return boom }).WritePayloadChunk([]byte("x"))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "PayloadChunk") {
		t.Errorf("flush error: %v", err)
	}
	err = NewWriter(failingWriter{boom}, nil).WritePayloadChunk([]byte("x"))
	if !errors.Is(err, boom) {
		t.Errorf("write error: %v", err)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// TestThroughLambdaClient serves the writer's output to the real aws-sdk-go-v2 Lambda client and
// checks each chunk reaches it before the next one is written, i.e. every event is flushed.
func TestThroughLambdaClient(t *testing.T) {
	chunks := [][]byte{[]byte("first chunk\n"), {0, 1, 2, 0xff}, []byte("third")}
	received := make([]chan struct{}, len(chunks))
	for i := range received {
		received[i] = make(chan struct{})
	}
	serverErr := make(chan error, 1)

	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/2021-11-15/functions/my-fn/response-streaming-invocations" {
			serverErr <- fmt.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", ContentType)
		rw.Header().Set("X-Amz-Executed-Version", "7")
		rw.WriteHeader(http.StatusOK)
		w := NewWriter(rw, http.NewResponseController(rw).Flush)
		for i, c := range chunks {
			if err := w.WritePayloadChunk(c); err != nil {
				serverErr <- err
				return
			}
			select {
			case <-received[i]:
			case <-time.After(5 * time.Second):
				serverErr <- fmt.Errorf("client did not see chunk %d before the next write", i)
				return
			}
		}
		if err := w.WriteInvokeComplete("Function.Unhandled", "boom after streaming", "bG9ncw=="); err != nil {
			serverErr <- err
			return
		}
		serverErr <- nil
	}))
	t.Cleanup(srv.Close)

	client := lambda.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   srv.Client(),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "test"}, nil
		}),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	out, err := client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{
		FunctionName: aws.String("my-fn"),
		Payload:      []byte(`{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ExecutedVersion) != "7" || aws.ToString(out.ResponseStreamContentType) != ContentType {
		t.Errorf("executed version %q content type %q", aws.ToString(out.ExecutedVersion),
			aws.ToString(out.ResponseStreamContentType))
	}
	stream := out.GetStream()
	t.Cleanup(func() { stream.Close() })

	var (
		n        int
		complete *types.InvokeWithResponseStreamCompleteEvent
	)
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			if n >= len(chunks) || !bytes.Equal(v.Value.Payload, chunks[n]) {
				t.Fatalf("chunk %d = %q", n, v.Value.Payload)
			}
			close(received[n])
			n++
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			complete = &v.Value
		default:
			t.Fatalf("unexpected event %T", ev)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream error: %v", err)
	}
	if err := <-serverErr; err != nil {
		t.Fatal(err)
	}
	if n != len(chunks) || complete == nil {
		t.Fatalf("%d chunks, InvokeComplete %v", n, complete)
	}
	if aws.ToString(complete.ErrorCode) != "Function.Unhandled" || aws.ToString(complete.ErrorDetails) != "boom after streaming" ||
		aws.ToString(complete.LogResult) != "bG9ncw==" {
		t.Errorf("InvokeComplete %q %q %q", aws.ToString(complete.ErrorCode), aws.ToString(complete.ErrorDetails),
			aws.ToString(complete.LogResult))
	}
}
