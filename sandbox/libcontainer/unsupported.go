//go:build !linux || !cgo

package libcontainer

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/sandbox"
)

// Config configures the driver (see the Linux implementation).
type Config struct {
	WorkDir      string
	BaseRootfs   string
	CgroupParent string
	BatchCPU     bool
	Seccomp      string
	LockFile     string
	// TotalMemoryBytes and TotalPids limit all environments together (see the Linux driver).
	TotalMemoryBytes int64
	TotalPids        int64
	UserNamespaces   *IDRange
	Logger           hclog.Logger
}

// Driver is not available on this platform.
type Driver struct{}

// New reports that libcontainer needs Linux and cgo.
func New(Config) (*Driver, error) {
	return nil, fmt.Errorf("libcontainer needs Linux and a cgo build: %w", sandbox.ErrUnavailable)
}

func (*Driver) Name() string                { return "libcontainer" }
func (*Driver) Sweep(context.Context) error { return nil }
func (*Driver) Close() error                { return nil }
func (*Driver) Create(context.Context, sandbox.Spec) (sandbox.Instance, error) {
	return nil, sandbox.ErrUnavailable
}

// IDRange is a range of host uids and gids (see the Linux driver).
type IDRange struct{ Start, Count int64 }

func (r IDRange) String() string { return fmt.Sprintf("%d-%d", r.Start, r.Start+r.Count-1) }

// IDsPerEnvironment is the size of an environment's uid and gid range.
const IDsPerEnvironment = 65536

// DetectUserNamespaces reports that user namespaces need the Linux driver.
func DetectUserNamespaces() (IDRange, error) {
	return IDRange{}, fmt.Errorf("user namespaces need Linux and a cgo build: %w", sandbox.ErrUnavailable)
}

// SealSelf has nothing to do where libcontainer does not run.
func SealSelf() error { return nil }
