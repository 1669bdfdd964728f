//go:build linux && cgo

package libcontainer

import (
	"bytes"
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
// Sweep would, once it holds the data_dir lock the dead agent held. On a normal shutdown the agent
// writes a quit byte before closing the pipe, and the reaper leaves (the agent has removed
// everything itself).

const reapArg = "lambdagw-reap"

// reaper is the agent's side: the pipe's write end and the process.
type reaper struct {
	w   *os.File
	cmd *exec.Cmd
}

// startReaper starts the reaper of cfg's environments; ownRoot is the driver's generated root
// filesystem outside the work dir, removed with them ("" when none).
func startReaper(cfg Config, ownRoot string) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", reapArg, cfg.WorkDir, cfg.CgroupParent, cfg.LockFile, ownRoot)
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

// stop tells the reaper the agent shuts down normally (its environments are gone), and waits
// for it to leave.
func (r *reaper) stop() {
	_, _ = r.w.Write([]byte{quitByte})
	r.w.Close()
	_ = r.cmd.Wait()
}

// quitByte on the pipe means a normal shutdown; EOF without it, that the agent died.
const quitByte = 'q'

// lockWaitAfterDeath bounds how long the reaper waits for the dead agent's data_dir lock: the
// kernel closes a dead process's files one by one, so the pipe may read EOF a moment before the
// lock is released. Held longer, a new agent has it (and sweeps itself).
const lockWaitAfterDeath = 3 * time.Second

// reapMain is the reaper process: args are the driver's work dir, cgroup parent, lock file and
// generated root filesystem.
func reapMain(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: "+reapArg+" WORKDIR CGROUP-PARENT LOCKFILE OWN-ROOTFS")
		return 2
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	// Returns when the agent closed the pipe or died.
	got, _ := io.ReadAll(io.LimitReader(os.Stdin, 64))
	if bytes.IndexByte(got, quitByte) >= 0 {
		return 0 // a normal shutdown: the agent removed its environments itself
	}
	workDir, parent, lockFile, ownRoot := args[0], args[1], args[2], args[3]
	logger := hclog.New(&hclog.LoggerOptions{Name: "reaper", Output: os.Stderr, Level: hclog.Info})
	if lockFile != "" {
		f, err := os.OpenFile(lockFile, os.O_RDWR, 0)
		if err != nil {
			logger.Error("opening the data_dir lock", "error", err)
			return 1
		}
		defer f.Close()
		for deadline := time.Now().Add(lockWaitAfterDeath); ; time.Sleep(20 * time.Millisecond) {
			err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				logger.Info("the agent died, and another agent holds its data_dir: leaving its environments to that agent's sweep")
				return 0
			}
		}
	}
	// Close removes the generated root too: it lies outside data_dir (/run/lambdagw).
	d := &Driver{cfg: Config{WorkDir: workDir, CgroupParent: parent}, logger: logger, ownRoot: ownRoot,
		stateDir: filepath.Join(workDir, "state"), netnsDir: filepath.Join(workDir, "netns"), rootsDir: rootsDirFor(workDir),
		fsDir: filepath.Join(workDir, "fs")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := d.sweep(ctx)
	_ = d.Close()
	if n > 0 {
		logger.Warn("the agent died: removed its environments", "count", n)
	}
	return 0
}
