package sandbox_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// invokeStream starts a streamed invocation; the caller reads and closes the stream.
func invokeStream(t *testing.T, h *harness, fn *structs.Function, payload string) invoke.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req := request(payload)
	req.AcceptStream = true
	resp, err := h.m.Invoke(ctx, fn, req)
	if err != nil {
		t.Fatalf("invoke %s: %v", payload, err)
	}
	if resp.Stream == nil {
		t.Fatalf("invoke %s: no stream, payload %s", payload, resp.Payload)
	}
	t.Cleanup(func() { resp.Stream.Close() })
	return resp.Stream
}

// TestStreamArrivesChunkByChunk: the first chunk reaches the caller while the function is still
// sleeping before its last, and the environment stays warm after a complete stream.
func TestStreamArrivesChunkByChunk(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("streams", nil)
		callFn(t, h, fn, `{"mode":"counter"}`)
		st := invokeStream(t, h, fn, `{"mode":"stream","n":3,"ms":300}`)
		br := bufio.NewReader(st)
		first, err := br.ReadString('\n')
		if err != nil || first != "chunk 0\n" {
			t.Fatalf("first line %q, %v", first, err)
		}
		firstAt := time.Now()
		rest, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("reading the rest: %v", err)
		}
		if string(rest) != "chunk 1\nchunk 2\n" {
			t.Fatalf("rest %q", rest)
		}
		// The function sleeps 2 x 300 ms after its first chunk: buffering anywhere would
		// deliver everything at once.
		if gap := time.Since(firstAt); gap < 500*time.Millisecond {
			t.Fatalf("the last chunk came %v after the first: the stream was buffered", gap)
		}
		if et, _ := st.Err(); et != "" {
			t.Fatalf("stream error %s", et)
		}
		st.Close()
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(3) {
			t.Fatalf("count = %v, want 3 (the environment is reused after a stream)", got)
		}
	})
}

// TestStreamErrorAfterFirstBytes: an error after the body started comes from the trailers.
func TestStreamErrorAfterFirstBytes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("streamfails", nil)
		st := invokeStream(t, h, fn, `{"mode":"stream","n":2,"fail":true}`)
		body, err := io.ReadAll(st)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		if string(body) != "chunk 0\nchunk 1\n" {
			t.Fatalf("body %q", body)
		}
		et, payload := st.Err()
		if et != "errorString" || !strings.Contains(string(payload), "failed in mid-stream") {
			t.Fatalf("error %q %s", et, payload)
		}
		st.Close()
		// A reported error keeps the environment, as a handled error does.
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(2) {
			t.Fatalf("count = %v, want 2", got)
		}
	})
}

// TestStreamClosedByTheCallerResetsTheEnvironment: a caller that goes away mid-stream cancels
// the invocation; the next call gets a fresh environment and REPORT says why.
func TestStreamClosedByTheCallerResetsTheEnvironment(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("streamgone", nil)
		st := invokeStream(t, h, fn, `{"mode":"stream","n":100,"ms":50}`)
		if _, err := bufio.NewReader(st).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if got := decode(t, callFn(t, h, fn, `{"mode":"counter"}`).Payload)["count"]; got != float64(1) {
			t.Fatalf("count = %v, want 1 (a fresh environment)", got)
		}
		waitForLog(t, h, "streamgone", "Status: error\tError Type: Client.Disconnected")
	})
}

// TestStreamSizeLimit: past MaxStreamBytes the stream is cut off exactly at the limit.
func TestStreamSizeLimit(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, func(c *sandbox.ManagerConfig) { c.MaxStreamBytes = 1 << 20 })
		fn := testFunction("streambig", nil)
		st := invokeStream(t, h, fn, `{"mode":"stream","n":64,"size":65536}`)
		n, err := io.Copy(io.Discard, st)
		if !errors.Is(err, io.ErrUnexpectedEOF) || n != 1<<20 {
			t.Fatalf("read %d bytes, %v; want exactly 1 MB and ErrUnexpectedEOF", n, err)
		}
		if et, _ := st.Err(); et != "Function.ResponseSizeTooLarge" {
			t.Fatalf("error type %q", et)
		}
	})
}

// TestStreamTimeout: the function's timeout bounds a stream too.
func TestStreamTimeout(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("streamslow", func(f *structs.Function) { f.Timeout = time.Second })
		st := invokeStream(t, h, fn, `{"mode":"stream","n":10,"ms":400}`)
		_, err := io.Copy(io.Discard, st)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read error %v, want ErrUnexpectedEOF", err)
		}
		if et, _ := st.Err(); et != "Sandbox.Timedout" {
			t.Fatalf("error type %q", et)
		}
	})
}

// TestStreamedResponseReadWholeWhenNotAccepted: a caller that takes no stream gets the body.
func TestStreamedResponseReadWholeWhenNotAccepted(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d sandbox.Driver) {
		h := newHarness(t, d, nil)
		fn := testFunction("streamwhole", nil)
		resp := callFn(t, h, fn, `{"mode":"stream","n":3}`)
		if resp.Stream != nil || string(resp.Payload) != "chunk 0\nchunk 1\nchunk 2\n" {
			t.Fatalf("got %q (stream %v)", resp.Payload, resp.Stream != nil)
		}
		resp = callFn(t, h, fn, `{"mode":"stream","n":1,"fail":true}`)
		if !resp.FunctionError || resp.ErrorType != "errorString" {
			t.Fatalf("got %+v %s", resp, resp.Payload)
		}
	})
}

func waitForLog(t *testing.T, h *harness, fn, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range h.logs.get(fn) {
			if strings.Contains(l, substr) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q in:\n%s", substr, fmt.Sprint(strings.Join(h.logs.get(fn), "\n")))
}
