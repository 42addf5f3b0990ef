package qmp_test

// Tests that every reply reaches its own caller whatever the input: ctx
// racing the end of the connection, commands QEMU would split, a server that
// stops reading, corrupt streams, floods.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// watchdog fails the test with every goroutine's stack if done is not
// closed within d: a deadlock detector, not a speed target.
// waitAll waits for wg under a watchdog of d.
func waitAll(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	watchdog(t, d, done)
}

func watchdog(t *testing.T, d time.Duration, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(d):
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		t.Fatalf("still running after %v: deadlock? (goroutines dumped above)", d)
	}
}

type echoN struct {
	N int `json:"n"`
}

// checkOwnReplies runs n echo commands from g goroutines and fails on any
// reply that is not the caller's own.
func checkOwnReplies(t *testing.T, m *qmp.Monitor, g, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				want := w*1_000_000 + i
				var got echoN
				if err := m.Run(qmp.Command{Name: "echo", Arguments: echoN{want}}, &got); err != nil || got.N != want {
					if bad.Add(1) <= 5 {
						t.Errorf("echo n=%d returned n=%d, err %v", want, got.N, err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	if b := bad.Load(); b > 0 {
		t.Fatalf("%d of %d replies were not the caller's own", b, g*n)
	}
}

// TestStressDeadlinesRacingClose: callers with random microsecond deadlines
// on 16 goroutines while the monitor is closed under them. Every call must
// return, exactly once, and a fresh monitor in the same process must then
// give every caller its own reply. (The pooled calls of an earlier design
// were completed twice here and reused while live.)
func TestStressDeadlinesRacingClose(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := 0; r < rounds; r++ {
			m := dial(t, s, nil)
			var wg sync.WaitGroup
			var returned atomic.Int64
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					rng := rand.New(rand.NewSource(int64(r*100 + w)))
					for i := 0; ; i++ {
						ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.Intn(200))*time.Microsecond)
						var got echoN
						err := m.RunContext(ctx, qmp.Command{Name: "echo", Arguments: echoN{w*1000 + i}}, &got)
						cancel()
						returned.Add(1)
						if err == nil && got.N != w*1000+i {
							t.Errorf("echo n=%d returned n=%d", w*1000+i, got.N)
						}
						if err != nil && !errors.Is(err, context.DeadlineExceeded) && !qmp.IsSocketClosed(err) {
							t.Errorf("unexpected error: %v", err)
						}
						if qmp.IsSocketClosed(err) {
							return
						}
					}
				}(w)
			}
			time.Sleep(time.Duration(r%5) * time.Millisecond) // let the load build up; any length will do
			m.Close()
			wg.Wait()
		}
		m := dial(t, s, nil)
		checkOwnReplies(t, m, 8, 25)
	}()
	watchdog(t, 60*time.Second, done)
}

// TestCommandsQEMUWouldSplitAreRefused: nothing is sent for a command QEMU
// would not take as exactly one message, the caller learns why, and the
// connection and other callers carry on.
func TestCommandsQEMUWouldSplitAreRefused(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	m := dial(t, s, nil)
	nested := func(depth int) json.RawMessage {
		return json.RawMessage(strings.Repeat("[", depth) + strings.Repeat("]", depth))
	}
	before := len(s.Requests())
	for _, tc := range []struct {
		name  string
		cmd   interface{}
		limit string
	}{
		{"42", 42, ""},
		{"nil", nil, ""},
		{"true", true, ""},
		{"string", "query-status", ""},
		{"array", []qmp.Command{{Name: "query-status"}}, ""},
		{"nested 1,100", qmp.Command{Name: "query-name", Arguments: map[string]any{"x": nested(1100)}}, "nesting"},
		// The command object, its arguments and 1,023 arrays: 1,025 levels.
		{"nested one past the limit", qmp.Command{Name: "query-name", Arguments: map[string]any{"x": nested(1023)}}, "nesting"},
		{"0xFF in a string", json.RawMessage("{\"execute\":\"query-name\",\"id\":\"\xff\"}"), ""},
		{"exec-oob in band", json.RawMessage(`{"exec-oob":"migrate-pause","id":1}`), ""},
	} {
		err := m.Run(tc.cmd, nil)
		var ce *qmp.CommandError
		if !errors.Is(err, qmp.ErrInvalidCommand) || !errors.As(err, &ce) || ce.Limit != tc.limit {
			t.Errorf("%s: Run = %v, want a *CommandError (limit %q)", tc.name, err, tc.limit)
			continue
		}
		if tc.limit == "nesting" && (ce.Max != 1024 || ce.Value <= 1024 || !strings.Contains(err.Error(), fmt.Sprint(ce.Value))) {
			t.Errorf("%s: %+v: want the depth and QEMU's limit 1024 named", tc.name, ce)
		}
	}
	// At the limit exactly: sent, and answered once.
	var got json.RawMessage
	if err := m.Run(qmp.Command{Name: "echo", Arguments: map[string]any{"x": nested(1022)}}, &got); err != nil {
		t.Fatalf("a command nesting exactly 1,024 deep: %v", err)
	}
	if n := len(s.Requests()) - before; n != 1 {
		t.Fatalf("the server received %d commands, want only the one at the limit", n)
	}
	checkOwnReplies(t, m, 4, 20)
}

// TestInFlightCapBoundsAbandoned: against a stalled QEMU, a loop of
// commands with 10 ms deadlines never blocks past its deadline, and the
// abandoned commands that pile up for QEMU stop at the in-flight cap.
func TestInFlightCapBoundsAbandoned(t *testing.T) {
	s := newServer(t, qmptest.Config{Capabilities: []string{}})
	h, release := gatedHandler(t, "")
	s.Handle("gate", h)
	m := dial(t, s, &qmp.Options{MaxInFlight: 16})
	go m.Run(qmp.Command{Name: "gate"}, nil)
	if _, err := s.WaitRequests(2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			err := m.RunContext(ctx, qmp.Command{Name: "query-status"}, nil)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("call %d: %v, want context.DeadlineExceeded", i, err)
				return
			}
		}
	}()
	watchdog(t, 30*time.Second, done)
	release()
	if err := m.Run(qmp.Command{Name: "query-status"}, nil); err != nil {
		t.Fatal(err)
	}
	// capabilities, gate, at most 15 abandoned query-status (the gate holds
	// one slot), the last query-status.
	if n := len(s.Requests()); n > 2+15+1 {
		t.Fatalf("QEMU received %d commands: abandoned commands piled up past the in-flight cap", n)
	}
}

// TestCorruptStreamEndsConnection: bytes that can never become a valid
// message end the connection at once with a protocol error that names the
// offset and shows the bytes; no pending call waits for more input.
func TestCorruptStreamEndsConnection(t *testing.T) {
	for name, raw := range map[string]string{
		"raw CR LF in a string": "{\"return\": {\"unterminated\": \"string}\r\n{\"return\": {}}\r\n",
		"missing colon":         `{"return" {}}`,
		"bad number":            `{"return": 01}`,
		"misspelt keyword":      `{"return": tru }`,
		"bad escape":            `{"return": "\x"}`,
		"not an object":         `["return"]`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, qmptest.Config{})
			s.Handle("bad", func(s *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
				s.SendRaw([]byte(raw))
				return qmptest.Reply{NoReply: true}
			})
			m := dial(t, s, nil)
			errc := make(chan error, 1)
			go func() { errc <- m.Run(qmp.Command{Name: "bad"}, nil) }()
			var err error
			select {
			case err = <-errc:
			case <-time.After(5 * time.Second):
				t.Fatalf("the call still waits after %q", raw)
			}
			if !errors.Is(err, qmp.ErrProtocol) || !qmp.IsSocketClosed(err) || !strings.Contains(err.Error(), "at byte ") {
				t.Fatalf("Run = %v, want the connection's end with a protocol error naming the byte", err)
			}
		})
	}
}

// TestManyIDlessErrors: a burst of 1,100 id-less parse errors (what QEMU
// sends for a command past its nesting limit) ends the connection with a
// protocol error; nothing is handed to a caller as its reply.
func TestManyIDlessErrors(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	s.Handle("burst", func(s *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
		s.SendRaw([]byte(strings.Repeat(`{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}`+"\r\n", 1100)))
		return qmptest.Reply{NoReply: true}
	})
	m := dial(t, s, nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; ; j++ {
				var got echoN
				err := m.Run(qmp.Command{Name: "echo", Arguments: echoN{i*1000 + j}}, &got)
				if err != nil {
					if !qmp.IsSocketClosed(err) {
						t.Errorf("echo: %v, want the connection's end", err)
					}
					return
				}
				if got.N != i*1000+j {
					t.Errorf("echo n=%d got n=%d", i*1000+j, got.N)
				}
			}
		}(i)
	}
	err := m.Run(qmp.Command{Name: "burst"}, nil)
	if !errors.Is(err, qmp.ErrProtocol) {
		t.Errorf("burst: %v, want a protocol error", err)
	}
	waitAll(t, &wg, 20*time.Second)
}

// TestOversizedMessageMemoryBounded: a reply far over MaxMessageSize ends
// the connection with ErrMessageTooLarge without buffering it.
func TestOversizedMessageMemoryBounded(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	huge := []byte(`{"return": "` + strings.Repeat("z", 64<<20) + `"}` + "\r\n")
	s.Handle("huge", func(s *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
		s.SendRaw(huge)
		return qmptest.Reply{NoReply: true}
	})
	m := dial(t, s, &qmp.Options{MaxMessageSize: 1 << 20})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := m.Run(qmp.Command{Name: "huge"}, nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, qmp.ErrMessageTooLarge) {
		t.Fatalf("Run = %v, want ErrMessageTooLarge", err)
	}
	// The fake server's own copy of the message is allocated before, so
	// what was allocated during the call is the monitor's.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("the monitor allocated %d MiB reading a message over a 1 MiB limit", grew>>20)
	}
}

// TestCloseRacesEverything: Close racing Run, waits and subscriptions, in
// a loop, with a watchdog: every operation returns, nothing leaks.
func TestCloseRacesEverything(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := 0; r < rounds; r++ {
			m := dial(t, s, nil)
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(3)
				go func() {
					defer wg.Done()
					for m.Run(qmp.Command{Name: "echo", Arguments: echoN{1}}, nil) == nil {
					}
				}()
				go func() {
					defer wg.Done()
					_, err := m.WaitEventAfter(context.Background(), m.EventCursor(), qmp.EventFilter{Types: []string{"NEVER"}})
					if !qmp.IsSocketClosed(err) {
						t.Errorf("wait: %v", err)
					}
				}()
				go func() {
					defer wg.Done()
					sub := m.Subscribe(context.Background(), qmp.EventFilter{}, 4)
					for range sub.C {
					}
				}()
			}
			if r%2 == 0 {
				runtime.Gosched()
			}
			m.Close()
			wg.Wait()
		}
	}()
	watchdog(t, 120*time.Second, done)
}

// TestEventFloodWithCommands: 1,000,000 events while 64 goroutines run
// commands: every command completes with its own reply, and the history
// stays within its bounds.
func TestEventFloodWithCommands(t *testing.T) {
	total := 1_000_000
	if testing.Short() || raceEnabled {
		total = 200_000
	}
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	m := dial(t, s, &qmp.Options{EventHistory: 5000})
	ev := `{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "FLOOD", "data": {"i": 1}}` + "\r\n"
	blob := []byte(strings.Repeat(ev, 10_000))
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for sent := 0; sent < total; sent += 10_000 {
			s.SendRaw(blob)
		}
	}()
	checkOwnReplies(t, m, 64, 20)
	<-flooded
	// The last event is in when a command sent after it is answered.
	if err := m.Run(qmp.Command{Name: "echo"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := m.EventCursor(); got != qmp.EventCursor(total) {
		t.Fatalf("EventCursor = %d, want %d events received", got, total)
	}
	if n := len(m.EventsAfter(0, qmp.EventFilter{})); n != 5000 {
		t.Fatalf("the history holds %d events, want its bound 5000", n)
	}
}

// TestErrFinalBeforeCallsLearn: with 16 calls pending when the server
// drops the connection, each call that returns the connection's error finds
// Err() set and Done() closed, and the error is a *net.OpError as v2.0.4's.
func TestErrFinalBeforeCallsLearn(t *testing.T) {
	for round := 0; round < 20; round++ {
		s := newServer(t, qmptest.Config{})
		h, _ := gatedHandler(t, "")
		s.Handle("gate", h)
		m := dial(t, s, nil)
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			go func() {
				err := m.Run(qmp.Command{Name: "gate"}, nil)
				select {
				case <-m.Done():
				default:
					err = fmt.Errorf("Done() still open after the call returned %v", err)
				}
				if m.Err() == nil {
					err = fmt.Errorf("Err() still nil after the call returned %v", err)
				}
				errs <- err
			}()
		}
		if _, err := s.WaitRequests(2, 5*time.Second); err != nil { // capabilities and the first gate
			t.Fatal(err)
		}
		s.DropConnection()
		for i := 0; i < 16; i++ {
			select {
			case err := <-errs:
				if _, isOpError := err.(*net.OpError); !isOpError || !qmp.IsSocketClosed(err) {
					t.Fatalf("pending call: %T %v, want a *net.OpError for which IsSocketClosed holds", err, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("pending calls did not return after the drop")
			}
		}
	}
}

// TestRepliesMatchWhatWasSent plays a QEMU that sends replies no waiting
// command can own: an id no command carried (a forged or late OOB reply),
// an id-less reply while the oldest command carried an id, and an id where
// the oldest carried none. Each is dropped; every caller gets its own reply.
func TestRepliesMatchWhatWasSent(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	forged := `{"return": {"N": 666}, "id": "oob-7"}` + "\r\n" + `{"return": {"N": 666}, "id": 5}` + "\r\n"
	s.Handle("forge", func(s *qmptest.Server, r *qmptest.Request) qmptest.Reply {
		if r.ID == nil {
			s.SendRaw([]byte(forged + `{"return": {"N": 1}}` + "\r\n"))
		} else {
			s.SendRaw([]byte(forged + `{"return": {"N": 666}}` + "\r\n" + `{"return": {"N": 2}, "id": ` + string(r.ID) + "}\r\n"))
		}
		return qmptest.Reply{NoReply: true}
	})
	s.Handle("echo", echoArgs)
	m := dial(t, s, nil)
	type withID struct {
		Execute string `json:"execute"`
		ID      any    `json:"id"`
	}
	var got echoN
	if err := m.Run(qmp.Command{Name: "forge"}, &got); err != nil || got.N != 1 {
		t.Fatalf("forge without id = %+v, %v; want its own reply N=1", got, err)
	}
	if err := m.Run(withID{"forge", "x"}, &got); err != nil || got.N != 2 {
		t.Fatalf("forge with id = %+v, %v; want its own reply N=2", got, err)
	}
	checkOwnReplies(t, m, 4, 50)
}

// TestInbandIDsRefused: an in-band id that could take another command's
// reply (RunOOB's form) or that QEMU would not echo exactly is refused
// before sending, naming the member; nothing reaches QEMU.
func TestInbandIDsRefused(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	before := len(s.Requests())
	for _, id := range []string{`"oob-1"`, `"oob-\u0031"`, `1e400`, `1.5`, `[1, 0.1]`, `18446744073709551616`} {
		cmd := json.RawMessage(`{"execute": "query-status", "id": ` + id + `}`)
		err := m.Run(cmd, nil)
		var ce *qmp.CommandError
		if !errors.As(err, &ce) || ce.Member != "id" {
			t.Errorf("id %s: %v, want a *CommandError for member id", id, err)
		}
	}
	for _, id := range []string{`"oob-"`, `"oob-1x"`, `"OOB-1"`, `-0`, `18446744073709551615`, `{"b": [1, "\u00e9"]}`} {
		cmd := json.RawMessage(`{"execute": "query-status", "id": ` + id + `}`)
		if err := m.Run(cmd, nil); err != nil {
			t.Errorf("id %s: %v, want it sent and answered", id, err)
		}
	}
	if n := len(s.Requests()) - before; n != 6 {
		t.Fatalf("QEMU received %d commands, want the 6 accepted ones", n)
	}
}

// TestCallerStringsQEMUWouldRefuse: strings and names QEMU's JSON parser
// refuses, through the typed and plain calls, are refused before sending
// with the member named; the monitor and other callers carry on.
func TestCallerStringsQEMUWouldRefuse(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	before := len(s.Requests())
	for _, tc := range []struct {
		name   string
		err    error
		member string
	}{
		{"DeviceDel U+FFFF", m.DeviceDel(ctx, "net\uffff"), "arguments.id"},
		{"DeviceDel U+FDD0", m.DeviceDel(ctx, "net\ufdd0"), "arguments.id"},
		{"RunHuman U+10FFFF", func() error { _, err := m.RunHumanContext(ctx, "info \U0010ffff"); return err }(), "arguments.command-line"},
		{"lone surrogate", m.Run(json.RawMessage(`{"execute":"echo","arguments":{"s":["x","\ud800"]}}`), nil), "arguments.s[1]"},
		{"not UTF-8", m.Run(json.RawMessage("{\"execute\":\"echo\",\"arguments\":{\"s\":\"\xed\xa0\x80\"}}"), nil), "arguments.s"},
		{"a member twice", m.Run(json.RawMessage(`{"execute":"echo","arguments":{"id":"a","\u0069d":"b"}}`), nil), "arguments.id"},
	} {
		var ce *qmp.CommandError
		if !errors.As(tc.err, &ce) || ce.Member != tc.member || !errors.Is(tc.err, qmp.ErrInvalidCommand) {
			t.Errorf("%s: %v, want a *CommandError naming %s", tc.name, tc.err, tc.member)
		}
	}
	if n := len(s.Requests()) - before; n != 0 {
		t.Fatalf("QEMU received %d of the refused commands", n)
	}
	checkOwnReplies(t, m, 4, 20)
}

// TestHostileReplyIDsCostTheirSize: a reply carrying a huge id is not
// decoded (it would cost many times its size): it matches nothing and is
// dropped, and the caller gets its own reply.
func TestHostileReplyIDsCostTheirSize(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	huge := []byte(`{"return": {"N": 666}, "id": [` + strings.Repeat("0,", 4<<20) + "0]}\r\n" + `{"return": {"N": 1}}` + "\r\n")
	s.Handle("forge", func(s *qmptest.Server, r *qmptest.Request) qmptest.Reply {
		s.SendRaw(huge)
		return qmptest.Reply{NoReply: true}
	})
	m := dial(t, s, nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var got echoN
	if err := m.Run(qmp.Command{Name: "forge"}, &got); err != nil || got.N != 1 {
		t.Fatalf("forge = %+v, %v; want its own reply", got, err)
	}
	runtime.ReadMemStats(&after)
	// Reading it costs a few times its size (the read buffer grows); decoding
	// the id into Go values cost ~76 times.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 6*uint64(len(huge)) {
		t.Fatalf("a %d-byte reply id cost %d bytes", len(huge), alloc)
	}
}
