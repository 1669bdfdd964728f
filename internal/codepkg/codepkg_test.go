package codepkg

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFolderZipIsDeterministicAndKeepsModes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(dir, "lib"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "lib", "a.txt"), []byte("a"), 0o644)
	p1, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	_ = os.Chtimes(filepath.Join(dir, "bootstrap"), later, later)
	p2, _ := Build(dir)
	if p1.Sha256 != p2.Sha256 || p1.Base64Sha256() == "" {
		t.Fatal("the same folder must hash the same whatever its mtimes")
	}
	zr, _ := zip.NewReader(bytes.NewReader(p1.Data), p1.Size)
	modes := map[string]os.FileMode{}
	for _, f := range zr.File {
		modes[f.Name] = f.Mode()
	}
	if modes["bootstrap"].Perm() != 0o755 || modes["lib/a.txt"].Perm() != 0o644 || !modes["lib/"].IsDir() {
		t.Fatalf("modes %v", modes)
	}
	_ = os.WriteFile(filepath.Join(dir, "lib", "a.txt"), []byte("b"), 0o644)
	if p3, _ := Build(dir); p3.Sha256 == p1.Sha256 {
		t.Fatal("changed content must change the hash")
	}
	// A .zip is used byte for byte.
	zp := filepath.Join(t.TempDir(), "code.zip")
	_ = os.WriteFile(zp, p1.Data, 0o644)
	if pz, err := Build(zp); err != nil || pz.Sha256 != p1.Sha256 {
		t.Fatalf("zip passthrough: %v", err)
	}
	_ = os.WriteFile(zp, []byte("not a zip"), 0o644)
	if _, err := Build(zp); err == nil {
		t.Fatal("accepted a file that is not a zip")
	}
}
