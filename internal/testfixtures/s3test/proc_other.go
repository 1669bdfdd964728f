//go:build unix && !linux

package s3test

import "syscall"

// procAttr puts versitygw in a process group of its own (Stop kills the group).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
