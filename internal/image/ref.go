package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Source kinds of an image reference.
const (
	kindRegistry      = "registry"
	kindOCILayout     = "oci-layout"
	kindDockerArchive = "docker-archive"
)

// ref is a parsed image reference: a registry's (`host/repo:tag`, `host/repo@sha256:...`), an OCI
// image layout on disk (`oci-layout:PATH[:tag]` or `oci-layout:PATH@sha256:...`) or a `docker save`
// archive (`docker-archive:FILE[:tag]` or `docker-archive:FILE@sha256:...`). PATH and FILE are
// absolute and hold no colon.
type ref struct {
	kind   string
	path   string // oci-layout and docker-archive: the folder or file
	tag    string // oci-layout and docker-archive: the tag asked for, if any
	digest string // "sha256:..." when the reference pins one
	name   name.Reference
}

// parseRef reads s; insecure says which registries speak plain HTTP.
func parseRef(s string, insecure func(host string) bool) (ref, error) {
	if strings.TrimSpace(s) != s || s == "" {
		return ref{}, fmt.Errorf("image reference %q: empty or with spaces around it", s)
	}
	for _, kind := range []string{kindOCILayout, kindDockerArchive} {
		rest, ok := strings.CutPrefix(s, kind+":")
		if !ok {
			continue
		}
		r := ref{kind: kind}
		if p, d, ok := strings.Cut(rest, "@"); ok {
			h, err := parseDigest(d)
			if err != nil {
				return ref{}, fmt.Errorf("image reference %q: %w", s, err)
			}
			rest, r.digest = p, h
		} else if p, t, ok := strings.Cut(rest, ":"); ok {
			// As skopeo reads its transports: the path ends at the first colon, the rest is the
			// tag (a docker-archive's may be a whole reference, "team/fn:1").
			rest, r.tag = p, t
			if r.tag == "" {
				return ref{}, fmt.Errorf("image reference %q: empty tag", s)
			}
		}
		if rest == "" || !strings.HasPrefix(rest, "/") {
			return ref{}, fmt.Errorf("image reference %q: %s needs an absolute path", s, kind)
		}
		r.path = rest
		return r, nil
	}
	var opts []name.Option
	host := s
	if i := strings.Index(s, "/"); i > 0 {
		host = s[:i]
	}
	if insecure != nil && insecure(host) {
		opts = append(opts, name.Insecure)
	}
	n, err := name.ParseReference(s, append(opts, name.StrictValidation)...)
	if err != nil {
		// A reference without a tag or digest is Docker's ":latest"; Lambda wants it said.
		return ref{}, fmt.Errorf("image reference %q: %w (a registry image is named host/repository:tag or host/repository@sha256:digest)", s, err)
	}
	r := ref{kind: kindRegistry, name: n}
	if d, ok := n.(name.Digest); ok {
		r.digest = d.DigestStr()
	}
	return r, nil
}

func parseDigest(d string) (string, error) {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q is not a sha256 digest (sha256: and 64 lowercase hex digits)", d)
	}
	return d, nil
}

// pinned is the reference naming exactly the image of digest: what a published version keeps.
func (r ref) pinned(digest string) string {
	switch r.kind {
	case kindRegistry:
		return r.name.Context().Name() + "@" + digest
	default:
		return r.kind + ":" + r.path + "@" + digest
	}
}

func (r ref) String() string {
	switch {
	case r.kind == kindRegistry:
		return r.name.String()
	case r.digest != "":
		return r.kind + ":" + r.path + "@" + r.digest
	case r.tag != "":
		return r.kind + ":" + r.path + ":" + r.tag
	default:
		return r.kind + ":" + r.path
	}
}
