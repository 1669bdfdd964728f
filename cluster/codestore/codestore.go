// Package codestore keeps function code on the node's disk, addressed by the SHA-256 of the zip:
// blobs/<sha> holds the zip, unpacked/<sha>/ the tree environments mount read-only at /var/task.
// The replicated log carries only the hash. Code nothing references any more is deleted after a
// grace period (Collect).
package codestore

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/internal/unpack"
)

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ErrNotFound is returned for a hash the store does not hold.
var ErrNotFound = errors.New("code not found")

// Store is a node's code store.
type Store struct {
	dir    string
	logger hclog.Logger

	// mu also orders the collector's check and removal of a hash against Put, Reuse and
	// Unpacked of it, so it never removes code one of them just stored or handed out.
	mu        sync.Mutex
	unpacking map[string]*unpackCall
	// fetch, when set, brings a blob the store lacks from elsewhere (a peer node).
	fetch Fetcher
	// unreferenced is when the collector first found each hash on disk unreferenced (since
	// then without a break); lastUsed when Unpacked last handed out each tree.
	unreferenced map[string]time.Time
	lastUsed     map[string]time.Time
	now          func() time.Time // time.Now; tests move it
}

// Fetcher opens the zip of a hash held elsewhere; ErrNotFound when nobody has it.
type Fetcher func(ctx context.Context, sha string) (io.ReadCloser, error)

// fetchTimeout bounds fetching one blob from a peer.
const fetchTimeout = 5 * time.Minute

// SetFetcher lets the store fetch blobs it lacks (from the cluster's other nodes) when code is
// needed. What is fetched is stored only once its hash is verified.
func (s *Store) SetFetcher(f Fetcher) {
	s.mu.Lock()
	s.fetch = f
	s.mu.Unlock()
}

type unpackCall struct {
	done chan struct{}
	dir  string
	err  error
}

// New opens (or creates) a store in dir and removes temporary files of an interrupted run.
func New(dir string, logger hclog.Logger) (*Store, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	for _, d := range []string{"blobs", "unpacked", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("creating code store: %w", err)
		}
	}
	tmp := filepath.Join(dir, "tmp")
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		p := filepath.Join(tmp, e.Name())
		_ = makeWritable(p)
		_ = os.RemoveAll(p)
	}
	return &Store{dir: dir, logger: logger.Named("codestore"), unpacking: map[string]*unpackCall{},
		unreferenced: map[string]time.Time{}, lastUsed: map[string]time.Time{}, now: time.Now}, nil
}

func checkSHA(sha string) error {
	if !shaRE.MatchString(sha) {
		return fmt.Errorf("%q is not a hex SHA-256", sha)
	}
	return nil
}

func (s *Store) blobPath(sha string) string { return filepath.Join(s.dir, "blobs", sha) }

// Put stores a zip read from r (at most maxBytes) and returns its hash and size. Storing the same
// content twice is harmless.
func (s *Store) Put(ctx context.Context, r io.Reader, maxBytes int64) (string, int64, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-")
	if err != nil {
		return "", 0, fmt.Errorf("creating temporary blob: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, maxBytes+1))
	if err != nil {
		return "", 0, fmt.Errorf("writing blob: %w", err)
	}
	if n > maxBytes {
		return "", 0, fmt.Errorf("code is larger than %d bytes", maxBytes)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("syncing blob: %w", err)
	}
	sha := hex.EncodeToString(h.Sum(nil))
	// The blob's mtime, on the store's clock, restarts its grace period: a write referring to
	// it follows.
	now := s.now()
	if err := os.Chtimes(f.Name(), now, now); err != nil {
		return "", 0, fmt.Errorf("storing blob: %w", err)
	}
	s.mu.Lock()
	err = os.Rename(f.Name(), s.blobPath(sha))
	s.mu.Unlock()
	if err != nil {
		return "", 0, fmt.Errorf("storing blob: %w", err)
	}
	return sha, n, nil
}

// Reuse returns the size of the zip of sha, and whether the store has it, for a write that
// refers to code by hash instead of uploading it: like Put, it restarts the blob's grace period,
// so the collector does not delete it before that write is committed.
func (s *Store) Reuse(sha string) (int64, bool) {
	if checkSHA(sha) != nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.blobPath(sha)
	st, err := os.Stat(p)
	if err != nil {
		return 0, false
	}
	now := s.now()
	if err := os.Chtimes(p, now, now); err != nil {
		s.logger.Warn("cannot restart the grace period of reused code", "sha256", sha, "error", err)
		return 0, false
	}
	return st.Size(), true
}

// Has reports whether the store holds sha.
func (s *Store) Has(sha string) bool {
	if checkSHA(sha) != nil {
		return false
	}
	_, err := os.Stat(s.blobPath(sha))
	return err == nil
}

// Open opens the zip of sha.
func (s *Store) Open(sha string) (*os.File, error) {
	if err := checkSHA(sha); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(sha))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", sha, ErrNotFound)
	}
	return f, err
}

// fetchBlob brings the blob of sha through the fetcher and stores it if its content has that hash.
func (s *Store) fetchBlob(sha string) error {
	s.mu.Lock()
	fetch := s.fetch
	s.mu.Unlock()
	if fetch == nil {
		return fmt.Errorf("%s: %w", sha, ErrNotFound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	rc, err := fetch(ctx, sha)
	if err != nil {
		return fmt.Errorf("fetching code %s: %w", sha, err)
	}
	defer rc.Close()
	got, n, err := s.Put(ctx, rc, structs.MaxZipBytes)
	if err != nil {
		return fmt.Errorf("fetching code %s: %w", sha, err)
	}
	if got != sha {
		_ = s.Remove(got)
		return fmt.Errorf("fetched code %s is corrupt: its content hashes to %s", sha, got)
	}
	s.logger.Info("fetched code from a peer", "sha256", sha, "bytes", n)
	return nil
}

// Remove deletes a blob and its unpacked tree.
func (s *Store) Remove(sha string) error {
	if err := checkSHA(sha); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, "unpacked", sha)
	_ = makeWritable(dir)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Remove(s.blobPath(sha)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Unpacked returns the read-only tree of sha, unzipping it once (concurrent callers share the
// work). The blob's hash is verified before it is used.
func (s *Store) Unpacked(ctx context.Context, sha string) (string, error) {
	if err := checkSHA(sha); err != nil {
		return "", err
	}
	dir := filepath.Join(s.dir, "unpacked", sha)
	s.mu.Lock()
	s.lastUsed[sha] = s.now()
	if _, err := os.Stat(dir); err == nil {
		s.mu.Unlock()
		return dir, nil
	}
	c, running := s.unpacking[sha]
	if !running {
		c = &unpackCall{done: make(chan struct{})}
		s.unpacking[sha] = c
		go func() {
			c.dir, c.err = s.unpack(sha, dir)
			s.mu.Lock()
			delete(s.unpacking, sha)
			s.mu.Unlock()
			close(c.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.dir, c.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (s *Store) unpack(sha, dst string) (string, error) {
	f, err := s.Open(sha)
	if errors.Is(err, ErrNotFound) {
		if err = s.fetchBlob(sha); err == nil {
			f, err = s.Open(sha)
		}
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("reading blob %s: %w", sha, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return "", fmt.Errorf("blob %s is corrupt: its content hashes to %s", sha, got)
	}
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return "", fmt.Errorf("code %s is not a valid zip: %w", sha, err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), "unpack-")
	if err != nil {
		return "", err
	}
	cleanup := func() { _ = makeWritable(tmp); _ = os.RemoveAll(tmp) }
	// Runtimes run as an unprivileged user: the tree must be readable and traversable by all.
	if err := os.Chmod(tmp, 0o755); err != nil {
		cleanup()
		return "", err
	}
	if err := unpack.Zip(zr, tmp, unpack.CodeOptions); err != nil {
		cleanup()
		return "", fmt.Errorf("unpacking code %s: %w", sha, err)
	}
	if err := makeReadOnly(tmp); err != nil {
		cleanup()
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		cleanup()
		if _, serr := os.Stat(dst); serr == nil {
			return dst, nil
		}
		return "", fmt.Errorf("placing unpacked code: %w", err)
	}
	return dst, nil
}

// makeReadOnly strips write permission: the tree is shared by every environment of the code.
func makeReadOnly(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, info.Mode().Perm()&^0o222)
	})
}

func makeWritable(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

// UnzippedSize is what the zip of sha unpacks to, as its entries declare.
func (s *Store) UnzippedSize(sha string) (int64, error) {
	f, err := s.Open(sha)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return 0, fmt.Errorf("reading code %s: %w", sha, err)
	}
	return unpack.DeclaredSize(zr), nil
}
