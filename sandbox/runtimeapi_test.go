package sandbox_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// A harness for the Runtime API without a container: the real manager, environment and
// Runtime API server on apiDriver, whose instances are a TCP listener and no process, so the
// test plays the runtime.

// The invocation in flight and the answer of the test's runtime.
const (
	apiRequestID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
	apiAnswer    = `{"answer":"the runtime's"}`
	apiPrefix    = "/2018-06-01/runtime/"
)

// apiExchange is what the server answered to the bytes of an exchange.
type apiExchange struct {
	accepted int // 202 answers
	events   int // 200 answers: an event for a GET /next
}

// invokeResult is what the caller got, a stream read to its end.
type invokeResult struct {
	payload       []byte
	functionError bool
	errorType     string
	err           error
}

func (r invokeResult) is(payload string) bool {
	return r.err == nil && !r.functionError && string(r.payload) == payload
}

func (r invokeResult) String() string {
	return fmt.Sprintf("{payload %q, function error %v %q, err %v}", r.payload, r.functionError, r.errorType, r.err)
}

// apiHarness is one manager with one invocation in flight, on apiDriver.
type apiHarness struct {
	m      *sandbox.Manager
	d      *apiDriver
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan invokeResult
	wg     sync.WaitGroup
	// closing is set once the test shuts the manager down.
	closing atomic.Bool

	mu       sync.Mutex
	postSeen []int
	errors   []string
	nStarted int
}

// newAPIHarness starts the invocation; with hold, the first environment's Start returns only
// once hold is closed.
func newAPIHarness(t *testing.T, stream bool, hold chan struct{}) *apiHarness {
	d := &apiDriver{started: make(chan *apiInstance, 4), first: make(chan *apiInstance, 1), hold: hold}
	m, err := sandbox.NewManager(sandbox.ManagerConfig{Driver: d, Code: dirCode{t.TempDir()}, Logger: hclog.NewNullLogger(),
		MaxEnvironments: 4, InitTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &apiHarness{m: m, d: d, ctx: ctx, cancel: cancel, done: make(chan invokeResult, 1),
		client: &http.Client{Transport: &http.Transport{}}}
	fn := testFunction("fuzz", func(f *structs.Function) { f.Timeout = 5 * time.Second })
	req := &invoke.Request{RequestID: apiRequestID, Payload: []byte(`{"event":1}`), AcceptStream: stream,
		InvokedFunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:fuzz"}
	go func() {
		var res invokeResult
		resp, err := m.Invoke(ctx, fn, req)
		switch {
		case err != nil:
			res.err = err
		case resp.Stream != nil:
			res.payload, res.err = io.ReadAll(resp.Stream)
			res.errorType, _ = resp.Stream.Err()
			res.functionError = res.errorType != ""
			_ = resp.Stream.Close()
		default:
			res.payload, res.functionError, res.errorType = resp.Payload, resp.FunctionError, resp.ErrorType
		}
		h.done <- res
	}()
	t.Cleanup(func() { h.shutdown(t) })
	// Environments started after the first (Init run again) get a runtime of their own.
	go func() {
		first := true
		for inst := range d.started {
			h.mu.Lock()
			h.nStarted++
			h.mu.Unlock()
			if first {
				first = false
				d.first <- inst
				continue
			}
			h.startRuntime(inst, nil)
		}
	}()
	return h
}

func (h *apiHarness) nextInstance(t *testing.T) *apiInstance {
	select {
	case inst := <-h.d.first:
		return inst
	case <-time.After(10 * time.Second):
		t.Fatal("no environment started")
		return nil
	}
}

func (h *apiHarness) errorf(format string, args ...any) {
	h.mu.Lock()
	h.errors = append(h.errors, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

func (h *apiHarness) errs() []string            { h.mu.Lock(); defer h.mu.Unlock(); return h.errors }
func (h *apiHarness) posts() []int              { h.mu.Lock(); defer h.mu.Unlock(); return h.postSeen }
func (h *apiHarness) starts() int               { h.mu.Lock(); defer h.mu.Unlock(); return h.nStarted }
func (h *apiHarness) url(i *apiInstance) string { return "http://" + i.ln.Addr().String() + apiPrefix }

// startRuntime runs a well-behaved runtime on inst: it polls for the next event and answers it
// with apiAnswer once proceed is closed (nil: at once). The channel it returns is closed when
// the event has arrived.
func (h *apiHarness) startRuntime(inst *apiInstance, proceed chan struct{}) <-chan struct{} {
	got := make(chan struct{})
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		gotOnce := sync.OnceFunc(func() { close(got) })
		for {
			req, _ := http.NewRequestWithContext(h.ctx, http.MethodGet, h.url(inst)+"invocation/next", nil)
			resp, err := h.client.Do(req)
			if err != nil {
				return // the environment is gone
			}
			event, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				h.checkAPIError("GET /next", resp.StatusCode, event)
				return
			}
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			if _, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64); err != nil || id != apiRequestID ||
				resp.Header.Get("Lambda-Runtime-Trace-Id") == "" || string(event) != `{"event":1}` {
				h.errorf("the event: %v %s", resp.Header, event)
			}
			gotOnce()
			if proceed != nil {
				select {
				case <-proceed:
				case <-h.ctx.Done():
					return
				}
			}
			req, _ = http.NewRequestWithContext(h.ctx, http.MethodPost, h.url(inst)+"invocation/"+id+"/response", strings.NewReader(apiAnswer))
			resp, err = h.client.Do(req)
			if err != nil {
				if !h.closing.Load() { // else the environment may be shut down under the post
					h.errorf("posting the answer: %v", err)
				}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			h.mu.Lock()
			h.postSeen = append(h.postSeen, resp.StatusCode)
			h.mu.Unlock()
			if resp.StatusCode != http.StatusAccepted {
				h.checkAPIError("the answer", resp.StatusCode, body)
			}
		}
	}()
	return got
}

// TestInitErrorThenNextFailsInit: a runtime that reports an Init error and asks for the next
// event before the manager looks has its Init failed, as the 202 promised, and the invocation
// runs in a new environment. Found by FuzzRuntimeAPI: the manager picked either at random.
func TestInitErrorThenNextFailsInit(t *testing.T) {
	for range 10 { // each round would pass by chance half of the time
		hold := make(chan struct{})
		h := newAPIHarness(t, false, hold)
		inst := h.nextInstance(t)
		// Start has not returned: the manager is not waiting for the end of Init yet.
		x := h.exchange(t, inst, []byte("POST "+apiPrefix+"init/error HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"+
			"GET "+apiPrefix+"invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"))
		if x.accepted != 1 {
			t.Fatalf("init/error: %d accepted", x.accepted)
		}
		close(hold)
		res := h.result(t)
		h.shutdown(t)
		for _, e := range h.errs() {
			t.Error(e)
		}
		if h.starts() != 2 || !res.is(apiAnswer) {
			t.Fatalf("%d environments started, the caller got %s; want Init failed, run again and answered", h.starts(), res)
		}
	}
}

// allowedStatus lists what the Runtime API may answer (PROTOCOLS.md section 1).
var allowedStatus = map[int]bool{100: true, 200: true, 202: true, 400: true, 403: true, 404: true, 405: true, 413: true, 500: true}

// checkAPIError checks an answer other than 200 and 202: an allowed status with the API's
// error JSON; a 500 only to end a GET /next.
func (h *apiHarness) checkAPIError(what string, status int, body []byte) {
	if status == http.StatusContinue {
		return
	}
	var e struct{ ErrorMessage, ErrorType string }
	if !allowedStatus[status] || json.Unmarshal(body, &e) != nil || e.ErrorMessage == "" || e.ErrorType == "" {
		h.errorf("%s: status %d with %q", what, status, body)
		return
	}
	if status == http.StatusInternalServerError && e.ErrorType != "Runtime.Shutdown" && e.ErrorType != "Runtime.Superseded" {
		h.errorf("%s: 500 %s: a Runtime API error the protocol does not define", what, body)
	}
}

// exchange sends raw on a connection of its own, ends its side, and reads every answer until
// the server closes the connection.
func (h *apiHarness) exchange(t *testing.T, inst *apiInstance, raw []byte) apiExchange {
	c, err := net.Dial("tcp", inst.ln.Addr().String())
	if err != nil {
		t.Fatalf("dialing the Runtime API: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = c.Write(raw)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	var x apiExchange
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the Runtime API neither answered nor closed the connection")
		}
		if err != nil {
			return x // closed, or reset after a malformed request
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			h.errorf("reading an answer's body: %v", err)
			return x
		}
		switch resp.StatusCode {
		case http.StatusAccepted:
			x.accepted++
		case http.StatusOK:
			x.events++
		default:
			h.checkAPIError("the fuzz bytes", resp.StatusCode, body)
		}
	}
}

func (h *apiHarness) result(t *testing.T) invokeResult {
	select {
	case res := <-h.done:
		return res
	case <-time.After(15 * time.Second):
		t.Fatal("the invocation did not end")
		return invokeResult{}
	}
}

// shutdown ends the harness (also at the test's end, should it stop early).
func (h *apiHarness) shutdown(t *testing.T) {
	if h.closing.Swap(true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.m.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	h.cancel()
	h.wg.Wait()
	h.d.closeAll()
	close(h.d.started)
	h.client.CloseIdleConnections()
}

// apiDriver's instances are a Runtime API listener and nothing else: the test is the runtime.
type apiDriver struct {
	started chan *apiInstance
	first   chan *apiInstance
	hold    chan struct{}

	mu        sync.Mutex
	listeners []*keptListener
}

func (d *apiDriver) Name() string { return "runtime-api-test" }

func (d *apiDriver) Create(_ context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln := &keptListener{TCPListener: l.(*net.TCPListener)}
	d.mu.Lock()
	d.listeners = append(d.listeners, ln)
	d.mu.Unlock()
	return &apiInstance{id: spec.ID, ln: ln, d: d, exited: make(chan struct{})}, nil
}

// closeAll releases the ports of every instance's listener.
func (d *apiDriver) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ln := range d.listeners {
		ln.TCPListener.Close()
	}
}

// keptListener keeps its port until the test ends: closed, it stops accepting, but a later
// instance cannot get the same port, where the runtime of a destroyed one would find it.
type keptListener struct {
	*net.TCPListener
	mu     sync.Mutex
	closed bool
}

func (l *keptListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		if c != nil {
			c.Close()
		}
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *keptListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.TCPListener.SetDeadline(time.Unix(1, 0)) // wakes Accept
}

func (d *apiDriver) Sweep(context.Context) error { return nil }
func (d *apiDriver) Close() error                { return nil }

type apiInstance struct {
	id      string
	ln      net.Listener
	d       *apiDriver
	exited  chan struct{}
	destroy sync.Once
}

func (i *apiInstance) ID() string                   { return i.id }
func (i *apiInstance) Listener() net.Listener       { return i.ln }
func (i *apiInstance) RuntimeAPIAddr() string       { return i.ln.Addr().String() }
func (i *apiInstance) Freeze(context.Context) error { return nil }
func (i *apiInstance) Thaw(context.Context) error   { return nil }
func (i *apiInstance) Exited() <-chan struct{}      { return i.exited }
func (i *apiInstance) ExitStatus() sandbox.ExitStatus {
	return sandbox.ExitStatus{Signal: "killed", Code: -1}
}
func (i *apiInstance) MaxMemoryBytes() (uint64, error) { return 0, nil }
func (i *apiInstance) Signal(os.Signal) error          { return nil }
func (i *apiInstance) Spawn(context.Context, []string, *os.File) (sandbox.Process, error) {
	return nil, errors.New("the API test driver runs no extensions")
}
func (i *apiInstance) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (i *apiInstance) Start(context.Context) error {
	i.d.started <- i
	if i.d.hold != nil {
		<-i.d.hold
	}
	return nil
}

func (i *apiInstance) Destroy(context.Context) error {
	i.destroy.Do(func() {
		i.ln.Close()
		close(i.exited)
	})
	return nil
}
