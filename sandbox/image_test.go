package sandbox_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/internal/unpack"
	"github.com/lambdagw/gateway/sandbox"
)

// staticImages serves one image made of layer folders.
type staticImages struct{ root *sandbox.ImageRoot }

func (s staticImages) Root(_ context.Context, uri string) (*sandbox.ImageRoot, error) {
	r := *s.root
	return &r, nil
}

type layerFile struct {
	name string
	typ  byte
	body []byte
	mode int64
}

// unpackedLayer writes a layer as the image store would: a tar through the one unpacker.
func unpackedLayer(t *testing.T, files ...layerFile) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Size: int64(len(f.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(f.body)
	}
	_ = tw.Close()
	dir := filepath.Join(t.TempDir(), "layer")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unpack.Tar(&buf, dir, unpack.LayerOptions); err != nil {
		t.Fatal(err)
	}
	return dir
}

// An image function runs on its image's root: the layers merged read-only (an upper layer's
// file and whiteout win), the function's entry point over the image's, the image's working
// folder and variables, Lambda's variables and the function's own on top; /tmp stays writable.
// Nothing stays mounted once the driver is closed.
func TestImageFunction(t *testing.T) {
	bootstrap, err := os.ReadFile(filepath.Join(codeDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	base := unpackedLayer(t,
		layerFile{name: "etc/motd", typ: tar.TypeReg, body: []byte("base")},
		layerFile{name: "app/config.txt", typ: tar.TypeReg, body: []byte("v1")},
		layerFile{name: "app/old.txt", typ: tar.TypeReg, body: []byte("old")})
	top := unpackedLayer(t,
		layerFile{name: "etc/.wh.motd", typ: tar.TypeReg},
		layerFile{name: "app/config.txt", typ: tar.TypeReg, body: []byte("v2")},
		layerFile{name: "app/bin/handler", typ: tar.TypeReg, body: bootstrap, mode: 0o755})
	root := &sandbox.ImageRoot{
		Layers:     []string{base, top},
		Entrypoint: []string{"/nonexistent"}, // the function's ImageConfig overrides it
		Env:        []string{"FOO=from-image", "PATH=/app/bin:/usr/bin", "BAR=from-image"},
		WorkingDir: "/app",
	}
	for _, dc := range drivers()[:2] { // the libcontainer drivers; the process one is below
		t.Run(dc.name, func(t *testing.T) {
			h := newHarness(t, dc.new(t), func(c *sandbox.ManagerConfig) { c.Images = staticImages{root} })
			fn := testFunction("img", func(f *structs.Function) {
				f.PackageType = structs.PackageImage
				f.ImageURI = "registry.example/team/img:1"
				f.ResolvedImageURI = "registry.example/team/img@sha256:" + strings.Repeat("1", 64)
				f.ImageConfig = &structs.ImageConfig{EntryPoint: []string{"/app/bin/handler"}}
				f.Environment = map[string]string{"BAR": "fn"}
			})
			read := func(p string) map[string]any {
				return decode(t, callFn(t, h, fn, `{"mode":"readfile","path":"`+p+`"}`).Payload)
			}
			if got := read("/app/config.txt"); got["content"] != "v2" {
				t.Fatalf("/app/config.txt: %v", got)
			}
			if got := read("/app/old.txt"); got["content"] != "old" {
				t.Fatalf("/app/old.txt: %v", got)
			}
			if got := read("/etc/motd"); !strings.Contains(got["error"].(string), "no such file") {
				t.Fatalf("/etc/motd, whited out, reads %v", got)
			}
			// The environment's hosts file, over the image's: extensions' telemetry listeners are
			// at sandbox.localdomain.
			if got := read("/etc/hosts"); !strings.Contains(got["content"].(string), "127.0.0.1 localhost sandbox sandbox.localdomain") {
				t.Fatalf("/etc/hosts: %v", got)
			}
			env := decode(t, callFn(t, h, fn, `{"mode":"env"}`).Payload)
			for k, want := range map[string]string{"FOO": "from-image", "BAR": "fn", "PATH": "/app/bin:/usr/bin",
				"AWS_LAMBDA_FUNCTION_NAME": "img", "LAMBDA_TASK_ROOT": "/var/task"} {
				if env[k] != want {
					t.Errorf("%s=%v, want %s", k, env[k], want)
				}
			}
			if got := decode(t, callFn(t, h, fn, `{"mode":"writefile","path":"/app/new","value":"x"}`).Payload); !strings.Contains(got["error"].(string), "read-only") {
				t.Fatalf("writing into the image: %v", got)
			}
			if got := decode(t, callFn(t, h, fn, `{"mode":"writefile","path":"/tmp/x","value":"x"}`).Payload); got["error"] != "" {
				t.Fatalf("writing /tmp: %v", got)
			}
			// The working folder is the image's: a relative path resolves there.
			if got := read("config.txt"); got["content"] != "v2" {
				t.Fatalf("config.txt from the working folder: %v", got)
			}
			// The layers are untouched by what ran.
			if b, err := os.ReadFile(filepath.Join(base, "etc/motd")); err != nil || string(b) != "base" {
				t.Fatalf("the base layer changed: %q %v", b, err)
			}
		})
	}
	t.Run("process", func(t *testing.T) {
		h := newHarness(t, drivers()[2].new(t), func(c *sandbox.ManagerConfig) { c.Images = staticImages{root} })
		fn := testFunction("img", func(f *structs.Function) {
			f.PackageType = structs.PackageImage
			f.ResolvedImageURI = "registry.example/team/img@sha256:" + strings.Repeat("1", 64)
		})
		_, err := h.m.Invoke(context.Background(), fn, request(`{}`))
		if err == nil || !strings.Contains(err.Error(), "libcontainer driver") {
			t.Fatalf("the process driver ran an image: %v", err)
		}
	})
	t.Run("no image store", func(t *testing.T) {
		h := newHarness(t, drivers()[2].new(t), nil)
		fn := testFunction("img", func(f *structs.Function) { f.PackageType = structs.PackageImage })
		if _, err := h.m.Invoke(context.Background(), fn, request(`{}`)); err == nil || !strings.Contains(err.Error(), "no container images") {
			t.Fatalf("err %v", err)
		}
	})
}

// staticRuntimes declares runtimes whose images staticImages serves.
type staticRuntimes map[string]string

func (r staticRuntimes) RuntimeImage(name string) (string, error) {
	if uri, ok := r[name]; ok {
		return uri, nil
	}
	return "", errors.New("runtime " + name + " is not declared")
}

// A zip function on a managed runtime runs on the runtime's image with its code at /var/task:
// the image's ENTRYPOINT is started with the function's handler, in /var/task, with the image's
// variables under the function's and Lambda's.
func TestManagedRuntime(t *testing.T) {
	bootstrap, err := os.ReadFile(filepath.Join(codeDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	rtLayer := unpackedLayer(t,
		layerFile{name: "var/runtime/bootstrap", typ: tar.TypeReg, body: bootstrap, mode: 0o755},
		layerFile{name: "etc/runtime-release", typ: tar.TypeReg, body: []byte("gotest 1")})
	root := &sandbox.ImageRoot{Layers: []string{rtLayer}, Entrypoint: []string{"/var/runtime/bootstrap"},
		Env: []string{"RUNTIME_HOME=/var/runtime", "PATH=/var/runtime:/usr/bin"}}
	for _, dc := range drivers()[:2] {
		t.Run(dc.name, func(t *testing.T) {
			code := t.TempDir()
			if err := os.WriteFile(filepath.Join(code, "data.txt"), []byte("the code"), 0o644); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, dc.new(t), func(c *sandbox.ManagerConfig) {
				c.Code = dirCode{code}
				c.Images = staticImages{root}
				c.Runtimes = staticRuntimes{"gotest1.x": "registry.example/runtimes/gotest@sha256:" + strings.Repeat("2", 64)}
			})
			fn := testFunction("onrt", func(f *structs.Function) {
				f.Runtime, f.Handler = "gotest1.x", "app.handler"
			})
			got := decode(t, callFn(t, h, fn, `{"mode":"readfile","path":"/etc/runtime-release"}`).Payload)
			if got["content"] != "gotest 1" {
				t.Fatalf("the runtime's image is not the root: %v", got)
			}
			// The code is at /var/task, and the working folder.
			if got := decode(t, callFn(t, h, fn, `{"mode":"readfile","path":"data.txt"}`).Payload); got["content"] != "the code" {
				t.Fatalf("the code at /var/task: %v", got)
			}
			env := decode(t, callFn(t, h, fn, `{"mode":"env"}`).Payload)
			for k, want := range map[string]string{"_HANDLER": "app.handler", "RUNTIME_HOME": "/var/runtime", "PATH": "/var/runtime:/usr/bin",
				"LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "onrt"} {
				if env[k] != want {
					t.Errorf("%s=%v, want %s", k, env[k], want)
				}
			}
			// A runtime the node does not declare fails the start, saying so.
			other := testFunction("other", func(f *structs.Function) { f.Runtime = "nodejs99.x" })
			if _, err := h.m.Invoke(context.Background(), other, request(`{}`)); err == nil || !strings.Contains(err.Error(), "nodejs99.x is not declared") {
				t.Fatalf("an undeclared runtime: %v", err)
			}
		})
	}
}
