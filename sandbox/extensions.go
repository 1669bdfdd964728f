package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/lambdagw/gateway/internal/structs"
)

// The Extensions API, version 2020-01-01, at the same address as the Runtime API
// (PROTOCOLS.md section 2). An extension registers during Init, then long-polls event/next:
// Init ends once the runtime and every registered extension have polled, and an invocation
// ends (END, REPORT, the environment back to the pool, maybe frozen) once the runtime and every
// extension registered for INVOKE have polled again after it.
const (
	extPrefix               = "/2020-01-01/extension/"
	headerExtensionName     = "Lambda-Extension-Name"
	headerExtensionID       = "Lambda-Extension-Identifier"
	headerExtensionEventID  = "Lambda-Extension-Event-Identifier"
	headerExtensionErrType  = "Lambda-Extension-Function-Error-Type"
	maxExtensions           = 10 // Lambda's limit
	maxExtensionNameLen     = 128
	maxExtensionRequestBody = 64 << 10
)

// extension is one registered extension; its fields are guarded by environment.mu.
type extension struct {
	id, name         string
	invoke, shutdown bool
	// ready: it polled since it registered (Init waits for that).
	ready bool
	// owes: it was sent an INVOKE event and has not polled since (the invocation waits).
	owes    bool
	waiting *runtimeConn // its parked event/next
	queued  []byte       // an event waiting for its next poll
	// shutdownSent: it was given the SHUTDOWN event; its next poll (or its exit) acknowledges it.
	shutdownSent bool
	// external: a process of its own, started from /opt/extensions; exited: that process ended.
	external, exited bool
}

// events lists what x registered for.
func (x *extension) events() []string {
	var evs []string
	if x.invoke {
		evs = append(evs, "INVOKE")
	}
	if x.shutdown {
		evs = append(evs, "SHUTDOWN")
	}
	return evs
}

// hand gives x event ev (environment.mu held): onto its parked poll, which is added to send to
// be answered once the lock is gone, or queued for its next poll.
func (x *extension) hand(send []*runtimeConn, ev []byte) []*runtimeConn {
	if x.waiting != nil {
		send = append(send, x.waiting)
		x.waiting = nil
		return send
	}
	x.queued = ev
	return send
}

// extShutdown is the environment's shutdown as its extensions see it: the SHUTDOWN events sent
// and the polls that acknowledge them.
type extShutdown struct {
	left int
	done chan struct{} // closed when left reaches 0
}

// internalShutdownBudget is how long extensions that live in the runtime's process get to
// handle SHUTDOWN (Lambda's 500 ms with internal extensions only).
const internalShutdownBudget = 500 * time.Millisecond

// routeExtension serves the Extensions API; rest is the path after extPrefix.
func (c *runtimeConn) routeExtension(req *http.Request, rest string) {
	e := c.s.e
	want := ""
	switch rest {
	case "register", "init/error", "exit/error":
		want = http.MethodPost
	case "event/next":
		want = http.MethodGet
	}
	switch {
	case want == "":
		c.replyError(http.StatusNotFound, "InvalidRequest", fmt.Sprintf("unknown Extensions API call %s %s", req.Method, req.URL.Path))
		return
	case req.Method != want:
		c.replyError(http.StatusMethodNotAllowed, "InvalidRequest", fmt.Sprintf("%s %s: use %s", req.Method, req.URL.Path, want))
		return
	case rest == "register":
		e.registerExtension(c, req)
		return
	}
	id := req.Header.Get(headerExtensionID)
	if id == "" {
		c.replyError(http.StatusForbidden, "Extension.MissingHeader", "the "+headerExtensionID+" header is required")
		return
	}
	e.mu.Lock()
	x := e.extByID[id]
	e.mu.Unlock()
	if x == nil {
		c.replyError(http.StatusForbidden, "Extension.UnknownExtensionIdentifier", fmt.Sprintf("no extension is registered as %q", id))
		return
	}
	switch rest {
	case "event/next":
		e.extensionNext(c, x)
	case "init/error":
		e.extensionInitError(c, req, x)
	case "exit/error":
		errType, _ := readErrorReport(req)
		e.out.line(fmt.Sprintf("EXTENSION Name: %s reported an exit error: %s", x.name, errType))
		c.accepted()
	}
}

// registerExtension registers an extension: only during Init, before the runtime's first
// poll (an internal extension registers from the runtime's process before that).
func (e *environment) registerExtension(c *runtimeConn, req *http.Request) {
	name := req.Header.Get(headerExtensionName)
	if name == "" || len(name) > maxExtensionNameLen || strings.ContainsAny(name, "/\x00\r\n") {
		c.replyError(http.StatusForbidden, "Extension.InvalidExtensionName", fmt.Sprintf("%q is not an extension name (1 to %d characters, no '/')", name, maxExtensionNameLen))
		return
	}
	body, err := readBody(req, maxExtensionRequestBody)
	if err != nil {
		c.replyError(http.StatusBadRequest, "InvalidRequestFormat", "reading the registration: "+err.Error())
		return
	}
	var in struct {
		Events []string `json:"events"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		c.replyError(http.StatusBadRequest, "InvalidRequestFormat", "the registration is not JSON {\"events\": [...]}: "+err.Error())
		return
	}
	x := &extension{id: uuid.NewString(), name: name}
	for _, ev := range in.Events {
		switch ev {
		case "INVOKE":
			x.invoke = true
		case "SHUTDOWN":
			x.shutdown = true
		default:
			c.replyError(http.StatusBadRequest, "Extension.InvalidEventType", fmt.Sprintf("%q is not an event an extension registers for (INVOKE, SHUTDOWN)", ev))
			return
		}
	}
	e.mu.Lock()
	x.external = slices.Contains(e.external, name)
	switch {
	case e.phase.initialised() || e.runtimePolled:
		e.mu.Unlock()
		c.replyError(http.StatusForbidden, "Extension.RegistrationClosed", "extensions register during Init, before the runtime's first invocation/next")
		return
	case len(e.exts) >= maxExtensions:
		e.mu.Unlock()
		c.replyError(http.StatusForbidden, "Extension.TooManyExtensions", fmt.Sprintf("an environment has at most %d extensions", maxExtensions))
		return
	case !x.external && !e.started:
		// Only external extensions run before the runtime; each registers as its file is named.
		e.mu.Unlock()
		c.replyError(http.StatusForbidden, "Extension.InvalidExtensionName",
			fmt.Sprintf("%q is not the name of a file in %s: an external extension registers under its file name", name, extensionsDir))
		return
	case !x.external && x.shutdown:
		// As on Lambda: an internal extension ends with the runtime's process, which gets
		// SIGTERM instead.
		e.mu.Unlock()
		c.replyError(http.StatusForbidden, "ShutdownEventNotSupportedForInternalExtension",
			fmt.Sprintf("extension %s: only external extensions (in %s) register for SHUTDOWN", name, extensionsDir))
		return
	}
	for _, o := range e.exts {
		if o.name == name {
			e.mu.Unlock()
			c.replyError(http.StatusForbidden, "Extension.InvalidExtensionState", fmt.Sprintf("an extension named %q is already registered", name))
			return
		}
	}
	if e.extByID == nil {
		e.extByID = map[string]*extension{}
	}
	e.exts = append(e.exts, x)
	e.extByID[x.id] = x
	e.hasExts.Store(true)
	if x.external {
		if e.extPending--; e.extPending == 0 {
			close(e.extRegistered)
		}
	}
	e.mu.Unlock()
	evs := x.events()
	switch {
	case !e.logf.json:
		e.cfg.logs.Log(e.fn.Name, "", true, []string{fmt.Sprintf("EXTENSION Name: %s State: Registered Events: [%s]", name, strings.Join(evs, ","))})
	case e.logf.system(rankInfo):
		e.cfg.logs.Log(e.fn.Name, "", true, []string{jsonRecord("platform.extension", map[string]any{"name": name, "state": "Ready", "events": evs})})
	}
	e.platform("platform.extension", func(bool, string) any {
		return map[string]any{"name": name, "state": "Ready", "events": evs}
	})
	out, _ := json.Marshal(map[string]string{"functionName": e.fn.Name, "functionVersion": e.pool.key.version,
		"handler": e.fn.Handler, "accountId": structs.AccountID})
	c.wmu.Lock()
	b := c.head(c.wbuf[:0], http.StatusOK, len(out))
	b = appendHeader(b, headerExtensionID, x.id)
	b = append(b, "\r\n"...)
	_ = c.writeLocked(b, out)
	c.wmu.Unlock()
}

// extensionNext is an extension's long poll: it acknowledges the Init or the invocation it was
// in, then gets its queued event or parks.
func (e *environment) extensionNext(c *runtimeConn, x *extension) {
	e.mu.Lock()
	if xo := e.extOut; x.external && xo != nil {
		// What it printed before polling is logged before the END its poll may bring, as the
		// runtime's output is.
		e.mu.Unlock()
		xo.drain()
		e.mu.Lock()
	}
	if sd := e.extShutdown; sd != nil {
		if ev := x.queued; x.shutdownSent && ev != nil {
			// It was busy when the shutdown began: this poll gets its SHUTDOWN.
			x.queued = nil
			e.mu.Unlock()
			e.sendExtensionEvent(c, ev)
			return
		}
		// Shutting down: a poll after SHUTDOWN says the extension is done; there is no
		// other event to wait for.
		if x.shutdownSent {
			x.shutdownSent = false
			if sd.left--; sd.left == 0 {
				close(sd.done)
			}
		}
		e.mu.Unlock()
		c.replyError(http.StatusInternalServerError, "Extension.Shutdown", "the execution environment is shutting down")
		return
	}
	x.ready = true
	initNow := e.phase == phaseInitialising && e.runtimePolled && e.extensionsReadyLocked() && e.toLocked(phaseReady)
	var finish *invocation
	if x.owes {
		x.owes = false
		if e.finishing != nil && !e.extensionsOweLocked() {
			finish, e.finishing = e.finishing, nil
		}
	}
	ev := x.queued
	x.queued = nil
	var old *runtimeConn
	if ev == nil {
		old, x.waiting = x.waiting, c
		if old == c {
			old = nil
		}
	}
	e.mu.Unlock()
	if initNow {
		close(e.initDone)
	}
	if finish != nil {
		e.finish(finish)
	}
	if old != nil {
		old.replyError(http.StatusInternalServerError, "Extension.Superseded", "another event/next took this one's place")
	}
	select {
	case <-e.dead:
		e.mu.Lock()
		if x.waiting == c {
			x.waiting = nil
		}
		e.mu.Unlock()
		c.replyError(http.StatusInternalServerError, "Extension.Shutdown", "the execution environment is shutting down")
		return
	default:
	}
	if ev != nil {
		e.sendExtensionEvent(c, ev)
	}
}

// extensionInitError fails Init with the extension's error type, as the runtime's init/error.
func (e *environment) extensionInitError(c *runtimeConn, req *http.Request, x *extension) {
	errType, msg, payload := readInitReport(req)
	if errType == "" || errType == "Unhandled" {
		errType = "Extension.InitError"
	}
	if !e.failInit(&initError{errorType: errType, message: fmt.Sprintf("extension %s: %s", x.name, msg), body: payload, status: "error"}) {
		c.replyError(http.StatusForbidden, "Extension.InvalidExtensionState", "init/error is only valid during Init")
		return
	}
	c.accepted()
}

// extensionsReadyLocked reports whether every registered extension polled since it registered.
func (e *environment) extensionsReadyLocked() bool {
	for _, x := range e.exts {
		if !x.ready {
			return false
		}
	}
	return true
}

// extensionsOweLocked reports whether an extension has not polled since its INVOKE event.
func (e *environment) extensionsOweLocked() bool {
	for _, x := range e.exts {
		if x.owes {
			return true
		}
	}
	return false
}

// notifyInvoke sends the INVOKE event of inv, which the runtime is being given, to every
// extension registered for it; the invocation then ends only once each has polled again.
func (e *environment) notifyInvoke(inv *invocation) {
	if !e.hasExts.Load() {
		return // the common case, without a lock
	}
	e.mu.Lock()
	if len(e.exts) == 0 || e.cur != inv {
		e.mu.Unlock()
		return
	}
	var send []*runtimeConn
	var ev []byte
	for _, x := range e.exts {
		if !x.invoke {
			continue
		}
		if ev == nil {
			ev = invokeEvent(inv)
		}
		x.owes = true
		send = x.hand(send, ev)
	}
	e.mu.Unlock()
	for _, c := range send {
		e.sendExtensionEvent(c, ev)
	}
}

// invokeEvent is the INVOKE event of inv, appended rather than marshalled: it is made for
// every invocation of a function with extensions.
func invokeEvent(inv *invocation) []byte {
	b := make([]byte, 0, 192+len(inv.req.RequestID)+len(inv.req.InvokedFunctionARN)+len(inv.req.TraceID))
	b = append(b, `{"eventType":"INVOKE","deadlineMs":`...)
	b = strconv.AppendInt(b, inv.deadline.UnixMilli(), 10)
	b = append(b, `,"requestId":`...)
	b = appendJSONString(b, inv.req.RequestID)
	b = append(b, `,"invokedFunctionArn":`...)
	b = appendJSONString(b, inv.req.InvokedFunctionARN)
	b = append(b, `,"tracing":{"type":"X-Amzn-Trace-Id","value":`...)
	b = appendJSONString(b, inv.req.TraceID)
	return append(b, "}}"...)
}

// sendExtensionEvent answers an extension's event/next.
func (e *environment) sendExtensionEvent(c *runtimeConn, ev []byte) {
	c.wmu.Lock()
	b := c.head(c.wbuf[:0], http.StatusOK, len(ev))
	b = appendHeader(b, headerExtensionEventID, uuid.NewString())
	b = append(b, "\r\n"...)
	err := c.writeLocked(b, ev)
	c.wmu.Unlock()
	if err != nil {
		c.nc.Close()
	}
}

// failExtensionPolls answers every parked event/next when the environment is torn down.
func (e *environment) failExtensionPolls() {
	e.mu.Lock()
	var conns []*runtimeConn
	for _, x := range e.exts {
		if x.waiting != nil {
			conns = append(conns, x.waiting)
			x.waiting = nil
		}
	}
	e.mu.Unlock()
	for _, c := range conns {
		c.replyError(http.StatusInternalServerError, "Extension.Shutdown", "the execution environment is shutting down")
	}
}

// unparkExtension forgets c as an extension's parked poll once its connection closed.
func (e *environment) unparkExtension(c *runtimeConn) {
	e.mu.Lock()
	for _, x := range e.exts {
		if x.waiting == c {
			x.waiting = nil
		}
	}
	e.mu.Unlock()
}

// shutdownExtensions is the Shutdown phase, when the environment has extensions (none: it is
// simply killed, as on Lambda). External extensions registered for it get the SHUTDOWN event;
// once each has polled again or exited, the runtime gets SIGTERM; whatever still runs at the end
// of Lambda's budget (500 ms with internal extensions only, 2,000 ms with an external one) is
// killed by the destroy that follows. A frozen environment is thawed for it.
//
// The runtime is signalled last, not first as on Lambda: it is the environment's first process,
// whose end ends every other, and extensions need the time to flush what they hold.
func (e *environment) shutdownExtensions(why string) {
	external := len(e.external) > 0
	if !external && !e.hasExts.Load() {
		return
	}
	select {
	case <-e.inst.Exited():
		return // the runtime is gone, and every process of the environment with it
	default:
	}
	budget := internalShutdownBudget
	if external {
		budget = externalShutdownBudget
	}
	deadline := time.Now().Add(budget)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ev, _ := json.Marshal(map[string]any{"eventType": "SHUTDOWN", "shutdownReason": why, "deadlineMs": deadline.UnixMilli()})
	sd := &extShutdown{done: make(chan struct{})}
	var send []*runtimeConn
	e.mu.Lock()
	for _, x := range e.exts {
		if !x.shutdown || x.exited {
			continue
		}
		sd.left++
		x.shutdownSent = true
		send = x.hand(send, ev)
	}
	// A runtime still in its Init may not have its handlers yet (or be the container's own
	// init still): it is not signalled but killed.
	signal := e.started && e.runtimePolled
	e.extShutdown = sd
	if sd.left == 0 {
		close(sd.done)
	}
	e.mu.Unlock()
	e.freezeMu.Lock()
	if e.frozen {
		if err := e.inst.Thaw(ctx); err != nil {
			e.freezeMu.Unlock()
			return
		}
		e.frozen = false
	}
	e.freezeMu.Unlock()
	if t := e.tele.Load(); t != nil {
		// The extensions get what they subscribed to before their SHUTDOWN.
		fctx, fcancel := context.WithTimeout(ctx, budget/2)
		t.flush(fctx)
		fcancel()
	}
	for _, c := range send {
		e.sendExtensionEvent(c, ev)
	}
	select {
	case <-sd.done:
	case <-ctx.Done():
		e.cfg.logger.Debug("extensions did not finish their shutdown in time", "env", e.id, "budget", budget)
		return
	}
	if !signal {
		return
	}
	select {
	case <-e.inst.Exited():
		return
	default:
	}
	if err := e.inst.Signal(syscall.SIGTERM); err != nil {
		return
	}
	select {
	case <-e.inst.Exited():
	case <-ctx.Done():
		e.cfg.logger.Debug("the runtime did not end at SIGTERM in time", "env", e.id, "budget", budget)
	}
}

// Lambda's reasons for the end of an environment, in the SHUTDOWN event.
const (
	shutdownSpindown = "spindown"
	shutdownTimeout  = "timeout"
	shutdownFailure  = "failure"
)
