package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// evSync returns once every event the server sent before it has been filed
// in m's history: the reply to a command follows those events on the same
// stream, and the reader files events before it hands over later replies.
func evSync(t testing.TB, m *qmp.Monitor) {
	t.Helper()
	if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{Name: "query-name"}, nil); err != nil {
		t.Fatalf("query-name (event sync): %v", err)
	}
}

// evN decodes the "n" member of an event's data (-1 when absent).
func evN(t testing.TB, e *qmp.Event) int {
	t.Helper()
	d := struct {
		N *int `json:"n"`
	}{}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("decoding %s data %s: %v", e.Type, e.Data, err)
	}
	if d.N == nil {
		return -1
	}
	return *d.N
}

// evNum is event data carrying a sequence number, for checking order.
type evNum struct {
	N int `json:"n"`
}

// evResult is the outcome of a wait run in a goroutine.
type evResult struct {
	e   *qmp.Event
	err error
}

// evRecv fails the test unless ch yields within 5s.
func evRecv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no result within 5s", what)
		panic("unreachable")
	}
}

// evProbe returns a Match for type-agnostic waits that accepts nothing and
// closes the returned channel the first time it sees an event of type
// "PROBE": once that happened, the wait is registered in the history (the
// buffered lookup and the registration share one lock hold), so anything
// done afterwards is seen by the waiter.
func evProbe() (func(*qmp.Event) bool, <-chan struct{}) {
	seen := make(chan struct{})
	var once sync.Once
	return func(e *qmp.Event) bool {
		if e.Type == "PROBE" {
			once.Do(func() { close(seen) })
		}
		return false
	}, seen
}

func TestEventsSeqOrderAndTimestamps(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	if c := m.EventCursor(); c != 0 {
		t.Fatalf("EventCursor before any event = %d, want 0", c)
	}
	const n = 50
	for i := 0; i < n; i++ {
		s.SendEventAt(fmt.Sprintf("EV_%d", i%3), evNum{i}, 1700000000+int64(i/7), int64(i*13579%1000000))
	}
	evSync(t, m)

	recs := m.EventsAfter(0, qmp.EventFilter{})
	if len(recs) != n {
		t.Fatalf("EventsAfter(0) returned %d events, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.Seq != qmp.EventCursor(i+1) {
			t.Fatalf("event %d has Seq %d, want %d", i, r.Seq, i+1)
		}
		if want := fmt.Sprintf("EV_%d", i%3); r.Type != want || evN(t, &r.Event) != i {
			t.Fatalf("event %d = %s %s, want %s n=%d", i, r.Type, r.Data, want, i)
		}
		if r.Timestamp.Seconds != uint64(1700000000+i/7) || r.Timestamp.Microseconds != uint64(i*13579%1000000) {
			t.Fatalf("event %d timestamp = %+v", i, r.Timestamp)
		}
		if want := time.Unix(int64(1700000000+i/7), int64(i*13579%1000000)*1000); !r.Time().Equal(want) {
			t.Fatalf("event %d Time() = %v, want %v", i, r.Time(), want)
		}
		if r.Received.IsZero() || i > 0 && r.Received.Before(recs[i-1].Received) {
			t.Fatalf("event %d Received = %v (previous %v)", i, r.Received, recs[i-1].Received)
		}
	}
	if c := m.EventCursor(); c != n {
		t.Fatalf("EventCursor = %d, want %d", c, n)
	}
	all, ok := m.FindEvents("", 0)
	if !ok || len(all) != n {
		t.Fatalf("FindEvents(\"\", 0) = %d events, %v; want %d", len(all), ok, n)
	}
	for i := range all {
		if evN(t, &all[i]) != i {
			t.Fatalf("FindEvents: position %d holds n=%d", i, evN(t, &all[i]))
		}
	}
	// Seq 48..50 are EV_2, EV_0, EV_1.
	if got := m.EventsAfter(n-3, qmp.EventFilter{Types: []string{"EV_1", "EV_2"}}); len(got) != 2 ||
		got[0].Seq != n-2 || got[0].Type != "EV_2" || got[1].Seq != n || got[1].Type != "EV_1" {
		t.Fatalf("EventsAfter(%d, EV_1|EV_2) = %+v, want Seq %d (EV_2) and %d (EV_1)", n-3, got, n-2, n)
	}
}

// A QEMU timestamp of -1 (QEMU's clock failed) is replaced by the time of
// receipt, so that time lookups still place the event.
func TestEventsNegativeTimestampGetsReceiptTime(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SendEventAt("NO_CLOCK", nil, -1, -1)
	evSync(t, m)
	r := m.EventsAfter(0, qmp.EventFilter{})
	if len(r) != 1 {
		t.Fatalf("got %d events, want 1", len(r))
	}
	if d := r[0].Time().Sub(r[0].Received); d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("timestamp %v differs from receipt %v", r[0].Time(), r[0].Received)
	}
}

// QEMU's wall clock can step backwards: the time lookups must still return
// exactly the events whose timestamp is at or after the bound.
func TestEventsOutOfOrderTimestamps(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	rng := rand.New(rand.NewSource(1))
	const base = 1700000000
	types := []string{"A", "B", "C"}
	for i := 0; i < 300; i++ {
		// Mostly forward with frequent steps back of up to 3 seconds.
		sec := int64(base + i/20 - rng.Intn(4)*rng.Intn(2))
		s.SendEventAt(types[rng.Intn(3)], evNum{i}, sec, int64(rng.Intn(5))*250000)
	}
	evSync(t, m)
	all := m.EventsAfter(0, qmp.EventFilter{})
	if len(all) != 300 {
		t.Fatalf("history holds %d events, want 300", len(all))
	}
	seqs := func(rs []qmp.EventRecord) []qmp.EventCursor {
		out := []qmp.EventCursor{}
		for _, r := range rs {
			out = append(out, r.Seq)
		}
		return out
	}
	brute := func(t string, sinceMicro int64) []qmp.EventCursor {
		out := []qmp.EventCursor{}
		for _, r := range all {
			if (t == "" || r.Type == t) && int64(r.Timestamp.Seconds)*1e6+int64(r.Timestamp.Microseconds) >= sinceMicro {
				out = append(out, r.Seq)
			}
		}
		return out
	}
	for us := int64(base-2) * 1e6; us <= (base+18)*1e6; us += 125000 {
		for _, typ := range []string{"", "A", "B", "C", "NONE"} {
			want := brute(typ, us)
			f := qmp.EventFilter{Types: []string{typ}}
			if typ == "" {
				f.Types = nil
			}
			if got := seqs(m.EventsSince(time.UnixMicro(us), f)); !slices.Equal(got, want) {
				t.Fatalf("EventsSince(%d µs, %q) = %v, want %v", us, typ, got, want)
			}
			if us%1e6 == 0 {
				found, ok := m.FindEvents(typ, uint64(us/1e6))
				if ok != (len(want) > 0) || len(found) != len(want) {
					t.Fatalf("FindEvents(%q, %d) = %d events, %v; want %d", typ, us/1e6, len(found), ok, len(want))
				}
				for i := range found {
					if evN(t, &found[i]) != int(want[i]-1) {
						t.Fatalf("FindEvents(%q, %d)[%d] is n=%d, want n=%d", typ, us/1e6, i, evN(t, &found[i]), want[i]-1)
					}
				}
			}
		}
		want := brute("A", us)
		wantBC := brute("", us)
		wantBC = slices.DeleteFunc(wantBC, func(q qmp.EventCursor) bool { return all[q-1].Type == "A" })
		if got := seqs(m.EventsSince(time.UnixMicro(us), qmp.EventFilter{Types: []string{"B", "C"}})); !slices.Equal(got, wantBC) {
			t.Fatalf("EventsSince(%d µs, B|C) = %v, want %v", us, got, wantBC)
		}
		if len(want) > 0 {
			r, err := m.WaitEventSince(ctxT(t, 5*time.Second), time.UnixMicro(us), qmp.EventFilter{Types: []string{"A"}})
			if err != nil || r.Seq != want[0] {
				t.Fatalf("WaitEventSince(%d µs, A) = Seq %d, %v; want Seq %d", us, r.Seq, err, want[0])
			}
		}
	}
}

func TestEventsSameSecondMicroseconds(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	const S = 1700000100
	s.SendEventAt("T", evNum{0}, S-1, 999999)
	s.SendEventAt("T", evNum{1}, S, 10)
	s.SendEventAt("T", evNum{2}, S, 20)
	s.SendEventAt("T", evNum{3}, S, 30)
	s.SendEventAt("T", evNum{4}, S+1, 0)
	evSync(t, m)
	ns := func(rs []qmp.EventRecord) []int {
		out := []int{}
		for i := range rs {
			out = append(out, evN(t, &rs[i].Event))
		}
		return out
	}
	for _, c := range []struct {
		at   time.Time
		want []int
	}{
		{time.Unix(S, 0), []int{1, 2, 3, 4}},
		{time.Unix(S, 10000), []int{1, 2, 3, 4}},
		{time.Unix(S, 11000), []int{2, 3, 4}},
		{time.Unix(S, 20000), []int{2, 3, 4}},
		{time.Unix(S, 21000), []int{3, 4}},
		{time.Unix(S, 30000), []int{3, 4}},
		{time.Unix(S, 31000), []int{4}},
		{time.Unix(S-1, 999999000), []int{0, 1, 2, 3, 4}},
	} {
		if got := ns(m.EventsSince(c.at, qmp.EventFilter{Types: []string{"T"}})); !slices.Equal(got, c.want) {
			t.Errorf("EventsSince(%v) = %v, want %v", c.at.UnixMicro(), got, c.want)
		}
	}

	// v2.0.4 `after` is whole seconds, inclusive.
	evs, ok := m.FindEvents("T", S)
	if got := ns(toRecords(evs)); !ok || !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("FindEvents(T, S) = %v, %v; want [1 2 3 4]", got, ok)
	}
	if evs, ok := m.FindEvents("T", S+2); ok || len(evs) != 0 {
		t.Fatalf("FindEvents(T, S+2) = %v, %v; want none", evs, ok)
	}
	evs, err := m.GetEvents(ctxT(t, 5*time.Second), "T", S+1)
	if err != nil || len(evs) != 1 || evN(t, &evs[0]) != 4 {
		t.Fatalf("GetEvents(T, S+1) = %v, %v; want [n=4]", evs, err)
	}
	e, err := m.WaitEventSince(ctxT(t, 5*time.Second), time.Unix(int64(S), 0), qmp.EventFilter{Types: []string{"T"}})
	if err != nil || evN(t, &e.Event) != 1 {
		t.Fatalf("WaitEventSince(T, S) = %v, %v; want n=1 (first at or after S)", e, err)
	}
}

func toRecords(evs []qmp.Event) []qmp.EventRecord {
	out := make([]qmp.EventRecord, len(evs))
	for i := range evs {
		out[i].Event = evs[i]
	}
	return out
}

func TestEventsCountEviction(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, &qmp.Options{EventHistory: 100})
	for i := 0; i < 150; i++ {
		s.SendEventAt([]string{"A", "B"}[i%2], evNum{i}, 1700000000, int64(i))
	}
	evSync(t, m)
	recs := m.EventsAfter(0, qmp.EventFilter{})
	if len(recs) != 100 || recs[0].Seq != 51 || recs[99].Seq != 150 {
		t.Fatalf("after 150 events with EventHistory 100: %d events, Seq %d..%d; want 100, 51..150",
			len(recs), recs[0].Seq, recs[len(recs)-1].Seq)
	}
	for i, r := range recs {
		if r.Seq != qmp.EventCursor(51+i) || evN(t, &r.Event) != 50+i {
			t.Fatalf("position %d: Seq %d n=%d", i, r.Seq, evN(t, &r.Event))
		}
	}
	// A cursor that points into the evicted part gets what remains.
	if got := m.EventsAfter(10, qmp.EventFilter{}); len(got) != 100 || got[0].Seq != 51 {
		t.Fatalf("EventsAfter(10) = %d events from Seq %d; want 100 from 51", len(got), got[0].Seq)
	}
	if got := m.EventsAfter(50, qmp.EventFilter{Types: []string{"B"}}); len(got) != 50 || got[0].Seq != 52 {
		t.Fatalf("EventsAfter(50, B) = %d events from Seq %d; want 50 from 52", len(got), got[0].Seq)
	}
	if got := m.EventsAfter(120, qmp.EventFilter{}); len(got) != 30 || got[0].Seq != 121 {
		t.Fatalf("EventsAfter(120) = %d events from Seq %d; want 30 from 121", len(got), got[0].Seq)
	}
	if got := m.EventsAfter(150, qmp.EventFilter{}); len(got) != 0 {
		t.Fatalf("EventsAfter(150) = %d events, want 0", len(got))
	}
	a, _ := m.FindEvents("A", 0)
	if len(a) != 50 || evN(t, &a[0]) != 50 || evN(t, &a[49]) != 148 {
		t.Fatalf("FindEvents(A) = %d events; want 50, n=50..148", len(a))
	}
	// A wait or a checked lookup from a cursor whose next events were
	// evicted says so, with or without a Match; from a cursor still
	// covered, the first A still held is the answer.
	var oe *qmp.OverflowError
	for _, f := range []qmp.EventFilter{{Types: []string{"A"}}, {Types: []string{"A"}, Match: func(*qmp.Event) bool { return true }}} {
		r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), 10, f)
		if !errors.As(err, &oe) || oe.Seq != 11 || oe.Oldest != 51 {
			t.Fatalf("WaitEventAfter(10, A) = Seq %d, %v; want *OverflowError{Seq: 11, Oldest: 51}", r.Seq, err)
		}
	}
	if recs, err := m.EventsAfterChecked(10, qmp.EventFilter{}); !errors.As(err, &oe) || len(recs) != 100 {
		t.Fatalf("EventsAfterChecked(10) = %d events, %v; want the 100 buffered and an *OverflowError", len(recs), err)
	}
	if _, err := m.EventsAfterChecked(50, qmp.EventFilter{}); err != nil {
		t.Fatalf("EventsAfterChecked(50) = %v, want nil: nothing after 50 was evicted", err)
	}
	r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), 50, qmp.EventFilter{Types: []string{"A"}})
	if err != nil || r.Seq != 51 {
		t.Fatalf("WaitEventAfter(50, A) = Seq %d, %v; want 51", r.Seq, err)
	}
}

// evSize is what an event counts against Options.EventHistoryBytes (see
// rec.size in history.go).
func evSize(r qmp.EventRecord) int { return len(r.Data) + len(r.Type) + 96 }

func TestEventsByteEviction(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	const limit = 5000
	m := dial(t, s, &qmp.Options{EventHistoryBytes: limit})
	type big struct {
		N   int    `json:"n"`
		Pad string `json:"pad"`
	}
	for i := 0; i < 20; i++ {
		s.SendEvent("BIG", big{i, fmt.Sprintf("%0*d", 1000+i*37, 0)})
	}
	evSync(t, m)
	recs := m.EventsAfter(0, qmp.EventFilter{})
	// What remains is the longest suffix that fits, newest last.
	if len(recs) == 0 || recs[len(recs)-1].Seq != 20 {
		t.Fatalf("newest event missing: %d events", len(recs))
	}
	total := 0
	for i, r := range recs {
		if r.Seq != qmp.EventCursor(20-len(recs)+1+i) {
			t.Fatalf("not a suffix: position %d has Seq %d", i, r.Seq)
		}
		total += evSize(r)
	}
	if total > limit {
		t.Fatalf("kept %d bytes > limit %d", total, limit)
	}
	// The next older event (evicted) would not have fitted; its size is the
	// one before the first kept, which the server built the same way.
	prev := len(recs[0].Data) - 37 // the evicted event's pad is 37 bytes shorter
	if total+prev+len("BIG")+96 <= limit {
		t.Fatalf("evicted too much: %d bytes kept, Seq %d (size ~%d) would fit", total, recs[0].Seq-1, prev+99)
	}
	// Events 19 and 20 are ~1.8 KB each with their overhead: two fit, three do not.
	if len(recs) != 2 {
		t.Fatalf("kept %d events of ~1.8 KB under %d bytes, want 2", len(recs), limit)
	}

	// An event larger than the whole bound is kept alone rather than lost.
	s.SendEvent("HUGE", big{99, fmt.Sprintf("%0*d", 2*limit, 0)})
	evSync(t, m)
	recs = m.EventsAfter(0, qmp.EventFilter{})
	if len(recs) != 1 || recs[0].Type != "HUGE" || recs[0].Seq != 21 {
		t.Fatalf("after an oversized event: %d events (first %s Seq %d), want just HUGE Seq 21", len(recs), recs[0].Type, recs[0].Seq)
	}
}

// EventHistoryAge evicts on lookup too, the newest event included: with
// v2.0.4-era eviction (only on arrival, always keeping the newest) both
// events were still there long after.
func TestEventsAgeEvictionOnLookup(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	const age = 200 * time.Millisecond
	m := dial(t, s, &qmp.Options{EventHistoryAge: age})
	sent := time.Now()
	s.SendEvent("AGED", evNum{0})
	s.SendEvent("AGED", evNum{1})
	evSync(t, m)
	if time.Since(sent) < age/2 { // only meaningful when the machine was quick
		if recs := m.EventsAfter(0, qmp.EventFilter{}); len(recs) != 2 {
			t.Fatalf("within the age bound: %d events, want 2", len(recs))
		}
	}
	time.Sleep(age + 50*time.Millisecond) // the property under test is the passing of time
	if recs := m.EventsAfter(0, qmp.EventFilter{}); len(recs) != 0 {
		t.Fatalf("%v after the events arrived: EventsAfter = %d events, want none (EventHistoryAge %v)", time.Since(sent), len(recs), age)
	}
	if evs, ok := m.FindEvents("AGED", 0); ok || len(evs) != 0 {
		t.Fatalf("FindEvents after the age bound = %d events, want none", len(evs))
	}
	if cur := m.EventCursor(); cur != 2 {
		t.Fatalf("EventCursor = %d after eviction, want 2", cur)
	}
}

// v2.0.4 kept 100 events, so an event followed by a burst was lost.
func TestEventsFindSurvivesBurst(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	after := uint64(time.Now().Unix())
	s.SendEvent("BLOCK_JOB_COMPLETED", map[string]string{"device": "job0", "type": "mirror"})
	for i := 0; i < 250; i++ {
		s.SendEvent("NOISE", evNum{i})
	}
	evSync(t, m)
	e, ok, err := m.FindBlockJobCompletedEvent("job0", after)
	if err != nil || !ok || e.Type != "BLOCK_JOB_COMPLETED" {
		t.Fatalf("FindBlockJobCompletedEvent after 250 more events = %v, %v, %v", e, ok, err)
	}
	got, err := m.WaitEventSince(ctxT(t, 5*time.Second), time.Unix(int64(after), 0), qmp.EventFilter{Types: []string{"BLOCK_JOB_COMPLETED"}})
	if err != nil || got.Type != "BLOCK_JOB_COMPLETED" {
		t.Fatalf("WaitEventSince = %v, %v", got, err)
	}
}

func TestEventsGetEvents(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	for i := 0; i < 3; i++ {
		s.SendEvent("BUF", evNum{i})
	}
	s.SendEvent("OTHER", nil)
	evSync(t, m)
	evs, err := m.GetEvents(ctxT(t, 5*time.Second), "BUF", 0)
	if err != nil || len(evs) != 3 {
		t.Fatalf("GetEvents(BUF) = %d events, %v; want 3", len(evs), err)
	}
	for i := range evs {
		if evN(t, &evs[i]) != i {
			t.Fatalf("GetEvents(BUF)[%d] is n=%d", i, evN(t, &evs[i]))
		}
	}
	if evs, err := m.GetEvents(ctxT(t, 5*time.Second), "", 0); err != nil || len(evs) != 4 || evs[3].Type != "OTHER" {
		t.Fatalf("GetEvents(\"\") = %v, %v; want 4 events ending with OTHER", evs, err)
	}

	// None buffered: it waits for the first match and returns it alone.
	ch := make(chan evResult, 1)
	go func() {
		evs, err := m.GetEvents(ctxT(t, 5*time.Second), "LATER", 0)
		if err == nil && len(evs) != 1 {
			err = fmt.Errorf("got %d events, want 1", len(evs))
		}
		if err != nil {
			ch <- evResult{nil, err}
			return
		}
		ch <- evResult{&evs[0], nil}
	}()
	s.SendEvent("NOT_IT", nil)
	s.SendEvent("LATER", evNum{7})
	r := evRecv(t, ch, "GetEvents(LATER)")
	if r.err != nil || r.e.Type != "LATER" || evN(t, r.e) != 7 {
		t.Fatalf("GetEvents(LATER) = %v, %v; want the n=7 event", r.e, r.err)
	}
	s.SendEvent("LATER", evNum{8})
	evSync(t, m)
	if evs, err := m.GetEvents(ctxT(t, 5*time.Second), "LATER", 0); err != nil || len(evs) != 2 || evN(t, &evs[1]) != 8 {
		t.Fatalf("GetEvents(LATER) with two buffered = %v, %v", evs, err)
	}
}

// GetEvents looks up, then waits: an event arriving between the two must
// not be missed.
func TestEventsGetEventsNoLostWakeup(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	for i := 0; i < 200; i++ {
		typ := fmt.Sprintf("RACE_%d", i)
		ch := make(chan evResult, 1)
		start := make(chan struct{})
		go func() {
			<-start
			evs, err := m.GetEvents(ctxT(t, 5*time.Second), typ, 0)
			if err == nil && (len(evs) != 1 || evs[0].Type != typ) {
				err = fmt.Errorf("got %v", evs)
			}
			ch <- evResult{err: err}
		}()
		close(start)
		s.SendEvent(typ, nil)
		if r := evRecv(t, ch, "GetEvents("+typ+")"); r.err != nil {
			t.Fatalf("GetEvents(%s): %v", typ, r.err)
		}
	}
}

func TestEventsWaitEndsOnConnectionEnd(t *testing.T) {
	for _, how := range []string{"DropConnection", "Close"} {
		t.Run(how, func(t *testing.T) {
			s := newServer(t, qmptest.Config{})
			m := dial(t, s, nil)
			s.SendEventAt("KEPT", evNum{1}, 1700000000, 5)
			match, registered := evProbe()
			ch := make(chan error, 1)
			go func() {
				_, err := m.WaitEventAfter(ctxT(t, 5*time.Second), 0, qmp.EventFilter{Match: match})
				ch <- err
			}()
			s.SendEvent("PROBE", nil)
			evRecv(t, registered, "waiter registration")
			if how == "Close" {
				m.Close()
			} else {
				s.DropConnection()
			}
			err := evRecv(t, ch, "pending wait after "+how)
			if !qmp.IsSocketClosed(err) || !errors.Is(err, qmp.ErrClosed) {
				t.Fatalf("pending wait after %s returned %v, want a closed error", how, err)
			}
			var ce *qmp.ClosedError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ClosedError", err)
			}
			waitClosed(t, m, 5*time.Second)

			// After the end: buffered matches are still returned, lookups work,
			// and a wait with nothing to find fails at once.
			r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), 0, qmp.EventFilter{Types: []string{"KEPT"}})
			if err != nil || r.Seq != 1 {
				t.Fatalf("WaitEventAfter(KEPT) after the end = %+v, %v", r, err)
			}
			e, err := m.WaitEventSince(ctxT(t, 5*time.Second), time.Unix(1700000000, 0), qmp.EventFilter{Types: []string{"KEPT"}})
			if err != nil || evN(t, &e.Event) != 1 {
				t.Fatalf("WaitEventSince(KEPT) after the end = %v, %v", e, err)
			}
			if evs, ok := m.FindEvents("", 0); !ok || len(evs) != 2 || evs[0].Type != "KEPT" || evs[1].Type != "PROBE" {
				t.Fatalf("FindEvents after the end = %v, %v", evs, ok)
			}
			if evs, err := m.GetEvents(ctxT(t, 5*time.Second), "KEPT", 0); err != nil || len(evs) != 1 {
				t.Fatalf("GetEvents(KEPT) after the end = %v, %v", evs, err)
			}
			if _, err := m.WaitEventSince(ctxT(t, 5*time.Second), time.Unix(0, 0), qmp.EventFilter{Types: []string{"NEVER"}}); !qmp.IsSocketClosed(err) {
				t.Fatalf("WaitEventSince(NEVER) after the end = %v, want a closed error", err)
			}
			if _, err := m.GetEvents(ctxT(t, 5*time.Second), "NEVER", 0); !qmp.IsSocketClosed(err) {
				t.Fatalf("GetEvents(NEVER) after the end = %v, want a closed error", err)
			}
		})
	}
}

type evDev struct {
	Device string `json:"device,omitempty"`
	Path   string `json:"path"`
}

func TestEventsWaitDeviceDeleted(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ch := make(chan evResult, 1)
	go func() {
		e, err := m.WaitDeviceDeletedEvent(ctxT(t, 5*time.Second), "net0", 0)
		ch <- evResult{e, err}
	}()
	// QEMU removes the child objects first; they carry only a path.
	s.SendEvent("DEVICE_DELETED", evDev{Path: "/machine/peripheral/net0/virtio-backend"})
	s.SendEvent("DEVICE_DELETED", evDev{"net1", "/machine/peripheral/net1"})
	s.SendEvent("DEVICE_UNPLUG_GUEST_ERROR", evDev{"net1", "/machine/peripheral/net1"})
	s.SendEvent("DEVICE_DELETED", evDev{"net0", "/machine/peripheral/net0"})
	r := evRecv(t, ch, "WaitDeviceDeletedEvent(net0)")
	if r.err != nil {
		t.Fatalf("WaitDeviceDeletedEvent(net0): %v", r.err)
	}
	var d qmp.DeviceDeletedEventData
	if err := json.Unmarshal(r.e.Data, &d); err != nil || r.e.Type != "DEVICE_DELETED" || d.Device != "net0" || d.Path != "/machine/peripheral/net0" {
		t.Fatalf("WaitDeviceDeletedEvent(net0) = %s %s", r.e.Type, r.e.Data)
	}

	// An anonymous device is known by its path only.
	const anon = "/machine/peripheral-anon/device[3]"
	go func() {
		e, err := m.WaitDeviceDeletedEvent(ctxT(t, 5*time.Second), anon, 0)
		ch <- evResult{e, err}
	}()
	s.SendEvent("DEVICE_DELETED", evDev{Path: anon + "/virtio-backend"})
	s.SendEvent("DEVICE_DELETED", evDev{Path: anon})
	r = evRecv(t, ch, "WaitDeviceDeletedEvent(anon)")
	if r.err != nil || string(r.e.Data) != `{"path": "`+anon+`"}` {
		t.Fatalf("WaitDeviceDeletedEvent(%s) = %v, %v", anon, r.e, r.err)
	}

	// A name that may reach the wire escaped is found by decoding alone.
	go func() {
		e, err := m.WaitDeviceDeletedEvent(ctxT(t, 5*time.Second), "a&b", 0)
		ch <- evResult{e, err}
	}()
	s.SendEvent("DEVICE_DELETED", evDev{"a&b", "/machine/peripheral/a&b"})
	r = evRecv(t, ch, "WaitDeviceDeletedEvent(a&b)")
	if r.err != nil || string(r.e.Data) != `{"device": "a&b", "path": "/machine/peripheral/a&b"}` {
		t.Fatalf("WaitDeviceDeletedEvent(a&b) = %s, %v", r.e.Data, r.err)
	}
}

func TestEventsWaitDeviceDeletedUnplugError(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ch := make(chan evResult, 1)
	go func() {
		e, err := m.WaitDeviceDeletedEvent(ctxT(t, 5*time.Second), "hostdev0", 0)
		ch <- evResult{e, err}
	}()
	s.SendEvent("DEVICE_UNPLUG_GUEST_ERROR", evDev{"other", "/machine/peripheral/other"})
	s.SendEvent("DEVICE_DELETED", evDev{Path: "/machine/peripheral/hostdev0/child"})
	s.SendEvent("DEVICE_UNPLUG_GUEST_ERROR", evDev{"hostdev0", "/machine/peripheral/hostdev0"})
	r := evRecv(t, ch, "WaitDeviceDeletedEvent(hostdev0)")
	var ue *qmp.DeviceUnplugError
	if r.e != nil || !errors.As(r.err, &ue) {
		t.Fatalf("WaitDeviceDeletedEvent(hostdev0) = %v, %v; want a *DeviceUnplugError", r.e, r.err)
	}
	if ue.Device != "hostdev0" || ue.Path != "/machine/peripheral/hostdev0" || ue.Event.Type != "DEVICE_UNPLUG_GUEST_ERROR" {
		t.Fatalf("DeviceUnplugError = %+v", ue)
	}
	if msg := ue.Error(); msg != `qmp: guest failed to unplug device "hostdev0" (DEVICE_UNPLUG_GUEST_ERROR)` {
		t.Fatalf("Error() = %q", msg)
	}
}

// The whole device_del flow on the simulated QEMU, which emits
// DEVICE_DELETED after the reply.
func TestEventsDeviceDelFlow(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	if err := m.RunContext(ctx, qmp.Command{Name: "device_add", Arguments: map[string]string{"driver": "virtio-net-pci", "id": "nic9"}}, nil); err != nil {
		t.Fatal(err)
	}
	after := uint64(time.Now().Unix())
	if err := m.RunContext(ctx, qmp.Command{Name: "device_del", Arguments: map[string]string{"id": "nic9"}}, nil); err != nil {
		t.Fatal(err)
	}
	e, err := m.WaitDeviceDeletedEvent(ctx, "nic9", after)
	if err != nil || string(e.Data) != `{"device": "nic9", "path": "/machine/peripheral/nic9"}` {
		t.Fatalf("WaitDeviceDeletedEvent(nic9) = %v, %v", e, err)
	}
}

func TestEventsWildcardWaits(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SendEvent("FIRST", nil)
	evSync(t, m)
	cur := m.EventCursor()
	ch := make(chan evResult, 2)
	go func() {
		r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), cur, qmp.EventFilter{})
		ch <- evResult{&r.Event, err}
	}()
	go func() {
		r, err := m.WaitEventSince(ctxT(t, 5*time.Second), time.Unix(time.Now().Unix()+3600, 0), qmp.EventFilter{Types: []string{""}})
		ch <- evResult{&r.Event, err}
	}()
	s.SendEventAt("SOMETHING_ELSE", nil, time.Now().Unix()+3600, 0)
	for i := 0; i < 2; i++ {
		r := evRecv(t, ch, "wildcard wait")
		if r.err != nil || r.e.Type != "SOMETHING_ELSE" {
			t.Fatalf("wildcard wait = %v, %v; want SOMETHING_ELSE", r.e, r.err)
		}
	}
	// A buffered event of any type satisfies a wildcard wait at once.
	if e, err := m.WaitEventSince(ctxT(t, 5*time.Second), time.Unix(0, 0), qmp.EventFilter{Types: []string{""}}); err != nil || e.Type != "FIRST" {
		t.Fatalf("WaitEventSince(\"\", 0) = %v, %v; want FIRST", e, err)
	}
}

func TestEventsWaitEventMatch(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SendEvent("M", evNum{1})
	ch := make(chan evResult, 1)
	go func() {
		r, err := m.WaitEventSince(ctxT(t, 5*time.Second), time.Unix(0, 0), qmp.EventFilter{Types: []string{"M"}, Match: func(e *qmp.Event) bool {
			var d evNum
			return json.Unmarshal(e.Data, &d) == nil && d.N == 3
		}})
		ch <- evResult{&r.Event, err}
	}()
	s.SendEvent("M", evNum{2})
	s.SendEvent("X", evNum{3})
	s.SendEvent("M", evNum{3})
	s.SendEvent("M", evNum{4})
	r := evRecv(t, ch, "WaitEventSince(M, n==3)")
	if r.err != nil || r.e.Type != "M" || evN(t, r.e) != 3 {
		t.Fatalf("WaitEventSince(M, n==3) = %v, %v", r.e, r.err)
	}
}

func TestEventsJobAndTrayHelpers(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	type job struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	s.SendEvent("JOB_STATUS_CHANGE", job{"job1", "running"})
	s.SendEvent("JOB_STATUS_CHANGE", job{"job2", "concluded"})
	s.SendEvent("JOB_STATUS_CHANGE", job{"job1", "concluded"})
	e, err := m.WaitJobStatusChangeEvent(ctx, "job1", "concluded", 0)
	if err != nil || string(e.Data) != `{"id": "job1", "status": "concluded"}` {
		t.Fatalf("WaitJobStatusChangeEvent(job1, concluded) = %v, %v", e, err)
	}

	type tray struct {
		Device string `json:"device"`
		Open   bool   `json:"tray-open"`
		ID     string `json:"id"`
	}
	s.SendEvent("DEVICE_TRAY_MOVED", tray{"ide0-cd0", true, "cd0"})
	s.SendEvent("DEVICE_TRAY_MOVED", tray{"ide1-cd0", true, "cd1"})
	s.SendEvent("DEVICE_TRAY_MOVED", tray{"ide1-cd0", false, "cd1"})
	trayOf := func(e *qmp.Event) qmp.DeviceTrayMovedEventData {
		var d qmp.DeviceTrayMovedEventData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct {
		name   string
		wait   func(context.Context, string, uint64) (*qmp.Event, error)
		device string
		open   bool
	}{
		{"Opened by block name", m.WaitDeviceTrayOpenedEvent, "ide1-cd0", true},
		{"Closed by block name", m.WaitDeviceTrayClosedEvent, "ide1-cd0", false},
		{"Closed by qdev id", m.WaitDeviceTrayClosedEvent, "cd1", false},
		{"Moved by qdev id", m.WaitDeviceTrayMovedEvent, "cd1", true},
		{"Moved other device", m.WaitDeviceTrayMovedEvent, "cd0", true},
	} {
		e, err := c.wait(ctx, c.device, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if d := trayOf(e); d.Open != c.open || d.Device != c.device && d.QdevID != c.device {
			t.Fatalf("%s: got %+v", c.name, d)
		}
	}
	// The closed-tray wait for cd0 must not take cd0's open event.
	ch := make(chan evResult, 1)
	go func() {
		e, err := m.WaitDeviceTrayClosedEvent(ctxT(t, 5*time.Second), "cd0", 0)
		ch <- evResult{e, err}
	}()
	s.SendEvent("DEVICE_TRAY_MOVED", tray{"ide0-cd0", false, "cd0"})
	if r := evRecv(t, ch, "WaitDeviceTrayClosedEvent(cd0)"); r.err != nil || trayOf(r.e).Open || trayOf(r.e).QdevID != "cd0" {
		t.Fatalf("WaitDeviceTrayClosedEvent(cd0) = %v, %v", r.e, r.err)
	}
}

func TestEventsFindBlockJobEvents(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	after := uint64(time.Now().Unix())
	s.SendEvent("BLOCK_JOB_ERROR", map[string]string{"device": "other", "operation": "write", "action": "report"})
	s.SendEvent("BLOCK_JOB_ERROR", map[string]string{"device": "drive0", "operation": "read", "action": "stop"})
	s.SendEvent("BLOCK_JOB_COMPLETED", map[string]any{"device": "drive0", "type": "mirror", "len": 10, "offset": 10, "speed": 0, "error": "No space left on device"})
	evSync(t, m)

	e, ok, err := m.FindBlockJobErrorEvent("drive0", after)
	if err != nil || !ok {
		t.Fatalf("FindBlockJobErrorEvent(drive0) = %v, %v, %v", e, ok, err)
	}
	var d qmp.BlockJobErrorEventData
	if err := json.Unmarshal(e.Data, &d); err != nil || d != (qmp.BlockJobErrorEventData{Device: "drive0", Operation: "read", Action: "stop"}) {
		t.Fatalf("BLOCK_JOB_ERROR data decodes as %+v (%v)", d, err)
	}
	c, ok, err := m.FindBlockJobCompletedEvent("drive0", after)
	if err != nil || !ok {
		t.Fatalf("FindBlockJobCompletedEvent(drive0) = %v, %v, %v", c, ok, err)
	}
	var cd qmp.BlockJobCompletedEventData
	if err := json.Unmarshal(c.Data, &cd); err != nil || cd != (qmp.BlockJobCompletedEventData{Device: "drive0", Type: "mirror", ErrMessage: "No space left on device"}) {
		t.Fatalf("BLOCK_JOB_COMPLETED data decodes as %+v (%v)", cd, err)
	}
	if e, ok, err := m.FindBlockJobCompletedEvent("nope", after); e != nil || ok || err != nil {
		t.Fatalf("FindBlockJobCompletedEvent(nope) = %v, %v, %v; want nothing", e, ok, err)
	}
	if e, ok, err := m.FindBlockJobErrorEvent("drive0", after+3600); e != nil || ok || err != nil {
		t.Fatalf("FindBlockJobErrorEvent(drive0, an hour later) = %v, %v, %v; want nothing", e, ok, err)
	}
	// Undecodable data is reported, not taken for a miss.
	s.SendEvent("BLOCK_JOB_ERROR", map[string]int{"device": 5})
	evSync(t, m)
	if _, ok, err := m.FindBlockJobErrorEvent("zzz", after); err == nil || ok {
		t.Fatalf("FindBlockJobErrorEvent over bad data = %v, %v; want an error", ok, err)
	}
}

func TestEventsWaitMachineResume(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	if err := m.RunContext(ctx, qmp.Command{Name: "stop"}, nil); err != nil {
		t.Fatal(err)
	}
	after := uint64(time.Now().Unix())
	if err := m.RunContext(ctx, qmp.Command{Name: "cont"}, nil); err != nil {
		t.Fatal(err)
	}
	e, err := m.WaitMachineResumeStateEvent(ctx, after)
	if err != nil || e.Type != "RESUME" {
		t.Fatalf("WaitMachineResumeStateEvent = %v, %v", e, err)
	}
	if got := m.EventsAfter(0, qmp.EventFilter{}); len(got) != 2 || got[0].Type != "STOP" || got[1].Type != "RESUME" {
		t.Fatalf("history = %+v, want STOP, RESUME", got)
	}
}

// An error whose action is "stop" ends the block job waits with a
// *BlockJobPausedError; "report" and "ignore" do not end them.
func TestEventsWaitBlockJobErrors(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	cur := m.EventCursor()
	s.SendEvent("BLOCK_JOB_ERROR", map[string]string{"device": "job0", "operation": "write", "action": "ignore"})
	s.SendEvent("BLOCK_JOB_ERROR", map[string]string{"device": "job0", "operation": "read", "action": "report"})
	s.SendEvent("BLOCK_JOB_ERROR", map[string]string{"device": "job1", "operation": "write", "action": "stop"})
	s.SendEvent("BLOCK_JOB_READY", map[string]string{"device": "job0", "type": "mirror"})
	s.SendEvent("BLOCK_JOB_ERROR", map[string]string{"device": "job0", "operation": "write", "action": "stop"})
	if r, err := m.WaitBlockJobReady(ctx, "job0", cur); err != nil || r.Seq != cur+4 {
		t.Fatalf("WaitBlockJobReady = Seq %d, %v; want the READY (Seq %d) past errors that do not stop", r.Seq, err, cur+4)
	}
	_, err := m.WaitBlockJob(ctx, "job0", cur)
	var pe *qmp.BlockJobPausedError
	if !errors.As(err, &pe) || pe.Event.Seq != cur+5 || pe.Operation != "write" || !strings.Contains(err.Error(), "block-job-resume") {
		t.Fatalf("WaitBlockJob = %v, want a *BlockJobPausedError for Seq %d", err, cur+5)
	}
	s.SendEvent("BLOCK_JOB_COMPLETED", map[string]string{"device": "job0", "type": "mirror", "error": "Input/output error"})
	if res, err := m.WaitBlockJob(ctx, "job0", pe.Event.Seq); err != nil || res.Status != "completed" || res.Error != "Input/output error" {
		t.Fatalf("WaitBlockJob after the pause = %+v, %v; want completed with QEMU's error", res, err)
	}
}

func TestEventsWaitBlockJob(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	for _, c := range []struct {
		typ          string
		data         map[string]string
		status, desc string
	}{
		{"BLOCK_JOB_COMPLETED", map[string]string{"device": "job0", "type": "mirror", "error": "Input/output error"}, "completed", "Input/output error"},
		{"BLOCK_JOB_COMPLETED", map[string]string{"device": "job0", "type": "mirror"}, "completed", ""},
		{"BLOCK_JOB_CANCELLED", map[string]string{"device": "job0", "type": "mirror"}, "cancelled", ""},
	} {
		// An earlier event for the same job and one for another job are
		// ignored: the first by the cursor, the second by the device.
		s.SendEvent("BLOCK_JOB_COMPLETED", map[string]string{"device": "job0"})
		evSync(t, m)
		cur := m.EventCursor()
		s.SendEvent("BLOCK_JOB_CANCELLED", map[string]string{"device": "job1"})
		s.SendEvent(c.typ, c.data)
		res, err := m.WaitBlockJob(ctx, "job0", cur)
		if err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		if res.Status != c.status || res.Error != c.desc || res.Event.Seq != cur+2 || res.Event.Type != c.typ {
			t.Fatalf("%s %v: WaitBlockJob = %+v (Seq %d), want %s %q Seq %d", c.typ, c.data, res, res.Event.Seq, c.status, c.desc, cur+2)
		}
	}
}

// migrationServer is a fake server with query-migrate-capabilities and
// query-migrate: the events capability is *events, and a failed migration
// reports desc.
func migrationServer(t *testing.T, events *atomic.Bool, desc string) *qmptest.Server {
	s := newServer(t, qmptest.Config{})
	s.Handle("query-migrate-capabilities", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{Return: []map[string]any{
			{"capability": "xbzrle", "state": false},
			{"capability": "events", "state": events.Load()},
		}}
	})
	s.Handle("query-migrate", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{Return: map[string]string{"status": "failed", "error-desc": desc}}
	})
	return s
}

func TestEventsWaitMigration(t *testing.T) {
	var on atomic.Bool
	on.Store(true)
	s := migrationServer(t, &on, "Unable to write to command: Broken pipe")
	m := dial(t, s, nil)
	s.SendEvent("MIGRATION", map[string]string{"status": "failed"}) // an earlier attempt
	evSync(t, m)
	for _, final := range []string{"completed", "failed", "cancelled"} {
		cur := m.EventCursor()
		type result struct {
			status string
			err    error
		}
		ch := make(chan result, 1)
		go func() {
			st, err := m.WaitMigration(ctxT(t, 5*time.Second), cur)
			ch <- result{st, err}
		}()
		for _, st := range []string{"setup", "active", "device", final} {
			s.SendEvent("MIGRATION", map[string]string{"status": st})
		}
		r := evRecv(t, ch, "WaitMigration")
		if want := final; final == "failed" && r.status != "" || final != "failed" && r.status != want {
			t.Fatalf("WaitMigration = %q, %v; want %q", r.status, r.err, final)
		}
		if final != "failed" {
			if r.err != nil {
				t.Fatalf("WaitMigration(%s) error = %v, want nil", final, r.err)
			}
			continue
		}
		var me *qmp.MigrationError
		if !errors.As(r.err, &me) || me.Desc != "Unable to write to command: Broken pipe" || me.Event.Seq != cur+4 {
			t.Fatalf("WaitMigration(failed) error = %#v, want a *MigrationError with QEMU's error-desc and the event Seq %d", r.err, cur+4)
		}
		if !strings.Contains(r.err.Error(), "Broken pipe") {
			t.Fatalf("WaitMigration(failed) error reads %q, want QEMU's reason", r.err)
		}
	}
}

func TestEventsWaitMigrationEventsOff(t *testing.T) {
	var on atomic.Bool
	s := migrationServer(t, &on, "")
	m := dial(t, s, nil)
	start := time.Now()
	st, err := m.WaitMigration(ctxT(t, 5*time.Second), m.EventCursor())
	if !errors.Is(err, qmp.ErrMigrationEventsOff) || st != "" {
		t.Fatalf("WaitMigration with the events capability off = %q, %v; want ErrMigrationEventsOff", st, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("WaitMigration with the events capability off took %v, want it to fail at once", took)
	}
	// A final event already buffered is the answer whatever the capability
	// says now (it may have been turned off after the migration).
	cur := m.EventCursor()
	s.SendEvent("MIGRATION", map[string]string{"status": "completed"})
	evSync(t, m)
	if st, err := m.WaitMigration(ctxT(t, 5*time.Second), cur); st != "completed" || err != nil {
		t.Fatalf("WaitMigration with a buffered completed event = %q, %v", st, err)
	}
}

func TestEventsWaitShutdownAfterQuit(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	cur := m.EventCursor()
	if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{Name: "quit"}, nil); err != nil {
		t.Fatalf("quit: %v", err)
	}
	waitClosed(t, m, 5*time.Second)
	r, err := m.WaitShutdown(ctxT(t, 5*time.Second), cur)
	if err != nil || r.Type != "SHUTDOWN" || r.Seq != cur+1 || string(r.Data) != `{"guest": false, "reason": "host-qmp-quit"}` {
		t.Fatalf("WaitShutdown after quit = %+v, %v", r, err)
	}
	// With a cursor past it, the ended connection is the answer.
	if _, err := m.WaitShutdown(ctxT(t, 5*time.Second), r.Seq); !qmp.IsSocketClosed(err) {
		t.Fatalf("WaitShutdown past the event = %v, want a closed error", err)
	}
}

// A cursor separates events even when QEMU stamps them identically.
func TestEventsCursorSameTimestamp(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	const sec, usec = 1700000200, 123456
	s.SendEventAt("SAME", evNum{1}, sec, usec)
	evSync(t, m)
	cur := m.EventCursor()
	if cur != 1 {
		t.Fatalf("EventCursor = %d, want 1", cur)
	}
	ch := make(chan evResult, 1)
	go func() {
		r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), cur, qmp.EventFilter{Types: []string{"SAME"}})
		ch <- evResult{&r.Event, err}
	}()
	s.SendEventAt("SAME", evNum{2}, sec, usec)
	r := evRecv(t, ch, "WaitEventAfter(cursor)")
	if r.err != nil || evN(t, r.e) != 2 {
		t.Fatalf("WaitEventAfter(cursor) = %v, %v; want n=2", r.e, r.err)
	}
	// The time-based call cannot tell them apart: both are "at or after".
	if evs, _ := m.FindEvents("SAME", sec); len(evs) != 2 {
		t.Fatalf("FindEvents(SAME, sec) = %d events, want 2", len(evs))
	}

	// Cursor taken before a command catches the event the command causes.
	if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{Name: "stop"}, nil); err != nil {
		t.Fatal(err)
	}
	cur = m.EventCursor()
	if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{Name: "system_reset"}, nil); err != nil {
		t.Fatal(err)
	}
	rr, err := m.WaitEventAfter(ctxT(t, 5*time.Second), cur, qmp.EventFilter{})
	if err != nil || rr.Type != "RESET" || rr.Seq != cur+1 {
		t.Fatalf("WaitEventAfter(cursor before system_reset) = %+v, %v; want RESET", rr, err)
	}
}

// evDrain reads sub.C until it is closed (bounded) and returns what it got.
func evDrain(t testing.TB, sub *qmp.Subscription) []qmp.EventRecord {
	t.Helper()
	var got []qmp.EventRecord
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r, ok := <-sub.C:
			if !ok {
				return got
			}
			got = append(got, r)
		case <-timeout:
			t.Fatalf("subscription not closed within 5s (got %d events)", len(got))
		}
	}
}

// evTake reads exactly n events from sub.C (bounded).
func evTake(t testing.TB, sub *qmp.Subscription, n int) []qmp.EventRecord {
	t.Helper()
	got := make([]qmp.EventRecord, 0, n)
	for len(got) < n {
		select {
		case r, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription closed after %d of %d events: %v", len(got), n, sub.Err())
			}
			got = append(got, r)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of %d events within 5s", len(got), n)
		}
	}
	return got
}

func TestEventsSubscribeFilters(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SendEvent("A", evNum{0}) // before the subscription: not delivered
	evSync(t, m)
	even := func(e *qmp.Event) bool {
		var d evNum
		return json.Unmarshal(e.Data, &d) == nil && d.N%2 == 0
	}
	sub1 := m.Subscribe(ctxT(t, 5*time.Second), qmp.EventFilter{Types: []string{"A", "B"}, Match: even}, 16)
	defer sub1.Close()
	sub2 := m.Subscribe(ctxT(t, 5*time.Second), qmp.EventFilter{}, 16)
	defer sub2.Close()
	if err := sub1.Err(); err != nil {
		t.Fatalf("Err() of an open subscription = %v", err)
	}
	for i := 1; i <= 8; i++ {
		s.SendEvent([]string{"A", "B", "C"}[i%3], evNum{i})
	}
	// i%3: 1→B 2→C 3→A 4→B 5→C 6→A 7→B 8→C; even and A|B leaves 4 and 6.
	// A final B 10 proves nothing else was queued before it.
	s.SendEvent("B", evNum{10})
	var ns []int
	for _, r := range evTake(t, sub1, 3) {
		ns = append(ns, evN(t, &r.Event))
	}
	if !slices.Equal(ns, []int{4, 6, 10}) {
		t.Fatalf("filtered subscriber got n=%v, want [4 6 10]", ns)
	}
	for i, r := range evTake(t, sub2, 9) {
		if r.Seq != qmp.EventCursor(i+2) || evN(t, &r.Event) != []int{1, 2, 3, 4, 5, 6, 7, 8, 10}[i] {
			t.Fatalf("wildcard subscriber event %d = Seq %d n=%d", i, r.Seq, evN(t, &r.Event))
		}
	}
}

// A subscriber that does not read ends with an *OverflowError and never
// holds up the reader, replies, or other subscribers.
func TestEventsSubscribeOverflow(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SendEvent("BEFORE", nil)
	evSync(t, m)
	slow := m.Subscribe(ctxT(t, 5*time.Second), qmp.EventFilter{}, 4)
	defer slow.Close()
	fast := m.Subscribe(ctxT(t, 5*time.Second), qmp.EventFilter{}, 64)
	defer fast.Close()
	fastGot := make(chan []qmp.EventRecord, 1)
	go func() {
		var got []qmp.EventRecord
		for r := range fast.C {
			if got = append(got, r); len(got) == 20 {
				break
			}
		}
		fastGot <- got
	}()
	for i := 0; i < 20; i++ {
		s.SendEvent("E", evNum{i})
	}
	evSync(t, m) // the reply came through although the slow one is full
	got := evRecv(t, fastGot, "fast subscriber")
	for i, r := range got {
		if r.Seq != qmp.EventCursor(i+2) {
			t.Fatalf("fast subscriber event %d has Seq %d", i, r.Seq)
		}
	}
	if err := fast.Err(); err != nil {
		t.Fatalf("fast subscriber ended: %v", err)
	}

	buffered := evDrain(t, slow)
	if len(buffered) != 4 || buffered[0].Seq != 2 || buffered[3].Seq != 5 {
		t.Fatalf("slow subscriber received %d events, want Seq 2..5", len(buffered))
	}
	var oe *qmp.OverflowError
	if err := slow.Err(); !errors.As(err, &oe) || oe.Seq != 6 {
		t.Fatalf("slow subscriber Err() = %v, want *OverflowError{Seq: 6}", err)
	}
	if msg := oe.Error(); msg != "qmp: event subscriber fell behind; first missed event has Seq 6" {
		t.Fatalf("OverflowError.Error() = %q", msg)
	}
	// The history has everything, so the missed events can be recovered.
	missed := m.EventsAfter(oe.Seq-1, qmp.EventFilter{})
	if len(missed) != 16 || missed[0].Seq != 6 || evN(t, &missed[0].Event) != 4 || missed[15].Seq != 21 {
		t.Fatalf("EventsAfter(%d) = %d events, want Seq 6..21", oe.Seq-1, len(missed))
	}
	slow.Close() // after the end: a no-op that keeps the reason
	if !errors.As(slow.Err(), &oe) {
		t.Fatalf("Close after overflow changed Err() to %v", slow.Err())
	}
}

func TestEventsSubscriptionEnds(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)

	closed := m.Subscribe(ctxT(t, 5*time.Second), qmp.EventFilter{}, 0)
	s.SendEvent("ONE", nil)
	if r := evTake(t, closed, 1); r[0].Type != "ONE" {
		t.Fatalf("got %s, want ONE", r[0].Type)
	}
	closed.Close()
	closed.Close()
	if rest := evDrain(t, closed); len(rest) != 0 {
		t.Fatalf("%d events after Close", len(rest))
	}
	if err := closed.Err(); err != qmp.ErrSubscriptionClosed {
		t.Fatalf("Err() after Close = %v, want ErrSubscriptionClosed", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancelled := m.Subscribe(ctx, qmp.EventFilter{}, 0)
	cancel()
	evDrain(t, cancelled)
	if err := cancelled.Err(); err != context.Canceled {
		t.Fatalf("Err() after ctx cancel = %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	expired := m.Subscribe(ctx, qmp.EventFilter{}, 0)
	evDrain(t, expired)
	if err := expired.Err(); err != context.DeadlineExceeded {
		t.Fatalf("Err() after ctx deadline = %v, want context.DeadlineExceeded", err)
	}

	live := m.Subscribe(ctxT(t, 5*time.Second), qmp.EventFilter{}, 0)
	defer live.Close()
	s.DropConnection()
	evDrain(t, live)
	var ce *qmp.ClosedError
	if err := live.Err(); !errors.As(err, &ce) || !qmp.IsSocketClosed(err) {
		t.Fatalf("Err() after the connection ended = %v, want a *ClosedError", err)
	}
	waitClosed(t, m, 5*time.Second)

	late := m.Subscribe(ctxT(t, 5*time.Second), qmp.EventFilter{}, 0)
	evDrain(t, late)
	if err := late.Err(); !errors.As(err, &ce) {
		t.Fatalf("Subscribe after the end: Err() = %v, want a *ClosedError", err)
	}
}

func TestEventsThousandDeviceWaiters(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	const n = 1000
	ctx := ctxT(t, 20*time.Second)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("dev%d", i)
		go func() {
			e, err := m.WaitDeviceDeletedEvent(ctx, id, 0)
			if err == nil {
				var d qmp.DeviceDeletedEventData
				if err = json.Unmarshal(e.Data, &d); err == nil && (d.Device != id || d.Path != "/machine/peripheral/"+id) {
					err = fmt.Errorf("waiter for %s got %s", id, e.Data)
				}
			}
			errs <- err
		}()
	}
	for i := n - 1; i >= 0; i-- {
		id := fmt.Sprintf("dev%d", i)
		s.SendEvent("DEVICE_DELETED", evDev{id, "/machine/peripheral/" + id})
	}
	for i := 0; i < n; i++ {
		if err := evRecv(t, errs, "device waiters"); err != nil {
			t.Fatal(err)
		}
	}
}

// Many waiters whose contexts expire must leave nothing behind, and the
// few that remain still get their event.
func TestEventsThousandWaitersMostlyExpire(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	const n = 1000
	cur := m.EventCursor()
	var short sync.WaitGroup
	shortErrs := make(chan error, n)
	longRes := make(chan qmp.EventRecord, n)
	longErrs := make(chan error, n)
	for i := 0; i < n; i++ {
		if i%10 == 0 {
			go func() {
				r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), cur, qmp.EventFilter{Types: []string{"SAME"}})
				if err != nil {
					longErrs <- err
					return
				}
				longRes <- r
			}()
			continue
		}
		short.Add(1)
		go func() {
			defer short.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_, err := m.WaitEventAfter(ctx, cur, qmp.EventFilter{Types: []string{"SAME"}})
			shortErrs <- err
		}()
	}
	done := make(chan struct{})
	go func() { short.Wait(); close(done) }()
	evRecv(t, done, "short waiters")
	for i := 0; i < n-n/10; i++ {
		if err := <-shortErrs; err != context.DeadlineExceeded {
			t.Fatalf("short waiter returned %v, want bare context.DeadlineExceeded", err)
		}
	}
	s.SendEvent("SAME", nil)
	for i := 0; i < n/10; i++ {
		select {
		case r := <-longRes:
			if r.Type != "SAME" || r.Seq != cur+1 {
				t.Fatalf("long waiter got %+v", r)
			}
		case err := <-longErrs:
			t.Fatalf("long waiter: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d long waiters returned", i, n/10)
		}
	}
}

// Every wait returns ctx.Err() itself, unwrapped, when its context ends.
func TestEventsWaitsHonourContext(t *testing.T) {
	var on atomic.Bool
	on.Store(true)
	s := migrationServer(t, &on, "")
	m := dial(t, s, nil)
	cur := m.EventCursor()
	waits := map[string]func(ctx context.Context) error{
		"WaitDeviceDeleted": func(ctx context.Context) error { _, err := m.WaitDeviceDeleted(ctx, "x", cur); return err },
		"GetEvents":         func(ctx context.Context) error { _, err := m.GetEvents(ctx, "NONE", 0); return err },
		"WaitEventAfter": func(ctx context.Context) error {
			_, err := m.WaitEventAfter(ctx, cur, qmp.EventFilter{})
			return err
		},
		"WaitEventSince": func(ctx context.Context) error {
			_, err := m.WaitEventSince(ctx, time.Now(), qmp.EventFilter{Types: []string{"NONE"}})
			return err
		},
		"WaitMachineResumeStateEvent": func(ctx context.Context) error { _, err := m.WaitMachineResumeStateEvent(ctx, 0); return err },
		"WaitDeviceDeletedEvent":      func(ctx context.Context) error { _, err := m.WaitDeviceDeletedEvent(ctx, "x", 0); return err },
		"WaitJobStatusChangeEvent": func(ctx context.Context) error {
			_, err := m.WaitJobStatusChangeEvent(ctx, "j", "concluded", 0)
			return err
		},
		"WaitDeviceTrayMovedEvent":  func(ctx context.Context) error { _, err := m.WaitDeviceTrayMovedEvent(ctx, "cd", 0); return err },
		"WaitDeviceTrayOpenedEvent": func(ctx context.Context) error { _, err := m.WaitDeviceTrayOpenedEvent(ctx, "cd", 0); return err },
		"WaitDeviceTrayClosedEvent": func(ctx context.Context) error { _, err := m.WaitDeviceTrayClosedEvent(ctx, "cd", 0); return err },
		"WaitBlockJob":              func(ctx context.Context) error { _, err := m.WaitBlockJob(ctx, "j", cur); return err },
		"WaitMigration":             func(ctx context.Context) error { _, err := m.WaitMigration(ctx, cur); return err },
		"WaitShutdown":              func(ctx context.Context) error { _, err := m.WaitShutdown(ctx, cur); return err },
	}
	type outcome struct {
		name string
		err  error
		want error
	}
	out := make(chan outcome, 2*len(waits))
	for name, wait := range waits {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			out <- outcome{name + " (deadline)", wait(ctx), context.DeadlineExceeded}
		}()
		go func() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			out <- outcome{name + " (cancelled)", wait(ctx), context.Canceled}
		}()
	}
	for range 2 * len(waits) {
		o := evRecv(t, out, "waits with a context")
		if o.err != o.want {
			t.Errorf("%s returned %v, want bare %v", o.name, o.err, o.want)
		}
	}
	// The monitor is unaffected.
	evSync(t, m)
}

// A wait whose ctx has ended returns ctx.Err(), even with a match
// buffered: a loop that waits event by event stops at its ctx.
func TestWaitWithEndedCtx(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	cur := m.EventCursor()
	s.SendEvent("STOP", nil)
	evSync(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, f := range []qmp.EventFilter{{}, {Match: func(*qmp.Event) bool { return true }}} {
		if r, err := m.WaitEventAfter(ctx, cur, f); err != context.Canceled {
			t.Fatalf("WaitEventAfter with an ended ctx = Seq %d, %v; want context.Canceled", r.Seq, err)
		}
	}
}
