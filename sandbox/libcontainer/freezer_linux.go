//go:build linux && cgo

package libcontainer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/lambdagw/gateway/sandbox"
	"golang.org/x/sys/unix"
)

// The cgroup v1 freezer is driven here directly rather than through libcontainer's Pause and
// Resume, which re-open the cgroup files and save the container's state on every call: an
// environment is frozen and thawed once per invocation, so each is a handful of syscalls on
// files kept open for the environment's life.

// anchorName is a permanently frozen, empty cgroup under the driver's cgroup parent. The v1
// freezer flips a kernel static key when the first cgroup is frozen and the last one thawed;
// patching kernel text costs about 1.5 ms per transition (measured on this project's VM), which
// would otherwise be paid on every freeze and every thaw of an environment. While the anchor is
// frozen the key stays on and a freeze or thaw costs microseconds. '.' cannot appear in an
// environment id, so the name never collides with one.
const anchorName = "freeze.anchor"

// freezerDir is the v1 freezer hierarchy's mount point.
const freezerDir = "/sys/fs/cgroup/freezer"

// ensureAnchor creates (or adopts, after a crash) the frozen anchor cgroup under parent.
func ensureAnchor(parent string) error {
	dir := filepath.Join(freezerDir, parent, anchorName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the freezer anchor cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("FROZEN"), 0); err != nil {
		removeAnchor(parent)
		return fmt.Errorf("freezing the freezer anchor cgroup: %w", err)
	}
	return nil
}

// removeAnchor thaws and removes the anchor; a missing one is fine.
func removeAnchor(parent string) {
	dir := filepath.Join(freezerDir, parent, anchorName)
	_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
	_ = os.Remove(dir)
}

// cgroupFile is a cgroup control file kept open for the environment's life.
type cgroupFile struct {
	f  *os.File
	fd int // f.Fd() once: every call of Fd makes an fcntl syscall
}

func openCgroupFile(path string, flag int) (*cgroupFile, error) {
	f, err := os.OpenFile(path, flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &cgroupFile{f: f, fd: int(f.Fd())}, nil
}

// read returns the file's whole content (cgroup files are small), read at offset 0 so the
// kernel renders it afresh.
func (c *cgroupFile) read(buf []byte) ([]byte, error) {
	n, err := unix.Pread(c.fd, buf, 0)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf[:n]), nil
}

func (c *cgroupFile) write(s string) error {
	_, err := unix.Pwrite(c.fd, []byte(s), 0)
	return err
}

func (c *cgroupFile) readUint(buf []byte) (uint64, error) {
	b, err := c.read(buf)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(b), 10, 64)
}

func (c *cgroupFile) close() {
	if c != nil {
		c.f.Close()
	}
}

// freezer is one environment's v1 freezer.state. Callers serialise freeze and thaw.
type freezer struct {
	state *cgroupFile
	buf   [32]byte
}

// freeze writes FROZEN and waits until every task of the cgroup is frozen. Tasks asleep in the
// kernel are frozen within microseconds; a task being forked can keep the cgroup in FREEZING,
// so FROZEN is written again now and then. When ctx ends first (the freeze timed out, or an
// invocation wants the environment back) the cgroup is thawed and an error returned: an
// environment is never left half-frozen. Only when that thaw fails too is the error
// sandbox.ErrStuckFrozen.
func (fz *freezer) freeze(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not freezing: %w", err)
	}
	if err := fz.state.write("FROZEN"); err != nil {
		return fmt.Errorf("writing FROZEN: %w", err) // nothing changed
	}
	rollback := func(cause error) error {
		if err := fz.state.write("THAWED"); err != nil {
			return fmt.Errorf("%v; thawing it back failed: %v: %w", cause, err, sandbox.ErrStuckFrozen)
		}
		return cause
	}
	wait := time.Duration(0)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n := 1; ; n++ {
		b, err := fz.state.read(fz.buf[:])
		if err != nil {
			return rollback(fmt.Errorf("reading the freezer state: %w", err))
		}
		if string(b) == "FROZEN" {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return rollback(fmt.Errorf("cgroup still %s: %w", b, err))
		}
		switch {
		case n < 20:
			runtime.Gosched() // the tasks need a CPU to reach the refrigerator
			continue
		case wait < time.Millisecond:
			wait += 50 * time.Microsecond
		}
		if n%100 == 0 {
			if err := fz.state.write("FROZEN"); err != nil {
				return rollback(fmt.Errorf("writing FROZEN again: %w", err))
			}
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
}

func (fz *freezer) thaw() error {
	if err := fz.state.write("THAWED"); err != nil {
		return fmt.Errorf("writing THAWED: %w", err)
	}
	return nil
}

// frozen reports whether the cgroup is frozen or freezing (a task there cannot die).
func (fz *freezer) frozen() bool {
	b, err := fz.state.read(fz.buf[:])
	return err == nil && string(b) != "THAWED"
}
