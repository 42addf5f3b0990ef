package qmp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// fakeAgent is a guest agent for the unit tests: it answers one command
// at a time, in order, as qemu-ga does; handlers decide each reply.
type fakeAgent struct {
	path     string
	ln       net.Listener
	mu       sync.Mutex
	handlers map[string]func(w *bufio.Writer, args json.RawMessage) bool // false: no reply
	onAccept func(w *bufio.Writer)
	wg       sync.WaitGroup
}

func newFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	f := &fakeAgent{path: filepath.Join(t.TempDir(), "qga.sock"), handlers: map[string]func(*bufio.Writer, json.RawMessage) bool{}}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.handle("guest-ping", func(w *bufio.Writer, _ json.RawMessage) bool { w.WriteString(`{"return": {}}` + "\n"); return true })
	f.handle("guest-sync-delimited", func(w *bufio.Writer, args json.RawMessage) bool {
		var a struct {
			ID int64 `json:"id"`
		}
		json.Unmarshal(args, &a)
		w.WriteByte(0xFF)
		w.WriteString(`{"return": ` + itoa(a.ID) + "}\n")
		return true
	})
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func (f *fakeAgent) handle(name string, h func(*bufio.Writer, json.RawMessage) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[name] = h
}

func (f *fakeAgent) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			w := bufio.NewWriter(c)
			f.mu.Lock()
			onAccept := f.onAccept
			f.mu.Unlock()
			if onAccept != nil {
				onAccept(w)
				w.Flush()
			}
			dec := json.NewDecoder(&skipFF{r: bufio.NewReader(c)})
			for {
				var cmd struct {
					Execute   string          `json:"execute"`
					Arguments json.RawMessage `json:"arguments"`
				}
				if err := dec.Decode(&cmd); err != nil {
					return
				}
				f.mu.Lock()
				h := f.handlers[cmd.Execute]
				f.mu.Unlock()
				if h == nil {
					w.WriteString(`{"error": {"class": "CommandNotFound", "desc": "The command ` + cmd.Execute + ` has not been found"}}` + "\n")
				} else if !h(w, cmd.Arguments) {
					continue
				}
				if w.Flush() != nil {
					return
				}
			}
		}()
	}
}

// skipFF drops the 0xFF bytes a client sends to reset the agent's parser.
type skipFF struct{ r *bufio.Reader }

func (s *skipFF) Read(p []byte) (int, error) {
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != 0xFF {
			p[0] = b
			return 1, nil
		}
	}
}

func dialAgent(t *testing.T, f *fakeAgent, opts *qmp.AgentOptions) *qmp.Agent {
	t.Helper()
	a, err := qmp.DialAgent(ctxT(t, 10*time.Second), "unix", f.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// Whatever an earlier client left in the channel, complete replies,
// half a reply or bytes that are not JSON, is discarded on connect.
func TestAgentStaleOutputDiscarded(t *testing.T) {
	f := newFakeAgent(t)
	f.onAccept = func(w *bufio.Writer) {
		w.WriteString(`{"return": 12345}` + "\n" + `{"return": {"stale": tr` + "\x01\x02 not json")
	}
	f.handle("guest-get-host-name", func(w *bufio.Writer, _ json.RawMessage) bool {
		w.WriteString(`{"return": {"host-name": "vm1"}}` + "\n")
		return true
	})
	a := dialAgent(t, f, nil)
	ctx := ctxT(t, 10*time.Second)
	if name, err := a.GuestGetHostName(ctx); err != nil || name != "vm1" {
		t.Fatalf("GuestGetHostName = %q, %v; want vm1", name, err)
	}
}

// A caller that gave up does not make the next caller take its reply.
func TestAgentAbandonedReplyNotMisdelivered(t *testing.T) {
	f := newFakeAgent(t)
	release := make(chan struct{})
	f.handle("guest-get-time", func(w *bufio.Writer, _ json.RawMessage) bool {
		<-release
		w.WriteString(`{"return": 1}` + "\n")
		return true
	})
	f.handle("guest-get-host-name", func(w *bufio.Writer, _ json.RawMessage) bool {
		w.WriteString(`{"return": {"host-name": "vm1"}}` + "\n")
		return true
	})
	a := dialAgent(t, f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := a.GuestGetTime(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GuestGetTime with a short ctx = %v, want its deadline", err)
	}
	close(release) // the abandoned reply comes now, before the next one
	name, err := a.GuestGetHostName(ctxT(t, 10*time.Second))
	if err != nil || name != "vm1" {
		t.Fatalf("the next command got %q, %v; want its own reply vm1", name, err)
	}
}

// No agent (the channel accepts but nobody answers): the connect ends
// with ErrAgentUnresponsive within the sync bound.
func TestAgentUnresponsive(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("guest-sync-delimited", func(*bufio.Writer, json.RawMessage) bool { return false })
	start := time.Now()
	_, err := qmp.DialAgent(ctxT(t, 10*time.Second), "unix", f.path, &qmp.AgentOptions{SyncTimeout: 100 * time.Millisecond})
	if !errors.Is(err, qmp.ErrAgentUnresponsive) {
		t.Fatalf("DialAgent to a silent agent = %v, want ErrAgentUnresponsive", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("DialAgent took %v, want about the 100ms sync bound", took)
	}
}

// guest-shutdown is not answered when it succeeds: the call returns after
// the grace, and the next command resynchronises.
func TestAgentShutdownWithoutReply(t *testing.T) {
	f := newFakeAgent(t)
	var got []string
	var mu sync.Mutex
	f.handle("guest-shutdown", func(w *bufio.Writer, args json.RawMessage) bool {
		mu.Lock()
		got = append(got, string(args))
		mu.Unlock()
		return false
	})
	a := dialAgent(t, f, &qmp.AgentOptions{NoReplyWait: 50 * time.Millisecond})
	ctx := ctxT(t, 10*time.Second)
	if err := a.GuestShutdown(ctx, "reboot"); err != nil {
		t.Fatalf("GuestShutdown = %v, want nil", err)
	}
	if err := a.GuestPing(ctx); err != nil {
		t.Fatalf("GuestPing after the shutdown = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != `{"mode":"reboot"}` {
		t.Errorf("guest-shutdown arguments = %q", got)
	}
	// A refusal is an answer: it is returned.
	f.handle("guest-shutdown", func(w *bufio.Writer, _ json.RawMessage) bool {
		w.WriteString(`{"error": {"class": "GenericError", "desc": "Command guest-shutdown has been disabled"}}` + "\n")
		return true
	})
	var ge *qmp.GenericError
	if err := a.GuestShutdown(ctx, ""); !errors.As(err, &ge) {
		t.Errorf("GuestShutdown refused = %v, want the agent's *GenericError", err)
	}
}

// Errors are typed as for QMP; output that is not JSON fails the caller
// waiting for a reply and the next command resynchronises.
func TestAgentErrorsAndGarbage(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("guest-get-users", func(w *bufio.Writer, _ json.RawMessage) bool {
		w.WriteString("\x01garbage\x02\n")
		return true
	})
	a := dialAgent(t, f, nil)
	ctx := ctxT(t, 10*time.Second)
	var cnf *qmp.CommandNotFound
	if _, err := a.GuestGetOSInfo(ctx); !errors.As(err, &cnf) {
		t.Errorf("GuestGetOSInfo on an agent without it = %v, want *CommandNotFound", err)
	}
	if _, err := a.GuestGetUsers(ctx); !errors.Is(err, qmp.ErrProtocol) {
		t.Errorf("GuestGetUsers answered with garbage = %v, want ErrProtocol", err)
	}
	if err := a.GuestPing(ctx); err != nil {
		t.Errorf("GuestPing after garbage = %v, want it to resynchronise and work", err)
	}
	if err := a.Run(json.RawMessage(`{"execute":"guest-ping","arguments":{"a":1,"a":2}}`), nil); !errors.Is(err, qmp.ErrInvalidCommand) {
		t.Errorf("Run with a member named twice = %v, want ErrInvalidCommand (the check is the Monitor's)", err)
	}
}

// Close ends pending calls, and the zero Agent behaves closed.
func TestAgentClose(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("guest-get-time", func(*bufio.Writer, json.RawMessage) bool { return false })
	a := dialAgent(t, f, nil)
	errc := make(chan error, 1)
	go func() { _, err := a.GuestGetTime(context.Background()); errc <- err }()
	a.Close()
	select {
	case err := <-errc:
		if !qmp.IsSocketClosed(err) {
			t.Errorf("pending GuestGetTime after Close = %v, want a closed error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a pending call did not end with Close")
	}
	var zero qmp.Agent
	if err := zero.GuestPing(context.Background()); !qmp.IsSocketClosed(err) {
		t.Errorf("zero Agent = %v, want a closed error", err)
	}
	if zero.Close() != nil {
		t.Error("zero Agent's Close failed")
	}
}

// FuzzAgentResync: whatever an agent's channel holds before the reply to
// the sync (stale replies, half messages, garbage, other delimiters), the
// connect discards it and synchronises.
func FuzzAgentResync(f *testing.F) {
	for _, s := range []string{"", `{"return": 1}`, "\xff{\"return\": 2}", `{"return": {"a": [`, "\x00\x01\xfe", "\xff\xff{", "\xff}", `{"error": {}}` + "\xff" + `"x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, junk []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer server.Close()
			dec := json.NewDecoder(&skipFF{r: bufio.NewReader(server)})
			var cmd struct {
				Arguments struct {
					ID int64 `json:"id"`
				} `json:"arguments"`
			}
			if dec.Decode(&cmd) != nil {
				return
			}
			server.Write(junk)
			server.Write(append([]byte{0xFF}, `{"return": `+itoa(cmd.Arguments.ID)+"}\n"...))
		}()
		a, err := qmp.NewAgentConn(context.Background(), client, &qmp.AgentOptions{SyncTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("NewAgentConn after %q: %v", junk, err)
		}
		a.Close()
		<-done
	})
}
