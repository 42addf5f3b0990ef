//go:build unix

package qmp

// The raw descriptor operations behind the fast read and write paths and
// fd passing, on systems that have them (sys_other.go elsewhere).

import (
	"os"
	"syscall"
)

// rawIO: a syscall.Conn's descriptor is read and written directly.
const rawIO = true

// fdPassing: descriptors can travel with a command (SCM_RIGHTS).
const fdPassing = true

func closeFD(fd int) { syscall.Close(fd) }

func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }

func writeFD(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }

// sendWithFD writes the first bytes of b on socket s with fd attached.
func sendWithFD(s uintptr, b []byte, fd int) (int, error) {
	return syscall.SendmsgN(int(s), b, syscall.UnixRights(fd), nil, 0)
}

// dupFile duplicates f's descriptor with close-on-exec set, so a fork in
// another goroutine cannot inherit it; the call owns the duplicate.
func dupFile(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if nfd, derr = syscall.Dup(int(fd)); derr == nil {
			syscall.CloseOnExec(nfd)
		}
	})
	if err == nil {
		err = derr
	}
	return nfd, err
}
