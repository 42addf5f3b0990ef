package qmp

import (
	"os"
	"syscall"
	"testing"
)

// The errnos the package tests for are recognised through the platform's
// own codes (Winsock's on Windows; the same values elsewhere).
func TestIsErrno(t *testing.T) {
	for _, e := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, syscall.ENOENT} {
		if !IsSocketNotAvailable(&os.SyscallError{Syscall: "connect", Err: e}) {
			t.Errorf("IsSocketNotAvailable(%v) = false", e)
		}
	}
	if IsSocketNotAvailable(&os.SyscallError{Syscall: "connect", Err: syscall.EACCES}) {
		t.Error("IsSocketNotAvailable(EACCES) = true")
	}
	if !isErrno(syscall.EAGAIN, syscall.EAGAIN) || isErrno(syscall.EINTR, syscall.EAGAIN) {
		t.Error("isErrno disagrees with ==")
	}
}
