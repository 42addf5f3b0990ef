package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// The callbacks a caller gives the monitor (EventFilter.Match, the
// Logger's handler) never run on its reader goroutine: from them, Run
// works and Close returns, and a panic ends only their own wait or
// subscription.

// within fails the test unless f returns within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

func TestMatchMayRunAndClose(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	cur := m.EventCursor()
	var status string
	runs := qmp.EventFilter{Types: []string{"STOP"}, Match: func(*qmp.Event) bool {
		var st struct{ Status string }
		if err := m.Run(qmp.Command{Name: "query-status"}, &st); err != nil {
			t.Errorf("Run from a Match: %v", err)
		}
		status = st.Status
		return true
	}}
	closes := qmp.EventFilter{Types: []string{"SHUTDOWN"}, Match: func(*qmp.Event) bool { m.Close(); return true }}
	sub := m.Subscribe(context.Background(), qmp.EventFilter{Types: []string{"SHUTDOWN"}, Match: func(*qmp.Event) bool { m.Close(); return true }}, 4)
	s.SendEvent("STOP", nil)
	within(t, 5*time.Second, "a wait whose Match calls Run", func() {
		if _, err := m.WaitEventAfter(context.Background(), cur, runs); err != nil || status == "" {
			t.Errorf("WaitEventAfter = %v, status %q", err, status)
		}
	})
	s.Handle("x-block-forever", func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{NoReply: true} })
	pending := make(chan error, 1)
	go func() { pending <- m.Run(qmp.Command{Name: "x-block-forever"}, nil) }() // never answered
	s.SendEvent("SHUTDOWN", nil)
	within(t, 5*time.Second, "a wait whose Match calls Close", func() {
		if _, err := m.WaitEventAfter(context.Background(), cur, closes); err != nil {
			t.Errorf("WaitEventAfter(SHUTDOWN) = %v", err)
		}
	})
	within(t, 5*time.Second, "a pending Run after Close from a Match", func() {
		if err := <-pending; !qmp.IsSocketClosed(err) {
			t.Errorf("pending Run = %v, want the connection's end", err)
		}
	})
	within(t, 5*time.Second, "a subscription whose Match calls Close", func() {
		for range sub.C {
		}
	})
}

func TestMatchPanicEndsOnlyItsWait(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	m := dial(t, s, nil)
	cur := m.EventCursor()
	boom := qmp.EventFilter{Types: []string{"STOP"}, Match: func(*qmp.Event) bool { panic("boom") }}
	sub := m.Subscribe(context.Background(), boom, 4)
	defer sub.Close()
	s.SendEvent("STOP", nil)
	_, err := m.WaitEventAfter(ctxT(t, 5*time.Second), cur, boom)
	var pe *qmp.MatchPanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("WaitEventAfter with a panicking Match = %v, want a *MatchPanicError carrying \"boom\"", err)
	}
	within(t, 5*time.Second, "a subscription whose Match panics", func() {
		for range sub.C {
		}
	})
	if !errors.As(sub.Err(), &pe) {
		t.Fatalf("subscription Err = %v, want a *MatchPanicError", sub.Err())
	}
	if r, err := m.WaitEventAfter(ctxT(t, 5*time.Second), cur, qmp.EventFilter{Types: []string{"STOP"}}); err != nil || r.Type != "STOP" {
		t.Fatalf("a wait after the panic = %+v, %v", r, err)
	}
	checkOwnReplies(t, m, 2, 10)
}

// slogFunc is a slog.Handler calling f for every record.
type slogFunc func(slog.Record)

func (f slogFunc) Enabled(context.Context, slog.Level) bool      { return true }
func (f slogFunc) Handle(_ context.Context, r slog.Record) error { f(r); return nil }
func (f slogFunc) WithAttrs([]slog.Attr) slog.Handler            { return f }
func (f slogFunc) WithGroup(string) slog.Handler                 { return f }

func TestLoggerHandlerMayRunAndClose(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	var m atomic.Pointer[qmp.Monitor]
	var ran, panicked atomic.Bool
	closed := make(chan struct{})
	h := slogFunc(func(r slog.Record) {
		mon := m.Load()
		if mon == nil || r.Message != "qmp recv" {
			return
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key != "name" {
				return true
			}
			switch a.Value.String() {
			case "STOP":
				ran.Store(mon.Run(qmp.Command{Name: "query-status"}, nil) == nil)
			case "RESUME":
				panicked.Store(true)
				panic("handler boom")
			case "SHUTDOWN":
				mon.Close()
				close(closed)
			}
			return true
		})
	})
	mon := dial(t, s, &qmp.Options{Logger: slog.New(h)})
	m.Store(mon)
	cur := mon.EventCursor()
	for _, ev := range []string{"STOP", "RESUME", "SHUTDOWN"} {
		s.SendEvent(ev, nil)
	}
	within(t, 5*time.Second, "a handler that calls Run and then Close", func() { <-closed })
	within(t, 5*time.Second, "Close after the handler's Close", func() { mon.Close() })
	if !ran.Load() || !panicked.Load() {
		t.Fatalf("the handler's Run succeeded: %v; it panicked: %v", ran.Load(), panicked.Load())
	}
	if recs := mon.EventsAfter(cur, qmp.EventFilter{}); len(recs) != 3 {
		t.Fatalf("%d events recorded, want 3", len(recs))
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	var buf syncBuffer
	m := dial(t, s, &qmp.Options{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for _, cmd := range []qmp.Command{
		{Name: "object-add", Arguments: map[string]any{"qom-type": "secret", "id": "sec0", "data": "S3CRET-object"}},
		{Name: "set_password", Arguments: map[string]any{"protocol": "vnc", "password": "S3CRET-vnc"}},
		{Name: "change-vnc-password", Arguments: map[string]any{"password": "S3CRET-change"}},
		{Name: "human-monitor-command", Arguments: map[string]any{"command-line": "set_password vnc S3CRET-hmp"}},
		{Name: "human-monitor-command", Arguments: map[string]any{"command-line": "object_add secret,id=s1,data=S3CRET-hmp2"}},
		{Name: "guest-set-user-password", Arguments: map[string]any{"username": "root", "password": "UzNDUkVU", "crypted": false}},
	} {
		m.Run(cmd, nil)
	}
	for _, raw := range []string{
		`{"execute": "object-add", "arguments": {"qom-type": "s\u0065cret", "id": "sec1", "data": "S3CRET-escaped"}}`,
		`{"execute": "set_password", "arguments": {"protocol": "vnc", "pass\u0077ord": "S3CRET-escaped-name"}}`,
		`{"execute": "object-add", "arguments": {"qom-type": "secret", "id": "sec2", "props": {"data": "S3CRET-props"}}}`,
	} {
		m.Run(json.RawMessage(raw), nil)
	}

	m.Close()
	out := buf.String()
	if strings.Contains(out, "S3CRET") || strings.Contains(out, "UzNDUkVU") {
		t.Fatalf("a secret reached the log:\n%s", out)
	}
	if n := strings.Count(out, "redacted"); n != 9+9 { // and each of their replies
		t.Fatalf("%d values redacted, want 18:\n%s", n, out)
	}
	if !strings.Contains(out, `"id":"sec0"`) || !strings.Contains(out, `"set_password \u003credacted\u003e"`) {
		t.Fatalf("redaction took more than the secrets:\n%s", out)
	}
}

// TestLogQueueBounded drives the Logger's queue to its edge: a handler
// that is stuck while 1,000 events arrive holds up nothing, at most 256
// records wait for it, and once it runs again a warning says how many
// were dropped.
func TestLogQueueBounded(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	release := make(chan struct{})
	var handled, warned atomic.Int64
	var dropped atomic.Uint64
	h := slogFunc(func(r slog.Record) {
		<-release
		handled.Add(1)
		if r.Level == slog.LevelWarn && strings.Contains(r.Message, "log records were dropped") {
			warned.Add(1)
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "dropped" {
					dropped.Add(a.Value.Uint64())
				}
				return true
			})
		}
	})
	m := dial(t, s, &qmp.Options{Logger: slog.New(h)})
	for i := 0; i < 1000; i++ {
		s.SendEvent("STOP", nil)
	}
	within(t, 5*time.Second, "commands and events while the handler is stuck", func() {
		if _, err := m.WaitEventAfter(context.Background(), 999, qmp.EventFilter{}); err != nil {
			t.Errorf("the 1000th event: %v", err)
		}
		evSync(t, m)
	})
	close(release)
	m.Close()
	// Every record made was handled or counted as dropped: the greeting,
	// qmp_capabilities and its reply, 1,000 events, query-name and its
	// reply, and the end of the connection. Before release, the handler
	// holds one and the queue 256; the reply and the end may come after
	// (and the end be dropped, reported by a second warning at the end).
	const made = 3 + 1000 + 2 + 1
	records := handled.Load() - warned.Load()
	if w := warned.Load(); w < 1 || w > 2 || records > 1+256+2 || uint64(records)+dropped.Load() != made {
		t.Fatalf("handled %d records and %d warnings saying %d dropped; want at most 259 records, one or two warnings, %d in all", records, warned.Load(), dropped.Load(), made)
	}
}
