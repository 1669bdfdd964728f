package codestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Defaults of the collection's interval and grace (the agent's code_gc block).
const (
	DefaultGCInterval = time.Minute
	DefaultGCGrace    = time.Hour
)

// Collect is one collection: it deletes the zip and tree of every hash on disk that is not in
// keep and has been unreferenced, unwritten and unused for grace, and returns those hashes.
func (s *Store) Collect(keep []string, grace time.Duration) ([]string, error) {
	kept := make(map[string]bool, len(keep))
	for _, sha := range keep {
		kept[sha] = true
	}
	onDisk := map[string]bool{}
	for _, sub := range []string{"blobs", "unpacked"} {
		entries, err := os.ReadDir(filepath.Join(s.dir, sub))
		if err != nil {
			return nil, fmt.Errorf("listing the code store's %s: %w", sub, err)
		}
		for _, e := range entries {
			if shaRE.MatchString(e.Name()) {
				onDisk[e.Name()] = true
			}
		}
	}
	now := s.now()
	var due []string
	s.mu.Lock()
	for sha := range s.unreferenced {
		if !onDisk[sha] || kept[sha] {
			delete(s.unreferenced, sha)
		}
	}
	for sha := range onDisk {
		if kept[sha] {
			continue
		}
		first, seen := s.unreferenced[sha]
		if !seen {
			s.unreferenced[sha] = now
			continue
		}
		if now.Sub(first) >= grace {
			due = append(due, sha)
		}
	}
	s.mu.Unlock()
	sort.Strings(due)
	var removed []string
	var errs []error
	for _, sha := range due {
		ok, err := s.collect(sha, now, grace)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, sha)
		}
	}
	return removed, errors.Join(errs...)
}

// collect deletes the zip and tree of sha unless it was written or handed out within grace,
// or is being unpacked.
func (s *Store) collect(sha string, now time.Time, grace time.Duration) (bool, error) {
	blob, tree := s.blobPath(sha), filepath.Join(s.dir, "unpacked", sha)
	s.mu.Lock()
	if _, busy := s.unpacking[sha]; busy || now.Sub(s.lastUsed[sha]) < grace {
		s.mu.Unlock()
		return false, nil
	}
	var size int64
	for _, p := range []string{blob, tree} {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			s.mu.Unlock()
			return false, fmt.Errorf("collecting code %s: %w", sha, err)
		}
		if now.Sub(st.ModTime()) < grace {
			s.mu.Unlock()
			return false, nil
		}
		if p == blob {
			size = st.Size()
		}
	}
	// The tree moves to tmp/ at once and is emptied after the lock is released (tmp/ is swept
	// at the next start should that be interrupted).
	trash, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "gc-")
	if err == nil {
		if err = os.Rename(tree, filepath.Join(trash, sha)); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	if err == nil {
		if err = os.Remove(blob); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	if err == nil {
		delete(s.unreferenced, sha)
		delete(s.lastUsed, sha)
	}
	s.mu.Unlock()
	if trash != "" {
		_ = makeWritable(trash)
		if rerr := os.RemoveAll(trash); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return false, fmt.Errorf("deleting code %s: %w", sha, err)
	}
	s.logger.Info("deleted code no function or version runs", "sha256", sha, "zip_bytes", size)
	return true, nil
}
