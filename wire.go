package qmp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// Reading QEMU's messages: the members the router needs, and events parsed
// without reflection. The framer (framer.go) has already checked that a
// message is a well-formed JSON object and recorded where its top-level
// members lie.

// members holds the spans of the top-level members the router needs.
type members struct {
	ret, err, event, id, qmp []byte
	data, timestamp          []byte
	present                  uint8
}

const (
	hasReturn = 1 << iota
	hasError
	hasEvent
	hasQMP
)

// membersOf returns the routing members of msg from the framer's spans, or
// by walking msg when the framer could not record them all.
func (f *framer) membersOf(msg []byte) (members, error) {
	if !f.memOK || len(msg) > math.MaxInt32 { // spans are int32 offsets
		return splitMembers(msg)
	}
	var m members
	for _, s := range f.mem[:f.nmem] {
		m.set(msg[s.k0+1:s.k1-1], msg[s.v0:s.v1])
	}
	return m, nil
}

func (m *members) set(key, v []byte) {
	switch string(key) {
	case "return":
		m.ret, m.present = v, m.present|hasReturn
	case "error":
		m.err, m.present = v, m.present|hasError
	case "event":
		m.event, m.present = v, m.present|hasEvent
	case "id":
		m.id = v
	case "QMP":
		m.qmp, m.present = v, m.present|hasQMP
	case "data":
		m.data = v
	case "timestamp":
		m.timestamp = v
	}
}

// splitMembers finds the top-level members of msg, a message the framer
// accepted (so brackets and strings are known to be balanced). Values are
// subslices of msg.
func splitMembers(msg []byte) (members, error) {
	var m members
	err := eachMember(msg, m.set)
	return m, err
}

// eachMember calls fn with the raw name and value of each member of obj,
// an object whose brackets and strings are balanced (on other input it
// stops with an error, having called fn for the members before it).
func eachMember(obj []byte, fn func(key, value []byte)) error {
	i := skipSpace(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return fmt.Errorf("%w: expected a member name in %.80q", ErrProtocol, obj)
		}
		ke := skipString(obj, i)
		if ke-1 <= i {
			return fmt.Errorf("%w: truncated object %.80q", ErrProtocol, obj)
		}
		key := obj[i+1 : ke-1]
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return fmt.Errorf("%w: expected ':' in %.80q", ErrProtocol, obj)
		}
		vs := skipSpace(obj, i+1)
		ve := skipValue(obj, vs)
		if ve <= vs {
			return fmt.Errorf("%w: expected a value in %.80q", ErrProtocol, obj)
		}
		fn(key, obj[vs:ve])
		i = skipSpace(obj, ve)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
			continue
		}
		if i == len(obj)-1 && obj[i] == '}' {
			return nil
		}
		return fmt.Errorf("%w: expected ',' or '}' in %.80q", ErrProtocol, obj)
	}
	return fmt.Errorf("%w: truncated object %.80q", ErrProtocol, obj)
}

// eventNames interns event names: QEMU has a few dozen, and an event
// flood repeats them, so each is allocated once (per monitor, by its reader
// only). The table lives as long as the monitor, outside the history's
// bounds, so what it holds is bounded by itself: at most maxEventNames
// names of at most maxEventNameLen bytes (32 KiB). QEMU's longest name
// has 27; longer ones, and names past the count, are allocated per event
// and counted against EventHistoryBytes like the event's data.
type eventNames map[string]string

const (
	maxEventNames   = 512
	maxEventNameLen = 64
)

func (n eventNames) intern(b []byte) string {
	if s, ok := n[string(b)]; ok {
		return s
	}
	s := string(b)
	if n != nil && len(n) < maxEventNames && len(s) <= maxEventNameLen {
		n[s] = s
	}
	return s
}

// parseEvent builds an Event from the members of an event message without
// reflection (the reader's hottest path under an event flood). QEMU's
// timestamps are two small integers; anything else is an error. Data is
// copied out of the read buffer. names may be nil.
func parseEvent(mb members, names eventNames) (e Event, sec, usec int64, err error) {
	// Event names are plain ASCII; anything else (escapes, UTF-8, bytes
	// encoding/json turns into U+FFFD) is decoded as Data's readers would.
	if len(mb.event) < 2 || mb.event[0] != '"' || !plainString(mb.event[1:len(mb.event)-1]) {
		if err = json.Unmarshal(mb.event, &e.Type); err != nil {
			return e, 0, 0, fmt.Errorf("event name %.80s: %w", mb.event, err)
		}
	} else {
		e.Type = names.intern(mb.event[1 : len(mb.event)-1])
	}
	if mb.data != nil {
		e.Data = bytes.Clone(mb.data)
	}
	if mb.timestamp == nil {
		return e, -1, -1, nil
	}
	if sec, usec, ok := qemuTimestamp(mb.timestamp); ok {
		return e, sec, usec, nil
	}
	if len(mb.timestamp) == 0 || mb.timestamp[0] != '{' {
		return e, 0, 0, fmt.Errorf("timestamp %.80s is not an object", mb.timestamp)
	}
	sec, usec = -1, -1
	var bad []byte
	err = eachMember(mb.timestamp, func(key, v []byte) {
		n, ok := parseInt(v)
		switch string(key) {
		case "seconds":
			sec = n
		case "microseconds":
			usec = n
		default:
			return
		}
		if !ok {
			bad = v
		}
	})
	if err == nil && bad != nil {
		err = fmt.Errorf("timestamp field %.40s is not an integer", bad)
	}
	return e, sec, usec, err
}

// qemuTimestamp parses a timestamp spelt exactly as QEMU writes it,
// `{"seconds": S, "microseconds": U}`; ok is false for any other spelling,
// which the general path then reads.
func qemuTimestamp(b []byte) (sec, usec int64, ok bool) {
	const pre, mid = `{"seconds": `, `, "microseconds": `
	rest, found := bytes.CutPrefix(b, []byte(pre))
	if !found {
		return 0, 0, false
	}
	i := bytes.IndexByte(rest, ',')
	if i < 0 {
		return 0, 0, false
	}
	if sec, ok = parseInt(rest[:i]); !ok {
		return 0, 0, false
	}
	if rest, found = bytes.CutPrefix(rest[i:], []byte(mid)); !found || len(rest) == 0 || rest[len(rest)-1] != '}' {
		return 0, 0, false
	}
	usec, ok = parseInt(rest[:len(rest)-1])
	return sec, usec, ok
}

// parseInt parses a JSON integer that fits in an int64.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
