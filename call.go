package qmp

import (
	"sync/atomic"
	"time"
)

// call is one command in flight.
//
// Ownership: a call lives in at most one of the monitor's structures at a
// time (m.sendq while queued; m.inband or m.oobIDs once the writer has taken
// it), and moves between them only under m.mu. Whoever removes it from the
// last one (the router on its reply, the caller withdrawing it before it was
// written, the end of the connection) completes it, so completion happens
// once by construction, and a second completion panics: it would be a bug
// that hands a caller two outcomes. Calls are
// never recycled: a caller that gave up may still be referenced by the
// queues until its reply arrives, and nothing else can ever see it.
type call struct {
	msg     []byte    // the encoded command; read-only once queued
	oob     bool      // sent with exec-oob, matched by id
	id      string    // the id the command carries, canonical (canonicalID); "" if none
	fd      int       // a dup of the caller's fd, owned by the call until the writer takes it; -1 if none
	discard bool      // the caller wants no result: a successful reply is not copied
	queued  bool      // in m.sendq (guarded by m.mu)
	slot    bool      // holds an in-flight slot (guarded by m.mu; slots.go)
	sent    time.Time // when it was queued; set only when a logger is, for the reply's latency
	secret  bool      // the command held a secret: its reply is not logged either

	fdSlot chan struct{} // the fd semaphore, while it holds it

	// The outcome, written by the completer before done is closed.
	ret   []byte // the reply's "return" or "error" value
	isErr bool
	err   error
	done  chan struct{}
	over  atomic.Bool

	inline [64]byte // msg's storage when the command fits: one allocation less per Run
}

func newCall() *call {
	c := &call{fd: -1, done: make(chan struct{})}
	c.msg = c.inline[:0]
	return c
}

// complete records the outcome, gives back what the call holds, and wakes
// its caller. It is called exactly once per call.
func (c *call) complete(ret []byte, isErr bool, err error) {
	if !c.over.CompareAndSwap(false, true) {
		panic("qmp: a call was completed twice: a bug in package qmp, please report it")
	}
	c.closeFD()
	if c.fdSlot != nil {
		<-c.fdSlot
		c.fdSlot = nil
	}
	c.ret, c.isErr, c.err = ret, isErr, err
	close(c.done)
}

// closeFD releases the call's duplicate of the caller's fd.
func (c *call) closeFD() {
	if c.fd >= 0 {
		closeFD(c.fd)
		c.fd = -1
	}
}

// callQueue is the FIFO of in-band calls awaiting replies.
type callQueue struct {
	q    []*call
	head int
}

func (q *callQueue) push(c *call) {
	switch {
	case q.head > 0 && q.head == len(q.q):
		q.q, q.head = q.q[:0], 0
	case q.head >= 64 && q.head*2 >= len(q.q):
		// The queue never empties while calls keep coming: move what is
		// pending to the front so the slice does not grow with every call
		// ever made.
		n := copy(q.q, q.q[q.head:])
		clear(q.q[n:])
		q.q, q.head = q.q[:n], 0
	}
	q.q = append(q.q, c)
}

func (q *callQueue) peek() *call {
	if q.head == len(q.q) {
		return nil
	}
	return q.q[q.head]
}

func (q *callQueue) pop() *call {
	if q.head == len(q.q) {
		return nil
	}
	c := q.q[q.head]
	q.q[q.head] = nil
	q.head++
	return c
}

func (q *callQueue) drain() []*call {
	rest := append([]*call(nil), q.q[q.head:]...)
	q.q, q.head = nil, 0
	return rest
}
