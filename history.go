package qmp

import (
	"cmp"
	"context"
	"encoding/json"
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
	// Received is when the monitor read the event: the monitor's start time
	// plus the time elapsed since on the monotonic clock, so a step of the
	// wall clock neither reorders nor ages events.
	Received time.Time
	Event
}

// EventFilter selects events. The zero value selects every event.
type EventFilter struct {
	// Types lists the event names wanted; empty means all. An empty name
	// ("") in the list also means all types, in waits, lookups and
	// subscriptions alike, as t == "" does in the v2.0.4 calls.
	Types []string
	// Match, when set, must also accept the event. For waits and
	// subscriptions it runs on the reader goroutine, so it must be quick and
	// must not wait for events or replies; it runs with no lock held, so it
	// may call the Monitor's lookups (EventCursor, FindEvents, EventsAfter).
	// One filter's Match is never called concurrently with itself by one
	// wait or subscription. The *Event it gets is valid only during the
	// call; its Data is shared and read-only. (WaitEvent's match takes an
	// Event value, v2.0.4's signature, and is called the same way.)
	Match func(*Event) bool
}

// noSince is query.since for "no time filter": cursor queries and
// subscriptions select by Seq only, whatever the timestamps.
const noSince = math.MinInt64

// query is what every lookup and wait reduces to.
type query struct {
	EventFilter
	afterSeq uint64 // only Seq > afterSeq
	since    int64  // only QEMU timestamps >= since (µs since the epoch); noSince: any
}

// newQuery builds a query; a "" among f.Types means any type.
func newQuery(f EventFilter, afterSeq uint64, since int64) query {
	if slices.Contains(f.Types, "") {
		f.Types = nil
	}
	return query{EventFilter: f, afterSeq: afterSeq, since: since}
}

// selects applies the sequence and time bounds, not the type or Match.
func (q *query) selects(r *rec) bool {
	return r.seq > q.afterSeq && (q.since == noSince || r.micros >= q.since)
}

func (q *query) wantsType(t string) bool {
	return len(q.Types) == 0 || slices.Contains(q.Types, t)
}

// rec is an event as the history stores it: 64 bytes beside its data (an
// Event value and its Seq would take 80), as a long history holds many.
type rec struct {
	data   json.RawMessage
	ti     *typeIndex // the event's type (ti.name) and its index
	micros int64      // QEMU's timestamp, µs since the epoch (add normalises it)
	seq    uint64
	mono   int64 // when it was received: ns since history.base, monotonic
	pmax   int64 // largest QEMU timestamp (µs) of this and all earlier events
}

func (r *rec) event() Event {
	e := Event{Type: r.ti.name, Data: r.data}
	e.Timestamp.Seconds, e.Timestamp.Microseconds = uint64(r.micros/1e6), uint64(r.micros%1e6)
	return e
}

func (h *history) record(r *rec) EventRecord {
	return EventRecord{Seq: r.seq, Received: h.base.Add(time.Duration(r.mono)), Event: r.event()}
}

// size is what an event counts against Options.EventHistoryBytes.
func (r *rec) size() int { return len(r.data) + len(r.ti.name) + 96 }

// typeIndex lists the Seqs of one type's events in arrival order. A
// lookup by type and time finds its start in the records' pmax and then
// here by Seq, so the index costs 8 bytes an event.
type typeIndex struct {
	name string
	seqs []uint64
	head int
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
//
// No Match callback runs under mu: lookups collect candidates under it and
// filter them after; add hands an event to the waiters and subscriptions
// without a Match under mu, runs the others' Match after releasing it, and
// takes it again to deliver.
type history struct {
	mu       sync.Mutex
	maxN     int
	maxBytes int
	maxAge   time.Duration
	base     time.Time        // rec.mono is measured from here (monotonic clock)
	now      func() time.Time // the clock of lookups' age eviction (tests replace it)

	recs  []rec
	head  int
	bytes int
	next  uint64 // Seq of the next event
	max   int64  // pmax of the newest event
	types map[string]*typeIndex

	waiters map[string]map[*waiter]struct{} // by type; "" = any type
	subs    map[*Subscription]struct{}
	err     error // set when the connection ended

	// add's scratch lists of waiters and subscriptions whose Match is to
	// run outside mu; only add uses them (one goroutine at a time).
	matchW []*waiter
	matchS []*Subscription
}

type waiter struct {
	q       query
	ch      chan EventRecord // buffered 1; receives the first match
	claimed bool             // guarded by history.mu: removed, ch sent to or closed
	matchMu sync.Mutex       // serialises q.Match between the reader and the waiter's scan
}

func (w *waiter) match(e *Event) bool {
	w.matchMu.Lock()
	defer w.matchMu.Unlock()
	return w.q.Match(e)
}

func newHistory(o Options) *history {
	return &history{
		maxN: o.EventHistory, maxBytes: o.EventHistoryBytes, maxAge: o.EventHistoryAge,
		base: time.Now(), now: time.Now,
		next: 1, max: math.MinInt64,
		types:   make(map[string]*typeIndex),
		waiters: make(map[string]map[*waiter]struct{}),
		subs:    make(map[*Subscription]struct{}),
	}
}

// maxEventSeconds is the largest QEMU timestamp (seconds) whose
// microseconds fit the int64 time index.
const maxEventSeconds = math.MaxInt64/1_000_000 - 1

// add files an event, evicts what retention requires, and hands the event
// to matching waiters and subscribers. It never blocks, except on Match
// callbacks. One goroutine at a time calls it (the reader; the handshake
// before the reader starts).
//
// An event whose timestamp does not fit the index (seconds beyond
// maxEventSeconds or microseconds >= 1e6) is stamped with its arrival
// time, as for QEMU's -1.
func (h *history) add(e Event, now time.Time) {
	if e.Timestamp.Seconds > maxEventSeconds || e.Timestamp.Microseconds >= 1e6 {
		e.Timestamp.Seconds, e.Timestamp.Microseconds = uint64(now.Unix()), uint64(now.Nanosecond()/1000)
	}
	h.mu.Lock()
	ts := e.micros()
	h.max = max(h.max, ts)
	ti := h.types[e.Type]
	if ti == nil {
		ti = &typeIndex{name: e.Type}
		h.types[e.Type] = ti
	}
	r := rec{data: e.Data, ti: ti, micros: ts, seq: h.next, mono: int64(now.Sub(h.base)), pmax: h.max}
	h.next++
	h.recs = append(h.recs, r)
	h.bytes += r.size()
	ti.seqs = append(ti.seqs, r.seq)
	h.evict(now)
	if len(h.waiters) == 0 && len(h.subs) == 0 {
		h.mu.Unlock()
		return
	}

	mw, ms := h.matchW[:0], h.matchS[:0]
	for _, key := range [2]string{e.Type, ""} {
		for w := range h.waiters[key] {
			if !w.q.selects(&r) {
				continue
			}
			if w.q.Match != nil {
				mw = append(mw, w)
				continue
			}
			h.removeWaiter(w)
			w.ch <- h.record(&r)
		}
	}
	for s := range h.subs {
		if !s.q.wantsType(e.Type) || !s.q.selects(&r) {
			continue
		}
		if s.q.Match != nil {
			ms = append(ms, s)
			continue
		}
		h.deliver(s, &r)
	}
	if len(mw) == 0 && len(ms) == 0 {
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()

	// Match callbacks, with no lock held: they may call the Monitor.
	var ev Event
	mw = slices.DeleteFunc(mw, func(w *waiter) bool { ev = r.event(); return !w.match(&ev) })
	ms = slices.DeleteFunc(ms, func(s *Subscription) bool { ev = r.event(); return !s.q.Match(&ev) })

	h.mu.Lock()
	for _, w := range mw {
		if !w.claimed { // not cancelled, ended or served meanwhile
			h.removeWaiter(w)
			w.ch <- h.record(&r)
		}
	}
	for _, s := range ms {
		if _, ok := h.subs[s]; ok {
			h.deliver(s, &r)
		}
	}
	h.mu.Unlock()
	clear(mw[:cap(mw)])
	clear(ms[:cap(ms)])
	h.matchW, h.matchS = mw[:0], ms[:0]
}

// deliver sends r to s, ending s when its buffer is full. h.mu is held.
func (h *history) deliver(s *Subscription, r *rec) {
	select {
	case s.c <- h.record(r):
	default:
		h.closeSub(s, &OverflowError{Seq: r.seq})
	}
}

// evict drops what retention requires at time now: the oldest events
// beyond the count and bytes bounds (always keeping the newest), and every
// event older than maxAge (the newest too).
func (h *history) evict(now time.Time) {
	for h.len() > 1 && (h.len() > h.maxN || h.bytes > h.maxBytes) {
		h.dropOldest()
	}
	if h.maxAge > 0 {
		cutoff := int64(now.Sub(h.base) - h.maxAge)
		for h.len() > 0 && h.recs[h.head].mono < cutoff {
			h.dropOldest()
		}
	}
	if h.head >= 1024 && h.head*2 >= len(h.recs) {
		n := copy(h.recs, h.recs[h.head:])
		clear(h.recs[n:])
		h.recs, h.head = h.recs[:n], 0
	}
}

// expire applies the age bound before a lookup or wait.
func (h *history) expire() {
	if h.maxAge > 0 {
		h.evict(h.now())
	}
}

func (h *history) dropOldest() {
	old := &h.recs[h.head]
	h.bytes -= old.size()
	ti := old.ti
	ti.head++
	if ti.live() == 0 {
		delete(h.types, ti.name)
	} else if ti.head >= 1024 && ti.head*2 >= len(ti.seqs) {
		ti.seqs = append(ti.seqs[:0], ti.seqs[ti.head:]...)
		ti.head = 0
	}
	*old = rec{}
	h.head++
}

func (h *history) len() int { return len(h.recs) - h.head }

// at returns the record with the given Seq, which must be live.
func (h *history) at(seq uint64) *rec { return &h.recs[h.head+int(seq-h.recs[h.head].seq)] }

// find appends to out the records q's types, sequence and time bounds
// select, in arrival order, stopping after limit of them when limit > 0.
// It ignores q.Match (callers run it without h.mu). h.mu is held.
func (h *history) find(q *query, limit int, out []EventRecord) []EventRecord {
	live := h.recs[h.head:]
	if len(live) == 0 {
		return out
	}
	// Everything q selects lies at or after start: past afterSeq, and at or
	// after the first record whose pmax reaches since.
	start := h.startBySeq(q.afterSeq)
	if q.since != noSince {
		start = max(start, sort.Search(len(live), func(i int) bool { return live[i].pmax >= q.since }))
	}
	if start == len(live) {
		return out
	}
	if len(q.Types) == 0 {
		for i := start; i < len(live); i++ {
			if q.selects(&live[i]) {
				if out = append(out, h.record(&live[i])); limit > 0 && len(out) >= limit {
					break
				}
			}
		}
		return out
	}
	after := live[start].seq - 1
	base := len(out)
	for k, t := range q.Types {
		ti := h.types[t]
		if ti == nil || slices.Contains(q.Types[:k], t) { // a type listed twice is searched once
			continue
		}
		seqs := ti.seqs[ti.head:]
		i := sort.Search(len(seqs), func(i int) bool { return seqs[i] > after })
		n := 0
		for ; i < len(seqs); i++ {
			if r := h.at(seqs[i]); q.selects(r) {
				out = append(out, h.record(r))
				if n++; limit > 0 && n >= limit {
					break
				}
			}
		}
	}
	if len(q.Types) > 1 {
		found := out[base:]
		slices.SortFunc(found, func(a, b EventRecord) int { return cmp.Compare(a.Seq, b.Seq) })
		if limit > 0 && len(found) > limit {
			clear(found[limit:])
			out = out[:base+limit]
		}
	}
	return out
}

// startBySeq is the position in the live records of the first Seq > after.
func (h *history) startBySeq(after uint64) int {
	first := h.recs[h.head].seq
	if after < first {
		return 0
	}
	return min(int(after-first+1), h.len())
}

// scanChunk is how many candidates a filtered lookup collects per hold of
// h.mu before running Match on them without it.
const scanChunk = 64

// scan returns up to limit (0: all) records that q selects, Match
// included, with Seq < before (0: no bound), running Match without h.mu
// held. match runs q.Match (a waiter serialises it).
func (h *history) scan(q query, limit int, before uint64, match func(*Event) bool) []EventRecord {
	var out []EventRecord
	cands := make([]EventRecord, 0, scanChunk)
	for {
		h.mu.Lock()
		h.expire()
		cands = h.find(&q, scanChunk, cands[:0])
		h.mu.Unlock()
		for i := range cands {
			if before != 0 && cands[i].Seq >= before {
				return out
			}
			if match(&cands[i].Event) {
				if out = append(out, cands[i]); limit > 0 && len(out) >= limit {
					return out
				}
			}
		}
		if len(cands) < scanChunk {
			return out
		}
		q.afterSeq = cands[len(cands)-1].Seq
	}
}

// wait returns the first record q selects, buffered or future. The waiter
// is registered, under the same hold of h.mu that fixes the horizon
// (h.next), before the buffered events are looked at: events from the
// horizon on reach it through add, events before it through the lookup,
// so none slips between and each is considered once.
func (h *history) wait(ctx context.Context, q query) (EventRecord, error) {
	h.mu.Lock()
	h.expire()
	if q.Match == nil {
		if r := h.find(&q, 1, nil); len(r) > 0 {
			h.mu.Unlock()
			return r[0], nil
		}
	}
	w := &waiter{q: q, ch: make(chan EventRecord, 1)}
	horizon, ended := h.next, h.err
	if ended == nil {
		for _, k := range waiterKeys(&q) {
			if h.waiters[k] == nil {
				h.waiters[k] = make(map[*waiter]struct{})
			}
			h.waiters[k][w] = struct{}{}
		}
	}
	h.mu.Unlock()

	if q.Match != nil {
		if r := h.scan(q, 1, horizon, w.match); len(r) > 0 {
			// The earliest match: one add may have handed w a later one
			// meanwhile, which stays in the history.
			h.mu.Lock()
			if !w.claimed && ended == nil {
				h.removeWaiter(w)
			}
			h.mu.Unlock()
			return r[0], nil
		}
	}
	if ended != nil {
		return EventRecord{}, ended
	}

	select {
	case r, ok := <-w.ch:
		if !ok {
			return EventRecord{}, h.endErr()
		}
		return r, nil
	case <-ctx.Done():
		h.mu.Lock()
		if !w.claimed {
			h.removeWaiter(w)
		}
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

func waiterKeys(q *query) []string {
	if len(q.Types) == 0 {
		return []string{""}
	}
	return q.Types
}

// removeWaiter unregisters w and marks it claimed. h.mu is held.
func (h *history) removeWaiter(w *waiter) {
	w.claimed = true
	for _, k := range waiterKeys(&w.q) {
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
		w.claimed = true
		close(w.ch)
	}
	clear(h.waiters)
	for s := range h.subs {
		h.closeSub(s, err)
	}
}

// lookup returns up to limit (0: all) buffered records q selects.
func (h *history) lookup(q query, limit int) []EventRecord {
	if q.Match != nil {
		return h.scan(q, limit, 0, q.Match)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
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
	if ctx.Done() != nil {
		s.stop = context.AfterFunc(ctx, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.closeSub(s, ctx.Err())
		})
	}
	return s
}
