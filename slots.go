package qmp

// The in-flight cap (Options.MaxInFlight)
//
// The count of in-band commands sent and not yet answered lives under m.mu,
// beside the queues that hold those commands: a slot is taken when a
// command is queued and given back when the call leaves the queues (its
// reply, its withdrawal, the end of the connection), each time under the
// lock that queueing and routing take anyway, so the cap costs no
// synchronisation of its own. A caller that finds every slot taken waits
// in line, bounded by its ctx; a freed slot passes to the first in line
// directly, so one reply wakes one waiter, not all of them.

import "context"

// acquireSlot takes an in-flight slot for c, waiting in line for one while
// all are taken. m.mu is held on entry and on return (not while waiting).
// It fails with ctx's error or, when the connection has ended, with m.err.
func (m *Monitor) acquireSlot(ctx context.Context, c *call) error {
	if m.inUse < m.maxInFlight && len(m.slotq) == 0 {
		m.inUse++
		c.slot = true
		return nil
	}
	w := make(chan struct{}, 1)
	m.slotq = append(m.slotq, w)
	m.mu.Unlock()
	var err error
	select {
	case <-w:
	case <-ctx.Done():
		err = ctx.Err()
	case <-m.done:
	}
	m.mu.Lock()
	if m.err != nil {
		if err == nil {
			err = m.err
		}
		return err // slots count for nothing once the connection has ended
	}
	if err == nil {
		c.slot = true // handed over by releaseSlot
		return nil
	}
	if !m.leaveLine(w) {
		m.releaseSlot() // a slot was handed over as we gave up: pass it on
	}
	return err
}

// leaveLine takes w out of the line of waiters, and reports whether it was
// still there (not yet handed a slot). m.mu is held.
func (m *Monitor) leaveLine(w chan struct{}) bool {
	for i, q := range m.slotq {
		if q == w {
			m.slotq = append(m.slotq[:i], m.slotq[i+1:]...)
			m.slotq[len(m.slotq):cap(m.slotq)][0] = nil
			return true
		}
	}
	return false
}

// releaseSlotOf gives back c's slot, if it holds one. m.mu is held.
func (m *Monitor) releaseSlotOf(c *call) {
	if c.slot {
		c.slot = false
		m.releaseSlot()
	}
}

// releaseSlot frees a slot, handing it to the first waiter if there is
// one. m.mu is held.
func (m *Monitor) releaseSlot() {
	if len(m.slotq) == 0 {
		m.inUse--
		return
	}
	w := m.slotq[0]
	m.slotq[0] = nil
	m.slotq = m.slotq[1:]
	w <- struct{}{} // buffered: never blocks
}
