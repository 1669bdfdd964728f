package main

// The journal of a webhook mapping: the records the store pushed that are not delivered yet,
// on disk before the store is answered, removed once delivered.
//
// The file is JSON lines, each {"add": {"id", "received", "record"}} or {"done": [ids]}, appended
// and fsynced. Opening it replays the lines: what was added and not done is pending, in order. An
// unterminated last line (a write cut short by a crash) is cut off; a line that cannot be read
// otherwise is skipped. When nothing is pending the file is emptied, and when done lines pile up
// it is rewritten with the pending entries alone (written aside, fsynced, renamed over).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// compactAfter is how many done lines the journal gathers before it is rewritten.
const compactAfter = 1024

// entry is a record in the journal.
type entry struct {
	ID       uint64          `json:"id"`
	Received time.Time       `json:"received"`
	Record   json.RawMessage `json:"record"`
}

type journalLine struct {
	Add  *entry   `json:"add,omitempty"`
	Done []uint64 `json:"done,omitempty"`
}

// journal is one mapping's journal. Its methods are safe for concurrent use.
type journal struct {
	mu        sync.Mutex
	path      string
	f         *os.File
	size      int64
	next      uint64
	pending   []*entry
	doneLines int
	// skipped counts the unreadable lines met when it was opened.
	skipped int
}

// openJournal opens (or creates) the journal at path and replays it.
func openJournal(path string) (*journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the journal's folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the journal: %w", err)
	}
	j := &journal{path: path, f: f, next: 1}
	if err := j.replay(); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

func (j *journal) replay() error {
	r := bufio.NewReader(j.f)
	index := map[uint64]int{} // id -> position in j.pending (-1 once done)
	var good int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A last line without its newline was cut short: drop it.
			break
		}
		if err != nil {
			return fmt.Errorf("reading the journal: %w", err)
		}
		good += int64(len(line))
		var l journalLine
		if json.Unmarshal(bytes.TrimSpace(line), &l) != nil {
			j.skipped++
			continue
		}
		switch {
		case l.Add != nil:
			if l.Add.ID >= j.next {
				j.next = l.Add.ID + 1
			}
			if _, seen := index[l.Add.ID]; !seen {
				index[l.Add.ID] = len(j.pending)
				j.pending = append(j.pending, l.Add)
			}
		case l.Done != nil:
			j.doneLines++
			for _, id := range l.Done {
				if i, ok := index[id]; ok && i >= 0 {
					j.pending[i] = nil
					index[id] = -1
				}
			}
		}
	}
	kept := j.pending[:0]
	for _, e := range j.pending {
		if e != nil {
			kept = append(kept, e)
		}
	}
	j.pending = kept
	if err := j.f.Truncate(good); err != nil {
		return fmt.Errorf("cutting the journal's torn tail: %w", err)
	}
	if _, err := j.f.Seek(good, io.SeekStart); err != nil {
		return err
	}
	j.size = good
	return nil
}

// append adds records, received at t, and returns once they are on disk.
func (j *journal) append(records []json.RawMessage, t time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("the journal is closed")
	}
	var buf bytes.Buffer
	added := make([]*entry, 0, len(records))
	for _, rec := range records {
		e := &entry{ID: j.next + uint64(len(added)), Received: t, Record: rec}
		b, err := json.Marshal(journalLine{Add: e})
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		added = append(added, e)
	}
	if err := j.write(buf.Bytes()); err != nil {
		return err
	}
	j.next += uint64(len(added))
	j.pending = append(j.pending, added...)
	return nil
}

// write appends b and fsyncs; on failure it cuts the file back to where it was.
func (j *journal) write(b []byte) error {
	if _, err := j.f.Write(b); err != nil {
		j.rewind()
		return fmt.Errorf("writing the journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		j.rewind()
		return fmt.Errorf("syncing the journal: %w", err)
	}
	j.size += int64(len(b))
	return nil
}

func (j *journal) rewind() {
	_ = j.f.Truncate(j.size)
	_, _ = j.f.Seek(j.size, io.SeekStart)
}

// peek returns up to n of the oldest pending entries.
func (j *journal) peek(n int) []*entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	if n > len(j.pending) {
		n = len(j.pending)
	}
	return append([]*entry(nil), j.pending[:n]...)
}

// len is the number of pending entries.
func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// done removes delivered entries.
func (j *journal) done(ids []uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("the journal is closed")
	}
	gone := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	kept := j.pending[:0]
	for _, e := range j.pending {
		if !gone[e.ID] {
			kept = append(kept, e)
		}
	}
	clear(j.pending[len(kept):])
	j.pending = kept
	switch {
	case len(j.pending) == 0:
		// Nothing left: start the file afresh (the ids go on growing).
		if err := j.f.Truncate(0); err != nil {
			return fmt.Errorf("emptying the journal: %w", err)
		}
		if _, err := j.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		j.size, j.doneLines = 0, 0
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("syncing the journal: %w", err)
		}
		return nil
	case j.doneLines >= compactAfter:
		return j.compact()
	}
	b, err := json.Marshal(journalLine{Done: ids})
	if err != nil {
		return err
	}
	if err := j.write(append(b, '\n')); err != nil {
		return err
	}
	j.doneLines++
	return nil
}

// compact rewrites the journal with the pending entries alone.
func (j *journal) compact() error {
	tmp := j.path + ".tmp"
	var buf bytes.Buffer
	for _, e := range j.pending {
		b, err := json.Marshal(journalLine{Add: e})
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("compacting the journal: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("compacting the journal: %w", err)
	}
	if err := renameSync(tmp, j.path); err != nil {
		f.Close()
		return fmt.Errorf("compacting the journal: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return err
	}
	j.f.Close()
	j.f, j.size, j.doneLines = f, int64(buf.Len()), 0
	return nil
}

// close closes the file; the journal stays on disk for the next open.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// writeFileSync writes a file and fsyncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// renameSync renames and fsyncs the folder, so the rename survives a crash.
func renameSync(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeFileAtomic replaces path with b: written aside, fsynced, renamed over.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return err
	}
	return renameSync(tmp, path)
}
