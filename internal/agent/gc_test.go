package agent

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/cluster/codestore"
	"github.com/lambdagw/gateway/internal/image"
)

// TestCollectorWaitsForTheCluster: the collector removes unreferenced code and images on its
// interval, and nothing while the node does not know the cluster's state.
func TestCollectorWaitsForTheCluster(t *testing.T) {
	dir := t.TempDir()
	code, err := codestore.New(filepath.Join(dir, "code"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("bootstrap")
	_, _ = w.Write([]byte("x"))
	_ = zw.Close()
	sha, _, err := code.Put(context.Background(), &buf, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
		t.Fatal(err)
	}
	imgs, err := image.New(image.Config{Dir: filepath.Join(dir, "images"), Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imgs.Pull(context.Background(), "oci-layout:"+filepath.Join(dir, "layout")+":1"); err != nil {
		t.Fatal(err)
	}
	stored := func() int { ds, _ := imgs.Images(); return len(ds) }

	var failing atomic.Bool
	failing.Store(true)
	var calls atomic.Int32
	c := &collector{interval: 5 * time.Millisecond, grace: time.Millisecond, logger: hclog.NewNullLogger(),
		caughtUp: func(context.Context) error {
			calls.Add(1)
			if failing.Load() {
				return errors.New("no leader")
			}
			return nil
		},
		code: code, keepCode: func() []string { return nil }, images: imgs, keepImages: func() []string { return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for calls.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	if !code.Has(sha) || stored() != 1 {
		t.Fatal("collected while the node did not know the cluster's state")
	}
	failing.Store(false)
	for deadline := time.Now().Add(10 * time.Second); code.Has(sha) || stored() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("unreferenced code (%t) and images (%d) were never collected", code.Has(sha), stored())
		}
	}
}
