package qmp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

func TestDialUnix(t *testing.T) {
	s := newServer(t, qmptest.Config{Version: "8.1.3", Capabilities: []string{"oob", "x-test"}})
	m, err := qmp.Dial(ctxT(t, 5*time.Second), "unix", s.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if v := m.Version(); v.QEMU.Major != 8 || v.QEMU.Minor != 1 || v.QEMU.Micro != 3 {
		t.Fatalf("Version() = %+v, want 8.1.3", v)
	}
	caps := m.Capabilities()
	if fmt.Sprint(caps) != "[oob x-test]" {
		t.Fatalf("Capabilities() = %v", caps)
	}
	caps[0] = "changed"
	if m.Capabilities()[0] != "oob" {
		t.Fatal("Capabilities() returns the monitor's own slice")
	}
	if m.OOBEnabled() {
		t.Fatal("OOB negotiated without Options.EnableOOB")
	}
	if got := s.Negotiated(); len(got) != 0 {
		t.Fatalf("negotiated %v, want nothing", got)
	}
}

func TestDialTCP(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	addr := proxyQMP(t, "tcp", "127.0.0.1:0", s.Path())
	m, err := qmp.Dial(ctxT(t, 5*time.Second), "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out, err := m.RunHuman("info version")
	if err != nil || out != "7.2.22 (qmptest)\r\n" {
		t.Fatalf("RunHuman over TCP = %q, %v", out, err)
	}
	f, _ := os.Open(os.DevNull)
	defer f.Close()
	if err := m.RunWithFile(ctxT(t, 5*time.Second), qmp.Command{"getfd", map[string]string{"fdname": "x"}}, nil, f); !errors.Is(err, qmp.ErrFDPassingUnsupported) {
		t.Fatalf("RunWithFile over TCP = %v, want ErrFDPassingUnsupported", err)
	}
}

func TestDialUnsupportedNetwork(t *testing.T) {
	if m, err := qmp.Dial(ctxT(t, time.Second), "udp", "127.0.0.1:1", nil); err == nil {
		m.Close()
		t.Fatal("Dial(udp) succeeded")
	}
}

func TestNewMonitorConn(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	m, err := qmp.NewMonitorConn(ctxT(t, 5*time.Second), conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	var name struct{}
	if err := m.Run(qmp.Command{"query-name", nil}, &name); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The monitor owns conn and closed it.
	if _, err := conn.Write([]byte("{}")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("conn after Close: write = %v, want net.ErrClosed", err)
	}
}

func TestNewMonitorConnHandshakeFailureClosesConn(t *testing.T) {
	s := newServer(t, qmptest.Config{NoGreeting: true})
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if m, err := qmp.NewMonitorConn(ctxT(t, 100*time.Millisecond), conn, nil); !errors.Is(err, qmp.ErrHandshake) {
		if m != nil {
			m.Close()
		}
		t.Fatalf("NewMonitorConn(no greeting) = %v, want ErrHandshake", err)
	}
	if _, err := conn.Write([]byte("{}")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("conn after a failed handshake: write = %v, want net.ErrClosed", err)
	}
}

func TestDialWaitForSocket(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	path := filepath.Join(t.TempDir(), "later.sock")
	type result struct {
		m   *qmp.Monitor
		err error
	}
	res := make(chan result, 1)
	dialWaits := awaitBlocking(t, "dial retry")
	go func() {
		m, err := qmp.Dial(ctxT(t, 5*time.Second), "unix", path, &qmp.Options{WaitForSocket: true})
		res <- result{m, err}
	}()
	// Dial sits in its retry wait only after a failed attempt.
	dialWaits()
	proxyQMP(t, "unix", path, s.Path())
	r := <-res
	if r.err != nil {
		t.Fatalf("Dial with WaitForSocket: %v", r.err)
	}
	defer r.m.Close()
	if err := r.m.Run(qmp.Command{"query-name", nil}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestDialWaitForSocketNeverAppears(t *testing.T) {
	path := filepath.Join(t.TempDir(), "never.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	m, err := qmp.Dial(ctx, "unix", path, &qmp.Options{WaitForSocket: true})
	if err == nil {
		m.Close()
		t.Fatal("Dial succeeded without a socket")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Dial = %v, want the ctx error naming the path", err)
	}
}

func TestNewMonitorDoesNotWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.sock")
	// Were NewMonitor to wait for the socket, it would end with its
	// timeout's error instead of the connect error.
	m, err := qmp.NewMonitor(path, 3*time.Second)
	if err == nil {
		m.Close()
		t.Fatal("NewMonitor succeeded without a socket")
	}
	if !qmp.IsSocketNotAvailable(err) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewMonitor(missing) = %v, want an immediate IsSocketNotAvailable error", err)
	}
}
