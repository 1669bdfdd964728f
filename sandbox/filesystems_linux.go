package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// HostFileSystems are the node's file systems on this host, each root folder held open from
// the agent's start: an access point's root directory is found beneath it, never through a
// symbolic link or into another mount (openat2 with RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS and
// RESOLVE_NO_XDEV), so that a function that may write in a file system cannot point another
// function's access point out of it.
type HostFileSystems struct {
	fss map[string]*hostFS
}

type hostFS struct {
	spec FileSystemSpec
	root *os.File
	aps  map[string]AccessPointSpec
}

var _ FileSystems = (*HostFileSystems)(nil)

// beneath resolves a path inside a file system: no symbolic link (nor /proc's magic links), no
// "..", no other mount.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// OpenFileSystems opens the root folder of each file system. Close releases them.
func OpenFileSystems(specs []FileSystemSpec) (*HostFileSystems, error) {
	h := &HostFileSystems{fss: map[string]*hostFS{}}
	for _, s := range specs {
		root, err := os.OpenFile(s.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("file system %s: opening its folder: %w", s.Name, err)
		}
		fs := &hostFS{spec: s, root: root, aps: map[string]AccessPointSpec{}}
		for _, ap := range s.AccessPoints {
			fs.aps[ap.Name] = ap
		}
		h.fss[s.Name] = fs
	}
	return h, nil
}

// Close releases the file systems' folders.
func (h *HostFileSystems) Close() error {
	for _, fs := range h.fss {
		fs.root.Close()
	}
	return nil
}

// Open finds c's folder: the file system's root, or its access point's root directory, made
// with the access point's creation_info when it does not exist.
func (h *HostFileSystems) Open(c structs.FileSystemConfig) (FileSystemMount, error) {
	fail := func(format string, a ...any) (FileSystemMount, error) {
		return FileSystemMount{}, &invoke.FileSystemError{Message: fmt.Sprintf(format, a...)}
	}
	fs, ok := h.fss[c.FileSystem]
	if !ok {
		return fail("file system %q is not declared on this node", c.FileSystem)
	}
	ap := AccessPointSpec{RootDirectory: "/"}
	if c.AccessPoint != "" {
		if ap, ok = fs.aps[c.AccessPoint]; !ok {
			return fail("file system %q has no access point %q on this node", c.FileSystem, c.AccessPoint)
		}
	}
	dir, err := fs.open(ap)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fail("file system %s: the root directory %q does not exist, and its access point has no creation_info to make it", c.Name(), ap.RootDirectory)
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTDIR):
		return fail("file system %s: the root directory %q is not a folder of the file system (a symbolic link, a file, or another mount on the way)", c.Name(), ap.RootDirectory)
	case err != nil:
		return fail("file system %s: opening the root directory %q: %v", c.Name(), ap.RootDirectory, errors.Unwrap(err))
	}
	m := FileSystemMount{Dir: dir, Path: c.LocalMountPath, ReadOnly: c.ReadOnly, UID: DefaultFileSystemUID, GID: DefaultFileSystemGID,
		NoIDMap: fs.spec.NoIDMap}
	if u := ap.PosixUser; u != nil {
		m.UID, m.GID = u[0], u[1]
	}
	return m, nil
}

// open opens an access point's root directory beneath the file system's root (O_PATH),
// making the missing folders on the way when the access point says how.
func (fs *hostFS) open(ap AccessPointSpec) (*os.File, error) {
	rel := strings.TrimPrefix(path.Clean("/"+ap.RootDirectory), "/")
	if rel == "" {
		rel = "."
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath}
	fd, err := unix.Openat2(int(fs.root.Fd()), rel, how)
	if errors.Is(err, unix.ENOENT) && ap.Create != nil {
		return fs.create(rel, *ap.Create)
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), fs.spec.Name+"/"+rel), nil
}

// create makes the folders of rel that are missing, one at a time beneath the one before (each
// opened without following links), owned and moded as c says.
func (fs *hostFS) create(rel string, c DirCreation) (*os.File, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath}
	parent, err := unix.Openat2(int(fs.root.Fd()), ".", how)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: ".", Err: err}
	}
	mode := uint32(c.Mode.Perm())
	if c.Mode&os.ModeSetgid != 0 {
		mode |= unix.S_ISGID
	}
	if c.Mode&os.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	for _, name := range strings.Split(rel, "/") {
		fd, err := unix.Openat2(parent, name, how)
		if errors.Is(err, unix.ENOENT) {
			err = mkdirBeneath(parent, name, c.UID, c.GID, mode)
			if err == nil || errors.Is(err, unix.EEXIST) {
				fd, err = unix.Openat2(parent, name, how)
			}
		}
		unix.Close(parent)
		if err != nil {
			return nil, &os.PathError{Op: "mkdir", Path: rel, Err: err}
		}
		parent = fd
	}
	return os.NewFile(uintptr(parent), fs.spec.Name+"/"+rel), nil
}

// mkdirBeneath makes folder name in parent, then sets its owner and mode through a descriptor of
// the folder itself (opened without following links: whatever replaced it meanwhile is not
// changed).
func mkdirBeneath(parent int, name string, uid, gid, mode uint32) error {
	if err := unix.Mkdirat(parent, name, 0o700); err != nil {
		return err
	}
	fd, err := unix.Openat2(parent, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: beneath})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
		return err
	}
	return unix.Fchmod(fd, mode)
}
