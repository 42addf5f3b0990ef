package qmp

// Passing file descriptors
//
// These wrap QEMU's fd-passing commands over RunWithFile, so they share its
// rules: a unix socket only (ErrFDPassingUnsupported otherwise, nothing
// sent), one fd-carrying command on the wire at a time, and the caller's
// *os.File untouched: QEMU receives a duplicate, which the library closes on
// its side once sent (or at once, if the command is never sent).
//
// Descriptors that QEMU holds (getfd names, fd sets not in use) belong to
// the monitor connection: QEMU drops them when the connection ends.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// GetFD passes f to QEMU under name (getfd), for commands that take an fd
// by name (e.g. netdev's "fd", migrate's "fd:name"). QEMU keeps its own copy;
// f stays the caller's, open and usable. Passing another file under the
// same name replaces (and closes) QEMU's previous one. QEMU rejects a name
// starting with a digit.
func (m *Monitor) GetFD(ctx context.Context, name string, f *os.File) error {
	_, err := cmdGetFD.runWithFile(ctx, m, &fdNameArgs{name}, f)
	return err
}

type fdNameArgs struct {
	Name string `json:"fdname"`
}

var (
	cmdGetFD       = defCommand[fdNameArgs, struct{}]("getfd")
	cmdCloseFD     = defCommand[fdNameArgs, struct{}]("closefd")
	cmdAddFD       = defCommand[AddFDArgs, AddFDResult]("add-fd")
	cmdRemoveFD    = defCommand[removeFDArgs, struct{}]("remove-fd")
	cmdQueryFDSets = defCommand[struct{}, []FDSet]("query-fdsets")
)

// CloseFD makes QEMU close the descriptor it received under name
// (closefd). An unknown name is QEMU's *GenericError.
func (m *Monitor) CloseFD(ctx context.Context, name string) error {
	return cmdCloseFD.do(ctx, m, &fdNameArgs{name})
}

// FDSetFD is one descriptor of an fd set, as query-fdsets reports it: FD is
// the descriptor's number inside QEMU.
type FDSetFD struct {
	FD     int    `json:"fd"`
	Opaque string `json:"opaque,omitempty"`
}

// FDSet is one fd set, as query-fdsets reports it.
type FDSet struct {
	ID  int       `json:"fdset-id"`
	FDs []FDSetFD `json:"fds"`
}

// AddFDArgs are the optional arguments of add-fd.
type AddFDArgs struct {
	// FDSetID names the set to add to (created when missing); nil makes
	// QEMU pick the lowest free id for a new set.
	FDSetID *int `json:"fdset-id,omitempty"`
	// Opaque is a free-form note QEMU stores with the descriptor and
	// reports in query-fdsets.
	Opaque string `json:"opaque,omitempty"`
}

// AddFDResult is add-fd's reply.
type AddFDResult struct {
	FDSetID int `json:"fdset-id"`
	FD      int `json:"fd"` // the descriptor's number inside QEMU
}

// AddFD passes f to QEMU into an fd set (add-fd), for options that open a
// path such as "/dev/fdset/N". opts may be nil. f stays the caller's.
func (m *Monitor) AddFD(ctx context.Context, f *os.File, opts *AddFDArgs) (*AddFDResult, error) {
	if opts == nil {
		opts = &AddFDArgs{}
	}
	return pointerTo(cmdAddFD.runWithFile(ctx, m, opts, f))
}

// RemoveFD removes descriptor fd (QEMU's number, as AddFD returned it) from
// fd set fdsetID, or the whole set when fd is nil (remove-fd). QEMU closes
// the descriptors once nothing uses them.
func (m *Monitor) RemoveFD(ctx context.Context, fdsetID int, fd *int) error {
	return cmdRemoveFD.do(ctx, m, &removeFDArgs{fdsetID, fd})
}

type removeFDArgs struct {
	FDSetID int  `json:"fdset-id"`
	FD      *int `json:"fd,omitempty"` // nil: the whole set (fd 0 is a descriptor)
}

// QueryFDSets returns the fd sets QEMU holds (query-fdsets); an empty,
// non-nil slice when there are none.
func (m *Monitor) QueryFDSets(ctx context.Context) ([]FDSet, error) {
	sets, err := cmdQueryFDSets.run(ctx, m, nil)
	if err == nil && sets == nil {
		sets = []FDSet{}
	}
	return sets, err
}

// RunWithFile executes cmd with f's file descriptor attached (SCM_RIGHTS),
// as getfd and add-fd expect. The descriptor travels in the same sendmsg as
// the command's first bytes; f stays open and owned by the caller. Commands
// that carry a descriptor are sent one at a time (the next only after the
// previous one's reply, because QEMU closes a received fd that is still
// unclaimed when another one arrives); other commands keep flowing.
//
// It needs a unix socket connection; otherwise it returns
// ErrFDPassingUnsupported and sends nothing.
func (m *Monitor) RunWithFile(ctx context.Context, cmd interface{}, res interface{}, f *os.File) error {
	if m.done == nil {
		return closedError(nil, errNeverConnected) // the zero Monitor
	}
	if _, ok := m.conn.(*net.UnixConn); !ok || !fdPassing {
		return ErrFDPassingUnsupported
	}
	if f == nil {
		return &CommandError{Reason: "RunWithFile needs a file to pass, and got nil"}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c := newCall()
	if err := c.prepare(cmd); err != nil {
		return err
	}
	select {
	case m.fdSlot <- struct{}{}:
	default:
		blocking("fd slot")
		select {
		case m.fdSlot <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return m.err
		}
	}
	c.fdSlot = m.fdSlot
	fd, err := dupFile(f)
	if err != nil {
		c.complete(nil, false, err)
		if _, serr := f.Stat(); errors.Is(serr, os.ErrClosed) {
			return &CommandError{Reason: "the file to pass is closed", Err: err}
		}
		return fmt.Errorf("qmp: duplicating the file descriptor to pass: %w", err)
	}
	c.fd = fd
	return m.roundTrip(ctx, c, res)
}
