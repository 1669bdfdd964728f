package signing_test

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/testfixtures/sigtest"
)

// zipOf makes a zip of files, with comment as its archive comment.
func zipOf(t testing.TB, files map[string]string, comment string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	if comment != "" {
		_ = zw.SetComment(comment)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// keyPair makes a key and its publisher.
func keyPair(t testing.TB, name string) (*signing.Publisher, []byte) {
	t.Helper()
	priv, pub, err := signing.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := signing.KeyPublisher(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return p, priv
}

// signZip signs z with the PEM key and returns the signed zip.
func signZip(t testing.TB, z, pemKey []byte) []byte {
	t.Helper()
	out, err := sigtest.SignZip(z, pemKey)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func read(t testing.TB, z []byte) *signing.Signed {
	t.Helper()
	s, err := signing.Read(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func entries(t testing.TB, z []byte) map[string]uint32 {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, f := range zr.File {
		out[f.Name] = f.CRC32
	}
	return out
}

// TestSignedZipIsTheZipItSigns: the signature rides in the zip's comment; the signed zip unpacks
// to the same files, and reads back the digest of the zip as signed, whatever comment it had.
func TestSignedZipIsTheZipItSigns(t *testing.T) {
	_, key := keyPair(t, "a")
	for _, comment := range []string{"", "built by make"} {
		z := zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\necho hi\n", "lib/x.txt": "x"}, comment)
		if s := read(t, z); s.Bundle != nil || s.Digest != sha256.Sum256(z) {
			t.Fatalf("an unsigned zip reads as %+v", s)
		}
		signed := signZip(t, z, key)
		s := read(t, signed)
		if s.Bundle == nil || s.Digest != sha256.Sum256(z) {
			t.Fatalf("comment %q: the signed zip reads the digest %x, want %x (bundle %d bytes)", comment, s.Digest, sha256.Sum256(z), len(s.Bundle))
		}
		if got, want := entries(t, signed), entries(t, z); len(got) != len(want) || got["bootstrap"] != want["bootstrap"] {
			t.Errorf("the signed zip has %v, the zip %v", got, want)
		}
		zr, _ := zip.NewReader(bytes.NewReader(signed), int64(len(signed)))
		if !strings.HasPrefix(zr.Comment, comment) {
			t.Errorf("the zip's own comment %q is not kept first (%q)", comment, zr.Comment)
		}
		unsigned, err := signing.Unsigned(signed)
		if err != nil || !bytes.Equal(unsigned, z) {
			t.Errorf("Unsigned gives back %d bytes (%v), not the zip", len(unsigned), err)
		}
		// Signing again replaces the signature: one signature a zip.
		again := signZip(t, signed, key)
		if s2 := read(t, again); s2.Digest != s.Digest || len(again) != len(signed) {
			t.Errorf("signing a signed zip again: digest %x, %d bytes (first %d)", s2.Digest, len(again), len(signed))
		}
	}
	if _, err := signing.Read(bytes.NewReader([]byte("not a zip")), 9); !errors.Is(err, signing.ErrNotZip) {
		t.Errorf("not a zip: %v", err)
	}
}

func TestVerifyKey(t *testing.T) {
	pa, keyA := keyPair(t, "release")
	pb, keyB := keyPair(t, "other")
	trust := &signing.Trust{Publishers: map[string]*signing.Publisher{"release": pa, "other": pb}}
	z := zipOf(t, map[string]string{"bootstrap": "v1"}, "")
	signed := signZip(t, z, keyA)
	s := read(t, signed)
	if p, err := trust.Verify(s.Bundle, s.Digest, []string{"other", "release"}); err != nil || p != "release" {
		t.Fatalf("signed by release: %q, %v", p, err)
	}
	untrusted := func(name string, err error) {
		t.Helper()
		var ue *signing.UntrustedError
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v, want an UntrustedError", name, err)
		}
	}
	integrity := func(name string, err error) {
		t.Helper()
		if !signing.IsIntegrity(err) {
			t.Errorf("%s: %v, want an IntegrityError", name, err)
		}
	}
	_, err := trust.Verify(s.Bundle, s.Digest, []string{"other"})
	untrusted("a key not in allowed_publishers", err)
	_, err = trust.Verify(s.Bundle, s.Digest, []string{"nobody"})
	untrusted("a publisher this node lacks", err)
	_, err = trust.Verify(s.Bundle, s.Digest, nil)
	untrusted("no publisher allowed", err)
	// Signed by another key than the allowed one.
	s2 := read(t, signZip(t, z, keyB))
	_, err = trust.Verify(s2.Bundle, s2.Digest, []string{"release"})
	untrusted("signed by another key", err)

	// The code altered after signing: its digest is not the signed one.
	altered := append([]byte(nil), signed...)
	altered[31] ^= 1 // in the first entry's header
	sa := read(t, altered)
	_, err = trust.Verify(sa.Bundle, sa.Digest, []string{"release"})
	integrity("altered after signing", err)
	// A bundle for another artifact.
	other := signZip(t, zipOf(t, map[string]string{"bootstrap": "else"}, ""), keyA)
	so := read(t, other)
	_, err = trust.Verify(so.Bundle, s.Digest, []string{"release"})
	integrity("a bundle for another artifact", err)
	// A tampered signature: intact digest, a signature no key made.
	tampered := bytes.Replace(s.Bundle, []byte(`"signature":"`), []byte(`"signature":"AAAA`), 1)
	_, err = trust.Verify(tampered, s.Digest, []string{"release"})
	untrusted("a tampered signature", err)
	// Garbage and a huge bundle.
	_, err = trust.Verify([]byte("{not json"), s.Digest, []string{"release"})
	integrity("garbage", err)
	_, err = trust.Verify(bytes.Repeat([]byte("x"), signing.MaxBundleBytes+1), s.Digest, []string{"release"})
	integrity("a huge bundle", err)

	// A revoked key is refused though it is allowed.
	fp, _ := signing.KeyFingerprint(pa.Key)
	trust.Revoked = map[string]bool{fp: true}
	_, err = trust.Verify(s.Bundle, s.Digest, []string{"release"})
	untrusted("a revoked key", err)
}

func TestVerifyCertificateIdentity(t *testing.T) {
	ca, err := sigtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	const id, issuer = "https://ci.example/release@refs/heads/main", "https://token.ci.example"
	pub, err := signing.IdentityPublisher("ci", id, "", issuer, "", ca.TrustedRoot())
	if err != nil {
		t.Fatal(err)
	}
	wild, err := signing.IdentityPublisher("ci-any", "", `^https://ci\.example/`, "", `^https://token\.ci\.example$`, ca.TrustedRoot())
	if err != nil {
		t.Fatal(err)
	}
	keyPub, _ := keyPair(t, "key")
	trust := &signing.Trust{Publishers: map[string]*signing.Publisher{"ci": pub, "ci-any": wild, "key": keyPub}}
	digest := sha256.Sum256([]byte("code"))
	sign := func(identity, iss string, from, to time.Time) []byte {
		t.Helper()
		leaf, err := ca.Issue(identity, iss, from, to)
		if err != nil {
			t.Fatal(err)
		}
		b, err := leaf.Sign(digest)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now()
	good := sign(id, issuer, now.Add(-time.Minute), now.Add(time.Hour))
	if p, err := trust.Verify(good, digest, []string{"ci"}); err != nil || p != "ci" {
		t.Fatalf("the identity's signature: %q, %v", p, err)
	}
	if p, err := trust.Verify(good, digest, []string{"key", "ci-any"}); err != nil || p != "ci-any" {
		t.Fatalf("the identity by regular expressions: %q, %v", p, err)
	}
	for _, c := range []struct {
		name   string
		bundle []byte
		allow  []string
		want   string
	}{
		{"another identity", sign("https://ci.example/other@refs/heads/main", issuer, now.Add(-time.Minute), now.Add(time.Hour)), []string{"ci"}, "ci:"},
		{"another issuer", sign(id, "https://token.elsewhere", now.Add(-time.Minute), now.Add(time.Hour)), []string{"ci"}, "ci:"},
		{"an expired certificate", sign(id, issuer, now.Add(-2*time.Hour), now.Add(-time.Hour)), []string{"ci"}, "expired"},
		{"a certificate for a key publisher", good, []string{"key"}, "certificate"},
	} {
		_, err := trust.Verify(c.bundle, digest, c.allow)
		var ue *signing.UntrustedError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an UntrustedError saying %q", c.name, err, c.want)
		}
	}
	// A certificate of another CA.
	other, _ := sigtest.NewCA()
	leaf, _ := other.Issue(id, issuer, now.Add(-time.Minute), now.Add(time.Hour))
	b, _ := leaf.Sign(digest)
	if _, err := trust.Verify(b, digest, []string{"ci"}); err == nil || signing.IsIntegrity(err) {
		t.Errorf("another CA's certificate: %v", err)
	}
	// A signature that does not match the certificate it carries is an integrity failure.
	leaf1, _ := ca.Issue(id, issuer, now.Add(-time.Minute), now.Add(time.Hour))
	leaf2, _ := ca.Issue(id, issuer, now.Add(-time.Minute), now.Add(time.Hour))
	sig, _ := leaf2.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	mixed, _ := sigtest.CertBundle(leaf1.Cert, digest, sig)
	if _, err := trust.Verify(mixed, digest, []string{"ci"}); !signing.IsIntegrity(err) {
		t.Errorf("a signature not of its certificate's key: %v", err)
	}
	// A revoked certificate, by its fingerprint or by a PEM of it.
	byPEM, err := signing.RevocationEntry(leaf1.PEM())
	if err != nil || len(byPEM) != 2 {
		t.Fatalf("revocation entry of a certificate: %v, %v", byPEM, err)
	}
	trust.Revoked = map[string]bool{byPEM[0]: true}
	sig1, _ := leaf1.Sign(digest)
	if _, err := trust.Verify(sig1, digest, []string{"ci"}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked certificate: %v", err)
	}
	if _, err := trust.Verify(good, digest, []string{"ci"}); err != nil {
		t.Errorf("another certificate of the identity, not revoked: %v", err)
	}
}
