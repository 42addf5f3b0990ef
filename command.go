package qmp

// Matching replies to commands
//
// QEMU executes in-band commands one at a time, in the order it read them,
// and answers each before it reads the next one's result; only out-of-band
// (exec-oob) replies may overtake. So in-band commands carry no "id": the
// reader hands each in-band reply to the oldest in-band command still
// waiting (a FIFO filled in exactly the order the bytes go out). QEMU 7.2
// reads its input one byte per syscall (~2.7 µs a byte), so the ~8 bytes
// of `,"id":17` would add ~15% to every round trip for no gain in safety.
// A reply without an id (a JSON parse error) also belongs to the oldest
// in-band command, so it is never lost or given to a later caller.
//
// Out-of-band commands always carry an id ("oob-N") and are matched by it;
// their map entry lives until the reply arrives (even if the caller gave
// up), so a reply whose id names no OOB call is an in-band reply that
// echoes a caller's own id, and goes to the FIFO like any other.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// call is one command in flight. It is created by the caller, queued for
// the flusher, then awaited in either m.inband or m.oobIDs, and completed
// exactly once by whoever removes it from those under m.mu.
type call struct {
	msg    []byte           // the encoded command
	ret    []byte           // the reply's "return" or "error" value, copied by the reader
	isErr  bool             // ret holds an "error" object
	err    error            // the connection's end, or nil
	ch     chan *call       // receives the call itself when complete
	oob    bool             // sent with exec-oob, matched by id
	id     string           // the OOB id exactly as QEMU echoes it
	fd     int              // a dup of the caller's fd, owned by the call until sent; -1 if none
	slots  [2]chan struct{} // semaphores released on completion
	queued bool             // still in m.sendq (guarded by m.mu)
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan *call, 1), fd: -1} }}

func getCall() *call { return callPool.Get().(*call) }

// putCall recycles a call whose completion the caller has received; a call
// abandoned by its caller is left to the garbage collector, since the reader
// may still complete it.
func putCall(c *call) {
	if cap(c.msg) > 64<<10 || cap(c.ret) > 64<<10 {
		return
	}
	c.msg, c.ret, c.isErr, c.err, c.oob, c.id, c.fd = c.msg[:0], c.ret[:0], false, nil, false, "", -1
	c.slots = [2]chan struct{}{}
	callPool.Put(c)
}

// complete hands the outcome to the waiting caller. It must be the last
// touch of c by anyone but the caller.
func (c *call) complete(err error) {
	c.err = err
	c.releaseSlots()
	c.ch <- c
}

// releaseSlots gives back the in-flight and fd semaphores the call holds.
func (c *call) releaseSlots() {
	for i, s := range c.slots {
		if s != nil {
			<-s
			c.slots[i] = nil
		}
	}
}

// closeFD releases the call's duplicate of the caller's fd.
func (c *call) closeFD() {
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}

// callQueue is the FIFO of in-band calls awaiting replies.
type callQueue struct {
	q    []*call
	head int
}

func (q *callQueue) push(c *call) {
	if q.head > 0 && q.head == len(q.q) {
		q.q, q.head = q.q[:0], 0
	}
	q.q = append(q.q, c)
}

func (q *callQueue) pop() *call {
	if q.head == len(q.q) {
		return nil
	}
	c := q.q[q.head]
	q.q[q.head] = nil
	q.head++
	return c
}

func (q *callQueue) drain() []*call {
	rest := append([]*call(nil), q.q[q.head:]...)
	q.q, q.head = nil, 0
	return rest
}

// encode writes cmd's JSON into c.msg. Command values skip reflection for
// the envelope; their arguments use encoding/json as always.
func (c *call) encode(cmd interface{}) error {
	var name string
	var args interface{}
	switch v := cmd.(type) {
	case Command:
		name, args = v.Name, v.Arguments
	case *Command:
		if v == nil {
			return fmt.Errorf("qmp: nil *Command")
		}
		name, args = v.Name, v.Arguments
	default:
		b, err := json.Marshal(cmd)
		if err != nil {
			return fmt.Errorf("qmp: encoding command: %w", err)
		}
		c.msg = append(c.msg[:0], b...)
		return nil
	}
	c.msg = append(c.msg[:0], `{"execute":`...)
	c.msg = appendString(c.msg, name)
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return fmt.Errorf("qmp: encoding arguments of %s: %w", name, err)
		}
		c.msg = append(c.msg, `,"arguments":`...)
		c.msg = append(c.msg, b...)
	}
	c.msg = append(c.msg, '}')
	return nil
}

// appendString appends s as a JSON string, as encoding/json would.
func appendString(b []byte, s string) []byte {
	if !plainString(s) {
		q, _ := json.Marshal(s)
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainString reports whether QEMU and encoding/json write every byte of s
// as is inside a JSON string (printable ASCII, nothing they escape).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// Run executes the given QAPI command and decodes its "return" value into
// res (which may be nil). cmd is any JSON-marshalable value, usually a
// Command. An error reply comes back as NewQMPError's type for its class.
// It waits as long as QEMU takes; use RunContext to bound the wait.
func (m *Monitor) Run(cmd interface{}, res interface{}) error {
	return m.RunContext(context.Background(), cmd, res)
}

// RunContext is Run with ctx bounding this caller's wait only: when ctx
// ends first it returns ctx.Err() at once, the command (if already sent)
// still runs in QEMU, its late reply is dropped, and the connection and
// other callers are unaffected. (One exception: a caller that is itself
// writing queued commands when QEMU has stopped reading and the socket
// buffer is full returns only once the write completes or the monitor is
// closed.)
func (m *Monitor) RunContext(ctx context.Context, cmd interface{}, res interface{}) error {
	c := getCall()
	if err := c.encode(cmd); err != nil {
		putCall(c)
		return err
	}
	m.noteDeprecated(c.msg)
	return m.roundTrip(ctx, c, res)
}

// RunHuman executes a command using "human-monitor-command".
func (m *Monitor) RunHuman(cmdline string) (string, error) {
	return m.RunHumanContext(context.Background(), cmdline)
}

// RunHumanContext is RunHuman bounded by ctx, as RunContext.
func (m *Monitor) RunHumanContext(ctx context.Context, cmdline string) (string, error) {
	var out string
	if err := m.RunContext(ctx, Command{"human-monitor-command", &HumanCommand{Cmd: cmdline}}, &out); err != nil {
		return "", err
	}
	return out, nil
}

// RunTransaction executes a number of transactionable QAPI commands
// atomically. Every command must be in AllowedTransactionActions;
// otherwise nothing is sent.
func (m *Monitor) RunTransaction(cmds []Command, res interface{}, properties *TransactionProperties) error {
	return m.RunTransactionContext(context.Background(), cmds, res, properties)
}

// RunTransactionContext is RunTransaction bounded by ctx, as RunContext.
func (m *Monitor) RunTransactionContext(ctx context.Context, cmds []Command, res interface{}, properties *TransactionProperties) error {
	args := struct {
		Actions    []TransactionAction    `json:"actions"`
		Properties *TransactionProperties `json:"properties,omitempty"`
	}{
		Actions:    make([]TransactionAction, 0, len(cmds)),
		Properties: properties,
	}
	for _, cmd := range cmds {
		if _, ok := AllowedTransactionActions[cmd.Name]; !ok {
			return fmt.Errorf("qmp: %q is not a transaction action", cmd.Name)
		}
		args.Actions = append(args.Actions, TransactionAction{Type: cmd.Name, Data: cmd.Arguments})
	}
	return m.RunContext(ctx, Command{"transaction", &args}, res)
}

var oobSeq atomic.Uint64

// RunOOB executes cmd out-of-band ("exec-oob"): QEMU runs it at once, even
// while in-band commands are queued or running, and its reply may overtake
// theirs. It needs Options.EnableOOB and a QEMU that offers "oob";
// otherwise it returns ErrOOBNotEnabled and sends nothing. Commands that do
// not allow OOB execution come back as QEMU's *GenericError.
func (m *Monitor) RunOOB(ctx context.Context, cmd interface{}, res interface{}) error {
	if !m.oob {
		return ErrOOBNotEnabled
	}
	name, args, err := commandParts(cmd)
	if err != nil {
		return err
	}
	c := getCall()
	c.oob = true
	c.id = `"oob-` + strconv.FormatUint(oobSeq.Add(1), 10) + `"`
	c.msg = append(c.msg[:0], `{"exec-oob":`...)
	c.msg = appendString(c.msg, name)
	if len(args) > 0 {
		c.msg = append(c.msg, `,"arguments":`...)
		c.msg = append(c.msg, args...)
	}
	c.msg = append(c.msg, `,"id":`...)
	c.msg = append(c.msg, c.id...)
	c.msg = append(c.msg, '}')
	return m.roundTrip(ctx, c, res)
}

// commandParts extracts the name and arguments of any command value.
func commandParts(cmd interface{}) (string, json.RawMessage, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return "", nil, fmt.Errorf("qmp: encoding command: %w", err)
	}
	var parts struct {
		Name      string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(b, &parts); err != nil || parts.Name == "" {
		return "", nil, fmt.Errorf("qmp: command %s has no \"execute\" member", b)
	}
	return parts.Name, parts.Arguments, nil
}

// RunWithFile executes cmd with f's file descriptor attached (SCM_RIGHTS),
// as getfd and add-fd expect. The descriptor travels in the same sendmsg as
// the command's bytes; f stays open and owned by the caller. Commands that
// carry a descriptor are sent one at a time (the next only after the
// previous one's reply, because QEMU closes a received fd that is still
// unclaimed when another one arrives); other commands keep flowing.
//
// It needs a unix socket connection; otherwise it returns
// ErrFDPassingUnsupported and sends nothing.
func (m *Monitor) RunWithFile(ctx context.Context, cmd interface{}, res interface{}, f *os.File) error {
	if _, ok := m.conn.(*net.UnixConn); !ok {
		return ErrFDPassingUnsupported
	}
	if f == nil {
		return fmt.Errorf("qmp: RunWithFile: nil file")
	}
	c := getCall()
	if err := c.encode(cmd); err != nil {
		putCall(c)
		return err
	}
	select {
	case m.fdSlot <- struct{}{}:
		c.slots[1] = m.fdSlot
	case <-ctx.Done():
		putCall(c)
		return ctx.Err()
	case <-m.done:
		putCall(c)
		return m.err
	}
	fd, err := dupFile(f)
	if err != nil {
		m.release(c)
		return fmt.Errorf("qmp: duplicating the file descriptor: %w", err)
	}
	c.fd = fd
	return m.roundTrip(ctx, c, res)
}

// dupFile duplicates f's descriptor with close-on-exec set, so a fork in
// another goroutine cannot inherit it; the call owns the duplicate.
func dupFile(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if nfd, derr = syscall.Dup(int(fd)); derr == nil {
			syscall.CloseOnExec(nfd)
		}
	})
	if err == nil {
		err = derr
	}
	return nfd, err
}

// roundTrip sends c and waits for its reply, ctx, or the end of the
// connection. It consumes c.
func (m *Monitor) roundTrip(ctx context.Context, c *call, res interface{}) error {
	if err := ctx.Err(); err != nil {
		m.release(c) // a caller that has already given up sends nothing
		return err
	}
	if m.inflight != nil && !c.oob {
		select {
		case m.inflight <- struct{}{}:
			c.slots[0] = m.inflight
		case <-ctx.Done():
			m.release(c)
			return ctx.Err()
		case <-m.done:
			m.release(c)
			return m.err
		}
	}
	if err := m.send(c); err != nil {
		return err
	}
	select {
	case <-c.ch:
	case <-ctx.Done():
		m.abandon(c)
		return ctx.Err()
	}
	defer putCall(c)
	if c.err != nil {
		return c.err
	}
	if c.isErr {
		return qmpError(c.ret)
	}
	switch r := res.(type) {
	case nil:
		return nil
	case *json.RawMessage:
		// The reader has already checked the value's structure; a full
		// decode would only validate it again (3 ms for a 1 MiB schema).
		if cap(c.ret) > 64<<10 {
			*r, c.ret = c.ret, nil // too big to pool: hand it over
		} else {
			*r = append((*r)[:0], c.ret...)
		}
		return nil
	}
	if err := json.Unmarshal(c.ret, res); err != nil {
		return fmt.Errorf("qmp: decoding the reply: %w", err)
	}
	return nil
}

// release gives back what an unsent call holds and recycles it.
func (m *Monitor) release(c *call) {
	c.closeFD()
	c.releaseSlots()
	putCall(c)
}

// abandon is called when the caller stops waiting. A call not yet written
// is withdrawn; one already sent stays registered so that its reply, when it
// comes, is matched and dropped rather than given to somebody else.
func (m *Monitor) abandon(c *call) {
	m.mu.Lock()
	if !c.queued {
		m.mu.Unlock()
		return
	}
	for i, q := range m.sendq {
		if q == c {
			m.sendq = append(m.sendq[:i], m.sendq[i+1:]...)
			break
		}
	}
	c.queued = false
	m.mu.Unlock()
	m.release(c)
}

// send queues c for writing. The first caller to find no flush in progress
// becomes the flusher: it writes everything queued (its own command and any
// that others queue meanwhile, batched into one writev) and returns when the
// queue is empty. Other callers return at once and just wait for replies,
// so no caller waits on another's write unless the socket buffer is full.
func (m *Monitor) send(c *call) error {
	m.mu.Lock()
	if m.err != nil {
		err := m.err
		m.mu.Unlock()
		m.release(c)
		return err
	}
	c.queued = true
	m.sendq = append(m.sendq, c)
	if m.writing {
		m.mu.Unlock()
		return nil
	}
	m.writing = true
	// Let callers that are already runnable (woken by a batch of replies)
	// queue their commands first, so one writev carries them all. With
	// nobody else runnable this costs well under a microsecond.
	m.mu.Unlock()
	runtime.Gosched()
	m.mu.Lock()
	for {
		batch := m.sendq
		m.sendq = m.spareq[:0]
		if m.err != nil {
			// The connection ended while we were writing: finish() could not
			// see these calls, so settle them here.
			m.writing = false
			m.flushed.Broadcast()
			m.mu.Unlock()
			for _, q := range batch {
				q.closeFD()
				q.complete(m.err)
			}
			return nil
		}
		for _, q := range batch {
			q.queued = false
			if q.oob {
				m.oobIDs[q.id] = q
			} else {
				m.inband.push(q)
			}
		}
		m.mu.Unlock()
		err := m.write(batch)
		clear(batch)
		m.mu.Lock()
		m.spareq = batch[:0]
		if err != nil {
			m.writing = false
			m.flushed.Broadcast()
			m.mu.Unlock()
			m.fail(err)
			return nil
		}
		if len(m.sendq) == 0 {
			m.writing = false
			m.flushed.Broadcast()
			m.mu.Unlock()
			return nil
		}
	}
}

// write puts a batch on the wire: runs of plain commands in one writev, a
// command with a descriptor alone in its own sendmsg. It closes the calls'
// descriptors whatever happens. Once a call's bytes are out its reply may
// complete it and its caller reuse it, so nothing of a call is read after
// the write that sends it.
func (m *Monitor) write(batch []*call) error {
	var err error
	bufs := m.bufs[:0]
	for i, c := range batch {
		fd := c.fd
		c.fd = -1
		if err == nil {
			m.logMsg("send", c.msg)
			bufs = append(bufs, c.msg)
		}
		if fd < 0 && i < len(batch)-1 {
			continue
		}
		if err == nil && fd >= 0 {
			bufs = bufs[:len(bufs)-1]
		}
		if err == nil && len(bufs) > 0 {
			m.out = bufs // WriteTo consumes its receiver; keep bufs for reuse
			_, err = m.out.WriteTo(m.conn)
			bufs = bufs[:0]
		}
		if fd >= 0 {
			if err == nil {
				err = m.writeWithFD(c.msg, fd)
			}
			syscall.Close(fd)
		}
	}
	m.bufs = bufs[:0]
	return err
}

func (m *Monitor) writeWithFD(msg []byte, fd int) error {
	uc := m.conn.(*net.UnixConn)
	n, _, err := uc.WriteMsgUnix(msg, syscall.UnixRights(fd), nil)
	if err == nil && n < len(msg) {
		// The kernel took the descriptor with the first part; the rest must
		// not carry it again.
		_, err = m.conn.Write(msg[n:])
	}
	return err
}

// deliver hands a reply to its call.
func (m *Monitor) deliver(mb members) {
	m.mu.Lock()
	var c *call
	if mb.id != nil && len(m.oobIDs) > 0 {
		if c = m.oobIDs[string(mb.id)]; c != nil {
			delete(m.oobIDs, string(mb.id))
		}
	}
	if c == nil {
		c = m.inband.pop()
	}
	m.mu.Unlock()
	if c == nil {
		m.warn("qmp: dropped a reply that no command is waiting for", mb.ret)
		return
	}
	if mb.present&hasError != 0 {
		c.ret, c.isErr = append(c.ret[:0], mb.err...), true
	} else {
		c.ret = append(c.ret[:0], mb.ret...)
	}
	c.complete(nil)
}

// qmpError decodes a reply's "error" member into NewQMPError's type.
func qmpError(raw []byte) error {
	var qe GenericError
	if err := json.Unmarshal(raw, &qe); err != nil {
		return fmt.Errorf("qmp: malformed error reply %.200s: %w", raw, err)
	}
	return NewQMPError(&qe)
}
