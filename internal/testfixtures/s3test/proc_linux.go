package s3test

import "syscall"

// procAttr puts versitygw in a process group of its own (Stop kills the group) that the kernel
// kills if the test process dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
