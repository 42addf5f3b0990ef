package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The reader splits QEMU's output into messages and routes them without
// encoding/json: a structural scan finds where each top-level object ends
// and where its members' values lie, so a 1 MiB reply is walked once at
// memory speed and its "return" value is handed to the caller untouched.
// The one full JSON decode is the caller's own, into its result type.
//
// The scan is strict about structure (balanced, correctly nested brackets,
// terminated strings, nothing but literal characters outside strings) so
// garbage on the stream is caught here and ends the connection with a clear
// error rather than being misrouted. What it does not check (the contents
// of strings, the spelling of literals) the caller's decode of its result
// does.

// errProtocol wraps every framing and routing failure.
var errProtocol = errors.New("qmp: protocol error")

const readChunk = 64 << 10

// framer reads whole JSON objects from r. It keeps its scan state across
// reads, so a message that arrives one byte at a time is scanned once.
type framer struct {
	r   io.Reader
	max int // largest message accepted, in bytes

	buf        []byte
	start, end int // buf[start:end] holds bytes not yet returned

	// scan state for the message that begins at buf[start]
	pos   int    // next byte to scan
	began bool   // the opening '{' has been seen
	inStr bool   // inside a string
	esc   bool   // after a backslash inside a string
	stack []byte // open brackets

	small int // messages in a row that would have fit the initial buffer
}

func newFramer(r io.Reader, max int) *framer {
	return &framer{r: r, max: max, buf: make([]byte, readChunk)}
}

// next returns the next complete message. The slice is only valid until the
// following call.
func (f *framer) next() ([]byte, error) {
	for {
		if msg, err := f.scan(); msg != nil || err != nil {
			return msg, err
		}
		if f.end-f.start > f.max {
			return nil, fmt.Errorf("%w (%d bytes)", ErrMessageTooLarge, f.max)
		}
		f.fill()
		n, err := f.r.Read(f.buf[f.end:])
		f.end += n
		if n > 0 {
			continue
		}
		if err == nil {
			continue
		}
		if err == io.EOF && f.began {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// fill makes room to read: it moves unread bytes to the front of the buffer,
// or grows it (doubling) when a message fills it.
func (f *framer) fill() {
	if f.start > 0 && (f.start == f.end || f.end == len(f.buf)) {
		n := copy(f.buf, f.buf[f.start:f.end])
		f.pos -= f.start
		f.start, f.end = 0, n
	}
	if f.end == len(f.buf) {
		nb := make([]byte, 2*len(f.buf))
		copy(nb, f.buf[:f.end])
		f.buf = nb
	}
	// Give back a buffer grown for huge messages once they have stopped
	// coming, so an idle monitor does not pin it, while a caller that keeps
	// asking for query-qmp-schema does not regrow it every time.
	if f.start == f.end && len(f.buf) > 4*readChunk && f.small > 64 {
		f.buf = make([]byte, readChunk)
		f.start, f.end, f.pos = 0, 0, 0
	}
}

// scan advances over the buffered bytes. It returns a message when one is
// complete, (nil, nil) when it needs more input.
func (f *framer) scan() ([]byte, error) {
	b := f.buf[:f.end]
	i := f.pos
	if !f.began {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		f.start = i
		if i == len(b) {
			f.pos = i
			return nil, nil
		}
		if b[i] != '{' {
			return nil, f.bad(b, i, "expected '{' at the start of a message")
		}
		f.began = true
		f.stack = append(f.stack[:0], '{')
		i++
	}
	for i < len(b) {
		c := b[i]
		if f.inStr {
			// Strings dominate large replies: jump to the next quote or
			// backslash with the vectorised IndexByte.
			if f.esc {
				f.esc = false
				i++
				continue
			}
			rest := b[i:]
			j := bytes.IndexByte(rest, '"')
			if j < 0 {
				j = len(rest)
			}
			if k := bytes.IndexByte(rest[:j], '\\'); k >= 0 {
				f.esc = true
				i += k + 1
				continue
			}
			i += j
			if i < len(b) {
				f.inStr = false
				i++
			}
			continue
		}
		switch c {
		case '"':
			f.inStr = true
		case '{', '[':
			if len(f.stack) >= maxNesting {
				return nil, f.bad(b, i, "nesting too deep")
			}
			f.stack = append(f.stack, c)
		case '}', ']':
			open := f.stack[len(f.stack)-1]
			if (c == '}') != (open == '{') {
				return nil, f.bad(b, i, "mismatched bracket")
			}
			f.stack = f.stack[:len(f.stack)-1]
			if len(f.stack) == 0 {
				msg := b[f.start : i+1]
				if len(msg) > f.max {
					return nil, fmt.Errorf("%w (%d bytes)", ErrMessageTooLarge, f.max)
				}
				if f.small++; len(msg) > readChunk {
					f.small = 0
				}
				f.start, f.pos, f.began = i+1, i+1, false
				return msg, nil
			}
		default:
			if !isLiteral(c) {
				return nil, f.bad(b, i, "unexpected character")
			}
		}
		i++
	}
	f.pos = i
	return nil, nil
}

func (f *framer) bad(b []byte, i int, what string) error {
	lo := max(i-40, f.start)
	hi := min(i+40, len(b))
	return fmt.Errorf("%w: %s at byte %d of message: %q", errProtocol, what, i-f.start, b[lo:hi])
}

// maxNesting matches QEMU's own JSON parser limit.
const maxNesting = 1024

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isLiteral accepts the bytes of numbers, true, false, null, and the
// separators between values.
func isLiteral(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z':
		return true
	}
	switch c {
	case '-', '+', '.', 'E', ',', ':', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

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

// splitMembers finds the top-level members of msg, a message the framer
// accepted (so brackets and strings are known to be balanced). Values are
// subslices of msg.
func splitMembers(msg []byte) (members, error) {
	var m members
	err := eachMember(msg, func(key, v []byte) {
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
	})
	return m, err
}

// eachMember calls fn with the raw name and value of each member of obj,
// an object whose brackets and strings are balanced.
func eachMember(obj []byte, fn func(key, value []byte)) error {
	i := skipSpace(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return fmt.Errorf("%w: expected a member name in %.80q", errProtocol, obj)
		}
		ke := skipString(obj, i)
		key := obj[i+1 : ke-1]
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return fmt.Errorf("%w: expected ':' in %.80q", errProtocol, obj)
		}
		vs := skipSpace(obj, i+1)
		ve := skipValue(obj, vs)
		if ve <= vs {
			return fmt.Errorf("%w: expected a value in %.80q", errProtocol, obj)
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
		return fmt.Errorf("%w: expected ',' or '}' in %.80q", errProtocol, obj)
	}
	return fmt.Errorf("%w: truncated object %.80q", errProtocol, obj)
}

// parseEvent builds an Event from the members of an event message without
// reflection (the reader's hottest path under an event flood). QEMU's
// timestamps are two small integers; anything else is an error. Data is
// copied out of the read buffer.
func parseEvent(mb members) (e Event, sec, usec int64, err error) {
	if len(mb.event) < 2 || mb.event[0] != '"' || bytes.IndexByte(mb.event, '\\') >= 0 {
		if err = json.Unmarshal(mb.event, &e.Type); err != nil {
			return e, 0, 0, fmt.Errorf("event name %.80s: %w", mb.event, err)
		}
	} else {
		e.Type = string(mb.event[1 : len(mb.event)-1])
	}
	if mb.data != nil {
		e.Data = bytes.Clone(mb.data)
	}
	if mb.timestamp == nil {
		return e, -1, -1, nil
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

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		rest := b[i:]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return len(b)
		}
		if k := bytes.IndexByte(rest[:j], '\\'); k >= 0 {
			i += k + 2 // the backslash and the byte it escapes
			continue
		}
		return i + j + 1
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i]; it
// returns i when no value starts there.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && isLiteral(b[j]) && b[j] != ',' && b[j] != ':' && !isSpace(b[j]) {
		j++
	}
	return j
}
