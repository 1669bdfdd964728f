package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Kinds of Error: what the Lambda API answers differs for each.
const (
	NotFound = "not-found" // no such image, tag, digest, repository, layout or file
	Denied   = "denied"    // the registry refused the credentials (or their absence)
	TooLarge = "too-large" // over the unpacked size limit
	Invalid  = "invalid"   // not a usable image: bad reference, bad layer, digest mismatch, other OS
)

// Error is an image that cannot be used, for a reason the caller can tell its client.
type Error struct {
	Kind string
	Ref  string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("image %s: %v", e.Ref, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// IsKind reports whether err is an image Error of kind.
func IsKind(err error, kind string) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}

func tooLarge(r ref, limit int64) error {
	return &Error{Kind: TooLarge, Ref: r.String(), Err: fmt.Errorf("the image unpacks to more than %d MB, the limit", limit>>20)}
}

// classify turns a registry's or a file's error into an Error when it says something about the
// image; other errors (the node's own, a network failure) are returned as they are.
func classify(r ref, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return &Error{Kind: Denied, Ref: r.String(), Err: err}
		case te.StatusCode == http.StatusNotFound:
			return &Error{Kind: NotFound, Ref: r.String(), Err: err}
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return &Error{Kind: Denied, Ref: r.String(), Err: err}
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return &Error{Kind: NotFound, Ref: r.String(), Err: err}
			}
		}
		return err
	}
	if errors.Is(err, os.ErrNotExist) {
		return &Error{Kind: NotFound, Ref: r.String(), Err: err}
	}
	return err
}

func (s *Store) parse(refStr string) (ref, error) {
	r, err := parseRef(refStr, func(host string) bool { return s.regs[host].Insecure })
	if err != nil {
		return ref{}, &Error{Kind: Invalid, Ref: refStr, Err: err}
	}
	return r, nil
}

// open finds the image r names (for an index, the one for this node's platform) without
// reading its layers.
func (s *Store) open(ctx context.Context, r ref) (v1.Image, error) {
	switch r.kind {
	case kindRegistry:
		img, err := remote.Image(r.name, remote.WithContext(ctx), remote.WithAuthFromKeychain(s.keychain),
			remote.WithPlatform(platform()), remote.WithUserAgent("lambdagw"))
		if err != nil {
			return nil, classify(r, err)
		}
		return img, nil
	case kindOCILayout:
		return openLayout(r)
	case kindDockerArchive:
		return openArchive(r)
	}
	return nil, &Error{Kind: Invalid, Ref: r.String(), Err: errors.New("unknown image source")}
}

// openLayout picks the image of an OCI layout's index: by digest, by tag (the
// org.opencontainers.image.ref.name annotation), or the only one.
func openLayout(r ref) (v1.Image, error) {
	p, err := layout.FromPath(r.path)
	if err != nil {
		return nil, classify(r, fmt.Errorf("opening the OCI layout: %w", err))
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, classify(r, fmt.Errorf("reading the OCI layout's index: %w", err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("reading the OCI layout's index: %w", err)}
	}
	var tags []string
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		tag := d.Annotations["org.opencontainers.image.ref.name"]
		if tag != "" {
			tags = append(tags, tag)
		}
		switch {
		case r.digest != "" && d.Digest.String() == r.digest,
			r.tag != "" && (tag == r.tag || strings.HasSuffix(tag, ":"+r.tag)),
			r.digest == "" && r.tag == "":
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0 && r.digest != "":
		return nil, &Error{Kind: NotFound, Ref: r.String(), Err: fmt.Errorf("the OCI layout has no image %s", r.digest)}
	case len(found) == 0 && r.tag != "":
		sort.Strings(tags)
		return nil, &Error{Kind: NotFound, Ref: r.String(), Err: fmt.Errorf("the OCI layout has no image tagged %q (its tags: %s)", r.tag, strings.Join(tags, ", "))}
	case len(found) == 0:
		return nil, &Error{Kind: NotFound, Ref: r.String(), Err: errors.New("the OCI layout holds no image")}
	case len(found) > 1:
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: fmt.Errorf("the OCI layout holds %d images: name one by tag or digest", len(found))}
	}
	d := found[0]
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, classify(r, fmt.Errorf("reading the image index: %w", err))
		}
		return forPlatform(r, child)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, classify(r, fmt.Errorf("reading the image: %w", err))
	}
	return img, nil
}

func forPlatform(r ref, idx v1.ImageIndex) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, &Error{Kind: Invalid, Ref: r.String(), Err: err}
	}
	want := platform()
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture {
			return idx.Image(d.Digest)
		}
		have = append(have, d.Platform.OS+"/"+d.Platform.Architecture)
	}
	return nil, &Error{Kind: NotFound, Ref: r.String(), Err: fmt.Errorf("no image for %s/%s (the index has %s)", want.OS, want.Architecture, strings.Join(have, ", "))}
}

// openArchive reads a `docker save` archive: the image of the tag asked for, or the only one.
func openArchive(r ref) (v1.Image, error) {
	if _, err := os.Stat(r.path); err != nil {
		return nil, classify(r, err)
	}
	var tag *name.Tag
	if r.tag != "" {
		t, err := name.NewTag(r.tag)
		if err != nil {
			return nil, &Error{Kind: Invalid, Ref: r.String(), Err: err}
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(r.path, tag)
	if err != nil {
		return nil, &Error{Kind: NotFound, Ref: r.String(), Err: fmt.Errorf("reading the archive: %w", err)}
	}
	if r.digest != "" {
		d, err := img.Digest()
		if err != nil {
			return nil, &Error{Kind: Invalid, Ref: r.String(), Err: err}
		}
		if d.String() != r.digest {
			return nil, &Error{Kind: NotFound, Ref: r.String(), Err: fmt.Errorf("the archive's image is %s", d)}
		}
	}
	return img, nil
}

// registryKeychain answers the credentials of the agent file's registry blocks.
type registryKeychain map[string]Registry

func (k registryKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if r, ok := k[res.RegistryStr()]; ok && (r.Username != "" || r.Password != "") {
		return authn.FromConfig(authn.AuthConfig{Username: r.Username, Password: r.Password}), nil
	}
	return authn.Anonymous, nil
}
