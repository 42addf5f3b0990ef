//go:build !unix

package qmp

// Systems without unix descriptors (Windows, Plan 9, wasm): connections
// are read and written through net.Conn, and fd passing returns
// ErrFDPassingUnsupported.

import "os"

const (
	rawIO     = false
	fdPassing = false
)

func closeFD(int) {}

func readFD(uintptr, []byte) (int, error) { return 0, ErrFDPassingUnsupported }

func writeFD(uintptr, []byte) (int, error) { return 0, ErrFDPassingUnsupported }

func sendWithFD(uintptr, []byte, int) (int, error) { return 0, ErrFDPassingUnsupported }

func dupFile(*os.File) (int, error) { return -1, ErrFDPassingUnsupported }
