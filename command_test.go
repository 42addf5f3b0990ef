package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// echoArgs answers a command with its own arguments, so that every caller
// can check it got the reply to its command and not someone else's.
func echoArgs(_ *qmptest.Server, r *qmptest.Request) qmptest.Reply {
	if r.Arguments == nil {
		return qmptest.Reply{}
	}
	return qmptest.Reply{RawReturn: r.Arguments}
}

// gatedHandler returns a handler that holds its reply (ret) until release
// is called; Cleanup releases it too, before the server is closed.
func gatedHandler(t *testing.T, ret string) (h qmptest.HandlerFunc, release func()) {
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	h = func(_ *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
		<-gate
		return qmptest.Reply{Return: ret}
	}
	return h, release
}

func TestCommandLiteralForms(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)

	// The unkeyed literal of v2.0.4 must keep compiling.
	if err := m.Run(qmp.Command{"stop", nil}, nil); err != nil {
		t.Fatalf("Run(Command{stop}): %v", err)
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := m.Run(&qmp.Command{Name: "query-status"}, &st); err != nil {
		t.Fatalf("Run(&Command{query-status}): %v", err)
	}
	if st.Status != "paused" {
		t.Fatalf("status after stop = %q, want paused", st.Status)
	}
	type myCmd qmp.Command
	if err := m.Run(myCmd(qmp.Command{Name: "cont"}), nil); err != nil {
		t.Fatalf("Run(myCmd{cont}): %v", err)
	}
	if err := m.Run(qmp.Command{Name: "query-status"}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "running" {
		t.Fatalf("status after cont = %q, want running", st.Status)
	}

	reqs := s.Requests()
	want := []string{
		`{"execute":"stop"}`,
		`{"execute":"query-status"}`,
		`{"execute":"cont"}`,
		`{"execute":"query-status"}`,
	}
	// The first request is qmp_capabilities.
	if len(reqs) != len(want)+1 {
		t.Fatalf("server got %d requests, want %d", len(reqs), len(want)+1)
	}
	for i, w := range want {
		if got := string(reqs[i+1].Raw); got != w {
			t.Errorf("request %d = %s, want %s", i+1, got, w)
		}
	}
}

func TestRunNilCommandPointer(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	before := len(s.Requests())
	if err := m.Run((*qmp.Command)(nil), nil); err == nil {
		t.Fatal("Run(nil *Command) succeeded")
	}
	if n := len(s.Requests()); n != before {
		t.Fatalf("Run(nil *Command) sent %d requests", n-before)
	}
}

func TestRunHuman(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	out, err := m.RunHuman("info version")
	if err != nil {
		t.Fatal(err)
	}
	if out != "7.2.22 (qmptest)\r\n" {
		t.Fatalf("RunHuman(info version) = %q", out)
	}
	out, err = m.RunHumanContext(ctxT(t, 5*time.Second), "info status")
	if err != nil {
		t.Fatal(err)
	}
	if out != "VM status: running\r\n" {
		t.Fatalf("RunHumanContext(info status) = %q", out)
	}
}

func TestRunTransaction(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	cmds := []qmp.Command{
		{"blockdev-snapshot-sync", map[string]string{"device": "d0", "snapshot-file": "/tmp/s.qcow2"}},
		{"abort", nil},
	}
	if err := m.RunTransaction(cmds, nil, &qmp.TransactionProperties{CompletionMode: "grouped"}); err != nil {
		t.Fatalf("RunTransaction: %v", err)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.Name != "transaction" {
		t.Fatalf("last request = %s, want transaction", last.Raw)
	}
	const wantArgs = `{"actions":[{"type":"blockdev-snapshot-sync","data":{"device":"d0","snapshot-file":"/tmp/s.qcow2"}},` +
		`{"type":"abort","data":null}],"properties":{"completion-mode":"grouped"}}`
	if string(last.Arguments) != wantArgs {
		t.Fatalf("transaction arguments = %s\nwant %s", last.Arguments, wantArgs)
	}

	if err := m.RunTransactionContext(ctxT(t, 5*time.Second), cmds[1:], nil, nil); err != nil {
		t.Fatalf("RunTransactionContext: %v", err)
	}

	before := len(s.Requests())
	err := m.RunTransaction([]qmp.Command{{"abort", nil}, {"device_add", nil}}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `"device_add"`) {
		t.Fatalf("RunTransaction(device_add) = %v, want an error naming device_add", err)
	}
	// Nothing may have been sent: check with a later command that the
	// server's next request is that command.
	if err := m.Run(qmp.Command{"query-name", nil}, nil); err != nil {
		t.Fatal(err)
	}
	reqs = s.Requests()
	if len(reqs) != before+1 || reqs[before].Name != "query-name" {
		t.Fatalf("requests after a rejected transaction: %d new, want only query-name", len(reqs)-before)
	}
}

func TestRunReturnValueTypes(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("ret", func(_ *qmptest.Server, r *qmptest.Request) qmptest.Reply {
		var a struct {
			V json.RawMessage `json:"v"`
		}
		json.Unmarshal(r.Arguments, &a)
		return qmptest.Reply{RawReturn: a.V}
	})
	m := dial(t, s, nil)
	run := func(raw string, res interface{}) {
		t.Helper()
		if err := m.Run(qmp.Command{"ret", map[string]json.RawMessage{"v": json.RawMessage(raw)}}, res); err != nil {
			t.Fatalf("Run(ret %s): %v", raw, err)
		}
	}

	var str string
	run(`"a \"quoted\" \u00e9 string"`, &str)
	if str != `a "quoted" é string` {
		t.Errorf("string = %q", str)
	}
	var num float64
	run(`-12.5e3`, &num)
	if num != -12500 {
		t.Errorf("number = %v", num)
	}
	var arr []int
	run(`[1, 2, 3]`, &arr)
	if fmt.Sprint(arr) != "[1 2 3]" {
		t.Errorf("array = %v", arr)
	}
	var b bool
	run(`true`, &b)
	if !b {
		t.Errorf("bool = false")
	}
	var obj struct {
		A struct {
			B []string `json:"b"`
		} `json:"a"`
	}
	run(`{"a": {"b": ["x", "}"]}}`, &obj)
	if fmt.Sprint(obj.A.B) != "[x }]" {
		t.Errorf("object = %+v", obj)
	}
	var raw json.RawMessage
	run(`{"k": [null, {}]}`, &raw)
	if string(raw) != `{"k": [null, {}]}` {
		t.Errorf("raw = %s", raw)
	}
	// null into a non-nil result and into nil: no panic, no error.
	p := &str
	run(`null`, &p)
	if p != nil {
		t.Errorf("null into a pointer left %v", p)
	}
	run(`null`, nil)
	// A result of the wrong type is a decoding error, not a panic.
	if err := m.Run(qmp.Command{"ret", map[string]json.RawMessage{"v": json.RawMessage(`"s"`)}}, &num); err == nil {
		t.Error("decoding a string into a float64 succeeded")
	}
}

func TestRunContextDeadlineBoundsOnlyTheCaller(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	h, release := gatedHandler(t, "late")
	s.Handle("slow", h)
	s.Handle("echo", echoArgs)
	m := dial(t, s, nil)

	// Another caller queued behind "slow" with a generous deadline.
	other := make(chan error, 1)
	var otherRes struct{ N int }
	go func() {
		other <- m.RunContext(ctxT(t, 5*time.Second), qmp.Command{"echo", map[string]int{"N": 1}}, &otherRes)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var res string
	err := m.RunContext(ctx, qmp.Command{"slow", nil}, &res)
	if err != context.DeadlineExceeded {
		t.Fatalf("RunContext(slow) = %v, want context.DeadlineExceeded itself", err)
	}
	if res != "" {
		t.Fatalf("res = %q after a timeout", res)
	}
	if m.Err() != nil {
		t.Fatalf("the timeout ended the connection: %v", m.Err())
	}

	// The next command is queued behind the abandoned one: it must get its
	// own reply, not "late".
	next := make(chan error, 1)
	var nextRes struct{ N int }
	go func() {
		next <- m.RunContext(ctxT(t, 5*time.Second), qmp.Command{"echo", map[string]int{"N": 2}}, &nextRes)
	}()
	// capabilities, echo 1, slow, echo 2 (in some order of the first two).
	if _, err := s.WaitRequests(4, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-next; err != nil || nextRes.N != 2 {
		t.Fatalf("next command: %+v, %v; want N=2", nextRes, err)
	}
	if err := <-other; err != nil || otherRes.N != 1 {
		t.Fatalf("concurrent caller: %+v, %v; want N=1", otherRes, err)
	}
	var v struct{ N int }
	if err := m.Run(qmp.Command{"echo", map[string]int{"N": 3}}, &v); err != nil || v.N != 3 {
		t.Fatalf("later command: %+v, %v", v, err)
	}
}

func TestRunContextAlreadyDone(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.RunContext(ctx, qmp.Command{"query-name", nil}, nil); err != context.Canceled {
		t.Fatalf("RunContext(cancelled ctx) = %v, want context.Canceled", err)
	}
	// Nothing was sent: the server saw only the handshake.
	for _, r := range s.Requests() {
		if r.Name == "query-name" {
			t.Fatalf("a call whose ctx had already ended sent %s", r.Raw)
		}
	}
	if _, err := m.RunHuman("info version"); err != nil {
		t.Fatalf("after a cancelled call: %v", err)
	}
}

func TestPipeliningManyGoroutines(t *testing.T) {
	const goroutines, perG = 64, 50
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	m := dial(t, s, nil)

	type arg struct {
		G int `json:"g"`
		I int `json:"i"`
	}
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				var got arg
				if err := m.Run(qmp.Command{"echo", arg{g, i}}, &got); err != nil {
					errs <- fmt.Errorf("g%d i%d: %w", g, i, err)
					return
				}
				if got != (arg{g, i}) {
					errs <- fmt.Errorf("g%d i%d got the reply %+v", g, i, got)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(s.Requests()); n != goroutines*perG+1 {
		t.Fatalf("server got %d requests, want %d", n, goroutines*perG+1)
	}
}

// TestPipeliningNoLockAcrossRoundTrip proves that commands go out while
// earlier ones are unanswered: the server holds every reply until it has
// received all of them.
func TestPipeliningNoLockAcrossRoundTrip(t *testing.T) {
	// The fake server reads up to 1 executing + 7 queued + 1 held by its
	// reader before it stops reading, as QEMU does; stay within that.
	const callers = 8
	s := newServer(t, qmptest.Config{})
	h, release := gatedHandler(t, "ok")
	s.Handle("gated", h)
	m := dial(t, s, nil)

	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		go func() {
			var res string
			err := m.Run(qmp.Command{"gated", nil}, &res)
			if err == nil && res != "ok" {
				err = fmt.Errorf("res = %q", res)
			}
			errs <- err
		}()
	}
	// No reply can be written before release: all requests arriving means
	// no caller waited for another's reply before sending.
	if _, err := s.WaitRequests(callers+1, 5*time.Second); err != nil {
		t.Fatalf("commands were not pipelined: %v", err)
	}
	release()
	for i := 0; i < callers; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestPipeliningWithReplyDelay(t *testing.T) {
	const callers = 8
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	m := dial(t, s, nil)
	s.SetReplyDelay(20 * time.Millisecond)

	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		go func(i int) {
			var got struct{ N int }
			err := m.Run(qmp.Command{"echo", map[string]int{"N": i}}, &got)
			if err == nil && got.N != i {
				err = fmt.Errorf("caller %d got N=%d", i, got.N)
			}
			errs <- err
		}(i)
	}
	if _, err := s.WaitRequests(callers+1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < callers; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestIDlessParseErrorEndsConnection: every command is checked to be one
// message for QEMU, so an id-less complaint about QEMU's JSON input means the
// two sides disagree on message boundaries. The monitor must end the
// connection with a protocol error for every pending call rather than give
// the error (and every later reply) to the wrong caller.
func TestIDlessParseErrorEndsConnection(t *testing.T) {
	for _, desc := range []string{"JSON parse error, expecting value", "JSON nesting depth limit exceeded", "QMP input must be a JSON object"} {
		s := newServer(t, qmptest.Config{})
		s.Handle("bad", func(s *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
			s.SendRaw([]byte(`{"error": {"class": "GenericError", "desc": "` + desc + `"}}` + "\r\n"))
			return qmptest.Reply{NoReply: true}
		})
		m := dial(t, s, nil)
		h, release := gatedHandler(t, "")
		s.Handle("gate", h)
		errs := make(chan error, 3)
		go func() { errs <- m.Run(qmp.Command{Name: "gate"}, nil) }()
		if _, err := s.WaitRequests(2, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		go func() { errs <- m.Run(qmp.Command{Name: "bad"}, nil) }()
		go func() { errs <- m.Run(qmp.Command{Name: "query-status"}, nil) }()
		if _, err := s.WaitRequests(4, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		release()
		for i := 0; i < 3; i++ {
			var err error
			select {
			case err = <-errs:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: call %d did not return after the id-less error", desc, i)
			}
			// "gate" gets its own reply before the bad one arrives.
			if err == nil {
				continue
			}
			if !errors.Is(err, qmp.ErrClosed) || !errors.Is(err, qmp.ErrProtocol) || !strings.Contains(err.Error(), desc) {
				t.Errorf("%s: call returned %v, want the connection's end with a protocol error naming the desc", desc, err)
			}
		}
		if err := m.Err(); !errors.Is(err, qmp.ErrProtocol) {
			t.Errorf("%s: Err() = %v, want a protocol error", desc, err)
		}
	}
}

// TestIDlessCommandErrorIsTheCallers: a command's own error reply carries no
// id either (in-band commands are sent without one) and goes to its caller.
func TestIDlessCommandErrorIsTheCallers(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	err := m.Run(qmp.Command{Name: "no-such-command"}, nil)
	if _, ok := err.(*qmp.CommandNotFound); !ok {
		t.Fatalf("Run(no-such-command) = %T %v, want *qmp.CommandNotFound", err, err)
	}
	if err := m.Run(qmp.Command{Name: "query-status"}, nil); err != nil {
		t.Fatalf("query-status after an error reply: %v", err)
	}
}

// TestReplyEchoingCallersID: a command value with its own "id" gets the
// reply QEMU sends with that id echoed.
func TestReplyEchoingCallersID(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("echo", echoArgs)
	m := dial(t, s, nil)
	type withID struct {
		Execute   string         `json:"execute"`
		Arguments map[string]int `json:"arguments,omitempty"`
		ID        interface{}    `json:"id"`
	}
	var got struct{ N int }
	if err := m.Run(withID{"echo", map[string]int{"N": 5}, "mine-1"}, &got); err != nil || got.N != 5 {
		t.Fatalf("echo with id: %+v, %v", got, err)
	}
	err := m.Run(withID{Execute: "no-such", ID: 42}, nil)
	var cnf *qmp.CommandNotFound
	if !errors.As(err, &cnf) || cnf.Desc != "The command no-such has not been found" {
		t.Fatalf("error reply with id: %v", err)
	}
	reqs := s.Requests()
	if id := string(reqs[len(reqs)-1].ID); id != "42" {
		t.Fatalf("sent id = %s, want 42", id)
	}
	if err := m.Run(qmp.Command{"echo", map[string]int{"N": 6}}, &got); err != nil || got.N != 6 {
		t.Fatalf("echo after: %+v, %v", got, err)
	}
}

func TestPrettyRepliesAndEvents(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	s.SetPretty(true)
	var v struct {
		QEMU struct{ Major, Minor, Micro int } `json:"qemu"`
	}
	if err := m.Run(qmp.Command{"query-version", nil}, &v); err != nil {
		t.Fatal(err)
	}
	if v.QEMU.Major != 7 || v.QEMU.Minor != 2 || v.QEMU.Micro != 22 {
		t.Fatalf("query-version = %+v", v)
	}
	s.SendEvent("PRETTY", map[string]any{"a": []int{1, 2}, "b": map[string]string{"c": "d"}})
	evs, err := m.GetEvents(ctxT(t, 5*time.Second), "PRETTY", 0)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		A []int             `json:"a"`
		B map[string]string `json:"b"`
	}
	if len(evs) != 1 || json.Unmarshal(evs[0].Data, &d) != nil || fmt.Sprint(d.A) != "[1 2]" || d.B["c"] != "d" {
		t.Fatalf("pretty event = %+v", evs)
	}
}

func TestHugeReply(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	big := strings.Repeat("x", 4<<20) // far beyond any read buffer or line limit
	s.Handle("big", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{RawReturn: json.RawMessage(`"` + big + `"`)}
	})
	m := dial(t, s, nil)
	var got string
	if err := m.Run(qmp.Command{"big", nil}, &got); err != nil {
		t.Fatal(err)
	}
	if got != big {
		t.Fatalf("got %d bytes, want %d x's", len(got), len(big))
	}
	if _, err := m.RunHuman("info version"); err != nil {
		t.Fatalf("after the huge reply: %v", err)
	}
}

func TestReplyTooLarge(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("big", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{RawReturn: json.RawMessage(`"` + strings.Repeat("x", 8<<10) + `"`)}
	})
	m := dial(t, s, &qmp.Options{MaxMessageSize: 4 << 10})
	err := m.Run(qmp.Command{"big", nil}, nil)
	if !errors.Is(err, qmp.ErrMessageTooLarge) || !qmp.IsSocketClosed(err) {
		t.Fatalf("Run(big) = %v, want ErrMessageTooLarge and IsSocketClosed", err)
	}
	waitClosed(t, m, 5*time.Second)
	if !errors.Is(m.Err(), qmp.ErrMessageTooLarge) {
		t.Fatalf("Err() = %v", m.Err())
	}
}

func TestGarbageEndsConnection(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("hang", func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{NoReply: true} })
	m := dial(t, s, nil)
	const n = 5
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- m.Run(qmp.Command{"hang", nil}, nil) }()
	}
	if _, err := s.WaitRequests(n+1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s.SendRaw([]byte("garbage\r\n"))
	for i := 0; i < n; i++ {
		err := <-errs
		if !qmp.IsSocketClosed(err) || !strings.Contains(err.Error(), "protocol error") {
			t.Errorf("pending call = %v, want a closed-connection error naming the protocol error", err)
		}
	}
	waitClosed(t, m, 5*time.Second)
}

func TestEOFMidReply(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("hang", func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{NoReply: true} })
	m := dial(t, s, nil)
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { errs <- m.Run(qmp.Command{"hang", nil}, nil) }()
	}
	if _, err := s.WaitRequests(3, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s.SendRaw([]byte(`{"return": {"half": "a mess`))
	s.DropConnection()
	for i := 0; i < 2; i++ {
		if err := <-errs; !qmp.IsSocketClosed(err) {
			t.Errorf("pending call = %v, want IsSocketClosed", err)
		}
	}
	waitClosed(t, m, 5*time.Second)
}

func TestEventTimestampMinusOne(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	before := time.Now().Unix()
	s.SendEventAt("NO_CLOCK", nil, -1, -1)
	evs, err := m.GetEvents(ctxT(t, 5*time.Second), "NO_CLOCK", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != "NO_CLOCK" || evs[0].Data != nil {
		t.Fatalf("events = %+v", evs)
	}
	// It gets the local receive time instead.
	if sec := int64(evs[0].Timestamp.Seconds); sec < before || sec > time.Now().Unix() {
		t.Fatalf("timestamp = %d, want the receive time (>= %d)", sec, before)
	}
}

// A result argument no reply could be decoded into is refused before the
// command is sent (it would have run, and only its result been lost).
func TestRunRefusesANonPointerResult(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	before := len(s.Requests())
	var st struct{ Status string }
	var nilPtr *struct{ Status string }
	for _, res := range []any{st, nilPtr, "x", 42} {
		err := m.Run(qmp.Command{Name: "stop"}, res)
		if !errors.Is(err, qmp.ErrInvalidCommand) || !strings.Contains(err.Error(), "pointer") {
			t.Errorf("Run(stop, %T) = %v, want it refused before sending", res, err)
		}
	}
	if n := len(s.Requests()) - before; n != 0 {
		t.Fatalf("QEMU received %d commands", n)
	}
	if err := m.Run(qmp.Command{Name: "query-status"}, &st); err != nil {
		t.Fatal(err)
	}
}

// The zero TransactionProperties is valid: it sends no completion-mode
// (QEMU refuses an empty one).
func TestTransactionPropertiesZero(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("transaction", func(_ *qmptest.Server, r *qmptest.Request) qmptest.Reply {
		var a struct{ Properties map[string]any }
		json.Unmarshal(r.Arguments, &a)
		if _, has := a.Properties["completion-mode"]; has {
			return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "Parameter 'completion-mode' does not accept value ''"}
		}
		return qmptest.Reply{}
	})
	m := dial(t, s, nil)
	if err := m.RunTransaction([]qmp.Command{{Name: "abort"}}, nil, &qmp.TransactionProperties{}); err != nil {
		t.Fatalf("RunTransaction with zero properties: %v", err)
	}
}

// Typed queries return a nil pointer with every error.
func TestTypedQueriesNilOnError(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	for _, name := range []string{"query-vnc", "query-balloon", "query-migrate", "query-migrate-parameters", "query-status", "query-version", "query-name", "query-kvm"} {
		s.Handle(name, func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
			return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "no"}
		})
	}
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	check := func(name string, isNil bool, err error) {
		if err == nil || !isNil {
			t.Errorf("%s: nil result %v, err %v; want nil and an error", name, isNil, err)
		}
	}
	r1, err := m.QueryVNC(ctx)
	check("QueryVNC", r1 == nil, err)
	r2, err := m.QueryBalloon(ctx)
	check("QueryBalloon", r2 == nil, err)
	r3, err := m.QueryMigrate(ctx)
	check("QueryMigrate", r3 == nil, err)
	r4, err := m.QueryMigrateParameters(ctx)
	check("QueryMigrateParameters", r4 == nil, err)
	r5, err := m.QueryStatus(ctx)
	check("QueryStatus", r5 == nil, err)
	r6, err := m.QueryVersion(ctx)
	check("QueryVersion", r6 == nil, err)
	r7, err := m.QueryName(ctx)
	check("QueryName", r7 == nil, err)
	r8, err := m.QueryKVM(ctx)
	check("QueryKVM", r8 == nil, err)
}
