package qmp

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"
)

// noSince is query.since for "no time filter": cursor queries and
// subscriptions select by Seq only, whatever the timestamps.
const noSince = math.MinInt64

// query is what every lookup and wait reduces to.
type query struct {
	EventFilter
	afterSeq EventCursor // only Seq > afterSeq
	since    int64       // only QEMU timestamps >= since (µs since the epoch); noSince: any
}

// newQuery builds a query; a "" among f.Types means any type.
func newQuery(f EventFilter, afterSeq EventCursor, since int64) query {
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
	seq    EventCursor
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
	seqs []EventCursor
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
// No Match callback runs under mu, nor on the reader: lookups collect
// candidates under it and filter them after; add hands an event to the
// waiters and subscriptions without a Match, and only wakes the others,
// which scan the history from where they left off on their own goroutines
// (a wait's caller, a subscription's pump). An event evicted before such a
// scan reached it is reported (*OverflowError), never skipped silently.
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
	next  EventCursor // Seq of the next event
	max   int64       // pmax of the newest event
	types map[string]*typeIndex

	waiters map[string]map[*waiter]struct{} // by type; "" = any type
	subs    map[*Subscription]struct{}
	err     error // set when the connection ended

	// The Seq of the newest evicted event of each type, so that a query
	// for some types learns whether it missed one of them (missing), not
	// merely that events went. Bounded: types past maxLostTypes, and names
	// longer than maxEventNameLen, share lostOther.
	lost      map[string]EventCursor
	lostOther EventCursor
}

// maxLostTypes bounds history.lost.
const maxLostTypes = 512

type waiter struct {
	q       query
	ch      chan EventRecord // buffered 1; receives the first match (no Match), closed at the end
	wake    chan struct{}    // buffered 1; with a Match: new events to scan
	claimed bool             // guarded by history.mu: removed, ch sent to or closed
}

// safeMatch runs match, turning a panic into a *MatchPanicError.
func safeMatch(match func(*Event) bool, e *Event) (ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &MatchPanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return match(e), nil
}

// wakeUp tells a scanner that there are events to look at.
func wakeUp(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func newHistory(o Options) *history {
	return &history{
		maxN: o.EventHistory, maxBytes: o.EventHistoryBytes, maxAge: o.EventHistoryAge,
		base: time.Now(), now: time.Now,
		next: 1, max: math.MinInt64,
		types:   make(map[string]*typeIndex),
		lost:    make(map[string]EventCursor),
		waiters: make(map[string]map[*waiter]struct{}),
		subs:    make(map[*Subscription]struct{}),
	}
}

// maxEventSeconds is the largest QEMU timestamp (seconds) whose
// microseconds fit the int64 time index.
const maxEventSeconds = math.MaxInt64/1_000_000 - 1

// add files an event, evicts what retention requires, and hands the event
// to matching waiters and subscribers, or wakes those with a Match. It
// never blocks and runs no callback. One goroutine at a time calls it (the
// reader; the handshake before the reader starts).
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

	for _, key := range [2]string{e.Type, ""} {
		for w := range h.waiters[key] {
			switch {
			case !w.q.selects(&r):
			case w.q.Match != nil:
				wakeUp(w.wake)
			default:
				h.removeWaiter(w)
				w.ch <- h.record(&r)
			}
		}
	}
	for s := range h.subs {
		switch {
		case !s.q.wantsType(e.Type) || !s.q.selects(&r):
		case s.q.Match != nil:
			wakeUp(s.wake)
		default:
			h.deliver(s, &r)
		}
	}
	h.mu.Unlock()
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
	if _, ok := h.lost[ti.name]; ok || len(h.lost) < maxLostTypes && len(ti.name) <= maxEventNameLen {
		h.lost[ti.name] = old.seq
	} else {
		h.lostOther = old.seq
	}
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
func (h *history) at(seq EventCursor) *rec { return &h.recs[h.head+int(seq-h.recs[h.head].seq)] }

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
func (h *history) startBySeq(after EventCursor) int {
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
// included, running Match without h.mu held.
func (h *history) scan(q query, limit int) []EventRecord {
	var out []EventRecord
	cands := make([]EventRecord, 0, scanChunk)
	for {
		h.mu.Lock()
		h.expire()
		cands = h.find(&q, scanChunk, cands[:0])
		h.mu.Unlock()
		for i := range cands {
			if q.Match(&cands[i].Event) {
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

// missing returns an *OverflowError when events after Seq after of one
// of types (nil: any type) have been evicted, so that a lookup or wait
// from there could not see them all. h.mu is held.
func (h *history) missing(after EventCursor, types []string) error {
	oldest := h.next
	if h.len() > 0 {
		oldest = h.recs[h.head].seq
	}
	if after+1 >= oldest {
		return nil
	}
	lost := len(types) == 0 || h.lostOther > after
	for _, t := range types {
		lost = lost || h.lost[t] > after
	}
	if lost {
		return &OverflowError{Seq: after + 1, Oldest: oldest}
	}
	return nil
}

// evictedAfter reports whether events after cursor that types select
// have been evicted.
func (h *history) evictedAfter(cursor EventCursor, types []string) error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	return h.missing(cursor, types)
}

// lookupChecked returns the buffered records q selects, and an
// *OverflowError when some it would have selected were evicted before the
// lookup reached them.
func (h *history) lookupChecked(q query) ([]EventRecord, error) {
	if h == nil {
		return nil, nil
	}
	var out []EventRecord
	var lost error
	cands := make([]EventRecord, 0, scanChunk)
	for {
		h.mu.Lock()
		h.expire()
		if lost == nil {
			lost = h.missing(q.afterSeq, q.Types)
		}
		if q.Match == nil {
			out = h.find(&q, 0, out)
			h.mu.Unlock()
			return out, lost
		}
		cands = h.find(&q, scanChunk, cands[:0])
		h.mu.Unlock()
		for i := range cands {
			if q.Match(&cands[i].Event) {
				out = append(out, cands[i])
			}
		}
		if len(cands) < scanChunk {
			return out, lost
		}
		q.afterSeq = cands[len(cands)-1].Seq
	}
}

// wait returns the first record q selects, buffered or future. The waiter
// is registered, under the same hold of h.mu that fixes the horizon
// (h.next), before the buffered events are looked at: events from the
// horizon on reach it through add, events before it through the lookup,
// so none slips between and each is considered once. A wait from a cursor
// whose next events were evicted fails with an *OverflowError; one whose
// ctx has already ended returns ctx.Err(), even with a match buffered.
func (h *history) wait(ctx context.Context, q query) (EventRecord, error) {
	if h == nil {
		return EventRecord{}, closedError(nil, errNeverConnected) // the zero Monitor's
	}
	if err := ctx.Err(); err != nil {
		return EventRecord{}, err // a caller that has given up gets no answer, buffered or not
	}
	h.mu.Lock()
	h.expire()
	if q.since == noSince {
		if err := h.missing(q.afterSeq, q.Types); err != nil {
			h.mu.Unlock()
			return EventRecord{}, err
		}
	}
	if q.Match == nil {
		if r := h.find(&q, 1, nil); len(r) > 0 {
			h.mu.Unlock()
			return r[0], nil
		}
	}
	w := &waiter{q: q, ch: make(chan EventRecord, 1)}
	if q.Match != nil {
		w.wake = make(chan struct{}, 1)
	}
	ended := h.err
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
		return h.waitMatch(ctx, w, ended)
	}
	if ended != nil {
		return EventRecord{}, ended
	}

	blocking("event wait")
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

// waitMatch is wait for a query with a Match, which runs here, on the
// waiting goroutine: it scans what is buffered from the query's start,
// then again from where it stopped each time add wakes it, until a match,
// an error, the end of ctx or of the connection (after a last scan).
func (h *history) waitMatch(ctx context.Context, w *waiter, ended error) (EventRecord, error) {
	defer func() {
		h.mu.Lock()
		if !w.claimed {
			h.removeWaiter(w)
		}
		h.mu.Unlock()
	}()
	q := w.q
	for strict := q.since == noSince; ; strict = true {
		r, found, err := h.scanOnce(&q, strict)
		if found || err != nil {
			return r, err
		}
		if ended != nil {
			return EventRecord{}, ended
		}
		blocking("event wait")
		select {
		case <-w.wake:
		case <-w.ch: // closed: the connection ended; scan what came before
			ended = h.endErr()
		case <-ctx.Done():
			return EventRecord{}, ctx.Err()
		}
	}
}

// scanOnce looks at the records q selects that are buffered now, Match
// included, and returns the first match; it advances q.afterSeq past what
// it looked at. strict makes evicted records after q.afterSeq an error.
func (h *history) scanOnce(q *query, strict bool) (EventRecord, bool, error) {
	cands := make([]EventRecord, 0, scanChunk)
	for {
		h.mu.Lock()
		h.expire()
		if strict {
			if err := h.missing(q.afterSeq, q.Types); err != nil {
				h.mu.Unlock()
				return EventRecord{}, false, err
			}
		}
		cands = h.find(q, scanChunk, cands[:0])
		horizon := h.next - 1
		h.mu.Unlock()
		for i := range cands {
			ok, err := safeMatch(q.Match, &cands[i].Event)
			if err != nil || ok {
				return cands[i], err == nil, err
			}
		}
		if len(cands) < scanChunk {
			q.afterSeq = horizon
			return EventRecord{}, false, nil
		}
		q.afterSeq = cands[len(cands)-1].Seq
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
	if h == nil {
		return nil
	}
	if q.Match != nil {
		return h.scan(q, limit)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	return h.find(&q, limit, nil)
}

func (h *history) cursor() EventCursor {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next - 1
}
