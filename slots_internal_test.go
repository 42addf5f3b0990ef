package qmp

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// A slot handed to a waiter at the moment it gives up is passed on to the
// next in line, never lost or counted twice, whichever comes first.
func TestSlotHandedToWaiterGivingUp(t *testing.T) {
	lineLen := func(m *Monitor) int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.slotq)
	}
	// A goroutine parked in acquireSlot sends no signal: a bounded poll of
	// the line is the only way to know it is in it.
	waitLine := func(m *Monitor, n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); lineLen(m) != n; time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d waiters in line after 5 s, want %d", lineLen(m), n)
			}
		}
	}
	acquire := func(m *Monitor, ctx context.Context, c *call) <-chan error {
		r := make(chan error, 1)
		go func() {
			m.mu.Lock()
			err := m.acquireSlot(ctx, c)
			m.mu.Unlock()
			r <- err
		}()
		return r
	}
	recv := func(r <-chan error) error {
		t.Helper()
		select {
		case err := <-r:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("a waiter still waits 5 s after a slot was freed")
			return nil
		}
	}
	took := 0
	for i := 0; i < 300; i++ {
		m := &Monitor{maxInFlight: 1, done: make(chan struct{})}
		holder, quitter, next := newCall(), newCall(), newCall()
		m.mu.Lock()
		if err := m.acquireSlot(context.Background(), holder); err != nil {
			t.Fatal(err)
		}
		m.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		qr := acquire(m, ctx, quitter)
		waitLine(m, 1)
		nr := acquire(m, context.Background(), next)
		waitLine(m, 2)

		// The slot goes to the quitter as it gives up: its ctx ends just
		// before or just after, under the same lock.
		m.mu.Lock()
		if i%2 == 0 {
			cancel()
		}
		m.releaseSlotOf(holder)
		cancel()
		m.mu.Unlock()
		if err := recv(qr); err == nil {
			took++ // it took the slot after all: its command goes out, and then frees it
			m.mu.Lock()
			if !quitter.slot || m.inUse != 1 {
				t.Fatalf("the quitter took the slot, but slot=%v inUse=%d", quitter.slot, m.inUse)
			}
			m.releaseSlotOf(quitter)
			m.mu.Unlock()
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("the quitter: %v", err)
		}
		if err := recv(nr); err != nil {
			t.Fatalf("the next in line: %v", err)
		}
		m.mu.Lock()
		if !next.slot || m.inUse != 1 || len(m.slotq) != 0 {
			t.Fatalf("next in line: slot=%v inUse=%d line=%d, want true 1 0", next.slot, m.inUse, len(m.slotq))
		}
		m.mu.Unlock()
	}
	if took == 0 || took == 300 {
		t.Fatalf("the quitter took the slot in %d of 300 runs: one of the two orders was not tested", took)
	}
}

// BenchmarkInFlightCap compares the in-flight cap as built (a count under
// the monitor's lock, slots.go) with a channel semaphore beside that lock,
// on the monitor's pattern: a caller takes a slot and queues its command
// under m.mu; later the reader routes the reply and gives the slot back
// under m.mu. With fewer slots than callers, callers wait in line.
func BenchmarkInFlightCap(b *testing.B) {
	for _, tc := range []struct{ slots, callers int }{{1024, 8}, {4, 64}} {
		name := fmt.Sprintf("slots=%d/callers=%d", tc.slots, tc.callers)
		b.Run("lock/"+name, func(b *testing.B) {
			b.ReportAllocs()
			m := &Monitor{maxInFlight: tc.slots, done: make(chan struct{})}
			ctx := context.Background()
			queued := 0 // stands for the queues the lock guards
			runCallers(b, tc.callers, func() {
				var c call
				m.mu.Lock()
				if err := m.acquireSlot(ctx, &c); err != nil {
					b.Error(err)
				}
				queued++
				m.mu.Unlock()
				runtime.Gosched() // the round trip
				m.mu.Lock()
				queued--
				m.releaseSlotOf(&c)
				m.mu.Unlock()
			})
		})
		b.Run("channel/"+name, func(b *testing.B) {
			b.ReportAllocs()
			m := &Monitor{done: make(chan struct{})}
			sem := make(chan struct{}, tc.slots)
			ctx := context.Background()
			queued := 0
			runCallers(b, tc.callers, func() {
				select {
				case sem <- struct{}{}: // the fast path, as the lock version has
				default:
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
					case <-m.done:
					}
				}
				m.mu.Lock()
				queued++
				m.mu.Unlock()
				runtime.Gosched() // the round trip
				m.mu.Lock()
				queued--
				m.mu.Unlock()
				<-sem
			})
		})
	}
}

// runCallers runs op b.N times, shared among n goroutines.
func runCallers(b *testing.B, n int, op func()) {
	var wg sync.WaitGroup
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := 0; i < k; i++ {
				op()
			}
		}(b.N/n + boolInt(g < b.N%n))
	}
	wg.Wait()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
