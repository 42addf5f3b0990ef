package qmp

// Subscriptions: events delivered live on a channel, from the history's
// add (without a Match) or from a pump goroutine that runs the Match.

import "context"

// deliver sends r to s, ending s when its buffer is full. h.mu is held.
func (h *history) deliver(s *Subscription, r *rec) {
	select {
	case s.c <- h.record(r):
	default:
		h.closeSub(s, &OverflowError{Seq: r.seq})
	}
}

// Subscription delivers events live, in arrival order, on C. C is closed
// when the subscription ends; Err then says why: ErrSubscriptionClosed
// (Close), ctx.Err() (its context ended), *OverflowError (the reader fell
// behind), *MatchPanicError, or the monitor's connection error.
// Subscribe makes them; the zero Subscription's Close and Err are safe,
// but its C is nil, and a receive from it blocks for ever.
//
// A subscription never slows the reader, replies, waits or other
// subscribers: when its buffer is full it ends with an *OverflowError
// instead of dropping events silently.
type Subscription struct {
	C <-chan EventRecord

	c    chan EventRecord
	h    *history
	q    query
	err  error // guarded by h.mu
	stop func() bool

	// With a Match: the pump goroutine that runs it (pump).
	wake chan struct{} // new events to scan
	quit chan struct{} // closed when the subscription ends
}

// Close ends the subscription and frees it. It is idempotent.
func (s *Subscription) Close() {
	if s.h == nil {
		return // the zero Subscription, or the zero Monitor's
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.closeSub(s, ErrSubscriptionClosed)
}

// Err returns why C was closed, or nil while it is open.
func (s *Subscription) Err() error {
	if s.h == nil {
		if s.c == nil {
			return ErrSubscriptionClosed // the zero Subscription
		}
		return s.err
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.err
}

func (h *history) closeSub(s *Subscription, err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.err = err
	close(s.c)
	if s.quit != nil {
		close(s.quit)
	}
	if s.stop != nil {
		s.stop()
	}
}

func (h *history) subscribe(ctx context.Context, f EventFilter, buffer int) *Subscription {
	if h == nil {
		c := make(chan EventRecord)
		close(c)
		return &Subscription{C: c, c: c, err: closedError(nil, errNeverConnected)}
	}
	if buffer <= 0 {
		buffer = 256
	}
	c := make(chan EventRecord, buffer)
	s := &Subscription{C: c, c: c, h: h, q: newQuery(f, 0, noSince)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		s.err = h.err
		close(c)
		return s
	}
	s.q.afterSeq = h.next - 1
	h.subs[s] = struct{}{}
	if f.Match != nil {
		s.wake, s.quit = make(chan struct{}, 1), make(chan struct{})
		go h.pump(s, s.q)
	}
	if ctx.Done() != nil {
		s.stop = context.AfterFunc(ctx, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.closeSub(s, ctx.Err())
		})
	}
	return s
}

// pump runs a subscription's Match on a goroutine of its own: woken by
// add, it scans the history from where it left off and sends each match
// on s.c, ending s as add would (buffer full), when Match panics, or when
// events it had not scanned were evicted.
func (h *history) pump(s *Subscription, q query) {
	cands := make([]EventRecord, 0, scanChunk)
	for {
		select {
		case <-s.wake:
		case <-s.quit:
			return
		}
		for more := true; more; {
			h.mu.Lock()
			if _, live := h.subs[s]; !live {
				h.mu.Unlock()
				return
			}
			if err := h.missing(q.afterSeq, q.Types); err != nil {
				h.closeSub(s, err)
				h.mu.Unlock()
				return
			}
			cands = h.find(&q, scanChunk, cands[:0])
			horizon := h.next - 1
			h.mu.Unlock()
			for i := range cands {
				ok, err := safeMatch(q.Match, &cands[i].Event)
				if err == nil && !ok {
					continue
				}
				h.mu.Lock()
				if _, live := h.subs[s]; !live {
					h.mu.Unlock()
					return
				}
				if err != nil {
					h.closeSub(s, err)
					h.mu.Unlock()
					return
				}
				select {
				case s.c <- cands[i]:
				default:
					h.closeSub(s, &OverflowError{Seq: cands[i].Seq})
				}
				h.mu.Unlock()
			}
			if more = len(cands) == scanChunk; more {
				q.afterSeq = cands[len(cands)-1].Seq
			} else {
				q.afterSeq = horizon
			}
		}
	}
}
