package qmptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Error classes used by QEMU.
const (
	classGeneric         = "GenericError"
	classCommandNotFound = "CommandNotFound"
	classDeviceNotFound  = "DeviceNotFound"
	classDeviceNotActive = "DeviceNotActive"
)

// oobCommands are the commands QEMU 7.2 allows with exec-oob.
var oobCommands = map[string]bool{
	"migrate-pause":   true,
	"migrate-recover": true,
	"yank":            true,
	"query-yank":      true,
}

// fdReader feeds the JSON decoder from the socket with recvmsg, so that
// file descriptors sent with SCM_RIGHTS are collected along with the bytes
// they were sent with.
type fdReader struct {
	s     *Server
	cs    *conn
	oob   []byte
	total int64 // bytes read so far
}

func (r *fdReader) Read(p []byte) (int, error) {
	n, oobn, _, _, err := r.cs.c.ReadMsgUnix(p, r.oob)
	if n < 0 {
		// Seen on errors (e.g. a closed conn); io.Reader forbids it.
		n = 0
	}
	r.total += int64(n)
	if oobn > 0 {
		r.takeFDs(r.oob[:oobn])
	}
	if n == 0 && oobn == 0 && err == nil {
		// recvmsg returning 0 on a stream socket is EOF.
		return 0, io.EOF
	}
	return n, err
}

// takeFDs records received descriptors. Like QEMU's socket chardev, only
// one fd is kept pending: a newly arriving fd closes any still unclaimed
// one. The kernel may return bytes sent before the fd in the same read,
// but it ends a read with the segment that carried descriptors, so the fd
// belongs to the JSON value holding the read's last byte.
func (r *fdReader) takeFDs(b []byte) {
	for _, fd := range unixRights(b) {
		f := os.NewFile(uintptr(fd), "qmptest-fd")
		r.s.mu.Lock()
		r.s.receivedFD++
		r.s.mu.Unlock()
		r.cs.mu.Lock()
		if r.cs.pending != nil {
			r.cs.pending.Close()
		}
		r.cs.pending = f
		r.cs.pendingAt = r.total - 1
		r.cs.mu.Unlock()
	}
}

// readLoop decodes JSON values until the connection ends. OOB commands are
// executed right here, everything else is queued for the executor in
// order. It returns true when the executor should still drain the queue
// before the connection is closed (after a JSON parse error, whose error
// reply must be written in order).
func (s *Server) readLoop(cs *conn, queue chan<- queued) (drain bool) {
	fr := &fdReader{s: s, cs: cs, oob: make([]byte, cmsgSpace)}
	dec := json.NewDecoder(fr)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			var se *json.SyntaxError
			if !errors.As(err, &se) {
				return false
			}
			// A json.Decoder cannot resynchronize after a syntax error
			// (QEMU's lexer can), so report it and hang up.
			select {
			case queue <- queued{verr: "JSON parse error, " + err.Error()}:
				return true
			case <-cs.closed:
				return false
			}
		}
		req, verr := parseRequest(raw)
		cs.mu.Lock()
		if cs.pending != nil && cs.pendingAt < dec.InputOffset() {
			req.FD, cs.pending = cs.pending, nil
		}
		cs.mu.Unlock()

		s.mu.Lock()
		s.reqs = append(s.reqs, *req)
		s.notifyLocked()
		s.mu.Unlock()

		if verr == "" && req.OOB && cs.oobEnabled() {
			s.execute(cs, req, "", true)
			continue
		}
		// Blocks when queueLen commands are waiting: QEMU then stops
		// reading the socket, and so do we.
		select {
		case queue <- queued{req: req, verr: verr}:
		case <-cs.closed:
			return false
		}
	}
}

// executor runs in-band commands strictly one at a time, in order, on its
// own goroutine so that a delayed reply does not stop the reader from
// executing OOB commands.
func (s *Server) executor(cs *conn, queue <-chan queued) {
	for {
		select {
		case it, ok := <-queue:
			if !ok {
				return
			}
			if it.req == nil {
				cs.send(s, replyMessage(nil, Reply{ErrClass: classGeneric, ErrDesc: it.verr}))
				continue
			}
			s.execute(cs, it.req, it.verr, false)
		case <-cs.closed:
			return
		}
	}
}

// parseRequest validates the top-level members of a QMP input the way
// QEMU's qmp_dispatch does and returns a non-empty error description if
// the input is not a valid command.
func parseRequest(raw json.RawMessage) (*Request, string) {
	req := &Request{Raw: append([]byte(nil), raw...)}
	ms, err := objectMembers(raw)
	if err != nil {
		return req, "QMP input must be a JSON object"
	}
	for _, m := range ms {
		if m.key == "id" {
			req.ID = m.val
		}
	}
	var verr, execName, oobName string
	var hasExec, hasOOB bool
	for _, m := range ms {
		var e string
		switch m.key {
		case "execute":
			if json.Unmarshal(m.val, &execName) != nil || jsonKind(m.val) != '"' {
				e = "QMP input member 'execute' must be a string"
			} else {
				hasExec = true
			}
		case "exec-oob":
			if json.Unmarshal(m.val, &oobName) != nil || jsonKind(m.val) != '"' {
				e = "QMP input member 'exec-oob' must be a string"
			} else {
				hasOOB = true
			}
		case "arguments":
			if jsonKind(m.val) != '{' {
				e = "QMP input member 'arguments' must be an object"
			} else {
				req.Arguments = m.val
			}
		case "id", "control":
		default:
			e = fmt.Sprintf("QMP input member '%s' is unexpected", m.key)
		}
		if verr == "" {
			verr = e
		}
	}
	switch {
	case hasExec:
		req.Name = execName
		if hasOOB && verr == "" {
			verr = "QMP input member 'exec-oob' is unexpected"
		}
	case hasOOB:
		req.Name = oobName
		req.OOB = true
	case verr == "":
		verr = "QMP input lacks member 'execute'"
	}
	return req, verr
}

// execute dispatches one request and writes its reply. oobPath is true for
// exec-oob commands run by the reader: their replies skip the reply delay
// and the out-of-order buffer.
func (s *Server) execute(cs *conn, req *Request, verr string, oobPath bool) {
	rep := s.dispatch(cs, req, verr)
	delay := rep.Delay
	if !oobPath {
		delay += time.Duration(s.replyDelay.Load())
	}
	if delay > 0 {
		// Interruptible, so that Close never waits for a long Delay.
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-cs.closed:
			t.Stop()
			return
		}
	}
	if !rep.NoReply {
		s.writeReply(cs, replyMessage(req.ID, rep), req.ID != nil && !oobPath)
	}
	if rep.after != nil {
		rep.after()
	}
}

// dispatch finds and runs the handler, producing QEMU's protocol errors
// for requests that never reach a handler.
func (s *Server) dispatch(cs *conn, req *Request, verr string) Reply {
	r := *req
	defer func() {
		// An fd the handler did not claim is not kept around.
		if req.FD != nil && r.FD == req.FD {
			req.FD.Close()
		}
	}()
	if verr != "" {
		return Reply{ErrClass: classGeneric, ErrDesc: verr}
	}
	if req.OOB && !cs.oobEnabled() {
		return Reply{ErrClass: classGeneric, ErrDesc: "QMP input member 'exec-oob' is unexpected"}
	}
	negotiated := cs.isNegotiated()
	if !negotiated && req.Name != "qmp_capabilities" {
		return Reply{ErrClass: classCommandNotFound, ErrDesc: "Expecting capabilities negotiation with 'qmp_capabilities'"}
	}
	if negotiated && req.Name == "qmp_capabilities" {
		return Reply{ErrClass: classCommandNotFound, ErrDesc: "Capabilities negotiation is already complete, command ignored"}
	}
	s.mu.Lock()
	h := s.handlers[req.Name]
	s.mu.Unlock()
	if h == nil {
		return Reply{ErrClass: classCommandNotFound, ErrDesc: fmt.Sprintf("The command %s has not been found", req.Name)}
	}
	if req.OOB && !oobCommands[req.Name] {
		return Reply{ErrClass: classGeneric, ErrDesc: fmt.Sprintf("The command %s does not support OOB", req.Name)}
	}
	rep := h(s, &r)
	if req.Name == "qmp_capabilities" && rep.ErrClass == "" && !cs.isNegotiated() {
		// A user override of qmp_capabilities succeeded.
		var a struct {
			Enable []string `json:"enable"`
		}
		json.Unmarshal(req.Arguments, &a)
		s.negotiate(cs, a.Enable)
	}
	return rep
}

// negotiate switches the connection to command mode with caps enabled.
func (s *Server) negotiate(cs *conn, caps []string) {
	enabled := append([]string{}, caps...)
	cs.mu.Lock()
	cs.negotiated = true
	for _, c := range caps {
		if c == "oob" {
			cs.oob = true
		}
	}
	cs.mu.Unlock()
	s.mu.Lock()
	s.negotiated = enabled
	s.notifyLocked()
	s.mu.Unlock()
}

// replyMessage builds the compact JSON of a reply in QEMU's key order:
// "id" last on success, first on error. The id is echoed as the bytes the
// client sent.
func replyMessage(id json.RawMessage, rep Reply) []byte {
	if rep.ErrClass != "" {
		e := `{"class":` + string(mustMarshal(rep.ErrClass)) + `,"desc":` + string(mustMarshal(rep.ErrDesc)) + `}`
		if id != nil {
			return []byte(`{"id":` + string(id) + `,"error":` + e + `}`)
		}
		return []byte(`{"error":` + e + `}`)
	}
	var ret []byte
	switch {
	case rep.RawReturn != nil:
		ret = rep.RawReturn
	case rep.Return == nil:
		ret = []byte("{}")
	default:
		var err error
		if ret, err = marshal(rep.Return); err != nil {
			return replyMessage(id, Reply{ErrClass: classGeneric, ErrDesc: "qmptest: cannot marshal return value: " + err.Error()})
		}
	}
	msg := `{"return":` + string(ret)
	if id != nil {
		msg += `,"id":` + string(id)
	}
	return []byte(msg + "}")
}

// writeReply writes an in-band reply, holding back replies with an id
// while SetOutOfOrder is active.
func (s *Server) writeReply(cs *conn, msg []byte, hasID bool) {
	n := int(s.outOfOrder.Load())
	cs.mu.Lock()
	var batch [][]byte
	if n > 1 && hasID {
		cs.held = append(cs.held, msg)
		if len(cs.held) < n {
			cs.mu.Unlock()
			return
		}
		batch, cs.held = cs.held, nil
		msg = nil
	} else if n <= 1 {
		// Out-of-order mode was switched off: release what was held.
		batch, cs.held = cs.held, nil
	}
	cs.mu.Unlock()
	for i := len(batch) - 1; i >= 0; i-- {
		cs.send(s, batch[i])
	}
	if msg != nil {
		cs.send(s, msg)
	}
}
