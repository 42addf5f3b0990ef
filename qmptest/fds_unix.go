//go:build unix

package qmptest

import "syscall"

// cmsgSpace is room for the control messages of one read: up to 16 fds.
var cmsgSpace = syscall.CmsgSpace(16 * 4)

// unixRights returns the descriptors that SCM_RIGHTS control messages in b
// carry.
func unixRights(b []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(b)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if f, err := syscall.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}
