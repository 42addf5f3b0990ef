package qmp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// handshakeError is how the handshake fails: stage is ErrHandshake (no
// valid greeting) or ErrNegotiation (qmp_capabilities failed), for
// errors.Is; the message says what happened without repeating the
// sentinel's own text, which for ErrHandshake ("invalid greeting") would
// misdescribe a timeout.
type handshakeError struct {
	stage error
	msg   string
	errs  []error // causes: the ctx's error and cause, or the I/O error
}

func (e *handshakeError) Error() string { return e.msg }

func (e *handshakeError) Unwrap() []error { return append([]error{e.stage}, e.errs...) }

// ctxErrs returns ctx's error and, when it differs, its cause, so that
// errors.Is finds context.DeadlineExceeded (or Canceled) and a custom
// cause alike.
func ctxErrs(ctx context.Context) []error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return []error{err, cause}
	}
	return []error{err}
}

// handshake reads the greeting and negotiates capabilities, within ctx.
//
// ctx is mapped onto the connection's deadline only by context.AfterFunc,
// which runs after ctx has ended: a read that times out therefore always
// finds ctx.Err() set, and the error reliably wraps it. On return the
// connection carries no deadline: if the AfterFunc has started, handshake
// waits for it to finish before clearing the deadline.
func (m *Monitor) handshake(ctx context.Context, fr *framer) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if ctx.Err() != nil {
		return &handshakeError{ErrHandshake, fmt.Sprintf("qmp: the handshake with %s was not started: %v", m.peer(), context.Cause(ctx)), ctxErrs(ctx)}
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		m.conn.SetDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-fired // it ran or is running: let it finish before clearing
		}
		if derr := m.conn.SetDeadline(time.Time{}); derr != nil && err == nil {
			err = &handshakeError{ErrNegotiation, "qmp: clearing the connection's deadline after the handshake failed: " + derr.Error(), []error{derr}}
		}
	}()
	start := time.Now()

	// next returns the next message that is not an event; events are filed
	// in the history, as QEMU may send them at any time.
	next := func(stage error, what string) (members, []byte, error) {
		for {
			msg, err := fr.next()
			if err != nil {
				if ctx.Err() != nil {
					took := time.Since(start).Round(time.Millisecond)
					if stage == ErrHandshake {
						return members{}, nil, &handshakeError{stage, fmt.Sprintf(
							"qmp: no QMP greeting from %s within %v (%v): is another client connected? QEMU greets one client per socket at a time",
							m.peer(), took, context.Cause(ctx)), ctxErrs(ctx)}
					}
					return members{}, nil, &handshakeError{stage, fmt.Sprintf(
						"qmp: no reply to qmp_capabilities from %s within %v (%v)", m.peer(), took, context.Cause(ctx)), ctxErrs(ctx)}
				}
				return members{}, nil, &handshakeError{stage, fmt.Sprintf("qmp: reading %s from %s failed: %v", what, m.peer(), err), []error{err}}
			}
			m.logMsg("recv", msg)
			mb, err := splitMembers(msg)
			if err != nil {
				return members{}, nil, &handshakeError{stage, fmt.Sprintf("qmp: %s from %s is not a QMP message: %v", what, m.peer(), err), []error{err}}
			}
			if mb.present&hasEvent != 0 {
				m.addEvent(mb, msg)
				continue
			}
			return mb, msg, nil
		}
	}

	mb, msg, err := next(ErrHandshake, "the greeting")
	if err != nil {
		return err
	}
	var greeting struct {
		Version      Version  `json:"version"`
		Capabilities []string `json:"capabilities"`
	}
	if mb.present&hasQMP == 0 || json.Unmarshal(mb.qmp, &greeting) != nil {
		// The sentinel's own text says exactly this.
		return fmt.Errorf("%w: %s sent %.200s", ErrHandshake, m.peer(), msg)
	}
	m.version, m.caps = greeting.Version, greeting.Capabilities

	neg := []byte(`{"execute":"qmp_capabilities"}`)
	if m.opts.EnableOOB && slices.Contains(m.caps, "oob") {
		neg = []byte(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`)
		m.oob = true
	}
	m.logMsg("send", neg)
	if _, err := m.conn.Write(neg); err != nil {
		if ctx.Err() != nil {
			return &handshakeError{ErrNegotiation, fmt.Sprintf("qmp: sending qmp_capabilities to %s was cut short (%v)", m.peer(), context.Cause(ctx)), append(ctxErrs(ctx), err)}
		}
		return &handshakeError{ErrNegotiation, fmt.Sprintf("qmp: sending qmp_capabilities to %s failed: %v", m.peer(), err), []error{err}}
	}
	mb, _, err = next(ErrNegotiation, "the reply to qmp_capabilities")
	if err != nil {
		return err
	}
	if mb.present&hasReturn == 0 {
		qe := qmpError(mb.err)
		return &handshakeError{ErrNegotiation, fmt.Sprintf("qmp: %s refused qmp_capabilities: %v", m.peer(), qe), []error{qe}}
	}
	return nil
}

// peer names the other end of the connection for error messages.
func (m *Monitor) peer() string {
	a := m.conn.RemoteAddr()
	if a == nil || a.String() == "" {
		return "the QMP server"
	}
	return a.Network() + ":" + a.String()
}
