package qmp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// EventRecord is an event as the history holds it. Its Data is shared with
// the history and every other reader of the event: treat it as read-only.
type EventRecord struct {
	// Seq numbers events in arrival order, from 1, without gaps. It is the
	// cursor for EventsAfter and WaitEventAfter.
	Seq uint64
	// Received is when the monitor read the event (local clock).
	Received time.Time
	Event
}

// EventFilter selects events. The zero value selects every event.
type EventFilter struct {
	// Types lists the event names wanted; empty means all.
	Types []string
	// Match, when set, must also accept the event. It runs on the reader
	// goroutine for waits and subscriptions: it must be quick and must not
	// call the Monitor.
	Match func(*Event) bool
}

// query is what every lookup and wait reduces to.
type query struct {
	EventFilter
	afterSeq uint64 // only Seq > afterSeq
	since    int64  // only QEMU timestamps >= since (µs since the epoch)
}

func (q *query) accepts(r *rec) bool {
	return r.seq > q.afterSeq && r.ev.micros() >= q.since && (q.Match == nil || q.Match(&r.ev))
}

func (q *query) wantsType(t string) bool {
	return len(q.Types) == 0 || slices.Contains(q.Types, t)
}

type rec struct {
	ev   Event
	seq  uint64
	recv int64 // UnixNano
	pmax int64 // largest QEMU timestamp (µs) of this and all earlier events
}

func (r *rec) record() EventRecord {
	return EventRecord{Seq: r.seq, Received: time.Unix(0, r.recv), Event: r.ev}
}

// size is what an event counts against Options.EventHistoryBytes.
func (r *rec) size() int { return len(r.ev.Data) + len(r.ev.Type) + 96 }

// typeIndex lists the events of one type in arrival order, each with the
// largest timestamp up to it within the type, for binary search by time.
type typeIndex struct {
	seqs []uint64
	pmax []int64
	head int
	max  int64
}

func (ti *typeIndex) live() int { return len(ti.seqs) - ti.head }

// history is the monitor's event store: a deque in arrival order, indexed
// by sequence number (position = seq - first), by type, and by time.
//
// QEMU timestamps are wall-clock and can step backwards, so the time index
// is the running maximum ("pmax"), which never decreases: every event with
// timestamp >= t lies at or after the first position whose pmax >= t. A
// binary search finds that position and a short scan filters the rest; the
// answer is exact whatever the clock did.
type history struct {
	mu       sync.Mutex
	maxN     int
	maxBytes int
	maxAge   time.Duration

	recs  []rec
	head  int
	bytes int
	next  uint64 // Seq of the next event
	max   int64  // pmax of the newest event
	types map[string]*typeIndex

	waiters map[string]map[*waiter]struct{} // by type; "" = any type
	subs    map[*Subscription]struct{}
	err     error // set when the connection ended
}

type waiter struct {
	q  query
	ch chan EventRecord // buffered 1; receives the first match
}

func newHistory(o Options) *history {
	return &history{
		maxN: o.EventHistory, maxBytes: o.EventHistoryBytes, maxAge: o.EventHistoryAge,
		next: 1, max: math.MinInt64,
		types:   make(map[string]*typeIndex),
		waiters: make(map[string]map[*waiter]struct{}),
		subs:    make(map[*Subscription]struct{}),
	}
}

// add files an event, evicts what retention requires, and hands the event
// to matching waiters and subscribers. It never blocks.
func (h *history) add(e Event, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := e.micros()
	h.max = max(h.max, ts)
	r := rec{ev: e, seq: h.next, recv: now.UnixNano(), pmax: h.max}
	h.next++
	h.recs = append(h.recs, r)
	h.bytes += r.size()
	ti := h.types[e.Type]
	if ti == nil {
		ti = &typeIndex{max: math.MinInt64}
		h.types[e.Type] = ti
	}
	ti.max = max(ti.max, ts)
	ti.seqs = append(ti.seqs, r.seq)
	ti.pmax = append(ti.pmax, ti.max)
	h.evict(now)

	for _, key := range [2]string{e.Type, ""} {
		for w := range h.waiters[key] {
			if w.q.accepts(&r) {
				h.removeWaiter(w)
				w.ch <- r.record()
			}
		}
	}
	for s := range h.subs {
		if s.q.wantsType(e.Type) && s.q.accepts(&r) {
			select {
			case s.c <- r.record():
			default:
				h.closeSub(s, &OverflowError{Seq: r.seq})
			}
		}
	}
}

func (h *history) evict(now time.Time) {
	for h.len() > 1 {
		old := &h.recs[h.head]
		if h.len() <= h.maxN && h.bytes <= h.maxBytes &&
			(h.maxAge <= 0 || now.Sub(time.Unix(0, old.recv)) <= h.maxAge) {
			break
		}
		h.bytes -= old.size()
		ti := h.types[old.ev.Type]
		ti.head++
		if ti.live() == 0 {
			delete(h.types, old.ev.Type)
		} else if ti.head >= 1024 && ti.head*2 >= len(ti.seqs) {
			ti.seqs = append(ti.seqs[:0], ti.seqs[ti.head:]...)
			ti.pmax = append(ti.pmax[:0], ti.pmax[ti.head:]...)
			ti.head = 0
		}
		*old = rec{}
		h.head++
	}
	if h.head >= 1024 && h.head*2 >= len(h.recs) {
		n := copy(h.recs, h.recs[h.head:])
		clear(h.recs[n:])
		h.recs, h.head = h.recs[:n], 0
	}
}

func (h *history) len() int { return len(h.recs) - h.head }

// at returns the record with the given Seq, which must be live.
func (h *history) at(seq uint64) *rec { return &h.recs[h.head+int(seq-h.recs[h.head].seq)] }

// find appends to out the records q selects, in arrival order, stopping
// after limit of them when limit > 0.
func (h *history) find(q *query, limit int, out []EventRecord) []EventRecord {
	if h.len() == 0 {
		return out
	}
	if len(q.Types) == 0 {
		live := h.recs[h.head:]
		i := max(h.startBySeq(q.afterSeq), sort.Search(len(live), func(i int) bool { return live[i].pmax >= q.since }))
		for ; i < len(live); i++ {
			if q.accepts(&live[i]) {
				if out = append(out, live[i].record()); limit > 0 && len(out) >= limit {
					break
				}
			}
		}
		return out
	}
	var found []EventRecord
	for k, t := range q.Types {
		ti := h.types[t]
		if ti == nil || slices.Contains(q.Types[:k], t) { // a type listed twice is searched once
			continue
		}
		seqs, pmax := ti.seqs[ti.head:], ti.pmax[ti.head:]
		i := max(sort.Search(len(seqs), func(i int) bool { return seqs[i] > q.afterSeq }),
			sort.Search(len(pmax), func(i int) bool { return pmax[i] >= q.since }))
		n := 0
		for ; i < len(seqs); i++ {
			if r := h.at(seqs[i]); q.accepts(r) {
				found = append(found, r.record())
				if n++; limit > 0 && n >= limit {
					break
				}
			}
		}
	}
	if len(q.Types) > 1 {
		slices.SortFunc(found, func(a, b EventRecord) int { return cmp.Compare(a.Seq, b.Seq) })
		if limit > 0 && len(found) > limit {
			found = found[:limit]
		}
	}
	return append(out, found...)
}

// startBySeq is the position in the live records of the first Seq > after.
func (h *history) startBySeq(after uint64) int {
	first := h.recs[h.head].seq
	if after < first {
		return 0
	}
	return min(int(after-first+1), h.len())
}

// wait returns the first record q selects, buffered or future. The lookup
// and the registration happen under one lock, so no event slips between.
func (h *history) wait(ctx context.Context, q query) (EventRecord, error) {
	h.mu.Lock()
	if r := h.find(&q, 1, nil); len(r) > 0 {
		h.mu.Unlock()
		return r[0], nil
	}
	if h.err != nil {
		h.mu.Unlock()
		return EventRecord{}, h.err
	}
	w := &waiter{q: q, ch: make(chan EventRecord, 1)}
	keys := q.Types
	if len(keys) == 0 {
		keys = []string{""}
	}
	for _, k := range keys {
		if h.waiters[k] == nil {
			h.waiters[k] = make(map[*waiter]struct{})
		}
		h.waiters[k][w] = struct{}{}
	}
	h.mu.Unlock()

	select {
	case r, ok := <-w.ch:
		if !ok {
			return EventRecord{}, h.endErr()
		}
		return r, nil
	case <-ctx.Done():
		h.mu.Lock()
		h.removeWaiter(w)
		h.mu.Unlock()
		// A match may have been handed over just as ctx ended: prefer it.
		select {
		case r, ok := <-w.ch:
			if ok {
				return r, nil
			}
		default:
		}
		return EventRecord{}, ctx.Err()
	}
}

func (h *history) removeWaiter(w *waiter) {
	keys := w.q.Types
	if len(keys) == 0 {
		keys = []string{""}
	}
	for _, k := range keys {
		delete(h.waiters[k], w)
		if len(h.waiters[k]) == 0 {
			delete(h.waiters, k)
		}
	}
}

func (h *history) endErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// end is called once when the connection ends: waits and subscriptions
// return err; lookups keep working.
func (h *history) end(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	all := make(map[*waiter]struct{})
	for _, ws := range h.waiters {
		for w := range ws {
			all[w] = struct{}{} // a waiter for several types is listed under each
		}
	}
	for w := range all {
		close(w.ch)
	}
	clear(h.waiters)
	for s := range h.subs {
		h.closeSub(s, err)
	}
}

func (h *history) lookup(q query, limit int) []EventRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.find(&q, limit, nil)
}

func (h *history) cursor() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next - 1
}

// OverflowError ends a Subscription whose reader fell behind by more than
// its buffer. Seq is the first event it did not receive; that event and
// the ones after it are still in the history (EventsAfter(Seq-1, ...)),
// unless retention has evicted them since.
type OverflowError struct {
	Seq uint64
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("qmp: event subscriber fell behind; first missed event has Seq %d", e.Seq)
}

// ErrSubscriptionClosed is Subscription.Err after Close.
var ErrSubscriptionClosed = errors.New("qmp: subscription closed")

// Subscription delivers events live, in arrival order, on C. C is closed
// when the subscription ends; Err then says why: ErrSubscriptionClosed
// (Close), ctx.Err() (its context ended), *OverflowError (the reader fell
// behind), or the monitor's *ClosedError (the connection ended).
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
}

// Close ends the subscription and frees it. It is idempotent.
func (s *Subscription) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.closeSub(s, ErrSubscriptionClosed)
}

// Err returns why C was closed, or nil while it is open.
func (s *Subscription) Err() error {
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
	if s.stop != nil {
		s.stop()
	}
}

func (h *history) subscribe(ctx context.Context, f EventFilter, buffer int) *Subscription {
	if buffer <= 0 {
		buffer = 256
	}
	c := make(chan EventRecord, buffer)
	s := &Subscription{C: c, c: c, h: h, q: query{EventFilter: f, since: math.MinInt64}}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		s.err = h.err
		close(c)
		return s
	}
	s.q.afterSeq = h.next - 1
	h.subs[s] = struct{}{}
	if ctx.Done() != nil {
		s.stop = context.AfterFunc(ctx, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.closeSub(s, ctx.Err())
		})
	}
	return s
}
