//go:build unix

package qmp_test

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// TestInFlightCapExactAfterCancellationStorm: callers that give up at
// random moments (waiting for a slot, queued, or written) leave the cap
// exactly as it was: afterwards MaxInFlight commands go out at once, and
// not one more.
func TestInFlightCapExactAfterCancellationStorm(t *testing.T) {
	const max = 3
	s := newServer(t, qmptest.Config{Capabilities: []string{}})
	g := newHeldGate(t, "done")
	s.Handle("block", g.handle)
	m := dial(t, s, &qmp.Options{MaxInFlight: max})

	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed))
			for i := 0; i < 200; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rnd.Intn(300))*time.Microsecond)
				err := m.RunContext(ctx, qmp.Command{Name: "query-status"}, nil)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("query-status: %v", err)
					return
				}
			}
		}(int64(w))
	}
	waitAll(t, &wg, 30*time.Second)
	if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{Name: "query-status"}, nil); err != nil {
		t.Fatalf("a command after the storm: %v (were slots lost?)", err) // every abandoned command has been answered by now
	}

	sent := len(s.Requests())
	errs := blockedCalls(t, m, max)
	if reqs, err := s.WaitRequests(sent+max, 5*time.Second); err != nil {
		t.Fatalf("%v (a slot leaked keeps a command back; got %v)", err, requestNames(reqs[sent:]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := m.RunContext(ctx, qmp.Command{Name: "block"}, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller beyond the %d held: got %v, want context.DeadlineExceeded (the cap let it through)", max, err)
	}
	if got := len(s.Requests()) - sent; got != max {
		t.Fatalf("the server received %d commands after the storm, want %d", got, max)
	}
	g.open()
	for i := 0; i < max; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("held caller: %v", err)
		}
	}
}

// TestSlotWaitersEndWithConnection: callers waiting for a slot return the
// connection's error as soon as it ends.
func TestSlotWaitersEndWithConnection(t *testing.T) {
	s := newServer(t, qmptest.Config{Capabilities: []string{}})
	g := newHeldGate(t, "done")
	s.Handle("block", g.handle)
	m := dial(t, s, &qmp.Options{MaxInFlight: 1})
	held := blockedCalls(t, m, 1)
	g.wait(t, 5*time.Second)
	waiters := blockedCalls(t, m, 4)
	m.Close()
	for i := 0; i < 5; i++ {
		var err error
		select {
		case err = <-held:
			held = nil
		case err = <-waiters:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of 5 callers still wait 5 s after Close", 5-i)
		}
		if !qmp.IsSocketClosed(err) {
			t.Fatalf("caller after Close: got %v, want the connection's end", err)
		}
	}
}
