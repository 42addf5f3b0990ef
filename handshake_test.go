package qmp_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// checkHandshakeTimeout fails unless err is a handshake timeout that wraps
// stage and context.DeadlineExceeded and reads like one.
func checkHandshakeTimeout(t *testing.T, err error, stage error, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("the handshake succeeded")
	}
	if !errors.Is(err, stage) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handshake timeout = %v, want it to wrap %q and context.DeadlineExceeded", err, stage)
	}
	msg := err.Error()
	if strings.Contains(msg, "%!") || strings.Contains(msg, "invalid greeting") || !strings.Contains(msg, want) {
		t.Fatalf("handshake timeout reads %q: want %q in it, no %%! and no \"invalid greeting\"", msg, want)
	}
}

// The connection's deadline used to race the ctx: most runs lost the
// ctx's error and printed %!w(<nil>).
func TestHandshakeTimeoutWrapsCtxError(t *testing.T) {
	s := newServer(t, qmptest.Config{NoGreeting: true})
	handshakes := 0
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		m, err := qmp.Dial(ctx, "unix", s.Path(), nil)
		cancel()
		if err == nil {
			m.Close()
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			continue // a loaded machine spent the 20 ms connecting: no handshake to check
		}
		handshakes++
		checkHandshakeTimeout(t, err, qmp.ErrHandshake, "no QMP greeting")
	}
	if handshakes == 0 {
		t.Fatal("every dial timed out before the handshake")
	}
}

func TestHandshakeCustomCause(t *testing.T) {
	s := newServer(t, qmptest.Config{NoGreeting: true})
	cause := errors.New("the VM manager is shutting down")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 20*time.Millisecond, cause)
	defer cancel()
	m, err := qmp.Dial(ctx, "unix", s.Path(), nil)
	if err == nil {
		m.Close()
	}
	checkHandshakeTimeout(t, err, qmp.ErrHandshake, cause.Error())
	if !errors.Is(err, cause) {
		t.Errorf("handshake timeout = %v, want it to wrap the ctx's cause", err)
	}
}

func TestHandshakeCancelledCtx(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	m, err := qmp.NewMonitorConn(ctx, conn, nil)
	if err == nil {
		m.Close()
		t.Fatal("NewMonitorConn with a cancelled ctx succeeded")
	}
	if !errors.Is(err, qmp.ErrHandshake) || !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "%!") {
		t.Fatalf("NewMonitorConn(cancelled ctx) = %v, want ErrHandshake and context.Canceled", err)
	}
}

// silentNegotiation listens on a unix socket, greets each client and never
// answers qmp_capabilities.
func silentNegotiation(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\r\n"))
			// Read until the client leaves, answering nothing.
			bufio.NewReader(c).WriteTo(discard{})
			c.Close()
		}
	}()
	return path
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func TestNegotiationTimeoutWrapsCtxError(t *testing.T) {
	path := silentNegotiation(t)
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		m, err := qmp.Dial(ctx, "unix", path, nil)
		cancel()
		if err == nil {
			m.Close()
		}
		checkHandshakeTimeout(t, err, qmp.ErrNegotiation, "no reply to qmp_capabilities")
		if errors.Is(err, qmp.ErrHandshake) {
			t.Fatalf("negotiation timeout %v also wraps ErrHandshake", err)
		}
	}
}
