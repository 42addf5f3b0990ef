package qmp_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

func TestErrorClasses(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)

	err := m.Run(qmp.Command{"no-such-command", nil}, nil)
	cnf, ok := err.(*qmp.CommandNotFound)
	if !ok {
		t.Fatalf("unknown command: %T %v, want *qmp.CommandNotFound", err, err)
	}
	if cnf.Class != "CommandNotFound" || cnf.Desc != "The command no-such-command has not been found" {
		t.Fatalf("CommandNotFound = %+v", cnf.GenericError)
	}

	err = m.Run(qmp.Command{"device_del", map[string]string{"id": "nope"}}, nil)
	dnf, ok := err.(*qmp.DeviceNotFound)
	if !ok {
		t.Fatalf("device_del: %T %v, want *qmp.DeviceNotFound", err, err)
	}
	if dnf.Class != "DeviceNotFound" || dnf.Desc != "Device 'nope' not found" {
		t.Fatalf("DeviceNotFound = %+v", dnf.GenericError)
	}

	err = m.Run(qmp.Command{"block-job-cancel", map[string]string{"device": "nope"}}, nil)
	dna, ok := err.(*qmp.DeviceNotActive)
	if !ok {
		t.Fatalf("block-job-cancel: %T %v, want *qmp.DeviceNotActive", err, err)
	}
	if dna.Class != "DeviceNotActive" || dna.Desc != "Block job 'nope' not found" {
		t.Fatalf("DeviceNotActive = %+v", dna.GenericError)
	}

	// A class without its own type comes back as *GenericError itself.
	err = m.Run(qmp.Command{"stop", map[string]int{"bogus": 1}}, nil)
	if ge, ok := err.(*qmp.GenericError); !ok || ge.Class != "GenericError" {
		t.Fatalf("bad argument: %T %v, want *qmp.GenericError", err, err)
	}

	for _, e := range []error{cnf, dnf, dna} {
		for _, wrapped := range []error{e, fmt.Errorf("ctx: %w", e), fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", e))} {
			var ge *qmp.GenericError
			if !errors.As(wrapped, &ge) {
				t.Errorf("errors.As(%v, *GenericError) = false", wrapped)
				continue
			}
			if ge.Error() != e.Error() {
				t.Errorf("errors.As found %q, want %q", ge.Error(), e.Error())
			}
		}
	}
	var target *qmp.DeviceNotFound
	if !errors.As(fmt.Errorf("wrap: %w", dnf), &target) || target != dnf {
		t.Fatal("errors.As(*DeviceNotFound) through %w failed")
	}
	if want := "DeviceNotFound error: Device 'nope' not found"; dnf.Error() != want {
		t.Fatalf("Error() = %q, want %q", dnf.Error(), want)
	}
}

func TestIsSocketNotAvailableENOENT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.sock")
	m, err := qmp.NewMonitor(path, 2*time.Second)
	if err == nil {
		m.Close()
		t.Fatal("NewMonitor on a missing socket succeeded")
	}
	if !qmp.IsSocketNotAvailable(err) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("NewMonitor(missing) = %v, want ENOENT and IsSocketNotAvailable", err)
	}
	if !qmp.IsSocketNotAvailable(fmt.Errorf("starting VM: %w", err)) {
		t.Fatal("IsSocketNotAvailable does not see through %w")
	}
	if qmp.IsSocketClosed(err) {
		t.Fatal("IsSocketClosed(ENOENT) = true")
	}
}

func TestIsSocketNotAvailableECONNREFUSED(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	// A QEMU that died leaves its socket file behind.
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	m, err := qmp.NewMonitor(path, 2*time.Second)
	if err == nil {
		m.Close()
		t.Fatal("NewMonitor on a stale socket succeeded")
	}
	if !qmp.IsSocketNotAvailable(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("NewMonitor(stale) = %v, want ECONNREFUSED and IsSocketNotAvailable", err)
	}
}

func TestIsSocketNotAvailableOtherErrors(t *testing.T) {
	for _, err := range []error{nil, io.EOF, errors.New("x"), qmp.ErrHandshake, &qmp.ClosedError{}} {
		if qmp.IsSocketNotAvailable(err) {
			t.Errorf("IsSocketNotAvailable(%v) = true", err)
		}
	}
	if qmp.IsSocketClosed(nil) || qmp.IsSocketClosed(io.EOF) {
		t.Error("IsSocketClosed of an unrelated error = true")
	}
}

func TestIsSocketClosedThroughWrapping(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	m.Close()
	err := m.Run(qmp.Command{"query-name", nil}, nil)
	var ce *qmp.ClosedError
	if !errors.As(err, &ce) || ce.Cause != nil {
		t.Fatalf("Run after Close = %v, want a *ClosedError with no cause", err)
	}
	for _, e := range []error{err, fmt.Errorf("a: %w", err), fmt.Errorf("b: %w", fmt.Errorf("a: %w", err))} {
		if !qmp.IsSocketClosed(e) || !errors.Is(e, qmp.ErrClosed) {
			t.Errorf("IsSocketClosed(%v) = false", e)
		}
	}
}

// TestHandshakeSecondClient: QEMU greets only one client at a time, so a
// second one times out waiting for the greeting.
func TestHandshakeSecondClient(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	first := dial(t, s, nil)
	if err := s.WaitConnected(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := qmp.NewMonitor(s.Path(), 300*time.Millisecond)
	if err == nil {
		m.Close()
		t.Fatal("a second client completed the handshake")
	}
	if !errors.Is(err, qmp.ErrHandshake) || !strings.Contains(err.Error(), "is another client connected") {
		t.Fatalf("second client: %v, want ErrHandshake asking about another client", err)
	}
	// The first client is unaffected.
	if err := first.Run(qmp.Command{"query-name", nil}, nil); err != nil {
		t.Fatalf("first client after the second one gave up: %v", err)
	}
}

func TestHandshakeNoGreeting(t *testing.T) {
	s := newServer(t, qmptest.Config{NoGreeting: true})
	m, err := qmp.NewMonitor(s.Path(), 300*time.Millisecond)
	if err == nil {
		m.Close()
		t.Fatal("handshake without a greeting succeeded")
	}
	if !errors.Is(err, qmp.ErrHandshake) || !strings.Contains(err.Error(), "is another client connected") {
		t.Fatalf("NewMonitor(no greeting) = %v", err)
	}
}

func TestHandshakeEventsBeforeCapabilitiesReply(t *testing.T) {
	s := newServer(t, qmptest.Config{EventBeforeNegotiationReply: true})
	m := dial(t, s, nil)
	evs, ok := m.FindEvents("PRE_NEGOTIATION", 0)
	if !ok || len(evs) != 1 || evs[0].Type != "PRE_NEGOTIATION" {
		t.Fatalf("FindEvents(PRE_NEGOTIATION) = %+v, %v", evs, ok)
	}
	if out, err := m.RunHuman("info version"); err != nil || out != "7.2.22 (qmptest)\r\n" {
		t.Fatalf("first command after the handshake = %q, %v", out, err)
	}
}

// serveOnce listens on a fresh unix socket, writes greeting to the first
// client and hangs up.
func serveOnce(t *testing.T, greeting string) string {
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte(greeting))
		c.Close()
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return path
}

func TestHandshakeGarbageGreeting(t *testing.T) {
	for name, greeting := range map[string]string{
		"garbage":   "garbage\r\n",
		"not QMP":   `{"return": {}}` + "\r\n",
		"bad value": `{"QMP": 42}` + "\r\n",
		"truncated": `{"QMP": {"version": `,
	} {
		t.Run(name, func(t *testing.T) {
			path := serveOnce(t, greeting)
			m, err := qmp.NewMonitor(path, 2*time.Second)
			if err == nil {
				m.Close()
				t.Fatal("handshake succeeded")
			}
			if !errors.Is(err, qmp.ErrHandshake) {
				t.Fatalf("NewMonitor = %v, want an error wrapping ErrHandshake", err)
			}
		})
	}
}

func TestHandshakeNegotiationRefused(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("qmp_capabilities", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "nope"}
	})
	m, err := qmp.NewMonitor(s.Path(), 2*time.Second)
	if err == nil {
		m.Close()
		t.Fatal("negotiation succeeded")
	}
	if !errors.Is(err, qmp.ErrNegotiation) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("NewMonitor = %v, want ErrNegotiation with QEMU's reason", err)
	}
}
