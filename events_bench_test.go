package qmp_test

// Event benchmarks against the fake server. Quick run:
//
//	go test -run XXX -bench 'Event' -benchtime 2000x .

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// evLines returns n DEVICE_DELETED event lines as QEMU 7.2 writes them,
// with distinct increasing timestamps, and the bytes of their data members.
func evLines(n int) (lines []byte, data int) {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"timestamp": {"seconds": %d, "microseconds": %d}, "event": "DEVICE_DELETED", "data": `, 1700000000+i/1000000, i%1000000)
		k := b.Len()
		fmt.Fprintf(&b, `{"device": "dev%d", "path": "/machine/peripheral/dev%d"}`, i, i)
		data += b.Len() - k
		b.WriteString("}\r\n")
	}
	return b.Bytes(), data
}

// keepAll is the history options under which nothing is evicted.
func keepAll(n int) *qmp.Options {
	return &qmp.Options{EventHistory: n + 1, EventHistoryBytes: 1 << 40}
}

// evIngest sends b.N events in one write and waits until the monitor has
// filed the last one (and every subscriber has read it). The history has
// its default bounds, as in use: past them each event also evicts one.
func evIngest(b *testing.B, subscribers int) {
	s := newServer(b, qmptest.Config{})
	m := dial(b, s, nil)
	buf, _ := evLines(b.N)
	ctx := ctxT(b, time.Minute)
	drained := make(chan error, subscribers)
	for i := 0; i < subscribers; i++ {
		sub := m.Subscribe(ctx, qmp.EventFilter{}, 4096)
		defer sub.Close()
		go func() {
			n := 0
			for range sub.C {
				if n++; n == b.N {
					drained <- nil
					return
				}
			}
			drained <- fmt.Errorf("subscriber ended after %d of %d events: %v", n, b.N, sub.Err())
		}()
	}
	cur := m.EventCursor()
	b.ResetTimer()
	start := time.Now()
	s.SendRaw(buf)
	if _, err := m.WaitEventAfter(ctx, cur+qmp.EventCursor(b.N)-1, qmp.EventFilter{}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < subscribers; i++ {
		if err := <-drained; err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

func BenchmarkEventIngest(b *testing.B)                { evIngest(b, 0) }
func BenchmarkEventIngestFourSubscribers(b *testing.B) { evIngest(b, 4) }

// BenchmarkEventMemory reports the heap held per buffered event, as read
// off the wire (the data is a copy of the line's bytes), and what is left
// of it after the data's own bytes.
func BenchmarkEventMemory(b *testing.B) {
	s := newServer(b, qmptest.Config{})
	m := dial(b, s, keepAll(b.N))
	buf, data := evLines(b.N)
	ctx := ctxT(b, time.Minute)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cur := m.EventCursor()
	b.ResetTimer()
	s.SendRaw(buf)
	if _, err := m.WaitEventAfter(ctx, cur+qmp.EventCursor(b.N)-1, qmp.EventFilter{}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(buf)
	held := float64(int64(after.HeapAlloc) - int64(before.HeapAlloc))
	b.ReportMetric(held/float64(b.N), "B/event")
	b.ReportMetric((held-float64(data))/float64(b.N), "overhead-B/event")
}

// BenchmarkEventWakeup is the latency from injecting an event on the
// server to the return of the WaitEventAfter blocked on it, wire included.
func BenchmarkEventWakeup(b *testing.B) {
	s := newServer(b, qmptest.Config{})
	m := dial(b, s, nil)
	ctx := ctxT(b, time.Minute)
	type res struct {
		err error
		at  time.Time
	}
	ready, done := make(chan qmp.EventCursor), make(chan res)
	go func() {
		for cur := range ready {
			_, err := m.WaitEventAfter(ctx, cur, qmp.EventFilter{Types: []string{"PING"}})
			done <- res{err, time.Now()}
		}
	}()
	defer close(ready)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ready <- m.EventCursor()
		// Let the waiter block before the event is sent.
		runtime.Gosched()
		start := time.Now()
		s.SendEvent("PING", nil)
		r := <-done
		if r.err != nil {
			b.Fatal(r.err)
		}
		total += r.at.Sub(start)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/wakeup")
}
