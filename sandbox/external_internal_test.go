package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// The external extensions of an environment are the executables its /opt/extensions will show:
// a later layer's files over an earlier one's, overlayfs' whiteouts and opaque folders honoured,
// plain files and folders never started, a symlink listed but never followed on the host.
func TestExternalExtensionsFound(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("whiteouts (character devices) and trusted.* attributes need root; CI runs as root")
	}
	mk := func(t *testing.T, root string, files map[string]os.FileMode) string {
		t.Helper()
		for name, mode := range files {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			switch {
			case mode&os.ModeCharDevice != 0:
				if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
					t.Fatal(err)
				}
			case mode.IsDir():
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
					t.Fatal(err)
				}
			}
		}
		return root
	}
	// A function's layers at /opt: their extensions/ folders.
	one := mk(t, t.TempDir(), map[string]os.FileMode{"extensions/b": 0o755, "extensions/a": 0o755, "extensions/plain.txt": 0o644,
		"extensions/gone": 0o755, "extensions/sub": os.ModeDir})
	two := mk(t, t.TempDir(), map[string]os.FileMode{"extensions/c": 0o755, "extensions/gone": 0o644})
	if err := os.Symlink("/opt/extensions/a", filepath.Join(two, "extensions", "link")); err != nil {
		t.Fatal(err)
	}
	if got, want := externalExtensions([]string{one, two}, nil), []string{"a", "b", "c", "link"}; !slices.Equal(got, want) {
		t.Errorf("from layers at /opt: %v, want %v", got, want)
	}
	// An image's layers: opt/extensions, whiteouts and an opaque folder.
	base := mk(t, t.TempDir(), map[string]os.FileMode{"opt/extensions/x": 0o755, "opt/extensions/y": 0o755})
	hide := mk(t, t.TempDir(), map[string]os.FileMode{"opt/extensions/x": os.ModeCharDevice, "opt/extensions/z": 0o755})
	if got, want := externalExtensions(nil, []string{base, hide}), []string{"y", "z"}; !slices.Equal(got, want) {
		t.Errorf("an image with a whiteout: %v, want %v", got, want)
	}
	opq := mk(t, t.TempDir(), map[string]os.FileMode{"opt/extensions/w": 0o755})
	if err := unix.Lsetxattr(filepath.Join(opq, "opt", "extensions"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := externalExtensions(nil, []string{base, hide, opq}), []string{"w"}; !slices.Equal(got, want) {
		t.Errorf("an image with an opaque folder: %v, want %v", got, want)
	}
	// Layers at /opt hide the image's /opt.
	if got, want := externalExtensions([]string{two}, []string{base}), []string{"c", "link"}; !slices.Equal(got, want) {
		t.Errorf("layers over an image: %v, want %v", got, want)
	}
	// A hostile layer whose extensions/ (or an image's opt/) is a symlink to a folder of the
	// host: the host's folder is never listed.
	hostDir := mk(t, t.TempDir(), map[string]os.FileMode{"secret-name": 0o755})
	evil := t.TempDir()
	if err := os.Symlink(hostDir, filepath.Join(evil, "extensions")); err != nil {
		t.Fatal(err)
	}
	if got := externalExtensions([]string{evil}, nil); len(got) != 0 {
		t.Errorf("a symlinked extensions folder was followed on the host: %v", got)
	}
	evilImg := t.TempDir()
	if err := os.Symlink(filepath.Dir(filepath.Join(hostDir, "x")), filepath.Join(evilImg, "opt")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(hostDir, "extensions"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "extensions", "host-file"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := externalExtensions(nil, []string{evilImg}); len(got) != 0 {
		t.Errorf("a symlinked opt folder was followed on the host: %v", got)
	}
}
