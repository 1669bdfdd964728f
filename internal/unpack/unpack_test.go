package unpack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// zent is one entry of a zip a test builds.
type zent struct {
	name string
	mode fs.FileMode
	body string // file content, or symlink target
}

func buildZip(t testing.TB, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: zip.Store}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var testOpts = Options{Limits: Limits{MaxEntries: 1000, MaxBytes: 1 << 20}, LinkMounts: []string{"/var/task", "/opt"}, DefaultExec: []string{"bootstrap"}}

// unzipInto unpacks data into a folder "tree" of a fresh temporary folder and returns both; the
// test then checks that nothing appeared beside "tree".
func unzipInto(t *testing.T, data []byte) (outer, tree string, err error) {
	t.Helper()
	outer = t.TempDir()
	tree = filepath.Join(outer, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if zerr != nil {
		t.Fatal(zerr)
	}
	return outer, tree, Zip(zr, tree, testOpts)
}

func onlyTree(t *testing.T, outer string) {
	t.Helper()
	ents, err := os.ReadDir(outer)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "tree" {
			t.Errorf("the archive wrote %q outside its folder", e.Name())
		}
	}
}

// The reproduction: a chain of symlinks, each lexically inside, then a file below the last.
func TestSymlinkChainCannotEscape(t *testing.T) {
	data := buildZip(t,
		zent{"a", fs.ModeSymlink | 0o777, "."},
		zent{"a/b", fs.ModeSymlink | 0o777, ".."},
		zent{"a/b/l2", fs.ModeSymlink | 0o777, "../.."},
		zent{"a/b/l2/escaped", 0o644, "owned"},
	)
	outer, _, err := unzipInto(t, data)
	if err == nil || !IsRefused(err) {
		t.Fatalf("a symlink chain was accepted: %v", err)
	}
	onlyTree(t, outer)
	if _, err := os.Stat(filepath.Join(filepath.Dir(outer), "escaped")); err == nil {
		t.Fatal("a file was written two folders above the target")
	}
}

func TestRefusedArchives(t *testing.T) {
	cases := map[string][]zent{
		"absolute name":            {{"/etc/cron.d/x", 0o644, "x"}},
		"dot-dot name":             {{"../x", 0o644, "x"}},
		"dot-dot inside":           {{"a/../../x", 0o644, "x"}},
		"backslash":                {{"..\\x", 0o644, "x"}},
		"link out":                 {{"l", fs.ModeSymlink | 0o777, "../outside"}},
		"absolute link":            {{"l", fs.ModeSymlink | 0o777, "/etc/passwd"}},
		"link climbing after name": {{"d/", fs.ModeDir | 0o755, ""}, {"d/l", fs.ModeSymlink | 0o777, ".."}, {"x", fs.ModeSymlink | 0o777, "d/l/.."}},
		"mount prefix trick":       {{"l", fs.ModeSymlink | 0o777, "/var/taskforce/x"}},
		"mount dot-dot":            {{"l", fs.ModeSymlink | 0o777, "/var/task/../../etc"}},
		"file below link":          {{"l", fs.ModeSymlink | 0o777, "d"}, {"d/", fs.ModeDir | 0o755, ""}, {"l/x", 0o644, "x"}},
		"file over link":           {{"l", fs.ModeSymlink | 0o777, "x"}, {"l", 0o644, "x"}},
		"duplicate file":           {{"x", 0o644, "1"}, {"x", 0o644, "2"}},
		"device":                   {{"null", fs.ModeDevice | fs.ModeCharDevice | 0o666, ""}},
		"fifo":                     {{"p", fs.ModeNamedPipe | 0o666, ""}},
		"socket":                   {{"s", fs.ModeSocket | 0o666, ""}},
		"empty name":               {{"", 0o644, "x"}},
		"nul":                      {{"a\x00b", 0o644, "x"}},
		"file as folder":           {{"f", 0o644, "x"}, {"f/g", 0o644, "y"}},
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			data := buildZip(t, ents...)
			outer, _, err := unzipInto(t, data)
			if err == nil || !IsRefused(err) {
				t.Fatalf("accepted (or failed for another reason): %v", err)
			}
			onlyTree(t, outer)
			zr, _ := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if cerr := CheckZip(zr, testOpts); cerr == nil || cerr.Error() != err.Error() {
				t.Fatalf("CheckZip answered %v; Zip %v", cerr, err)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Run("size counted as written", func(t *testing.T) {
		_, _, err := unzipInto(t, buildZip(t, zent{"a", 0o644, strings.Repeat("x", 600<<10)}, zent{"b", 0o644, strings.Repeat("x", 600<<10)}))
		if err == nil || !strings.Contains(err.Error(), "more than 1 MB") || !IsOverSize(err) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("entries", func(t *testing.T) {
		var ents []zent
		for i := 0; i < 1001; i++ {
			ents = append(ents, zent{name: filepath.Join("d", strings.Repeat("x", i%7+1)+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))), mode: 0o644})
		}
		_, _, err := unzipInto(t, buildZip(t, ents...))
		if err == nil || !strings.Contains(err.Error(), "more than 1000 entries") || IsOverSize(err) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestUsualArchivesUnpack(t *testing.T) {
	data := buildZip(t,
		zent{"bootstrap", 0o755 | fs.ModeSetuid, "#!/bin/sh"},
		zent{"node_modules/pkg/bin/cli.js", 0o644, "js"},
		zent{"node_modules/.bin/cli", fs.ModeSymlink | 0o777, "../pkg/bin/cli.js"},
		zent{"lib/libx.so.1", 0o644, "elf"},
		zent{"lib/libx.so", fs.ModeSymlink | 0o777, "libx.so.1"},
		zent{"lib/", fs.ModeDir | 0o755, ""},
		zent{"layer-lib", fs.ModeSymlink | 0o777, "/opt/lib/liby.so"},
		zent{"self", fs.ModeSymlink | 0o777, "/var/task/lib/libx.so"},
		zent{"./dot/./file", 0o600, "d"},
	)
	zr, _ := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err := CheckZip(zr, testOpts); err != nil {
		t.Fatalf("CheckZip: %v", err)
	}
	outer, tree, err := unzipInto(t, data)
	if err != nil {
		t.Fatal(err)
	}
	onlyTree(t, outer)
	st, err := os.Stat(filepath.Join(tree, "bootstrap"))
	if err != nil || st.Mode().Perm() != 0o755 || st.Mode()&fs.ModeSetuid != 0 {
		t.Errorf("bootstrap: %v %v (want 0755 without set-id)", st.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "node_modules/.bin/cli")); err != nil || string(b) != "js" {
		t.Errorf("link through ../: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "lib/libx.so")); err != nil || string(b) != "elf" {
		t.Errorf("library link: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(tree, "dot/file")); err != nil {
		t.Error(err)
	}
}

func TestZipWithoutUnixModesKeepsBootstrapExecutable(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range []string{"bootstrap", "handler.py"} {
		w, _ := zw.Create(n) // no mode: made "on FAT"
		_, _ = w.Write([]byte("x"))
	}
	_ = zw.Close()
	_, tree, err := unzipInto(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]fs.FileMode{"bootstrap": 0o755, "handler.py": 0o644} {
		st, err := os.Stat(filepath.Join(tree, n))
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", n, st.Mode(), err, want)
		}
	}
}

type tent struct {
	name string
	typ  byte
	link string
	body string
}

func buildTar(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}

func TestTarHardLinks(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := map[string][]tent{
		"to a host file":   {{"h", tar.TypeLink, secret, ""}},
		"climbing":         {{"h", tar.TypeLink, "../../../../../../etc/passwd", ""}},
		"through a link":   {{"l", tar.TypeSymlink, ".", ""}, {"f", tar.TypeReg, "", "x"}, {"h", tar.TypeLink, "l/f", ""}},
		"to a link":        {{"l", tar.TypeSymlink, "f", ""}, {"f", tar.TypeReg, "", "x"}, {"h", tar.TypeLink, "l", ""}},
		"to nothing":       {{"h", tar.TypeLink, "missing", ""}},
		"block device":     {{"sda", tar.TypeBlock, "", ""}},
		"char device":      {{"mem", tar.TypeChar, "", ""}},
		"write through it": {{"f", tar.TypeReg, "", "x"}, {"h", tar.TypeLink, "f", ""}, {"h", tar.TypeReg, "", "y"}},
	}
	for name, ents := range refused {
		t.Run(name, func(t *testing.T) {
			outer := t.TempDir()
			tree := filepath.Join(outer, "tree")
			_ = os.Mkdir(tree, 0o755)
			err := Tar(bytes.NewReader(buildTar(t, ents...)), tree, testOpts)
			if err == nil || !IsRefused(err) {
				t.Fatalf("accepted (or failed for another reason): %v", err)
			}
			onlyTree(t, outer)
			if b, _ := os.ReadFile(secret); string(b) != "host" {
				t.Fatal("the host file changed")
			}
		})
	}
	t.Run("inside", func(t *testing.T) {
		tree := t.TempDir()
		err := Tar(bytes.NewReader(buildTar(t, tent{"d/f", tar.TypeReg, "", "x"}, tent{"h", tar.TypeLink, "d/f", ""})), tree, testOpts)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(tree, "h")); err != nil || string(b) != "x" {
			t.Fatalf("%q %v", b, err)
		}
	})
}

// checkTree is the package's promise about a tree an archive was unpacked into (outer/tree):
// nothing beside it, and every symlink of the tree resolves inside it (or nowhere).
func checkTree(t *testing.T, outer, tree string) {
	t.Helper()
	onlyTree(t, outer)
	realTree, _ := filepath.EvalSymlinks(tree)
	_ = filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // dangling or a loop: resolves nowhere
		}
		if resolved != realTree && !strings.HasPrefix(resolved, realTree+"/") {
			t.Errorf("symlink %s resolves outside the tree, to %s", p, resolved)
		}
		return nil
	})
}

// fuzzTree makes outer/tree for one fuzz input.
func fuzzTree(t *testing.T) (outer, tree string) {
	outer = t.TempDir()
	tree = filepath.Join(outer, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	return outer, tree
}

var fuzzOpts = Options{Limits: Limits{MaxEntries: 200, MaxBytes: 1 << 20}}

// FuzzZip unpacks arbitrary bytes that parse as a zip and checks checkTree's promise.
func FuzzZip(f *testing.F) {
	f.Add(buildZip(f, zent{"a", fs.ModeSymlink | 0o777, "."}, zent{"a/b", fs.ModeSymlink | 0o777, ".."}, zent{"a/b/x", 0o644, "x"}))
	f.Add(buildZip(f, zent{"d/", fs.ModeDir | 0o755, ""}, zent{"d/l", fs.ModeSymlink | 0o777, ".."}, zent{"x", fs.ModeSymlink | 0o777, "d/l/.."}))
	f.Add(buildZip(f, zent{"bootstrap", 0o755, "x"}, zent{"lib/a.so", fs.ModeSymlink | 0o777, "../bootstrap"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		outer, tree := fuzzTree(t)
		_ = Zip(zr, tree, fuzzOpts)
		checkTree(t, outer, tree)
	})
}

// FuzzTar is FuzzZip for tar streams (image layers), hard links included.
func FuzzTar(f *testing.F) {
	f.Add(buildTar(f, tent{"l", tar.TypeSymlink, ".", ""}, tent{"l/l2", tar.TypeSymlink, "..", ""}, tent{"l/l2/x", tar.TypeReg, "", "x"}))
	f.Add(buildTar(f, tent{"f", tar.TypeReg, "", "x"}, tent{"h", tar.TypeLink, "f", ""}, tent{"h2", tar.TypeLink, "../../etc/passwd", ""}))
	f.Add(buildTar(f, tent{"d/", tar.TypeDir, "", ""}, tent{"d/l", tar.TypeSymlink, "..", ""}, tent{"x", tar.TypeSymlink, "d/l/..", ""}))
	f.Fuzz(func(t *testing.T, data []byte) {
		outer, tree := fuzzTree(t)
		_ = Tar(bytes.NewReader(data), tree, fuzzOpts)
		checkTree(t, outer, tree)
	})
}

// An image layer's whiteouts become overlayfs whiteouts, and a real overlay mount of two layers
// shows what the image format says: the hidden file is gone, the opaque folder shows only the
// upper layer's content.
func TestImageLayerWhiteouts(t *testing.T) {
	base, top := t.TempDir(), t.TempDir()
	if err := Tar(bytes.NewReader(buildTar(t,
		tent{"etc/", tar.TypeDir, "", ""}, tent{"etc/gone", tar.TypeReg, "", "old"}, tent{"etc/kept", tar.TypeReg, "", "kept"},
		tent{"opt/app/", tar.TypeDir, "", ""}, tent{"opt/app/old.js", tar.TypeReg, "", "old"},
	)), base, LayerOptions); err != nil {
		t.Fatal(err)
	}
	if err := Tar(bytes.NewReader(buildTar(t,
		tent{"etc/.wh.gone", tar.TypeReg, "", ""},
		tent{"opt/app/.wh..wh..opq", tar.TypeReg, "", ""}, tent{"opt/app/new.js", tar.TypeReg, "", "new"},
		tent{"usr/bin/node", tar.TypeSymlink, "/etc/alternatives/node", ""}, // any target: it resolves inside the environment
		tent{"dev/null", tar.TypeChar, "", ""},                              // skipped: the environment has its own /dev
	)), top, LayerOptions); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(top, "etc/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("etc/gone is not a 0/0 character device: %v %+v", err, st)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(top, "opt/app"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opt/app is not opaque: %v %q", err, buf[:n])
	}
	if _, err := os.Lstat(filepath.Join(top, "dev/null")); !os.IsNotExist(err) {
		t.Fatalf("a device entry was written: %v", err)
	}
	// The readers of the format agree with the writer, and see nothing else as it.
	if info, err := os.Lstat(filepath.Join(top, "etc/gone")); err != nil || !IsWhiteout(info) || !IsOpaque(filepath.Join(top, "opt/app")) {
		t.Fatalf("IsWhiteout and IsOpaque do not read what was written: %v", err)
	}
	if info, err := os.Lstat(filepath.Join(top, "opt/app")); err != nil || IsWhiteout(info) || IsOpaque(filepath.Join(top, "etc")) {
		t.Fatalf("a folder read as a whiteout, or a plain folder as opaque: %v", err)
	}
	merged := t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+top+":"+base); err != nil {
		t.Fatalf("mounting the layers: %v", err)
	}
	defer func() { _ = unix.Unmount(merged, unix.MNT_DETACH) }()
	for p, want := range map[string]string{"etc/gone": "", "etc/kept": "kept", "opt/app/old.js": "", "opt/app/new.js": "new"} {
		b, err := os.ReadFile(filepath.Join(merged, p))
		switch {
		case want == "" && !os.IsNotExist(err):
			t.Errorf("%s is visible through the overlay: %v", p, err)
		case want != "" && string(b) != want:
			t.Errorf("%s reads %q, %v; want %q", p, b, err, want)
		}
	}
}

// What a hostile layer tries: whiteouts that climb, hide the layer's own files or name nothing,
// and writes through its own links.
func TestImageLayerRefused(t *testing.T) {
	refused := map[string][]tent{
		"a whiteout climbing":           {{"a/.wh...", tar.TypeReg, "", ""}},
		"a whiteout of nothing":         {{".wh.", tar.TypeReg, "", ""}},
		"a whiteout of a whiteout":      {{".wh..wh.x", tar.TypeReg, "", ""}},
		"a whiteout of its own file":    {{"f", tar.TypeReg, "", "x"}, {".wh.f", tar.TypeReg, "", ""}},
		"a whiteout below a link":       {{"l", tar.TypeSymlink, "/etc", ""}, {"l/.wh.passwd", tar.TypeReg, "", ""}},
		"an opaque folder below a link": {{"l", tar.TypeSymlink, "/etc", ""}, {"l/.wh..wh..opq", tar.TypeReg, "", ""}},
		"a file below a link":           {{"l", tar.TypeSymlink, "/etc", ""}, {"l/passwd", tar.TypeReg, "", "x"}},
		"a hard link to a host file":    {{"h", tar.TypeLink, "/etc/passwd", ""}},
	}
	for name, ents := range refused {
		t.Run(name, func(t *testing.T) {
			outer := t.TempDir()
			tree := filepath.Join(outer, "tree")
			if err := os.Mkdir(tree, 0o755); err != nil {
				t.Fatal(err)
			}
			err := Tar(bytes.NewReader(buildTar(t, ents...)), tree, LayerOptions)
			if !IsRefused(err) {
				t.Fatalf("unpacked (err %v)", err)
			}
			onlyTree(t, outer)
		})
	}
}

// FuzzLayer unpacks arbitrary tar streams as image layers: nothing may appear beside the tree,
// and the only device in it is the whiteout (0/0 character device).
func FuzzLayer(f *testing.F) {
	f.Add(buildTar(f, tent{"a/.wh.b", tar.TypeReg, "", ""}, tent{"c/.wh..wh..opq", tar.TypeReg, "", ""}, tent{"c/d", tar.TypeReg, "", "x"}))
	f.Add(buildTar(f, tent{"l", tar.TypeSymlink, "/", ""}, tent{"l/.wh.etc", tar.TypeReg, "", ""}, tent{"dev/sda", tar.TypeBlock, "", ""}))
	f.Add(buildTar(f, tent{"f", tar.TypeReg, "", "x"}, tent{"h", tar.TypeLink, "f", ""}, tent{"x/.wh...", tar.TypeReg, "", ""}))
	opts := LayerOptions
	opts.Limits = fuzzOpts.Limits
	f.Fuzz(func(t *testing.T, data []byte) {
		outer, tree := fuzzTree(t)
		_ = Tar(bytes.NewReader(data), tree, opts)
		onlyTree(t, outer)
		_ = filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) == 0 {
				return nil
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("%s is a device that is not a whiteout: %+v", p, st)
			}
			return nil
		})
	})
}
