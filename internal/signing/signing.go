// Package signing verifies and makes the signatures of function code in Sigstore's formats: a
// Sigstore bundle (what `cosign sign-blob --bundle` and `gateway sign` write) carried in the
// code's zip (container.go), or found beside an image in its registry (image.go). Verification
// is sigstore-go's, offline: a publisher is a public key, or a certificate identity under a
// trusted root the operator gives (no Fulcio, Rekor or TUF is reached).
//
// The checks follow Lambda's: integrity (the bundle is readable and signs this very code,
// *IntegrityError, which Lambda refuses whatever the policy: InvalidCodeSignatureException), then
// trust (signed by an allowed publisher, a certificate valid when it signed, nothing revoked,
// *UntrustedError: CodeVerificationFailedException under Enforce, a warning under Warn).
package signing

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// ErrUnsigned is code that carries no signature.
var ErrUnsigned = errors.New("the code is not signed")

// IntegrityError is a signature that cannot be read, or that signs other content than the code:
// the code was changed after it was signed, or the signature was.
type IntegrityError struct{ Reason string }

func (e *IntegrityError) Error() string {
	return "the code signature failed the integrity check: " + e.Reason
}

// UntrustedError is an intact signature the policy does not trust: by no allowed publisher,
// with a certificate that was not valid when it signed, or with a revoked key.
type UntrustedError struct{ Reason string }

func (e *UntrustedError) Error() string { return e.Reason }

// IsIntegrity reports whether err is an *IntegrityError.
func IsIntegrity(err error) bool {
	var ie *IntegrityError
	return errors.As(err, &ie)
}

// Publisher is someone whose signatures a code signing configuration may allow: a key, or a
// certificate identity (the certificate's subject alternative name and OIDC issuer, as Fulcio
// writes them, each exact or a regular expression) chained to a trusted root.
type Publisher struct {
	Name string
	// Key is a key publisher's public key.
	Key crypto.PublicKey
	// Identity and Root make a certificate publisher.
	Identity *verify.CertificateIdentity
	Root     root.TrustedMaterial
}

// KeyPublisher makes a publisher of the PEM public key pemKey (a cosign.pub).
func KeyPublisher(name string, pemKey []byte) (*Publisher, error) {
	key, err := ParsePublicKey(pemKey)
	if err != nil {
		return nil, err
	}
	return &Publisher{Name: name, Key: key}, nil
}

// IdentityPublisher makes a certificate publisher: a certificate whose subject alternative name
// is san (or matches sanRegexp) and whose OIDC issuer is issuer (or matches issuerRegexp),
// chained to a certificate authority of trustedRootJSON (Sigstore's trusted_root.json).
func IdentityPublisher(name, san, sanRegexp, issuer, issuerRegexp string, trustedRootJSON []byte) (*Publisher, error) {
	id, err := verify.NewShortCertificateIdentity(issuer, issuerRegexp, san, sanRegexp)
	if err != nil {
		return nil, err
	}
	tr, err := root.NewTrustedRootFromJSON(trustedRootJSON)
	if err != nil {
		return nil, fmt.Errorf("reading the trusted root: %w", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, errors.New("the trusted root has no certificate authority")
	}
	return &Publisher{Name: name, Identity: &id, Root: tr}, nil
}

// ParsePublicKey reads a PEM public key ("PUBLIC KEY", as cosign writes it), or the key of a
// PEM certificate.
func ParsePublicKey(pemKey []byte) (crypto.PublicKey, error) {
	b, _ := pem.Decode(pemKey)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	switch b.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("a PEM %q block is not a public key", b.Type)
}

// Fingerprint is "sha256:<hex>" of a key's DER (SubjectPublicKeyInfo) or a certificate's DER:
// how revocations name them.
func Fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(s[:])
}

// KeyFingerprint is the Fingerprint of a public key.
func KeyFingerprint(key crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", err
	}
	return Fingerprint(der), nil
}

// RevocationEntry reads one entry of a revocation list: "sha256:<hex>", or a PEM public key or
// certificate (its fingerprints: a certificate's own and its key's).
func RevocationEntry(entry []byte) ([]string, error) {
	s := strings.TrimSpace(string(entry))
	if h, ok := strings.CutPrefix(s, "sha256:"); ok {
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%q is not sha256:<64 hex digits>", s)
		}
		return []string{strings.ToLower(s)}, nil
	}
	var out []string
	rest := entry
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "PUBLIC KEY":
			out = append(out, Fingerprint(b.Bytes))
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, err
			}
			out = append(out, Fingerprint(c.Raw), Fingerprint(c.RawSubjectPublicKeyInfo))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("neither sha256:<hex> nor a PEM public key or certificate")
	}
	return out, nil
}

// Trust is what a node trusts: its publishers by name, and the keys and certificates it refuses
// whoever they belong to.
type Trust struct {
	Publishers map[string]*Publisher
	// Revoked holds Fingerprints.
	Revoked map[string]bool
}

// Has reports whether the node declares publisher name.
func (t *Trust) Has(name string) bool {
	if t == nil {
		return false
	}
	_, ok := t.Publishers[name]
	return ok
}

// Names are the node's publishers, sorted.
func (t *Trust) Names() []string {
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.Publishers))
	for n := range t.Publishers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LoadKeyFile reads a PEM public key file for a key publisher.
func LoadKeyFile(name, path string) (*Publisher, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return KeyPublisher(name, b)
}

// subject is what a signature must sign.
type subject struct {
	// digest is the SHA-256 of the signed content: the code zip, an image's payload
	// (cosign's simple signing) or, for an in-toto statement, the image's manifest.
	digest [sha256.Size]byte
}

// Verify checks bundle as a signature of the content whose SHA-256 is digest by one of the
// publishers named allowed, and returns the publisher whose signature verified, or an
// *IntegrityError, or an *UntrustedError saying why no allowed publisher's did.
func (t *Trust) Verify(bundleJSON []byte, digest [sha256.Size]byte, allowed []string) (string, error) {
	b, err := ParseBundle(bundleJSON)
	if err != nil {
		return "", err
	}
	return t.verify(b, subject{digest: digest}, allowed)
}

// ParseBundle reads a Sigstore bundle (bounded by MaxBundleBytes); an *IntegrityError when it
// cannot.
func ParseBundle(bundleJSON []byte) (*bundle.Bundle, error) {
	if len(bundleJSON) > MaxBundleBytes {
		return nil, &IntegrityError{Reason: fmt.Sprintf("the signature bundle is %d bytes; at most %d are read", len(bundleJSON), MaxBundleBytes)}
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return nil, &IntegrityError{Reason: "the signature bundle cannot be read: " + err.Error()}
	}
	return &b, nil
}

// checkIntegrity makes sure b signs s: a message signature of its digest, or an in-toto
// statement naming it; a certificate's signature must also verify with the certificate's key.
func checkIntegrity(b *bundle.Bundle, s subject) error {
	sc, err := b.SignatureContent()
	if err != nil {
		return &IntegrityError{Reason: err.Error()}
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return &IntegrityError{Reason: err.Error()}
	}
	want := hex.EncodeToString(s.digest[:])
	switch {
	case sc.MessageSignatureContent() != nil:
		ms := sc.MessageSignatureContent()
		if ms.DigestAlgorithm() != "SHA2_256" {
			return &IntegrityError{Reason: fmt.Sprintf("the signature's digest is %s; only SHA-256 digests are read", ms.DigestAlgorithm())}
		}
		if got := hex.EncodeToString(ms.Digest()); got != want {
			return &IntegrityError{Reason: fmt.Sprintf("the signature is of content whose SHA-256 is %s, not of this code (%s): it was changed after it was signed", got, want)}
		}
		if cert := vc.Certificate(); cert != nil {
			v, err := signature.LoadVerifier(cert.PublicKey, crypto.SHA256)
			if err != nil {
				return &IntegrityError{Reason: "the signing certificate's key: " + err.Error()}
			}
			if err := v.VerifySignature(bytes.NewReader(ms.Signature()), nil, options.WithDigest(ms.Digest())); err != nil {
				return &IntegrityError{Reason: "the signature does not verify with the certificate it carries"}
			}
		}
	case sc.EnvelopeContent() != nil:
		st, err := sc.EnvelopeContent().Statement()
		if err != nil {
			return &IntegrityError{Reason: "the signed statement cannot be read: " + err.Error()}
		}
		for _, sub := range st.GetSubject() {
			if strings.EqualFold(sub.GetDigest()["sha256"], want) {
				return nil
			}
		}
		return &IntegrityError{Reason: fmt.Sprintf("the signed statement does not name this content (sha256:%s)", want)}
	default:
		return &IntegrityError{Reason: "the bundle holds no signature"}
	}
	return nil
}

// verify checks integrity, then tries each allowed publisher in turn.
func (t *Trust) verify(b *bundle.Bundle, s subject, allowed []string) (string, error) {
	if err := checkIntegrity(b, s); err != nil {
		return "", err
	}
	vc, _ := b.VerificationContent()
	cert := vc.Certificate()
	if cert != nil && t != nil {
		for _, fp := range []string{Fingerprint(cert.Raw), Fingerprint(cert.RawSubjectPublicKeyInfo)} {
			if t.Revoked[fp] {
				return "", &UntrustedError{Reason: "the code was signed with a revoked certificate (" + fp + ")"}
			}
		}
	}
	var reasons []string
	for _, name := range allowed {
		p, ok := t.publisher(name)
		if !ok {
			reasons = append(reasons, name+": not a publisher of this node")
			continue
		}
		err := p.verify(b, s, cert != nil)
		if err == nil {
			if p.Key != nil {
				if fp, _ := KeyFingerprint(p.Key); t.Revoked[fp] {
					return "", &UntrustedError{Reason: fmt.Sprintf("the code was signed with publisher %s's key, which is revoked (%s)", name, fp)}
				}
			}
			return name, nil
		}
		reasons = append(reasons, name+": "+err.Error())
	}
	if len(allowed) == 0 {
		return "", &UntrustedError{Reason: "the code signing configuration allows no publisher"}
	}
	return "", &UntrustedError{Reason: "the code is not signed by an allowed publisher (" + strings.Join(reasons, "; ") + ")"}
}

func (t *Trust) publisher(name string) (*Publisher, bool) {
	if t == nil {
		return nil, false
	}
	p, ok := t.Publishers[name]
	return p, ok
}

// verify checks b with sigstore-go as signed by p.
func (p *Publisher) verify(b *bundle.Bundle, s subject, hasCert bool) error {
	var tm root.TrustedMaterial
	var opts []verify.VerifierOption
	var policy []verify.PolicyOption
	switch {
	case p.Key != nil && hasCert:
		return errors.New("signed with a certificate, not with the publisher's key")
	case p.Key != nil:
		v, err := signature.LoadVerifier(p.Key, crypto.SHA256)
		if err != nil {
			return err
		}
		key := root.NewExpiringKey(v, timeZero, timeZero)
		tm = root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
		opts = []verify.VerifierOption{verify.WithNoObserverTimestamps()}
		policy = []verify.PolicyOption{verify.WithKey()}
	case !hasCert:
		return errors.New("signed with a key, not with a certificate of the publisher's identity")
	default:
		tm = p.Root
		// The certificate must have been valid when it signed: at the time a timestamp
		// authority or a transparency log of the trusted root vouches for, or, without one,
		// now (a long-lived certificate of a private CA).
		ts, _ := b.Timestamps()
		tl, _ := b.TlogEntries()
		switch {
		case len(ts) > 0 && len(p.Root.TimestampingAuthorities()) > 0:
			opts = append(opts, verify.WithSignedTimestamps(1))
		case len(tl) > 0 && len(p.Root.RekorLogs()) > 0:
			opts = append(opts, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
		default:
			opts = append(opts, verify.WithCurrentTime())
			vc, _ := b.VerificationContent()
			if c := vc.Certificate(); c != nil && time.Now().After(c.NotAfter) {
				return fmt.Errorf("the signing certificate expired at %s (and no timestamp says it signed before)", c.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		policy = []verify.PolicyOption{verify.WithCertificateIdentity(*p.Identity)}
	}
	v, err := verify.NewVerifier(tm, opts...)
	if err != nil {
		return err
	}
	_, err = v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", s.digest[:]), policy...))
	return err
}

// timeZero leaves a key's validity unbounded.
var timeZero time.Time
