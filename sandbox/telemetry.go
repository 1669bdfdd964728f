package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The Telemetry API 2022-07-01 (schemas 2022-07-01 and 2022-12-13) and the older Logs API
// 2020-08-15, at the Runtime API's address. An extension subscribes to platform events, the
// function's log lines and the extensions' log lines; each subscription buffers what it gets
// and delivers it to the extension's own listener inside the environment, as JSON arrays POSTed
// over HTTP or as lines over TCP. Delivery never holds the function up: a subscription holds a
// bounded queue, and what does not fit is dropped and counted in platform.logsDropped.
//
// Nothing of this costs a function without a subscriber: e.tele is nil after Init then, and
// every emitter looks at that pointer only.
const (
	telemetryPath = "/2022-07-01/telemetry"
	logsPath      = "/2020-08-15/logs"

	// Lambda's bounds and defaults for buffering.
	minBufItems, maxBufItems, defBufItems      = 1000, 10000, 10000
	minBufBytes, maxBufBytes, defBufBytes      = 256 << 10, 1 << 20, 256 << 10
	minBufTimeoutMs, maxBufTimeoutMs, defBufMs = 25, 30000, 1000

	// queueFactor: a subscription queues up to this many batches' worth before dropping.
	queueFactor = 4
	// backlogEvents and backlogBytes bound what is kept from Init for a subscription made
	// during it (the platform.initStart it could not have seen otherwise, the init's log).
	backlogEvents = 1000
	backlogBytes  = 256 << 10
)

// Kinds of telemetry a subscription asks for.
const (
	kindPlatform uint8 = 1 << iota
	kindFunction
	kindExtension
)

// teleEvent is one event before it is encoded for a subscription: a log line, or a platform
// event whose record depends on the API (nil: the API has no such event).
type teleEvent struct {
	kind uint8
	at   time.Time
	typ  string
	line string
	rec  func(logsAPI bool, schema string) any
}

func (ev *teleEvent) size() int { return len(ev.typ) + len(ev.line) + 64 }

// telemetry is an environment's subscriptions, and the Init backlog until Init ends.
type telemetry struct {
	e  *environment
	mu sync.Mutex
	// backlog keeps Init's events while initialising is set.
	initialising bool
	backlog      []teleEvent
	backlogSize  int
	subs         []*subscription
}

// subscription is one extension's, to either API.
type subscription struct {
	t       *telemetry
	name    string
	logsAPI bool
	schema  string
	kinds   uint8

	maxItems, maxBytes int
	timeout            time.Duration

	tcp    bool
	url    string // HTTP: the URL the extension gave; the connection goes to its port on loopback
	port   string
	client *http.Client
	conn   net.Conn // TCP: the connection to the extension, the sender's own

	mu           sync.Mutex
	q            [][]byte
	qBytes       int
	inFlight     bool
	dropped      int
	droppedBytes int
	wake         chan struct{}
	stop         chan struct{}
	idle         *sync.Cond // signalled when the queue empties and nothing is in flight
}

// startTelemetry begins the Init backlog (start calls it before anything of Init happens).
func (e *environment) startTelemetry() {
	e.tele.Store(&telemetry{e: e, initialising: true})
}

// endTelemetryBacklog ends the Init backlog; without a subscription the telemetry goes, and
// with it every cost of it.
func (e *environment) endTelemetryBacklog() {
	t := e.tele.Load()
	if t == nil {
		return
	}
	t.mu.Lock()
	t.initialising, t.backlog = false, nil
	empty := len(t.subs) == 0
	t.mu.Unlock()
	if empty {
		e.tele.CompareAndSwap(t, nil)
	}
}

// emit hands ev to every subscription that wants it, and keeps it for later ones during Init.
func (t *telemetry) emit(ev teleEvent) {
	t.mu.Lock()
	if t.initialising && len(t.backlog) < backlogEvents && t.backlogSize+ev.size() <= backlogBytes {
		t.backlog = append(t.backlog, ev)
		t.backlogSize += ev.size()
	}
	subs := t.subs
	t.mu.Unlock()
	for _, s := range subs {
		if s.kinds&ev.kind != 0 {
			if b := s.encode(&ev); b != nil {
				s.push(b)
			}
		}
	}
}

// lines emits log lines of one kind, read at the same time.
func (t *telemetry) lines(kind uint8, at time.Time, lines []string) {
	t.mu.Lock()
	if t.initialising {
		for _, l := range lines {
			ev := teleEvent{kind: kind, at: at, typ: kindName(kind), line: l}
			if len(t.backlog) < backlogEvents && t.backlogSize+ev.size() <= backlogBytes {
				t.backlog = append(t.backlog, ev)
				t.backlogSize += ev.size()
			}
		}
	}
	subs := t.subs
	t.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	var stamp [32]byte
	ts := at.UTC().AppendFormat(stamp[:0], timeLayout)
	for _, s := range subs {
		if s.kinds&kind == 0 {
			continue
		}
		for _, l := range lines {
			s.push(appendLineRecord(nil, ts, kindName(kind), l))
		}
	}
}

// platform emits a platform event now, when anyone may see it.
func (e *environment) platform(typ string, rec func(logsAPI bool, schema string) any) {
	if t := e.tele.Load(); t != nil {
		t.emit(teleEvent{kind: kindPlatform, at: time.Now(), typ: typ, rec: rec})
	}
}

func kindName(kind uint8) string {
	if kind == kindExtension {
		return "extension"
	}
	return "function"
}

const timeLayout = "2006-01-02T15:04:05.000Z"

// appendLineRecord appends {"time":ts,"type":typ,"record":line}, line as a JSON string.
func appendLineRecord(b, ts []byte, typ, line string) []byte {
	b = append(b, `{"time":"`...)
	b = append(b, ts...)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","record":`...)
	b = appendJSONString(b, line)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encode renders ev for s: nil when s's API has no such event.
func (s *subscription) encode(ev *teleEvent) []byte {
	var ts [32]byte
	stamp := ev.at.UTC().AppendFormat(ts[:0], timeLayout)
	if ev.rec == nil {
		return appendLineRecord(nil, stamp, ev.typ, ev.line)
	}
	rec := ev.rec(s.logsAPI, s.schema)
	if rec == nil {
		return nil
	}
	b, err := json.Marshal(struct {
		Time   string `json:"time"`
		Type   string `json:"type"`
		Record any    `json:"record"`
	}{string(stamp), ev.typ, rec})
	if err != nil {
		return nil
	}
	return b
}

// push queues one encoded event, or counts it dropped when the queue is full.
func (s *subscription) push(b []byte) {
	s.mu.Lock()
	if len(s.q) >= queueFactor*s.maxItems || s.qBytes+len(b) > queueFactor*s.maxBytes {
		s.dropped++
		s.droppedBytes += len(b)
		s.mu.Unlock()
		return
	}
	s.q = append(s.q, b)
	s.qBytes += len(b)
	full := len(s.q) == 1 || len(s.q) >= s.maxItems || s.qBytes >= s.maxBytes
	s.mu.Unlock()
	if full {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// run delivers batches until the environment ends: a batch goes once it holds maxItems or
// maxBytes, or timeoutMs after its first event. A failed delivery is retried, with backoff,
// while newer events queue (and are dropped once the queue is full).
func (s *subscription) run() {
	dead := s.t.e.dead
	// One context for every delivery: it ends with the subscription or the environment.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
		case <-dead:
		case <-ctx.Done():
		}
		cancel()
	}()
	defer func() {
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
		if s.conn != nil {
			s.conn.Close()
		}
	}()
	var timer *time.Timer
	var timerC <-chan time.Time
	backoff := 50 * time.Millisecond
	for {
		s.mu.Lock()
		n := len(s.q)
		ready := n >= s.maxItems || s.qBytes >= s.maxBytes
		s.mu.Unlock()
		if n > 0 && !ready && timerC == nil {
			timer = time.NewTimer(s.timeout)
			timerC = timer.C
		}
		if n == 0 || !ready {
			select {
			case <-s.wake:
				continue
			case <-timerC:
				timerC = nil
			case <-s.stop:
				return
			case <-dead:
				return
			}
		}
		if timer != nil {
			timer.Stop()
			timerC = nil
		}
		batch := s.take()
		if len(batch) == 0 {
			continue
		}
		if err := s.deliver(ctx, batch); err != nil {
			s.putBack(batch)
			select {
			case <-time.After(backoff):
			case <-s.stop:
				return
			case <-dead:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		s.mu.Lock()
		s.inFlight = false
		if len(s.q) == 0 {
			s.idle.Broadcast()
		}
		s.mu.Unlock()
	}
}

// take removes the next batch, with a platform.logsDropped event first when events were
// dropped since the last one.
func (s *subscription) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var batch [][]byte
	size := 0
	if s.dropped > 0 {
		rec := map[string]any{"reason": "Some logs were dropped because the extension did not keep up with them",
			"droppedRecords": s.dropped, "droppedBytes": s.droppedBytes}
		b, _ := json.Marshal(map[string]any{"time": time.Now().UTC().Format(timeLayout), "type": "platform.logsDropped", "record": rec})
		batch = append(batch, b)
		size += len(b)
		s.dropped, s.droppedBytes = 0, 0
	}
	i := 0
	for i < len(s.q) && len(batch) < s.maxItems && (len(batch) == 0 || size+len(s.q[i]) <= s.maxBytes) {
		batch = append(batch, s.q[i])
		size += len(s.q[i])
		s.qBytes -= len(s.q[i])
		i++
	}
	s.q = append(s.q[:0:0], s.q[i:]...)
	s.inFlight = len(batch) > 0
	return batch
}

// putBack returns a batch that could not be delivered to the head of the queue.
func (s *subscription) putBack(batch [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range batch {
		s.qBytes += len(b)
	}
	s.q = append(batch, s.q...)
	s.inFlight = false
}

// deliver sends one batch.
func (s *subscription) deliver(ctx context.Context, batch [][]byte) error {
	if s.tcp {
		if s.conn == nil {
			c, err := s.t.e.inst.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", s.port))
			if err != nil {
				return err
			}
			s.conn = c
		}
		c := s.conn
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		bufs := make(net.Buffers, 0, 2*len(batch))
		for _, b := range batch {
			bufs = append(bufs, b, []byte{'\n'})
		}
		if _, err := bufs.WriteTo(c); err != nil {
			c.Close()
			s.conn = nil
			return err
		}
		return nil
	}
	size := 2 + len(batch)
	for _, b := range batch {
		size += len(b)
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for i, b := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	body = append(body, ']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("the extension answered %s", resp.Status)
	}
	return nil
}

// flush waits, until ctx ends, for every subscription to have delivered what it holds: the
// extensions have their telemetry before their SHUTDOWN.
func (t *telemetry) flush(ctx context.Context) {
	t.mu.Lock()
	subs := t.subs
	t.mu.Unlock()
	for _, s := range subs {
		done := make(chan struct{})
		go func() {
			s.mu.Lock()
			for (len(s.q) > 0 || s.inFlight) && ctx.Err() == nil {
				s.idle.Wait()
			}
			s.mu.Unlock()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.mu.Lock()
			s.idle.Broadcast() // the waiter sees ctx ended and leaves
			s.mu.Unlock()
			return
		}
	}
}

// subscribe serves PUT /2022-07-01/telemetry and PUT /2020-08-15/logs.
func (e *environment) subscribe(c *runtimeConn, req *http.Request, logsAPI bool) {
	if req.Method != http.MethodPut {
		c.replyError(http.StatusMethodNotAllowed, "InvalidRequest", fmt.Sprintf("%s %s: use PUT", req.Method, req.URL.Path))
		return
	}
	id := req.Header.Get(headerExtensionID)
	e.mu.Lock()
	x := e.extByID[id]
	e.mu.Unlock()
	switch {
	case id == "":
		c.replyError(http.StatusForbidden, "Extension.MissingHeader", "the "+headerExtensionID+" header is required")
		return
	case x == nil:
		c.replyError(http.StatusForbidden, "Extension.UnknownExtensionIdentifier", fmt.Sprintf("no extension is registered as %q", id))
		return
	}
	body, err := readBody(req, maxExtensionRequestBody)
	if err != nil {
		c.replyError(http.StatusBadRequest, "ValidationError", "reading the subscription: "+err.Error())
		return
	}
	s, err := e.parseSubscription(body, logsAPI)
	if err != nil {
		c.replyError(http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	s.name = x.name
	t := e.tele.Load()
	if t == nil {
		t = &telemetry{e: e}
		if !e.tele.CompareAndSwap(nil, t) {
			t = e.tele.Load()
		}
	}
	t.mu.Lock()
	subs := make([]*subscription, 0, len(t.subs)+1)
	for _, o := range t.subs {
		if o.name == s.name {
			close(o.stop) // a new subscription replaces the extension's earlier one
			continue
		}
		subs = append(subs, o)
	}
	t.subs = append(subs, s)
	backlog := t.backlog
	t.mu.Unlock()
	s.t = t
	for i := range backlog {
		if s.kinds&backlog[i].kind != 0 {
			if b := s.encode(&backlog[i]); b != nil {
				s.push(b)
			}
		}
	}
	go s.run()
	types := s.typeNames()
	if logsAPI {
		e.platform("platform.logsSubscription", func(logs bool, _ string) any {
			return map[string]any{"name": x.name, "state": "Subscribed", "types": types}
		})
	} else {
		e.platform("platform.telemetrySubscription", func(logs bool, _ string) any {
			if logs {
				return nil
			}
			return map[string]any{"name": x.name, "state": "Subscribed", "types": types}
		})
	}
	c.reply(http.StatusOK, []byte(`"OK"`))
}

func (s *subscription) typeNames() []string {
	var out []string
	for _, k := range []struct {
		bit  uint8
		name string
	}{{kindPlatform, "platform"}, {kindFunction, "function"}, {kindExtension, "extension"}} {
		if s.kinds&k.bit != 0 {
			out = append(out, k.name)
		}
	}
	return out
}

// parseSubscription checks a subscription's request against Lambda's rules.
func (e *environment) parseSubscription(body []byte, logsAPI bool) (*subscription, error) {
	var in struct {
		SchemaVersion string   `json:"schemaVersion"`
		Types         []string `json:"types"`
		Buffering     *struct {
			MaxItems  *int `json:"maxItems"`
			MaxBytes  *int `json:"maxBytes"`
			TimeoutMs *int `json:"timeoutMs"`
		} `json:"buffering"`
		Destination struct {
			Protocol string `json:"protocol"`
			URI      string `json:"URI"`
			Port     int    `json:"port"`
		} `json:"destination"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("the subscription is not JSON {\"types\", \"buffering\", \"destination\"}: %v", err)
	}
	s := &subscription{logsAPI: logsAPI, schema: in.SchemaVersion, maxItems: defBufItems, maxBytes: defBufBytes,
		timeout: defBufMs * time.Millisecond, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	s.idle = sync.NewCond(&s.mu)
	if !logsAPI {
		switch in.SchemaVersion {
		case "2022-07-01", "2022-12-13":
		default:
			return nil, fmt.Errorf("schemaVersion %q is not one this API serves (2022-07-01, 2022-12-13)", in.SchemaVersion)
		}
	}
	if len(in.Types) == 0 {
		return nil, fmt.Errorf("types must name at least one of platform, function, extension")
	}
	for _, ty := range in.Types {
		switch ty {
		case "platform":
			s.kinds |= kindPlatform
		case "function":
			s.kinds |= kindFunction
		case "extension":
			s.kinds |= kindExtension
		default:
			return nil, fmt.Errorf("%q is not a telemetry type (platform, function, extension)", ty)
		}
	}
	if b := in.Buffering; b != nil {
		check := func(v *int, lo, hi int, name string, dst *int) error {
			if v == nil {
				return nil
			}
			if *v < lo || *v > hi {
				return fmt.Errorf("buffering.%s %d is outside %d to %d", name, *v, lo, hi)
			}
			*dst = *v
			return nil
		}
		ms := defBufMs
		for _, err := range []error{
			check(b.MaxItems, minBufItems, maxBufItems, "maxItems", &s.maxItems),
			check(b.MaxBytes, minBufBytes, maxBufBytes, "maxBytes", &s.maxBytes),
			check(b.TimeoutMs, minBufTimeoutMs, maxBufTimeoutMs, "timeoutMs", &ms),
		} {
			if err != nil {
				return nil, err
			}
		}
		s.timeout = time.Duration(ms) * time.Millisecond
	}
	_, apiPort, _ := net.SplitHostPort(e.inst.RuntimeAPIAddr())
	portOK := func(p string) error {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("destination port %q is not a port", p)
		}
		if p == apiPort {
			return fmt.Errorf("destination port %s is the Runtime API's", p)
		}
		return nil
	}
	switch in.Destination.Protocol {
	case "HTTP":
		u, err := url.Parse(in.Destination.URI)
		if err != nil || u.Scheme != "http" || u.User != nil {
			return nil, fmt.Errorf("destination.URI %q is not an http:// URL", in.Destination.URI)
		}
		switch u.Hostname() {
		case "sandbox.localdomain", "sandbox", "localhost", "127.0.0.1":
		default:
			return nil, fmt.Errorf("destination.URI %q: an extension listens at sandbox.localdomain, inside the environment", in.Destination.URI)
		}
		if err := portOK(u.Port()); err != nil {
			return nil, err
		}
		s.url, s.port = u.String(), u.Port()
		port := s.port
		inst := e.inst
		s.client = &http.Client{Transport: &http.Transport{
			// Whatever the URL names, the connection is made inside the environment, to its port.
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return inst.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
			},
			Proxy:               nil,
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
		}}
	case "TCP":
		if err := portOK(strconv.Itoa(in.Destination.Port)); err != nil {
			return nil, err
		}
		s.tcp, s.port = true, strconv.Itoa(in.Destination.Port)
	default:
		return nil, fmt.Errorf("destination.protocol %q is not HTTP or TCP", in.Destination.Protocol)
	}
	return s, nil
}
