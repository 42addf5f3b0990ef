//go:build unix

package qemutest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// client is a raw, library-free QMP connection.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dial connects to a QMP socket and checks the greeting.
func dial(t *testing.T, path string) *client {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	greeting, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: reading greeting: %v", path, err)
	}
	if !strings.HasPrefix(greeting, `{"QMP"`) {
		t.Fatalf("%s: greeting %q does not start with {\"QMP\"", path, greeting)
	}
	return c
}

// do sends one command line and returns the first reply line, skipping events.
func (c *client) do(cmd string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, cmd+"\n"); err != nil {
		c.t.Fatal(err)
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("%s: %v", cmd, err)
		}
		if strings.HasPrefix(line, `{"timestamp"`) || strings.Contains(line, `"event"`) {
			continue
		}
		return strings.TrimRight(line, "\r\n")
	}
}

func (c *client) negotiate() {
	c.t.Helper()
	if got := c.do(`{"execute":"qmp_capabilities"}`); got != `{"return": {}}` {
		c.t.Fatalf("qmp_capabilities: got %q", got)
	}
}

// expectEOF reads until the connection ends; QEMU closes after quit, which
// shows as EOF or, racing with our reads, as ECONNRESET.
func (c *client) expectEOF() {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err == nil {
			if !strings.Contains(line, `"event"`) {
				c.t.Fatalf("unexpected message before EOF: %q", line)
			}
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		c.t.Fatalf("want EOF, got %v", err)
	}
}

func waitExited(t *testing.T, q *QEMU) {
	t.Helper()
	select {
	case <-q.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("QEMU did not exit")
	}
}

func assertGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill(%d, 0) = %v, want ESRCH: process still exists", pid, err)
	}
}

func TestQuit(t *testing.T) {
	q := Require(t, Config{})
	if len(q.Sockets) != 1 || q.Pid <= 0 {
		t.Fatalf("Sockets = %v, Pid = %d", q.Sockets, q.Pid)
	}
	for _, s := range q.Sockets {
		if len(s) >= 108 {
			t.Errorf("socket path %q too long", s)
		}
	}
	c := dial(t, q.Sockets[0])
	c.negotiate()
	if got := c.do(`{"execute":"quit"}`); got != `{"return": {}}` {
		t.Fatalf("quit: got %q", got)
	}
	c.expectEOF()
	waitExited(t, q)
	q.Stop()
	q.Stop() // idempotent
	assertGone(t, q.Pid)
}

func TestKillThenStop(t *testing.T) {
	q := Require(t, Config{})
	c := dial(t, q.Sockets[0])
	c.negotiate()
	if err := q.Kill(); err != nil {
		t.Fatal(err)
	}
	// The client sees the connection end.
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Fatal("read after Kill succeeded")
	}
	done := make(chan struct{})
	go func() { q.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
	select {
	case <-q.Exited():
	default:
		t.Fatal("Exited not closed after Stop")
	}
	assertGone(t, q.Pid)
	if err := q.Kill(); err != nil {
		t.Errorf("Kill after exit: %v", err)
	}
}

func TestStopRemovesTempDir(t *testing.T) {
	if _, ok := Binary(); !ok {
		Require(t, Config{}) // skips or fails, as configured
	}
	q, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	dir := q.tempDir
	if dir == "" {
		t.Fatal("Start with Dir == \"\" made no temp dir")
	}
	q.Stop()
	assertGone(t, q.Pid)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s still there after Stop: %v", dir, err)
	}
}

func TestTwoSockets(t *testing.T) {
	q := Require(t, Config{Sockets: 2})
	if len(q.Sockets) != 2 || q.Sockets[0] == q.Sockets[1] {
		t.Fatalf("Sockets = %v", q.Sockets)
	}
	c0 := dial(t, q.Sockets[0])
	c1 := dial(t, q.Sockets[1])
	c0.negotiate()
	c1.negotiate()
	if got := c1.do(`{"execute":"query-status"}`); !strings.Contains(got, `"running"`) {
		t.Fatalf("query-status: %q", got)
	}
}

func TestPCWithXHCI(t *testing.T) {
	q := Require(t, Config{
		Machine:   "pc",
		Paused:    true,
		ExtraArgs: []string{"-device", "qemu-xhci,id=xhci"},
	})
	c := dial(t, q.Sockets[0])
	c.negotiate()
	if got := c.do(`{"execute":"query-status"}`); !strings.Contains(got, `"status": "prelaunch"`) {
		t.Fatalf("query-status: %q", got)
	}
	got := c.do(`{"execute":"qom-list","arguments":{"path":"/machine/peripheral"}}`)
	if !strings.Contains(got, `"name": "xhci"`) {
		t.Fatalf("qom-list /machine/peripheral: %q", got)
	}
	if got := c.do(`{"execute":"device_add","arguments":{"driver":"usb-kbd","id":"kbd0","bus":"xhci.0"}}`); got != `{"return": {}}` {
		t.Fatalf("device_add usb-kbd: %q", got)
	}
}

func TestStartErrors(t *testing.T) {
	if _, ok := Binary(); !ok {
		Require(t, Config{})
	}
	if _, err := Start(Config{Sockets: 3}); err == nil {
		t.Error("Sockets: 3 accepted")
	}
	if _, err := Start(Config{Dir: "/tmp/" + strings.Repeat("x", 120)}); err == nil {
		t.Error("overlong socket path accepted")
	}
	_, err := Start(Config{Dir: t.TempDir(), ExtraArgs: []string{"-device", "no-such-device"}})
	if err == nil {
		t.Fatal("bad -device accepted")
	}
	if !strings.Contains(err.Error(), "no-such-device") {
		t.Errorf("error lacks QEMU's stderr: %v", err)
	}
	t.Log(err)
}

func TestRequireLongTempDir(t *testing.T) {
	t.Run(strings.Repeat("long", 25), func(t *testing.T) {
		q := Require(t, Config{})
		if len(q.Sockets[0]) >= 108 {
			t.Fatalf("socket path %q too long", q.Sockets[0])
		}
		if q.tempDir == "" {
			t.Logf("t.TempDir() was short enough: %s", q.Sockets[0])
		}
		dial(t, q.Sockets[0]).negotiate()
	})
}
