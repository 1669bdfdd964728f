package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// shaCode serves unpacked trees by hash, as the code store does.
type shaCode map[string]string

func (c shaCode) Unpacked(_ context.Context, sha string) (string, error) {
	if d, ok := c[sha]; ok {
		return d, nil
	}
	return "", os.ErrNotExist
}

func treeOf(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Base(name) == "bootstrap" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A function's layers are merged read-only at /opt in order, a later layer's file winning; a
// custom runtime may come from a layer as /opt/bootstrap.
func TestLayersAtOpt(t *testing.T) {
	bootstrap, err := os.ReadFile(filepath.Join(codeDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	sha := func(c byte) string { return strings.Repeat(string(c), 64) }
	code := shaCode{
		sha('c'): codeDir,
		sha('1'): treeOf(t, map[string]string{"shared.txt": "from 1", "lib/one.txt": "one"}),
		sha('2'): treeOf(t, map[string]string{"shared.txt": "from 2", "two.txt": "two"}),
		sha('3'): treeOf(t, map[string]string{"data.txt": "code without bootstrap"}),
		sha('4'): treeOf(t, map[string]string{"bootstrap": string(bootstrap)}),
	}
	layer := func(name string, c byte) structs.FunctionLayer {
		return structs.FunctionLayer{Name: name, Version: 1, CodeSha256: sha(c)}
	}
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			h := newHarness(t, dc.new(t), func(c *sandbox.ManagerConfig) { c.Code = code })
			two := testFunction("two-layers", func(f *structs.Function) {
				f.CodeSha256 = sha('c')
				f.Layers = []structs.FunctionLayer{layer("first", '1'), layer("second", '2')}
			})
			if dc.name == "process" {
				if _, err := h.m.Invoke(context.Background(), two, request(`{}`)); err == nil || !strings.Contains(err.Error(), "/opt") {
					t.Fatalf("the process driver should refuse layers, naming /opt: %v", err)
				}
				return
			}
			for path, want := range map[string]string{"/opt/shared.txt": "from 2", "/opt/lib/one.txt": "one", "/opt/two.txt": "two"} {
				if got := decode(t, callFn(t, h, two, `{"mode":"readfile","path":"`+path+`"}`).Payload); got["content"] != want {
					t.Errorf("%s: %v, want %q", path, got, want)
				}
			}
			if got := decode(t, callFn(t, h, two, `{"mode":"writefile","path":"/opt/new.txt","value":"x"}`).Payload); got["error"] == "" {
				t.Errorf("/opt is writable: %v", got)
			}
			one := testFunction("one-layer", func(f *structs.Function) {
				f.CodeSha256 = sha('c')
				f.Layers = []structs.FunctionLayer{layer("second", '2')}
			})
			if got := decode(t, callFn(t, h, one, `{"mode":"readfile","path":"/opt/shared.txt"}`).Payload); got["content"] != "from 2" {
				t.Errorf("one layer: %v", got)
			}
			if got := decode(t, callFn(t, h, one, `{"mode":"writefile","path":"/opt/new.txt","value":"x"}`).Payload); got["error"] == "" {
				t.Errorf("/opt is writable with one layer: %v", got)
			}
			rt := testFunction("runtime-in-layer", func(f *structs.Function) {
				f.CodeSha256 = sha('3')
				f.Layers = []structs.FunctionLayer{layer("runtime", '4')}
			})
			if got := decode(t, callFn(t, h, rt, `{"mode":"readfile","path":"/var/task/data.txt"}`).Payload); got["content"] != "code without bootstrap" {
				t.Errorf("a runtime from a layer: %v", got)
			}
		})
	}
}
