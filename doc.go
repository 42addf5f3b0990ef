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
// # Events and cursors
//
// Every event QEMU sends is kept in an in-memory history, bounded by count,
// bytes and optionally age (Options), indexed by type, by QEMU timestamp and
// by arrival sequence number. An EventCursor names a position in it: take
// one with EventCursor before the command whose event you want, then
// WaitEventAfter (or a wait for an outcome: WaitDeviceDeleted,
// WaitBlockJob, WaitBlockJobReady, WaitJobStatus, WaitMigration,
// WaitShutdown) sees exactly the events that came later, whether they
// arrived before the wait began or after. EventsAfter and EventsSince look
// without waiting; Subscribe follows events live on a channel. When events
// after a cursor were evicted before they were read, the waits and
// EventsAfterChecked say so with an *OverflowError, and the waits for an
// outcome ask QEMU's state instead. The history outlives the connection,
// so a SHUTDOWN sent just before QEMU exits can be found afterwards. The
// v2.0.4 calls that take Unix seconds are deprecated: an earlier event in
// the same second counts for them.
//
// # Typed commands
//
// Beside Run, methods named after the commands VM managers send
// (QueryStatus, DeviceAdd, DeviceDel, BlockdevAdd, BlockdevMirror,
// Migrate, ...) take Go structs named after QEMU's QAPI types and return
// typed replies; DecodeEventData decodes an event's data into the
// package's type for it (ShutdownEventData, DeviceDeletedEventData, ...)
// or any of the caller's. Names follow one rule: QAPI's name in CamelCase
// with Go's initialisms (query-vnc is QueryVNC returning *VNCInfo), a
// command's inline arguments in <Command>Args, driver-specific members in
// Props.
//
// The typed layer covers QEMU 5.2 to 11.x: what only some versions have
// says which in its doc comment ("QEMU 7.1 and later"), and a call that
// uses what the connected QEMU lacks fails with an *UnsupportedError.
// Typed calls check against the schema only once it has been fetched
// (Schema); they never fetch it themselves.
//
// Optional members: in replies and event data, a pointer, slice or map,
// nil when QEMU left the member out (or a string, "" when absent). In
// arguments, a plain value with omitempty, so the zero value sends
// nothing, where leaving a member out and sending its zero mean the same
// to QEMU (DeviceAddArgs{ID: "vd0"}); a pointer where they do not: a
// default of true (AutoFinalize), a setting left unchanged (every member
// of MigrationParameters), a value a child node inherits when absent
// (BlockdevOptions.ReadOnly), or 0 naming a real thing
// (AddFDArgs.FDSetID).
//
// # Schema
//
// Schema fetches query-qmp-schema once per connection and answers what the
// connected QEMU accepts: Lookup and Has take paths such as
// "blockdev-add.driver=qcow2.file" or "query-status->status" (the return's
// member), so a program can check a command, member, enum value or
// feature before sending it. With a Logger set, commands and members the
// QEMU marks deprecated are logged once. The model is bounded by the
// schema's size whatever QEMU sends.
//
// # Concurrency
//
// All methods of Monitor and Subscription are safe for concurrent use.
// Commands from any number of goroutines are pipelined on the one
// connection (Options.MaxInFlight caps those in flight); the reader
// goroutine never runs the caller's code: EventFilter.Match runs on the
// waiting goroutine (a subscription's on a goroutine of its own) and the
// Logger's handler on a log goroutine, so both may call the Monitor.
//
// # Logging
//
// Options.Logger receives every message sent and received at debug level
// and dropped or malformed messages at warn level, as structured records
// (the Options.Logger field lists their attributes), with secrets such as
// passwords redacted.
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
//   - A typed call used a command or member the connected QEMU does not
//     have: errors.As(err, &ue) gives an *UnsupportedError (and
//     errors.Is(err, errors.ErrUnsupported) holds). Nothing was sent when
//     the schema was known (Schema); otherwise it wraps QEMU's refusal,
//     which errors.As still finds as above.
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
