// Package funclog stores each function's log (the gateway's own INIT_START/START/END/REPORT
// lines and the runtime's output) in an append-only file per function, and fans new lines out to
// followers (`gateway logs -f`).
//
// Appending never waits for the disk: lines go to a bounded queue per function that one writer
// drains. A function that writes faster than the disk takes loses its excess lines (counted, and
// noted in its log when lines flow again), never another function's lines or time; the gateway's
// own lines are never dropped. A failing disk (full, read-only) loses lines while it fails and
// logging resumes by itself when writes succeed again.
package funclog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultMaxBytes is the size past which a log file is rotated to <name>.log.1.
const DefaultMaxBytes = 16 << 20

// DefaultQueueBytes bounds what one function's log may hold in memory waiting for the disk.
const DefaultQueueBytes = 1 << 20

// FlushInterval is how long appended lines may wait in memory before they are written to the
// file. Writing on every Append would cost a write(2) per line on the invoke path; readers
// (Tail) flush first, and followers get lines at once, so only a crash of the agent can lose
// what the last interval appended. A queue filling up wakes the writer sooner.
const FlushInterval = 200 * time.Millisecond

// validName is a function name as the gateway accepts it ([a-zA-Z0-9_-]{1,64}): nothing else
// becomes a path. (A loop, not a regexp: it runs for every batch of lines.)
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ErrInvalidName is returned for a function name that is not one.
var ErrInvalidName = errors.New("not a function name")

// Store is the function log store. It is safe for concurrent use.
type Store struct {
	dir        string
	maxBytes   int64
	queueBytes int
	logger     hclog.Logger

	// Lock order: wmu, then mu. Append takes mu only, so it never waits for a write.
	mu        sync.Mutex
	queues    map[string]*queue
	followers map[string]map[chan string]struct{}
	closed    bool

	wmu   sync.Mutex // the files, the order lines reach them, and wbuf
	files map[string]*logFile
	wbuf  []byte // a write's bytes, kept between writes

	dropped atomic.Int64 // lines refused because a queue was full
	lost    atomic.Int64 // lines a write error lost

	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// queue is one function's lines waiting for the writer.
type queue struct {
	recs    []string
	bytes   int
	dropped int // lines refused since the last note in the log
	// unreported lines were refused since the agent's log last said so, at lastReport.
	unreported int
	lastReport time.Time
}

// reportEvery spaces the agent's warnings about one function's dropped lines.
const reportEvery = 10 * time.Second

type logFile struct {
	f       *os.File
	size    int64
	failing error // the write error being reported, until a write succeeds
	lost    int   // lines lost to it
}

// New opens a store in dir.
func New(dir string, logger hclog.Logger) (*Store, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating function log dir: %w", err)
	}
	s := &Store{dir: dir, maxBytes: DefaultMaxBytes, queueBytes: DefaultQueueBytes, logger: logger.Named("funclog"),
		queues: map[string]*queue{}, followers: map[string]map[chan string]struct{}{}, files: map[string]*logFile{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.writer()
	return s, nil
}

// Dropped is how many lines were refused because a function wrote faster than its log took
// them, and Lost how many a failing disk lost, since the store opened.
func (s *Store) Dropped() int64 { return s.dropped.Load() }

// Lost is how many lines write errors lost since the store opened.
func (s *Store) Lost() int64 { return s.lost.Load() }

// Append logs lines the function's runtime wrote outside any invocation. Past the function's
// queue bound they are dropped and counted.
func (s *Store) Append(function string, lines ...string) { s.Log(function, "", false, lines) }

// Platform logs the gateway's own lines for the function outside any invocation.
func (s *Store) Platform(function string, lines ...string) { s.Log(function, "", true, lines) }

// Log logs lines of the function, attributed to the invocation requestID ("" for none): the
// gateway's own when platform (INIT_START, START, END, REPORT, a timeout), never dropped so a
// flood cannot hide an invocation's end; else the runtime's output, dropped (and counted) past
// the function's queue bound. Each line is stored as a record (see Record).
func (s *Store) Log(function, requestID string, platform bool, lines []string) {
	if !validName(function) {
		s.logger.Error("refused log lines of an invalid function name", "function", fmt.Sprintf("%.80q", function))
		return
	}
	kind := " f "
	if platform {
		kind = " p "
	}
	// The record's head: time, kind and request id, before the tab that starts the line (built
	// in one buffer on the stack: this runs for every START, batch of output and END/REPORT).
	var hb [128]byte
	h := time.Now().UTC().AppendFormat(hb[:0], time.RFC3339Nano)
	h = append(append(append(h, kind...), recordID(requestID)...), '\t')
	now := string(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	q := s.queues[function]
	if q == nil {
		q = &queue{}
		s.queues[function] = q
	}
	for _, l := range lines {
		if !platform && q.bytes+len(now)+len(l)+1 > s.queueBytes {
			q.dropped++
			q.unreported++
			s.dropped.Add(1)
			continue
		}
		if q.dropped > 0 {
			s.pushLocked(function, q, fmt.Sprintf("%s g -\t[gateway] %d log lines dropped: the function wrote faster than its log could take them", time.Now().UTC().Format(time.RFC3339Nano), q.dropped))
			q.dropped = 0
		}
		s.pushLocked(function, q, now+l)
	}
	if q.bytes > s.queueBytes/4 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Store) pushLocked(function string, q *queue, rec string) {
	q.recs = append(q.recs, rec)
	q.bytes += len(rec) + 1
	// A follower that does not keep up loses lines rather than slowing the invocation path.
	for ch := range s.followers[function] {
		select {
		case ch <- rec:
		default:
		}
	}
}

// writer writes queued lines every FlushInterval, or sooner when a queue fills, until Close.
func (s *Store) writer() {
	defer close(s.stopped)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.wake:
		}
		s.flush("")
	}
}

// flush writes the queued lines of function, or of every function when it is empty.
func (s *Store) flush(function string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	pending := map[string][]string{}
	reports := map[string]int{}
	now := time.Now()
	for name, q := range s.queues {
		if (function == "" || name == function) && len(q.recs) > 0 {
			pending[name] = q.recs
			q.recs, q.bytes = nil, 0
		}
		if q.unreported > 0 && now.Sub(q.lastReport) >= reportEvery {
			reports[name] = q.unreported
			q.unreported, q.lastReport = 0, now
		}
	}
	s.mu.Unlock()
	for name, n := range reports {
		s.logger.Warn("a function writes faster than its log takes: lines dropped", "function", name, "lines", n)
	}
	for name, recs := range pending {
		s.writeLocked(name, recs)
	}
}

// writeLocked appends recs to the function's file in one write. On an error nothing of them is
// kept (the file is cut back to its size before, so no half line stays) and the next success
// notes how many lines were lost.
func (s *Store) writeLocked(function string, recs []string) {
	lf, err := s.openLocked(function)
	if err != nil {
		s.failedLocked(function, &logFile{}, err, len(recs))
		return
	}
	b := s.wbuf[:0]
	if lf.failing != nil {
		b = fmt.Appendf(b, "%s g -\t[gateway] %d log lines lost while writing failed: %v\n", time.Now().UTC().Format(time.RFC3339Nano), lf.lost, lf.failing)
	}
	for _, r := range recs {
		b = append(b, r...)
		b = append(b, '\n')
	}
	if cap(b) <= 1<<20 { // a flood's buffer is not kept
		s.wbuf = b[:0]
	}
	n, err := lf.f.Write(b)
	if err != nil {
		_ = lf.f.Truncate(lf.size)
		s.failedLocked(function, lf, err, len(recs))
		return
	}
	if lf.failing != nil {
		s.logger.Info("function log writes succeed again", "function", function, "lines_lost", lf.lost)
		lf.failing, lf.lost = nil, 0
	}
	lf.size += int64(n)
	if lf.size > s.maxBytes {
		s.rotateLocked(function, lf)
	}
}

func (s *Store) failedLocked(function string, lf *logFile, err error, lines int) {
	s.lost.Add(int64(lines))
	if lf.failing == nil {
		s.logger.Error("writing function log failed: its lines are lost until writes succeed again", "function", function, "error", err)
	}
	lf.failing = err
	lf.lost += lines
}

func (s *Store) path(function string) string { return filepath.Join(s.dir, function+".log") }

func (s *Store) openLocked(function string) (*logFile, error) {
	if lf, ok := s.files[function]; ok {
		return lf, nil
	}
	f, err := os.OpenFile(s.path(function), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, _ := f.Stat()
	lf := &logFile{f: f}
	if st != nil {
		lf.size = st.Size()
	}
	s.files[function] = lf
	return lf, nil
}

func (s *Store) rotateLocked(function string, lf *logFile) {
	lf.f.Close()
	delete(s.files, function)
	if err := os.Rename(s.path(function), s.path(function)+".1"); err != nil {
		s.logger.Error("rotating function log", "function", function, "error", err)
	}
}

// Tail returns the last n lines of the function's log (n <= 0: none).
func (s *Store) Tail(function string, n int) ([]string, error) {
	if !validName(function) {
		return nil, fmt.Errorf("%q: %w", function, ErrInvalidName)
	}
	if n <= 0 {
		return nil, nil
	}
	s.flush(function)
	f, err := os.Open(s.path(function))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// Read backwards in chunks until n lines are found, never the whole file at once.
	const chunk = 64 << 10
	var buf []byte
	off := st.Size()
	for off > 0 && strings.Count(string(buf), "\n") <= n {
		step := int64(chunk)
		if off < step {
			step = off
		}
		off -= step
		b := make([]byte, step)
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return nil, err
		}
		buf = append(b, buf...)
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if off > 0 && len(lines) > 0 {
		lines = lines[1:] // the first one may be cut
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return nil, nil
	}
	return lines, nil
}

// Follow delivers the function's new lines until ctx ends (none for an invalid name).
func (s *Store) Follow(ctx context.Context, function string) <-chan string {
	ch := make(chan string, 1024)
	if !validName(function) {
		close(ch)
		return ch
	}
	s.mu.Lock()
	if s.followers[function] == nil {
		s.followers[function] = map[chan string]struct{}{}
	}
	s.followers[function][ch] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		delete(s.followers[function], ch)
		s.mu.Unlock()
		close(ch)
	}()
	return ch
}

// Remove deletes the function's log, and the lines still waiting for it.
func (s *Store) Remove(function string) error {
	if !validName(function) {
		return fmt.Errorf("%q: %w", function, ErrInvalidName)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	delete(s.queues, function)
	s.mu.Unlock()
	if lf, ok := s.files[function]; ok {
		lf.f.Close()
		delete(s.files, function)
	}
	for _, p := range []string{s.path(function), s.path(function) + ".1"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Close writes what is queued and closes every file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.stopped
	s.flush("")
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var errs []error
	for name, lf := range s.files {
		errs = append(errs, lf.f.Close())
		delete(s.files, name)
	}
	return errors.Join(errs...)
}
