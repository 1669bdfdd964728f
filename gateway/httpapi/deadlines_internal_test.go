package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/internal/lambda"
)

// deadlineServer serves h under d, as the route table does.
func deadlineServer(t *testing.T, d deadlines, h handler) *httptest.Server {
	t.Helper()
	a := &api{logger: hclog.NewNullLogger()}
	srv := httptest.NewServer(a.wrapWith(d, h))
	t.Cleanup(srv.Close)
	return srv
}

// readBodyHandler answers with the length of the body it read.
func readBodyHandler(w http.ResponseWriter, r *http.Request, _ string) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return lambda.InvalidRequestContent("reading the request body: %v", err)
	}
	_, _ = fmt.Fprintf(w, "%d", len(b))
	return nil
}

// rawRequest opens a connection to srv and writes a POST head announcing n body bytes.
func rawRequest(t *testing.T, srv *httptest.Server, n int, extra string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n%s\r\n", n, extra); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// readResponse reads one response, failing the test if none comes within limit.
func readResponse(t *testing.T, c net.Conn, br *bufio.Reader, limit time.Duration) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response within %s: %v", limit, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestBodyDeadlineCutsOffASlowBody: a client that stops sending its body gets a Lambda-shaped
// 400 once the route's body time is up, instead of holding the handler forever.
func TestBodyDeadlineCutsOffASlowBody(t *testing.T) {
	srv := deadlineServer(t, deadlines{body: 300 * time.Millisecond, write: 10 * time.Second}, readBodyHandler)
	c, br := rawRequest(t, srv, 1000, "")
	if _, err := io.WriteString(c, "only ten b"); err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, c, br, 10*time.Second)
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidRequestContentException" || !strings.Contains(body, "timeout") {
		t.Fatalf("a stalled body: %d %s %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
}

// TestStreamedBodyDeadlineMovesWithTheBody: a body of any size may take as long as it keeps
// arriving; a pause longer than bodyIdle cuts it off.
func TestStreamedBodyDeadlineMovesWithTheBody(t *testing.T) {
	d := deadlines{bodyIdle: time.Second, write: 10 * time.Second}
	srv := deadlineServer(t, d, readBodyHandler)
	c, br := rawRequest(t, srv, 30, "")
	for i := 0; i < 15; i++ { // 3s in all, three times bodyIdle
		time.Sleep(200 * time.Millisecond)
		if _, err := io.WriteString(c, "xx"); err != nil {
			t.Fatal(err)
		}
	}
	if resp, body := readResponse(t, c, br, 10*time.Second); resp.StatusCode != 200 || body != "30" {
		t.Fatalf("a body that kept arriving: %d %s", resp.StatusCode, body)
	}
	c, br = rawRequest(t, srv, 20, "")
	_, _ = io.WriteString(c, "xx")
	time.Sleep(3 * time.Second)
	_, _ = io.WriteString(c, "xx")
	if resp, body := readResponse(t, c, br, 10*time.Second); resp.StatusCode != 400 || !strings.Contains(body, "timeout") {
		t.Fatalf("a body that paused past bodyIdle: %d %s", resp.StatusCode, body)
	}
}

// TestBodyDeadlineEndsWithTheBody: a request that runs long after its body was read (an
// invocation) keeps its context: the body's deadline must not reach the server's own read
// that watches for a client gone.
func TestBodyDeadlineEndsWithTheBody(t *testing.T) {
	srv := deadlineServer(t, deadlines{body: 200 * time.Millisecond, write: 10 * time.Second},
		func(w http.ResponseWriter, r *http.Request, _ string) error {
			if _, err := io.ReadAll(r.Body); err != nil {
				return err
			}
			select {
			case <-r.Context().Done():
				_, _ = io.WriteString(w, "cancelled")
			case <-time.After(time.Second):
				_, _ = io.WriteString(w, "ok")
			}
			return nil
		})
	resp, err := srv.Client().Post(srv.URL+"/x", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("a request running past its body deadline: %q", b)
	}
}

// TestWriteDeadlineMovesWithTheResponse: a response streamed for longer than the write timeout
// arrives whole, while each write finishes in time.
func TestWriteDeadlineMovesWithTheResponse(t *testing.T) {
	srv := deadlineServer(t, deadlines{body: time.Second, write: 800 * time.Millisecond},
		func(w http.ResponseWriter, r *http.Request, _ string) error {
			rc := http.NewResponseController(w)
			for i := 0; i < 15; i++ { // 2.25s in all
				if _, err := fmt.Fprintf(w, "%d\n", i); err != nil {
					return err
				}
				if err := rc.Flush(); err != nil {
					return err
				}
				time.Sleep(150 * time.Millisecond)
			}
			return nil
		})
	resp, err := srv.Client().Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Count(string(b), "\n") != 15 {
		t.Fatalf("a response streamed past the write timeout: %v %q", err, b)
	}
}

// TestWriteDeadlineCutsOffAClientThatStopsReading: a handler writing to a client that reads
// nothing fails once the kernel's buffers are full and the write timeout passed.
func TestWriteDeadlineCutsOffAClientThatStopsReading(t *testing.T) {
	failed := make(chan error, 1)
	srv := deadlineServer(t, deadlines{body: time.Second, write: 300 * time.Millisecond},
		func(w http.ResponseWriter, r *http.Request, _ string) error {
			chunk := make([]byte, 1<<20)
			for i := 0; i < 1024; i++ { // 1 GB: far more than any socket buffer
				if _, err := w.Write(chunk); err != nil {
					failed <- err
					return nil
				}
			}
			failed <- nil
			return nil
		})
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
			t.Fatalf("writing to a client that reads nothing ended with %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a handler writing to a client that reads nothing was not cut off")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
