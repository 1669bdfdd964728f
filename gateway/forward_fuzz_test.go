package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// FuzzForwardedStream sends a stream (the function's writes, its content type, a late error
// and a log tail) from a peer's ServeInvoke to a caller's Router.Invoke over HTTP. Properties:
// nothing panics, and the caller reads back what the peer's stream gave: the same bytes,
// content type, error (type and payload) and log tail; past what trailers may carry, the start
// of the error and the end of the log tail.
func FuzzForwardedStream(f *testing.F) {
	f.Add(pieces("hello, ", "world\n"), "text/plain", "", []byte(nil), []byte("START RequestId: 1\nEND RequestId: 1\n"))
	f.Add(pieces(`{"statusCode":201}`, "\x00\x00\x00\x00\x00\x00\x00\x00", "body"), "application/vnd.awslambda.http-integration-response",
		"Handler.Failed", []byte(`{"errorType":"Handler.Failed","errorMessage":"late"}`), []byte(nil))
	f.Add(pieces(""), "", "Function.ResponseSizeTooLarge", []byte("not json"), []byte("REPORT RequestId: 2\n"))
	peer := newForwardPeer(f)
	f.Fuzz(func(t *testing.T, writes []byte, contentType, errType string, errBody, tail []byte) {
		// What HTTP cannot carry in a header (a runtime could not have sent it either) is left out.
		if !httpguts.ValidHeaderFieldValue(contentType) || strings.TrimSpace(contentType) != contentType {
			contentType = "application/octet-stream"
		}
		if !httpguts.ValidHeaderFieldValue(errType) || strings.TrimSpace(errType) != errType {
			errType = "Function.Error"
		}
		src := func() invoke.Stream { return sourceStream(writes, contentType, errType, errBody, tail) }
		want := readStream(t, src())
		got := readStream(t, peer.invoke(t, src()))
		if !bytes.Equal(got.body, want.body) || got.err != nil {
			t.Errorf("body: got %q (%v), want %q", got.body, got.err, want.body)
		}
		if got.contentType != want.contentType {
			t.Errorf("content type: got %q, want %q", got.contentType, want.contentType)
		}
		// 16 KB is far within what the trailers carry; past it an error may come cut (the
		// error JSON with the start of its message).
		fits := len(errType) < 1024 && len(want.errBody)+len(want.tail) < 16<<10
		if got.errType != want.errType || (fits && !bytes.Equal(got.errBody, want.errBody)) || (!fits && got.errType != "" && !json.Valid(got.errBody)) {
			t.Errorf("error: got %q %q, want %q %q", got.errType, got.errBody, want.errType, want.errBody)
		}
		if !bytes.HasSuffix(want.tail, got.tail) || (fits && !bytes.Equal(got.tail, want.tail)) {
			t.Errorf("log tail: got %q, want %q", got.tail, want.tail)
		}
	})
}

// FuzzForwardResponse has a peer answer a forwarded call with arbitrary bytes. Properties:
// nothing panics or hangs, and what the caller makes of the answer is what net/http's parser
// reads in it: a stream (Gateway-Response: stream, 200) with its exact bytes, a whole response
// (200) with the JSON document's fields, or an error (another status, or not HTTP); the call
// runs here instead only when the peer said it could not take it (Gateway-Unavailable).
func FuzzForwardResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nGateway-Response: whole\r\nContent-Length: 58\r\n\r\n" +
		`{"payload":"eyJvayI6dHJ1ZX0=","executed_version":"$LATEST"}`))
	f.Add([]byte("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nGateway-Response: stream\r\nContent-Type: text/plain\r\n" +
		"Trailer: Lambda-Runtime-Function-Error-Type, Gateway-Log-Tail\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\nLambda-Runtime-Function-Error-Type: Late\r\nGateway-Log-Tail: U1RBUlQK\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 503 Service Unavailable\r\nGateway-Unavailable: 1\r\nContent-Length: 11\r\n\r\nno capacity"))
	f.Add([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom"))
	peer := newRawPeer(f)
	peers := newRPCPeers(f)
	// The peer closes every connection: one kept alive would fail the next call.
	peers.client.Transport.(*http.Transport).DisableKeepAlives = true
	fn := &structs.Function{Name: "fn", RevisionID: "r1", Timeout: 3 * time.Second}
	f.Fuzz(func(t *testing.T, answer []byte) {
		peer.set(answer)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := forwardCaller(peers, fn, peer.url).Invoke(ctx, fn, &invoke.Request{RequestID: "id", Payload: []byte(`{}`),
			Version: "$LATEST", AcceptStream: true})
		if ctx.Err() != nil {
			t.Fatal("the forwarded call did not end")
		}
		want, ok := parseAnswer(answer)
		switch {
		case err == nil && resp.ExecutedVersion == ranHere:
			if !ok || !want.unavailable {
				t.Fatalf("ran here after an answer that was not Gateway-Unavailable: %q", answer)
			}
		case err != nil:
			if ok && want.status == http.StatusOK && want.whole != nil {
				t.Fatalf("a valid whole response was refused: %v", err)
			}
		case resp.Stream != nil:
			got := readStream(t, resp.Stream)
			if !ok || want.status != http.StatusOK || !want.stream || (want.bodyErr == nil && (got.err != nil || !bytes.Equal(got.body, want.body))) {
				t.Fatalf("read a stream %q (%v) from %q", got.body, got.err, answer)
			}
		default:
			if !ok || want.status != http.StatusOK || want.whole == nil || !bytes.Equal(resp.Payload, want.whole.Payload) ||
				resp.ErrorType != want.whole.ErrorType || resp.FunctionError != want.whole.FunctionError {
				t.Fatalf("read a whole response %+v from %q", resp, answer)
			}
		}
	})
}

// peerAnswer is what net/http's parser reads in a peer's answer.
type peerAnswer struct {
	status              int
	unavailable, stream bool
	body                []byte
	bodyErr             error
	whole               *forwardedResponse // a 200 that is not a stream, when its JSON decodes
}

func parseAnswer(answer []byte) (peerAnswer, bool) {
	br := bufio.NewReaderSize(bytes.NewReader(answer), cluster.MaxRPCTrailerBytes) // as the RPC client's
	req := httptest.NewRequest("POST", "/invoke", nil)
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return peerAnswer{}, false
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // informational: the client waits for the answer after it
		}
		a := peerAnswer{status: resp.StatusCode, unavailable: resp.Header.Get(hUnavailable) != "", stream: resp.Header.Get(hKind) == "stream"}
		a.body, a.bodyErr = io.ReadAll(resp.Body)
		// Or it says so in the node RPC's error shape (cluster.ReadRPCError reads 64 KB of it).
		var re struct {
			Kind  string `json:"err_kind"`
			Error string `json:"error"`
		}
		if a.status != http.StatusOK && json.Unmarshal(a.body[:min(len(a.body), 64<<10)], &re) == nil && re.Error != "" &&
			re.Kind == cluster.KindUnavailable {
			a.unavailable = true
		}
		if a.status == http.StatusOK && !a.stream {
			var fr forwardedResponse
			if json.NewDecoder(bytes.NewReader(a.body)).Decode(&fr) == nil {
				a.whole = &fr
			}
		}
		return a, true
	}
}

// rawPeer answers every request with the bytes the test set, then closes the connection.
type rawPeer struct {
	url string

	mu     sync.Mutex
	answer []byte
}

func newRawPeer(tb testing.TB) *rawPeer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	p := &rawPeer{url: "http://" + ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *rawPeer) set(answer []byte) {
	p.mu.Lock()
	p.answer = answer
	p.mu.Unlock()
}

func (p *rawPeer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	p.mu.Lock()
	answer := p.answer
	p.mu.Unlock()
	_, _ = c.Write(answer)
}
