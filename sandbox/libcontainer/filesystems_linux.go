//go:build linux && cgo

package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/sandbox"
)

// File systems in an environment. Each is first staged: the folder the manager opened (beneath
// the file system's root, without following links) is cloned as a mount of its own
// (open_tree) and attached at a folder of the driver's work dir, which only root may enter.
// libcontainer then bind-mounts that staged folder at the function's local_mount_path, so no
// path a function could change is ever resolved again (a function that may write in the file
// system could otherwise swap a folder on the way for a symbolic link out of it between the
// check and the mount). The bind is not recursive (a mount inside the file system is not
// carried in), nosuid and nodev, read-only when asked, and ID-mapped (MOUNT_ATTR_IDMAP): the
// runtime's user (uid 993 inside, a uid of its own on the host with user namespaces) is the
// access point's uid and gid on the file system, so every environment of every function that
// mounts an access point makes its files as that identity, and finds them its own. Mounts
// under a small tmpfs at /mnt, so that no mount point is ever made in a shared root.

// mntTmpfs holds the mount points of an environment's file systems: mode 755, root's, so the
// runtime can make nothing in /mnt itself.
const mntTmpfs = "mode=755,size=64k,nr_inodes=256"

// stageFileSystems attaches each file system's folder at its own folder of d.fsDir, in order.
// rootfs must have /mnt (the generated roots and image skeletons have it; an operator's base
// root may not).
func (d *Driver) stageFileSystems(id, rootfs string, fss []sandbox.FileSystemMount) ([]string, error) {
	if st, err := os.Lstat(filepath.Join(rootfs, "mnt")); err != nil || !st.IsDir() {
		return nil, errors.New("the root file system has no /mnt folder to mount file systems under (sandbox { rootfs } needs one)")
	}
	var staged []string
	for i, fs := range fss {
		target := filepath.Join(d.fsDir, id+"-"+strconv.Itoa(i))
		if err := stageOne(fs.Dir, target); err != nil {
			unstage(d.logger, staged)
			return nil, fmt.Errorf("staging the file system mounted at %s: %w", fs.Path, err)
		}
		staged = append(staged, target)
	}
	return staged, nil
}

// stageOne clones the mount of dir (that folder as its root, without the mounts below it) and
// attaches it at target.
func stageOne(dir *os.File, target string) error {
	if err := os.Mkdir(target, 0o700); err != nil {
		return err
	}
	tree, err := unix.OpenTree(int(dir.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		_ = os.Remove(target)
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(tree)
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		_ = os.Remove(target)
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// unstage detaches staged folders and removes them (a folder still mounted is kept, and the
// next start's sweep tries again); it returns nil.
func unstage(logger hclog.Logger, staged []string) []string {
	for _, p := range staged {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			logger.Warn("unmounting an environment's file system", "path", p, "error", err)
			continue
		}
		_ = os.Remove(p)
	}
	return nil
}

// fileSystemMounts adds to cfg the tmpfs at /mnt and each staged file system's bind mount,
// ID-mapped from its UID and GID on the file system to the runtime's user as the host knows
// it (idStart+993 with a user namespace, 993 without).
func (d *Driver) fileSystemMounts(cfg *configs.Config, fss []sandbox.FileSystemMount, staged []string, idStart int64) {
	if len(fss) == 0 {
		return
	}
	cfg.Mounts = append(cfg.Mounts, &configs.Mount{Source: "tmpfs", Destination: "/mnt", Device: "tmpfs",
		Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Data: mntTmpfs})
	hostUID, hostGID := int64(sandboxUID), int64(sandboxGID)
	if idStart >= 0 {
		hostUID, hostGID = idStart+sandboxUID, idStart+sandboxGID
	}
	for i, fs := range fss {
		flags := unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV
		if fs.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		m := &configs.Mount{Source: staged[i], Destination: fs.Path, Device: "bind", Flags: flags}
		if !fs.NoIDMap {
			m.IDMapping = &configs.MountIDMapping{
				UIDMappings: []configs.IDMap{{ContainerID: int64(fs.UID), HostID: hostUID, Size: 1}},
				GIDMappings: []configs.IDMap{{ContainerID: int64(fs.GID), HostID: hostGID, Size: 1}},
			}
		}
		cfg.Mounts = append(cfg.Mounts, m)
	}
}

// idmapError tells a file system whose kernel driver cannot be ID-mapped (NFS on Linux so far,
// ramfs) from other failures to start: the environment cannot mount it, and the caller is told
// so (invoke.FileSystemError), its cause logged with it.
func idmapError(fss []sandbox.FileSystemMount, err error) error {
	if len(fss) == 0 || !strings.Contains(err.Error(), "MOUNT_ATTR_IDMAP") {
		return err
	}
	return fmt.Errorf("%w: %v", &invoke.FileSystemError{Message: fmt.Sprintf(
		"the file system mounted at %s does not support ID-mapped mounts on this node's kernel, which the gateway needs to give files the access point's identity", fss[0].Path)}, err)
}
