package main

import (
	"errors"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// forbiddenSyscalls makes each call with arguments that succeed for an unprivileged process on a
// kernel without a filter (where the call can succeed unprivileged at all), so "ok" means the
// sandbox let it through and an errno means it was refused.
func forbiddenSyscalls() map[string]string {
	res := map[string]string{}
	errno := func(name string, r1 uintptr, e unix.Errno) {
		if e != 0 {
			res[name] = unix.ErrnoName(e)
			return
		}
		res[name] = "ok"
		if name == "io_uring_setup" || name == "userfaultfd" || name == "perf_event_open" || name == "bpf" {
			_ = unix.Close(int(r1))
		}
	}
	var params [120]byte // struct io_uring_params
	r1, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	errno("io_uring_setup", r1, e)

	// BPF_MAP_CREATE of a small array: allowed unprivileged when unprivileged_bpf_disabled=0.
	attr := [5]uint32{2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1, 0}
	r1, _, e = unix.Syscall(unix.SYS_BPF, 0 /* BPF_MAP_CREATE */, uintptr(unsafe.Pointer(&attr[0])), unsafe.Sizeof(attr))
	errno("bpf", r1, e)

	r1, _, e = unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|1 /* UFFD_USER_MODE_ONLY */, 0, 0)
	errno("userfaultfd", r1, e)

	r1, _, e = unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffd) /* KEY_SPEC_SESSION_KEYRING */, 1)
	errno("keyctl", r1, e)
	typ, _ := unix.BytePtrFromString("user")
	desc, _ := unix.BytePtrFromString("probe")
	r1, _, e = unix.Syscall6(unix.SYS_ADD_KEY, uintptr(unsafe.Pointer(typ)), uintptr(unsafe.Pointer(desc)), 0, 0, uintptr(0xfffffffe) /* KEY_SPEC_PROCESS_KEYRING */, 0)
	errno("add_key", r1, e)

	pea := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_TASK_CLOCK,
		Bits: unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv}
	pea.Size = uint32(unsafe.Sizeof(pea))
	r1, _, e = unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&pea)), 0, ^uintptr(0), ^uintptr(0), 0, 0)
	errno("perf_event_open", r1, e)

	// Namespaces: on a locked thread that is thrown away afterwards, since unshare changes it.
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		_, _, e := unix.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
		errno("unshare(CLONE_NEWUSER)", 0, e)
		_, _, e = unix.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER|unix.CLONE_NEWNS, 0, 0)
		errno("unshare(CLONE_NEWUSER|CLONE_NEWNS)", 0, e)
		fd, err := unix.Open("/proc/self/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			_, _, e = unix.Syscall(unix.SYS_SETNS, uintptr(fd), unix.CLONE_NEWUSER, 0)
			errno("setns", 0, e)
			unix.Close(fd)
		}
	}()
	<-done

	src, _ := unix.BytePtrFromString("none")
	dst, _ := unix.BytePtrFromString("/tmp")
	fstype, _ := unix.BytePtrFromString("tmpfs")
	_, _, e = unix.Syscall6(unix.SYS_MOUNT, uintptr(unsafe.Pointer(src)), uintptr(unsafe.Pointer(dst)), uintptr(unsafe.Pointer(fstype)), 0, 0, 0)
	errno("mount", 0, e)
	_, _, e = unix.Syscall(unix.SYS_KEXEC_LOAD, 0, 0, 0)
	errno("kexec_load", 0, e)
	return res
}

// remount tries what a function that wants out of a read-only or ID-mapped mount would: remount
// it read-write, unmount it (to reach what is under it), mount a tmpfs over it. Each reports its
// errno, "ok" if allowed.
func remount(path string) map[string]string {
	res := map[string]string{}
	report := func(name string, err error) {
		var errno unix.Errno
		switch {
		case errors.As(err, &errno):
			res[name] = unix.ErrnoName(errno)
		case err != nil:
			res[name] = err.Error()
		default:
			res[name] = "ok"
		}
	}
	report("remount rw", unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND, ""))
	report("umount", unix.Unmount(path, unix.MNT_DETACH))
	report("mount over", unix.Mount("none", path, "tmpfs", 0, ""))
	report("mount_setattr", unix.MountSetattr(unix.AT_FDCWD, path, 0, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID}))
	return res
}
