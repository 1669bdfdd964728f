// Package sigtest makes what code signing tests need and no test machine has: a certificate
// authority in a Sigstore trusted root, short-lived code-signing certificates with a Fulcio-style
// identity (an e-mail or URI subject alternative name and an OIDC issuer extension), and Sigstore
// bundles signed with them, all offline.
package sigtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/lambdagw/gateway/internal/signing"
)

// issuerV2OID is Fulcio's OIDC issuer extension (a DER UTF8String).
var issuerV2OID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

// CA is a certificate authority of code-signing certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a root CA valid from an hour ago for a year.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sigtest root", Organization: []string{"sigtest"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// TrustedRoot is the CA as a Sigstore trusted root (trusted_root.json), with no logs and no
// timestamp authorities.
func (ca *CA) TrustedRoot() []byte {
	tr := &prototrustroot.TrustedRoot{
		MediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
		CertificateAuthorities: []*prototrustroot.CertificateAuthority{{
			Subject:   &protocommon.DistinguishedName{Organization: "sigtest", CommonName: "sigtest root"},
			Uri:       "https://ca.sigtest.invalid",
			CertChain: &protocommon.X509CertificateChain{Certificates: []*protocommon.X509Certificate{{RawBytes: ca.Cert.Raw}}},
			ValidFor:  &protocommon.TimeRange{Start: timestamppb.New(ca.Cert.NotBefore)},
		}},
	}
	b, err := protojson.Marshal(tr)
	if err != nil {
		panic(err)
	}
	return b
}

// Leaf is a code-signing certificate and its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Issue makes a code-signing certificate for identity (a URI when it has "://", else an e-mail
// address) from OIDC issuer, valid from notBefore to notAfter.
func (ca *CA) Issue(identity, issuer string, notBefore, notAfter time.Time) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	val, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: issuerV2OID, Value: val}},
	}
	if strings.Contains(identity, "://") {
		u, err := url.Parse(identity)
		if err != nil {
			return nil, err
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{identity}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, Key: key}, nil
}

// PEM is the certificate in PEM.
func (l *Leaf) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.Cert.Raw})
}

// Sign returns a Sigstore bundle (v0.3 JSON) of the content whose SHA-256 is digest, signed with
// the certificate's key and carrying the certificate, as cosign sign-blob writes one without a
// transparency log entry.
func (l *Leaf) Sign(digest [sha256.Size]byte) ([]byte, error) {
	sig, err := l.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return CertBundle(l.Cert, digest, sig)
}

// CertBundle assembles a bundle of a message signature sig of digest with cert.
func CertBundle(cert *x509.Certificate, digest [sha256.Size]byte, sig []byte) ([]byte, error) {
	b := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}},
	}
	return protojson.Marshal(b)
}

// SignZip returns the zip z signed with the PEM private key, as gateway sign writes it (its
// Sigstore bundle in the zip's comment).
func SignZip(z, pemKey []byte) ([]byte, error) {
	key, err := signing.LoadPrivateKey(pemKey, nil)
	if err != nil {
		return nil, err
	}
	b, err := signing.SignDigest(key, sha256.Sum256(z))
	if err != nil {
		return nil, err
	}
	return signing.Attach(z, b)
}
