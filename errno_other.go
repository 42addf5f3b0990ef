//go:build !windows

package qmp

import "syscall"

// isErrno reports whether err is the errno e.
func isErrno(err error, e syscall.Errno) bool { return err == e }
