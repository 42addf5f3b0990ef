package qmp

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"
)

// histEvent builds an event of type typ stamped at micros µs since the epoch.
func histEvent(typ string, micros int64, n int) Event {
	e := Event{Type: typ, Data: []byte(fmt.Sprintf(`{"n": %d}`, n))}
	e.Timestamp.Seconds, e.Timestamp.Microseconds = uint64(micros/1e6), uint64(micros%1e6)
	return e
}

func histSeqs(rs []EventRecord) []uint64 {
	out := []uint64{}
	for _, r := range rs {
		out = append(out, uint64(r.Seq))
	}
	return out
}

func TestHistoryAgeEviction(t *testing.T) {
	h := newHistory(Options{EventHistory: 1000, EventHistoryBytes: 1 << 20, EventHistoryAge: 10 * time.Second})
	t0 := time.Unix(1700000000, 0)
	clock := t0
	h.now = func() time.Time { return clock }
	all := query{since: noSince}
	for i := 0; i < 10; i++ {
		h.add(histEvent("A", 1, i), t0.Add(time.Duration(i)*time.Second))
	}
	clock = t0.Add(9 * time.Second)
	if got := histSeqs(h.lookup(all, 0)); len(got) != 10 {
		t.Fatalf("within the age bound: %v, want all 10", got)
	}
	// At t0+15s the events received before t0+5s are older than 10s; the
	// one received exactly 10s earlier is kept (the bound is inclusive).
	clock = t0.Add(15 * time.Second)
	h.add(histEvent("A", 1, 10), clock)
	if got := histSeqs(h.lookup(all, 0)); !slices.Equal(got, []uint64{6, 7, 8, 9, 10, 11}) {
		t.Fatalf("after adding at t0+15s: %v, want Seq 6..11", got)
	}
	// A lookup evicts too, without a new event, and the newest goes as
	// well once it is older than the bound.
	clock = t0.Add(19 * time.Second)
	if got := histSeqs(h.lookup(all, 0)); !slices.Equal(got, []uint64{10, 11}) {
		t.Fatalf("looked up at t0+19s: %v, want Seq 10, 11", got)
	}
	clock = t0.Add(time.Hour)
	if got := histSeqs(h.lookup(all, 0)); len(got) != 0 {
		t.Fatalf("looked up an hour later: %v, want none", got)
	}
	if _, ok := h.types["A"]; ok {
		t.Fatalf("type index of the evicted type A is still there")
	}
	if h.cursor() != 11 {
		t.Fatalf("cursor = %d, want 11 (eviction does not move it)", h.cursor())
	}
	h.add(histEvent("B", 1, 11), clock)
	if got := histSeqs(h.lookup(all, 0)); !slices.Equal(got, []uint64{12}) {
		t.Fatalf("after adding an hour later: %v, want just Seq 12", got)
	}
	// Waits evict as well: the aged event is not an answer, and a wait from
	// a cursor before it says that it was evicted.
	clock = t0.Add(2 * time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	var oe *OverflowError
	if r, err := h.wait(ctx, query{since: noSince, EventFilter: EventFilter{Types: []string{"B"}}}); !errors.As(err, &oe) || oe.Seq != 1 || oe.Oldest != 13 {
		t.Fatalf("wait from cursor 0 for an aged-out event = %+v, %v; want *OverflowError{Seq: 1, Oldest: 13}", r, err)
	}
	if r, err := h.wait(ctx, query{since: noSince, afterSeq: 12, EventFilter: EventFilter{Types: []string{"B"}}}); err != context.DeadlineExceeded {
		t.Fatalf("wait from the newest cursor = %+v, %v; want context.DeadlineExceeded", r, err)
	}
}

// Age is measured on the monotonic clock, so a wall-clock step does not age
// events: the history keeps monotonic offsets, and Received carries a
// monotonic reading (time.Time prints it as "m=...").
func TestHistoryAgeMonotonic(t *testing.T) {
	h := newHistory(Options{EventHistory: 10, EventHistoryBytes: 1 << 20, EventHistoryAge: time.Minute})
	now := time.Now()
	h.add(histEvent("A", 1, 0), now)
	r := h.lookup(query{since: noSince}, 0)
	if len(r) != 1 {
		t.Fatalf("fresh event not found: %v", r)
	}
	// Received keeps a monotonic reading, so it compares on that clock.
	if d := r[0].Received.Sub(now); d < 0 || d > time.Second {
		t.Fatalf("Received - add time = %v, want ~0", d)
	}
	if !strings.Contains(r[0].Received.String(), " m=") {
		t.Fatalf("Received %v carries no monotonic reading", r[0].Received)
	}
}

// Long runs with eviction compact the deque and the type indexes; lookups
// must stay exact across compactions and with a clock that steps back.
func TestHistoryCompactionStaysExact(t *testing.T) {
	h := newHistory(Options{EventHistory: 700, EventHistoryBytes: 1 << 30})
	rng := rand.New(rand.NewSource(2))
	type added struct {
		seq    uint64
		typ    string
		micros int64
	}
	var all []added
	now := time.Unix(1700000000, 0)
	base := int64(1700000000) * 1e6
	types := []string{"A", "B", "C", "RARE"}
	for i := 0; i < 6000; i++ {
		typ := types[rng.Intn(3)]
		if i%97 == 0 {
			typ = "RARE"
		}
		micros := base + int64(i)*1000 - int64(rng.Intn(3))*rng.Int63n(5000)
		h.add(histEvent(typ, micros, i), now)
		all = append(all, added{uint64(i + 1), typ, micros})

		if i%500 != 499 {
			continue
		}
		live := all[max(0, len(all)-700):]
		if h.len() != len(live) || len(h.recs) > 2*700+1024 {
			t.Fatalf("after %d events: %d live (want %d), deque length %d", i+1, h.len(), len(live), len(h.recs))
		}
		for _, typ := range types {
			if ti := h.types[typ]; ti != nil && len(ti.seqs) > 2*700+1024 {
				t.Fatalf("type index %s holds %d entries", typ, len(ti.seqs))
			}
		}
		for k := 0; k < 40; k++ {
			since := base + int64(i-800+rng.Intn(820))*1000
			afterSeq := uint64(max(0, i-800+rng.Intn(820)))
			f := []string{types[rng.Intn(4)]}
			switch rng.Intn(3) {
			case 0:
				f = nil
			case 1:
				f = append(f, types[rng.Intn(4)])
			}
			var want []uint64
			for _, a := range live {
				if a.seq > afterSeq && a.micros >= since && (f == nil || slices.Contains(f, a.typ)) {
					want = append(want, a.seq)
				}
			}
			q := query{EventFilter: EventFilter{Types: f}, since: since, afterSeq: EventCursor(afterSeq)}
			if got := histSeqs(h.lookup(q, 0)); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("after %d events, types %v, since %d, after Seq %d: got %v, want %v", i+1, f, since, afterSeq, got, want)
			}
			if len(want) > 0 {
				if got := histSeqs(h.lookup(q, 1)); !slices.Equal(got, want[:1]) {
					t.Fatalf("limit 1: got %v, want %v", got, want[:1])
				}
			}
		}
	}
}

// A wait that ends by its context, and a subscription that is closed, leave
// nothing registered in the history.
func TestHistoryNoLeftoverRegistrations(t *testing.T) {
	h := newHistory(Options{EventHistory: 10, EventHistoryBytes: 1 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := h.wait(ctx, query{EventFilter: EventFilter{Types: []string{"X", "Y"}}}); err != context.DeadlineExceeded {
		t.Fatalf("wait = %v, want context.DeadlineExceeded", err)
	}
	if _, err := h.wait(ctx, query{}); err != context.DeadlineExceeded {
		t.Fatalf("wildcard wait = %v, want context.DeadlineExceeded", err)
	}
	sub := h.subscribe(context.Background(), EventFilter{}, 1)
	sub.Close()
	sctx, scancel := context.WithCancel(context.Background())
	sub2 := h.subscribe(sctx, EventFilter{}, 1)
	scancel()
	for range sub2.C {
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.waiters) != 0 || len(h.subs) != 0 {
		t.Fatalf("left registered: %d waiter types, %d subscriptions", len(h.waiters), len(h.subs))
	}
}

// A waiter listed under several types is woken once and removed from all.
func TestHistoryMultiTypeWaiter(t *testing.T) {
	h := newHistory(Options{EventHistory: 10, EventHistoryBytes: 1 << 20})
	// The buffered X is offered to the waiter's Match in the lookup that
	// shares one lock hold with the registration: once Match has seen it,
	// the waiter is registered as far as any later add is concerned.
	h.add(Event{Type: "X"}, time.Now())
	seen := make(chan struct{})
	got := make(chan EventRecord, 1)
	go func() {
		r, _ := h.wait(context.Background(), query{EventFilter: EventFilter{Types: []string{"X", "Y"}, Match: func(e *Event) bool {
			if e.Type == "X" {
				select {
				case <-seen:
				default:
					close(seen)
				}
			}
			return e.Type == "Y"
		}}})
		got <- r
	}()
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatalf("waiter never looked at the buffered event")
	}
	h.mu.Lock()
	nx, ny := len(h.waiters["X"]), len(h.waiters["Y"])
	h.mu.Unlock()
	if nx != 1 || ny != 1 {
		t.Fatalf("waiter registered under X %d times, Y %d times; want once each", nx, ny)
	}
	h.add(Event{Type: "X"}, time.Now())
	h.add(Event{Type: "Y"}, time.Now())
	select {
	case r := <-got:
		if r.Type != "Y" || r.Seq != 3 {
			t.Fatalf("woken with %s Seq %d, want Y Seq 3", r.Type, r.Seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("multi-type waiter not woken by Y")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.waiters) != 0 {
		t.Fatalf("waiter still registered under %d types", len(h.waiters))
	}
}

// A pending wait returns the connection's error when it ends; one started
// afterwards still gets a buffered match.
func TestHistoryEnd(t *testing.T) {
	h := newHistory(Options{EventHistory: 10, EventHistoryBytes: 1 << 20})
	h.add(Event{Type: "KEPT"}, time.Now())
	seen := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := h.wait(context.Background(), query{EventFilter: EventFilter{Types: []string{"KEPT"}, Match: func(*Event) bool {
			select {
			case <-seen:
			default:
				close(seen)
			}
			return false
		}}})
		errc <- err
	}()
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatalf("waiter never looked at the buffered event")
	}
	end := &ClosedError{}
	h.end(end)
	select {
	case err := <-errc:
		if err != end {
			t.Fatalf("pending wait returned %v, want the end error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("pending wait not released by end")
	}
	if r, err := h.wait(context.Background(), query{EventFilter: EventFilter{Types: []string{"KEPT"}}}); err != nil || r.Seq != 1 {
		t.Fatalf("wait for a buffered event after end = %+v, %v", r, err)
	}
}
