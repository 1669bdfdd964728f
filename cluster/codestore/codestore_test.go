package codestore

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type entry struct {
	name string
	mode os.FileMode
	body string
}

func makeZip(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(e.body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPutAndUnpackKeepsModesReadOnly(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	z := makeZip(t, entry{"bootstrap", 0o755, "#!/bin/sh\n"}, entry{"lib/data.txt", 0o644, "data"}, entry{"link", os.ModeSymlink | 0o777, "lib/data.txt"})
	sha, size, err := s.Put(context.Background(), bytes.NewReader(z), 1<<20)
	if err != nil || size != int64(len(z)) || !s.Has(sha) {
		t.Fatalf("put: %v %d %v", err, size, s.Has(sha))
	}
	if sha2, _, _ := s.Put(context.Background(), bytes.NewReader(z), 1<<20); sha2 != sha {
		t.Fatal("the same content must have the same hash")
	}
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	for i := range dirs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dirs[i], err = s.Unpacked(context.Background(), sha)
		}(i)
	}
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	dir := dirs[0]
	st, err := os.Stat(filepath.Join(dir, "bootstrap"))
	if err != nil || st.Mode().Perm() != 0o555 {
		t.Fatalf("bootstrap mode %v %v, want r-xr-xr-x", st.Mode(), err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o555 {
		t.Fatalf("unpacked root mode %v: the unprivileged runtime must be able to enter it", st.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "link")); string(b) != "data" {
		t.Fatalf("symlink content %q", b)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644); err == nil && os.Getuid() != 0 {
		t.Fatal("the unpacked tree must be read-only")
	}
	if err := s.Remove(sha); err != nil || s.Has(sha) {
		t.Fatalf("remove: %v", err)
	}
}

func TestUnpackRejectsEscapes(t *testing.T) {
	cases := map[string][]entry{
		"outside":         {{"../evil", 0o644, "x"}},
		"absolute":        {{"/etc/evil", 0o644, "x"}},
		"symlink outside": {{"l", os.ModeSymlink | 0o777, "../../../../etc/passwd"}},
		"device":          {{"dev", os.ModeDevice | 0o644, ""}},
		// The unpack folder is <store>/tmp/unpack-*: four links climb to the test's folder.
		"symlink chain": {{"a", os.ModeSymlink | 0o777, "."}, {"a/b", os.ModeSymlink | 0o777, ".."},
			{"a/b/c", os.ModeSymlink | 0o777, "../.."}, {"a/b/c/d", os.ModeSymlink | 0o777, "../../.."},
			{"a/b/c/d/escaped", 0o644, "x"}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			outer := t.TempDir()
			s, _ := New(filepath.Join(outer, "store"), nil)
			defer func() {
				ents, _ := os.ReadDir(outer)
				for _, e := range ents {
					if e.Name() != "store" {
						t.Errorf("the zip wrote %s beside the store", e.Name())
					}
				}
			}()
			sha, _, err := s.Put(context.Background(), bytes.NewReader(makeZip(t, entries...)), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Unpacked(context.Background(), sha); err == nil {
				t.Fatal("unpacked an escaping zip")
			}
		})
	}
	s, _ := New(t.TempDir(), nil)
	if _, err := s.Unpacked(context.Background(), "../../etc"); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("a path as hash: %v", err)
	}
	if _, _, err := s.Put(context.Background(), strings.NewReader(strings.Repeat("x", 100)), 10); err == nil {
		t.Fatal("size limit not enforced")
	}
}
