package qemutest

import "syscall"

// procAttr does not leave QEMU running if the test binary dies without
// Stop: Linux sends SIGKILL when the OS thread that forked exits (Go
// threads only exit when a goroutine ends while locked to its thread).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
