package qmp

// The reader: the one goroutine that reads QEMU's output, hands each reply
// to the call waiting for it (router.go) and files each event in the
// history; when the connection ends it settles every call and wait.

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

func (m *Monitor) readLoop(fr *framer) {
	defer close(m.readerDone)
	var err error
	for {
		var msg []byte
		if msg, err = fr.next(); err != nil {
			break
		}
		if err = m.dispatch(fr, msg); err != nil {
			break
		}
	}
	fr.idle() // give the buffer back to the pool
	m.fail(normalEnd(err))
	m.finish()
}

// normalEnd maps how reading stopped to the cause the caller sees.
func normalEnd(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil // our own Close, or fail after a write error (cause recorded first)
	}
	var se *os.SyscallError
	if errors.As(err, &se) && isErrno(se.Err, syscall.ECONNRESET) {
		// QEMU's quit closes the socket with our unread bytes in it: a reset
		// is as normal an end as EOF.
		return io.EOF
	}
	return err
}

// finish settles everything once the reader has stopped. Err and Done are
// final before any call learns of the end, so a caller that got the
// connection's error finds it in Err too.
func (m *Monitor) finish() {
	m.mu.Lock()
	m.err = closedError(m.conn, m.cause)
	close(m.done)
	pending := m.inband.drain()
	for _, c := range m.sendq {
		c.queued = false
		pending = append(pending, c)
	}
	m.sendq = nil
	for _, c := range m.oobIDs {
		pending = append(pending, c)
	}
	clear(m.oobIDs)
	m.mu.Unlock()
	for _, c := range pending {
		c.complete(nil, false, m.err)
	}
	m.events.end(m.err)
	if m.log != nil {
		m.log.Debug("qmp: connection ended", "err", m.err)
	}
}

// dispatch routes one message. An error return ends the connection.
func (m *Monitor) dispatch(fr *framer, msg []byte) error {
	mb, err := fr.membersOf(msg)
	if err != nil {
		m.logMsg("recv", msg)
		return err
	}
	switch {
	case mb.present&hasEvent != 0:
		m.logMsg("recv", msg)
		m.addEvent(mb, msg)
	case mb.present&(hasReturn|hasError) != 0:
		return m.deliver(mb, msg) // logs the reply with its latency
	default:
		m.logMsg("recv", msg)
		m.warn("qmp: dropped a message that is neither a reply nor an event", msg)
	}
	return nil
}

func (m *Monitor) addEvent(mb members, msg []byte) {
	e, sec, usec, err := parseEvent(mb, m.evNames)
	if err != nil {
		m.warn("qmp: dropped a malformed event: "+err.Error(), msg)
		return
	}
	now := time.Now()
	if sec < 0 || usec < 0 {
		// QEMU sends -1 when its clock failed; keep the event, stamped with
		// when it arrived.
		sec, usec = now.Unix(), int64(now.Nanosecond()/1000)
	}
	e.Timestamp.Seconds, e.Timestamp.Microseconds = uint64(sec), uint64(usec)
	m.events.add(e, now)
}
