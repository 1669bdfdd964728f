//go:build linux && cgo

package libcontainer

import (
	"fmt"
	"os"
	"runtime"
	"slices"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runc/libcontainer/configs"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// neverAllowed are refused by the default filter whatever the profile's version allows: kernel
// attack surface no Lambda runtime needs (io_uring, eBPF, userfaultfd, keyrings, perf events,
// kexec), and everything that makes namespaces or mounts, with which an unprivileged process
// gains capabilities inside a new user namespace.
var neverAllowed = []string{
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"bpf", "userfaultfd", "perf_event_open",
	"keyctl", "add_key", "request_key",
	"kexec_load", "kexec_file_load",
	"unshare", "setns",
	"mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
	"fsopen", "fsconfig", "fsmount", "fspick", "pivot_root", "chroot",
}

// SeccompSupported reports whether this binary can install seccomp filters (it was built with
// the seccomp tag against libseccomp).
func SeccompSupported() bool {
	major, _, _ := libseccomp.Version()
	return major > 0
}

// seccompFilter builds libcontainer's filter for a setting: Docker's default profile (moby's
// profiles/seccomp, the field's reference) for a process without capabilities, with the calls
// of neverAllowed taken out; none for "unconfined"; or a profile in Docker's JSON format read
// from a file, used as written.
func seccompFilter(setting string) (*configs.Seccomp, error) {
	if setting == SeccompUnconfined {
		return nil, nil
	}
	if !SeccompSupported() {
		return nil, fmt.Errorf("this gateway binary was built without seccomp support (build it with -tags seccomp and libseccomp); set sandbox { seccomp = \"unconfined\" } to run without a syscall filter")
	}
	// No capabilities: the profile then leaves out every call Docker allows only with one.
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	var (
		prof *specs.LinuxSeccomp
		err  error
	)
	if setting == SeccompDefault || setting == "" {
		prof, err = seccomp.GetDefaultProfile(rs)
		if err == nil {
			prof = nativeOnly(withoutNeverAllowed(prof))
		}
	} else {
		var body []byte
		if body, err = os.ReadFile(setting); err != nil {
			return nil, fmt.Errorf("reading the seccomp profile: %w", err)
		}
		prof, err = seccomp.LoadProfile(string(body), rs)
	}
	if err != nil {
		return nil, fmt.Errorf("building the seccomp profile %s: %w", setting, err)
	}
	filter, err := specconv.SetupSeccomp(prof)
	if err != nil {
		return nil, fmt.Errorf("building the seccomp filter %s: %w", setting, err)
	}
	return filter, nil
}

// nativeArch is the seccomp name of the machine's own ABI.
var nativeArch = map[string]specs.Arch{"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64}[runtime.GOARCH]

// nativeOnly keeps the filter to the native ABI: Docker's profile also covers the 32-bit and x32
// entry points of amd64, which no Lambda runtime uses (Lambda runs x86_64 and arm64 code) and
// which add kernel surface. It also makes each environment's start cheaper, since libseccomp
// compiles the filter in every container's init: with the three ABIs a cold start without a
// standby took about 25 ms longer (docs/BENCHMARKS.md, BenchmarkIsolation). A call through another
// ABI meets libseccomp's bad-architecture action: the calling thread is killed.
func nativeOnly(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	if nativeArch != "" && slices.Contains(p.Architectures, nativeArch) {
		p.Architectures = []specs.Arch{nativeArch}
	}
	return p
}

// withoutNeverAllowed removes the calls of neverAllowed from every rule that allows them, so the
// profile's default action (EPERM) answers them.
func withoutNeverAllowed(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	out := make([]specs.LinuxSyscall, 0, len(p.Syscalls))
	for _, sc := range p.Syscalls {
		if sc.Action == specs.ActAllow || sc.Action == specs.ActLog || sc.Action == specs.ActTrace {
			sc.Names = slices.DeleteFunc(slices.Clone(sc.Names), func(n string) bool { return slices.Contains(neverAllowed, n) })
			if len(sc.Names) == 0 {
				continue
			}
		}
		out = append(out, sc)
	}
	p.Syscalls = out
	return p
}
