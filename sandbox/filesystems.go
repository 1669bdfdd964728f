package sandbox

import (
	"fmt"
	"os"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// File systems: the node's file_system blocks, which functions mount under /mnt. The manager
// asks FileSystems for the host folder of a function's file system as it prepares each
// environment, and the driver bind-mounts that folder, nosuid and nodev, at the function's
// local_mount_path, with an ID mapping that makes the runtime's user the access point's
// identity on the file system.

// FileSystems opens the host folders functions' file systems mount.
type FileSystems interface {
	// Open finds a function's file system on this node and opens the folder the environment
	// mounts. It fails with a *invoke.FileSystemError when the node cannot (it does not declare
	// it, the folder is missing or reaches out of the file system).
	Open(c structs.FileSystemConfig) (FileSystemMount, error)
}

// FileSystemMount is a file system as an environment mounts it.
type FileSystemMount struct {
	// Dir is the host folder, opened (O_PATH) where it was found: whatever is renamed or
	// replaced by a symbolic link in the file system afterwards, this folder is what is mounted.
	// The manager closes it once the driver's Create returned.
	Dir *os.File
	// Path is where the environment sees it, /mnt/<something>.
	Path     string
	ReadOnly bool
	// UID and GID are the identity, on the file system, of the runtime's user: what its files
	// are made with and its access is checked as (an access point's posix_user; by default the
	// sandbox user, DefaultFileSystemUID:DefaultFileSystemGID).
	UID, GID uint32
	// NoIDMap mounts it without an ID mapping (a file system whose server maps identities
	// itself, as NFS with all_squash): UID and GID are unused, and the runtime's user is its
	// host uid there.
	NoIDMap bool
}

// The identity on a file system of a function whose access point has no posix_user: the
// sandbox user's, as Lambda's functions run as uid 993 (sbx_user1051), gid 990.
const (
	DefaultFileSystemUID = 993
	DefaultFileSystemGID = 990
)

// FileSystemSpec is a file system of the node, as the agent declares it.
type FileSystemSpec struct {
	Name string
	// Root is its host folder (for NFS, where the agent mounted the export).
	Root string
	// NoIDMap mounts it without an ID mapping (FileSystemMount.NoIDMap): for NFS, whose client
	// cannot be ID-mapped on Linux so far.
	NoIDMap      bool
	AccessPoints []AccessPointSpec
}

// AccessPointSpec is an access point of a file system.
type AccessPointSpec struct {
	Name string
	// RootDirectory is the folder functions see, inside the file system ("/" its root).
	RootDirectory string
	// PosixUser, when set, is the identity of the functions' files ([uid, gid]); nil: the
	// sandbox user's.
	PosixUser *[2]uint32
	// Create, when set, makes RootDirectory (and the folders above it inside the file system)
	// when it does not exist, with this owner and mode.
	Create *DirCreation
}

// DirCreation is how an access point's root directory is made.
type DirCreation struct {
	UID, GID uint32
	Mode     os.FileMode // permission bits, with os.ModeSetgid and os.ModeSticky
}

// closeMounts closes the folders of an environment's file systems.
func closeMounts(ms []FileSystemMount) {
	for _, m := range ms {
		if m.Dir != nil {
			m.Dir.Close()
		}
	}
}

// openFileSystems opens fn's file systems for an environment (none when it has none).
func (m *Manager) openFileSystems(fn *structs.Function) ([]FileSystemMount, error) {
	var out []FileSystemMount
	for _, c := range fn.FileSystems {
		if m.cfg.FileSystems == nil {
			closeMounts(out)
			return nil, &invoke.FileSystemError{Message: fmt.Sprintf("function %s mounts file system %q, which this node does not declare", fn.Name, c.Name())}
		}
		fm, err := m.cfg.FileSystems.Open(c)
		if err != nil {
			closeMounts(out)
			return nil, err
		}
		out = append(out, fm)
	}
	return out, nil
}
