package eventstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	awsstream "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// FuzzWriter writes a function's output and the end of an invocation as events and reads them
// back with the SDK's decoder, which the AWS SDKs' Lambda clients use. Properties: every message
// decodes, a PayloadChunk per write (one per MaxChunk of it, none for an empty one) with the
// write's bytes, then one InvokeComplete with the same fields (JSON strings: invalid UTF-8 as
// U+FFFD), then nothing; no payload over MaxChunk, and nothing written after the end.
func FuzzWriter(f *testing.F) {
	f.Add(writes("hello\n", "", "\x00\x01\xff"), "", "", "")
	f.Add(writes(`{"statusCode":200}`), "Function.ResponseSizeTooLarge", "Response payload size exceeded", "U1RBUlQK")
	f.Add([]byte{0xff, 'x', 3, 'e', 'n', 'd'}, "Runtime.ExitError", "\xff\xfe bad utf-8 \"quoted\"", "")
	f.Fuzz(func(t *testing.T, in []byte, errorCode, errorDetails, logResult string) {
		var buf bytes.Buffer
		w := NewWriter(&buf, nil)
		var want [][]byte
		for _, p := range splitWrites(in) {
			if err := w.WritePayloadChunk(p); err != nil {
				t.Fatal(err)
			}
			for len(p) > 0 {
				n := min(len(p), MaxChunk)
				want, p = append(want, p[:n]), p[n:]
			}
		}
		if err := w.WriteInvokeComplete(errorCode, errorDetails, logResult); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePayloadChunk([]byte("late")); !errors.Is(err, ErrComplete) {
			t.Fatalf("a write after the end: %v", err)
		}

		r := bytes.NewReader(buf.Bytes())
		dec := awsstream.NewDecoder()
		for i := 0; r.Len() > 0; i++ {
			msg, err := dec.Decode(r, nil)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			header := func(name string) string {
				if v := msg.Headers.Get(name); v != nil {
					return v.String()
				}
				return ""
			}
			if header(":message-type") != "event" {
				t.Fatalf("message %d: type %q", i, header(":message-type"))
			}
			if i < len(want) {
				if header(":event-type") != "PayloadChunk" || header(":content-type") != "application/octet-stream" ||
					!bytes.Equal(msg.Payload, want[i]) || len(msg.Payload) > MaxChunk {
					t.Fatalf("message %d: %s %s, %d bytes; want PayloadChunk of %d bytes", i, header(":event-type"), header(":content-type"), len(msg.Payload), len(want[i]))
				}
				continue
			}
			if i > len(want) || header(":event-type") != "InvokeComplete" || header(":content-type") != "application/json" {
				t.Fatalf("message %d: %s after %d chunks", i, header(":event-type"), len(want))
			}
			var got invokeComplete
			if err := json.Unmarshal(msg.Payload, &got); err != nil {
				t.Fatalf("InvokeComplete %q: %v", msg.Payload, err)
			}
			if wantEnd := (invokeComplete{valid(errorCode), valid(errorDetails), valid(logResult)}); got != wantEnd {
				t.Fatalf("InvokeComplete %+v, want %+v", got, wantEnd)
			}
		}
	})
}

// writes encodes a function's writes for FuzzWriter: a length byte, then the bytes.
func writes(ws ...string) []byte {
	var b []byte
	for _, w := range ws {
		b = append(append(b, byte(len(w))), w...)
	}
	return b
}

// splitWrites decodes writes; a length byte of 0xff stands for a write over MaxChunk: the next
// byte, repeated.
func splitWrites(in []byte) [][]byte {
	var out [][]byte
	for len(in) > 0 {
		n := int(in[0])
		in = in[1:]
		if n == 0xff && len(in) > 0 {
			out = append(out, bytes.Repeat(in[:1], MaxChunk+1+int(in[0])))
			in = in[1:]
			continue
		}
		n = min(n, len(in))
		out = append(out, in[:n])
		in = in[n:]
	}
	return out
}

// valid is s as encoding/json writes it: each byte of invalid UTF-8 as U+FFFD.
func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s { // an invalid byte comes as utf8.RuneError
		b.WriteRune(r)
	}
	return b.String()
}
