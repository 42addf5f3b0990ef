package main

// The terminal: raw mode and window size through termios ioctls (the
// standard library has no terminal package; syscall has the constants).

import (
	"syscall"
	"unsafe"
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	var t syscall.Termios
	return ioctl(fd, syscall.TCGETS, unsafe.Pointer(&t)) == nil
}

// makeRaw puts terminal fd in raw mode (no echo, no line buffering, no
// signals from Ctrl-C, no output processing) and returns a function that
// restores the previous mode.
func makeRaw(fd int) (restore func() error, err error) {
	var old syscall.Termios
	if err := ioctl(fd, syscall.TCGETS, unsafe.Pointer(&old)); err != nil {
		return nil, err
	}
	raw := old
	raw.Iflag &^= syscall.BRKINT | syscall.ICRNL | syscall.INPCK | syscall.ISTRIP | syscall.IXON
	raw.Oflag &^= syscall.OPOST
	raw.Cflag |= syscall.CS8
	raw.Lflag &^= syscall.ECHO | syscall.ICANON | syscall.IEXTEN | syscall.ISIG
	raw.Cc[syscall.VMIN] = 1
	raw.Cc[syscall.VTIME] = 0
	if err := ioctl(fd, syscall.TCSETS, unsafe.Pointer(&raw)); err != nil {
		return nil, err
	}
	return func() error { return ioctl(fd, syscall.TCSETS, unsafe.Pointer(&old)) }, nil
}

// winsize is struct winsize of <sys/ioctl.h>.
type winsize struct{ Row, Col, Xpixel, Ypixel uint16 }

// termWidth returns the columns of terminal fd, or 0 if unknown.
func termWidth(fd int) int {
	var ws winsize
	if ioctl(fd, syscall.TIOCGWINSZ, unsafe.Pointer(&ws)) != nil {
		return 0
	}
	return int(ws.Col)
}
