package qmp

// The guest agent (qemu-ga)
//
// qemu-ga speaks QMP's framing with its own dialect: no greeting, no
// negotiation, no events, no OOB, one command at a time and in order. The
// host side of its virtio-serial channel accepts connections whether or
// not an agent runs in the guest, may hold output left by an earlier
// client, and the agent may restart with the guest between two commands.
// So the client synchronises before it relies on a reply: it sends
// guest-sync-delimited with a random id, the agent answers with a 0xFF
// byte and then the id, and everything before that byte is discarded.
// That happens on connect and before the next command after any command
// whose caller gave up (its reply may still come).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrAgentUnresponsive is returned when the guest agent does not answer a
// synchronisation within AgentOptions.SyncTimeout: most often no agent
// runs in the guest (the host side of the channel accepts connections
// anyway), or it is wedged.
var ErrAgentUnresponsive = errors.New("qmp: the guest agent did not answer a sync; is qemu-ga running in the guest?")

// AgentOptions configure an Agent. The zero value is ready to use.
type AgentOptions struct {
	// SyncTimeout bounds each synchronisation with the agent (on connect,
	// and after a command whose caller gave up). Default 5s.
	SyncTimeout time.Duration
	// NoReplyWait is how long a command that the agent does not answer on
	// success (guest-shutdown, guest-suspend-*) waits for an error reply
	// before it counts as accepted. Default 1s.
	NoReplyWait time.Duration
	// MaxMessageSize bounds one reply, as Options.MaxMessageSize does.
	// Default 64 MiB (guest-file-read returns up to 48 MiB of base64).
	MaxMessageSize int
}

// Agent is a connection to a QEMU guest agent. Its methods are safe for
// concurrent use; the agent answers one command at a time, so commands
// run one after another, each caller waiting its turn within its ctx.
type Agent struct {
	conn net.Conn
	opts AgentOptions
	filt *agentFilter

	turn     chan struct{} // held by the caller whose command is on the wire
	needSync bool          // guarded by turn: an earlier exchange was abandoned

	msgs       chan []byte // the reader's messages, for the caller holding turn
	done       chan struct{}
	readerDone chan struct{}
	failOnce   sync.Once
	err        error // why the connection ended; set before done is closed
}

// DialAgent connects to the guest agent's socket (the host side of the
// org.qemu.guest_agent.0 channel, or qemu-ga's own socket) and
// synchronises with it. network is "unix" or "tcp". opts may be nil. A
// socket busy with another client is retried until ctx ends.
func DialAgent(ctx context.Context, network, address string, opts *AgentOptions) (*Agent, error) {
	switch network {
	case "unix", "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("qmp: unsupported network %q (want unix or tcp)", network)
	}
	ctx = ctxOrBackground(ctx)
	var d net.Dialer
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		conn, err := d.DialContext(ctx, network, address)
		if err == nil {
			return NewAgentConn(ctx, conn, opts)
		}
		// qemu-ga serves one client at a time and takes the next once the
		// previous has left: a full backlog is a wait, within ctx.
		if !IsSocketBusy(err) {
			return nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("qmp: gave up waiting for the guest agent's socket %s, busy with another client: %w; last attempt: %w", address, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// NewAgentConn wraps an established connection to a guest agent and
// synchronises with it, bounded by ctx and AgentOptions.SyncTimeout; it
// fails with ErrAgentUnresponsive when the agent does not answer. The
// Agent owns conn from then on (it is closed on failure too).
func NewAgentConn(ctx context.Context, conn net.Conn, opts *AgentOptions) (*Agent, error) {
	a := &Agent{
		conn:       conn,
		turn:       make(chan struct{}, 1),
		needSync:   true,
		msgs:       make(chan []byte, agentInbox),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	if opts != nil {
		a.opts = *opts
	}
	if a.opts.SyncTimeout <= 0 {
		a.opts.SyncTimeout = 5 * time.Second
	}
	if a.opts.NoReplyWait <= 0 {
		a.opts.NoReplyWait = time.Second
	}
	if a.opts.MaxMessageSize <= 0 {
		a.opts.MaxMessageSize = 64 << 20
	}
	a.filt = &agentFilter{r: conn}
	a.filt.skip.Store(true) // whatever an earlier client left is stale
	go a.readLoop()
	a.turn <- struct{}{}
	err := a.sync(ctxOrBackground(ctx))
	<-a.turn
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// agentInbox bounds the replies held for the caller; more means stale
// output, which is dropped.
const agentInbox = 16

// Close closes the connection and waits for the reader goroutine. Pending
// calls fail with an error for which IsSocketClosed is true. It is
// idempotent and returns nil.
func (a *Agent) Close() error {
	if a.done == nil {
		return nil
	}
	a.fail(nil)
	<-a.readerDone
	return nil
}

// Done is closed when the connection has ended.
func (a *Agent) Done() <-chan struct{} {
	if a.done == nil {
		return closedChan
	}
	return a.done
}

// Err returns why the connection ended, or nil while it is open.
func (a *Agent) Err() error {
	select {
	case <-a.Done():
		if a.err == nil {
			return closedError(nil, errNeverConnected)
		}
		return a.err
	default:
		return nil
	}
}

func (a *Agent) fail(cause error) {
	a.failOnce.Do(func() {
		a.err = closedError(a.conn, cause)
		a.conn.Close()
		close(a.done)
	})
}

func (a *Agent) readLoop() {
	defer close(a.readerDone)
	for {
		fr := newFramer(a.filt, a.opts.MaxMessageSize)
		for {
			msg, err := fr.next()
			if err == nil {
				select {
				case a.msgs <- bytes.Clone(msg):
				default: // nobody reads: stale output
				}
				continue
			}
			fr.idle()
			switch {
			case errors.Is(err, errAgentDelimiter):
			case errors.Is(err, ErrProtocol) || errors.Is(err, ErrMessageTooLarge):
				// Garbage: skip to the next delimiter, which the next
				// command's sync asks for.
				a.filt.skip.Store(true)
				select {
				case a.msgs <- nil: // tells a waiting caller
				default:
				}
			default:
				a.fail(normalEnd(err))
				return
			}
			break
		}
	}
}

// errAgentDelimiter is what agentFilter reports at each 0xFF byte: the
// reader starts framing afresh after it.
var errAgentDelimiter = errors.New("qmp: guest agent delimiter")

// agentFilter sits between the connection and the framer. At a 0xFF byte
// (which JSON never holds) it drops what came before and reports
// errAgentDelimiter, so the framer starts anew with the bytes after it;
// while skip is set it drops everything up to that byte.
type agentFilter struct {
	r       io.Reader
	skip    atomic.Bool
	pending []byte // bytes after a delimiter, read next
}

func (f *agentFilter) Read(p []byte) (int, error) {
	if len(f.pending) > 0 {
		if i := bytes.IndexByte(f.pending, 0xFF); i >= 0 {
			// Another delimiter came in the same read: what is before it
			// is framed first, then framing restarts after it.
			if i == 0 {
				f.pending = f.pending[1:]
				return 0, errAgentDelimiter
			}
			n := copy(p, f.pending[:i])
			f.pending = f.pending[n:]
			return n, nil
		}
		n := copy(p, f.pending)
		f.pending = f.pending[n:]
		return n, nil
	}
	for {
		n, err := f.r.Read(p)
		if i := bytes.IndexByte(p[:n], 0xFF); i >= 0 {
			f.skip.Store(false)
			f.pending = append(f.pending[:0], p[i+1:n]...)
			return 0, errAgentDelimiter
		}
		if !f.skip.Load() || err != nil {
			if f.skip.Load() {
				n = 0
			}
			return n, err
		}
	}
}

// takeTurn waits for this caller's turn on the wire, within ctx.
func (a *Agent) takeTurn(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err // a caller that has given up sends nothing
	}
	select {
	case a.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return a.err
	}
}

// sync synchronises with the agent; the caller holds the turn.
func (a *Agent) sync(ctx context.Context) error {
	id := rand.Int64N(1 << 53)
	a.drain()
	a.filt.skip.Store(true)
	// A 0xFF first resets the agent's own parser, in case an abandoned
	// write left half a command in it.
	msg := fmt.Appendf([]byte{0xFF}, `{"execute":"guest-sync-delimited","arguments":{"id":%d}}`, id)
	if err := a.write(ctx, msg); err != nil {
		return err
	}
	t := time.NewTimer(a.opts.SyncTimeout)
	defer t.Stop()
	for {
		msg, err := a.receive(ctx, t.C)
		switch {
		case err == errAgentTimeout:
			return ErrAgentUnresponsive
		case err != nil:
			return err
		}
		var r struct {
			Return *int64 `json:"return"`
		}
		if msg != nil && json.Unmarshal(msg, &r) == nil && r.Return != nil && *r.Return == id {
			a.needSync = false
			return nil
		}
	}
}

// receive waits for the reader's next message (nil: output that is not
// JSON), until timeout (nil: none), ctx or the end of the connection. A
// message the reader delivered before the end comes first: a reply and
// the end may arrive together, and the reply wins.
func (a *Agent) receive(ctx context.Context, timeout <-chan time.Time) ([]byte, error) {
	select {
	case msg := <-a.msgs:
		return msg, nil
	case <-timeout:
		return nil, errAgentTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-a.done:
		select {
		case msg := <-a.msgs:
			return msg, nil
		default:
			return nil, a.err
		}
	}
}

var errAgentTimeout = errors.New("qmp: agent wait timed out")

// drain drops what the reader holds: output nobody waits for.
func (a *Agent) drain() {
	for {
		select {
		case <-a.msgs:
		default:
			return
		}
	}
}

// write writes msg whole, or gives up when ctx ends; a partial write
// leaves the agent's parser mid-command, so the next command syncs.
func (a *Agent) write(ctx context.Context, msg []byte) error {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { a.conn.SetWriteDeadline(time.Unix(1, 0)); close(fired) })
	_, err := a.conn.Write(msg)
	if !stop() {
		<-fired // the deadline is set: reset it only after
		a.conn.SetWriteDeadline(time.Time{})
		a.needSync = true
		if err != nil {
			return ctx.Err()
		}
	}
	if err != nil {
		a.needSync = true
		a.fail(err)
		return a.err
	}
	return nil
}

// Run executes cmd (a Command, or any value that encodes to one JSON
// object) on the agent and decodes its return value into res (a non-nil
// pointer, or nil to discard it).
func (a *Agent) Run(cmd interface{}, res interface{}) error {
	return a.RunContext(context.Background(), cmd, res)
}

// RunContext is Run bounded by ctx. When ctx ends first, the command may
// still run in the guest; the next command synchronises first, so its
// reply is never taken for another's. Errors follow the package's policy
// (# Errors): the agent's refusal is a *GenericError (or one of its
// classes, such as *CommandNotFound for a command the guest disabled).
func (a *Agent) RunContext(ctx context.Context, cmd interface{}, res interface{}) error {
	return a.run(ctx, cmd, res, false)
}

func (a *Agent) run(ctx context.Context, cmd interface{}, res interface{}, noReply bool) error {
	if a.done == nil {
		return closedError(nil, errNeverConnected)
	}
	ctx = ctxOrBackground(ctx)
	if err := checkResult(res); err != nil {
		return err
	}
	var c call
	if err := c.prepare(cmd); err != nil {
		return err
	}
	if err := a.takeTurn(ctx); err != nil {
		return err
	}
	defer func() { <-a.turn }()
	if a.needSync {
		if err := a.sync(ctx); err != nil {
			return err
		}
	}
	a.drain()
	if err := a.write(ctx, c.msg); err != nil {
		return err
	}
	var grace <-chan time.Time
	if noReply {
		t := time.NewTimer(a.opts.NoReplyWait)
		defer t.Stop()
		grace = t.C
	}
	for {
		msg, err := a.receive(ctx, grace)
		switch {
		case err == errAgentTimeout:
			a.needSync = true // the guest went away, or accepted quietly
			return nil
		case err != nil:
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				a.needSync = true
			}
			return err
		case msg == nil:
			a.needSync = true
			return fmt.Errorf("%w: the guest agent sent output that is not JSON; the next command resynchronises", ErrProtocol)
		}
		mb, err := splitMembers(msg)
		if err != nil || mb.present&(hasReturn|hasError) == 0 {
			continue // not a reply
		}
		if mb.present&hasError != 0 {
			var ge GenericError
			if err := json.Unmarshal(mb.err, &ge); err != nil {
				return fmt.Errorf("%w: an undecodable error reply from the guest agent: %w", ErrProtocol, err)
			}
			return NewQMPError(&ge)
		}
		if res == nil {
			return nil
		}
		return json.Unmarshal(mb.ret, res)
	}
}
