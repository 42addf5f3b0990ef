package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

func TestNewMonitorAndRun(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := m.Run(qmp.Command{"query-status", nil}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "running" || !st.Running {
		t.Fatalf("query-status = %+v", st)
	}
	if v := m.Version(); v.QEMU.Major != 7 || v.QEMU.Minor != 2 || v.QEMU.Micro != 22 {
		t.Fatalf("Version() = %+v", v)
	}
}

// serveEach accepts connections on ln, each handled by handle on its own
// goroutine (which may start more with spawn, and give track the other
// connections it opens). When the test ends it closes ln and every
// connection, and waits for every goroutine.
func serveEach(tb testing.TB, ln net.Listener, handle func(c net.Conn, track func(net.Conn), spawn func(func()))) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	spawn := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	spawn(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			spawn(func() { handle(c, track, spawn) })
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// proxyQMP listens on network/address and relays every connection to the
// unix socket target, so that a fake server can be reached over TCP or at
// a path that appears only later. It returns the listening address.
func proxyQMP(t *testing.T, network, address, target string) string {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	serveEach(t, ln, func(c net.Conn, track func(net.Conn), spawn func(func())) {
		up, err := net.Dial("unix", target)
		if err != nil {
			c.Close()
			return
		}
		track(up)
		spawn(func() { io.Copy(up, c); up.Close() })
		io.Copy(c, up)
		c.Close()
	})
	return ln.Addr().String()
}

// awaitBlocking returns a func that waits (5 s at most) until a call
// reports, through qmp's test hook, that it is about to block at where:
// the only signal that a call has reached a wait with no hook of its own.
// Set it up before starting the call; tests using it are not parallel.
func awaitBlocking(t *testing.T, where string) func() {
	t.Helper()
	ch := make(chan struct{}, 64)
	t.Cleanup(qmp.SetTestHook(func(w string) {
		if w == where {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}))
	return func() {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no call blocked at %q within 5s", where)
		}
	}
}

// noHang runs f and fails the test if it has not returned within 5s.
func noHang(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s hangs", what)
	}
}

func TestDoneAndErr(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	if err := m.Err(); err != nil {
		t.Fatalf("Err() while alive = %v", err)
	}
	select {
	case <-m.Done():
		t.Fatal("Done() closed while alive")
	default:
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	waitClosed(t, m, 5*time.Second)
	var ce *qmp.ClosedError
	if !errors.As(m.Err(), &ce) || ce.Cause != nil {
		t.Fatalf("Err() after Close = %#v, want *ClosedError without cause", m.Err())
	}
}

func TestQuit(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	if err := m.Run(qmp.Command{"quit", nil}, nil); err != nil {
		t.Fatalf("Run(quit) = %v", err)
	}
	waitClosed(t, m, 5*time.Second)
	var ce *qmp.ClosedError
	if !errors.As(m.Err(), &ce) || !errors.Is(ce.Cause, io.EOF) {
		t.Fatalf("Err() after quit = %v, want *ClosedError caused by io.EOF", m.Err())
	}
	if err := m.Run(qmp.Command{"query-name", nil}, nil); !qmp.IsSocketClosed(err) {
		t.Fatalf("Run after quit = %v, want IsSocketClosed", err)
	}
	evs, ok := m.FindEvents("SHUTDOWN", 0)
	if !ok || len(evs) != 1 || string(evs[0].Data) != `{"guest": false, "reason": "host-qmp-quit"}` {
		t.Fatalf("FindEvents(SHUTDOWN) = %+v, %v", evs, ok)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close after quit = %v", err)
	}
}

// runPending starts n commands the server never answers and waits until
// the server has them all.
func runPending(t *testing.T, s *qmptest.Server, m *qmp.Monitor, n int) <-chan error {
	t.Helper()
	s.Handle("hang", func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{NoReply: true} })
	before := len(s.Requests())
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			var res struct{}
			errs <- m.Run(qmp.Command{"hang", nil}, &res)
		}()
	}
	if _, err := s.WaitRequests(before+n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return errs
}

func checkAllClosed(t *testing.T, errs <-chan error, n int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			if !qmp.IsSocketClosed(err) {
				t.Errorf("pending call %d = %v, want IsSocketClosed", i, err)
			}
		case <-timeout:
			t.Fatalf("%d of %d pending calls still waiting after 5s", n-i, n)
		}
	}
}

func TestDropConnectionFailsPendingCalls(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	errs := runPending(t, s, m, 20)
	s.DropConnection()
	checkAllClosed(t, errs, 20)
	waitClosed(t, m, 5*time.Second)
	if !errors.Is(m.Err(), io.EOF) {
		t.Fatalf("Err() = %v, want io.EOF cause", m.Err())
	}
}

func TestCloseFailsPendingCalls(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	errs := runPending(t, s, m, 20)
	noHang(t, "Close with a wedged server", func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	checkAllClosed(t, errs, 20)
	noHang(t, "second Close", func() {
		if err := m.Close(); err != nil {
			t.Errorf("second Close() = %v", err)
		}
	})
	if err := m.Run(qmp.Command{"query-name", nil}, nil); !qmp.IsSocketClosed(err) {
		t.Fatalf("Run after Close = %v", err)
	}
	if _, err := m.RunHuman("info version"); !qmp.IsSocketClosed(err) {
		t.Fatalf("RunHuman after Close = %v", err)
	}
}

func TestCloseAfterServerGone(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.Close()
	waitClosed(t, m, 5*time.Second)
	noHang(t, "Close after the server went away", func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
}

func TestCloseConcurrent(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		}()
	}
	noHang(t, "concurrent Close", wg.Wait)
}

func TestGetEventsAfterClose(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SendEvent("KEPT", nil)
	if _, err := m.GetEvents(ctxT(t, 5*time.Second), "KEPT", 0); err != nil {
		t.Fatal(err)
	}
	m.Close()
	// Buffered events stay readable.
	if evs, err := m.GetEvents(ctxT(t, 5*time.Second), "KEPT", 0); err != nil || len(evs) != 1 {
		t.Fatalf("GetEvents(buffered) after Close = %v, %v", evs, err)
	}
	evs, err := m.GetEvents(ctxT(t, 5*time.Second), "MISSING", 0)
	if !qmp.IsSocketClosed(err) || evs != nil {
		t.Fatalf("GetEvents(nothing buffered) after Close = %v, %v; want nil and IsSocketClosed", evs, err)
	}
}

func TestRegressionCloseReturnsNilPromptly(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	errs := runPending(t, s, m, 3)
	for i := 0; i < 3; i++ {
		noHang(t, "Close", func() {
			if err := m.Close(); err != nil {
				t.Errorf("Close #%d = %v, want nil", i+1, err)
			}
		})
	}
	checkAllClosed(t, errs, 3)
}

func TestRegressionGetEventsAfterCloseNotNilNil(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	m.Close()
	for _, typ := range []string{"", "SHUTDOWN"} {
		//lint:ignore SA1012 v2.0.4 callers pass a nil ctx
		evs, err := m.GetEvents(nil, typ, 0)
		if err == nil || evs != nil {
			t.Fatalf("GetEvents(%q) after Close = %v, %v; want nil, error", typ, evs, err)
		}
	}
}

func TestRegressionReturnNull(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("null", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{RawReturn: json.RawMessage("null")}
	})
	m := dial(t, s, nil)
	if err := m.Run(qmp.Command{"null", nil}, nil); err != nil {
		t.Fatalf("Run(null, nil) = %v", err)
	}
	var res map[string]int
	if err := m.Run(qmp.Command{"null", nil}, &res); err != nil || res != nil {
		t.Fatalf("Run(null, &map) = %v, %v", res, err)
	}
	var st struct{ A int }
	if err := m.Run(qmp.Command{"null", nil}, &st); err != nil || st.A != 0 {
		t.Fatalf("Run(null, &struct) = %+v, %v", st, err)
	}
}

func TestRegressionWaitWokenOnEOF(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	res := make(chan error, 1)
	waiting := awaitBlocking(t, "event wait")
	go func() {
		evs, err := m.GetEvents(context.Background(), "NEVER", 0)
		if err == nil {
			err = fmt.Errorf("got events %v", evs)
		}
		res <- err
	}()
	waiting()
	s.DropConnection()
	select {
	case err := <-res:
		if !qmp.IsSocketClosed(err) {
			t.Fatalf("GetEvents after EOF = %v, want IsSocketClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GetEvents not woken by EOF")
	}
}

func TestRegressionWaitHelpersHonourCtx(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SendEvent("DEVICE_DELETED", map[string]string{"device": "other", "path": "/machine/peripheral/other"})
	if _, err := m.GetEvents(ctxT(t, 5*time.Second), "DEVICE_DELETED", 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	ev, err := m.WaitDeviceDeletedEvent(ctx, "mine", 0)
	if err != context.DeadlineExceeded || ev != nil {
		t.Fatalf("WaitDeviceDeletedEvent = %v, %v; want nil, context.DeadlineExceeded", ev, err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := m.WaitEventAfter(ctx2, 0, qmp.EventFilter{Types: []string{"NEVER"}}); err != context.Canceled {
		t.Fatalf("WaitEventAfter(cancelled ctx) = %v", err)
	}
}

func TestRegressionWildcardWakes(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	type result struct {
		evs []qmp.Event
		err error
	}
	res := make(chan result, 1)
	waiting := awaitBlocking(t, "event wait")
	go func() {
		evs, err := m.GetEvents(ctxT(t, 5*time.Second), "", 0)
		res <- result{evs, err}
	}()
	waiting()
	s.SendEvent("ANYTHING", map[string]int{"n": 1})
	r := <-res
	if r.err != nil || len(r.evs) != 1 || r.evs[0].Type != "ANYTHING" || string(r.evs[0].Data) != `{"n": 1}` {
		t.Fatalf("GetEvents(\"\") = %+v, %v", r.evs, r.err)
	}
}

// slowEndHandler is a slog.Handler whose record of the connection's end
// (logged by the reader goroutine as its last act) takes a while and then
// marks itself done.
type slowEndHandler struct{ done *atomic.Bool }

func (h slowEndHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h slowEndHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h slowEndHandler) WithGroup(string) slog.Handler            { return h }
func (h slowEndHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "qmp: connection ended" {
		// Widens the window in which a Close that did not wait for the
		// reader would already have returned; not a synchronisation.
		time.Sleep(50 * time.Millisecond)
		h.done.Store(true)
	}
	return nil
}

// Close returns only after the reader goroutine has finished.
func TestCloseWaitsForReader(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	var ended atomic.Bool
	m := dial(t, s, &qmp.Options{Logger: slog.New(slowEndHandler{&ended})})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !ended.Load() {
		t.Fatal("Close returned before the reader goroutine finished")
	}
}
