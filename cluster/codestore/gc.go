package codestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Defaults of GCConfig.
const (
	DefaultGCInterval = time.Minute
	DefaultGCGrace    = time.Hour
)

// GCConfig configures RunGC.
type GCConfig struct {
	// Interval is the time between two collections (DefaultGCInterval when 0).
	Interval time.Duration
	// Grace is how long code stays after nothing references it, counted from the latest of:
	// the first collection that found it unreferenced, its last write (Put, Reuse) and the last
	// time Unpacked handed its tree out (DefaultGCGrace when 0). A zip is stored before the
	// Raft entry naming it is committed: the grace must be longer than that takes.
	Grace time.Duration
	// Keep returns the hashes of the code the node must keep: what the replicated state
	// references and what its environments run. An error skips the collection: the node may
	// not know the cluster's state (no leader, or behind it).
	Keep func(ctx context.Context) ([]string, error)
}

// RunGC deletes, every Interval until ctx ends, the zips and unpacked trees that Keep has not
// listed for the grace period.
func (s *Store) RunGC(ctx context.Context, cfg GCConfig) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultGCInterval
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGCGrace
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		kctx, cancel := context.WithTimeout(ctx, cfg.Interval)
		keep, err := cfg.Keep(kctx)
		cancel()
		if err != nil {
			s.logger.Debug("not collecting unreferenced code this time", "reason", err)
			continue
		}
		if _, err := s.Collect(keep, cfg.Grace); err != nil {
			s.logger.Warn("collecting unreferenced code", "error", err)
		}
	}
}

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
