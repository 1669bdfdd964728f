package image

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lambdagw/gateway/internal/signing"
)

// An image's signatures are stored beside it in its registry, as cosign stores them: Sigstore
// bundles as OCI 1.1 referrers of the image (the referrers API, or the sha256-<hex> tag of the
// referrers tag schema: cosign sign's current form), and cosign's earlier signature image, the
// sha256-<hex>.sig tag, whose simple-signing layers carry their signature in annotations.

// Media types and annotations of cosign's signatures.
const (
	bundleArtifactType  = "application/vnd.dev.sigstore.bundle"
	simpleSigningType   = "application/vnd.dev.cosign.simplesigning.v1+json"
	signatureAnnotation = "dev.cosignproject.cosign/signature"
	certAnnotation      = "dev.sigstore.cosign/certificate"
	chainAnnotation     = "dev.sigstore.cosign/chain"
)

// maxSignatures bounds the signatures read for one image: a registry (or who writes to it)
// cannot make a deploy read without end.
const maxSignatures = 16

// Signatures returns the signatures stored beside a pinned image (registry references only: an
// OCI layout or docker archive carries none), each read bounded by signing.MaxBundleBytes.
func (s *Store) Signatures(ctx context.Context, resolved string) (*signing.ImageSignatures, error) {
	r, err := s.parse(resolved)
	if err != nil {
		return nil, err
	}
	if r.kind != kindRegistry || r.digest == "" {
		return &signing.ImageSignatures{}, nil
	}
	hexDigest, ok := strings.CutPrefix(r.digest, "sha256:")
	b, err := hex.DecodeString(hexDigest)
	if !ok || err != nil || len(b) != 32 {
		return nil, &Error{Kind: Invalid, Ref: resolved, Err: fmt.Errorf("%s is not a sha256 digest", r.digest)}
	}
	out := &signing.ImageSignatures{}
	copy(out.Digest[:], b)
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(s.keychain), remote.WithUserAgent("lambdagw")}
	repo := r.name.Context()

	// Bundles: the image's referrers (remote.Referrers falls back on the tag schema).
	if idx, err := remote.Referrers(repo.Digest(r.digest), opts...); err == nil {
		if im, err := idx.IndexManifest(); err == nil {
			for _, d := range im.Manifests {
				if !strings.HasPrefix(d.ArtifactType, bundleArtifactType) || len(out.Bundles) >= maxSignatures {
					continue
				}
				img, err := remote.Image(repo.Digest(d.Digest.String()), opts...)
				if err != nil {
					return nil, classify(r, err)
				}
				layers, err := img.Layers()
				if err != nil || len(layers) == 0 {
					continue
				}
				if b, err := readBounded(layers[0]); err == nil {
					out.Bundles = append(out.Bundles, b)
				}
			}
		}
	} else if !notFound(r, err) {
		return nil, classify(r, err)
	}

	// cosign's signature image.
	tag := repo.Tag(strings.ReplaceAll(r.digest, ":", "-") + ".sig")
	img, err := remote.Image(tag, opts...)
	switch {
	case notFound(r, err):
		return out, nil
	case err != nil:
		return nil, classify(r, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, classify(r, err)
	}
	for _, l := range m.Layers {
		if string(l.MediaType) != simpleSigningType || len(out.Simple) >= maxSignatures {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[signatureAnnotation])
		if err != nil {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			continue
		}
		payload, err := readBounded(layer)
		if err != nil {
			continue
		}
		out.Simple = append(out.Simple, signing.SimpleSignature{Payload: payload, Signature: sig,
			Certificate: []byte(l.Annotations[certAnnotation]), Chain: []byte(l.Annotations[chainAnnotation])})
	}
	return out, nil
}

// readBounded reads a signature layer of at most signing.MaxBundleBytes.
func readBounded(l v1.Layer) ([]byte, error) {
	if n, err := l.Size(); err != nil || n > int64(signing.MaxBundleBytes) {
		return nil, fmt.Errorf("a %d-byte signature layer", n)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(signing.MaxBundleBytes)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > signing.MaxBundleBytes {
		return nil, errors.New("a signature layer larger than it said")
	}
	return b, nil
}

// notFound says whether a registry answered that what was asked for does not exist.
func notFound(r ref, err error) bool { return err != nil && IsKind(classify(r, err), NotFound) }
