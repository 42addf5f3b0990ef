package qmp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

var (
	// ErrHandshake is returned (wrapped) when QEMU sent no valid greeting.
	// A timeout while waiting for the greeting wraps it too: a QMP socket
	// serves one client at a time, so a second client gets no greeting.
	ErrHandshake = errors.New("QMP Handshake error: invalid greeting")
	// ErrNegotiation is returned (wrapped) when qmp_capabilities failed.
	ErrNegotiation = errors.New("QMP Handshake error: negotiations failed")

	// ErrOperationCanceled is v2.0.4's; nothing returns it.
	//
	// Deprecated: a call on a monitor whose connection ended returns an
	// error for which errors.Is(err, ErrClosed) and IsSocketClosed hold,
	// and a call whose ctx ended returns ctx.Err().
	//lint:ignore ST1005 the text is v2.0.4's, which callers may compare
	ErrOperationCanceled = errors.New("Operation canceled: channel was closed")

	// ErrClosed matches (errors.Is) every error a call returns because the
	// monitor's connection has ended.
	ErrClosed = errors.New("qmp: monitor connection ended")

	// ErrOOBNotEnabled is returned by RunOOB when the connection did not
	// negotiate the "oob" capability; nothing was sent.
	ErrOOBNotEnabled = errors.New("qmp: out-of-band execution was not negotiated")

	// ErrFDPassingUnsupported is returned by RunWithFile when the connection
	// is not a unix socket (SCM_RIGHTS needs one); nothing was sent.
	ErrFDPassingUnsupported = errors.New("qmp: file descriptors can only be passed over a unix socket")

	// ErrMessageTooLarge is the cause of the connection's end when QEMU sent a
	// message larger than Options.MaxMessageSize.
	ErrMessageTooLarge = errors.New("qmp: incoming message exceeds the size limit")
)

// errShutdown is what v2.0.4 returned after the connection ended; a
// *ClosedError wraps it so that old checks keep working.
var errShutdown = &net.OpError{Op: "read", Net: "unix", Err: &os.SyscallError{Syscall: "syscall", Err: syscall.ESHUTDOWN}}

// ClosedError is why the monitor's connection ended: Close was called,
// QEMU closed the socket, or reading, writing or the protocol failed. Cause
// is nil after Close, io.EOF when QEMU closed the connection, else the I/O
// or protocol error.
//
// The shape callers see: Run and the other v2.0.4 calls, waits,
// subscriptions and Err return a *net.OpError when the connection ended
// (pending calls and later ones), as v2.0.4 did once QEMU's side was gone
// (the typed methods wrap it with the command's name),
// so `if _, ok := err.(*net.OpError); ok` still holds. Its Err is the
// *ClosedError, so errors.As(err, &closedErr), errors.Is(err, ErrClosed),
// errors.Is(err, io.EOF) (QEMU closed the socket) and IsSocketClosed(err)
// all hold too. Op is "read": the reader is what sees the end.
type ClosedError struct {
	Cause error
}

// errNeverConnected is the cause for a zero Monitor: it behaves as one
// whose connection has ended.
var errNeverConnected = errors.New("qmp: this Monitor was never connected; create one with NewMonitor, Dial or NewMonitorConn")

// closedError builds the connection-ended error in the shape above.
func closedError(conn net.Conn, cause error) error {
	oe := &net.OpError{Op: "read", Net: "unix", Err: &ClosedError{Cause: cause}}
	if conn != nil {
		if a := conn.RemoteAddr(); a != nil {
			oe.Net, oe.Addr = a.Network(), a
		}
	}
	return oe
}

func (e *ClosedError) Error() string {
	if e.Cause == nil {
		return "qmp: monitor closed"
	}
	return "qmp: connection to QEMU ended: " + e.Cause.Error()
}

// Unwrap exposes the cause and the v2.0.4 ESHUTDOWN error.
func (e *ClosedError) Unwrap() []error {
	if e.Cause == nil {
		return []error{errShutdown}
	}
	return []error{e.Cause, errShutdown}
}

// Is reports whether target is ErrClosed.
func (e *ClosedError) Is(target error) bool { return target == ErrClosed }

// GenericError represents a common structure for the QMP errors
// that could be accurred. This type also used for errors that doesn't have
// a specific class (for most of them in fact).
type GenericError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (err *GenericError) Error() string {
	return fmt.Sprintf("%s error: %s", err.Class, err.Desc)
}

// CommandNotFound occurs when a requested command has not been found.
type CommandNotFound struct {
	*GenericError
}

// DeviceNotActive occurs when a device has failed to be become active.
type DeviceNotActive struct {
	*GenericError
}

// DeviceNotFound occurs when a requested device has not been found.
type DeviceNotFound struct {
	*GenericError
}

// KVMMissingCap occurs when a requested operation can't be
// fulfilled because a required KVM capability is missing.
type KVMMissingCap struct {
	*GenericError
}

// Unwrap lets errors.As find the *GenericError.
func (e *CommandNotFound) Unwrap() error { return e.GenericError }

// Unwrap lets errors.As find the *GenericError.
func (e *DeviceNotActive) Unwrap() error { return e.GenericError }

// Unwrap lets errors.As find the *GenericError.
func (e *DeviceNotFound) Unwrap() error { return e.GenericError }

// Unwrap lets errors.As find the *GenericError.
func (e *KVMMissingCap) Unwrap() error { return e.GenericError }

// NewQMPError returns the concrete error type for err's class
// (*CommandNotFound, *DeviceNotActive, *DeviceNotFound, *KVMMissingCap),
// or err itself for any other class.
func NewQMPError(err *GenericError) error {
	switch err.Class {
	case "CommandNotFound":
		return &CommandNotFound{err}
	case "DeviceNotActive":
		return &DeviceNotActive{err}
	case "DeviceNotFound":
		return &DeviceNotFound{err}
	case "KVMMissingCap":
		return &KVMMissingCap{err}
	}
	return err
}

// DeviceUnplugError is returned by WaitDeviceDeleted (and the deprecated
// WaitDeviceDeletedEvent) when QEMU reports
// DEVICE_UNPLUG_GUEST_ERROR for the device: the guest will not release it,
// so no DEVICE_DELETED is coming.
type DeviceUnplugError struct {
	Device string
	Path   string
	Event  EventRecord // the DEVICE_UNPLUG_GUEST_ERROR
}

func (e *DeviceUnplugError) Error() string {
	id := e.Device
	if id == "" {
		id = e.Path
	}
	return fmt.Sprintf("qmp: guest failed to unplug device %q (DEVICE_UNPLUG_GUEST_ERROR)", id)
}

// IsSocketNotAvailable reports whether err means that no QEMU listens on the
// socket (ENOENT, ECONNREFUSED) or that it went away (ECONNRESET, EPIPE). It
// sees through wrapping.
func IsSocketNotAvailable(err error) bool {
	var se *os.SyscallError
	if !errors.As(err, &se) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.ENOENT, syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE} {
		if isErrno(se.Err, e) {
			return true
		}
	}
	return false
}

// IsSocketClosed reports whether err means the monitor was closed or its
// connection to QEMU ended. It sees through wrapping.
func IsSocketClosed(err error) bool {
	if errors.Is(err, ErrClosed) {
		return true
	}
	var se *os.SyscallError
	return errors.As(err, &se) && isErrno(se.Err, syscall.ESHUTDOWN)
}
