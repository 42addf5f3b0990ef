package qmp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

// QEMU queues only a couple of connections behind the client it serves:
// once second clients have timed out waiting for a greeting, their dead
// connections fill the backlog and further connects fail with EAGAIN.
func TestQEMUBusySocket(t *testing.T) {
	t.Parallel()
	q, m := qemuMonitor(t, qemutest.Config{})
	path := q.Sockets[0]

	var busy error
	for i := 0; i < 8 && busy == nil; i++ {
		m2, err := qmp.NewMonitor(path, 100*time.Millisecond)
		switch {
		case err == nil:
			m2.Close()
			t.Fatal("a second client completed the handshake on a busy socket")
		case qmp.IsSocketBusy(err):
			busy = err
		case !errors.Is(err, qmp.ErrHandshake) || !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("second client #%d: %v, want a handshake timeout or a busy socket", i+1, err)
		}
	}
	if busy == nil {
		t.Fatal("8 second clients timed out and the socket never reported busy (EAGAIN)")
	}
	if !errors.Is(busy, qmp.ErrSocketBusy) || qmp.IsSocketNotAvailable(busy) {
		t.Fatalf("busy socket error = %v, want ErrSocketBusy and not IsSocketNotAvailable", busy)
	}
	if st := qemuStatus(t, m); st != "running" {
		t.Fatalf("first client while the socket is busy: status %q", st)
	}

	// WaitForSocket retries until its ctx ends...
	start := time.Now()
	_, err := qmp.Dial(ctxT(t, 200*time.Millisecond), "unix", path, &qmp.Options{WaitForSocket: true})
	if !errors.Is(err, qmp.ErrSocketBusy) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("Dial(WaitForSocket) on the busy socket = %v after %v, want ErrSocketBusy and DeadlineExceeded after 200ms", err, time.Since(start))
	}
	// ...and connects once the first client has left and QEMU has
	// discarded the dead connections queued behind it.
	type result struct {
		m   *qmp.Monitor
		err error
	}
	res := make(chan result, 1)
	go func() {
		m3, err := qmp.Dial(ctxT(t, qemuWait), "unix", path, &qmp.Options{WaitForSocket: true})
		res <- result{m3, err}
	}()
	m.Close()
	r := evRecv(t, res, "Dial(WaitForSocket) after the first client left")
	if r.err != nil {
		t.Fatalf("Dial(WaitForSocket) after the first client left: %v", r.err)
	}
	defer r.m.Close()
	if st := qemuStatus(t, r.m); st != "running" {
		t.Fatalf("client after the busy spell: status %q", st)
	}
}
