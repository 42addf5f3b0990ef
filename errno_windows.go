package qmp

import "syscall"

// On Windows Go's syscall.E* constants for network errors are invented
// values; the socket calls return Winsock's codes. wsa maps the errnos the
// package tests for to the codes that mean the same there.
var wsa = map[syscall.Errno][]syscall.Errno{
	syscall.ECONNREFUSED: {10061}, // WSAECONNREFUSED
	syscall.ECONNRESET:   {10054}, // WSAECONNRESET
	syscall.EPIPE:        {10053}, // WSAECONNABORTED
	syscall.EAGAIN:       {10035}, // WSAEWOULDBLOCK
	syscall.ENOENT:       {2, 3},  // ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND (a unix socket's path)
	syscall.ESHUTDOWN:    {10058}, // WSAESHUTDOWN
}

// isErrno reports whether err is the errno e, or what means the same here.
func isErrno(err error, e syscall.Errno) bool {
	if err == e {
		return true
	}
	got, ok := err.(syscall.Errno)
	if !ok {
		return false
	}
	for _, w := range wsa[e] {
		if got == w {
			return true
		}
	}
	return false
}
