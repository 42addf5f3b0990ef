package qmp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
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
	// A reply is matched on what was sent: the OOB call with its id, or the
	// oldest in-band call if that call sent the same id (QEMU echoes an id
	// exactly when the command had one). Anything else cannot be the reply
	// of any waiting call, and is dropped.
	var key string
	keyOK := mb.id == nil
	if !keyOK && len(mb.id) <= 8*int(m.maxIDLen.Load())+64 {
		// An echo is at most ~6 times longer than the id sent (\uXXXX
		// escapes, spaces): a longer one matches nothing, and is not
		// decoded, which costs QEMU's hostile bytes many times their size.
		var err error
		key, err = canonicalID(mb.id)
		keyOK = err == nil
	}
	m.mu.Lock()
	var c *call
	if keyOK {
		if key != "" {
			if c = m.oobIDs[key]; c != nil {
				delete(m.oobIDs, key)
			}
		}
		if h := m.inband.peek(); c == nil && h != nil && h.id == key {
			m.inband.pop()
			m.releaseSlotOf(h)
			c = h
		}
	}
	m.mu.Unlock()
	if m.log != nil {
		if c != nil && !c.sent.IsZero() {
			m.logReply(msg, time.Since(c.sent), c.secret)
		} else {
			m.logMsg("recv", msg)
		}
	}
	if c == nil {
		m.warn("qmp: dropped a reply that matches no command waiting for one", msg)
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

// canonicalID returns the form of a command's "id" that compares equal to
// QEMU's echo of it: QEMU decodes the id and writes it anew ("\u0061"
// comes back as "a", an object's members in another order), so both are
// decoded and written the same way here. Numbers must be integers of at
// most 64 bits, the only ones every QEMU writes back exactly (a fraction
// comes back rounded, 1e400 as the non-JSON inf); any other id is an
// error.
func canonicalID(id []byte) (string, error) {
	if len(id) >= 2 && id[0] == '"' && plainString(id[1:len(id)-1]) {
		return string(id), nil
	}
	// C0 80 is U+0000 to QEMU (modified UTF-8), which it echoes as \u0000.
	d := json.NewDecoder(bytes.NewReader(bytes.ReplaceAll(id, modifiedNUL, []byte(`\u0000`))))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	v, err := integersOnly(v)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// integersOnly rewrites the numbers in v, a decoded id, as QEMU writes
// integers, and fails on any other number.
func integersOnly(v any) (any, error) {
	var err error
	switch x := v.(type) {
	case json.Number:
		return integer(x)
	case map[string]any:
		for k, e := range x {
			if x[k], err = integersOnly(e); err != nil {
				return nil, err
			}
		}
	case []any:
		for i, e := range x {
			if x[i], err = integersOnly(e); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

func integer(n json.Number) (json.Number, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return json.Number(strconv.FormatInt(i, 10)), nil
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return json.Number(strconv.FormatUint(u, 10)), nil
	}
	return "", fmt.Errorf("the number %s is not an integer of at most 64 bits, which QEMU would not echo exactly", n)
}

// noteIDLen raises maxIDLen, the bound on the reply ids the router
// decodes, to n: every in-band call with an id passes here (send) before
// its bytes can go out.
func (m *Monitor) noteIDLen(n int) {
	for {
		if old := m.maxIDLen.Load(); int64(n) <= old || m.maxIDLen.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}

// oobIDPrefix starts the ids RunOOB gives its commands: "oob-" and digits.
const oobIDPrefix = `"oob-`

// isOOBID reports whether id, canonical, has the form of RunOOB's ids.
func isOOBID(id string) bool {
	digits, ok := strings.CutPrefix(id, oobIDPrefix)
	if !ok || len(digits) < 2 || digits[len(digits)-1] != '"' {
		return false
	}
	for _, c := range digits[:len(digits)-1] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
