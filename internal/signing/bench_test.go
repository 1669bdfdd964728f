package signing_test

import (
	"crypto/rand"
	"crypto/sha256"
	"os"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/testfixtures/sigtest"
)

// BenchmarkVerify is what a deploy under a code signing configuration adds, and what each node
// adds before it first runs the code: reading the signed zip's signature and hashing the zip as
// signed (Read), then verifying the bundle (Trust.Verify), for a key publisher and a certificate
// identity, on zips of 1 MB and 50 MB (Lambda's largest upload) of random, incompressible content
// written to a file as the code store keeps it.
func BenchmarkVerify(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1MB", 1 << 20}, {"50MB", 50 << 20}} {
		content := make([]byte, size.bytes)
		_, _ = rand.Read(content)
		z := zipOf(b, map[string]string{"bootstrap": string(content)}, "")
		for _, kind := range []string{"key", "certificate"} {
			b.Run(kind+"/"+size.name, func(b *testing.B) {
				var bundle []byte
				var trust *signing.Trust
				digest := sha256.Sum256(z)
				switch kind {
				case "key":
					p, priv := keyPair(b, "p")
					key, _ := signing.LoadPrivateKey(priv, nil)
					bundle, _ = signing.SignDigest(key, digest)
					trust = &signing.Trust{Publishers: map[string]*signing.Publisher{"p": p}}
				default:
					ca, _ := sigtest.NewCA()
					leaf, _ := ca.Issue("https://ci.example/release", "https://token.ci.example", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
					bundle, _ = leaf.Sign(digest)
					p, err := signing.IdentityPublisher("p", "https://ci.example/release", "", "https://token.ci.example", "", ca.TrustedRoot())
					if err != nil {
						b.Fatal(err)
					}
					trust = &signing.Trust{Publishers: map[string]*signing.Publisher{"p": p}}
				}
				signed, err := signing.Attach(z, bundle)
				if err != nil {
					b.Fatal(err)
				}
				path := b.TempDir() + "/blob"
				if err := os.WriteFile(path, signed, 0o600); err != nil {
					b.Fatal(err)
				}
				var readTime, verifyTime time.Duration
				b.SetBytes(int64(len(signed)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					f, err := os.Open(path)
					if err != nil {
						b.Fatal(err)
					}
					st, _ := f.Stat()
					s, err := signing.Read(f, st.Size())
					f.Close()
					if err != nil || s.Bundle == nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					if _, err := trust.Verify(s.Bundle, s.Digest, []string{"p"}); err != nil {
						b.Fatal(err)
					}
					readTime += t1.Sub(t0)
					verifyTime += time.Since(t1)
				}
				b.ReportMetric(float64(readTime.Microseconds())/float64(b.N), "read-µs/op")
				b.ReportMetric(float64(verifyTime.Microseconds())/float64(b.N), "verify-µs/op")
			})
		}
	}
}
