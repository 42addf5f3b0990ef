package qmp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// deliver hands a reply to its call, following the scheme described at
// the top of command.go. An error return ends the connection.
func (m *Monitor) deliver(mb members, msg []byte) error {
	isErr := mb.present&hasError != 0
	if isErr && mb.id == nil {
		if desc, ok := parseErrorDesc(mb.err); ok {
			// Every command was checked to be one message for QEMU, so an
			// error about QEMU's JSON input means the two sides no longer
			// agree where messages end: from here on replies could go to the
			// wrong callers, so stop.
			return fmt.Errorf("%w: QEMU reported %q for input the library did not send as such; the two sides disagree on where messages end, so no later reply could be trusted", ErrProtocol, desc)
		}
	}
	m.mu.Lock()
	var c *call
	if mb.id != nil && len(m.oobIDs) > 0 {
		if c = m.oobIDs[string(mb.id)]; c != nil {
			delete(m.oobIDs, string(mb.id))
		}
	}
	if c == nil {
		if c = m.inband.pop(); c != nil {
			m.releaseSlotOf(c)
		}
	}
	m.mu.Unlock()
	if m.log != nil {
		if c != nil && !c.sent.IsZero() {
			m.logReply(msg, time.Since(c.sent))
		} else {
			m.logMsg("recv", msg)
		}
	}
	if c == nil {
		m.warn("qmp: dropped a reply that no command is waiting for", mb.ret)
		return nil
	}
	switch {
	case isErr:
		c.complete(bytes.Clone(mb.err), true, nil)
	case c.discard:
		c.complete(nil, false, nil)
	default:
		c.complete(bytes.Clone(mb.ret), false, nil)
	}
	return nil
}

// parseErrorDesc reports whether an id-less error reply is one of QEMU's
// complaints about its JSON input (qobject/json-streamer.c,
// qobject/json-parser.c, qapi/qmp-dispatch.c), and returns its text.
func parseErrorDesc(raw []byte) (string, bool) {
	var e GenericError
	if json.Unmarshal(raw, &e) != nil || e.Class != "GenericError" {
		return "", false
	}
	switch d := e.Desc; {
	case strings.HasPrefix(d, "JSON parse error"),
		d == "JSON token size limit exceeded",
		d == "JSON token count limit exceeded",
		d == "JSON nesting depth limit exceeded",
		d == "QMP input must be a JSON object":
		return d, true
	}
	return "", false
}

// qmpError decodes a reply's "error" member into NewQMPError's type.
func qmpError(raw []byte) error {
	var qe GenericError
	if err := json.Unmarshal(raw, &qe); err != nil {
		return fmt.Errorf("%w: QEMU sent a malformed error reply %.200s: %w", ErrProtocol, raw, err)
	}
	return NewQMPError(&qe)
}
