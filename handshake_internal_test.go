package qmp

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// deadlineConn records the deadlines set on it. Setting one in the past
// (what the handshake's context.AfterFunc does) signals entered and then
// blocks until release is closed, so a test can hold the AfterFunc in the
// middle of running.
type deadlineConn struct {
	net.Conn
	entered, release, pastSet chan struct{}
	once                      sync.Once

	mu   sync.Mutex
	last time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	past := !t.IsZero() && time.Until(t) < 0
	if past {
		c.once.Do(func() { close(c.entered) })
		<-c.release
	}
	err := c.Conn.SetDeadline(t)
	c.mu.Lock()
	c.last = t
	c.mu.Unlock()
	if past {
		close(c.pastSet)
	}
	return err
}

func (c *deadlineConn) lastDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// The ctx ends while the reply to qmp_capabilities is on its way: the
// AfterFunc has started but not yet set its deadline when the handshake
// succeeds. The monitor returned must not carry that deadline.
func TestHandshakeLeavesNoDeadline(t *testing.T) {
	client, server := net.Pipe()
	dc := &deadlineConn{Conn: client, entered: make(chan struct{}), release: make(chan struct{}), pastSet: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	srvDone := make(chan error, 1)
	go func() {
		defer server.Close()
		if _, err := server.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\r\n")); err != nil {
			srvDone <- err
			return
		}
		buf := make([]byte, 512)
		if _, err := server.Read(buf); err != nil {
			srvDone <- err
			return
		}
		cancel()
		<-dc.entered // the AfterFunc runs, held before it sets the deadline
		_, err := server.Write([]byte(`{"return": {}}` + "\r\n"))
		srvDone <- err
		// Keep the connection open until the monitor closes it.
		bufio.NewReader(server).WriteTo(nopWriter{})
	}()

	type result struct {
		m   *Monitor
		err error
	}
	res := make(chan result, 1)
	go func() {
		m, err := NewMonitorConn(ctx, dc, nil)
		res <- result{m, err}
	}()
	if err := <-srvDone; err != nil {
		t.Fatalf("server: %v", err)
	}
	// A handshake that does not wait for the AfterFunc returns now, before
	// it is released; one that waits returns only after the release. Either
	// way the release comes after the handshake has cleared the deadline or
	// started waiting for the AfterFunc.
	var r result
	select {
	case r = <-res:
	case <-time.After(200 * time.Millisecond):
	}
	close(dc.release)
	<-dc.pastSet
	if r.m == nil && r.err == nil {
		select {
		case r = <-res:
		case <-time.After(10 * time.Second):
			t.Fatal("NewMonitorConn did not return within 10s of the AfterFunc's release")
		}
	}
	if r.err != nil {
		t.Fatalf("NewMonitorConn = %v; the reply arrived, so the handshake succeeded", r.err)
	}
	defer r.m.Close()
	if dl := dc.lastDeadline(); !dl.IsZero() {
		t.Fatalf("the monitor's connection carries the deadline %v after the handshake", dl)
	}
}

type nopWriter struct{}

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
