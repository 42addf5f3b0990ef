// Package qmp is a client for the QEMU Machine Protocol (QMP), the JSON
// protocol of QEMU's monitor socket.
//
// It is a drop-in superset of go-qmp v2.0.4: programs written against that
// version compile unchanged, and the same calls now run concurrently, honour
// contexts, and never hang or panic on a connection that ends.
//
// # Connecting
//
// NewMonitor dials a unix socket and negotiates capabilities within a
// timeout; Dial does the same for "unix" or "tcp" with a context and
// Options; NewMonitorConn takes a net.Conn the caller already has. A QMP
// socket serves one client at a time: a second client gets no greeting, and
// the handshake then fails with an error wrapping ErrHandshake and the
// ctx's error; once QEMU's short queue of waiting connections is full,
// connecting fails at once with an error for which IsSocketBusy is true.
//
// # Commands
//
// Run, RunHuman and RunTransaction, and their ...Context variants, send a
// command and wait for its reply. Any number of goroutines may call them at
// once: commands are pipelined on the one connection and one reader
// goroutine hands each reply to its caller. A context bounds only its
// caller's wait; the connection and the other callers are unaffected.
// QEMU's errors come back as *GenericError or, for the classes that have
// one, its concrete type (*CommandNotFound, *DeviceNotFound, ...), which
// errors.As also unwraps to *GenericError.
//
// RunOOB sends out-of-band commands (Options.EnableOOB) and RunWithFile
// passes a file descriptor with a command (getfd, add-fd); GetFD, AddFD and
// friends wrap the usual ones.
//
// # Events
//
// Every event QEMU sends is kept in an in-memory history, bounded by count,
// bytes and optionally age (Options), indexed by type, by QEMU timestamp and
// by arrival sequence number. The v2.0.4 calls (GetEvents, FindEvents, the
// Wait... and Find... helpers) take Unix seconds, and an earlier matching
// event within the same second counts; EventCursor, taken before the
// command, with EventsAfter, WaitEventAfter or WaitDeviceDeleted gives exact
// "everything after what I saw" semantics, and Subscribe follows events
// live on a channel. The history
// outlives the connection, so a SHUTDOWN sent just before QEMU exits can be
// found afterwards.
//
// # The end of the connection
//
// When the connection ends (Close, QEMU exiting or being killed, a
// protocol error) every pending call and wait returns an error for which
// IsSocketClosed is true and errors.Is(err, ErrClosed) holds (a
// *net.OpError, as v2.0.4's were, wrapping a *ClosedError that carries the
// cause); Done is closed and Err says why. Close is idempotent, returns
// promptly even when QEMU is wedged, and returns after the reader goroutine
// has exited. The history stays readable.
//
// # Errors
//
// Every error a call returns is one of four kinds, each told apart the
// same way whatever the entry point:
//
//   - Nothing was sent because of what the caller passed (a value that is
//     not one JSON object QEMU would take, a string QEMU's parser refuses,
//     a result that is not a pointer, a transaction action QEMU does not
//     have, a nil file): errors.Is(err, ErrInvalidCommand), and
//     errors.As(err, &ce) gives a *CommandError naming the member. Nothing
//     was sent either for ErrOOBNotEnabled and ErrFDPassingUnsupported
//     (the connection cannot do it).
//   - QEMU refused the command: errors.As(err, &ge) gives a *GenericError
//     (or, for its classes, *CommandNotFound, *DeviceNotFound, ...). Run
//     returns it as it is; the typed methods wrap it with the command's
//     name ("qmp: device_del failed: ...").
//   - The connection ended: IsSocketClosed(err) and errors.Is(err,
//     ErrClosed), as above.
//   - The caller's ctx ended: errors.Is(err, ctx.Err()). The command, if it
//     was written, still runs in QEMU; its reply is dropped.
//
// A call that returns an error returns the zero value (a nil pointer)
// beside it, except RunHumanChecked, which also returns HMP's output with
// its *HMPError. A nil ctx means context.Background().
//
// The protocol is specified in QEMU's docs/interop/qmp-spec.rst:
// https://www.qemu.org/docs/master/interop/qmp-spec.html
package qmp
