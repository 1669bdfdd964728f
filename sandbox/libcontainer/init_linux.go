//go:build linux && cgo

package libcontainer

import (
	"os"
	"runtime"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's C constructor joins the namespaces before the Go runtime starts in `init`.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// The gateway binary (and any test binary importing this package) is re-executed by libcontainer
// as `<binary> init` inside a new environment; answer it before anything else runs.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.GOMAXPROCS(1)
		runtime.LockOSThread()
		libcontainer.Init()
	}
}
