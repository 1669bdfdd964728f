package image

import (
	"context"
	"crypto/rand"
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
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lambdagw/gateway/internal/testfixtures/nodeimage"
)

// BenchmarkPull pulls and unpacks an image of a Node.js root and two incompressible layers
// (about 150 MB as pulled) from a registry on loopback into an empty store.
func BenchmarkPull(b *testing.B) {
	base, err := nodeimage.Layers("../..")
	if err != nil {
		b.Skip(err)
	}
	layers := append([]v1.Layer(nil), base...)
	for i := 0; i < 2; i++ {
		data := make([]byte, 30<<20)
		_, _ = rand.Read(data)
		l, err := nodeimage.TarLayer(map[string][]byte{"data/part" + string(rune('a'+i)): data}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := nodeimage.ImageOf(layers, v1.Config{Cmd: []string{"x"}})
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
