package qmp_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

func TestSplitWrites(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.SetSplitWrites(true)
	m := dial(t, s, nil)
	out, err := m.RunHuman("info version")
	if err != nil || out != "7.2.22 (qmptest)\r\n" {
		t.Fatalf("RunHuman over 1-byte writes = %q, %v", out, err)
	}
	s.SendEvent("SPLIT", map[string]int{"n": 1})
	if evs, err := m.GetEvents(ctxT(t, 5*time.Second), "SPLIT", 0); err != nil || string(evs[0].Data) != `{"n": 1}` {
		t.Fatalf("event over 1-byte writes = %+v, %v", evs, err)
	}
}

// TestCtxBoundsWriting: QEMU stops reading (its executor is busy and its
// queue full) while 32 callers send 256 KiB commands with a 300 ms ctx.
// Every caller returns by its deadline, none is stuck in write(), and once
// QEMU reads again it receives only whole commands: the connection stays
// healthy and every later caller gets its own reply.
func TestCtxBoundsWriting(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	h, release := gatedHandler(t, "")
	s.Handle("gate", h)
	m := dial(t, s, nil)
	gate := make(chan error, 1)
	go func() { gate <- m.Run(qmp.Command{Name: "gate"}, nil) }()
	if _, err := s.WaitRequests(2, 5*time.Second); err != nil { // qmp_capabilities and gate
		t.Fatal(err)
	}
	big := strings.Repeat("x", 256<<10)
	var wg sync.WaitGroup
	start := time.Now()
	var late atomic.Int64
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := m.RunContext(ctx, qmp.Command{Name: "echo", Arguments: map[string]any{"n": i, "pad": big}}, nil)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("caller %d: %v, want context.DeadlineExceeded (QEMU is not reading)", i, err)
			}
			if time.Since(start) > 2*time.Second {
				late.Add(1)
			}
		}(i)
	}
	waitAll(t, &wg, 20*time.Second)
	if n := late.Load(); n > 0 {
		t.Fatalf("%d callers returned long after their 300 ms ctx: stuck writing", n)
	}
	release()
	if err := <-gate; err != nil {
		t.Fatal(err)
	}
	checkOwnReplies(t, m, 4, 20)
	if err := m.Err(); err != nil {
		t.Fatalf("connection ended: %v (a torn command?)", err)
	}
	for _, r := range s.Requests() {
		if r.Name != "echo" && r.Name != "gate" && r.Name != "qmp_capabilities" {
			t.Fatalf("the server received %q: %.80q", r.Name, r.Raw)
		}
	}
}
