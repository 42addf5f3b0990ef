//go:build unix

package qmptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	greeting   = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "qmptest"}, "capabilities": ["oob"]}}`
	ioTimeout  = 5 * time.Second
	statusRun  = `{"return": {"status": "running", "singlestep": false, "running": true}`
	returnsNil = `{"return": {}}`
)

// client is a raw QMP client: the tests deliberately use nothing but
// net and bufio so that they check the bytes on the wire.
type client struct {
	t *testing.T
	c *net.UnixConn
	r *bufio.Reader
}

func dial(t *testing.T, s *Server) *client {
	t.Helper()
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatalf("dial %s: %v", s.Path(), err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c.(*net.UnixConn), r: bufio.NewReaderSize(c, 1<<20)}
}

// line reads one CRLF-terminated server message and returns it without
// the terminator.
func (c *client) line() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a server message: %v (got %q so far)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("server message %q does not end with CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("server sent\n\t%s\nwant\n\t%s", got, want)
	}
}

var eventRe = regexp.MustCompile(`^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": (.*)\}$`)

// expectEvent checks an event message, ignoring the timestamp value; rest
// is what follows "event": (the quoted name and optional data).
func (c *client) expectEvent(rest string) {
	c.t.Helper()
	got := c.line()
	m := eventRe.FindStringSubmatch(got)
	if m == nil || m[1] != rest {
		c.t.Fatalf("server sent\n\t%s\nwant event\n\t\"event\": %s", got, rest)
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// expectEOF checks that the server hung up.
func (c *client) expectEOF() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := c.r.ReadByte()
	if err == nil {
		rest, _ := c.r.ReadString('\n')
		c.t.Fatalf("expected EOF, got %q", string(b)+rest)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("expected EOF, got %v", err)
	}
}

// expectSilence checks that nothing arrives within a short while.
func (c *client) expectSilence(d time.Duration) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(d))
	if b, err := c.r.Peek(1); err == nil {
		c.t.Fatalf("expected no data, got %q", b)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		c.t.Fatalf("expected a read timeout, got %v", err)
	}
}

func negotiated(t *testing.T, s *Server) *client {
	t.Helper()
	c := dial(t, s)
	c.expect(greeting)
	c.send(`{"execute":"qmp_capabilities"}` + "\n")
	c.expect(returnsNil)
	return c
}

func newServer(t *testing.T, cfg Config) *Server {
	s := NewServer(cfg)
	t.Cleanup(s.Close)
	return s
}

func TestGreetingExactBytes(t *testing.T) {
	s := newServer(t, Config{})
	c := dial(t, s)
	c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, len(greeting)+2)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		t.Fatalf("reading greeting: %v", err)
	}
	if string(buf) != greeting+"\r\n" {
		t.Fatalf("greeting %q, want %q", buf, greeting+"\r\n")
	}
	if err := s.WaitConnected(ioTimeout); err != nil {
		t.Fatal(err)
	}
	if n := s.ConnCount(); n != 1 {
		t.Fatalf("ConnCount = %d, want 1", n)
	}
}

func TestGreetingConfig(t *testing.T) {
	s := newServer(t, Config{Version: "8.1.3", Capabilities: []string{}})
	c := dial(t, s)
	c.expect(`{"QMP": {"version": {"qemu": {"micro": 3, "minor": 1, "major": 8}, "package": "qmptest"}, "capabilities": []}}`)
	c.send(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`)
	c.expect(`{"error": {"class": "GenericError", "desc": "Capability 'oob' not available"}}`)
	c.send(`{"execute":"query-version","id":"v"}`)
	c.expect(`{"id": "v", "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`)
	c.send(`{"execute":"qmp_capabilities"}{"execute":"query-version","id":"v"}`)
	c.expect(returnsNil)
	c.expect(`{"return": {"qemu": {"micro": 3, "minor": 1, "major": 8}, "package": "qmptest"}, "id": "v"}`)
}

func TestNegotiationAndIDs(t *testing.T) {
	s := newServer(t, Config{})
	c := dial(t, s)
	c.expect(greeting)
	if got := s.Negotiated(); got != nil {
		t.Fatalf("Negotiated before negotiation = %v, want nil", got)
	}
	c.send(`{"execute":"query-status"}` + "\n")
	c.expect(`{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`)
	c.send(`{"execute":"no-such-command","id":"pre-2"}`)
	c.expect(`{"id": "pre-2", "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`)
	c.send(`{"execute":"qmp_capabilities","arguments":{"enable":["bogus"]}}`)
	c.expect(`{"error": {"class": "GenericError", "desc": "Parameter 'null' does not accept value 'bogus'"}}`)
	c.send(`{"execute":"qmp_capabilities","id":"neg"}`)
	c.expect(`{"return": {}, "id": "neg"}`)
	if got := s.Negotiated(); got == nil || len(got) != 0 {
		t.Fatalf("Negotiated = %#v, want empty non-nil", got)
	}
	c.send(`{"execute":"qmp_capabilities"}`)
	c.expect(`{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}`)

	c.send(`{"execute":"query-status","id":"q1"}`)
	c.expect(statusRun + `, "id": "q1"}`)
	// ids are echoed as the bytes the client sent
	for _, id := range []string{`1E3`, `-3`, `""`, `null`, `[1,"x"]`, `"\u00e9"`} {
		c.send(`{"execute":"query-name","id":` + id + `}`)
		c.expect(`{"return": {}, "id": ` + strings.ReplaceAll(id, ",", ", ") + `}`)
	}
	c.send(`{"execute":"no-such-command","id":{"x":1}}`)
	c.expect(`{"id": {"x": 1}, "error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}}`)
	c.send(`{"execute":"query-name","arguments":{"x":1},"id":[2]}`)
	c.expect(`{"id": [2], "error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}`)
	c.send(`{"execute":"device_del"}`)
	c.expect(`{"error": {"class": "GenericError", "desc": "Parameter 'id' is missing"}}`)

	reqs, err := s.WaitRequests(4, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if string(reqs[0].Raw) != `{"execute":"query-status"}` || reqs[0].Name != "query-status" || reqs[0].ID != nil {
		t.Fatalf("first request recorded as %+v", reqs[0])
	}
	if string(reqs[1].ID) != `"pre-2"` {
		t.Fatalf("second request id %q", reqs[1].ID)
	}
	if string(reqs[2].Arguments) != `{"enable":["bogus"]}` {
		t.Fatalf("third request arguments %q", reqs[2].Arguments)
	}
}

func TestProtocolErrors(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	for _, tc := range []struct{ in, want string }{
		{`[]`, `{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`},
		{`42`, `{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`},
		{`{}`, `{"error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}`},
		{`{"id":1}`, `{"id": 1, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}`},
		{`{"execute":1}`, `{"error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}}`},
		{`{"execute":"query-name","arguments":[]}`, `{"error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}}`},
		{`{"execute":"query-name","foo":1}`, `{"error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}`},
		{`{"execute":"query-name","exec-oob":"query-name"}`, `{"error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`},
		{`{"exec-oob":"query-yank","id":"x"}`, `{"id": "x", "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`},
		{`{"execute":"block-job-cancel","arguments":{"device":"nope"}}`, `{"error": {"class": "DeviceNotActive", "desc": "Block job 'nope' not found"}}`},
		{`{"execute":"human-monitor-command","arguments":{"command-line":"bogus"}}`, `{"return": "unknown command: 'bogus'\r\n"}`},
		{`{"execute":"human-monitor-command","arguments":{"command-line":"info version"}}`, `{"return": "7.2.22 (qmptest)\r\n"}`},
		// framing: split over lines
		{"{\"execute\":\n \"query-name\",\n \"id\": \"multi\"\n}\n\n  \n", `{"return": {}, "id": "multi"}`},
	} {
		// A trailing newline, as a scalar like 42 only ends at a delimiter.
		c.send(tc.in + "\n")
		c.expect(tc.want)
	}
	// A malformed value gets an error without id, then the connection
	// is dropped.
	c.send(`{"execute":}`)
	if got := c.line(); !strings.HasPrefix(got, `{"error": {"class": "GenericError", "desc": "JSON parse error, `) {
		t.Fatalf("got %s, want a JSON parse error", got)
	}
	c.expectEOF()
}

func TestLifecycleEvents(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	c.send(`{"execute":"stop","id":1}`)
	c.expectEvent(`"STOP"`)
	c.expect(`{"return": {}, "id": 1}`)
	c.send(`{"execute":"query-status"}`)
	c.expect(`{"return": {"status": "paused", "singlestep": false, "running": false}}`)
	c.send(`{"execute":"stop"}`)
	c.expect(returnsNil) // already stopped: no event
	c.send(`{"execute":"cont"}`)
	c.expectEvent(`"RESUME"`)
	c.expect(returnsNil)
	c.send(`{"execute":"system_reset"}`)
	c.expectEvent(`"RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}`)
	c.expect(returnsNil)

	s.SendEventAt("CUSTOM", map[string]int{"a": 1}, -1, -1)
	c.expect(`{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "CUSTOM", "data": {"a": 1}}`)

	c.send(`{"execute":"quit","id":"bye"}`)
	c.expectEvent(`"SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}`)
	c.expect(`{"return": {}, "id": "bye"}`)
	c.expectEOF()
	if conn, err := net.Dial("unix", s.Path()); err == nil {
		conn.Close()
		t.Fatal("dial after quit succeeded, want the listener closed")
	}
}

func TestHotplug(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	c.send(`{"execute":"device_add","arguments":{"driver":"usb-kbd","id":"kbd0","bus":"xhci.0"}}`)
	c.expect(returnsNil)
	c.send(`{"execute":"device_add","arguments":{"driver":"usb-kbd","id":"kbd0"}}`)
	c.expect(`{"error": {"class": "GenericError", "desc": "Duplicate device ID 'kbd0' for device"}}`)
	c.send(`{"execute":"device_del","arguments":{"id":"kbd0"},"id":7}`)
	c.expect(`{"return": {}, "id": 7}`)
	c.expectEvent(`"DEVICE_DELETED", "data": {"device": "kbd0", "path": "/machine/peripheral/kbd0"}`)
	c.send(`{"execute":"device_del","arguments":{"id":"kbd0"},"id":"e1"}`)
	c.expect(`{"id": "e1", "error": {"class": "DeviceNotFound", "desc": "Device 'kbd0' not found"}}`)
}

func TestOneClientAtATime(t *testing.T) {
	s := newServer(t, Config{})
	c1 := negotiated(t, s)
	c2 := dial(t, s)
	c2.expectSilence(200 * time.Millisecond)
	// Events go to the negotiated client only.
	s.SendEvent("HELLO", nil)
	c1.expectEvent(`"HELLO"`)
	c1.c.Close()
	c2.expect(greeting)
	if n := s.ConnCount(); n != 2 {
		t.Fatalf("ConnCount = %d, want 2", n)
	}
}

func TestDropConnection(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	s.DropConnection()
	c.expectEOF()
	c2 := negotiated(t, s)
	c2.send(`{"execute":"query-name"}`)
	c2.expect(returnsNil)
}

// sendWithFD sends msg with fd attached in a single sendmsg.
func (c *client) sendWithFD(msg string, f *os.File) {
	c.t.Helper()
	if _, _, err := c.c.WriteMsgUnix([]byte(msg), syscall.UnixRights(int(f.Fd())), nil); err != nil {
		c.t.Fatalf("sendmsg: %v", err)
	}
}

func TestFDPassing(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()

	c.send(`{"execute":"getfd","arguments":{"fdname":"nofd"}}`)
	c.expect(`{"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}`)

	c.sendWithFD(`{"execute":"getfd","arguments":{"fdname":"pipe-w"}}`, pw)
	c.expect(returnsNil)
	f := s.FD("pipe-w")
	if f == nil {
		t.Fatal(`FD("pipe-w") = nil after getfd`)
	}
	// The stored fd must be a duplicate of our pipe's write end.
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatalf("writing through the passed fd: %v", err)
	}
	b := make([]byte, 1)
	if _, err := pr.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("read %q, %v from pipe, want \"x\"", b, err)
	}

	c.sendWithFD(`{"execute":"getfd","arguments":{"fdname":"1bad"}}`, pw)
	c.expect(`{"error": {"class": "GenericError", "desc": "Parameter 'fdname' expects a name not starting with a digit"}}`)

	c.send(`{"execute":"closefd","arguments":{"fdname":"pipe-w"}}`)
	c.expect(returnsNil)
	if s.FD("pipe-w") != nil {
		t.Fatal("FD still stored after closefd")
	}
	c.send(`{"execute":"closefd","arguments":{"fdname":"pipe-w"}}`)
	c.expect(`{"error": {"class": "GenericError", "desc": "File descriptor named 'pipe-w' not found"}}`)

	c.sendWithFD(`{"execute":"add-fd","arguments":{"fdset-id":1,"opaque":"r"}}`, pr)
	line := c.line()
	var ret struct {
		Return struct {
			FD      int `json:"fd"`
			FdsetID int `json:"fdset-id"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(line), &ret); err != nil || ret.Return.FdsetID != 1 || ret.Return.FD <= 2 {
		t.Fatalf("add-fd reply %s", line)
	}
	c.send(`{"execute":"add-fd"}`)
	c.expect(`{"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}`)
	c.send(`{"execute":"query-fdsets"}`)
	if got := c.line(); !strings.Contains(got, `"opaque": "r"}], "fdset-id": 1}`) {
		t.Fatalf("query-fdsets: %s", got)
	}
	c.send(`{"execute":"remove-fd","arguments":{"fdset-id":1,"fd":9999}}`)
	c.expect(`{"error": {"class": "GenericError", "desc": "File descriptor named 'fdset-id:1, fd:9999' not found"}}`)
	c.send(`{"execute":"remove-fd","arguments":{"fdset-id":1}}`)
	c.expect(returnsNil)
	c.send(`{"execute":"query-fdsets"}`)
	c.expect(`{"return": []}`)

	if n := s.ReceivedFDs(); n != 3 {
		t.Fatalf("ReceivedFDs = %d, want 3", n)
	}
	reqs := s.Requests()
	if reqs[2].FD == nil || reqs[1].FD != nil {
		t.Fatalf("Request.FD not recorded as expected: %v, %v", reqs[1].FD, reqs[2].FD)
	}
}

func TestExecOOB(t *testing.T) {
	s := newServer(t, Config{})
	gate := make(chan struct{})
	s.Handle("slow", func(_ *Server, _ *Request) Reply {
		<-gate
		return Reply{Return: "slow done"}
	})
	c := dial(t, s)
	c.expect(greeting)
	c.send(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`)
	c.expect(returnsNil)
	if got := s.Negotiated(); len(got) != 1 || got[0] != "oob" {
		t.Fatalf("Negotiated = %v, want [oob]", got)
	}
	c.send(`{"execute":"slow","id":"inband"}{"exec-oob":"query-yank","id":"oob-fast"}`)
	c.expect(`{"return": [{"type": "chardev", "id": "qmp0"}], "id": "oob-fast"}`)
	close(gate)
	c.expect(`{"return": "slow done", "id": "inband"}`)

	c.send(`{"exec-oob":"migrate-pause","id":"o2"}`)
	c.expect(`{"id": "o2", "error": {"class": "GenericError", "desc": "migrate-pause is currently only supported during postcopy-active state"}}`)
	c.send(`{"exec-oob":"query-status","id":"o3"}`)
	c.expect(`{"id": "o3", "error": {"class": "GenericError", "desc": "The command query-status does not support OOB"}}`)
}

func TestSplitWrites(t *testing.T) {
	s := newServer(t, Config{})
	s.SetSplitWrites(true)
	c := negotiated(t, s)
	c.send(`{"execute":"query-status","id":1}`)
	c.expect(statusRun + `, "id": 1}`)
}

func TestPretty(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	s.SetPretty(true)
	c.send(`{"execute":"query-name","id":1}`)
	want := "{\n    \"return\": {},\n    \"id\": 1\n}\r\n"
	c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c.r, buf); err != nil {
		t.Fatalf("reading pretty reply: %v", err)
	}
	if string(buf) != want {
		t.Fatalf("pretty reply %q, want %q", buf, want)
	}
}

func TestOutOfOrder(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	s.SetOutOfOrder(3)
	c.send(`{"execute":"query-name","id":1}{"execute":"query-name"}{"execute":"query-name","id":2}{"execute":"query-name","id":3}`)
	c.expect(returnsNil) // no id: not held back
	c.expect(`{"return": {}, "id": 3}`)
	c.expect(`{"return": {}, "id": 2}`)
	c.expect(`{"return": {}, "id": 1}`)
	s.SetOutOfOrder(0)
	c.send(`{"execute":"query-name","id":4}`)
	c.expect(`{"return": {}, "id": 4}`)
}

func TestEventBeforeNegotiationReply(t *testing.T) {
	s := newServer(t, Config{EventBeforeNegotiationReply: true})
	c := dial(t, s)
	c.expect(greeting)
	c.send(`{"execute":"qmp_capabilities","id":0}`)
	c.expectEvent(`"PRE_NEGOTIATION"`)
	c.expect(`{"return": {}, "id": 0}`)
}

func TestNoGreeting(t *testing.T) {
	s := newServer(t, Config{NoGreeting: true})
	c := dial(t, s)
	c.send(`{"execute":"qmp_capabilities"}`)
	c.expectSilence(200 * time.Millisecond)
	if err := s.WaitConnected(50 * time.Millisecond); err == nil {
		t.Fatal("WaitConnected succeeded without a greeting")
	}
}

func TestBigSchema(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	c.send(`{"execute":"query-qmp-schema"}`)
	l := c.line()
	if len(l) < 200*1024 || !json.Valid([]byte(l)) {
		t.Fatalf("schema reply: %d bytes, valid=%v", len(l), json.Valid([]byte(l)))
	}
}

func TestNoReplyAndCloseDoesNotHang(t *testing.T) {
	s := NewServer(Config{})
	s.Handle("wedge", func(*Server, *Request) Reply { return Reply{NoReply: true} })
	s.Handle("sleepy", func(*Server, *Request) Reply { return Reply{Delay: time.Hour} })
	c := negotiated(t, s)
	c.send(`{"execute":"wedge","id":1}`)
	c.send(`{"execute":"sleepy","id":2}`)
	if _, err := s.WaitRequests(3, ioTimeout); err != nil {
		t.Fatal(err)
	}
	c.expectSilence(100 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		s.Close()
		s.Close() // idempotent
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(ioTimeout):
		t.Fatal("Close hung with a wedged command pending")
	}
	c.expectEOF()
	if _, err := os.Stat(s.Path()); !os.IsNotExist(err) {
		t.Fatalf("socket path still exists after Close: %v", err)
	}
}

func TestSendRaw(t *testing.T) {
	s := newServer(t, Config{})
	c := negotiated(t, s)
	s.SendRaw([]byte("garbage\r\n"))
	c.expect("garbage")
	if !bytes.Equal(qemuStyle([]byte(`{"a":"x,:\"y","b":[1,2]}`)), []byte(`{"a": "x,:\"y", "b": [1, 2]}`)) {
		t.Fatal("qemuStyle mangles strings")
	}
}

func TestInBandQueueLimit(t *testing.T) {
	s := newServer(t, Config{})
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // runs before s.Close
	s.Handle("slow", func(*Server, *Request) Reply {
		<-gate
		return Reply{}
	})
	c := dial(t, s)
	c.expect(greeting)
	c.send(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`)
	c.expect(returnsNil)
	var b strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, `{"execute":"slow","id":%d}`, i)
	}
	c.send(b.String())
	// 1 executing + 8 queued (+ qmp_capabilities) have been read...
	if _, err := s.WaitRequests(10, ioTimeout); err != nil {
		t.Fatal(err)
	}
	// ...and then the server stops reading: even OOB gets no answer.
	c.send(`{"exec-oob":"query-yank","id":"oob"}`)
	c.expectSilence(200 * time.Millisecond)
	if n := len(s.Requests()); n != 10 {
		t.Fatalf("server read %d requests while the queue was full, want 10", n)
	}
	release()
	seen := 0
	for i := 0; i < 21; i++ {
		if l := c.line(); strings.Contains(l, `"id": "oob"`) {
			seen++
		}
	}
	if seen != 1 {
		t.Fatalf("OOB reply seen %d times", seen)
	}
}

func TestNoGoroutinesAfterClose(t *testing.T) {
	s := NewServer(Config{})
	c := negotiated(t, s)
	s.SendEvent("X", nil)
	c.expectEvent(`"X"`)
	c2 := dial(t, s) // waiting in the backlog
	s.Close()
	c.expectEOF()
	c2.c.Close()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "qmptest.(*Server)") {
		t.Fatalf("server goroutines still running after Close:\n%s", stacks)
	}
}
