package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

type tent struct {
	name string
	typ  byte
	link string
	body string
}

func layerOf(t *testing.T, ents ...tent) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o755, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(e.body))
	}
	_ = tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t *testing.T, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// testRegistry is go-containerregistry's registry behind basic auth, counting blob fetches.
type testRegistry struct {
	host  string
	blobs atomic.Int64
	// corrupt flips a byte of every blob it serves.
	corrupt atomic.Bool
}

func newRegistry(t *testing.T) *testRegistry {
	r := &testRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != "ci" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			r.blobs.Add(1)
			if r.corrupt.Load() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				b := rec.Body.Bytes()
				if len(b) > 40 {
					b[len(b)/2] ^= 0xff
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(b)
				return
			}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *testRegistry) push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	n, err := name.ParseReference(r.host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(n, img, remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T, regs ...Registry) *Store {
	t.Helper()
	s, err := New(Config{Dir: filepath.Join(t.TempDir(), "images"), Registries: regs, Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readIn(t *testing.T, s *Store, diffID, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.LayerDir(diffID), p))
	if err != nil {
		t.Fatalf("layer %s: %v", diffID, err)
	}
	return string(b)
}

// An image pushed to a real registry (with credentials) is pulled by tag: its configuration
// read, each layer unpacked once into the store (whiteouts as overlayfs reads them), the tag
// resolved to the digest a version pins. A second image on the same base fetches only its own
// layer; a pull of a stored image fetches nothing.
func TestPullFromRegistry(t *testing.T) {
	reg := newRegistry(t)
	base := layerOf(t, tent{"etc/os-release", tar.TypeReg, "", "base"}, tent{"etc/motd", tar.TypeReg, "", "hi"},
		tent{"usr/bin/node", tar.TypeSymlink, "/etc/alternatives/node", ""})
	app := layerOf(t, tent{"etc/.wh.motd", tar.TypeReg, "", ""}, tent{"var/task/index.js", tar.TypeReg, "", "exports.handler=1"})
	cfg := v1.Config{Entrypoint: []string{"/lambda-entrypoint.sh"}, Cmd: []string{"index.handler"},
		Env: []string{"PATH=/usr/bin", "LAMBDA_TASK_ROOT=/var/task"}, WorkingDir: "/var/task", User: "1000"}
	img := imageOf(t, cfg, base, app)
	reg.push(t, "team/fn:1.4", img)

	s := newStore(t, Registry{Host: reg.host, Username: "ci", Password: "s3cret"})
	ctx := context.Background()
	im, err := s.Pull(ctx, reg.host+"/team/fn:1.4")
	if err != nil {
		t.Fatal(err)
	}
	want := digestOf(t, img)
	if im.Digest != want || im.Resolved != reg.host+"/team/fn@"+want {
		t.Fatalf("pulled %s as %s, want %s", im.Digest, im.Resolved, want)
	}
	if strings.Join(im.Config.Entrypoint, " ") != "/lambda-entrypoint.sh" || im.Config.WorkingDir != "/var/task" ||
		im.Config.User != "1000" || len(im.Config.Env) != 2 || im.Config.Cmd[0] != "index.handler" {
		t.Fatalf("configuration %+v", im.Config)
	}
	if len(im.Layers) != 2 {
		t.Fatalf("layers %v", im.Layers)
	}
	if got := readIn(t, s, im.Layers[0], "etc/os-release"); got != "base" {
		t.Fatalf("base layer: %q", got)
	}
	if got := readIn(t, s, im.Layers[1], "var/task/index.js"); got != "exports.handler=1" {
		t.Fatalf("app layer: %q", got)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(s.LayerDir(im.Layers[1]), "etc/motd"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("the whiteout of etc/motd is not an overlay whiteout: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(s.LayerDir(im.Layers[0]), "usr/bin/node")); err != nil || l != "/etc/alternatives/node" {
		t.Fatalf("usr/bin/node: %q %v", l, err)
	}
	if im.Size != int64(len("base")+len("hi")+len("exports.handler=1")) {
		t.Fatalf("size %d", im.Size)
	}
	fetched := reg.blobs.Load()
	if fetched != 3 { // the configuration and two layers
		t.Fatalf("%d blob fetches for the first pull, want 3", fetched)
	}

	// Again by tag: the manifest is read, nothing else.
	if _, err := s.Pull(ctx, reg.host+"/team/fn:1.4"); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobs.Load() - fetched; n != 0 {
		t.Fatalf("a stored image fetched %d blobs", n)
	}
	// Another image on the same base: its configuration and its own layer only.
	other := imageOf(t, v1.Config{Cmd: []string{"other.handler"}}, base, layerOf(t, tent{"var/task/other.js", tar.TypeReg, "", "2"}))
	reg.push(t, "team/other:1", other)
	fetched = reg.blobs.Load()
	if _, err := s.Pull(ctx, reg.host+"/team/other:1"); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobs.Load() - fetched; n != 2 {
		t.Fatalf("a second image on the same base fetched %d blobs, want 2", n)
	}
	if imgs, _ := s.Images(); len(imgs) != 2 {
		t.Fatalf("images %v", imgs)
	}
}

// A version pins the digest: after the tag moves, the pinned reference still names the first
// image, answered from the store; Resolve follows the tag.
func TestTagMovesPinnedStays(t *testing.T) {
	reg := newRegistry(t)
	s := newStore(t, Registry{Host: reg.host, Username: "ci", Password: "s3cret"})
	ctx := context.Background()
	a := imageOf(t, v1.Config{Cmd: []string{"a"}}, layerOf(t, tent{"a", tar.TypeReg, "", "a"}))
	b := imageOf(t, v1.Config{Cmd: []string{"b"}}, layerOf(t, tent{"b", tar.TypeReg, "", "b"}))
	reg.push(t, "fn:live", a)
	d, pinned, err := s.Resolve(ctx, reg.host+"/fn:live")
	if err != nil || d != digestOf(t, a) {
		t.Fatalf("resolve: %s %v", d, err)
	}
	if _, err := s.Pull(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	reg.push(t, "fn:live", b)
	fetched := reg.blobs.Load()
	im, err := s.Pull(ctx, pinned)
	if err != nil || im.Digest != digestOf(t, a) || im.Config.Cmd[0] != "a" {
		t.Fatalf("the pinned image after the tag moved: %+v %v", im, err)
	}
	if reg.blobs.Load() != fetched {
		t.Fatal("the pinned image was fetched again")
	}
	if d, _, err := s.Resolve(ctx, reg.host+"/fn:live"); err != nil || d != digestOf(t, b) {
		t.Fatalf("the tag resolves to %s %v, want the new image", d, err)
	}
}

// What a deploy must refuse, each with the kind the API answers by, and nothing left behind.
func TestPullRefused(t *testing.T) {
	reg := newRegistry(t)
	good := imageOf(t, v1.Config{}, layerOf(t, tent{"f", tar.TypeReg, "", "data"}))
	reg.push(t, "fn:1", good)
	escape := imageOf(t, v1.Config{}, layerOf(t, tent{"a", tar.TypeSymlink, "/etc", ""}, tent{"a/passwd", tar.TypeReg, "", "x"}))
	reg.push(t, "escape:1", escape)
	big := imageOf(t, v1.Config{}, layerOf(t, tent{"big", tar.TypeReg, "", strings.Repeat("x", 4096)}))
	reg.push(t, "big:1", big)
	windows, _ := mutate.ConfigFile(good, &v1.ConfigFile{OS: "windows", RootFS: v1.RootFS{Type: "layers", DiffIDs: mustDiffIDs(t, good)}})
	reg.push(t, "windows:1", windows)

	creds := Registry{Host: reg.host, Username: "ci", Password: "s3cret"}
	cases := []struct {
		name string
		regs []Registry
		ref  string
		kind string
		max  int64
	}{
		{"no credentials", nil, reg.host + "/fn:1", Denied, 0},
		{"wrong credentials", []Registry{{Host: reg.host, Username: "ci", Password: "nope"}}, reg.host + "/fn:1", Denied, 0},
		{"unknown tag", []Registry{creds}, reg.host + "/fn:2", NotFound, 0},
		{"unknown repository", []Registry{creds}, reg.host + "/nothing:1", NotFound, 0},
		{"unknown digest", []Registry{creds}, reg.host + "/fn@sha256:" + strings.Repeat("0", 64), NotFound, 0},
		{"no tag", []Registry{creds}, reg.host + "/fn", Invalid, 0},
		{"a layer escaping through a link", []Registry{creds}, reg.host + "/escape:1", Invalid, 0},
		{"over the size limit", []Registry{creds}, reg.host + "/big:1", TooLarge, 1024},
		{"another OS", []Registry{creds}, reg.host + "/windows:1", Invalid, 0},
		{"a missing layout", []Registry{creds}, "oci-layout:/nonexistent/layout:1", NotFound, 0},
		{"a relative layout path", []Registry{creds}, "oci-layout:images/x", Invalid, 0},
		{"a missing archive", []Registry{creds}, "docker-archive:/nonexistent.tar", NotFound, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "images")
			s, err := New(Config{Dir: dir, Registries: c.regs, Keychain: authn.NewMultiKeychain(), MaxBytes: c.max})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Pull(context.Background(), c.ref)
			if !IsKind(err, c.kind) {
				t.Fatalf("err %v, want kind %s", err, c.kind)
			}
			if !strings.Contains(err.Error(), strings.TrimPrefix(strings.TrimPrefix(c.ref, "oci-layout:"), "docker-archive:")[:5]) {
				t.Fatalf("the error does not name the image: %v", err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*"))
			tmp, _ := os.ReadDir(filepath.Join(dir, "tmp"))
			if len(left) > 0 || len(tmp) > 0 {
				t.Fatalf("a refused pull left %v %v", left, tmp)
			}
		})
	}
}

// Layers unpacked at once draw on one budget: an image whose layers each fit but together do
// not is refused, with no layer left half-written.
func TestPullLayersShareTheLimit(t *testing.T) {
	reg := newRegistry(t)
	var layers []v1.Layer
	for i := 0; i < 6; i++ {
		layers = append(layers, layerOf(t, tent{fmt.Sprintf("f%d", i), tar.TypeReg, "", strings.Repeat(string(rune('a'+i)), 800)}))
	}
	reg.push(t, "many:1", imageOf(t, v1.Config{}, layers...))
	creds := Registry{Host: reg.host, Username: "ci", Password: "s3cret"}
	dir := filepath.Join(t.TempDir(), "images")
	s, err := New(Config{Dir: dir, Registries: []Registry{creds}, Keychain: authn.NewMultiKeychain(), MaxBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(context.Background(), reg.host+"/many:1"); !IsKind(err, TooLarge) {
		t.Fatalf("six layers of 800 bytes under a limit of 2048: %v, want TooLarge", err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) > 0 {
		t.Fatalf("a refused pull left %v half-written", tmp)
	}
	s2, err := New(Config{Dir: filepath.Join(t.TempDir(), "images"), Registries: []Registry{creds}, Keychain: authn.NewMultiKeychain(), MaxBytes: 6 * 800})
	if err != nil {
		t.Fatal(err)
	}
	if im, err := s2.Pull(context.Background(), reg.host+"/many:1"); err != nil || len(im.Layers) != 6 || im.Size != 6*800 {
		t.Fatalf("the same image within the limit: %+v %v", im, err)
	}
}

func mustDiffIDs(t *testing.T, img v1.Image) []v1.Hash {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}

// A registry that serves a layer whose bytes are not those of its digest is refused.
func TestCorruptLayerRefused(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "fn:1", imageOf(t, v1.Config{}, layerOf(t, tent{"f", tar.TypeReg, "", strings.Repeat("payload", 100)})))
	s := newStore(t, Registry{Host: reg.host, Username: "ci", Password: "s3cret"})
	reg.corrupt.Store(true)
	if _, err := s.Pull(context.Background(), reg.host+"/fn:1"); err == nil {
		t.Fatal("a corrupted image was pulled")
	}
	if imgs, _ := s.Images(); len(imgs) != 0 {
		t.Fatalf("stored %v", imgs)
	}
	if ents, _ := os.ReadDir(s.layersDir()); len(ents) != 0 {
		t.Fatalf("layers stored: %v", ents)
	}
}

// Ten deploys of one image at once unpack each layer once.
func TestConcurrentPullsShareLayers(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "fn:1", imageOf(t, v1.Config{}, layerOf(t, tent{"a", tar.TypeReg, "", "a"}), layerOf(t, tent{"b", tar.TypeReg, "", "b"})))
	s := newStore(t, Registry{Host: reg.host, Username: "ci", Password: "s3cret"})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Pull(context.Background(), reg.host+"/fn:1")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(s.layersDir()); len(ents) != 4 { // two folders, two size files
		t.Fatalf("layers stored: %v", ents)
	}
}

// Air-gapped sources: an OCI image layout (by tag, by digest, the only image) and a docker save
// archive.
func TestPullFromDisk(t *testing.T) {
	a := imageOf(t, v1.Config{Cmd: []string{"a"}}, layerOf(t, tent{"a", tar.TypeReg, "", "a"}))
	b := imageOf(t, v1.Config{Cmd: []string{"b"}}, layerOf(t, tent{"b", tar.TypeReg, "", "b"}))
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for tag, img := range map[string]v1.Image{"a": a, "b": b} {
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
	}
	archive := filepath.Join(dir, "b.tar")
	tag, _ := name.NewTag("example.com/b:1")
	if err := tarball.WriteToFile(archive, tag, b); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	ctx := context.Background()
	for ref, want := range map[string]v1.Image{
		"oci-layout:" + dir + "/layout:a":                  a,
		"oci-layout:" + dir + "/layout@" + digestOf(t, b):  b,
		"docker-archive:" + archive:                        b,
		"docker-archive:" + archive + "@" + digestOf(t, b): b,
		"docker-archive:" + archive + ":example.com/b:1":   b,
	} {
		im, err := s.Pull(ctx, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if im.Digest != digestOf(t, want) {
			t.Fatalf("%s: pulled %s", ref, im.Digest)
		}
		if !strings.HasSuffix(im.Resolved, "@"+im.Digest) {
			t.Fatalf("%s: resolved as %s", ref, im.Resolved)
		}
	}
	_, err = s.Pull(ctx, "oci-layout:"+dir+"/layout:c")
	if !IsKind(err, NotFound) || !strings.Contains(err.Error(), "a, b") {
		t.Fatalf("an unknown tag: %v", err)
	}
	if _, err := s.Pull(ctx, "oci-layout:"+dir+"/layout"); !IsKind(err, Invalid) {
		t.Fatalf("a layout of two images without a tag: %v", err)
	}
}

// twoImagesOnABase pulls, from an OCI layout, images a and b that share their base layer and
// each have one of their own.
func twoImagesOnABase(t *testing.T) (s *Store, ia, ib *Image) {
	t.Helper()
	base := layerOf(t, tent{"base", tar.TypeReg, "", "base"})
	a := imageOf(t, v1.Config{}, base, layerOf(t, tent{"a", tar.TypeReg, "", "a"}))
	b := imageOf(t, v1.Config{}, base, layerOf(t, tent{"b", tar.TypeReg, "", "b"}))
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for tag, img := range map[string]v1.Image{"a": a, "b": b} {
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
	}
	s = newStore(t)
	ia, err = s.Pull(context.Background(), "oci-layout:"+dir+"/layout:a")
	if err != nil {
		t.Fatal(err)
	}
	ib, err = s.Pull(context.Background(), "oci-layout:"+dir+"/layout:b")
	if err != nil {
		t.Fatal(err)
	}
	return s, ia, ib
}

// Collect keeps the images asked for and the layers they use, and removes the rest.
func TestCollect(t *testing.T) {
	s, ia, ib := twoImagesOnABase(t)
	images, layers, err := s.Collect(map[string]bool{ib.Digest: true})
	if err != nil || images != 1 || layers != 1 {
		t.Fatalf("collected %d images and %d layers (%v), want 1 and 1", images, layers, err)
	}
	if _, err := s.Get(ia.Digest); err == nil {
		t.Fatal("the collected image is still there")
	}
	if _, err := s.Get(ib.Digest); err != nil {
		t.Fatalf("the kept image: %v", err)
	}
	if _, err := os.Stat(s.LayerDir(ia.Layers[1])); !os.IsNotExist(err) {
		t.Fatal("the collected image's own layer is still there")
	}
}

func TestParseRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	ok := map[string]string{
		"registry.example:5000/team/fn:1.4":   "registry.example:5000/team/fn:1.4",
		"registry.example/team/fn@" + d:       "registry.example/team/fn@" + d,
		"oci-layout:/srv/images/node:20":      "oci-layout:/srv/images/node:20",
		"oci-layout:/srv/img.v2/node":         "oci-layout:/srv/img.v2/node",
		"oci-layout:/srv/images/node:a:b":     "oci-layout:/srv/images/node:a:b",
		"oci-layout:/srv/images@" + d:         "oci-layout:/srv/images@" + d,
		"docker-archive:/srv/fn.tar":          "docker-archive:/srv/fn.tar",
		"docker-archive:/srv/fn.tar:team/f:1": "docker-archive:/srv/fn.tar:team/f:1",
	}
	for in, want := range ok {
		r, err := parseRef(in, nil)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if r.String() != want {
			t.Fatalf("%s reads back as %s", in, r.String())
		}
	}
	for _, bad := range []string{"", " x/y:1", "registry.example/team/fn", "oci-layout:", "oci-layout:rel/path:1",
		"oci-layout:/p@sha256:12", "docker-archive:/f.tar:", "Registry.example/UPPER:1"} {
		if _, err := parseRef(bad, nil); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}

// FuzzParseRef: any string either is refused or reads back as a reference that parses to itself.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"registry.example:5000/team/fn:1.4", "oci-layout:/srv/images:a:b", "docker-archive:/f.tar@sha256:" + strings.Repeat("0", 64),
		"localhost/x@sha256:", "oci-layout:", "a/b/c/d:e@f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRef(s, nil)
		if err != nil {
			return
		}
		again, err := parseRef(r.String(), nil)
		if err != nil || again.String() != r.String() || again.kind != r.kind || again.digest != r.digest {
			t.Fatalf("%q reads back as %q, which parses to %q (%v)", s, r.String(), again.String(), err)
		}
	})
}

// An image no one keeps is removed only once the grace has passed since a collection first
// found it unreferenced; being kept again in between starts it over.
func TestCollectAfterGrace(t *testing.T) {
	s, ia, ib := twoImagesOnABase(t)
	now := time.Now()
	step := func(keep []string, at time.Duration, wantImages int) {
		t.Helper()
		images, _, err := s.CollectAfter(keep, time.Hour, now.Add(at))
		if err != nil || images != wantImages {
			t.Fatalf("at +%s keeping %v: removed %d images (%v), want %d", at, keep, images, err, wantImages)
		}
	}
	step([]string{ib.Digest}, 0, 0)
	step([]string{ib.Digest}, 30*time.Minute, 0)
	step([]string{ia.Digest, ib.Digest}, 50*time.Minute, 0) // kept again: the clock starts over
	step([]string{ib.Digest}, 70*time.Minute, 0)
	step([]string{ib.Digest}, 131*time.Minute, 1)
	if _, err := s.Get(ia.Digest); err == nil {
		t.Fatal("image a is still there")
	}
	if _, err := s.Get(ib.Digest); err != nil {
		t.Fatalf("image b: %v", err)
	}
}
