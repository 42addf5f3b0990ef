//go:build !linux

package qemutest

import "syscall"

// procAttr: only Linux can tie QEMU's life to the test binary's.
func procAttr() *syscall.SysProcAttr { return nil }
