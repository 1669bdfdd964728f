package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/sandbox"
)

// File systems of the node (file_system blocks): a host folder is used where it is; an NFS
// export is mounted once, nosuid and nodev, at data_dir/filesystems/<name> while the agent
// runs (a mount a crashed run left there is unmounted first), and environments bind-mount from
// there. Each file system's folder is then held open (sandbox.OpenFileSystems) for the
// environments' access points to be found beneath it.

// fileSystemsDir is where NFS exports are mounted, under data_dir.
const fileSystemsDir = "filesystems"

// nfsMountTimeout bounds mounting one export at start.
const nfsMountTimeout = time.Minute

// nodeFileSystems is the node's file systems, and what undoes them.
type nodeFileSystems struct {
	host   *sandbox.HostFileSystems
	mounts []string // NFS mount points, to unmount at close
	logger hclog.Logger
}

// startFileSystems mounts the NFS file systems and opens every file system's folder; nil when
// the node declares none.
func startFileSystems(ctx context.Context, dataDir string, fss []config.FileSystem, logger hclog.Logger) (*nodeFileSystems, error) {
	dir := filepath.Join(dataDir, fileSystemsDir)
	sweepFileSystems(dir, logger)
	if len(fss) == 0 {
		return nil, nil
	}
	n := &nodeFileSystems{logger: logger.Named("filesystems")}
	var specs []sandbox.FileSystemSpec
	for _, fs := range fss {
		root := fs.Source
		if fs.Type == config.FileSystemNFS {
			root = filepath.Join(dir, fs.Name)
			if err := mountNFS(ctx, fs, root); err != nil {
				n.close()
				return nil, err
			}
			n.mounts = append(n.mounts, root)
			n.logger.Info("mounted an NFS file system", "name", fs.Name, "source", fs.Source, "at", root)
		}
		// Linux's NFS client cannot be ID-mapped: the export's server maps identities instead.
		spec := sandbox.FileSystemSpec{Name: fs.Name, Root: root, NoIDMap: fs.Type == config.FileSystemNFS}
		for _, ap := range fs.AccessPoints {
			as := sandbox.AccessPointSpec{Name: ap.Name, RootDirectory: ap.RootDirectory}
			if u := ap.PosixUser; u != nil {
				as.PosixUser = &[2]uint32{u.UID, u.GID}
			}
			if c := ap.CreationInfo; c != nil {
				as.Create = &sandbox.DirCreation{UID: c.OwnerUID, GID: c.OwnerGID, Mode: c.Permissions}
			}
			spec.AccessPoints = append(spec.AccessPoints, as)
		}
		specs = append(specs, spec)
	}
	host, err := sandbox.OpenFileSystems(specs)
	if err != nil {
		n.close()
		return nil, err
	}
	n.host = host
	return n, nil
}

// mountNFS mounts fs's export at target with the system's mount helper (mount.nfs, which
// resolves the server and negotiates the version), nosuid and nodev before the block's options.
func mountNFS(ctx context.Context, fs config.FileSystem, target string) error {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return fmt.Errorf("file system %s: %w", fs.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, nfsMountTimeout)
	defer cancel()
	opts := append([]string{"nosuid", "nodev"}, fs.Options...)
	out, err := exec.CommandContext(ctx, "mount", "-t", "nfs", "-o", strings.Join(opts, ","), fs.Source, target).CombinedOutput()
	if err != nil {
		_ = os.Remove(target)
		msg := strings.TrimSpace(string(out))
		if b, rerr := os.ReadFile("/proc/filesystems"); rerr == nil && !strings.Contains(string(b), "\tnfs") {
			msg += " (this kernel has no NFS client: /proc/filesystems lists no nfs)"
		}
		return fmt.Errorf("file system %s: mounting the NFS export %s: %v: %s", fs.Name, fs.Source, err, msg)
	}
	return nil
}

// sweepFileSystems unmounts and removes what a crashed run left in dir.
func sweepFileSystems(dir string, logger hclog.Logger) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH); err == nil {
			logger.Info("unmounted a file system an earlier run left mounted", "path", p)
		}
		_ = os.Remove(p)
	}
}

// sandbox is the file systems as the environment manager takes them (nil when none).
func (n *nodeFileSystems) sandbox() sandbox.FileSystems {
	if n == nil || n.host == nil {
		return nil
	}
	return n.host
}

// close releases the folders and unmounts the NFS exports (lazily when still busy).
func (n *nodeFileSystems) close() error {
	if n == nil {
		return nil
	}
	if n.host != nil {
		n.host.Close()
	}
	var errs []error
	for _, p := range n.mounts {
		err := unix.Unmount(p, 0)
		if errors.Is(err, unix.EBUSY) {
			n.logger.Warn("an NFS file system is busy: detaching it", "path", p)
			err = unix.Unmount(p, unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
			continue
		}
		_ = os.Remove(p)
	}
	return errors.Join(errs...)
}
