package qmp_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// TestMain fails the run when any goroutine of this module (the monitor's
// reader, a writer, the fake server) outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks of goroutines still running code of
// this module, waiting up to timeout for exiting ones to finish. Goroutines
// have no exit signal to wait on, so this polls.
func leakedGoroutines(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for i, g := range strings.Split(string(buf), "\n\n") {
			if i == 0 { // this goroutine
				continue
			}
			if strings.Contains(g, "github.com/0xef53/go-qmp/v2") && !strings.Contains(g, "leakedGoroutines") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newServer starts a fake QMP server closed at the end of the test.
func newServer(t testing.TB, cfg qmptest.Config) *qmptest.Server {
	t.Helper()
	s := qmptest.NewServer(cfg)
	t.Cleanup(s.Close)
	return s
}

// dial connects a Monitor to s, closed at the end of the test.
func dial(t testing.TB, s *qmptest.Server, opts *qmp.Options) *qmp.Monitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := qmp.Dial(ctx, "unix", s.Path(), opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", s.Path(), err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// ctxT returns a context that ends after d, cancelled at the end of the test.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitClosed fails the test unless m's connection ends within d.
func waitClosed(t testing.TB, m *qmp.Monitor, d time.Duration) {
	t.Helper()
	select {
	case <-m.Done():
	case <-time.After(d):
		t.Fatalf("monitor still open after %v", d)
	}
}
