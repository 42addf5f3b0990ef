//go:build linux

package qmp_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// fullBacklog returns the path of a unix socket that listens with a backlog
// of 0 and never accepts, with its queue already full: every further
// connect fails with EAGAIN, as on a QMP socket whose client slot and
// backlog are taken.
func fullBacklog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "busy.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	// Fill the queue: connect non-blocking until the kernel says EAGAIN.
	for i := 0; ; i++ {
		c, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = syscall.Connect(c, &syscall.SockaddrUnix{Name: path})
		if err == syscall.EAGAIN {
			syscall.Close(c)
			return path
		}
		if err != nil {
			t.Fatalf("filling the backlog: connect #%d: %v", i, err)
		}
		t.Cleanup(func() { syscall.Close(c) })
		if i > 16 {
			t.Fatal("the backlog of a listen(0) socket took 16 connections")
		}
	}
}

func TestDialBusySocket(t *testing.T) {
	path := fullBacklog(t)
	start := time.Now()
	m, err := qmp.NewMonitor(path, 5*time.Second)
	if err == nil {
		m.Close()
		t.Fatal("NewMonitor on a socket with a full backlog succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("NewMonitor on a busy socket took %v, want it to fail at once", took)
	}
	if !errors.Is(err, qmp.ErrSocketBusy) || !qmp.IsSocketBusy(err) {
		t.Errorf("NewMonitor(busy) = %v, want ErrSocketBusy", err)
	}
	if !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("NewMonitor(busy) = %v, want it to wrap EAGAIN", err)
	}
	if qmp.IsSocketNotAvailable(err) {
		t.Errorf("IsSocketNotAvailable(%v) = true for a busy socket", err)
	}
	if !strings.Contains(err.Error(), "another client holds the QMP socket") {
		t.Errorf("NewMonitor(busy) = %q, want it to say another client holds the socket", err)
	}
}

func TestDialWaitForSocketRetriesBusy(t *testing.T) {
	path := fullBacklog(t)
	const wait = 300 * time.Millisecond
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m, err := qmp.Dial(ctx, "unix", path, &qmp.Options{WaitForSocket: true})
	if err == nil {
		m.Close()
		t.Fatal("Dial on a busy socket succeeded")
	}
	if took := time.Since(start); took < wait {
		t.Errorf("Dial with WaitForSocket gave up after %v, before its %v ctx ended: busy was not retried", took, wait)
	}
	if !errors.Is(err, qmp.ErrSocketBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial(WaitForSocket, busy) = %v, want ErrSocketBusy and context.DeadlineExceeded", err)
	}
}

func TestNewMonitorZeroTimeoutMeansNoDeadline(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	for _, timeout := range []time.Duration{0, -time.Second} {
		m, err := qmp.NewMonitor(s.Path(), timeout)
		if err != nil {
			t.Fatalf("NewMonitor(path, %v) = %v, want a monitor (no deadline, as v2.0.4)", timeout, err)
		}
		if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{Name: "query-name"}, nil); err != nil {
			t.Errorf("NewMonitor(path, %v): query-name: %v", timeout, err)
		}
		m.Close()
	}
}
