package signing

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
)

// An image is signed as cosign signs images: its signatures are stored beside it in its
// registry, found by its digest. Two forms are read: Sigstore bundles (cosign's current form, an
// OCI 1.1 referrer of the image, or the sha256-<hex> tag of the referrers tag schema), whose
// in-toto statement names the image's digest; and cosign's earlier signature image (the
// sha256-<hex>.sig tag), whose layers are simple-signing payloads naming the digest, each with its
// signature (and certificate) in annotations.

// ImageSignatures are the signatures found for an image.
type ImageSignatures struct {
	// Digest is the SHA-256 of the image's manifest.
	Digest [sha256.Size]byte
	// Bundles are Sigstore bundles (JSON).
	Bundles [][]byte
	// Simple are cosign's simple-signing signatures.
	Simple []SimpleSignature
}

// SimpleSignature is one layer of cosign's signature image.
type SimpleSignature struct {
	Payload   []byte // the simple-signing JSON
	Signature []byte // raw, decoded from the annotation's base64
	// Certificate and Chain are PEM, when a certificate signed.
	Certificate []byte
	Chain       []byte
}

// simplePayload is the part of a simple-signing payload that says what was signed.
type simplePayload struct {
	Critical struct {
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

// VerifyImage checks an image's signatures by the publishers named allowed: the publisher of the
// first that verifies; ErrUnsigned when there are none; else an *UntrustedError, or an
// *IntegrityError when every signature failed its integrity check.
func (t *Trust) VerifyImage(s *ImageSignatures, allowed []string) (string, error) {
	if s == nil || len(s.Bundles)+len(s.Simple) == 0 {
		return "", ErrUnsigned
	}
	var untrusted, integrity []string
	record := func(err error) {
		var ie *IntegrityError
		if errors.As(err, &ie) {
			integrity = append(integrity, ie.Reason)
		} else {
			untrusted = append(untrusted, err.Error())
		}
	}
	for _, raw := range s.Bundles {
		b, err := ParseBundle(raw)
		if err == nil {
			var p string
			if p, err = t.verify(b, subject{digest: s.Digest}, allowed); err == nil {
				return p, nil
			}
		}
		record(err)
	}
	for _, sig := range s.Simple {
		p, err := t.verifySimple(sig, s.Digest, allowed)
		if err == nil {
			return p, nil
		}
		record(err)
	}
	if len(untrusted) > 0 {
		return "", &UntrustedError{Reason: strings.Join(untrusted, "; ")}
	}
	return "", &IntegrityError{Reason: strings.Join(integrity, "; ")}
}

// verifySimple checks a simple-signing signature as a message signature of its payload, and that
// the payload names the image.
func (t *Trust) verifySimple(sig SimpleSignature, digest [sha256.Size]byte, allowed []string) (string, error) {
	var p simplePayload
	if err := json.Unmarshal(sig.Payload, &p); err != nil {
		return "", &IntegrityError{Reason: "the signature's payload cannot be read: " + err.Error()}
	}
	if want := "sha256:" + hex.EncodeToString(digest[:]); !strings.EqualFold(p.Critical.Image.DockerManifestDigest, want) {
		return "", &IntegrityError{Reason: fmt.Sprintf("the signature is of image %s, not of %s", p.Critical.Image.DockerManifestDigest, want)}
	}
	pd := sha256.Sum256(sig.Payload)
	vm := &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}}
	if len(sig.Certificate) > 0 {
		blk, _ := pem.Decode(sig.Certificate)
		if blk == nil {
			return "", &IntegrityError{Reason: "the signature's certificate is not PEM"}
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return "", &IntegrityError{Reason: "the signature's certificate: " + err.Error()}
		}
		vm = &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: blk.Bytes}}}
	}
	pb := &protobundle.Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: pd[:]},
			Signature:     sig.Signature,
		}},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return "", &IntegrityError{Reason: "the signature cannot be read: " + err.Error()}
	}
	return t.verify(b, subject{digest: pd}, allowed)
}
