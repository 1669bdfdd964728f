//go:build linux && cgo

package libcontainer

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// The reaper: environments must not outlive the agent, also when it is killed with SIGKILL. A
// frozen environment cannot even receive a signal, and a parent-death signal set in a container's
// init fires when the agent *thread* that forked it exits (Go ends threads), not the agent. So each
// driver starts a small process of the same binary that holds the read end of a pipe; when the
// agent dies, for whatever reason, the pipe reads EOF and the reaper thaws and kills every
// environment of the driver and removes its cgroups and namespace files, as the next start's
// Sweep would. On a normal shutdown the agent closes the pipe with its data_dir lock still held:
// the reaper sees the lock taken and leaves (the agent has removed everything itself).

const reapArg = "lambdagw-reap"

// reaper is the agent's side: the pipe's write end and the process.
type reaper struct {
	w   *os.File
	cmd *exec.Cmd
}

// startReaper starts the reaper of cfg's environments.
func startReaper(cfg Config) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", reapArg, cfg.WorkDir, cfg.CgroupParent, cfg.LockFile)
	cmd.Stdin = r
	cmd.Stderr = os.Stderr
	// Its own process group: a Ctrl-C meant for the agent must not take the reaper first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	return &reaper{w: w, cmd: cmd}, nil
}

// stop closes the pipe and waits for the reaper, which finds the lock held and leaves.
func (r *reaper) stop() {
	r.w.Close()
	_ = r.cmd.Wait()
}

// reapMain is the reaper process: args are the driver's work dir, cgroup parent and lock file.
func reapMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: "+reapArg+" WORKDIR CGROUP-PARENT LOCKFILE")
		return 2
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	_, _ = io.Copy(io.Discard, os.Stdin) // returns when the agent closed the pipe or died
	workDir, parent, lockFile := args[0], args[1], args[2]
	logger := hclog.New(&hclog.LoggerOptions{Name: "reaper", Output: os.Stderr, Level: hclog.Info})
	if lockFile != "" {
		f, err := os.OpenFile(lockFile, os.O_RDWR, 0)
		if err != nil {
			logger.Error("opening the data_dir lock", "error", err)
			return 1
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			// The agent still holds it: a normal shutdown, or a new agent already runs (and swept).
			return 0
		}
	}
	d := &Driver{cfg: Config{WorkDir: workDir, CgroupParent: parent}, logger: logger,
		stateDir: filepath.Join(workDir, "state"), netnsDir: filepath.Join(workDir, "netns")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := d.sweep(ctx)
	_ = d.Close()
	if n > 0 {
		logger.Warn("the agent died: removed its environments", "count", n)
	}
	return 0
}
