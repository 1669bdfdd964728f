package signing

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A signed zip is the zip that was signed with its signature bundle appended to the comment of
// its end-of-central-directory record (the zip format's free-form field, which every reader
// skips): the archive's entries and directory are the signed bytes themselves, so a signed zip
// unpacks to exactly what was signed and is a zip any tool, the AWS CLI and SDKs included, uploads
// unchanged. The comment ends with a trailer: the bundle's length (4 bytes, little-endian) and
// containerMagic. The signed zip is the zip with the comment it had before (its length restored),
// which Read recomputes to check the signature against. This is Lambda's own model (AWS Signer
// writes its signature into the zip it signs) with Sigstore's bundle as the signature.

// containerMagic ends the comment of a signed zip.
const containerMagic = "lambdagw-sig"

const (
	trailerLen = 4 + len(containerMagic)
	// eocdLen is the fixed part of the end-of-central-directory record; its last two bytes are
	// the comment's length.
	eocdLen = 22
	// maxComment is the longest comment the record's 16-bit length allows.
	maxComment = 0xffff
	// MaxBundleBytes is the largest signature bundle a signed zip carries (and the gateway
	// reads anywhere): a key's bundle is about 1 KB, a certificate chain's a few KB.
	MaxBundleBytes = maxComment - trailerLen
	// searchLen is how far from its end archive/zip looks for the record; Read finds the one it
	// finds.
	searchLen = 65 * 1024
)

var eocdSignature = []byte{'P', 'K', 0x05, 0x06}

// ErrNotZip is content that has no end-of-central-directory record where archive/zip reads one.
var ErrNotZip = errors.New("not a zip: no end of central directory record")

// Signed is what Read finds in a zip.
type Signed struct {
	// Bundle is the signature bundle the zip carries; nil when it carries none.
	Bundle []byte
	// Digest is the SHA-256 of the zip as it was signed: the zip without the signature (the
	// zip itself when it carries none).
	Digest [sha256.Size]byte
}

// findEOCD returns the offset of the end-of-central-directory record in tail (the last bytes
// of the content) as archive/zip finds it: the last signature whose comment fits; -1 if none.
func findEOCD(tail []byte) int {
	for i := len(tail) - eocdLen; i >= 0; i-- {
		if bytes.Equal(tail[i:i+4], eocdSignature) {
			n := int(binary.LittleEndian.Uint16(tail[i+eocdLen-2:]))
			if i+eocdLen+n > len(tail) {
				return -1 // archive/zip stops here too (a truncated comment)
			}
			return i
		}
	}
	return -1
}

// Read finds the signature of the zip r (size bytes) and the digest of the zip it was made for.
// It reads at most the last 65 KB, then hashes the content once.
func Read(r io.ReaderAt, size int64) (*Signed, error) {
	tailLen := min(size, searchLen)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the zip: %w", err)
	}
	i := findEOCD(tail)
	if i < 0 {
		return nil, ErrNotZip
	}
	eocd := size - tailLen + int64(i) // offset of the record in the content
	comment := tail[i+eocdLen:]
	// The comment must end the content: trailing bytes after it would not be signed, and a
	// trailer that is not at the very end is no trailer.
	declared := int(binary.LittleEndian.Uint16(tail[i+eocdLen-2:]))
	out := &Signed{}
	keep := len(comment) // of the comment, what belongs to the signed zip
	if declared == len(comment) && len(comment) >= trailerLen && string(comment[len(comment)-len(containerMagic):]) == containerMagic {
		n := int(binary.LittleEndian.Uint32(comment[len(comment)-trailerLen:]))
		if n <= 0 || n > len(comment)-trailerLen {
			return nil, &IntegrityError{Reason: fmt.Sprintf("the zip's signature trailer declares a %d-byte bundle in a %d-byte comment", n, len(comment))}
		}
		keep = len(comment) - trailerLen - n
		out.Bundle = append([]byte(nil), comment[keep:keep+n]...)
	}
	h := sha256.New()
	if out.Bundle == nil {
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
			return nil, fmt.Errorf("hashing the zip: %w", err)
		}
	} else {
		// The zip as signed: everything up to the comment's length, that length as it was, and
		// the comment it had.
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, eocd+eocdLen-2)); err != nil {
			return nil, fmt.Errorf("hashing the zip: %w", err)
		}
		var l [2]byte
		binary.LittleEndian.PutUint16(l[:], uint16(keep))
		h.Write(l[:])
		h.Write(comment[:keep])
	}
	copy(out.Digest[:], h.Sum(nil))
	return out, nil
}

// Attach returns zip with bundle as its signature, replacing the signature it carries, if any:
// the bundle must be a signature of the zip without one (Read's Digest).
func Attach(zip, bundle []byte) ([]byte, error) {
	s, err := Read(bytes.NewReader(zip), int64(len(zip)))
	if err != nil {
		return nil, err
	}
	tailStart := max(0, len(zip)-searchLen)
	eocd := tailStart + findEOCD(zip[tailStart:])
	comment := zip[eocd+eocdLen:]
	if s.Bundle != nil {
		comment = comment[:len(comment)-trailerLen-len(s.Bundle)]
	}
	if len(bundle) == 0 {
		return nil, errors.New("the bundle is empty")
	}
	if len(comment)+len(bundle)+trailerLen > maxComment {
		return nil, fmt.Errorf("the bundle (%d bytes) does not fit in the zip's comment (%d bytes at most, with the %d the zip has)", len(bundle), MaxBundleBytes, len(comment))
	}
	out := make([]byte, 0, eocd+eocdLen+len(comment)+len(bundle)+trailerLen)
	out = append(out, zip[:eocd+eocdLen-2]...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(comment)+len(bundle)+trailerLen))
	out = append(out, comment...)
	out = append(out, bundle...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(bundle)))
	out = append(out, containerMagic...)
	return out, nil
}

// Unsigned returns zip without its signature: the zip as it was signed.
func Unsigned(zip []byte) ([]byte, error) {
	s, err := Read(bytes.NewReader(zip), int64(len(zip)))
	if err != nil {
		return nil, err
	}
	if s.Bundle == nil {
		return zip, nil
	}
	keep := len(zip) - len(s.Bundle) - trailerLen
	out := append([]byte(nil), zip[:keep]...)
	tailStart := max(0, len(zip)-searchLen)
	eocd := tailStart + findEOCD(zip[tailStart:])
	binary.LittleEndian.PutUint16(out[eocd+eocdLen-2:], uint16(keep-eocd-eocdLen))
	return out, nil
}
