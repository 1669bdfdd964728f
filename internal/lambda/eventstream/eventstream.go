// Package eventstream writes the body of an InvokeWithResponseStream response: AWS event-stream
// messages, a PayloadChunk event per piece of function output and one InvokeComplete event at
// the end, in the shape the AWS SDKs' Lambda clients decode (service/lambda's
// InvokeWithResponseStreamResponseEvent union: PayloadChunk's Payload is the raw event payload,
// InvokeComplete's ErrorCode, ErrorDetails and LogResult are a JSON document).
package eventstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	awsstream "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// ContentType is the HTTP Content-Type of an InvokeWithResponseStream response.
const ContentType = "application/vnd.amazon.eventstream"

// MaxChunk bounds the payload of one PayloadChunk message; longer writes are split. The
// event-stream format caps a message at 16 MB, and smaller messages let a client act on the
// start of a large write before its end has arrived.
const MaxChunk = 1 << 20

// ErrComplete is returned for writes after WriteInvokeComplete: the stream is over for the client.
var ErrComplete = errors.New("event stream already complete")

// Writer encodes events onto an HTTP response body and flushes each one, so the client sees
// function output as the function produces it. It is safe for concurrent use.
type Writer struct {
	mu       sync.Mutex
	w        io.Writer
	flush    func() error
	enc      *awsstream.Encoder
	complete bool
}

// NewWriter returns a Writer on w. flush is called after every event; when nil and w is an
// http.Flusher, its Flush is used (pass http.NewResponseController(rw).Flush to also reach
// wrapped ResponseWriters and see flush errors).
func NewWriter(w io.Writer, flush func() error) *Writer {
	if flush == nil {
		if f, ok := w.(http.Flusher); ok {
			flush = func() error { f.Flush(); return nil }
		}
	}
	return &Writer{w: w, flush: flush, enc: awsstream.NewEncoder()}
}

// WritePayloadChunk sends p as PayloadChunk events (several when p exceeds MaxChunk) and
// flushes. An empty p sends nothing: an empty chunk tells the client nothing.
func (w *Writer) WritePayloadChunk(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.complete {
		return ErrComplete
	}
	if len(p) == 0 {
		return nil
	}
	for len(p) > 0 {
		n := min(len(p), MaxChunk)
		if err := w.encode("PayloadChunk", "application/octet-stream", p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return w.doFlush("PayloadChunk")
}

// invokeComplete is the InvokeComplete payload; the SDKs leave absent members nil.
type invokeComplete struct {
	ErrorCode    string `json:",omitempty"`
	ErrorDetails string `json:",omitempty"`
	LogResult    string `json:",omitempty"`
}

// WriteInvokeComplete sends the final event and flushes. errorCode and errorDetails describe a
// function error that happened after streaming began (empty on success); logResult is the
// base64 log tail when the caller asked for X-Amz-Log-Type: Tail. Empty fields are omitted.
func (w *Writer) WriteInvokeComplete(errorCode, errorDetails, logResult string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.complete {
		return ErrComplete
	}
	payload, err := json.Marshal(invokeComplete{ErrorCode: errorCode, ErrorDetails: errorDetails, LogResult: logResult})
	if err != nil {
		return fmt.Errorf("encode InvokeComplete payload: %w", err)
	}
	w.complete = true
	if err := w.encode("InvokeComplete", "application/json", payload); err != nil {
		return err
	}
	return w.doFlush("InvokeComplete")
}

func (w *Writer) encode(eventType, contentType string, payload []byte) error {
	msg := awsstream.Message{Payload: payload}
	msg.Headers.Set(":event-type", awsstream.StringValue(eventType))
	msg.Headers.Set(":content-type", awsstream.StringValue(contentType))
	msg.Headers.Set(":message-type", awsstream.StringValue("event"))
	if err := w.enc.Encode(w.w, msg); err != nil {
		return fmt.Errorf("write %s event: %w", eventType, err)
	}
	return nil
}

func (w *Writer) doFlush(eventType string) error {
	if w.flush == nil {
		return nil
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("flush %s event: %w", eventType, err)
	}
	return nil
}
