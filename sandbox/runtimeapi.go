package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// The Runtime API, version 2018-06-01, as one environment serves it to its runtime
// (PROTOCOLS.md section 1).
const (
	headerRequestID       = "Lambda-Runtime-Aws-Request-Id"
	headerDeadline        = "Lambda-Runtime-Deadline-Ms"
	headerFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID         = "Lambda-Runtime-Trace-Id"
	headerClientContext   = "Lambda-Runtime-Client-Context"
	headerCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	headerErrorType       = invoke.TrailerErrorType
)

const (
	apiPrefix = "/2018-06-01/runtime/"
	// maxErrorBytes bounds an error report; Lambda truncates larger ones too.
	maxErrorBytes = 1 << 20
	// maxHeaderBytes bounds a request's line and headers: a runtime's are a few hundred bytes.
	maxHeaderBytes = 64 << 10
	// maxRuntimeConns bounds one environment's connections to its Runtime API: a runtime uses
	// one or two (and each extension one more). Past it a new connection is closed at once, so a
	// function that floods its API holds at most this many connections (a goroutine, an 8 KB
	// read buffer and a header of at most maxHeaderBytes each) on the agent.
	maxRuntimeConns = 32
	// maxDrainBytes is how much of a body a handler left unread is skipped to keep the
	// connection; past it the connection is closed.
	maxDrainBytes = 256 << 10
)

// headerTimeout bounds reading a request's line and headers once its first byte arrived. There
// is no idle deadline: a parked GET /next and a runtime's keep-alive connection wait as long as
// the environment stays frozen; idle connections are bounded by maxRuntimeConns and closed with
// the environment. A variable for the tests.
var headerTimeout = 10 * time.Second

var headerEnd = []byte("\r\n\r\n")

// runtimeServer serves the Runtime API on one environment's listener.
//
// It reads requests with net/http's parser (http.ReadRequest: chunked bodies, trailers) but is
// not an http.Server: it owns its connections, so the invocation path writes the event straight
// onto the connection of the runtime's pending GET /next, and nothing sits in a handler
// goroutine waiting for it. With net/http every event was a goroutine hand-off, a background
// read to watch the parked connection and a cancel context per request, on a path that serves
// two Runtime API requests per invocation.
type runtimeServer struct {
	e  *environment
	ln net.Listener

	mu          sync.Mutex
	conns       map[*runtimeConn]struct{}
	closed      bool
	warnedFull  bool // a connection over maxRuntimeConns was refused and logged
	initErrSeen bool // an init/error report was taken (only the first counts)
}

func newRuntimeServer(e *environment, ln net.Listener) *runtimeServer {
	return &runtimeServer{e: e, ln: ln, conns: map[*runtimeConn]struct{}{}}
}

// serve accepts connections until close.
func (s *runtimeServer) serve() {
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.e.cfg.logger.Warn("runtime API accept failed; retrying", "env", s.e.id, "error", err, "delay", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := &runtimeConn{s: s, nc: nc}
		c.lr.R = nc
		c.br = bufio.NewReaderSize(&c.lr, 8<<10)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		if len(s.conns) >= maxRuntimeConns {
			first := !s.warnedFull
			s.warnedFull = true
			s.mu.Unlock()
			nc.Close()
			if first {
				s.e.cfg.logger.Warn("runtime API: too many connections from the environment; closing new ones", "env", s.e.id, "limit", maxRuntimeConns)
			}
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

// close stops accepting and closes every connection. It does not wait for the connections'
// goroutines: one of them may be the caller (an environment retired when its runtime asked for
// the next event), and each ends on its own once its connection is closed.
func (s *runtimeServer) close() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[*runtimeConn]struct{}{}
	s.mu.Unlock()
	s.ln.Close()
	for c := range conns {
		c.nc.Close()
	}
}

// runtimeConn is one connection of the runtime. Its goroutine reads and answers requests in
// order; an event for a parked GET /next is written by the invocation path, under wmu.
type runtimeConn struct {
	s  *runtimeServer
	nc net.Conn
	lr io.LimitedReader
	br *bufio.Reader

	wmu     sync.Mutex
	wbuf    []byte
	closing bool // guarded by wmu: the response in progress ends the connection
}

func (c *runtimeConn) serve() {
	defer c.close()
	for {
		// Wait for a request as long as it takes (see headerTimeout), then bound its headers in
		// size and time.
		c.lr.N = maxHeaderBytes
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		// A runtime's headers arrive in one segment: the deadline (two timer updates) is only
		// armed for a request whose headers are not all here yet, off the invoke path.
		buffered, _ := c.br.Peek(c.br.Buffered())
		partial := !bytes.Contains(buffered, headerEnd)
		if partial {
			_ = c.nc.SetReadDeadline(time.Now().Add(headerTimeout))
		}
		req, err := http.ReadRequest(c.br)
		if partial {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
				c.setClosing()
				c.replyError(http.StatusBadRequest, "InvalidRequest", "malformed HTTP request: "+err.Error())
			}
			return
		}
		c.lr.N = math.MaxInt64 // bodies are bounded by the handlers
		if req.Close {
			c.setClosing()
		}
		if req.Method == http.MethodPost && req.ProtoAtLeast(1, 1) && httpguts.HeaderValuesContainsToken(req.Header["Expect"], "100-continue") {
			// Sent at once rather than on the first read: the body then always follows, so the
			// connection stays usable whether or not the handler reads it.
			if !c.writeRaw("HTTP/1.1 100 Continue\r\n\r\n") {
				return
			}
		}
		// A response to a request that asked to close ends the connection once written (for a
		// parked GET /next, when its event is), and this loop then stops on the read error.
		c.route(req)
		n, err := io.Copy(io.Discard, io.LimitReader(req.Body, maxDrainBytes+1))
		if err != nil || n > maxDrainBytes {
			return
		}
	}
}

// close ends the connection and takes it off the environment if it was parked in GET /next.
func (c *runtimeConn) close() {
	c.nc.Close()
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	c.s.e.unpark(c)
	c.s.e.unparkExtension(c)
}

func (c *runtimeConn) setClosing() {
	c.wmu.Lock()
	c.closing = true
	c.wmu.Unlock()
}

func (c *runtimeConn) route(req *http.Request) {
	e := c.s.e
	p := req.URL.Path
	method := func(want string) bool {
		if req.Method == want {
			return true
		}
		c.replyError(http.StatusMethodNotAllowed, "InvalidRequest", fmt.Sprintf("%s %s: use %s", req.Method, p, want))
		return false
	}
	if rest, ok := strings.CutPrefix(p, extPrefix); ok {
		c.routeExtension(req, rest)
		return
	}
	if p == telemetryPath || p == logsPath {
		e.subscribe(c, req, p == logsPath)
		return
	}
	switch rest, ok := strings.CutPrefix(p, apiPrefix); {
	case !ok:
	case rest == "invocation/next":
		if method(http.MethodGet) {
			e.next(c)
		}
		return
	case rest == "init/error":
		if method(http.MethodPost) {
			e.handleInitError(c, req)
		}
		return
	case strings.HasPrefix(rest, "invocation/"):
		id, action, _ := strings.Cut(rest[len("invocation/"):], "/")
		if id == "" || strings.Contains(action, "/") {
			break
		}
		switch action {
		case "response":
			if method(http.MethodPost) {
				e.handleResponse(c, req, id)
			}
			return
		case "error":
			if method(http.MethodPost) {
				e.handleError(c, req, id)
			}
			return
		}
	}
	c.replyError(http.StatusNotFound, "InvalidRequest", fmt.Sprintf("unknown Runtime API call %s %s", req.Method, p))
}

// writeEvent answers the runtime's GET /next with an invocation.
func (c *runtimeConn) writeEvent(inv *invocation) error {
	req := inv.req
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.head(c.wbuf[:0], http.StatusOK, len(req.Payload))
	b = appendHeader(b, headerRequestID, req.RequestID)
	b = append(b, headerDeadline...)
	b = append(b, ": "...)
	b = strconv.AppendInt(b, inv.deadline.UnixMilli(), 10)
	b = append(b, "\r\n"...)
	b = appendHeader(b, headerFunctionARN, req.InvokedFunctionARN)
	b = appendHeader(b, headerTraceID, req.TraceID)
	if req.ClientContext != "" {
		b = appendHeader(b, headerClientContext, req.ClientContext)
	}
	if req.CognitoIdentity != "" {
		b = appendHeader(b, headerCognitoIdentity, req.CognitoIdentity)
	}
	b = append(b, "\r\n"...)
	return c.writeLocked(b, req.Payload)
}

// reply writes a complete JSON response.
func (c *runtimeConn) reply(status int, body []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.head(c.wbuf[:0], status, len(body)), "\r\n"...)
	_ = c.writeLocked(b, body)
}

func (c *runtimeConn) replyError(status int, errType, msg string) {
	c.reply(status, invoke.ErrorJSON(errType, msg))
}

var acceptedBody = []byte(`{"status":"OK"}`)

func (c *runtimeConn) accepted() { c.reply(http.StatusAccepted, acceptedBody) }

// head starts a response: status line, Content-Type, Content-Length and, when the connection
// ends after it, Connection: close. The caller adds its headers and the blank line.
func (c *runtimeConn) head(b []byte, status, length int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(length), 10)
	b = append(b, "\r\n"...)
	if c.closing {
		b = append(b, "Connection: close\r\n"...)
	}
	return b
}

// writeLocked writes head and body with one system call: small bodies are copied after the
// head, large ones go out with writev. The head's buffer is kept for the next response.
func (c *runtimeConn) writeLocked(head, body []byte) error {
	var err error
	if len(body) <= 16<<10 {
		head = append(head, body...)
		_, err = c.nc.Write(head)
	} else {
		bufs := net.Buffers{head, body}
		_, err = bufs.WriteTo(c.nc)
	}
	c.wbuf = head[:0]
	if err == nil && c.closing {
		c.nc.Close()
	}
	return err
}

func (c *runtimeConn) writeRaw(s string) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := io.WriteString(c.nc, s)
	return err == nil
}

// appendHeader adds one header line, dropping bytes a header value may not hold (the values
// come from the caller's request, already parsed, so this is a second line of defence).
func appendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	for i := 0; i < len(value); i++ {
		if ch := value[i]; ch == '\t' || (ch >= 0x20 && ch != 0x7f) {
			b = append(b, ch)
		}
	}
	return append(b, "\r\n"...)
}

// next is the runtime's long poll. Its first call ends Init; every later call ends the
// invocation in progress (END, REPORT, the environment goes back to the pool, maybe frozen).
// The connection is then answered with a queued event or parked until invoke delivers one.
func (e *environment) next(c *runtimeConn) {
	e.mu.Lock()
	// The runtime's first poll ends Init, unless an extension has not polled yet: its poll
	// ends it then (extensionNext).
	first := e.phase == phaseInitialising && !e.runtimePolled
	initNow := false
	if first {
		e.runtimePolled = true
		initNow = e.extensionsReadyLocked() && e.toLocked(phaseReady)
	}
	if first && e.tele.Load() != nil {
		initType := e.initType()
		e.platform("platform.initRuntimeDone", func(logs bool, schema string) any {
			if logs {
				return nil
			}
			return map[string]any{"initializationType": initType, "phase": "init", "status": "success"}
		})
	}
	prev := e.cur
	if prev == e.queued {
		prev = nil // not delivered yet (the runtime reconnected): this poll gets it
	}
	if prev != nil && e.extensionsOweLocked() {
		// An extension still works on the invocation: its poll ends it (extensionNext).
		e.finishing, prev = prev, nil
	}
	e.mu.Unlock()
	if initNow {
		close(e.initDone)
	}
	if prev != nil {
		e.finish(prev)
	}
	select {
	case <-e.dead:
		c.replyError(http.StatusInternalServerError, "Runtime.Shutdown", "the execution environment is shutting down")
		return
	default:
	}
	e.mu.Lock()
	inv := e.queued
	if inv == nil {
		if old := e.waiting; old != nil && old != c {
			// A second poll supersedes the first (a runtime that gave up on its connection).
			defer old.replyError(http.StatusInternalServerError, "Runtime.Superseded", "another GET /next took this one's place")
		}
		e.waiting = c
		e.mu.Unlock()
		return
	}
	e.queued = nil
	e.mu.Unlock()
	e.send(c, inv)
}

// deliver hands inv, already the environment's current invocation, to the runtime: onto the
// parked GET /next, or queued for the next one.
func (e *environment) deliver(inv *invocation) {
	e.mu.Lock()
	c := e.waiting
	e.waiting = nil
	if c == nil {
		if e.cur == inv {
			e.queued = inv
		}
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.send(c, inv)
}

// send writes inv on c. When the connection is gone the invocation goes back to wait for the
// runtime's next poll, so a runtime that reconnects still gets it.
func (e *environment) send(c *runtimeConn, inv *invocation) {
	if err := c.writeEvent(inv); err != nil {
		c.nc.Close()
		e.mu.Lock()
		requeue := e.cur == inv
		e.mu.Unlock()
		if requeue {
			e.deliver(inv)
		}
	}
}

// unpark forgets c as the pending GET /next once its connection closed.
func (e *environment) unpark(c *runtimeConn) {
	e.mu.Lock()
	if e.waiting == c {
		e.waiting = nil
	}
	e.mu.Unlock()
}

// failPoll answers a parked GET /next when the environment is torn down, so the runtime stops
// polling instead of waiting for the kill.
func (e *environment) failPoll() {
	e.mu.Lock()
	c := e.waiting
	e.waiting = nil
	e.mu.Unlock()
	if c != nil {
		c.replyError(http.StatusInternalServerError, "Runtime.Shutdown", "the execution environment is shutting down")
	}
}

// claim checks that id names the invocation in progress and that it has not been answered, and
// marks it answered. It writes the API's error and returns nil otherwise.
func (e *environment) claim(c *runtimeConn, id string) *invocation {
	e.mu.Lock()
	inv := e.cur
	switch {
	case inv == nil || inv.req.RequestID != id || inv == e.queued:
		e.mu.Unlock()
		c.replyError(http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("request id %q is not the invocation in progress", id))
		return nil
	case e.phase == phaseFinishing:
		e.mu.Unlock()
		c.replyError(http.StatusForbidden, "InvalidStateTransition", fmt.Sprintf("invocation %s was already answered", id))
		return nil
	}
	e.toLocked(phaseFinishing)
	e.mu.Unlock()
	e.owner.markFinishing(e, 1)
	return inv
}

func (e *environment) handleResponse(c *runtimeConn, r *http.Request, id string) {
	inv := e.claim(c, id)
	if inv == nil {
		return
	}
	// A caller that takes a stream gets the body as it arrives, whatever the runtime's mode:
	// aws-lambda-go streams a handler's io.Reader chunked without saying so in a header.
	if inv.req.AcceptStream {
		e.stream(c, r, inv)
		return
	}
	body, err := readBody(r, structs.MaxSyncPayloadBytes+1)
	if err != nil {
		inv.complete(e.errorResponse(inv, "Runtime.Unknown", "reading the runtime's response: "+err.Error()))
		c.setClosing()
		c.replyError(http.StatusBadRequest, "InvalidRequest", "reading the response body: "+err.Error())
		return
	}
	if len(body) > structs.MaxSyncPayloadBytes {
		inv.complete(e.errorResponse(inv, "Function.ResponseSizeTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", structs.MaxSyncPayloadBytes)))
		// The rest is skipped so the runtime reads the answer; the function's timeout bounds it.
		_, _ = io.Copy(io.Discard, r.Body)
		c.replyError(http.StatusRequestEntityTooLarge, "Function.ResponseSizeTooLarge",
			fmt.Sprintf("response is larger than %d bytes", structs.MaxSyncPayloadBytes))
		return
	}
	// A chunked response reports an error raised after its first bytes in trailers (aws-lambda-go
	// sends every response chunked, declaring them, whether or not it says it streams).
	if et, payload := invoke.TrailerError(r.Trailer); et != "" {
		e.answer(inv, &invoke.Response{Payload: payload, FunctionError: true, ErrorType: et, ExecutedVersion: inv.req.Version})
		c.accepted()
		return
	}
	e.answer(inv, &invoke.Response{Payload: body, ExecutedVersion: inv.req.Version, ContentType: r.Header.Get("Content-Type")})
	// The caller's answer goes out before the runtime's 202: complete made the waiting caller
	// runnable, and yielding lets it write its response first when it shares this P (the agent
	// often runs on one), so the client does not wait for the 202's write and the runtime's wakeup.
	runtime.Gosched()
	c.accepted()
}

// streamReadBytes is the read buffer of a runtime connection while it streams a response. A
// runtime's chunks are small (aws-lambda-go copies a handler's reader in 32 KB pieces and its
// HTTP client writes each in three calls), and reading them through the connection's 8 KB
// buffer costs two system calls per chunk; through this one, a single call takes whatever the
// runtime has written meanwhile. It is not kept per connection: most never stream.
const streamReadBytes = 256 << 10

var streamReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, streamReadBytes) }}

// stream hands the runtime's streamed body to the caller and holds this connection until the
// caller is done with it. A stream the caller did not read to its end (it went away, or the
// size limit was reached) leaves the runtime writing into nothing: the environment is reset.
func (e *environment) stream(c *runtimeConn, r *http.Request, inv *invocation) {
	// Until the body ends, the connection is read through a large buffer (see streamReadBytes).
	// Only this goroutine and the stream's reader touch c.lr, and the latter is done once the
	// stream is complete.
	big := streamReaders.Get().(*bufio.Reader)
	big.Reset(c.lr.R)
	c.lr.R = big
	st := newStream(r, e.cfg.maxStreamBytes)
	inv.complete(&invoke.Response{Stream: st, ExecutedVersion: inv.req.Version})
	whole := st.wait(e.dead, inv.gone)
	inv.met.StreamBytes(st.written())
	if whole {
		e.runtimeDone(inv, "success", "", 0)
		if big.Buffered() == 0 { // else it holds the start of the next request: keep it
			c.lr.R = c.nc
			big.Reset(nil)
			streamReaders.Put(big)
		}
		c.accepted()
		return
	}
	select {
	case <-e.dead:
		return
	default:
	}
	// The runtime gets no answer: told that its stream was cut off, or seeing this connection
	// close, it would exit (aws-lambda-go does), and its exit could be reported before the reason
	// the stream was cut off. The environment is reset from here, while the runtime still waits,
	// and the runtime is killed with it (nothing in the reset waits for this goroutine).
	errType, _ := st.Err()
	e.resetWith("stream cancelled", "error", errType)
}

func (e *environment) handleError(c *runtimeConn, r *http.Request, id string) {
	inv := e.claim(c, id)
	if inv == nil {
		return
	}
	errType, payload := readErrorReport(r)
	e.answer(inv, &invoke.Response{Payload: payload, FunctionError: true, ErrorType: errType, ExecutedVersion: inv.req.Version})
	c.accepted()
}

// answer hands the runtime's answer to the caller once what the runtime wrote before it is in
// the function's log: a caller that reads the log after its answer (or invokes again, perhaps
// in another environment, as a stream trigger's next batch does) finds those lines there, in
// the order the function made them.
func (e *environment) answer(inv *invocation, resp *invoke.Response) {
	e.out.drain()
	if e.tele.Load() != nil {
		status := "success"
		if resp.FunctionError {
			status = "error"
		}
		e.runtimeDone(inv, status, resp.ErrorType, len(resp.Payload))
	}
	inv.complete(resp)
}

func (e *environment) handleInitError(c *runtimeConn, r *http.Request) {
	e.mu.Lock()
	inited := e.phase.initialised()
	e.mu.Unlock()
	if inited {
		c.replyError(http.StatusForbidden, "InvalidStateTransition", "init/error is only valid before the first invocation/next")
		return
	}
	// Only the first report counts; later ones are refused before their body is read.
	e.rt.mu.Lock()
	again := e.rt.initErrSeen
	e.rt.initErrSeen = true
	e.rt.mu.Unlock()
	if again {
		c.replyError(http.StatusForbidden, "InvalidStateTransition", "init/error was already reported")
		return
	}
	errType, msg, payload := readInitReport(r)
	if !e.failInit(&initError{errorType: errType, message: msg, body: payload, status: "error"}) {
		c.replyError(http.StatusForbidden, "InvalidStateTransition", "init/error is only valid before the first invocation/next")
		return
	}
	c.accepted()
}

// readInitReport reads an init/error report: its error type, message and body.
func readInitReport(r *http.Request) (errType, message string, body []byte) {
	errType, body = readErrorReport(r)
	var report struct {
		Message string `json:"errorMessage"`
	}
	_ = json.Unmarshal(body, &report)
	return errType, report.Message, body
}

// failInit hands an Init failure to init, unless Init is over. It is handed over under e.mu,
// where next ends Init: init then sees the report whenever it sees the end of Init, so a true
// (a 202 to the reporter) always means the report counts.
func (e *environment) failInit(ie *initError) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.phase.initialised() {
		return false
	}
	select {
	case e.initFail <- ie:
	default:
	}
	return true
}

// readBody reads up to limit bytes. Content-Length sizes the first buffer only up to 64 KB: a
// runtime that declares 6 MB and sends nothing must not make the agent allocate them.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	size := int64(512)
	if r.ContentLength > 0 {
		size = min(r.ContentLength+1, limit, 64<<10)
	}
	buf := make([]byte, 0, size)
	lr := io.LimitReader(r.Body, limit)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// readErrorReport reads an error posted by the runtime: the type from the header (or the body),
// the body passed to the caller as is when it is JSON, wrapped otherwise.
func readErrorReport(r *http.Request) (string, []byte) {
	body, _ := readBody(r, maxErrorBytes)
	errType := r.Header.Get(headerErrorType)
	var report struct {
		Type string `json:"errorType"`
	}
	valid := json.Valid(body)
	if valid {
		_ = json.Unmarshal(body, &report)
	}
	if errType == "" {
		errType = report.Type
	}
	if errType == "" {
		errType = "Runtime.Unknown"
	}
	if !valid {
		body = invoke.ErrorJSON(errType, string(body))
	}
	return errType, body
}
