//go:build linux && cgo

package libcontainer

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/exeseal"
	// nsenter's C constructor joins the namespaces before the Go runtime starts in `init`.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// The gateway binary (and any test binary importing this package) is re-executed by libcontainer
// as `<binary> init` inside a new environment; answer it before anything else runs.
func init() {
	// The main goroutine keeps the main thread to itself, so no other goroutine ever runs
	// there. libcontainer joins a starting container's mount namespace on a locked goroutine
	// that ends without unlocking (runc's goCreateMountSources), which kills its thread; but
	// Go never kills the main thread: it would stay in that container's mount namespace for
	// the life of the process, keeping the namespace and its mounts (the environment's root,
	// its /tmp) alive after the environment is gone, and making /proc/self describe it.
	runtime.LockOSThread()
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.GOMAXPROCS(1)
		runtime.LockOSThread()
		libcontainer.Init()
	}
	if len(os.Args) > 1 && os.Args[1] == reapArg {
		os.Exit(reapMain(os.Args[2:]))
	}
}

// ExecutableEnv holds the path the binary was started from, once SealSelf re-executed it from a
// sealed copy (whose own path is a memfd).
const ExecutableEnv = "LAMBDAGW_EXECUTABLE"

// SealSelf re-executes the running binary, once, from a sealed in-memory copy of itself. Every
// container start must run libcontainer's init from a binary the container cannot overwrite;
// when the process already runs from a sealed copy, libcontainer uses it as it is instead of
// sealing a fresh copy of the whole binary for each start. It returns only on failure, or when
// there is nothing to do (already sealed, not root).
func SealSelf() error {
	if os.Geteuid() != 0 || exeseal.IsSelfExeCloned() {
		return nil
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("opening own binary: %w", err)
	}
	defer exe.Close()
	st, err := exe.Stat()
	if err != nil {
		return fmt.Errorf("reading own binary: %w", err)
	}
	sealed, err := exeseal.CloneBinary(exe, st.Size(), "gateway", os.TempDir())
	if err != nil {
		return fmt.Errorf("sealing a copy of own binary: %w", err)
	}
	path := fmt.Sprintf("/proc/self/fd/%d", sealed.Fd())
	// The sealed copy has no path of its own: keep the original's, for what lies beside it.
	if orig, err := os.Executable(); err == nil && os.Getenv(ExecutableEnv) == "" {
		_ = os.Setenv(ExecutableEnv, orig)
	}
	return syscall.Exec(path, os.Args, os.Environ())
}
