package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// BundleMediaType is the Sigstore bundle format gateway sign writes.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// PEM types of cosign's encrypted private keys (cosign generate-key-pair).
const (
	sigstoreKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// LoadPrivateKey reads a PEM private key: PKCS#8 ("PRIVATE KEY", what gateway sign keygen
// writes), SEC 1 ("EC PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY"), or cosign's encrypted key,
// decrypted with password.
func LoadPrivateKey(pemKey, password []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(pemKey)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	der := b.Bytes
	switch b.Type {
	case sigstoreKeyType, cosignKeyType:
		var err error
		if der, err = encrypted.Decrypt(b.Bytes, password); err != nil {
			return nil, fmt.Errorf("decrypting the key (its password is read from COSIGN_PASSWORD): %w", err)
		}
	case "PRIVATE KEY":
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(der)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(der)
	default:
		return nil, fmt.Errorf("a PEM %q block is not a private key", b.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %T key: sign with an ECDSA or RSA key", k)
}

// GenerateKey makes an ECDSA P-256 key pair (cosign's default) as PEM: the private key in
// PKCS#8, encrypted as cosign encrypts it when password is not empty, and the public key.
func GenerateKey(password []byte) (private, public []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	block := &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	if len(password) > 0 {
		enc, err := encrypted.Encrypt(der, password)
		if err != nil {
			return nil, nil, err
		}
		block = &pem.Block{Type: sigstoreKeyType, Bytes: enc}
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

// SignDigest signs the content whose SHA-256 is digest with key and returns the Sigstore bundle
// (JSON) that `cosign sign-blob --bundle` writes for a key, without a transparency log entry:
// the digest, the signature, and the key's hint (the base64 SHA-256 of its DER).
func SignDigest(key crypto.Signer, digest [sha256.Size]byte) ([]byte, error) {
	var opts crypto.SignerOpts = crypto.SHA256
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
	case *rsa.PublicKey:
	default:
		return nil, fmt.Errorf("a %T key: sign with an ECDSA or RSA key", k)
	}
	sig, err := key.Sign(rand.Reader, digest[:], opts)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	hint := sha256.Sum256(pub)
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{
				Hint: base64.StdEncoding.EncodeToString(hint[:])}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}},
	}
	return protojson.Marshal(b)
}

// SignZip signs zip (its signature, if it carries one, is replaced) with key and returns the
// signed zip and the bundle it carries.
func SignZip(zip []byte, key crypto.Signer) (signed, bundle []byte, err error) {
	plain, err := Unsigned(zip)
	if err != nil {
		return nil, nil, err
	}
	if bundle, err = SignDigest(key, sha256.Sum256(plain)); err != nil {
		return nil, nil, err
	}
	if signed, err = Attach(plain, bundle); err != nil {
		return nil, nil, err
	}
	return signed, bundle, nil
}
