// Package codepkg turns a function's code (a folder or a .zip) into the zip the gateway stores.
// A folder becomes a deterministic zip (sorted entries, fixed times, Unix modes kept), so the
// same folder always hashes the same and apply uploads code only when it changed.
package codepkg

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/internal/unpack"
)

// Package is a built code zip.
type Package struct {
	Data   []byte
	Sha256 string // hex
	Size   int64
}

// Base64Sha256 is Lambda's CodeSha256: base64 of the digest.
func (p *Package) Base64Sha256() string {
	b, _ := hex.DecodeString(p.Sha256)
	return base64.StdEncoding.EncodeToString(b)
}

// fixedTime keeps zips identical across builds.
var fixedTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Build packs path (a folder) or reads it (a .zip).
func Build(path string) (*Package, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading code: %w", err)
	}
	var data []byte
	if st.IsDir() {
		data, err = zipFolder(path)
	} else {
		data, err = os.ReadFile(path)
		if err == nil {
			err = checkZip(data)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("packaging %s: %w", path, err)
	}
	if len(data) > structs.MaxZipBytes {
		return nil, fmt.Errorf("packaging %s: the zip is %d MB; the limit is %d MB", path, len(data)>>20, structs.MaxZipBytes>>20)
	}
	sum := sha256.Sum256(data)
	return &Package{Data: data, Sha256: hex.EncodeToString(sum[:]), Size: int64(len(data))}, nil
}

func zipFolder(root string) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		info, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		h := &zip.FileHeader{Name: rel, Method: zip.Deflate, Modified: fixedTime}
		h.SetMode(info.Mode())
		switch {
		case info.IsDir():
			h.Name += "/"
			h.Method = zip.Store
			if _, err := zw.CreateHeader(h); err != nil {
				return nil, err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			h.Method = zip.Store
			w, err := zw.CreateHeader(h)
			if err != nil {
				return nil, err
			}
			_, _ = w.Write([]byte(target))
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			w, err := zw.CreateHeader(h)
			if err != nil {
				return nil, err
			}
			if _, err := w.Write(data); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s is not a regular file, folder or symlink", rel)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func checkZip(data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("not a valid zip: %w", err)
	}
	return unpack.CheckZip(zr, unpack.CodeOptions)
}

// FromZip is the package of a zip already built (a signed zip).
func FromZip(data []byte) *Package {
	sum := sha256.Sum256(data)
	return &Package{Data: data, Sha256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
}
