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
// protocol error) every pending call and wait returns a *ClosedError, for
// which IsSocketClosed is true and errors.Is(err, ErrClosed) holds; Done is
// closed and Err says why. Close is idempotent, returns promptly even when
// QEMU is wedged, and returns after the reader goroutine has exited.
//
// The protocol is specified in QEMU's docs/interop/qmp-spec.rst:
// https://www.qemu.org/docs/master/interop/qmp-spec.html
package qmp
