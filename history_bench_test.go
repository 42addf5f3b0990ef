package qmp

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// benchHistory holds n DEVICE_DELETED events plus one RARE event every
// 1,000, with increasing timestamps one millisecond apart.
func benchHistory(n int) *history {
	h := newHistory(Options{EventHistory: n, EventHistoryBytes: 1 << 30})
	now := time.Now()
	for i := 0; i < n; i++ {
		typ := "DEVICE_DELETED"
		if i%1000 == 0 {
			typ = "RARE"
		}
		e := Event{Type: typ, Data: []byte(fmt.Sprintf(`{"device": "dev%d", "path": "/machine/peripheral/dev%d"}`, i, i))}
		e.Timestamp.Seconds, e.Timestamp.Microseconds = uint64(1700000000+i/1000), uint64(i%1000*1000)
		h.add(e, now)
	}
	return h
}

// FindEvents(type, after) with a selective type: the 50 RARE events of
// the newer half of 100k.
func BenchmarkHistoryFindEventsSelective(b *testing.B) {
	m := &Monitor{events: benchHistory(100000)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if evs, _ := m.FindEvents("RARE", 1700000050); len(evs) != 50 {
			b.Fatalf("found %d, want 50", len(evs))
		}
	}
}

// FindEvents("", after) for the last second of 100k events (1,000 events).
func BenchmarkHistoryFindEventsRecentAll(b *testing.B) {
	m := &Monitor{events: benchHistory(100000)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if evs, _ := m.FindEvents("", 1700000099); len(evs) != 1000 {
			b.Fatalf("found %d, want 1000", len(evs))
		}
	}
}

// EventsAfter(cursor) 10 events from the end of 100k.
func BenchmarkHistoryEventsAfterNearEnd(b *testing.B) {
	m := &Monitor{events: benchHistory(100000)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rs := m.EventsAfter(99990, EventFilter{}); len(rs) != 10 {
			b.Fatalf("found %d, want 10", len(rs))
		}
	}
}

// The history's own heap per event (records, indexes, data), without the
// monitor's decoding.
func BenchmarkHistoryMemoryPerEvent(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	h := benchHistory(b.N)
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(h)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "B/event")
}
