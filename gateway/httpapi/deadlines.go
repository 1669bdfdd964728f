package httpapi

import (
	"io"
	"net/http"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// Per-request deadlines, set through http.ResponseController. The server bounds a request's
// headers (ReadHeaderTimeout) and idle keep-alive connections; no server-wide ReadTimeout or
// WriteTimeout fits every route (an invocation may stream its response for 15 minutes, a
// snapshot may be gigabytes), so each request gets its own:
//   - Its body must arrive within a time sized for the route's body limit at a slow client's
//     pace (bodyTimeout), or, for a body of any size (a snapshot to restore), keep arriving:
//     each read within bodyIdle of the previous one. The deadline is lifted once the body is
//     read to its end, because Go's server then watches the connection with a read of its own
//     (to cancel the request of a client that went away), which must not time out while a
//     function runs.
//   - Each write of the response must finish within writeTimeout: the deadline moves as the
//     response is written, so a stream lasts as long as the function writes and the client
//     reads, and a client that stops reading is cut off.

const (
	// bodyGrace and minBodyRate size a route's body deadline: 78s for an invocation's 6 MB,
	// about 10 minutes for a 70 MB code upload (a client on a 1 Mbit/s link keeps up).
	bodyGrace   = 30 * time.Second
	minBodyRate = 128 << 10 // bytes per second
	// bodyIdle bounds the pause between two reads of a body of any size.
	bodyIdle = time.Minute
	// writeTimeout bounds one write of a response (50 KB/s for a 6 MB answer).
	writeTimeout = 2 * time.Minute
)

// bodyTimeout is the time a route allows for a body of at most limit bytes.
func bodyTimeout(limit int64) time.Duration {
	return bodyGrace + time.Duration(limit/minBodyRate)*time.Second
}

// deadlines are a route's bounds on one request.
type deadlines struct {
	// body bounds reading the whole body, from the request's start; 0: bodyIdle instead.
	body time.Duration
	// bodyIdle bounds each read of a body of any size.
	bodyIdle time.Duration
	// write bounds each write of the response.
	write time.Duration
}

// routeDeadlines are the deadlines of a route whose bodies are at most limit bytes.
func routeDeadlines(limit int64) deadlines {
	return deadlines{body: bodyTimeout(limit), write: writeTimeout}
}

// streamedDeadlines are those of a route whose body has any size.
var streamedDeadlines = deadlines{bodyIdle: bodyIdle, write: writeTimeout}

// defaultDeadlines are those of function URLs and of every handler outside the route table.
var defaultDeadlines = routeDeadlines(structs.MaxSyncPayloadBytes)

// mover moves a deadline forward as I/O goes on. Moving it is a timer change in the runtime's
// poller, so it moves only once a quarter of its window has passed: a deadline is then never
// less than three quarters of the window away when an I/O starts.
type mover struct {
	window time.Duration
	set    func(time.Time) error
	moved  time.Time
}

func (m *mover) move() {
	if m.window <= 0 {
		return
	}
	if now := time.Now(); now.Sub(m.moved) >= m.window/4 {
		m.moved = now
		_ = m.set(now.Add(m.window))
	}
}

// watchBody arms the read deadline of r's body and returns the body that lifts it at its end.
func (d deadlines) watchBody(r *http.Request, rc *http.ResponseController, start time.Time) io.ReadCloser {
	b := &deadlineBody{ReadCloser: r.Body, rc: rc}
	if d.body > 0 {
		_ = rc.SetReadDeadline(start.Add(d.body))
	} else {
		b.idle = &mover{window: d.bodyIdle, set: rc.SetReadDeadline}
	}
	return b
}

// deadlineBody is a request body under a read deadline.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle *mover // nil: one deadline for the whole body
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	if b.idle != nil {
		b.idle.move()
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		// net/http lifts it too when it starts its watch; done keeps a read after the end
		// from arming it again.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	// After any other error the deadline stays: the server then reads what is left of the
	// body before it answers, and must not wait for a client that stopped sending.
	return n, err
}
