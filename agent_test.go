package qmp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
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

// WithFrozenFS thaws whatever happens: fn failing, ctx ending inside fn,
// the freeze failing; a failed thaw is reported beside fn's error.
func TestAgentWithFrozenFSAlwaysThaws(t *testing.T) {
	f := newFakeAgent(t)
	var mu sync.Mutex
	var calls []string
	record := func(name, reply string) func(*bufio.Writer, json.RawMessage) bool {
		return func(w *bufio.Writer, args json.RawMessage) bool {
			mu.Lock()
			calls = append(calls, name+string(args))
			mu.Unlock()
			w.WriteString(reply + "\n")
			return true
		}
	}
	f.handle("guest-fsfreeze-freeze", record("freeze", `{"return": 2}`))
	f.handle("guest-fsfreeze-freeze-list", record("freeze-list", `{"return": 1}`))
	f.handle("guest-fsfreeze-thaw", record("thaw", `{"return": 2}`))
	a := dialAgent(t, f, nil)
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		c := calls
		calls = nil
		return c
	}

	boom := errors.New("boom")
	err := a.WithFrozenFS(ctxT(t, 10*time.Second), nil, func(context.Context) error { return boom })
	if !errors.Is(err, boom) || !slicesEqual(took(), []string{"freeze", "thaw"}) {
		t.Errorf("fn failing: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	err = a.WithFrozenFS(ctx, []string{"/data"}, func(ctx context.Context) error { cancel(); return ctx.Err() })
	if !errors.Is(err, context.Canceled) || !slicesEqual(took(), []string{`freeze-list{"mountpoints":["/data"]}`, "thaw"}) {
		t.Errorf("ctx ending inside fn: %v", err)
	}

	f.handle("guest-fsfreeze-freeze", record("freeze", `{"error": {"class": "GenericError", "desc": "failed to freeze /data"}}`))
	f.handle("guest-fsfreeze-thaw", record("thaw", `{"error": {"class": "GenericError", "desc": "thaw failed"}}`))
	ran := false
	err = a.WithFrozenFS(ctxT(t, 10*time.Second), nil, func(context.Context) error { ran = true; return nil })
	if ran || err == nil || !strings.Contains(err.Error(), "failed to freeze") || !strings.Contains(err.Error(), "may still be frozen") ||
		!slicesEqual(took(), []string{"freeze", "thaw"}) {
		t.Errorf("freeze and thaw failing: ran %v, %v", ran, err)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// An agent that restarts mid-command (the guest rebooted) never answers
// it: the caller's ctx ends the wait, and the next command resynchronises
// with the new agent.
func TestAgentRebootMidCommand(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("guest-get-users", func(*bufio.Writer, json.RawMessage) bool { return false }) // forgotten
	a := dialAgent(t, f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.GuestGetUsers(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GuestGetUsers the agent forgot = %v, want the ctx's deadline", err)
	}
	if err := a.GuestPing(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("GuestPing after the reboot = %v", err)
	}
}

// A sync answered with another id (an earlier client's) is no answer.
func TestAgentSyncIDNeverComesBack(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("guest-sync-delimited", func(w *bufio.Writer, _ json.RawMessage) bool {
		w.WriteString("\xff" + `{"return": 42}` + "\n")
		return true
	})
	_, err := qmp.DialAgent(ctxT(t, 10*time.Second), "unix", f.path, &qmp.AgentOptions{SyncTimeout: 100 * time.Millisecond})
	if !errors.Is(err, qmp.ErrAgentUnresponsive) {
		t.Fatalf("DialAgent answered with the wrong id = %v, want ErrAgentUnresponsive", err)
	}
}

// The commands the real-agent tests block, against the fake: what they
// send, and the no-reply ones.
func TestAgentHostHarmingCommands(t *testing.T) {
	f := newFakeAgent(t)
	var mu sync.Mutex
	got := map[string]string{}
	for _, n := range []string{"guest-set-user-password", "guest-ssh-add-authorized-keys", "guest-ssh-remove-authorized-keys", "guest-suspend-ram"} {
		n := n
		f.handle(n, func(w *bufio.Writer, args json.RawMessage) bool {
			mu.Lock()
			got[n] = string(args)
			mu.Unlock()
			if n == "guest-suspend-ram" {
				return false
			}
			w.WriteString(`{"return": {}}` + "\n")
			return true
		})
	}
	f.handle("guest-ssh-get-authorized-keys", func(w *bufio.Writer, _ json.RawMessage) bool {
		w.WriteString(`{"return": {"keys": ["ssh-ed25519 AAAA k1"]}}` + "\n")
		return true
	})
	a := dialAgent(t, f, &qmp.AgentOptions{NoReplyWait: 50 * time.Millisecond})
	ctx := ctxT(t, 10*time.Second)
	if err := a.GuestSetUserPassword(ctx, "root", "s3cret", false); err != nil {
		t.Fatal(err)
	}
	if err := a.GuestSSHAddAuthorizedKeys(ctx, "root", []string{"ssh-ed25519 AAAA k2"}, true); err != nil {
		t.Fatal(err)
	}
	if err := a.GuestSSHRemoveAuthorizedKeys(ctx, "root", []string{"ssh-ed25519 AAAA k1"}); err != nil {
		t.Fatal(err)
	}
	if keys, err := a.GuestSSHGetAuthorizedKeys(ctx, "root"); err != nil || len(keys) != 1 || keys[0] != "ssh-ed25519 AAAA k1" {
		t.Errorf("GuestSSHGetAuthorizedKeys = %q, %v", keys, err)
	}
	if err := a.GuestSuspend(ctx, "ram"); err != nil {
		t.Errorf("GuestSuspend(ram) = %v, want nil (no reply on success)", err)
	}
	if err := a.GuestSuspend(ctx, "s3"); !errors.Is(err, qmp.ErrInvalidCommand) {
		t.Errorf("GuestSuspend(s3) = %v, want ErrInvalidCommand", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for n, want := range map[string]string{
		"guest-set-user-password":          `{"username":"root","password":"czNjcmV0","crypted":false}`,
		"guest-ssh-add-authorized-keys":    `{"username":"root","keys":["ssh-ed25519 AAAA k2"],"reset":true}`,
		"guest-ssh-remove-authorized-keys": `{"username":"root","keys":["ssh-ed25519 AAAA k1"]}`,
	} {
		if got[n] != want {
			t.Errorf("%s sent %s, want %s", n, got[n], want)
		}
	}
	if _, ok := got["guest-suspend-ram"]; !ok {
		t.Error("guest-suspend-ram was not sent")
	}
}
