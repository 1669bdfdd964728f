package sandbox

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxLineBytes splits runaway lines so one line cannot hold unbounded memory.
const maxLineBytes = 256 << 10

// streamWindow and streamBatch: output that wakes the reader again within streamWindow is read
// streamBatch later, in bulk.
const (
	streamWindow = 5 * time.Millisecond
	streamBatch  = 2 * time.Millisecond
)

// maxTailBytes bounds what an invocation keeps for its log tail (Lambda returns the last 4 KB).
const maxTailBytes = 64 << 10

// output reads the runtime's stdout and stderr from a pipe and writes each line to the
// function's log, attributed to the invocation in progress.
//
// Every read of the pipe happens under mu, in the reader goroutine or in drain, so when the
// runtime asks for its next event, drain sees every byte it wrote before asking: END follows the
// invocation's last line exactly, with no timing guess.
type output struct {
	env  *environment
	f    *os.File
	rc   syscall.RawConn
	done chan struct{}

	mu      sync.Mutex
	inv     *invocation
	partial []byte
	buf     []byte
	lines   []string // handleLocked's, reused
	eof     bool
	// extension: the external extensions' output (Telemetry API type "extension"), never
	// attributed to an invocation.
	extension bool
}

func newOutput(e *environment, f *os.File) *output {
	o := &output{env: e, f: f, done: make(chan struct{}), buf: make([]byte, 32<<10)}
	rc, err := f.SyscallConn()
	if err == nil {
		o.rc = rc
	}
	return o
}

// run reads until every writer has closed the pipe (the runtime exited and was reaped).
func (o *output) run() {
	defer close(o.done)
	defer o.f.Close()
	if o.rc == nil {
		return
	}
	var lastWake time.Time
	for {
		// The callback returns true when done (EOF); false makes Read wait for more data.
		err := o.rc.Read(func(fd uintptr) bool {
			// A runtime writing line after line (each a write(2)) would wake this reader for
			// every line, two system calls each, on the agent's CPU. Under a steady stream,
			// let the pipe fill a moment before reading: whole pipefuls, a few hundred wakes a
			// second at most. Nothing waits for this: END drains the pipe itself.
			if now := time.Now(); now.Sub(lastWake) < streamWindow {
				time.Sleep(streamBatch)
			}
			lastWake = time.Now()
			o.mu.Lock()
			defer o.mu.Unlock()
			return o.readLocked(int(fd))
		})
		o.mu.Lock()
		eof := o.eof
		o.mu.Unlock()
		if err != nil || eof {
			o.mu.Lock()
			o.flushPartialLocked()
			o.mu.Unlock()
			return
		}
	}
}

// readLocked reads what the pipe holds without blocking. It reports false once the pipe is
// empty (the poller should wait) and true at EOF or on an error.
func (o *output) readLocked(fd int) bool {
	for {
		n, err := unix.Read(fd, o.buf)
		if n > 0 {
			o.handleLocked(o.buf[:n])
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return false
		}
		o.eof = true
		return true
	}
}

// drain reads everything already in the pipe. Called when the runtime asks for its next event
// or exits, before END is logged.
func (o *output) drain() {
	if o.rc == nil {
		return
	}
	_ = o.rc.Control(func(fd uintptr) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if !o.eof {
			o.readLocked(int(fd))
		}
	})
}

func (o *output) handleLocked(b []byte) {
	// One Append per read, not per line: a runtime flooding its output costs the agent a lock
	// and a timestamp per 32 KB read instead of per line.
	lines := o.lines[:0]
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			o.partial = append(o.partial, b...)
			if len(o.partial) >= maxLineBytes {
				lines = append(lines, string(o.partial))
				o.partial = o.partial[:0]
			}
			break
		}
		if len(o.partial) > 0 {
			o.partial = append(o.partial, b[:i]...)
			lines = append(lines, string(o.partial))
			o.partial = o.partial[:0]
		} else {
			lines = append(lines, string(b[:i]))
		}
		b = b[i+1:]
	}
	if len(lines) > 0 {
		o.emitLocked(false, lines...)
	}
	clear(lines)
	o.lines = lines[:0]
}

func (o *output) flushPartialLocked() {
	if len(o.partial) > 0 {
		o.emitLocked(false, string(o.partial))
		o.partial = o.partial[:0]
	}
}

// emitLocked logs lines, the gateway's own when platform, and keeps them for the invocation's
// log tail.
func (o *output) emitLocked(platform bool, lines ...string) {
	if !platform {
		lines = o.env.logf.filter(lines)
		if len(lines) == 0 {
			return
		}
	}
	// The invocation's request id goes with each line (the extensions' output has none), so
	// the log can be read per invocation even when environments interleave.
	var id string
	if o.inv != nil && !o.extension {
		id = o.inv.req.RequestID
	}
	o.env.cfg.logs.Log(o.env.fn.Name, id, platform, lines)
	if !platform {
		if t := o.env.tele.Load(); t != nil {
			kind := kindFunction
			if o.extension {
				kind = kindExtension
			}
			t.lines(kind, time.Now(), lines)
		}
	}
	if inv := o.inv; inv != nil && inv.req.Tail {
		for _, l := range lines {
			inv.tail = append(inv.tail, l...)
			inv.tail = append(inv.tail, '\n')
		}
		if len(inv.tail) > maxTailBytes {
			inv.tail = append(inv.tail[:0:0], inv.tail[len(inv.tail)-maxTailBytes/2:]...)
		}
	}
}

// begin logs START (none when the system log level leaves it out) and attributes the
// following output to inv.
func (o *output) begin(inv *invocation, start ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushPartialLocked()
	o.inv = inv
	if len(start) > 0 {
		o.emitLocked(true, start...)
	}
}

// line logs one line of the gateway's own (a timeout message) inside the current invocation:
// in the JSON format an ERROR record.
func (o *output) line(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.env.logf.json {
		var id string
		if o.inv != nil {
			id = o.inv.req.RequestID
		}
		s = errorRecord(id, s)
	}
	o.emitLocked(true, s)
}

// end drains the runtime's output, then logs END and REPORT and stops attributing output to inv.
func (o *output) end(inv *invocation, lines ...string) {
	o.drain()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushPartialLocked()
	if len(lines) > 0 {
		o.emitLocked(true, lines...)
	}
	if o.inv == inv {
		o.inv = nil
	}
}

// wait returns once the reader has seen EOF (after the runtime's processes are gone).
func (o *output) wait() { <-o.done }
