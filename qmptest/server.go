// Package qmptest provides a fake QEMU: a QMP (QEMU Machine Protocol)
// server that speaks the wire protocol on a unix socket, in the spirit of
// net/http/httptest, for the tests of programs that drive QEMU.
//
// NewServer starts one on a socket in a temporary directory (Path); point
// the code under test at it, as at a QEMU's -qmp socket. It answers like a
// guest-less QEMU 7.2: the greeting and capabilities negotiation (OOB
// included), query-version, query-status, query-name, query-commands,
// query-qmp-schema (Config.Schema), stop, cont, system_reset,
// system_powerdown and quit with their events, device_add and device_del
// (DEVICE_DELETED), human-monitor-command, transaction, block-job-cancel,
// getfd, closefd, add-fd, remove-fd and query-fdsets with descriptors
// passed over the socket (SCM_RIGHTS), and the OOB commands migrate-pause,
// migrate-recover, yank and query-yank. Handle replaces or adds a command
// (a canned reply, an error, a delay, no reply at all); SendEvent and
// SendEventAt send events when the test wants them; Requests shows what
// the client sent. For faults: Config.NoGreeting (a busy or wedged
// socket), DropConnection, SetReplyDelay, SetSplitWrites (messages one
// byte per write), SetPretty, SetOutOfOrder and SendRaw (anything at all,
// garbage included).
//
// The server deliberately does not share any code with the client
// package: it implements framing, negotiation, id echoing, out-of-band
// execution and SCM_RIGHTS fd passing on its own, modelled on transcripts
// of a real QEMU 7.2, so that a client test passing against it says
// something about the real wire format rather than about a shared helper.
//
// It does not import "testing" because it is also used by Example
// functions and by a demo program as a "simulated QEMU".
//
// Known simplifications compared to QEMU:
//   - input is parsed with encoding/json, so QEMU's extensions (single
//     quoted strings) are rejected, and after a malformed JSON value the
//     server replies with a JSON parse error and drops the connection,
//     because a json.Decoder cannot resynchronize the way QEMU's lexer does;
//   - up to 8 in-band commands wait behind the executing one before the
//     server stops reading, whether or not OOB is enabled (QEMU reads one
//     command at a time without OOB);
//   - an fd that arrives with a command the handler does not claim is
//     closed once that command has been executed.
package qmptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// queueLen is QEMU's QMP_REQ_QUEUE_LEN_MAX: with OOB enabled QEMU stops
// reading the socket once this many in-band commands are waiting.
const queueLen = 8

// Config tunes a Server created with NewServer. The zero value
// describes a QEMU 7.2.22 offering the "oob" capability.
type Config struct {
	// Version is the QEMU version announced in the greeting and returned
	// by query-version, as "major.minor.micro". Default "7.2.22".
	Version string

	// Capabilities are offered in the greeting. nil means ["oob"]; use an
	// empty non-nil slice to offer none.
	Capabilities []string

	// NoGreeting makes the server accept connections but never send the
	// greeting, which is what a client sees when the socket is busy with
	// another client (or QEMU is wedged).
	NoGreeting bool

	// Schema is query-qmp-schema's reply. Nil answers with QEMU72Schema,
	// a real QEMU 7.2's, whatever Version says (it lists more commands
	// than the server implements: the others get CommandNotFound unless
	// handled).
	Schema json.RawMessage

	// EventBeforeNegotiationReply makes the server send one event
	// immediately before its reply to qmp_capabilities, so that a test
	// proves the client does not take the first message after its command
	// for the reply. The event, "PRE_NEGOTIATION", is synthetic: QEMU has
	// none of that name (it sends events only once negotiated, but one
	// may cross the reply on the wire).
	EventBeforeNegotiationReply bool
}

// Request is one JSON value received from the client after the greeting.
type Request struct {
	Name      string          // the "execute" or "exec-oob" value ("" if absent or invalid)
	OOB       bool            // true if the command used "exec-oob"
	Arguments json.RawMessage // nil if absent
	ID        json.RawMessage // nil if absent
	Raw       []byte          // the exact bytes of this JSON value as received
	// FD is the file descriptor that arrived (via SCM_RIGHTS) with this
	// request, or nil. A handler that wants to keep it must set r.FD to
	// nil on the Request it was given; otherwise it is closed after the
	// handler returns.
	FD *os.File
}

// Reply is what a HandlerFunc returns.
type Reply struct {
	// Return is marshaled with encoding/json as the "return" value. nil
	// means {} (QEMU's empty return); use RawReturn "null" for a null.
	Return any
	// RawReturn, if set, is used verbatim (re-spaced) instead of Return.
	RawReturn json.RawMessage
	// ErrClass, if non-empty, turns the reply into an error reply with
	// ErrClass as "class" and ErrDesc as "desc".
	ErrClass, ErrDesc string
	// Delay is slept (interruptibly) before the reply is written.
	Delay time.Duration
	// NoReply writes nothing, simulating a wedged QEMU.
	NoReply bool

	// after runs once the reply has been written (or skipped); built-in
	// handlers use it for events QEMU emits after the reply and for quit.
	after func()
}

// HandlerFunc executes one command. It runs on the server's executor
// goroutine (or the reader goroutine for exec-oob) without any server
// lock held, so it may call SendEvent and the other Server methods, but
// not Close, which waits for the handlers to return.
type HandlerFunc func(s *Server, r *Request) Reply

// Server is a fake QMP server listening on a unix socket. It serves one
// client at a time, like QEMU: further connections are accepted by the
// kernel but get no greeting until the current client has gone.
type Server struct {
	path string // the unix socket, inside a temporary directory Close removes

	cfg     Config
	dir     string
	ln      *net.UnixListener
	done    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Once

	splitWrites atomic.Bool
	pretty      atomic.Bool
	replyDelay  atomic.Int64
	outOfOrder  atomic.Int64

	mu         sync.Mutex
	closed     bool
	changed    chan struct{} // closed and replaced on every state change
	cur        *conn
	conns      int
	reqs       []Request
	negotiated []string
	handlers   map[string]HandlerFunc
	receivedFD int
	namedFDs   map[string]*os.File
	fdsets     []*fdset
	running    bool
	devices    map[string]bool
}

// NewServer starts a server on a unix socket in a new temporary directory
// (Path), configured by cfg (the zero Config is a QEMU 7.2.22 offering
// OOB). It panics on error, like httptest.NewServer, because its callers
// are tests and examples; it needs no *testing.T. Close it when done.
func NewServer(cfg Config) *Server {
	if cfg.Version == "" {
		cfg.Version = "7.2.22"
	}
	if cfg.Capabilities == nil {
		cfg.Capabilities = []string{"oob"}
	}
	dir, err := os.MkdirTemp("", "qmptest")
	if err != nil {
		panic("qmptest: " + err.Error())
	}
	path := filepath.Join(dir, "qmp.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		panic("qmptest: " + err.Error())
	}
	s := &Server{
		path:     path,
		cfg:      cfg,
		dir:      dir,
		ln:       ln,
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		namedFDs: make(map[string]*os.File),
		running:  true,
		devices:  make(map[string]bool),
	}
	s.handlers = builtinHandlers()
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Path returns the server's unix socket path, inside a temporary directory
// that Close removes.
func (s *Server) Path() string { return s.path }

// Close stops the server: it closes the listener and the current
// connection, interrupts any handler delay, waits for every goroutine of
// the server to exit, closes all stored fds and removes the temporary
// directory. It is safe to call more than once.
func (s *Server) Close() {
	s.closeMu.Do(func() {
		close(s.done)
		s.ln.Close()
		s.mu.Lock()
		s.closed = true
		cur := s.cur
		s.mu.Unlock()
		if cur != nil {
			cur.abort()
		}
		s.wg.Wait()

		s.mu.Lock()
		for name, f := range s.namedFDs {
			f.Close()
			delete(s.namedFDs, name)
		}
		s.clearFdsetsLocked()
		s.mu.Unlock()
		os.RemoveAll(s.dir)
	})
}

// notifyLocked wakes up every Wait* call; s.mu must be held. A channel
// that is closed and replaced serves as a broadcast that, unlike
// sync.Cond, can be combined with a timeout in a select.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (evaluated with s.mu held) is true, the
// timeout expires or the server is closed.
func (s *Server) waitFor(timeout time.Duration, what string, cond func() bool) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("qmptest: timed out after %v waiting for %s", timeout, what)
		case <-s.done:
			return fmt.Errorf("qmptest: server closed while waiting for %s", what)
		}
	}
}

// Handle registers h for the command name, replacing a built-in handler
// of the same name. A nil h removes the command, so that it becomes
// unknown (CommandNotFound). Overriding qmp_capabilities is allowed: the
// connection counts as negotiated when the override returns no error.
func (s *Server) Handle(name string, h HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.handlers, name)
		return
	}
	s.handlers[name] = h
}

// SendEvent sends an event stamped with the current wall-clock time to the
// connected client. Like QEMU, which sends events only to negotiated
// monitors, it silently drops the event when no client is connected or the
// client has not completed qmp_capabilities. It may be called from
// handlers.
func (s *Server) SendEvent(name string, data any) {
	now := time.Now()
	s.SendEventAt(name, data, now.Unix(), int64(now.Nanosecond()/1000))
}

// SendEventAt is SendEvent with an explicit timestamp; QEMU uses -1, -1
// when it has no time for an event.
func (s *Server) SendEventAt(name string, data any, sec, usec int64) {
	s.mu.Lock()
	cs := s.cur
	s.mu.Unlock()
	if cs == nil || !cs.isNegotiated() {
		return
	}
	cs.send(s, eventMessage(name, data, sec, usec))
}

// eventMessage builds the compact JSON of an event in QEMU's key order.
func eventMessage(name string, data any, sec, usec int64) []byte {
	msg := fmt.Sprintf(`{"timestamp":{"seconds":%d,"microseconds":%d},"event":%s`, sec, usec, mustMarshal(name))
	if data != nil {
		d, err := marshal(data)
		if err != nil {
			panic("qmptest: event data: " + err.Error())
		}
		msg += `,"data":` + string(d)
	}
	return []byte(msg + "}")
}

// SendRaw writes b verbatim, in a single Write and without a line
// terminator, to the current client (negotiated or not), for garbage,
// partial lines, huge lines or hand-formatted objects. It does nothing
// when no client is connected.
func (s *Server) SendRaw(b []byte) {
	s.mu.Lock()
	cs := s.cur
	s.mu.Unlock()
	if cs == nil {
		return
	}
	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	cs.c.Write(b)
}

// Requests returns a copy of everything received so far (after the
// greeting, across connections), in order. A non-nil FD says that a
// descriptor came with the request; the server owns it (and may have
// closed it already): do not read, write or close it.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// WaitRequests waits until at least n requests have been received and
// returns them all, or returns an error after timeout.
func (s *Server) WaitRequests(n int, timeout time.Duration) ([]Request, error) {
	err := s.waitFor(timeout, fmt.Sprintf("%d requests", n), func() bool { return len(s.reqs) >= n })
	return s.Requests(), err
}

// ConnCount returns the number of connections accepted so far.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// WaitConnected waits until a client is connected and has been sent the
// greeting.
func (s *Server) WaitConnected(timeout time.Duration) error {
	return s.waitFor(timeout, "a greeted client", func() bool {
		return s.cur != nil && s.cur.greeted
	})
}

// DropConnection closes the current client connection abruptly; the
// client sees EOF. The server then serves the next client.
func (s *Server) DropConnection() {
	s.mu.Lock()
	cs := s.cur
	s.mu.Unlock()
	if cs != nil {
		cs.abort()
	}
}

// SetSplitWrites makes every server message (not SendRaw) be written one
// byte per Write call, so that clients must reassemble lines.
func (s *Server) SetSplitWrites(on bool) { s.splitWrites.Store(on) }

// SetReplyDelay delays every in-band reply by d (added to Reply.Delay).
func (s *Server) SetReplyDelay(d time.Duration) { s.replyDelay.Store(int64(d)) }

// SetPretty makes messages be written as multi-line indented JSON followed
// by "\r\n", like a QEMU monitor with pretty=on.
func (s *Server) SetPretty(on bool) { s.pretty.Store(on) }

// SetOutOfOrder makes the executor hold back n consecutive in-band replies
// that carry an id and write them in reverse order, to test clients that
// match replies by id. Replies without an id are written normally. n <= 1
// disables it. A real QEMU never reorders in-band replies: this is a fault
// to inject, not a behaviour to rely on.
func (s *Server) SetOutOfOrder(n int) { s.outOfOrder.Store(int64(n)) }

// Negotiated returns the capabilities the current (or last) client enabled
// with qmp_capabilities, or nil before negotiation.
func (s *Server) Negotiated() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.negotiated == nil {
		return nil
	}
	return append([]string{}, s.negotiated...)
}

// ReceivedFDs returns the total number of file descriptors received via
// SCM_RIGHTS.
func (s *Server) ReceivedFDs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.receivedFD
}

// FD returns the file stored by getfd under name, or nil. The file is
// owned by the server (closed by closefd or Close); callers may Stat it or
// write to it to check it is a duplicate of the fd they sent.
func (s *Server) FD(name string) *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.namedFDs[name]
}

// current returns the connection being served, or nil.
func (s *Server) current() *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			// The listener is closed by Close or by quit; there is
			// nothing else worth retrying for a test server.
			return
		}
		s.serve(c)
	}
}

// serve handles one client until it goes away. Connections are served
// sequentially by the accept loop so that a second client waits, greeting
// less, in the kernel backlog, exactly as with QEMU.
func (s *Server) serve(c *net.UnixConn) {
	cs := &conn{c: c, closed: make(chan struct{})}
	s.mu.Lock()
	s.conns++
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.cur = cs
	s.negotiated = nil
	s.clearFdsetsLocked() // fdsets not in use die with the monitor connection
	s.notifyLocked()
	s.mu.Unlock()

	defer func() {
		cs.abort()
		cs.mu.Lock()
		if cs.pending != nil {
			cs.pending.Close()
			cs.pending = nil
		}
		cs.mu.Unlock()
		s.mu.Lock()
		if s.cur == cs {
			s.cur = nil
		}
		s.notifyLocked()
		s.mu.Unlock()
	}()

	if s.cfg.NoGreeting {
		// Swallow input until the peer or Close ends the connection.
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}

	if err := cs.send(s, s.greeting()); err != nil {
		return
	}
	s.mu.Lock()
	cs.greeted = true
	s.notifyLocked()
	s.mu.Unlock()

	// One slot less than queueLen because the reader holds the next
	// command while it blocks on a full channel: in total at most
	// queueLen commands wait behind the executing one, as in QEMU.
	queue := make(chan queued, queueLen-1)
	execDone := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(execDone)
		s.executor(cs, queue)
	}()

	if drain := s.readLoop(cs, queue); !drain {
		// EOF, read error, Close or DropConnection: like QEMU, pending
		// in-band commands of a vanished client are dropped.
		cs.abort()
	}
	close(queue)
	<-execDone
}

// greeting builds the QMP greeting banner.
func (s *Server) greeting() []byte {
	return []byte(`{"QMP":{"version":` + string(s.versionJSON()) + `,"capabilities":` + string(mustMarshal(s.cfg.Capabilities)) + `}}`)
}

// queued is an in-band request waiting for the executor; verr is a
// protocol error found while parsing, reported in order with the rest.
type queued struct {
	req  *Request
	verr string
}

// conn is the state of one client connection.
type conn struct {
	c       *net.UnixConn
	closed  chan struct{}
	once    sync.Once
	greeted bool // guarded by Server.mu

	wmu sync.Mutex // serializes writes so messages never interleave

	mu         sync.Mutex
	negotiated bool
	oob        bool
	pending    *os.File // fd received but not yet attached to a request
	pendingAt  int64    // stream offset of the last byte read with pending
	held       [][]byte // replies held back by SetOutOfOrder
}

// abort closes the connection; blocked reads, writes and delays return.
func (cs *conn) abort() {
	cs.once.Do(func() {
		close(cs.closed)
		cs.c.Close()
	})
}

func (cs *conn) isNegotiated() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.negotiated
}

func (cs *conn) oobEnabled() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.oob
}

// send writes one message (compact JSON) with the server's current output
// options, terminated by "\r\n" as QEMU does.
func (cs *conn) send(s *Server, compact []byte) error {
	var msg []byte
	if s.pretty.Load() {
		var b bytes.Buffer
		if err := json.Indent(&b, compact, "", "    "); err != nil {
			msg = append([]byte(nil), compact...)
		} else {
			msg = b.Bytes()
		}
	} else {
		var b bytes.Buffer
		if err := json.Compact(&b, compact); err != nil {
			// Invalid RawReturn: send it as is, the client has to cope.
			msg = append([]byte(nil), compact...)
		} else {
			msg = qemuStyle(b.Bytes())
		}
	}
	msg = append(msg, '\r', '\n')

	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	if s.splitWrites.Load() {
		for i := range msg {
			if _, err := cs.c.Write(msg[i : i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := cs.c.Write(msg)
	return err
}
