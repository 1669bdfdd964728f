//go:build linux && cgo

// Package libcontainer is the isolating sandbox driver: each environment is a container run
// in-process with runc's libcontainer. Own mount, PID, IPC, UTS and network namespaces (the
// network has only loopback, where the Runtime API listens), a read-only root, the code read-only
// at /var/task, a size-limited tmpfs /tmp, memory (no swap), CPU shares and pids limits, no new
// privileges and no capabilities, an unprivileged user; suspended with the cgroup freezer.
package libcontainer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // device rules need the devices manager
	devconfig "github.com/opencontainers/cgroups/devices/config"
	cgmanager "github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lambdagw/gateway/sandbox"
	"github.com/lambdagw/gateway/sandbox/cni"
)

// Config configures the driver.
type Config struct {
	// WorkDir is the driver's own directory: libcontainer's state, network namespace files and
	// the generated base root filesystem. Keep it apart from the gateway binary's directory.
	WorkDir string
	// BaseRootfs is an optional read-only base root filesystem; by default a minimal one is
	// generated (enough for static binaries).
	BaseRootfs string
	// CgroupParent is an absolute cgroup path owning every environment of this driver.
	CgroupParent string
	// BatchCPU runs the runtimes' threads under SCHED_BATCH: the same CPU weight, but a runtime
	// that wakes does not preempt the task running on its CPU. A warm invocation wakes the
	// runtime by writing the event while the agent still has work to do for it (and for the
	// other callers); preempted there, the agent answers later and both switch more often.
	BatchCPU bool
	// Seccomp is the syscall filter: SeccompDefault, SeccompUnconfined or a profile file (JSON).
	Seccomp string
	// LockFile is the agent's data_dir lock (flock): held while the agent runs, so the reaper
	// knows a shutdown from a death. Empty: the reaper sweeps whenever the driver goes away.
	LockFile string
	// TotalMemoryBytes and TotalPids limit all environments together, on CgroupParent; 0: no
	// limit of the driver's own (the machine's).
	TotalMemoryBytes int64
	TotalPids        int64
	// UserNamespaces, when set, gives each environment a user namespace of its own with a
	// block of this range's host IDs (DetectUserNamespaces); nil: every environment's uid 993
	// is the host's uid 993.
	UserNamespaces *IDRange
	// Networks attaches environments to the operator's networks; nil: an environment asking
	// for one is refused.
	Networks Networks
	Logger   hclog.Logger
}

// Networks is the node's private networks as the driver uses them (sandbox/cni's Manager).
type Networks interface {
	Attach(ctx context.Context, id, netnsPath, name string, policies []string) (*cni.Attachment, error)
	Detach(ctx context.Context, a *cni.Attachment) error
	// ResolvConf is the file mounted at /etc/resolv.conf of the network's environments.
	ResolvConf(name string) string
}

// Driver runs environments as libcontainer containers.
type Driver struct {
	cfg      Config
	logger   hclog.Logger
	stateDir string
	netnsDir string
	rootfs   string
	cpus     *cpuSet
	seccomp  *configs.Seccomp // nil: unconfined
	reaper   *reaper          // removes the environments if the agent dies
	ids      *idAllocator     // nil without user namespaces
	ownRoot  string           // the generated rootfs folder to remove at Close, if any
	rootsDir string           // where image environments' roots are mounted (rootsDirFor)
	fsDir    string           // where environments' file systems are staged (stageFileSystems)
}

var _ sandbox.Driver = (*Driver)(nil)

// The runtime runs as Lambda's unprivileged sandbox user.
const (
	sandboxUID = 993
	sandboxGID = 990
)

// oomScoreAdj makes every environment's processes the OOM killer's first choice on the node.
var oomScoreAdj = 1000

// runtimeAPIPort is where the Runtime API listens inside every environment's namespace.
const runtimeAPIPort = 9001

// New checks that libcontainer can run here and prepares the work directory.
func New(cfg Config) (*Driver, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("libcontainer needs root: %w", sandbox.ErrUnavailable)
	}
	if !cgroups.IsCgroup2UnifiedMode() {
		if _, err := os.Stat("/sys/fs/cgroup/freezer"); err != nil {
			return nil, fmt.Errorf("no cgroup v1 freezer controller: %w", sandbox.ErrUnavailable)
		}
	} else if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		return nil, fmt.Errorf("no cgroup v2 hierarchy: %w", sandbox.ErrUnavailable)
	}
	if cfg.WorkDir == "" || !filepath.IsAbs(cfg.CgroupParent) {
		return nil, errors.New("libcontainer driver needs a work dir and an absolute cgroup parent")
	}
	filter, err := seccompFilter(cfg.Seccomp)
	if err != nil {
		return nil, err
	}
	if filter == nil {
		cfg.Logger.Warn("sandbox: seccomp is unconfined: functions may make any system call the kernel allows an unprivileged process")
	}
	d := &Driver{
		seccomp: filter,
		cfg:     cfg, logger: cfg.Logger.Named("libcontainer"),
		stateDir: filepath.Join(cfg.WorkDir, "state"),
		netnsDir: filepath.Join(cfg.WorkDir, "netns"),
		rootsDir: rootsDirFor(cfg.WorkDir),
		fsDir:    filepath.Join(cfg.WorkDir, "fs"),
		rootfs:   cfg.BaseRootfs,
		cpus:     newCPUSet(),
	}
	for _, dir := range []string{d.stateDir, d.fsDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	if cfg.UserNamespaces != nil {
		if d.ids, err = newIDAllocator(*cfg.UserNamespaces); err != nil {
			return nil, err
		}
	}
	switch {
	case d.rootfs != "" && cfg.UserNamespaces != nil:
		// An environment's root, mapped to an unprivileged host uid, mounts it itself.
		if err := worldTraversable(d.rootfs); err != nil {
			d.closeIDs()
			return nil, fmt.Errorf("sandbox { rootfs } must be reachable by unprivileged users with user namespaces on: %w", err)
		}
	case d.rootfs == "" && cfg.UserNamespaces != nil:
		// The work dir lies in data_dir, which only root may enter: the generated root goes
		// where every environment's mapped root can reach it.
		sum := sha256.Sum256([]byte(cfg.WorkDir))
		d.rootfs = filepath.Join(filepath.Dir(idLockFile), "rootfs-"+hex.EncodeToString(sum[:6]))
		d.ownRoot = d.rootfs
	case d.rootfs == "":
		d.rootfs = filepath.Join(cfg.WorkDir, "rootfs")
	}
	// Until the reaper runs, a failure removes the generated root here.
	fail := func(err error) (*Driver, error) {
		d.closeIDs()
		if d.ownRoot != "" {
			_ = os.RemoveAll(d.ownRoot)
		}
		return nil, err
	}
	if cfg.BaseRootfs == "" {
		if err := makeRootfs(d.rootfs); err != nil {
			return fail(fmt.Errorf("generating the base root filesystem: %w", err))
		}
	}
	if err := makeSkeleton(filepath.Join(d.rootsDir, skeletonName)); err != nil {
		return fail(fmt.Errorf("preparing the roots of image environments: %w", err))
	}
	if err := limitParent(cfg); err != nil {
		return fail(err)
	}
	if d.reaper, err = startReaper(cfg, d.ownRoot); err != nil {
		return fail(err)
	}
	// Last: nothing after it can fail and leave the anchor behind.
	if !cgroups.IsCgroup2UnifiedMode() {
		if err := ensureAnchor(cfg.CgroupParent); err != nil {
			d.reaper.stop()
			d.closeIDs()
			return nil, err
		}
	}
	return d, nil
}

func (d *Driver) Name() string { return "libcontainer" }

func (d *Driver) closeIDs() {
	if d.ids != nil {
		d.ids.close()
	}
}

// limitParent creates the cgroup parent with the limits of all environments together: the
// kernel charges every environment's memory and tasks to it as well, so a function that goes
// past it is OOM-killed or refused a fork inside the parent, never the agent.
func limitParent(cfg Config) error {
	if cfg.TotalMemoryBytes <= 0 && cfg.TotalPids <= 0 {
		return nil
	}
	res := &cgroups.Resources{SkipDevices: true}
	if b := cfg.TotalMemoryBytes; b > 0 {
		res.Memory, res.MemorySwap = b, b // swap off, as for each environment
	}
	if cfg.TotalPids > 0 {
		res.PidsLimit = &cfg.TotalPids
	}
	m, err := cgmanager.New(&cgroups.Cgroup{Path: cfg.CgroupParent, Resources: res})
	if err != nil {
		return fmt.Errorf("the environments' parent cgroup %s: %w", cfg.CgroupParent, err)
	}
	if err := m.Apply(-1); err != nil {
		return fmt.Errorf("creating the environments' parent cgroup %s: %w", cfg.CgroupParent, err)
	}
	if err := m.Set(res); err != nil {
		return fmt.Errorf("limiting the environments' parent cgroup %s (total_memory, total_pids): %w", cfg.CgroupParent, err)
	}
	return nil
}

// Close removes the (empty) cgroup parent, and its own parent when no other driver uses it:
// rmdir of a cgroup fails while it has children, so a shared parent is never disturbed.
func (d *Driver) Close() error {
	if d.reaper != nil {
		defer d.reaper.stop()
	}
	d.closeIDs()
	if d.ownRoot != "" {
		_ = os.RemoveAll(d.ownRoot)
	}
	removeRoots(d.rootsDir)
	if !cgroups.IsCgroup2UnifiedMode() {
		removeAnchor(d.cfg.CgroupParent)
	}
	for _, p := range []string{d.cfg.CgroupParent, filepath.Dir(d.cfg.CgroupParent)} {
		if p == "/" || p == "." {
			continue
		}
		for _, dir := range cgroupDirs(p) {
			_ = os.Remove(dir)
		}
	}
	return nil
}

// RootsDir is where a driver with work dir workDir mounts the roots of image environments
// (tests check that nothing stays there).
func RootsDir(workDir string) string { return rootsDirFor(workDir) }

// rootsDirFor is where the roots of image environments are mounted: outside data_dir, which
// only root may enter (a user namespace's root must reach its own root), and named after the
// work dir so that the reaper and the next start's sweep find them.
func rootsDirFor(workDir string) string {
	sum := sha256.Sum256([]byte(workDir))
	return filepath.Join(filepath.Dir(idLockFile), "roots-"+hex.EncodeToString(sum[:6]))
}

// skeletonName is the roots folder's top layer for every image root: the mount points, so that
// libcontainer never needs to create one in a read-only root.
const skeletonName = ".skeleton"

func makeSkeleton(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	for _, sub := range []string{"var/task", "opt", "tmp", "proc", "dev", "sys", "etc", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	// The environment's own hosts over the image's, as container engines give theirs:
	// sandbox.localdomain is where extensions listen for telemetry, as on Lambda. An empty
	// resolv.conf is the mount point of a network's (and no name servers without one).
	if err := os.WriteFile(filepath.Join(dir, "etc", "resolv.conf"), nil, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "etc", "hosts"), []byte(envHosts), 0o644)
}

// envHosts is /etc/hosts in every environment.
const envHosts = "127.0.0.1 localhost sandbox sandbox.localdomain\n::1 localhost ip6-localhost ip6-loopback\n"

// maxOverlayOptions is what one mount(2) takes of options (a page, less some room).
const maxOverlayOptions = 4000

// mountRoot mounts an image environment's root: the layers (base first) under the skeleton, as
// a read-only overlay (no upper folder), at its own folder under rootsDir.
func (d *Driver) mountRoot(id string, layers []string) (string, error) {
	return d.mountOverlay(id, append([]string{filepath.Join(d.rootsDir, skeletonName)}, reversed(layers)...), "the image's layers")
}

// mountOpt mounts the layers an environment sees at /opt: one is bound as it is; more are merged
// as a read-only overlay at the environment's own folder under rootsDir, a later layer's files
// over an earlier one's, as Lambda merges them.
func (d *Driver) mountOpt(id string, layers []string) (string, error) {
	if len(layers) == 1 {
		return "", nil
	}
	return d.mountOverlay(id+optSuffix, reversed(layers), "the function's layers")
}

// optSuffix names the /opt overlay of environment id (IDs have no '.').
const optSuffix = ".opt"

func reversed(s []string) []string {
	out := make([]string, 0, len(s))
	for i := len(s) - 1; i >= 0; i-- {
		out = append(out, s[i])
	}
	return out
}

// mountOverlay mounts a read-only overlay of lower (the top first) at rootsDir/name.
func (d *Driver) mountOverlay(name string, lower []string, what string) (string, error) {
	for _, l := range lower {
		if !filepath.IsAbs(l) || strings.ContainsAny(l, ":,\\") {
			return "", fmt.Errorf("folder %q cannot be an overlay lower folder", l)
		}
	}
	opts := "lowerdir=" + strings.Join(lower, ":")
	if len(opts) > maxOverlayOptions {
		return "", fmt.Errorf("%s: %d folders make overlay options of %d bytes, over the %d one mount takes", what, len(lower), len(opts), maxOverlayOptions)
	}
	target := filepath.Join(d.rootsDir, name)
	if err := os.Mkdir(target, 0o755); err != nil {
		return "", fmt.Errorf("making the folder to mount %s at: %w", what, err)
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, opts); err != nil {
		_ = os.Remove(target)
		return "", fmt.Errorf("mounting %s: %w", what, err)
	}
	return target, nil
}

// unmountRoot undoes mountRoot, mountOpt and stageFileSystems; a folder is removed only once
// unmounted (never through a mount).
func (i *instance) unmountRoot() {
	i.staged = unstage(i.d.logger, i.staged)
	for _, p := range []*string{&i.root, &i.opt} {
		if *p == "" {
			continue
		}
		if err := unix.Unmount(*p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			i.d.logger.Warn("unmounting an environment's overlay", "path", *p, "error", err)
			continue
		}
		_ = os.Remove(*p)
		*p = ""
	}
}

// removeRoots unmounts and removes every root left in dir, then the skeleton and dir.
func removeRoots(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.Name() == skeletonName {
			_ = os.RemoveAll(p)
			continue
		}
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
	}
	_ = os.Remove(dir)
}

// makeRootfs writes a minimal root: the mount points (the root is read-only and shared, so
// libcontainer must not need to create any) and the few files programs expect in /etc.
func makeRootfs(root string) error {
	for _, dir := range []string{"var/task", "var/runtime", "var/lang", "opt", "tmp", "proc", "dev", "sys", "etc", "usr/bin", "bin", "lib", "lib64", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n",
		"etc/group":         "root:x:0:\nsbx_user1051:x:990:\n",
		"etc/hosts":         envHosts,
		"etc/resolv.conf":   "",
		"etc/nsswitch.conf": "hosts: files dns\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cgroupDirs lists the directories of an absolute cgroup path in every hierarchy.
func cgroupDirs(path string) []string {
	if cgroups.IsCgroup2UnifiedMode() {
		return []string{filepath.Join("/sys/fs/cgroup", path)}
	}
	var out []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if st, err := os.Lstat(p); err == nil && st.IsDir() {
			out = append(out, filepath.Join(p, path))
		}
	}
	return out
}

// Create prepares the container and starts its init: namespaces (the network one with loopback
// only), cgroups and mounts are set up and init waits, before exec'ing the runtime, until Start.
// Then the Runtime API listener is opened inside the environment's network namespace. This is
// most of a cold start's cost (tens of ms, against about one for Start), so a prepared instance
// can be kept on standby.
func (d *Driver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	if spec.Network != nil && d.cfg.Networks == nil {
		return nil, fmt.Errorf("creating container %s: network %q: this node declares no networks", spec.ID, spec.Network.Name)
	}
	inst := &instance{d: d, spec: spec, exited: make(chan struct{}), idStart: -1}
	if d.ids != nil {
		start, err := d.ids.take()
		if err != nil {
			return nil, fmt.Errorf("creating container %s: %w", spec.ID, err)
		}
		inst.idStart = start
	}
	rootfs := d.rootfs
	if len(spec.RootLayers) > 0 {
		root, err := d.mountRoot(spec.ID, spec.RootLayers)
		if err != nil {
			inst.releaseIDs()
			return nil, fmt.Errorf("creating container %s: %w", spec.ID, err)
		}
		inst.root, rootfs = root, root
	}
	optDir := ""
	if len(spec.OptLayers) > 0 {
		opt, err := d.mountOpt(spec.ID, spec.OptLayers)
		if err != nil {
			inst.releaseIDs()
			inst.unmountRoot()
			return nil, fmt.Errorf("creating container %s: %w", spec.ID, err)
		}
		inst.opt, optDir = opt, cmp.Or(opt, spec.OptLayers[0])
	}
	if len(spec.FileSystems) > 0 {
		staged, err := d.stageFileSystems(spec.ID, rootfs, spec.FileSystems)
		if err != nil {
			inst.releaseIDs()
			inst.unmountRoot()
			return nil, fmt.Errorf("creating container %s: %w", spec.ID, err)
		}
		inst.staged = staged
	}
	inst.cpus = d.cpus.take(spec.MemoryMB)
	cfg := d.containerConfig(spec, rootfs, optDir, inst.cpus, inst.idStart)
	d.fileSystemMounts(cfg, spec.FileSystems, inst.staged, inst.idStart)
	c, err := libcontainer.Create(d.stateDir, spec.ID, cfg)
	if err != nil {
		d.cpus.release(inst.cpus)
		inst.releaseIDs()
		inst.unmountRoot()
		return nil, fmt.Errorf("creating container %s: %w", spec.ID, err)
	}
	inst.c = c
	if err := inst.startInit(); err != nil {
		_ = inst.Destroy(context.Background())
		return nil, idmapError(spec.FileSystems, err)
	}
	pid, err := inst.proc.Pid()
	if err == nil {
		inst.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	}
	if err == nil {
		inst.ln, err = listenInNetns(inst.netns)
	}
	if err != nil {
		_ = inst.Destroy(context.Background())
		return nil, fmt.Errorf("opening the Runtime API in container %s: %w", spec.ID, err)
	}
	if n := spec.Network; n != nil {
		// The plugins enter the namespace through the descriptor the agent holds until Destroy:
		// a path that cannot come to name another process's namespace meanwhile.
		path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), inst.netns.Fd())
		if inst.att, err = d.cfg.Networks.Attach(ctx, spec.ID, path, n.Name, n.EgressPolicies); err != nil {
			_ = inst.Destroy(context.Background())
			return nil, fmt.Errorf("creating container %s: %w", spec.ID, err)
		}
	}
	return inst, nil
}

// listenInNetns opens the Runtime API listener in the environment's network namespace (the
// container's own, owned by its user namespace when it has one).
func listenInNetns(ns *os.File) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(runtimeAPIPort))
		return err
	})
	if err != nil && ln != nil {
		ln.Close()
		ln = nil
	}
	return ln, err
}

// inNetns runs fn on a dedicated locked thread inside the network namespace ns: a socket made
// there stays there. The thread is discarded if it cannot return to the host namespace.
func inNetns(ns *os.File, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("entering the network namespace: %w", err)
			return
		}
		ferr := fn()
		if serr := netns.Set(orig); serr != nil {
			// This thread stays in the wrong namespace: keep it locked so it dies with us.
			ch <- errors.Join(ferr, fmt.Errorf("returning to the host network namespace: %w", serr))
			return
		}
		runtime.UnlockOSThread()
		ch <- ferr
	}()
	return <-ch
}

// DialContext connects from inside the environment's network namespace, which has loopback
// only: nothing outside the environment can be reached this way, whatever addr says. The
// namespace is held by a descriptor opened at Create, never looked up by a pid that may have
// been reused since.
func (i *instance) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if i.netns == nil {
		return nil, fmt.Errorf("dialing %s in container %s: it has no network namespace", addr, i.spec.ID)
	}
	var c net.Conn
	err := inNetns(i.netns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("dialing %s in container %s: %w", addr, i.spec.ID, err)
	}
	return c, nil
}

// cpuShares weighs an environment against the others in proportion to its memory, as Lambda
// allocates CPU (one vCPU per 1,769 MB), with the smallest size (128 MB) at the kernel's default
// weight of 1024 rather than at 74: only the ratios between environments matter, and CFS preempts
// between small weights far more often (their virtual time runs faster), which cost 5-7% of the
// throughput of four busy 128 MB environments on a 2-vCPU machine.
func cpuShares(memoryMB int) uint64 {
	return uint64(min(max(memoryMB*1024/128, 2), 262144)) // cgroup v1's bounds
}

func (d *Driver) containerConfig(spec sandbox.Spec, rootfs, optDir, cpus string, idStart int64) *configs.Config {
	const mntFlags = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV
	mem := int64(spec.MemoryMB) << 20
	shares := cpuShares(spec.MemoryMB)
	var rules []*devconfig.Rule
	for _, dev := range specconv.AllowedDevices {
		rules = append(rules, &dev.Rule)
	}
	pids := int64(spec.PidsLimit)
	var sched *configs.Scheduler
	if d.cfg.BatchCPU {
		sched = &configs.Scheduler{Policy: specs.SchedBatch} // set by init before the exec, inherited by every thread
	}
	c := &configs.Config{
		Scheduler: sched,
		Seccomp:   d.seccomp,
		// The kernel's OOM killer takes a function before the agent.
		OomScoreAdj:     &oomScoreAdj,
		Rootfs:          rootfs,
		Readonlyfs:      true,
		NoNewPrivileges: true,
		Hostname:        "localhost",
		Capabilities:    &configs.Capabilities{}, // none: the runtime needs no privilege
		Namespaces: configs.Namespaces{
			{Type: configs.NEWNS}, {Type: configs.NEWPID}, {Type: configs.NEWIPC}, {Type: configs.NEWUTS},
			{Type: configs.NEWNET},
		},
		// The network namespace has loopback only, where the Runtime API listens.
		Networks: []*configs.Network{{Type: "loopback", Address: "127.0.0.1/0", Gateway: "localhost"}},
		Cgroups: &cgroups.Cgroup{
			Path: filepath.Join(d.cfg.CgroupParent, spec.ID),
			Resources: &cgroups.Resources{
				Memory:     mem,
				MemorySwap: mem, // memory+swap = memory: swap off
				CpuShares:  shares,
				CpusetCpus: cpus,
				PidsLimit:  &pids,
				Devices:    rules,
			},
		},
		Devices: specconv.AllowedDevices,
		Mounts: []*configs.Mount{
			{Source: "proc", Destination: "/proc", Device: "proc", Flags: mntFlags},
			{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
			{Source: "shm", Destination: "/dev/shm", Device: "tmpfs", Flags: mntFlags, Data: "mode=1777,size=65536k"},
			{Source: "sysfs", Destination: "/sys", Device: "sysfs", Flags: mntFlags | unix.MS_RDONLY},
			{Source: "tmpfs", Destination: "/tmp", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV,
				Data: fmt.Sprintf("mode=1777,size=%dm", spec.TmpMB)},
		},
		MaskPaths: []string{
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
		},
		ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		Rlimits: []configs.Rlimit{
			{Type: unix.RLIMIT_NOFILE, Hard: 1024, Soft: 1024},
		},
	}
	if n := spec.Network; n != nil && d.cfg.Networks != nil {
		c.Mounts = append(c.Mounts, &configs.Mount{Source: d.cfg.Networks.ResolvConf(n.Name), Destination: "/etc/resolv.conf", Device: "bind",
			Flags: unix.MS_BIND | unix.MS_RDONLY | mntFlags})
	}
	if spec.CodeDir != "" {
		c.Mounts = append(c.Mounts, &configs.Mount{Source: spec.CodeDir, Destination: "/var/task", Device: "bind",
			Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV})
	}
	if optDir != "" {
		c.Mounts = append(c.Mounts, &configs.Mount{Source: optDir, Destination: "/opt", Device: "bind",
			Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV})
	}
	if idStart >= 0 {
		// The network namespace is the container's own (created by it, not joined), so it is
		// owned by this user namespace and sysfs can be mounted.
		c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER})
		c.UIDMappings = []configs.IDMap{{ContainerID: 0, HostID: idStart, Size: IDsPerEnvironment}}
		c.GIDMappings = []configs.IDMap{{ContainerID: 0, HostID: idStart, Size: IDsPerEnvironment}}
	}
	return c
}

// instance is one container.
type instance struct {
	d    *Driver
	spec sandbox.Spec
	cpus string // the cpuset taken from the driver
	// idStart is the first host ID of the environment's user namespace block; -1: none.
	idStart int64
	ln      net.Listener
	netns   *os.File        // the container's network namespace, open from Create to Destroy
	att     *cni.Attachment // its place on a network, when it has one
	root    string          // the overlay root of an image environment, mounted by Create; "" for none
	opt     string          // the overlay of its layers at /opt, when it has more than one; "" for none
	staged  []string        // its file systems' folders staged under the driver's fs folder, in order
	c       *libcontainer.Container
	proc    *libcontainer.Process

	memDir   string      // the memory cgroup directory, for peak usage
	peak     *cgroupFile // memory.max_usage_in_bytes (v1) or memory.peak (v2), kept open
	peakBuf  [32]byte
	fz       *freezer // v1 freezer, driven directly; nil: libcontainer's Pause/Resume (v2)
	oom      <-chan struct{}
	oomMu    sync.Mutex
	oomSeen  bool
	exited   chan struct{}
	status   sandbox.ExitStatus
	destroy  sync.Once
	destroyE error
}

func (i *instance) ID() string              { return i.spec.ID }
func (i *instance) Listener() net.Listener  { return i.ln }
func (i *instance) RuntimeAPIAddr() string  { return "127.0.0.1:" + strconv.Itoa(runtimeAPIPort) }
func (i *instance) Exited() <-chan struct{} { return i.exited }

func (i *instance) ExitStatus() sandbox.ExitStatus {
	<-i.exited
	return i.status
}

// env is the runtime's environment, and its extensions'.
func (i *instance) env() []string {
	return append(append([]string{}, i.spec.Env...), "AWS_LAMBDA_RUNTIME_API="+i.RuntimeAPIAddr())
}

// startInit starts the container's init process, which stops before exec'ing the runtime.
func (i *instance) startInit() error {
	p := &libcontainer.Process{
		Args:   i.spec.Args,
		Env:    i.env(),
		Cwd:    cmp.Or(i.spec.Cwd, "/var/task"),
		UID:    sandboxUID,
		GID:    sandboxGID,
		Stdout: i.spec.Output,
		Stderr: i.spec.Output,
		Init:   true,
	}
	if err := i.c.Start(p); err != nil {
		return fmt.Errorf("starting container %s: %w", i.spec.ID, err)
	}
	i.proc = p
	// The waiter reads what is set up below (memDir for the OOM check): it starts after it,
	// on every return.
	defer func() { go i.wait() }()
	if st, err := i.c.State(); err == nil {
		if dir, ok := st.CgroupPaths["memory"]; ok {
			i.memDir = dir
		} else if dir, ok := st.CgroupPaths[""]; ok {
			i.memDir = dir
		}
		if dir, ok := st.CgroupPaths["freezer"]; ok {
			f, err := openCgroupFile(filepath.Join(dir, "freezer.state"), os.O_RDWR)
			if err != nil {
				return fmt.Errorf("opening the freezer of container %s: %w", i.spec.ID, err)
			}
			i.fz = &freezer{state: f}
		}
	}
	if i.memDir != "" {
		for _, name := range []string{"memory.max_usage_in_bytes", "memory.peak"} {
			if f, err := openCgroupFile(filepath.Join(i.memDir, name), os.O_RDONLY); err == nil {
				i.peak = f
				break
			}
		}
	}
	// The notification holds a thread per environment in a blocking read (a node of a thousand
	// environments would spend a thousand threads on it): it is only the fallback for kernels
	// whose memory cgroup counts no oom_kill (before 4.13), which oomKilled reads otherwise.
	if i.oomCounted() {
		return nil
	}
	if ch, err := i.c.NotifyOOM(); err == nil {
		i.oom = ch
		go func() {
			for range ch {
				i.oomMu.Lock()
				i.oomSeen = true
				i.oomMu.Unlock()
			}
		}()
	}
	return nil
}

// Start lets the waiting init exec the runtime.
func (i *instance) Start(ctx context.Context) error {
	if err := i.c.Exec(); err != nil {
		return fmt.Errorf("running the runtime in container %s: %w", i.spec.ID, err)
	}
	return nil
}

func (i *instance) wait() {
	st := waitProcess(i.proc)
	st.OOMKilled = i.oomKilled(st)
	i.status = st
	close(i.exited)
}

// waitProcess reaps p, a child of the agent (libcontainer starts every process of a container
// as one), and tells how it ended.
func waitProcess(p *libcontainer.Process) sandbox.ExitStatus {
	if pid, err := p.Pid(); err == nil {
		awaitExit(pid)
	}
	ps, err := p.Wait()
	st := sandbox.ExitStatus{}
	if ps == nil && err != nil {
		st.Err = err
	} else if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			st.Code, st.Signal = -1, ws.Signal().String()
		} else {
			st.Code = ws.ExitStatus()
		}
	}
	return st
}

// Spawn runs another process in the container: joining its namespaces and cgroup, under its
// seccomp filter, user and (empty) capabilities, whether the runtime was exec'd yet or not.
// The runtime is the container's init, so the process dies with it at the latest.
func (i *instance) Spawn(ctx context.Context, args []string, out *os.File) (sandbox.Process, error) {
	p := &libcontainer.Process{
		Args:   args,
		Env:    i.env(),
		Cwd:    "/",
		UID:    sandboxUID,
		GID:    sandboxGID,
		Stdout: out,
		Stderr: out,
	}
	if err := i.c.Run(p); err != nil {
		return nil, fmt.Errorf("starting %s in container %s: %w", args[0], i.spec.ID, err)
	}
	sp := &spawned{exited: make(chan struct{})}
	go func() {
		sp.status = waitProcess(p)
		close(sp.exited)
	}()
	return sp, nil
}

// spawned is a process started by Spawn.
type spawned struct {
	exited chan struct{}
	status sandbox.ExitStatus
}

func (s *spawned) Exited() <-chan struct{} { return s.exited }
func (s *spawned) ExitStatus() sandbox.ExitStatus {
	<-s.exited
	return s.status
}

// Signal signals the runtime. It is the container's init, which the kernel shields from any
// signal it has no handler for (pid_namespaces(7)); a runtime that neither handles nor ignores
// SIGTERM (or SIGINT, SIGHUP) would end at it anywhere else, so it is killed instead.
func (i *instance) Signal(sig os.Signal) error {
	if i.proc == nil {
		return fmt.Errorf("signalling container %s: it has no runtime", i.spec.ID)
	}
	if s, ok := sig.(syscall.Signal); ok && (s == unix.SIGTERM || s == unix.SIGINT || s == unix.SIGHUP) {
		if pid, err := i.proc.Pid(); err == nil && !disposes(pid, s) {
			sig = unix.SIGKILL
		}
	}
	if err := i.proc.Signal(sig); err != nil {
		return fmt.Errorf("signalling the runtime of container %s: %w", i.spec.ID, err)
	}
	return nil
}

// disposes reports whether process pid handles or ignores sig (its SigCgt and SigIgn masks);
// true when that cannot be read.
func disposes(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return true
	}
	bit := uint64(1) << (uint(sig) - 1)
	seen := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigCgt" && k != "SigIgn") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil || mask&bit != 0 {
			return true
		}
		seen++
	}
	return seen < 2
}

// awaitExit returns once process pid has exited, without holding an OS thread: its pidfd turns
// readable at the exit, and the runtime's poller watches it. The wait that follows then reaps
// at once, where it would otherwise block a thread per environment for the environment's
// whole life (a thousand environments, a thousand threads; Go stops at ten thousand). Without
// pidfds (Linux before 5.10) it returns at once and the wait blocks as before.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	polled := false
	// The first call asks the poller to wait for readability; the second comes once it is.
	_ = rc.Read(func(uintptr) bool {
		done := polled
		polled = true
		return done
	})
}

// oomCounted reports whether the environment's memory cgroup counts OOM kills (v1
// memory.oom_control's oom_kill line, v2 memory.events').
func (i *instance) oomCounted() bool {
	if i.memDir == "" {
		return false
	}
	for _, f := range []string{"memory.oom_control", "memory.events"} {
		if b, err := os.ReadFile(filepath.Join(i.memDir, f)); err == nil && strings.Contains(string(b), "oom_kill ") {
			return true
		}
	}
	return false
}

// oomKilled asks the memory cgroup whether its OOM killer acted (v1 memory.oom_control's
// oom_kill counter, v2 memory.events), with the OOM notification as a fallback.
func (i *instance) oomKilled(st sandbox.ExitStatus) bool {
	if i.memDir != "" {
		for _, f := range []string{"memory.oom_control", "memory.events"} {
			b, err := os.ReadFile(filepath.Join(i.memDir, f))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "oom_kill "); ok && strings.TrimSpace(v) != "0" {
					return true
				}
			}
		}
	}
	if st.Signal != "killed" {
		return false
	}
	time.Sleep(5 * time.Millisecond) // the notification may trail the exit
	i.oomMu.Lock()
	defer i.oomMu.Unlock()
	return i.oomSeen
}

// Freeze suspends the container with the cgroup freezer; on failure it is thawed again, never
// left half-frozen (sandbox.ErrStuckFrozen when even that fails).
func (i *instance) Freeze(ctx context.Context) error {
	if i.fz != nil {
		if err := i.fz.freeze(ctx); err != nil {
			return fmt.Errorf("freezing %s: %w", i.spec.ID, err)
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not freezing %s: %w", i.spec.ID, err)
	}
	// cgroup v2: libcontainer's Pause, which cannot be interrupted. When ctx ends first, its
	// result is still awaited and undone before answering, so that an error here always means
	// the environment runs (an invocation is delivered to it next, without a thaw).
	done := make(chan error, 1)
	go func() { done <- i.c.Pause() }()
	var cause error
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		cause = err
	case <-ctx.Done():
		cause = ctx.Err()
		<-done
	}
	if err := i.c.Resume(); err != nil && !errors.Is(err, libcontainer.ErrNotPaused) {
		return fmt.Errorf("freezing %s: %v; resuming it failed: %v: %w", i.spec.ID, cause, err, sandbox.ErrStuckFrozen)
	}
	return fmt.Errorf("freezing %s: %w", i.spec.ID, cause)
}

func (i *instance) Thaw(ctx context.Context) error {
	if i.fz != nil {
		if err := i.fz.thaw(); err != nil {
			return fmt.Errorf("thawing %s: %w", i.spec.ID, err)
		}
		return nil
	}
	if err := i.c.Resume(); err != nil {
		return fmt.Errorf("thawing %s: %w", i.spec.ID, err)
	}
	return nil
}

// MaxMemoryBytes reads the cgroup's peak usage. It is called after every invocation (REPORT),
// never concurrently for one instance.
func (i *instance) MaxMemoryBytes() (uint64, error) {
	if i.peak == nil {
		return 0, errors.New("no peak memory file in the memory cgroup")
	}
	return i.peak.readUint(i.peakBuf[:])
}

// Destroy thaws (a frozen task cannot die), kills every process, waits, and removes the
// container, its cgroups, the network namespace and the listener.
func (i *instance) Destroy(ctx context.Context) error {
	i.destroy.Do(func() {
		var errs []error
		if i.c != nil {
			if i.fz != nil {
				if i.fz.frozen() {
					_ = i.fz.thaw()
				}
			} else if st, err := i.c.Status(); err == nil && st == libcontainer.Paused {
				_ = i.c.Resume()
			}
			if i.proc != nil {
				_ = i.c.Signal(unix.SIGKILL)
				select {
				case <-i.exited:
				case <-ctx.Done():
					errs = append(errs, fmt.Errorf("waiting for %s to die: %w", i.spec.ID, ctx.Err()))
				}
			}
			if err := i.c.Destroy(); err != nil {
				errs = append(errs, fmt.Errorf("destroying container %s: %w", i.spec.ID, err))
			}
		}
		if i.proc == nil {
			close(i.exited)
		}
		if i.fz != nil {
			i.fz.state.close()
		}
		i.peak.close()
		if len(errs) == 0 {
			i.unmountRoot()
		}
		i.d.cpus.release(i.cpus)
		if len(errs) == 0 {
			// Only once nothing of it runs: a process left alive keeps its uid to itself.
			i.releaseIDs()
		}
		if i.att != nil {
			// The namespace is still held (i.netns): the plugins find eth0 in it and remove it.
			if err := i.d.cfg.Networks.Detach(context.WithoutCancel(ctx), i.att); err != nil {
				errs = append(errs, err)
			}
		}
		if i.ln != nil {
			i.ln.Close()
		}
		if i.netns != nil {
			i.netns.Close()
		}
		i.destroyE = errors.Join(errs...)
	})
	return i.destroyE
}

func (i *instance) releaseIDs() {
	if i.idStart >= 0 && i.d.ids != nil {
		i.d.ids.release(i.idStart)
		i.idStart = -1
	}
}

// Sweep removes what a crashed agent with the same work dir and cgroup parent left: containers,
// cgroups (thawed, their tasks killed), and the network namespace files earlier versions pinned.
func (d *Driver) Sweep(ctx context.Context) error {
	d.sweep(ctx)
	return nil
}

// sweep is Sweep, counting the environments it removed.
func (d *Driver) sweep(ctx context.Context) int {
	removed := 0
	entries, _ := os.ReadDir(d.stateDir)
	for _, e := range entries {
		id := e.Name()
		if c, err := libcontainer.Load(d.stateDir, id); err == nil {
			if st, err := c.Status(); err == nil && st == libcontainer.Paused {
				_ = c.Resume()
			}
			_ = c.Signal(unix.SIGKILL)
			if err := c.Destroy(); err != nil {
				d.logger.Warn("destroying a leftover container", "id", id, "error", err)
			}
		}
		_ = os.RemoveAll(filepath.Join(d.stateDir, id))
		d.logger.Info("removed a leftover environment", "id", id)
		removed++
	}
	for _, parent := range cgroupDirs(d.cfg.CgroupParent) {
		children, _ := os.ReadDir(parent)
		for _, ch := range children {
			if ch.IsDir() && ch.Name() != anchorName {
				removeCgroup(ctx, filepath.Join(parent, ch.Name()))
			}
		}
	}
	roots, _ := os.ReadDir(d.rootsDir)
	for _, r := range roots {
		if r.Name() != skeletonName {
			p := filepath.Join(d.rootsDir, r.Name())
			_ = unix.Unmount(p, unix.MNT_DETACH)
			_ = os.Remove(p)
		}
	}
	staged, _ := os.ReadDir(d.fsDir)
	for _, f := range staged {
		p := filepath.Join(d.fsDir, f.Name())
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
	}
	nsFiles, _ := os.ReadDir(d.netnsDir)
	for _, f := range nsFiles {
		p := filepath.Join(d.netnsDir, f.Name())
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
	}
	return removed
}

// removeCgroup thaws a leftover cgroup, kills its tasks and removes it.
func removeCgroup(ctx context.Context, dir string) {
	_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0o644)
	for attempt := 0; attempt < 50; attempt++ {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		pids := strings.Fields(string(b))
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
