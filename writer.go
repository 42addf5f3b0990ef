package qmp

// Writing commands
//
// A caller queues its command, and the first caller to find no write in
// progress becomes the writer: it takes everything queued (moving each call
// to the queues that await replies, in exactly the order the bytes go out),
// and writes it without blocking. Commands that others queue meanwhile go
// out in the writer's next round, so concurrent callers share writes and the
// lone caller pays for no hand-off to another goroutine.
//
// When the socket buffer is full (QEMU has stopped reading), the write would
// block. The writer then hands what is left to a goroutine started for the
// purpose, which writes it whole (a command is never torn: the next one's
// bytes follow only after its last byte) and then goes on writing queued
// commands until the queue is empty, when it exits. So no caller ever waits
// in write(): its ctx bounds its wait for the reply, and a command still
// queued when its ctx ends is withdrawn unsent. An idle monitor has no writer
// goroutine. Connections that cannot be written to without blocking (not a
// syscall.Conn) are always written by such a goroutine.

import (
	"context"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"
)

// maxInlineRounds bounds how many rounds a caller writes before it leaves
// the rest to a writer goroutine.
const maxInlineRounds = 8

// writer is the state of the active writer: only the caller or goroutine
// that set m.writing touches it, so it needs no lock.
type writer struct {
	raw      syscall.RawConn // nil: conn cannot be written without blocking
	writeFn  func(s uintptr) bool
	wch      *chunk // what writeFn writes
	wblock   bool
	werr     error
	chunks   []chunk
	chunkBuf []chunk
	wbuf     []byte
}

// chunk is bytes to write, with the descriptor that goes with its first
// byte (-1 if none).
type chunk struct {
	b  []byte
	fd int
}

// send takes an in-flight slot for c (slots.go) and queues it for
// writing. When that fails (ctx ended while it waited for a slot, or the
// connection has ended) it completes c with the error and returns it.
func (m *Monitor) send(ctx context.Context, c *call) error {
	if m.log != nil {
		c.secret = m.logSend(c.msg)
		c.sent = time.Now()
	}
	if !c.oob && c.id != "" {
		m.noteIDLen(len(c.id))
	}
	m.mu.Lock()
	err := m.err
	if m.done == nil {
		err = closedError(nil, errNeverConnected) // the zero Monitor
	}
	if err == nil && !c.oob {
		err = m.acquireSlot(ctx, c)
	}
	if err != nil {
		m.mu.Unlock()
		c.complete(nil, false, err)
		return err
	}
	if !m.writing && len(m.sendq) == 0 && m.inUse <= 1 && m.w.raw != nil {
		// The lone caller: nothing to batch with, so it takes its own
		// command at once and writes it.
		m.writing = true
		run := 0
		m.claim(c, &run)
		m.w.chunkBuf = m.w.chunks[:0]
		m.mu.Unlock()
		m.writeLoop(false)
		return nil
	}
	c.queued = true
	m.sendq = append(m.sendq, c)
	if m.writing {
		m.mu.Unlock()
		return nil
	}
	m.writing = true
	busy := m.inUse > 1
	m.mu.Unlock()
	if m.w.raw == nil {
		go m.writeLoop(true)
		return nil
	}
	if busy {
		// Other commands are in flight, so their callers are likely about
		// to send more (woken by a batch of replies): let those already
		// runnable queue first, and one write carries them all. A lone
		// caller skips this and never waits on another goroutine.
		runtime.Gosched()
	}
	m.writeLoop(false)
	return nil
}

// withdraw takes c back out of the send queue if the writer has not taken
// it yet, and reports whether it did.
func (m *Monitor) withdraw(c *call) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !c.queued {
		return false
	}
	c.queued = false
	m.releaseSlotOf(c)
	for i, q := range m.sendq {
		if q == c {
			m.sendq = append(m.sendq[:i], m.sendq[i+1:]...)
			m.sendq[len(m.sendq):cap(m.sendq)][0] = nil
			break
		}
	}
	return true
}

// writeLoop is the writer: it writes queued commands round after round
// until the queue is empty. With block false it returns instead of waiting
// for the socket, leaving the rest to a writer goroutine.
func (m *Monitor) writeLoop(block bool) {
	for round := 0; ; round++ {
		if len(m.w.chunks) == 0 {
			if !m.take() {
				return
			}
			if !block && round >= maxInlineRounds {
				// A caller writes others' commands for a few rounds at most, so
				// it is back for its own reply soon whatever the load.
				go m.writeLoop(true)
				return
			}
		}
		for len(m.w.chunks) > 0 {
			ch := &m.w.chunks[0]
			err := m.writeChunk(ch, block)
			if err != nil {
				m.dropChunks()
				m.fail(err)
				m.mu.Lock()
				m.writing = false
				m.mu.Unlock()
				return
			}
			if len(ch.b) > 0 {
				go m.writeLoop(true) // the socket is full: a goroutine finishes the job
				return
			}
			m.w.chunks[0] = chunk{}
			m.w.chunks = m.w.chunks[1:]
		}
		m.w.chunks = m.w.chunkBuf[:0]
		if cap(m.w.wbuf) > 4<<10 {
			m.w.wbuf = nil // a burst is over: do not pin its buffer
		}
	}
}

// take moves the queued calls to the reply queues and their bytes to
// m.w.chunks. It returns false, ending the writer's turn, when there is
// nothing to write or the connection has ended.
func (m *Monitor) take() bool {
	m.mu.Lock()
	if m.err != nil || len(m.sendq) == 0 {
		m.writing = false
		m.mu.Unlock()
		return false
	}
	m.w.wbuf = m.w.wbuf[:0]
	run := 0 // calls in the current run of plain commands
	for i, c := range m.sendq {
		c.queued = false
		m.claim(c, &run)
		m.sendq[i] = nil
	}
	m.sendq = m.sendq[:0]
	m.w.chunkBuf = m.w.chunks[:0]
	m.mu.Unlock()
	return true
}

// claim moves c to the queues that await replies and its bytes to
// m.w.chunks, coalescing a run of plain commands (*run long so far) into one
// write. m.mu is held.
func (m *Monitor) claim(c *call, run *int) {
	if c.oob {
		m.oobIDs[c.id] = c
	} else {
		m.inband.push(c)
	}
	if c.fd >= 0 {
		m.w.chunks = append(m.w.chunks, chunk{b: c.msg, fd: c.fd})
		c.fd = -1 // the writer owns the descriptor now
		*run = 0
	} else if *run++; *run == 1 {
		m.w.chunks = append(m.w.chunks, chunk{b: c.msg, fd: -1})
	} else {
		// Several small commands in a row: coalesce them into one write.
		last := &m.w.chunks[len(m.w.chunks)-1]
		if *run == 2 {
			start := len(m.w.wbuf)
			m.w.wbuf = append(m.w.wbuf, last.b...)
			last.b = m.w.wbuf[start:]
		}
		start := len(m.w.wbuf) - len(last.b)
		m.w.wbuf = append(m.w.wbuf, c.msg...)
		last.b = m.w.wbuf[start:]
	}
}

// dropChunks closes the descriptors of chunks that will not be written.
func (m *Monitor) dropChunks() {
	for _, ch := range m.w.chunks {
		if ch.fd >= 0 {
			closeFD(ch.fd)
		}
	}
	m.w.chunks = nil
}

// writeChunk writes ch, consuming ch.b as bytes go out. Unless block is
// set it stops, with bytes left, where the socket would block.
func (m *Monitor) writeChunk(ch *chunk, block bool) error {
	if m.w.raw == nil {
		_, err := m.conn.Write(ch.b)
		ch.b = nil
		return err
	}
	m.w.wch, m.w.wblock, m.w.werr = ch, block, nil
	err := m.w.raw.Write(m.w.writeFn)
	m.w.wch = nil
	if err == nil {
		err = m.w.werr
	}
	return err
}

// writeReady writes m.w.wch on socket s; false means it would block and the
// writer waits (only when m.w.wblock).
func (m *Monitor) writeReady(s uintptr) bool {
	ch := m.w.wch
	for len(ch.b) > 0 {
		var n int
		var e error
		if ch.fd >= 0 {
			n, e = sendWithFD(s, ch.b, ch.fd)
		} else {
			n, e = writeFD(s, ch.b)
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return !m.w.wblock
		case e != nil:
			m.w.werr = os.NewSyscallError("write", e)
			return true
		case n <= 0:
			m.w.werr = io.ErrShortWrite
			return true
		}
		if ch.fd >= 0 {
			// The kernel took the descriptor with the first bytes; the rest
			// must not carry it again.
			closeFD(ch.fd)
			ch.fd = -1
		}
		ch.b = ch.b[n:]
	}
	return true
}
