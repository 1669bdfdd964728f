package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BenchmarkPull pulls and unpacks an image of 5,000 small files in nested folders (a runtime's
// node_modules) and two incompressible 30 MB layers from a registry on loopback into an empty
// store.
func BenchmarkPull(b *testing.B) {
	files := map[string][]byte{}
	for i := 0; i < 5000; i++ {
		files[fmt.Sprintf("var/runtime/node_modules/m%d/lib/sub/dir/f%d.js", i/20, i)] = []byte("module.exports = 1;\n")
	}
	small, err := benchLayer(files, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	layers := []v1.Layer{small}
	for i := 0; i < 2; i++ {
		data := make([]byte, 30<<20)
		_, _ = rand.Read(data)
		l, err := benchLayer(map[string][]byte{fmt.Sprintf("data/part%d", i): data}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/bench/img:1"
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, l := range layers {
		n, _ := l.Size()
		total += n
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := New(Config{Dir: filepath.Join(b.TempDir(), "images"), Keychain: authn.NewMultiKeychain()})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Pull(context.Background(), ref); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLayer is a gzip layer of files (mode 0644).
func benchLayer(files map[string][]byte, _, _ any) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
