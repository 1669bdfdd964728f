// Package funclog stores each function's log (START/END/REPORT and the runtime's output) in an
// append-only file per function, and fans new lines out to followers (`gateway logs -f`).
package funclog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultMaxBytes is the size past which a log file is rotated to <name>.log.1.
const DefaultMaxBytes = 16 << 20

// FlushInterval is how long appended lines may wait in memory before they are written to the
// file. Writing on every Append would cost two write(2) calls per invocation on the invoke path;
// readers (Tail) flush first, and followers get lines at once, so only a crash of the agent can
// lose what the last interval appended.
const FlushInterval = 200 * time.Millisecond

// Store is the function log store. It is safe for concurrent use.
type Store struct {
	dir      string
	maxBytes int64
	logger   hclog.Logger

	mu        sync.Mutex
	files     map[string]*logFile
	followers map[string]map[chan string]struct{}
	closed    bool

	stop    chan struct{}
	stopped chan struct{}
}

type logFile struct {
	f     *os.File
	w     *bufio.Writer
	size  int64
	dirty bool // lines in w not yet written
}

// New opens a store in dir.
func New(dir string, logger hclog.Logger) (*Store, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating function log dir: %w", err)
	}
	s := &Store{dir: dir, maxBytes: DefaultMaxBytes, logger: logger.Named("funclog"),
		files: map[string]*logFile{}, followers: map[string]map[chan string]struct{}{},
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.flusher()
	return s, nil
}

// flusher writes buffered lines every FlushInterval until Close.
func (s *Store) flusher() {
	defer close(s.stopped)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			for name, lf := range s.files {
				if lf.dirty {
					s.flushLocked(name, lf)
				}
			}
			s.mu.Unlock()
		}
	}
}

func (s *Store) flushLocked(function string, lf *logFile) {
	lf.dirty = false
	if err := lf.w.Flush(); err != nil {
		s.logger.Error("writing function log", "function", function, "error", err)
	}
}

func (s *Store) path(function string) string { return filepath.Join(s.dir, function+".log") }

// Append writes lines to the function's log, each with a timestamp, and hands them to followers.
// A follower that does not keep up loses lines rather than slowing the invocation path.
func (s *Store) Append(function string, lines ...string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	lf, err := s.openLocked(function)
	if err != nil {
		s.logger.Error("writing function log", "function", function, "error", err)
		return
	}
	for _, l := range lines {
		rec := now + "\t" + l
		n, _ := lf.w.WriteString(rec + "\n")
		lf.size += int64(n)
		for ch := range s.followers[function] {
			select {
			case ch <- rec:
			default:
			}
		}
	}
	lf.dirty = true
	if lf.size > s.maxBytes {
		s.rotateLocked(function, lf)
	}
}

func (s *Store) openLocked(function string) (*logFile, error) {
	if lf, ok := s.files[function]; ok {
		return lf, nil
	}
	f, err := os.OpenFile(s.path(function), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, _ := f.Stat()
	lf := &logFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	if st != nil {
		lf.size = st.Size()
	}
	s.files[function] = lf
	return lf, nil
}

func (s *Store) rotateLocked(function string, lf *logFile) {
	s.flushLocked(function, lf)
	lf.f.Close()
	delete(s.files, function)
	if err := os.Rename(s.path(function), s.path(function)+".1"); err != nil {
		s.logger.Error("rotating function log", "function", function, "error", err)
	}
}

// Tail returns the last n lines of the function's log (n <= 0: none).
func (s *Store) Tail(function string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	if lf, ok := s.files[function]; ok && lf.dirty {
		s.flushLocked(function, lf)
	}
	s.mu.Unlock()
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

// Follow delivers the function's new lines until ctx ends.
func (s *Store) Follow(ctx context.Context, function string) <-chan string {
	ch := make(chan string, 1024)
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

// Remove deletes the function's log.
func (s *Store) Remove(function string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
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

// Close flushes and closes every file.
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
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, lf := range s.files {
		errs = append(errs, lf.w.Flush(), lf.f.Close())
		delete(s.files, name)
	}
	return errors.Join(errs...)
}
