package qmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// IsSocketBusy reports whether err means that another client holds the QMP
// socket and QEMU's listen backlog is full (see ErrSocketBusy). It sees
// through wrapping. A second client whose connection was queued instead
// gets no greeting: that error wraps ErrHandshake.
func IsSocketBusy(err error) bool {
	if errors.Is(err, ErrSocketBusy) {
		return true
	}
	var se *os.SyscallError
	return errors.As(err, &se) && se.Syscall == "connect" && isErrno(se.Err, syscall.EAGAIN)
}

// NewMonitor connects to the QMP unix socket at path and negotiates
// capabilities, all within timeout; timeout <= 0 means no time limit, as
// with v2.0.4's net.DialTimeout. It fails at once when no QEMU listens
// (IsSocketNotAvailable reports true for that error) and when the socket's
// backlog is full (IsSocketBusy).
//
// Several clients on one QMP socket are not possible: QEMU greets the second
// one only after the first leaves, so NewMonitor then fails with an error
// wrapping ErrHandshake and context.DeadlineExceeded once timeout has
// passed.
func NewMonitor(path string, timeout time.Duration) (*Monitor, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return Dial(ctx, "unix", path, nil)
}

// Dial connects to a QMP server on network "unix" or "tcp" and negotiates
// capabilities; ctx bounds the whole set-up, not the monitor's life.
//
// With Options.WaitForSocket it retries, until ctx ends, while the socket
// does not exist, refuses connections, or is busy (IsSocketBusy); the error
// then wraps both ctx's error and the last dial error.
func Dial(ctx context.Context, network, address string, opts *Options) (*Monitor, error) {
	switch network {
	case "unix", "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("qmp: unsupported network %q (want unix or tcp)", network)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	var d net.Dialer
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		conn, err := d.DialContext(ctx, network, address)
		if err == nil {
			return NewMonitorConn(ctx, conn, opts)
		}
		retry := IsSocketNotAvailable(err)
		if IsSocketBusy(err) {
			err = fmt.Errorf("%w (QEMU serves one QMP client at a time; retry once it has left): %w", ErrSocketBusy, err)
			retry = true
		}
		if opts == nil || !opts.WaitForSocket || !retry {
			return nil, err
		}
		blocking("dial retry")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("qmp: gave up waiting for the QMP socket %s: %w; last attempt: %w", address, ctx.Err(), err)
		case <-t.C:
		}
	}
}
