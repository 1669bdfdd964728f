// Package unpack is the one place the gateway writes an archive it did not make (a function's code
// zip, a container image's layers) onto the node's disk. Archives are untrusted: every write goes
// through an os.Root opened on the target folder, so no entry, symlink or hard link can create or
// change anything outside it, whatever the kernel would resolve a path to.
//
// On top of that, the tree an archive leaves behind never points outside itself:
//   - entry names are relative, slash-separated, without `..`, NUL or backslashes;
//   - no entry is written below a symlink of the archive (the chain `a -> .`, `a/b -> ..`, ...);
//   - a relative symlink target is a run of leading `..` no deeper than the link's own folder,
//     then plain names: it cannot climb out through another link, because every link obeys the
//     same rule and no link has a link among its parents; an absolute target must lie under one
//     of the mount points the caller names (`/var/task`, `/opt`), and is judged as seen there;
//   - a hard link names a regular file the archive already wrote;
//   - devices, FIFOs and sockets are refused; set-id and sticky bits are dropped;
//   - the entry count and the total unpacked size are bounded, counting bytes actually written.
//
// Image layers (Options.ImageLayer) are root file systems: their symlinks may name any target,
// since only the environment's mount namespace resolves them, and their whiteouts become
// overlayfs whiteouts; every other rule holds.
package unpack

import (
	"archive/tar"
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lambdagw/gateway/internal/structs"
)

// CodeOptions are the rules every function code zip is unpacked under: the limits of a Lambda
// deployment package, symlinks only within the code (/var/task) or to layers (/opt).
var CodeOptions = Options{
	Limits:      Limits{MaxEntries: structs.MaxCodeEntries, MaxBytes: structs.MaxUnzippedCodeBytes},
	LinkMounts:  []string{"/var/task", "/opt"},
	DefaultExec: []string{"bootstrap"},
}

// Limits bound what one archive may unpack to.
type Limits struct {
	MaxEntries int   // entries of any kind
	MaxBytes   int64 // regular files' content, counted as written
	// Shared, when set, is a budget several archives unpacked at once draw on (an image's
	// layers): its content counts against it as written, besides MaxBytes.
	Shared *Budget
}

// Budget is a number of bytes several unpacks draw on at once.
type Budget struct{ left atomic.Int64 }

// NewBudget returns a budget of n bytes.
func NewBudget(n int64) *Budget {
	b := &Budget{}
	b.left.Store(n)
	return b
}

// Take draws n bytes and reports whether the budget had them (when not, it is left spent).
func (b *Budget) Take(n int64) bool { return b.left.Add(-n) >= 0 }

// Left is what is left of the budget (below 0 once overdrawn).
func (b *Budget) Left() int64 { return b.left.Load() }

// Options say how an archive is unpacked.
type Options struct {
	Limits
	// LinkMounts are the folders, as the code sees them at run time, where an absolute symlink may
	// point to: the first is where this tree is mounted (a target under it is checked against the
	// tree), the others are other read-only mounts (layers at /opt). Empty: no absolute symlinks.
	LinkMounts []string
	// DefaultExec names the files given mode 0755 when the archive records no Unix mode (zips made
	// on Windows): the runtime's bootstrap must stay executable.
	DefaultExec []string
	// ImageLayer unpacks a container image's layer for use as an overlay lower folder: its
	// whiteouts (`.wh.name`, `.wh..wh..opq`) become overlayfs whiteouts (a 0/0 character device,
	// the trusted.overlay.opaque attribute), a symlink may name any target (the layer is a root
	// file system: its links resolve inside the environment's mount namespace, and the node
	// never follows them), and device, FIFO and socket entries are skipped (the environment has
	// a /dev of its own).
	ImageLayer bool
}

// LayerOptions are the rules every image layer is unpacked under; the caller sets the size left
// of the image's budget.
var LayerOptions = Options{
	Limits:     Limits{MaxEntries: 1_000_000},
	ImageLayer: true,
}

// Whiteout names of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// Error is an archive refused for what it holds (not an I/O failure of the node).
type Error struct {
	Entry  string
	Reason string
	// OverSize says the archive unpacks to more than Limits.MaxBytes.
	OverSize bool
}

func (e *Error) Error() string {
	if e.Entry == "" {
		return e.Reason
	}
	return fmt.Sprintf("entry %q: %s", e.Entry, e.Reason)
}

func refuse(entry, format string, args ...any) error {
	return &Error{Entry: entry, Reason: fmt.Sprintf(format, args...)}
}

// overSize is the refusal of an archive that unpacks to more than the limit.
func (w *writer) overSize() error {
	return &Error{Reason: fmt.Sprintf("the archive unpacks to more than %d MB", w.opts.MaxBytes>>20), OverSize: true}
}

// IsOverSize reports whether err refuses an archive for unpacking to more than its limit.
func IsOverSize(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.OverSize
}

// IsRefused reports whether err says the archive itself is unacceptable.
func IsRefused(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// kind is what an entry makes.
type kind int

const (
	kindFile kind = iota
	kindDir
	kindSymlink
	kindHardlink
)

// entry is one archive member, whatever the format.
type entry struct {
	name     string
	kind     kind
	mode     fs.FileMode // permission bits, when the archive records them
	hasMode  bool
	linkname string // symlink target or hard link's original
	size     int64  // the size the archive declares (checked; the content is counted as written)
	open     func() (io.ReadCloser, error)
}

// writer applies entries to a root folder under the rules above; without a root it only checks
// them (CheckZip).
type writer struct {
	root     *os.Root // nil: check only
	opts     Options
	entries  int
	written  int64
	symlinks map[string]bool // clean names of links made
	files    map[string]bool // clean names of regular files made
	dirs     map[string]bool // folders known to be real (made by us, or the root)
	// subs are roots opened on folders of the tree (each known real, in dirs), so an entry is
	// made by one openat in its folder rather than a walk of its whole path from the top, which
	// cost a pull of Node.js's runtime client (7,000 files, 12 levels deep) a third of its CPU.
	subs map[string]*os.Root
}

// maxSubs bounds the folder roots kept open at once.
const maxSubs = 64

// in returns the root of folder dir of the tree ("." is the tree's own), which must be real.
func (w *writer) in(dir string) (*os.Root, error) {
	if dir == "." {
		return w.root, nil
	}
	if r, ok := w.subs[dir]; ok {
		return r, nil
	}
	if len(w.subs) >= maxSubs {
		w.closeSubs()
	}
	r, err := w.root.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening folder %s: %w", dir, err)
	}
	if w.subs == nil {
		w.subs = map[string]*os.Root{}
	}
	w.subs[dir] = r
	return r, nil
}

func (w *writer) closeSubs() {
	for d, r := range w.subs {
		r.Close()
		delete(w.subs, d)
	}
}

func newWriter(dir string, opts Options) (*writer, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the unpack folder: %w", err)
	}
	return &writer{root: root, opts: opts, symlinks: map[string]bool{}, files: map[string]bool{}, dirs: map[string]bool{".": true}}, nil
}

func (w *writer) close() error {
	if w.root == nil {
		return nil
	}
	w.closeSubs()
	return w.root.Close()
}

// cleanName checks an entry's name and returns it cleaned ("a/b", never "", ".", or with "..").
func cleanName(name string) (string, error) {
	trimmed := strings.TrimSuffix(name, "/")
	switch {
	case trimmed == "" || trimmed == ".":
		return "", refuse(name, "has an empty name")
	case strings.ContainsAny(name, "\\\x00"):
		return "", refuse(name, "has a backslash or NUL in its name")
	case strings.HasPrefix(name, "/"):
		return "", refuse(name, "has an absolute path")
	}
	for _, part := range strings.Split(trimmed, "/") {
		if part == ".." {
			return "", refuse(name, "has a `..` component")
		}
	}
	clean := path.Clean(trimmed)
	if clean == "." {
		return "", refuse(name, "has an empty name")
	}
	return clean, nil
}

// parents refuses a name with a symlink of the archive among its ancestors, and makes the
// missing folders on the way.
func (w *writer) parents(name, clean string) error {
	dir := path.Dir(clean)
	if w.dirs[dir] {
		return nil
	}
	parts := strings.Split(dir, "/")
	cur := "."
	for _, p := range parts {
		cur = path.Join(cur, p)
		if w.dirs[cur] {
			continue
		}
		if w.symlinks[cur] {
			return refuse(name, "lies below the symlink %q", cur)
		}
		if w.files[cur] {
			return refuse(name, "lies below the file %q", cur)
		}
		if err := w.mkdir(name, cur); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) mkdir(entryName, clean string) error {
	if err := w.count(entryName); err != nil {
		return err
	}
	if w.root == nil {
		w.dirs[clean] = true
		return nil
	}
	parent, err := w.in(path.Dir(clean))
	if err != nil {
		return err
	}
	if err := parent.Mkdir(path.Base(clean), 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Made by us before (an explicit entry after an implicit one) or the target's own.
			if st, serr := w.root.Lstat(clean); serr == nil && st.IsDir() {
				w.dirs[clean] = true
				return nil
			}
			return refuse(entryName, "%q exists and is not a folder", clean)
		}
		return fmt.Errorf("making folder %s: %w", clean, err)
	}
	w.dirs[clean] = true
	return nil
}

func (w *writer) count(name string) error {
	w.entries++
	if w.opts.MaxEntries > 0 && w.entries > w.opts.MaxEntries {
		return refuse("", "the archive has more than %d entries", w.opts.MaxEntries)
	}
	return nil
}

func (w *writer) add(e entry) error {
	clean, err := cleanName(e.name)
	if err != nil {
		return err
	}
	if err := w.parents(e.name, clean); err != nil {
		return err
	}
	if w.symlinks[clean] || w.files[clean] {
		return refuse(e.name, "appears twice")
	}
	switch e.kind {
	case kindDir:
		if w.dirs[clean] {
			return nil
		}
		return w.mkdir(e.name, clean)
	case kindSymlink:
		if w.dirs[clean] {
			return refuse(e.name, "appears twice")
		}
		if err := w.checkLink(e.name, clean, e.linkname); err != nil {
			return err
		}
		if err := w.count(e.name); err != nil {
			return err
		}
		if w.root == nil {
			w.symlinks[clean] = true
			return nil
		}
		if err := w.root.Symlink(e.linkname, clean); err != nil {
			return fmt.Errorf("making symlink %s: %w", clean, err)
		}
		w.symlinks[clean] = true
		return nil
	case kindHardlink:
		target, err := cleanName(e.linkname)
		if err != nil || !w.files[target] {
			return refuse(e.name, "is a hard link to %q, which is not a file of the archive", e.linkname)
		}
		if err := w.count(e.name); err != nil {
			return err
		}
		if w.root == nil {
			w.files[clean] = true
			return nil
		}
		if err := w.root.Link(target, clean); err != nil {
			return fmt.Errorf("making hard link %s: %w", clean, err)
		}
		w.files[clean] = true
		return nil
	default:
		if w.dirs[clean] {
			return refuse(e.name, "appears twice")
		}
		return w.writeFile(e, clean)
	}
}

// checkLink applies the symlink target rule (see the package comment).
func (w *writer) checkLink(name, clean, target string) error {
	if target == "" || strings.ContainsRune(target, 0) || len(target) > 4095 {
		return refuse(name, "is a symlink with an empty or invalid target")
	}
	if w.opts.ImageLayer {
		return nil
	}
	if strings.HasPrefix(target, "/") {
		for _, m := range w.opts.LinkMounts {
			rest, ok := strings.CutPrefix(target, m)
			if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
				continue
			}
			for _, part := range strings.Split(rest, "/") {
				if part == ".." {
					return refuse(name, "is a symlink to %q, which climbs with `..`", target)
				}
			}
			return nil
		}
		return refuse(name, "is a symlink to %q, outside %s", target, mountsText(w.opts.LinkMounts))
	}
	depth := strings.Count(clean, "/") // folders above the link inside the tree
	ups, named := 0, false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if named {
				return refuse(name, "is a symlink to %q: `..` after a name could climb through another link", target)
			}
			ups++
		default:
			named = true
		}
	}
	if ups > depth {
		return refuse(name, "is a symlink to %q, outside the archive's folder", target)
	}
	return nil
}

func mountsText(m []string) string {
	if len(m) == 0 {
		return "the archive's folder"
	}
	return strings.Join(m, " and ")
}

func (w *writer) writeFile(e entry, clean string) error {
	if err := w.count(e.name); err != nil {
		return err
	}
	if w.root == nil {
		w.files[clean] = true
		if w.written += e.size; w.opts.MaxBytes > 0 && w.written > w.opts.MaxBytes {
			return w.overSize()
		}
		return nil
	}
	perm := fs.FileMode(0o644)
	switch {
	case e.hasMode:
		perm = e.mode.Perm() | 0o600 // set-id and sticky bits are dropped
	default:
		for _, x := range w.opts.DefaultExec {
			if path.Base(clean) == x {
				perm = 0o755
			}
		}
	}
	rc, err := e.open()
	if err != nil {
		return refuse(e.name, "cannot be read: %v", err)
	}
	defer rc.Close()
	parent, err := w.in(path.Dir(clean))
	if err != nil {
		return err
	}
	out, err := parent.OpenFile(path.Base(clean), os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return refuse(e.name, "appears twice")
		}
		return fmt.Errorf("creating %s: %w", clean, err)
	}
	w.files[clean] = true
	left := int64(-1)
	if w.opts.MaxBytes > 0 {
		left = w.opts.MaxBytes - w.written
	}
	if sh := w.opts.Shared; sh != nil && (left < 0 || sh.Left() < left) {
		left = max(sh.Left(), 0)
	}
	var src io.Reader = rc
	if left >= 0 {
		src = io.LimitReader(rc, left+1)
	}
	n, err := io.Copy(out, src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	w.written += n
	if w.opts.Shared != nil {
		w.opts.Shared.Take(n)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Op == "write" {
			return fmt.Errorf("writing %s: %w", clean, err)
		}
		return refuse(e.name, "cannot be read: %v", err)
	}
	if left >= 0 && n > left {
		return w.overSize()
	}
	return nil
}

// Zip unpacks zr into dir, an existing empty folder.
func Zip(zr *zip.Reader, dir string, opts Options) error {
	w, err := newWriter(dir, opts)
	if err != nil {
		return err
	}
	defer w.close()
	return w.zip(zr)
}

// zip applies zr's entries; an archive that lists too many is refused before any is written.
func (w *writer) zip(zr *zip.Reader) error {
	if w.opts.MaxEntries > 0 && len(zr.File) > w.opts.MaxEntries {
		return refuse("", "the archive has more than %d entries", w.opts.MaxEntries)
	}
	for _, zf := range zr.File {
		e, err := zipEntry(zf)
		if err != nil {
			return err
		}
		if err := w.add(e); err != nil {
			return err
		}
	}
	return nil
}

func zipEntry(zf *zip.File) (entry, error) {
	mode := zf.Mode()
	e := entry{name: zf.Name, mode: mode, hasMode: zf.CreatorVersion>>8 == 3, open: zf.Open, size: int64(min(zf.UncompressedSize64, 1<<62))}
	switch {
	case mode.IsDir() || strings.HasSuffix(zf.Name, "/"):
		e.kind = kindDir
	case mode&fs.ModeSymlink != 0:
		e.kind = kindSymlink
		rc, err := zf.Open()
		if err != nil {
			return e, refuse(zf.Name, "cannot be read: %v", err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil {
			return e, refuse(zf.Name, "cannot be read: %v", err)
		}
		e.linkname = string(b)
	case mode.IsRegular():
		e.kind = kindFile
	default:
		return e, refuse(zf.Name, "is not a regular file, folder or symlink (%v)", mode.Type())
	}
	return e, nil
}

// CheckZip applies every rule to zr's entries without writing anything (sizes as the archive
// declares them), so an upload can be refused with a clear message before it is stored. Zip
// checks everything again, sizes as written.
func CheckZip(zr *zip.Reader, opts Options) error {
	w := &writer{opts: opts, symlinks: map[string]bool{}, files: map[string]bool{}, dirs: map[string]bool{".": true}}
	return w.zip(zr)
}

// Tar unpacks a tar stream into dir, an existing empty folder. Global and extended headers are
// read by archive/tar; whiteouts are ordinary names here (image layers apply them on top).
func Tar(r io.Reader, dir string, opts Options) error {
	w, err := newWriter(dir, opts)
	if err != nil {
		return err
	}
	defer w.close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return refuse("", "not a valid tar archive: %v", err)
		}
		e := entry{name: h.Name, mode: fs.FileMode(h.Mode).Perm(), hasMode: true, linkname: h.Linkname,
			open: func() (io.ReadCloser, error) { return io.NopCloser(tr), nil }}
		if opts.ImageLayer {
			switch h.Typeflag {
			case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
				continue
			}
			if base := path.Base(strings.TrimSuffix(h.Name, "/")); strings.HasPrefix(base, whiteoutPrefix) {
				if err := w.whiteout(h.Name, base); err != nil {
					return err
				}
				continue
			}
		}
		switch h.Typeflag {
		case tar.TypeReg: // the reader turns the old TypeRegA into TypeReg or TypeDir
			e.kind = kindFile
		case tar.TypeDir:
			e.kind = kindDir
		case tar.TypeSymlink:
			e.kind = kindSymlink
		case tar.TypeLink:
			e.kind = kindHardlink
		case tar.TypeXGlobalHeader:
			continue
		default:
			return refuse(h.Name, "is not a regular file, folder or link (tar type %q)", h.Typeflag)
		}
		if err := w.add(e); err != nil {
			return err
		}
	}
}

// opaqueXattr marks a folder opaque for overlayfs: nothing of the lower layers' shows in it.
const opaqueXattr = "trusted.overlay.opaque"

// IsWhiteout reports whether info (from Lstat) is a whiteout as this package writes it and
// overlayfs reads it: a character device 0:0 that hides the lower layers' file of its name.
func IsWhiteout(info fs.FileInfo) bool {
	if info.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// IsOpaque reports whether folder dir of an unpacked layer is opaque; dir itself is not
// followed if it is a symlink.
func IsOpaque(dir string) bool {
	var b [1]byte
	n, err := unix.Lgetxattr(dir, opaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

// whiteout applies an image layer's whiteout entry: `dir/.wh..wh..opq` marks dir opaque (the
// lower layers' content of it is hidden), `dir/.wh.name` hides name of the lower layers. Both
// are written as overlayfs reads them. The folder is opened through the root, so the device or
// attribute lands inside the tree whatever the folder's path is.
func (w *writer) whiteout(name, base string) error {
	dirName := path.Dir(strings.TrimSuffix(name, "/"))
	if base == opaqueWhiteout {
		dir := "."
		if dirName != "." {
			clean, err := cleanName(dirName)
			if err != nil {
				return refuse(name, "is an opaque whiteout in a bad folder: %v", err)
			}
			if err := w.parents(name, clean+"/x"); err != nil {
				return err
			}
			dir = clean
		}
		if err := w.count(name); err != nil {
			return err
		}
		d, err := w.root.Open(dir)
		if err != nil {
			return fmt.Errorf("opening %s: %w", dir, err)
		}
		defer d.Close()
		if err := unix.Fsetxattr(int(d.Fd()), opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("marking %s opaque: %w", dir, err)
		}
		return nil
	}
	hidden := strings.TrimPrefix(base, whiteoutPrefix)
	if hidden == "" || hidden == "." || hidden == ".." || strings.HasPrefix(hidden, whiteoutPrefix) {
		return refuse(name, "is a whiteout of no valid name")
	}
	clean, err := cleanName(path.Join(dirName, hidden))
	if err != nil {
		return err
	}
	if err := w.parents(name, clean); err != nil {
		return err
	}
	if w.symlinks[clean] || w.files[clean] || w.dirs[clean] {
		return refuse(name, "whites out %q, which this layer also holds", clean)
	}
	if err := w.count(name); err != nil {
		return err
	}
	d, err := w.root.Open(path.Dir(clean))
	if err != nil {
		return fmt.Errorf("opening %s: %w", path.Dir(clean), err)
	}
	defer d.Close()
	if err := unix.Mknodat(int(d.Fd()), path.Base(clean), unix.S_IFCHR, 0); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return refuse(name, "appears twice")
		}
		return fmt.Errorf("making whiteout %s: %w", clean, err)
	}
	w.files[clean] = true
	return nil
}

// DeclaredSize is what zr's regular files unpack to, as the archive declares it: archive/zip
// fails a file whose content runs past its declared size, so the unpacked tree is never larger.
func DeclaredSize(zr *zip.Reader) int64 {
	var n int64
	for _, zf := range zr.File {
		if zf.Mode().IsRegular() && !strings.HasSuffix(zf.Name, "/") {
			n += int64(min(zf.UncompressedSize64, 1<<50))
		}
	}
	return n
}
