package qmp

import (
	"encoding/json"
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

// ErrInvalidCommand matches (errors.Is) every command refused before
// sending; the error is a *CommandError saying why. Nothing was sent, and
// the connection and other callers are unaffected. A command is sent only
// when QEMU is certain to take it as exactly one message and its reply can
// be matched, because a JSON complaint from QEMU carries no id and could
// not be told apart from another caller's reply:
//
//   - it encodes to one JSON object;
//   - brackets and braces nest at most 1,024 deep, it has at most
//     2,097,152 JSON tokens and less than 64 MiB of them (QEMU's limits);
//   - every string is valid UTF-8 holding no Unicode noncharacter (U+FDD0
//     to U+FDEF, U+FFFE and U+FFFF of every plane), raw or escaped, and no
//     unpaired surrogate escape;
//   - no object names a member twice;
//   - an in-band command has no "exec-oob" member (RunOOB sends those),
//     and its "id", if any, holds no number but integers of at most 64
//     bits (QEMU would echo others changed) and is not a string of
//     RunOOB's form, "oob-" and digits.
var ErrInvalidCommand = errors.New("qmp: command refused before sending")

// CommandError describes a command refused before sending.
type CommandError struct {
	// Limit names the QEMU limit the command exceeds: "nesting", "tokens"
	// or "token bytes"; empty when the command is refused for its content.
	Limit string
	// Value and Max are the command's figure and QEMU's limit for Limit.
	Value, Max int
	// Member is the path of the offending member from the command's top
	// level, as in "arguments.props[2].id", when the refusal concerns one.
	Member string
	// Reason says what is wrong, for the error text.
	Reason string
	// Err is the underlying error, when there is one (encoding/json's, for
	// a value that does not encode).
	Err error
}

func (e *CommandError) Error() string {
	msg := "qmp: command not sent: " + e.Reason
	if e.Member != "" {
		msg = "qmp: command not sent: member " + e.Member + ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrInvalidCommand.
func (e *CommandError) Is(target error) bool { return target == ErrInvalidCommand }

// Unwrap returns Err.
func (e *CommandError) Unwrap() error { return e.Err }

// ErrSocketBusy is wrapped by the error Dial and NewMonitor return when the
// kernel refused the connection because QEMU's listen backlog is full
// (connect: EAGAIN). QEMU serves one QMP client per socket at a time and
// queues only a couple of further connections; once they are queued (for
// instance by clients that timed out waiting for a greeting), every further
// connect fails this way until the current client leaves. IsSocketBusy
// reports it; Options.WaitForSocket retries it.
var ErrSocketBusy = errors.New("qmp: another client holds the QMP socket and QEMU queues no more connections")

// ErrProtocol is the cause (errors.Is) of a connection's end when QEMU sent
// something that is not a well-formed QMP message, or an error showing that
// it parsed the library's input differently from how it was sent.
var ErrProtocol = errors.New("qmp: protocol error")

// OverflowError says that events were missed. It ends a Subscription
// whose reader fell behind by more than its buffer: Seq is the first event
// it did not receive, and that event and the ones after it are still in
// the history (EventsAfter(Seq-1, ...)), unless retention has evicted them
// since. It fails a wait or a checked lookup (EventsAfterChecked) from a
// cursor whose next events the history had already evicted (its count,
// bytes or age bounds): Seq is then the first evicted event after the
// cursor and Oldest the oldest event still buffered, and the typed waits
// for an outcome (WaitDeviceDeleted, WaitBlockJob, WaitMigration) ask
// QEMU for its current state instead of failing.
type OverflowError struct {
	Seq    EventCursor
	Oldest EventCursor // when the history evicted them: the oldest Seq still buffered
}

func (e *OverflowError) Error() string {
	if e.Oldest != 0 {
		return fmt.Sprintf("qmp: events from Seq %d to %d were evicted from the event history before they were read (raise Options.EventHistory, EventHistoryBytes or EventHistoryAge, or read sooner)", e.Seq, e.Oldest-1)
	}
	return fmt.Sprintf("qmp: event subscriber fell behind; first missed event has Seq %d", e.Seq)
}

// ErrSubscriptionClosed is Subscription.Err after Close.
var ErrSubscriptionClosed = errors.New("qmp: subscription closed")

// MatchPanicError ends a wait or a subscription whose EventFilter.Match
// panicked; the monitor and every other wait and subscription carry on.
type MatchPanicError struct {
	Value any    // what Match panicked with
	Stack []byte // the panicking goroutine's stack
}

func (e *MatchPanicError) Error() string {
	return fmt.Sprintf("qmp: the EventFilter's Match panicked: %v", e.Value)
}

// Unwrap returns Value when it is an error.
func (e *MatchPanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// qmpError decodes a reply's "error" member into NewQMPError's type.
func qmpError(raw []byte) error {
	var qe GenericError
	if err := json.Unmarshal(raw, &qe); err != nil {
		return fmt.Errorf("%w: QEMU sent a malformed error reply %.200s: %w", ErrProtocol, raw, err)
	}
	return NewQMPError(&qe)
}

// ErrNotInSchema is wrapped by the *SchemaPathError of a path that is well
// formed but names something the schema does not have.
var ErrNotInSchema = errors.New("qmp: not in the schema")

// ErrSchemaPathSyntax is wrapped by the *SchemaPathError of a malformed path.
var ErrSchemaPathSyntax = errors.New("qmp: malformed schema path")

// ErrSchema is wrapped by the errors of ParseSchema for input that is not
// a QAPI introspection schema.
var ErrSchema = errors.New("qmp: invalid QAPI schema")

// ErrMigrationEventsOff is returned by WaitMigration when the "events"
// migration capability is off: QEMU then sends no MIGRATION events, so
// there is nothing to wait for.
var ErrMigrationEventsOff = errors.New(`qmp: the "events" migration capability is off, so QEMU sends no MIGRATION events; ` +
	`turn it on (migrate-set-capabilities with {"capability": "events", "state": true}) before migrate`)
