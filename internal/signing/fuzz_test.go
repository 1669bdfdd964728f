package signing_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"os"
	"testing"

	"github.com/lambdagw/gateway/internal/signing"
)

// FuzzSignedZip feeds arbitrary content to what reads a signed zip and its bundle (seeds: an
// unsigned zip, a zip signed by the trusted test key, one with a comment of its own, bundles cut
// short). Neither may panic or read without bound; what Read takes for the signed zip must be
// what the content unpacks to (the same entries through archive/zip, so a signature covers
// what runs); and a signature verifies only for the one zip the trusted key signed.
func FuzzSignedZip(f *testing.F) {
	pub, err := os.ReadFile("testdata/fuzz.pub")
	if err != nil {
		f.Fatal(err)
	}
	p, err := signing.KeyPublisher("fuzz", pub)
	if err != nil {
		f.Fatal(err)
	}
	signedZip, err := os.ReadFile("testdata/signed.zip")
	if err != nil {
		f.Fatal(err)
	}
	want, err := signing.Read(bytes.NewReader(signedZip), int64(len(signedZip)))
	if err != nil || want.Bundle == nil {
		f.Fatalf("testdata/signed.zip: %v", err)
	}
	trust := &signing.Trust{Publishers: map[string]*signing.Publisher{"fuzz": p}}
	f.Add(signedZip)
	f.Fuzz(func(t *testing.T, content []byte) {
		s, err := signing.Read(bytes.NewReader(content), int64(len(content)))
		if err != nil {
			return
		}
		if s.Bundle == nil {
			if s.Digest != sha256.Sum256(content) {
				t.Fatal("an unsigned zip's digest is not its own")
			}
			return
		}
		if len(s.Bundle) > signing.MaxBundleBytes {
			t.Fatalf("a %d-byte bundle was read", len(s.Bundle))
		}
		unsigned, err := signing.Unsigned(content)
		if err != nil {
			t.Fatalf("Read took it, Unsigned did not: %v", err)
		}
		if sha256.Sum256(unsigned) != s.Digest {
			t.Fatal("the digest Read gives is not that of the zip without its signature")
		}
		// What archive/zip unpacks of the signed zip is what it unpacks of the zip as signed.
		a, errA := zip.NewReader(bytes.NewReader(content), int64(len(content)))
		b, errB := zip.NewReader(bytes.NewReader(unsigned), int64(len(unsigned)))
		if (errA == nil) != (errB == nil) {
			t.Fatalf("archive/zip reads the signed zip (%v) and the zip as signed (%v) differently", errA, errB)
		}
		if errA == nil {
			if len(a.File) != len(b.File) {
				t.Fatalf("%d entries signed, %d unpacked", len(b.File), len(a.File))
			}
			for i := range a.File {
				fa, fb := a.File[i], b.File[i]
				if fa.Name != fb.Name || fa.CRC32 != fb.CRC32 || fa.UncompressedSize64 != fb.UncompressedSize64 {
					t.Fatalf("entry %d: %q signed, %q unpacked", i, fb.Name, fa.Name)
				}
			}
		}
		if _, err := trust.Verify(s.Bundle, s.Digest, []string{"fuzz"}); err == nil && s.Digest != want.Digest {
			t.Fatalf("a signature verified for content the key never signed (%x)", s.Digest)
		}
	})
}
