package qmp

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
)

// Monitor is a connection to a QMP server (QEMU's monitor socket).
//
// A Monitor comes from NewMonitor, Dial or NewMonitorConn. The zero
// Monitor behaves as one whose connection has ended: its calls return an
// error for which IsSocketClosed holds, its history is empty, Done is
// closed, and Close returns nil.
//
// All methods are safe for concurrent use. Commands from many goroutines are
// pipelined on the one connection; one reader goroutine hands each reply to
// the goroutine that sent the command and files every event in the history.
type Monitor struct {
	conn net.Conn
	opts Options
	log  *slog.Logger

	version Version
	caps    []string // offered by QEMU in its greeting
	oob     bool     // "oob" negotiated

	events *history

	// mu guards the send queue, the in-band replies awaited, the OOB calls,
	// and the end of the connection.
	mu      sync.Mutex
	sendq   []*call // queued, not yet taken by the writer
	writing bool    // a writer is active (a caller or a writer goroutine)
	inband  callQueue
	oobIDs  map[string]*call
	err     error // terminal error once the connection ended

	maxIDLen atomic.Int64 // the longest in-band id sent, canonical: bounds the echoes the router decodes

	w writer // touched only by the active writer (writer.go)

	inUse       int             // in-flight slots taken (guarded by mu; slots.go)
	maxInFlight int             // Options.MaxInFlight or its default
	slotq       []chan struct{} // callers waiting for a slot, first in line first (guarded by mu)
	fdSlot      chan struct{}   // one fd-carrying command at a time

	done       chan struct{} // closed when the connection ended
	readerDone chan struct{} // closed when the reader goroutine returned
	failOnce   sync.Once
	cause      error // first reason the connection ends; written once under failOnce

	schema schemaCache // the live schema and deprecation warnings (schema.go)
	logq   *logQueue   // what m.log writes to, when a Logger is set (logqueue.go)

	evNames eventNames // the reader's interned event names
}

// NewMonitorConn runs the QMP handshake on conn, a connection the caller
// already has (a socketpair, an inherited fd, a custom transport), and
// returns a Monitor that owns conn: it closes conn on failure and on Close.
// ctx bounds the handshake only.
func NewMonitorConn(ctx context.Context, conn net.Conn, opts *Options) (*Monitor, error) {
	o := opts.withDefaults()
	m := &Monitor{
		conn:       conn,
		opts:       o,
		events:     newHistory(o),
		evNames:    make(eventNames),
		oobIDs:     make(map[string]*call),
		fdSlot:     make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	if sc, ok := conn.(syscall.Conn); ok && rawIO {
		if rc, err := sc.SyscallConn(); err == nil {
			m.w.raw = rc
			m.w.writeFn = m.writeReady // bound once: a closure per write would allocate
		}
	}
	if o.Logger != nil {
		m.logq = newLogQueue(o.Logger.Handler())
		m.log = slog.New(m.logq)
	}
	fr := newFramer(conn, o.MaxMessageSize)
	if err := m.handshake(ctx, fr); err != nil {
		fr.idle()
		conn.Close()
		if m.logq != nil {
			m.logq.drain() // the handshake's records, on the caller's goroutine
		}
		return nil, err
	}
	n := o.MaxInFlight
	if n <= 0 {
		n = defaultInFlight
		if m.oob {
			n = defaultInFlightOOB
		}
	}
	m.maxInFlight = n
	if m.logq != nil {
		go m.logq.run(m.readerDone)
	}
	go m.readLoop(fr)
	return m, nil
}

// Version returns QEMU's version from the greeting.
func (m *Monitor) Version() Version { return m.version }

// Capabilities returns the capabilities QEMU offered in its greeting.
func (m *Monitor) Capabilities() []string { return slices.Clone(m.caps) }

// OOBEnabled reports whether out-of-band execution was negotiated
// (Options.EnableOOB and QEMU offered it).
func (m *Monitor) OOBEnabled() bool { return m.oob }

// Done returns a channel that is closed when the connection has ended:
// Close, QEMU closing the socket, or a read or protocol error.
func (m *Monitor) Done() <-chan struct{} {
	if m.done == nil {
		return closedChan
	}
	return m.done
}

// closedChan is the zero Monitor's Done.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Err returns why the connection ended (a *ClosedError), or nil while it is
// alive.
func (m *Monitor) Err() error {
	if m.done == nil {
		return closedError(nil, errNeverConnected)
	}
	select {
	case <-m.done:
		return m.err
	default:
		return nil
	}
}

// Close closes the connection and waits for the reader goroutine to exit,
// and for the Logger's handler to have been given every record (except
// when Close is called from that handler: a handler that blocks, on
// something the caller of Close holds for one, holds Close too). Every pending call and wait
// returns an error for which IsSocketClosed is true. The event history
// stays readable. Close is idempotent, never sends anything, may be called
// from any goroutine and any callback (EventFilter.Match, the Logger's
// handler), and returns promptly even when QEMU is wedged. It returns nil.
func (m *Monitor) Close() error {
	if m.done == nil {
		return nil // the zero Monitor
	}
	m.fail(nil)
	<-m.readerDone
	if m.logq != nil && !m.logq.onLogGoroutine() {
		<-m.logq.exited
	}
	return nil
}

// fail records the first reason the connection ends and closes the socket,
// which makes the reader return; the reader then settles every waiter.
func (m *Monitor) fail(cause error) {
	m.failOnce.Do(func() {
		m.cause = cause
		m.conn.Close()
	})
}
