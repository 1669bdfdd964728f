// Package sandbox runs Lambda execution environments: the Driver that isolates them
// (sandbox/libcontainer, sandbox/process), their lifecycle (init, invoke, freeze, reset, shutdown),
// the pool of warm environments per function revision, and the Runtime API each one serves.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Driver creates isolated execution environments. No type of the isolation library appears here:
// the libcontainer driver (linux && cgo) and the process driver (development) implement it.
type Driver interface {
	// Name is the driver's name as the agent configuration spells it ("libcontainer", "process").
	Name() string
	// Create prepares an environment (namespaces, cgroup, root filesystem, mounts) and opens the
	// Runtime API listener the runtime will reach, without starting the runtime process. A
	// driver may do all but the final exec here (libcontainer's init waits for Start); the
	// manager keeps such prepared instances on standby, for any length of time, to make cold
	// starts short.
	Create(ctx context.Context, spec Spec) (Instance, error)
	// Sweep removes what an earlier agent process with the same driver configuration left behind
	// when it crashed: containers, cgroups, network namespaces, mounts and state directories.
	Sweep(ctx context.Context) error
	// Close releases the driver's own resources; instances must have been destroyed first.
	Close() error
}

// Spec describes one execution environment.
type Spec struct {
	// ID is unique among the driver's live instances: letters, digits, '-' and '_' only.
	ID string
	// CodeDir is a host directory holding the unpacked code, mounted read-only at /var/task; ""
	// mounts nothing there (an image function keeps its image's /var/task).
	CodeDir string
	// RootLayers, when set, make the environment's root file system: read-only host folders
	// merged in order, the base first (a container image's unpacked layers, whiteouts in
	// overlayfs' form). Empty: the driver's own base root.
	RootLayers []string
	// OptLayers are host folders merged read-only at /opt, a later one's files over an
	// earlier one's (a function's layers).
	OptLayers []string
	// Args is the runtime's argv, paths as seen inside the environment (e.g. /var/task/bootstrap).
	Args []string
	// Cwd is the runtime's working directory; "" is /var/task.
	Cwd string
	// Env is the runtime's environment as KEY=VALUE, without AWS_LAMBDA_RUNTIME_API, which the
	// driver adds because only it knows the address the runtime reaches the listener at.
	Env []string
	// MemoryMB caps the environment's memory (swap off); CPU shares are proportional to it.
	MemoryMB int
	// TmpMB is the size of the writable tmpfs at /tmp.
	TmpMB int
	// PidsLimit caps the number of processes and threads in the environment.
	PidsLimit int
	// Network, when set, puts the environment on one of the operator's networks (eth0, with its
	// DNS servers in /etc/resolv.conf); nil: loopback only.
	Network *NetworkSpec
	// FileSystems are bind-mounted at their Path (under /mnt), nosuid and nodev, read-only when
	// they say so, the runtime's user being their UID and GID on the file system. The caller
	// keeps their folders and closes them after Create.
	FileSystems []FileSystemMount
	// Output receives the runtime's stdout and stderr. The driver hands the file to the process
	// itself (no copying goroutine); the caller keeps ownership and closes it after Start.
	Output *os.File
}

// NetworkSpec names an environment's network and the egress policies it adds.
type NetworkSpec struct {
	Name           string
	EgressPolicies []string
}

// Instance is one execution environment.
type Instance interface {
	ID() string
	// Listener is the Runtime API listener, already listening, reachable by the runtime at
	// RuntimeAPIAddr (inside the environment's network namespace for isolating drivers).
	Listener() net.Listener
	// RuntimeAPIAddr is host:port as the runtime sees it, the value of AWS_LAMBDA_RUNTIME_API.
	RuntimeAPIAddr() string
	// Start starts the runtime process.
	Start(ctx context.Context) error
	// Spawn starts another process in the environment (an external extension), before the
	// runtime or beside it: the runtime's user, namespaces, cgroup and environment, args[0] a
	// path inside the environment, stdout and stderr to out (the caller keeps out). It dies with
	// the environment.
	Spawn(ctx context.Context, args []string, out *os.File) (Process, error)
	// Signal sends sig to the runtime process (SIGTERM at shutdown).
	Signal(sig os.Signal) error
	// DialContext connects to addr, a port on the environment's own loopback, from inside its
	// network namespace: how the agent reaches an extension's listener and nothing else.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// Freeze suspends every process of the environment and returns once they are all stopped.
	// On failure (ctx ended first, too) the environment is left thawed, never half-frozen; an
	// error wrapping ErrStuckFrozen says that thawing it back failed as well.
	Freeze(ctx context.Context) error
	// Thaw resumes a frozen environment.
	Thaw(ctx context.Context) error
	// Exited is closed when the runtime process has exited; ExitStatus is valid from then on.
	Exited() <-chan struct{}
	ExitStatus() ExitStatus
	// MaxMemoryBytes is the environment's peak memory use since it was created.
	MaxMemoryBytes() (uint64, error)
	// Destroy kills every process (thawing first if frozen), waits for them, and releases every
	// resource of the instance: cgroup, namespaces, mounts, state, listener. It is idempotent.
	Destroy(ctx context.Context) error
}

// Process is a process of an environment other than its runtime.
type Process interface {
	// Exited is closed when the process has exited; ExitStatus is valid from then on.
	Exited() <-chan struct{}
	ExitStatus() ExitStatus
}

// ExitStatus tells how the runtime process ended.
type ExitStatus struct {
	Code      int    // exit code, or -1 when killed by a signal
	Signal    string // e.g. "killed", when killed by a signal
	OOMKilled bool   // the kernel's OOM killer acted in the environment's cgroup
	Err       error  // the driver could not wait for the process
}

// String renders the status the way Lambda's Runtime.ExitError message does ("exit status 3",
// "signal: killed").
func (s ExitStatus) String() string {
	switch {
	case s.Err != nil:
		return s.Err.Error()
	case s.Signal != "":
		return "signal: " + s.Signal
	default:
		return fmt.Sprintf("exit status %d", s.Code)
	}
}

// ErrUnavailable is returned (wrapped) by a driver constructor when the driver cannot run on this
// machine (not root, no cgroups, not Linux, built without cgo). The agent's -dev mode falls back to
// the process driver only on this error.
var ErrUnavailable = errors.New("sandbox driver unavailable on this machine")

// ErrStuckFrozen is returned (wrapped) by Instance.Freeze when it could neither finish the
// freeze nor undo it: the environment may be frozen, so it is thawed before its next use, and
// reset if that fails.
var ErrStuckFrozen = errors.New("environment may be left frozen")

// FreezeTimeout bounds one freeze attempt; a cgroup stuck in FREEZING is rolled back to THAWED.
const FreezeTimeout = 2 * time.Second
