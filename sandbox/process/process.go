// Package process is the development sandbox driver: each environment is a plain child process
// group, frozen with SIGSTOP and thawed with SIGCONT. It gives NO isolation and NO limits; it
// exists so the gateway can be developed on machines without root or cgroups, and the agent
// only picks it when configured to, or in -dev mode with a loud warning.
package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/sandbox"
)

// Config configures the process driver.
type Config struct {
	// WorkDir holds one directory per environment (its /tmp substitute).
	WorkDir string
	Logger  hclog.Logger
}

// Driver runs environments as plain child processes.
type Driver struct {
	cfg    Config
	logger hclog.Logger
}

var _ sandbox.Driver = (*Driver)(nil)

// New returns a process driver. It warns that it isolates nothing.
func New(cfg Config) (*Driver, error) {
	if cfg.WorkDir == "" {
		return nil, errors.New("process driver: work dir is not set")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating process driver work dir: %w", err)
	}
	d := &Driver{cfg: cfg, logger: cfg.Logger.Named("process")}
	d.logger.Warn("the process sandbox driver gives functions NO isolation and NO resource limits; use it for development only")
	return d, nil
}

func (d *Driver) Name() string { return "process" }

func (d *Driver) Close() error { return nil }

// Sweep removes environment directories a crashed agent left. Its processes died with it when
// they were started with a parent-death signal.
func (d *Driver) Sweep(ctx context.Context) error {
	entries, err := os.ReadDir(d.cfg.WorkDir)
	if err != nil {
		return fmt.Errorf("reading process driver work dir: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(d.cfg.WorkDir, e.Name())); err != nil {
			return fmt.Errorf("removing leftover environment dir %s: %w", e.Name(), err)
		}
	}
	return nil
}

// Create opens the Runtime API listener on a loopback port and prepares the environment's dir.
func (d *Driver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	if spec.Network != nil {
		return nil, fmt.Errorf("creating environment %s: network %q: the process driver runs functions in the host's own network, without isolation, and cannot put them on a network: use the libcontainer driver", spec.ID, spec.Network.Name)
	}
	if len(spec.RootLayers) > 0 {
		return nil, fmt.Errorf("creating environment %s: a container image needs a root file system of its own, which the process driver cannot give: use the libcontainer driver", spec.ID)
	}
	if len(spec.OptLayers) > 0 {
		return nil, fmt.Errorf("creating environment %s: layers are mounted at /opt, which the process driver cannot do: use the libcontainer driver", spec.ID)
	}
	if len(spec.FileSystems) > 0 {
		return nil, fmt.Errorf("creating environment %s: file systems are mounted under /mnt of an environment of its own, which the process driver cannot give: use the libcontainer driver", spec.ID)
	}
	dir := filepath.Join(d.cfg.WorkDir, spec.ID)
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("creating environment dir: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("opening runtime API listener: %w", err)
	}
	return &instance{d: d, spec: spec, dir: dir, tmp: tmp, ln: ln, exited: make(chan struct{})}, nil
}

type instance struct {
	d    *Driver
	spec sandbox.Spec
	dir  string
	tmp  string
	ln   net.Listener

	cmd    *exec.Cmd
	exited chan struct{}
	status sandbox.ExitStatus
	// procStatus is /proc/<pid>/status, kept open: it is read after every invocation (REPORT).
	procStatus *os.File
	statusBuf  []byte

	destroyOnce sync.Once
	destroyErr  error
}

func (i *instance) ID() string              { return i.spec.ID }
func (i *instance) Listener() net.Listener  { return i.ln }
func (i *instance) RuntimeAPIAddr() string  { return i.ln.Addr().String() }
func (i *instance) Exited() <-chan struct{} { return i.exited }

func (i *instance) ExitStatus() sandbox.ExitStatus {
	<-i.exited
	return i.status
}

// hostPath maps a path inside the environment to the host: /var/task is the code dir, /tmp the
// environment's own directory.
func (i *instance) hostPath(p string) string {
	switch {
	case p == "/var/task" || strings.HasPrefix(p, "/var/task/"):
		return i.spec.CodeDir + strings.TrimPrefix(p, "/var/task")
	case p == "/tmp" || strings.HasPrefix(p, "/tmp/"):
		return i.tmp + strings.TrimPrefix(p, "/tmp")
	}
	return p
}

func (i *instance) Start(ctx context.Context) error {
	if len(i.spec.Args) == 0 {
		return errors.New("no runtime command")
	}
	args := make([]string, len(i.spec.Args))
	for n, a := range i.spec.Args {
		args[n] = i.hostPath(a)
	}
	env := make([]string, 0, len(i.spec.Env)+2)
	for _, kv := range i.spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "LAMBDA_TASK_ROOT" {
			v = i.spec.CodeDir
		}
		env = append(env, k+"="+v)
	}
	env = append(env, "AWS_LAMBDA_RUNTIME_API="+i.RuntimeAPIAddr(), "TMPDIR="+i.tmp)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Dir = i.spec.CodeDir
	cmd.Stdout = i.spec.Output
	cmd.Stderr = i.spec.Output
	// Its own process group so freezing and killing reach its children too; and it dies with us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", args[0], err)
	}
	i.cmd = cmd
	if f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status"); err == nil {
		i.procStatus, i.statusBuf = f, make([]byte, 4096)
	}
	go i.wait()
	return nil
}

// Spawn is refused: external extensions live in /opt/extensions, which the process driver cannot
// mount.
func (i *instance) Spawn(ctx context.Context, args []string, out *os.File) (sandbox.Process, error) {
	return nil, fmt.Errorf("starting %s in %s: external extensions need /opt, which the process driver cannot give: use the libcontainer driver", args[0], i.spec.ID)
}

// Signal signals the runtime process.
func (i *instance) Signal(sig os.Signal) error {
	if i.cmd == nil || i.cmd.Process == nil {
		return errors.New("not started")
	}
	return i.cmd.Process.Signal(sig)
}

// DialContext dials on the host: the process driver has no network namespace (development only).
func (i *instance) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (i *instance) wait() {
	err := i.cmd.Wait()
	st := sandbox.ExitStatus{}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st.Code = -1
			st.Signal = ws.Signal().String()
		} else {
			st.Code = ee.ExitCode()
		}
	default:
		st.Err = err
	}
	i.status = st
	close(i.exited)
}

// Freeze stops the process group and waits until the leader reports the stopped state.
func (i *instance) Freeze(ctx context.Context) error {
	if err := i.signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freezing: %w", err)
	}
	for {
		st, err := procState(i.cmd.Process.Pid)
		if err != nil || st == 'T' || st == 't' {
			return nil // an exited process needs no freezing
		}
		select {
		case <-ctx.Done():
			if err := i.signal(syscall.SIGCONT); err != nil { // never leave it half-frozen
				return fmt.Errorf("freezing: %v; continuing it failed: %v: %w", ctx.Err(), err, sandbox.ErrStuckFrozen)
			}
			return fmt.Errorf("freezing: %w", ctx.Err())
		case <-i.exited:
			return nil
		case <-time.After(100 * time.Microsecond):
		}
	}
}

func (i *instance) Thaw(ctx context.Context) error {
	if err := i.signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("thawing: %w", err)
	}
	return nil
}

func (i *instance) signal(sig syscall.Signal) error {
	if i.cmd == nil || i.cmd.Process == nil {
		return errors.New("not started")
	}
	select {
	case <-i.exited:
		return nil
	default:
	}
	if err := syscall.Kill(-i.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// procState reads the one-letter state of a process from /proc (Linux only; elsewhere freezing
// is not confirmed).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 'T', nil
	}
	// The command name is in parentheses and may contain spaces; the state follows it.
	s := string(b)
	j := strings.LastIndexByte(s, ')')
	if j < 0 || j+2 >= len(s) {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return s[j+2], nil
}

// MaxMemoryBytes is the process's peak resident set (VmHWM), children not included.
func (i *instance) MaxMemoryBytes() (uint64, error) {
	if i.procStatus == nil {
		return 0, errors.New("not started")
	}
	n, err := i.procStatus.ReadAt(i.statusBuf, 0)
	if err != nil && n == 0 {
		return 0, err
	}
	_, rest, ok := strings.Cut(string(i.statusBuf[:n]), "VmHWM:")
	if !ok {
		return 0, errors.New("no VmHWM in /proc status")
	}
	rest, _, _ = strings.Cut(rest, "\n")
	kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
	if err != nil {
		return 0, err
	}
	return kb << 10, nil
}

// Destroy kills the process group (continuing it first, so a stopped group dies), waits for the
// runtime, and removes the environment's directory.
func (i *instance) Destroy(ctx context.Context) error {
	i.destroyOnce.Do(func() {
		i.ln.Close()
		if i.cmd != nil && i.cmd.Process != nil {
			_ = i.signal(syscall.SIGCONT)
			_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-i.exited:
			case <-ctx.Done():
				i.destroyErr = fmt.Errorf("waiting for the runtime to exit: %w", ctx.Err())
				return
			}
			// Children of the group that outlived the leader.
			_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
		} else {
			close(i.exited)
		}
		if i.procStatus != nil {
			i.procStatus.Close()
		}
		if err := os.RemoveAll(i.dir); err != nil {
			i.destroyErr = fmt.Errorf("removing environment dir: %w", err)
		}
	})
	return i.destroyErr
}
