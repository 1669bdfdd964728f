// Package image fetches container images (PackageType Image, and the bases of managed runtimes)
// from any registry speaking the OCI distribution API, from an OCI image layout or from a
// `docker save` archive, and keeps them unpacked in a content-addressed store: each layer once per
// digest, as a folder an overlay mount can use as a read-only lower layer, shared by every
// function and environment that uses it. go-containerregistry does the registry protocol and the
// formats; internal/unpack writes every layer under its rules.
package image

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/lambdagw/gateway/internal/unpack"
)

// MaxImageBytes is Lambda's limit on an image: 10 GB unpacked, all layers together.
const MaxImageBytes int64 = 10 << 30

// Registry is one registry's settings from the agent file (`registry "host" {...}`).
type Registry struct {
	Host     string // host[:port], as image references name it
	Username string
	Password string
	Insecure bool // plain HTTP
}

// Config configures a Store.
type Config struct {
	// Dir is the store's folder; it is made if missing.
	Dir        string
	Registries []Registry
	// Keychain supplies credentials for registries without a Registry entry that has them; nil
	// means the Docker config file (DOCKER_CONFIG, ~/.docker/config.json) and its helpers.
	Keychain authn.Keychain
	// MaxBytes bounds an image's unpacked size; 0 means MaxImageBytes.
	MaxBytes int64
	Logger   hclog.Logger
}

// ImageConfig is what of an image's configuration a function uses.
type ImageConfig struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"` // recorded, not used: functions run as the sandbox user
}

// Image is an image in the store, every layer unpacked.
type Image struct {
	// Digest is the image manifest's digest ("sha256:..."); Resolved the reference pinned to it.
	Digest   string `json:"digest"`
	Resolved string `json:"resolved"`
	// Layers are the layers' uncompressed digests (diff IDs), the base first.
	Layers []string    `json:"layers"`
	Config ImageConfig `json:"config"`
	// Size is the unpacked size of all layers.
	Size int64 `json:"size"`
}

// Store is the node's image store.
type Store struct {
	dir      string
	regs     map[string]Registry
	keychain authn.Keychain
	maxBytes int64
	logger   hclog.Logger

	mu           sync.Mutex
	inflight     map[string]*pull     // by layer diff ID
	unreferenced map[string]time.Time // image digest -> since when no one keeps it
	held         map[string]int       // layer diff ID -> pulls in progress that need it
}

// pull is one layer being unpacked; others wanting it wait for done.
type pull struct {
	done chan struct{}
	err  error
}

// New opens (or makes) the store in cfg.Dir and removes what an interrupted pull left there.
func New(cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = MaxImageBytes
	}
	s := &Store{dir: cfg.Dir, regs: map[string]Registry{}, maxBytes: cfg.MaxBytes, logger: cfg.Logger,
		inflight: map[string]*pull{}, unreferenced: map[string]time.Time{}, held: map[string]int{}}
	for _, r := range cfg.Registries {
		s.regs[r.Host] = r
	}
	kc := cfg.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	s.keychain = authn.NewMultiKeychain(registryKeychain(s.regs), kc)
	for _, d := range []string{s.layersDir(), s.imagesDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("making the image store: %w", err)
		}
	}
	// Layer folders must be reachable by an environment's unprivileged user through the overlay.
	if err := os.Chmod(s.layersDir(), 0o711); err != nil {
		return nil, fmt.Errorf("making the image store: %w", err)
	}
	if err := emptyDir(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("clearing the image store's unfinished pulls: %w", err)
	}
	return s, nil
}

func (s *Store) layersDir() string { return filepath.Join(s.dir, "layers", "sha256") }
func (s *Store) imagesDir() string { return filepath.Join(s.dir, "images", "sha256") }
func (s *Store) tmpDir() string    { return filepath.Join(s.dir, "tmp") }

// LayerDir is the folder of an unpacked layer, by its diff ID.
func (s *Store) LayerDir(diffID string) string {
	return filepath.Join(s.layersDir(), strings.TrimPrefix(diffID, "sha256:"))
}

func (s *Store) imageRecord(digest string) string {
	return filepath.Join(s.imagesDir(), strings.TrimPrefix(digest, "sha256:")+".json")
}

// Resolve finds the image ref names, without fetching its layers: its digest and the reference
// pinned to it. A tag is read where it lives (the registry, the layout's index, the archive).
func (s *Store) Resolve(ctx context.Context, refStr string) (digest, resolved string, err error) {
	r, err := s.parse(refStr)
	if err != nil {
		return "", "", err
	}
	img, err := s.open(ctx, r)
	if err != nil {
		return "", "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", "", classify(r, fmt.Errorf("reading the manifest: %w", err))
	}
	return d.String(), r.pinned(d.String()), nil
}

// Pull makes sure the image ref names is in the store, every layer unpacked, and returns it. An
// image already there (by digest) costs no transfer: a pinned reference is answered from the store
// alone.
func (s *Store) Pull(ctx context.Context, refStr string) (*Image, error) {
	r, err := s.parse(refStr)
	if err != nil {
		return nil, err
	}
	if r.digest != "" {
		if im, err := s.Get(r.digest); err == nil {
			return im, nil
		}
	}
	img, err := s.open(ctx, r)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, classify(r, fmt.Errorf("reading the manifest: %w", err))
	}
	digest := d.String()
	if im, err := s.Get(digest); err == nil {
		return im, nil
	}
	im, err := s.fetch(ctx, r, img, digest)
	if im != nil {
		// Its layers are held from the first one fetched until the record names them, or a
		// collection in between would take them for unused.
		defer s.release(im.Layers)
	}
	if err != nil {
		return nil, err
	}
	if err := writeJSON(s.imageRecord(digest), im); err != nil {
		return nil, fmt.Errorf("recording image %s: %w", digest, err)
	}
	s.logger.Info("image pulled", "image", r.String(), "digest", digest, "layers", len(im.Layers), "bytes", im.Size)
	return im, nil
}

// Get returns an image of the store by digest.
func (s *Store) Get(digest string) (*Image, error) {
	if _, err := parseDigest(digest); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.imageRecord(digest))
	if err != nil {
		return nil, err
	}
	var im Image
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("reading the record of image %s: %w", digest, err)
	}
	for _, l := range im.Layers {
		if _, err := os.Stat(s.LayerDir(l)); err != nil {
			return nil, fmt.Errorf("image %s: layer %s is missing: %w", digest, l, err)
		}
	}
	return &im, nil
}

// Bounds on what an image's manifest may ask the node to read or mount.
const (
	maxConfigBytes = 8 << 20
	maxLayers      = 127 // Docker's own limit
)

func (s *Store) fetch(ctx context.Context, r ref, img v1.Image, digest string) (*Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, classify(r, fmt.Errorf("reading the manifest: %w", err))
	}
	if m.Config.Size > maxConfigBytes {
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("the image configuration is %d bytes, over %d", m.Config.Size, maxConfigBytes)}
	}
	if len(m.Layers) > maxLayers {
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("the image has %d layers, over %d", len(m.Layers), maxLayers)}
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, classify(r, fmt.Errorf("reading the image configuration: %w", err))
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, classify(r, fmt.Errorf("reading the manifest: %w", err))
	}
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != cfgName.String() {
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: errors.New("the image configuration does not match its digest")}
	}
	cf, err := v1.ParseConfigFile(strings.NewReader(string(raw)))
	if err != nil {
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("reading the image configuration: %w", err)}
	}
	if cf.OS != "" && cf.OS != "linux" {
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("the image is for %s, not linux", cf.OS)}
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, classify(r, fmt.Errorf("reading the manifest: %w", err))
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("the manifest lists %d layers, the configuration %d", len(layers), len(cf.RootFS.DiffIDs))}
	}
	im := &Image{Digest: digest, Resolved: r.pinned(digest), Config: ImageConfig{
		Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd, Env: cf.Config.Env,
		WorkingDir: cf.Config.WorkingDir, User: cf.Config.User}}
	// Layers are fetched and unpacked a few at a time (each into its own folder), drawing on one
	// budget: one layer's download and hashing overlap another's file creation, which on a
	// disk that takes 200 µs to create a file bounds a pull of many small files.
	budget := unpack.NewBudget(s.maxBytes)
	sizes := make([]int64, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pullConcurrency)
	for i, l := range layers {
		diffID := cf.RootFS.DiffIDs[i].String()
		s.hold(diffID)
		im.Layers = append(im.Layers, diffID)
		g.Go(func() error {
			size, err := s.layer(gctx, r, l, diffID, budget)
			sizes[i] = size
			return err
		})
	}
	err = g.Wait()
	for _, n := range sizes {
		im.Size += n
	}
	if err == nil && im.Size > s.maxBytes {
		err = tooLarge(r, s.maxBytes)
	}
	return im, err
}

// pullConcurrency is how many layers of an image are fetched and unpacked at once (Docker's
// default too).
const pullConcurrency = 3

// hold keeps a layer from collection while an image being pulled needs it; release ends it.
func (s *Store) hold(diffID string) {
	s.mu.Lock()
	s.held[diffID]++
	s.mu.Unlock()
}

func (s *Store) release(diffIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range diffIDs {
		if s.held[d]--; s.held[d] <= 0 {
			delete(s.held, d)
		}
	}
}

// layer makes sure the layer of diffID is unpacked in the store (one pull per layer at a time,
// others wait for it) and returns its unpacked size, drawn from budget: a layer unpacked here
// draws as it is written, one already present (or unpacked by another pull) all at once.
func (s *Store) layer(ctx context.Context, r ref, l v1.Layer, diffID string, budget *unpack.Budget) (int64, error) {
	if _, err := parseDigest(diffID); err != nil {
		return 0, &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("layer diff ID: %w", err)}
	}
	for {
		if size, err := s.layerSize(diffID); err == nil {
			if !budget.Take(size) {
				return 0, tooLarge(r, s.maxBytes)
			}
			return size, nil
		}
		s.mu.Lock()
		p := s.inflight[diffID]
		if p == nil {
			p = &pull{done: make(chan struct{})}
			s.inflight[diffID] = p
			s.mu.Unlock()
			p.err = s.unpackLayer(ctx, r, l, diffID, budget)
			s.mu.Lock()
			delete(s.inflight, diffID)
			s.mu.Unlock()
			close(p.done)
			if p.err != nil {
				return 0, p.err
			}
			return s.layerSize(diffID)
		}
		s.mu.Unlock()
		select {
		case <-p.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if p.err != nil && !IsKind(p.err, TooLarge) {
			return 0, p.err
		}
	}
}

func (s *Store) layerSize(diffID string) (int64, error) {
	b, err := os.ReadFile(s.LayerDir(diffID) + ".size")
	if err != nil {
		return 0, err
	}
	var n int64
	if _, err := fmt.Sscan(string(b), &n); err != nil {
		return 0, err
	}
	if _, err := os.Stat(s.LayerDir(diffID)); err != nil {
		return 0, err
	}
	return n, nil
}

// unpackLayer writes the layer into a fresh folder under tmp/, checks that its content has the
// digest the configuration names, and moves it into place.
func (s *Store) unpackLayer(ctx context.Context, r ref, l v1.Layer, diffID string, budget *unpack.Budget) error {
	if budget.Left() <= 0 {
		return tooLarge(r, s.maxBytes)
	}
	rc, err := uncompressed(l)
	if err != nil {
		return classify(r, fmt.Errorf("fetching layer %s: %w", diffID, err))
	}
	defer rc.Close()
	tmp, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return fmt.Errorf("unpacking layer %s: %w", diffID, err)
	}
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return fmt.Errorf("unpacking layer %s: %w", diffID, err)
	}
	h := sha256.New()
	src := &ctxReader{ctx: ctx, r: io.TeeReader(rc, h)}
	opts := unpack.LayerOptions
	opts.MaxBytes, opts.Shared = s.maxBytes, budget
	if err := unpack.Tar(src, tree, opts); err != nil {
		if unpack.IsOverSize(err) {
			return tooLarge(r, s.maxBytes)
		}
		if unpack.IsRefused(err) {
			return &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("layer %s: %w", diffID, err)}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classify(r, fmt.Errorf("unpacking layer %s: %w", diffID, err))
	}
	// What follows the end-of-archive marker belongs to the digest too.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return classify(r, fmt.Errorf("reading layer %s: %w", diffID, err))
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("layer %s: its content's digest is %s", diffID, got)}
	}
	size, err := treeSize(tree)
	if err != nil {
		return fmt.Errorf("measuring layer %s: %w", diffID, err)
	}
	dst := s.LayerDir(diffID)
	if err := os.Rename(tree, dst); err != nil {
		return fmt.Errorf("storing layer %s: %w", diffID, err)
	}
	// The size file comes last: a layer is present once it is there.
	if err := writeFileAtomic(dst+".size", []byte(fmt.Sprint(size))); err != nil {
		return fmt.Errorf("storing layer %s: %w", diffID, err)
	}
	return nil
}

// CollectAfter is one collection at now: an image not in keep is removed once it has been
// found unreferenced for grace (counted from the first collection that found it so, or its
// pull, whichever is later).
func (s *Store) CollectAfter(keep []string, grace time.Duration, now time.Time) (images, layers int, err error) {
	keepSet := map[string]bool{}
	for _, d := range keep {
		keepSet[d] = true
	}
	all, err := s.Images()
	if err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	for d := range s.unreferenced {
		if keepSet[d] {
			delete(s.unreferenced, d)
		}
	}
	for _, d := range all {
		if keepSet[d] {
			continue
		}
		since, ok := s.unreferenced[d]
		if !ok {
			since = now
			if info, err := os.Stat(s.imageRecord(d)); err == nil && info.ModTime().After(since) {
				since = info.ModTime()
			}
			s.unreferenced[d] = since
		}
		if now.Sub(since) < grace {
			keepSet[d] = true
		}
	}
	s.mu.Unlock()
	images, layers, err = s.Collect(keepSet)
	s.mu.Lock()
	for d := range s.unreferenced {
		if _, err := os.Stat(s.imageRecord(d)); os.IsNotExist(err) {
			delete(s.unreferenced, d)
		}
	}
	s.mu.Unlock()
	if images > 0 {
		s.logger.Info("removed images no function runs", "images", images, "layers", layers)
	}
	return images, layers, err
}

// Collect removes every image whose digest keep does not hold, then every layer no kept image
// uses. It returns what it removed.
func (s *Store) Collect(keep map[string]bool) (images, layers int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	used := map[string]bool{}
	ents, err := os.ReadDir(s.imagesDir())
	if err != nil {
		return 0, 0, err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue // a record being written
		}
		digest := "sha256:" + strings.TrimSuffix(e.Name(), ".json")
		if !keep[digest] {
			if err := os.Remove(filepath.Join(s.imagesDir(), e.Name())); err != nil {
				return images, layers, err
			}
			images++
			continue
		}
		im, err := s.Get(digest)
		if err != nil {
			continue
		}
		for _, l := range im.Layers {
			used[strings.TrimPrefix(l, "sha256:")] = true
		}
	}
	// A layer being unpacked is held by the pull that wants it (fetch holds before layer).
	for p := range s.held {
		used[strings.TrimPrefix(p, "sha256:")] = true
	}
	ents, err = os.ReadDir(s.layersDir())
	if err != nil {
		return images, 0, err
	}
	for _, e := range ents {
		hexName := strings.TrimSuffix(e.Name(), ".size")
		if used[hexName] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.layersDir(), e.Name())); err != nil {
			return images, layers, err
		}
		if e.IsDir() {
			layers++
		}
	}
	return images, layers, nil
}

// Images lists the digests of the store's images, sorted.
func (s *Store) Images() ([]string, error) {
	ents, err := os.ReadDir(s.imagesDir())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			out = append(out, "sha256:"+strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	sort.Strings(out)
	return out, nil
}

func platform() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtime.GOARCH} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

func writeFileAtomic(path string, b []byte) error {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path + ".tmp-" + hex.EncodeToString(rnd[:])
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// uncompressed opens a layer's content: its blob as fetched (go-containerregistry checks it
// against its digest as it is read), decompressed by the compression its first bytes show.
// klauspost/compress decompresses gzip about twice as fast as the standard library, which
// go-containerregistry's own Uncompressed uses, and gzip was the largest CPU cost of a pull.
func uncompressed(l v1.Layer) (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		rc.Close()
		return nil, err
	}
	var r io.Reader = br
	closeR := func() {}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("reading the gzip layer: %w", err)
		}
		r, closeR = zr, func() { zr.Close() }
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("reading the zstd layer: %w", err)
		}
		r, closeR = zr, zr.Close
	}
	return &layerReader{Reader: r, close: func() error { closeR(); return rc.Close() }}, nil
}

type layerReader struct {
	io.Reader
	close func() error
}

func (l *layerReader) Close() error { return l.close() }
