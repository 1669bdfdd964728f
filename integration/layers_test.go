package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLayerBlocksApply: a layer block in a function file is published by `gateway apply` and
// mounted at /opt of the function that names it; a change of the layer's files publishes a new
// version and moves the function to it; removing `layers` takes /opt away.
func TestLayerBlocksApply(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "layers"})
	dir := t.TempDir()
	layerDir := filepath.Join(dir, "deps")
	if err := os.MkdirAll(filepath.Join(layerDir, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	setLayer := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(layerDir, "conf", "greeting.txt"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := func(withLayers bool) string {
		layers := ""
		if withLayers {
			layers = "  layers    = [layer.deps]\n"
		}
		return writeFunctions(t, fmt.Sprintf(`
layer "deps" {
  code                = %q
  compatible_runtimes = ["provided.al2023"]
  description         = "shared files"
}

function "layered" {
  runtime   = "provided.al2023"
  code      = %q
  memory_mb = 128
  timeout   = "5s"
%s}
`, layerDir, fnDir, layers))
	}
	apply := func(path, want string) {
		t.Helper()
		out, errOut, code := a.cli("apply", "-address", a.addr, path)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("apply exited %d, want %q in its output:\n%s\n%s", code, want, out, errOut)
		}
	}
	read := func() string {
		t.Helper()
		r := a.invoke("layered", `{"mode":"readfile","path":"/opt/conf/greeting.txt"}`, nil)
		var got struct{ Content, Error string }
		if r.status != 200 || json.Unmarshal(r.body, &got) != nil {
			t.Fatalf("invoke: %d %s", r.status, r.body)
		}
		if got.Error != "" {
			return "error: " + got.Error
		}
		return got.Content
	}

	setLayer("one")
	apply(file(true), "layer deps: version 1 published")
	if got := read(); got != "one" {
		t.Fatalf("/opt after the first apply: %q", got)
	}
	out, _, code := a.cli("plan", "-address", a.addr, file(true))
	if code != 0 || !strings.Contains(out, "Plan: 0 to change") {
		t.Fatalf("plan after apply exited %d, want no changes:\n%s", code, out)
	}
	setLayer("two")
	apply(file(true), "layer deps: version 2 published")
	if got := read(); got != "two" {
		t.Fatalf("/opt after the layer changed: %q", got)
	}
	apply(file(false), "layers [deps:2] -> none")
	if got := read(); !strings.HasPrefix(got, "error:") {
		t.Fatalf("/opt/conf/greeting.txt is still there once the function has no layers: %q", got)
	}
}
