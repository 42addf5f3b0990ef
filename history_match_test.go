package qmp_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// A Match that calls the Monitor must not deadlock: callbacks run with no
// lock held, in waits, subscriptions and lookups alike.
func TestMatchMayCallMonitor(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SendEvent("BUFFERED", evNum{0})
	evSync(t, m)
	reentrant := func(e *qmp.Event) bool {
		_ = m.EventCursor()
		m.FindEvents("", 0)
		m.EventsAfter(0, qmp.EventFilter{Types: []string{"BUFFERED"}})
		return e.Type == "WANTED"
	}
	f := qmp.EventFilter{Match: reentrant}

	// A lookup whose Match calls the Monitor.
	lookup := make(chan int, 1)
	go func() { lookup <- len(m.EventsAfter(0, f)) }()
	if n := evRecv(t, lookup, "EventsAfter with a re-entrant Match"); n != 0 {
		t.Fatalf("EventsAfter = %d events, want none", n)
	}

	cur := m.EventCursor()
	sub := m.Subscribe(ctxT(t, 10*time.Second), f, 4)
	defer sub.Close()
	type res struct {
		r   qmp.EventRecord
		err error
	}
	waited := make(chan res, 1)
	go func() {
		r, err := m.WaitEventAfter(ctxT(t, 10*time.Second), 0, f)
		waited <- res{r, err}
	}()
	s.SendEvent("OTHER", evNum{1})
	s.SendEvent("WANTED", evNum{2})
	w := evRecv(t, waited, "WaitEventAfter with a re-entrant Match")
	if w.err != nil || w.r.Type != "WANTED" || w.r.Seq != cur+2 {
		t.Fatalf("WaitEventAfter = %+v, %v; want WANTED Seq %d", w.r, w.err, cur+2)
	}
	rec := evRecv(t, sub.C, "subscription with a re-entrant Match")
	if rec.Type != "WANTED" || rec.Seq != cur+2 {
		t.Fatalf("subscription got %s Seq %d, want WANTED Seq %d", rec.Type, rec.Seq, cur+2)
	}
	// And Close is not held up.
	done := make(chan struct{})
	go func() { m.Close(); close(done) }()
	evRecv(t, done, "Close after re-entrant Matches")
}

// Many waits with Match callbacks, each for one event of a stream that
// runs while they register: each gets exactly its own event, none is
// missed, whether it was buffered when the wait began or not.
func TestMatchWaitersNoLostWakeups(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	const n = 200
	cur := m.EventCursor()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var busy sync.Mutex
			f := qmp.EventFilter{Types: []string{"", "STREAM"}, Match: func(e *qmp.Event) bool {
				if !busy.TryLock() {
					panic("a waiter's Match ran concurrently with itself")
				}
				defer busy.Unlock()
				return evN(t, e) == i
			}}
			r, err := m.WaitEventAfter(ctxT(t, 10*time.Second), cur, f)
			if err == nil && (r.Seq != cur+qmp.EventCursor(i)+1 || evN(t, &r.Event) != i) {
				err = fmt.Errorf("waiter %d got Seq %d n=%d, want Seq %d", i, r.Seq, evN(t, &r.Event), cur+qmp.EventCursor(i)+1)
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		s.SendEvent("STREAM", evNum{i})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// Timestamps beyond the microsecond index (18 digits pass QEMU's integer
// syntax) are stamped with the arrival time, and no later lookup or wait
// misses anything because of them; cursor queries ignore timestamps.
func TestEventTimestampOverflow(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	cur := m.EventCursor()
	before := time.Now().Add(-time.Second)
	s.SendEventAt("FUTURE", nil, 9300000000000, 0)
	s.SendEventAt("BADUSEC", nil, 1700000000, 5000000)
	s.SendEventAt("NOCLOCK", nil, -1, -1)
	s.SendEvent("LATER", nil)
	evSync(t, m)
	recs := m.EventsAfter(cur, qmp.EventFilter{})
	if got := qemuEventTypes(recs); fmt.Sprint(got) != "[FUTURE BADUSEC NOCLOCK LATER]" {
		t.Fatalf("EventsAfter = %v, want all four", got)
	}
	for _, r := range recs[:3] {
		if r.Time().Before(before) || r.Time().After(time.Now()) {
			t.Errorf("%s timestamp = %v, want the arrival time", r.Type, r.Time())
		}
	}
	if r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), cur+3, qmp.EventFilter{}); err != nil || r.Type != "LATER" {
		t.Fatalf("WaitEventAfter past the odd timestamps = %+v, %v; want LATER", r, err)
	}
	if evs, ok := m.FindEvents("LATER", uint64(before.Unix())); !ok || len(evs) != 1 {
		t.Fatalf("FindEvents(LATER) = %v, want the event", evs)
	}
	if evs, _ := m.FindEvents("", uint64(before.Unix())); len(evs) != 4 {
		t.Fatalf("FindEvents(\"\", recent) = %d events, want 4", len(evs))
	}
	// A seconds bound beyond the index selects nothing, without overflow.
	if evs, ok := m.FindEvents("", 1<<63); ok {
		t.Fatalf("FindEvents(\"\", 2^63) = %v, want none", evs)
	}
}

// EventFilter{Types: []string{""}} means any type, in lookups as in waits
// and subscriptions.
func TestEventFilterEmptyTypeMeansAny(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	cur := m.EventCursor()
	any := qmp.EventFilter{Types: []string{""}}
	sub := m.Subscribe(ctxT(t, 5*time.Second), any, 4)
	defer sub.Close()
	s.SendEvent("A", nil)
	evSync(t, m)
	if recs := m.EventsAfter(cur, any); len(recs) != 1 || recs[0].Type != "A" {
		t.Fatalf("EventsAfter(Types [\"\"]) = %v, want A", qemuEventTypes(recs))
	}
	if recs := m.EventsSince(time.Unix(0, 0), any); len(recs) != 1 {
		t.Fatalf("EventsSince(Types [\"\"]) = %v, want A", qemuEventTypes(recs))
	}
	if r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), cur, any); err != nil || r.Type != "A" {
		t.Fatalf("WaitEventAfter(Types [\"\"]) = %+v, %v; want A", r, err)
	}
	if r := evRecv(t, sub.C, "subscription with Types [\"\"]"); r.Type != "A" {
		t.Fatalf("subscription got %s, want A", r.Type)
	}
}

// Waits take a nil ctx as context.Background().
func TestWaitsAcceptNilCtx(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	cur := m.EventCursor()
	s.SendEvent("X", nil)
	//lint:ignore SA1012 a nil ctx is documented to mean context.Background()
	if r, err := m.WaitEventAfter(nil, cur, qmp.EventFilter{}); err != nil || r.Type != "X" {
		t.Fatalf("WaitEventAfter(nil ctx) = %+v, %v", r, err)
	}
	//lint:ignore SA1012 a nil ctx is documented to mean context.Background()
	if _, err := m.WaitEventSince(nil, time.Unix(0, 0), qmp.EventFilter{Types: []string{"X"}}); err != nil {
		t.Fatalf("WaitEventSince(nil ctx) = %v", err)
	}
}
