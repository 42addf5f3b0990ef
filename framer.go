package qmp

// Splitting QEMU's output into messages
//
// The framer finds where each top-level JSON object ends without
// encoding/json: one pass over the bytes, a JSON grammar automaton whose
// state survives between reads (a message that arrives one byte at a time is
// scanned once), and the spans of the object's top-level members recorded on
// the way, so routing never walks a message twice. A 1 MiB reply is scanned at
// near memory speed and its "return" value handed on untouched; the one full
// decode is the caller's own, into its result type.
//
// The automaton is strict: the first byte that cannot continue a JSON object
// (a raw control character inside a string, a bad escape, a malformed number
// or keyword, a misplaced separator, anything but an object at the top level)
// ends the connection with a protocol error naming its offset and showing the
// bytes around it. So the reader never waits for bytes that cannot complete a
// message, and every message it returns has the structure of a JSON object.
// It does not validate UTF-8; the caller's decode does.

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"os"
	"syscall"
)

// maxNesting bounds how deep QEMU's output may nest, as QEMU bounds its input.
const maxNesting = 1024

// maxMembers is how many top-level members the framer records spans for;
// QEMU's messages have at most three.
const maxMembers = 8

// span locates a top-level member in a message (offsets from its start).
type span struct{ k0, k1, v0, v1 int32 }

// grammar states: what may come next outside a token
const (
	stKeyOrClose   uint8 = iota // after '{'
	stKey                       // after ',' in an object
	stColon                     // after a member name
	stValue                     // after ':' or ',' in an array
	stValueOrClose              // after '['
	stAfterValue                // after a value: ',' or the container's close
)

// token states: inside a multi-byte token
const (
	tNone uint8 = iota
	tStr
	tStrEsc
	tStrU // inside \uXXXX; f.uleft hex digits to go
	tKw   // inside true/false/null; f.kw holds the rest
	tNumMinus
	tNumZero
	tNumInt
	tNumDot
	tNumFrac
	tNumE
	tNumESign
	tNumExp
)

// framer reads whole JSON objects from a connection.
type framer struct {
	rc  syscall.RawConn // when set, reads wait for data before taking a buffer
	r   io.Reader       // otherwise
	max int             // largest message accepted, in bytes

	bufp       *[]byte // the pooled buffer, if buf is one (buf is then *bufp)
	buf        []byte  // nil, small, or *bufp
	start, end int     // buf[start:end] holds bytes not yet returned
	readFn     func(fd uintptr) bool
	rdN        int // what readFn read
	rdErr      error
	readSize   int // how much the next read asks for (grows under a flood)
	hint       int // size class of the largest recent message

	// scan state for the message that begins at buf[start]
	pos    int // next byte to scan
	began  bool
	st     uint8
	tok    uint8
	isKey  bool   // the string being scanned is a member name
	uleft  uint8  // hex digits left in a \u escape
	kw     string // rest of the keyword being matched
	stack  []byte // open containers
	mem    [maxMembers]span
	nmem   int
	memOK  bool  // mem holds every top-level member
	k0, k1 int32 // the current top-level member name's span

	small [smallBuf]byte
}

func newFramer(r io.Reader, max int) *framer {
	f := &framer{r: r, max: max, readSize: smallBuf, hint: minBufShift}
	if sc, ok := r.(syscall.Conn); ok && rawIO {
		if rc, err := sc.SyscallConn(); err == nil {
			f.rc = rc
		}
	}
	f.readFn = f.readReady // bound once: a closure per read would allocate
	return f
}

// next returns the next complete message and its top-level member spans
// (valid when memOK). The slice is only valid until the following call.
func (f *framer) next() ([]byte, error) {
	for {
		if msg, err := f.scan(); msg != nil || err != nil {
			return msg, err
		}
		if f.end-f.start > f.max {
			return nil, fmt.Errorf("%w: a message from QEMU is larger than %d bytes (Options.MaxMessageSize)", ErrMessageTooLarge, f.max)
		}
		n, err := f.read()
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

// read adds bytes to the buffer. With a RawConn it waits for the socket to
// be readable holding no buffer when none is needed.
func (f *framer) read() (int, error) {
	if f.rc == nil {
		f.idle()
		f.room()
		n, err := f.r.Read(f.buf[f.end:])
		f.end += n
		f.adapt(n)
		return n, err
	}
	err := f.rc.Read(f.readFn)
	n, rerr := f.rdN, f.rdErr
	if n < 0 {
		n = 0
	}
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, os.NewSyscallError("read", rerr)
	}
	if n == 0 {
		return 0, io.EOF
	}
	f.end += n
	f.adapt(n)
	return n, nil
}

// adapt sizes the next read from this one, which put n bytes at the end
// of the buffer: one that filled it means a flood, so read more at a time.
func (f *framer) adapt(n int) {
	if f.end == len(f.buf) && n > 0 && f.readSize < maxReadSize {
		f.readSize *= 2
	} else if n < f.readSize/4 && f.readSize > smallBuf {
		f.readSize /= 2
	}
}

// readReady reads what the socket holds; false means it would block.
func (f *framer) readReady(fd uintptr) bool {
	for {
		f.room()
		f.rdN, f.rdErr = readFD(fd, f.buf[f.end:])
		if f.rdErr == syscall.EINTR {
			continue
		}
		if f.rdErr == syscall.EAGAIN {
			f.idle()
			return false
		}
		return true
	}
}

// room makes sure there is space to read into: it takes a buffer from the
// pool, moves unread bytes to the front, or moves a message that fills its
// buffer to a bigger one.
func (f *framer) room() {
	if f.buf == nil {
		if f.readSize <= smallBuf {
			f.buf = f.small[:]
			return
		}
		f.bufp = getBuf(max(bits.Len(uint(f.readSize))-1, minBufShift))
		f.buf = *f.bufp
		return
	}
	if f.start > 0 && (f.start == f.end || f.end == len(f.buf)) {
		n := copy(f.buf, f.buf[f.start:f.end])
		f.pos -= f.start
		f.start, f.end = 0, n
	}
	if f.end < len(f.buf) {
		return
	}
	class := max(bits.Len(uint(len(f.buf))), minBufShift) // the next size up...
	if f.hint > class {
		class = f.hint // ...or at once the size recent big messages needed
	}
	nb := getBuf(class)
	copy(*nb, f.buf[:f.end])
	if f.bufp != nil {
		putBuf(f.bufp)
	}
	f.bufp, f.buf = nb, *nb
}

// idle gives a pooled buffer back when it holds nothing unread, so a
// monitor waiting for QEMU holds only its small one.
func (f *framer) idle() {
	if f.buf != nil && f.start == f.end {
		if f.bufp != nil {
			putBuf(f.bufp)
		}
		f.bufp, f.buf, f.start, f.end, f.pos = nil, nil, 0, 0, 0
	}
}

// scan advances over the buffered bytes. It returns a message when one is
// complete, (nil, nil) when it needs more input.
func (f *framer) scan() ([]byte, error) {
	b := f.buf[:f.end]
	i := f.pos
	if !f.began {
		for i < len(b) && class[b[i]] == cSpace {
			i++
		}
		f.start, f.pos = i, i
		if i == len(b) {
			return nil, nil
		}
		if b[i] != '{' {
			return nil, f.bad(b, i, "a message must be a JSON object, but it starts with")
		}
		f.began, f.st, f.tok, f.nmem, f.memOK = true, stKeyOrClose, tNone, 0, true
		f.stack = append(f.stack[:0], '{')
		i++
	}
	st, tok := f.st, f.tok
	for i < len(b) {
		if tok != tNone {
			c := b[i]
			switch tok {
			case tStr:
				if i+8 <= len(b) {
					// Most strings QEMU sends are short (5.6 bytes on average in
					// query-qmp-schema): the first word is tested here, without
					// a call.
					if t := stopMask(binary.LittleEndian.Uint64(b[i:])); t != 0 {
						i += bits.TrailingZeros64(t) >> 3
					} else if i = strStop(b, i+8); i == len(b) {
						continue
					}
				} else if i = strStop(b, i); i == len(b) {
					continue
				}
				switch b[i] {
				case '"':
					i++
					tok = tNone
					if f.isKey {
						st = stColon
						if len(f.stack) == 1 {
							f.k1 = int32(i - f.start)
						}
						if i+2 < len(b) && b[i] == ':' && b[i+1] == ' ' && b[i+2] == '"' {
							// `": "`, QEMU's separator before a string value:
							// straight into the value.
							i += 2
							if len(f.stack) == 1 {
								f.valueStart(i)
							}
							f.isKey, tok = false, tStr
							i++
						}
					} else {
						st = stAfterValue
						if len(f.stack) == 1 {
							f.valueDone(i)
						}
						if i+2 < len(b) && b[i] == ',' && b[i+1] == ' ' && b[i+2] == '"' {
							// `", "`, between a string and the next member name
							// (or array element): straight into that string.
							i += 2
							if f.stack[len(f.stack)-1] == '{' {
								f.isKey = true
								if len(f.stack) == 1 {
									f.k0 = int32(i - f.start)
								}
							}
							tok = tStr
							i++
						}
					}
				case '\\':
					i++
					tok = tStrEsc
				default:
					f.st, f.tok = st, tok
					return nil, f.bad(b, i, "raw control character inside a string")
				}
				continue
			case tStrEsc:
				switch c {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					tok = tStr
				case 'u':
					tok, f.uleft = tStrU, 4
				default:
					return nil, f.bad(b, i, "invalid escape in a string")
				}
				i++
				continue
			case tStrU:
				if !isHex(c) {
					return nil, f.bad(b, i, "invalid \\u escape in a string")
				}
				if f.uleft--; f.uleft == 0 {
					tok = tStr
				}
				i++
				continue
			case tKw:
				if c != f.kw[0] {
					return nil, f.bad(b, i, "misspelt keyword")
				}
				i++
				if f.kw = f.kw[1:]; f.kw == "" {
					tok = tNone
					st = stAfterValue
					if len(f.stack) == 1 {
						f.valueDone(i)
					}
				}
				continue
			}
			// numbers
			digit := c-'0' < 10
			next := tNone
			switch tok {
			case tNumMinus:
				if c == '0' {
					next = tNumZero
				} else if digit {
					next = tNumInt
				} else {
					return nil, f.bad(b, i, "malformed number")
				}
			case tNumZero, tNumInt, tNumFrac:
				switch {
				case digit && tok != tNumZero:
					next = tok
				case digit:
					return nil, f.bad(b, i, "malformed number (leading zero)")
				case c == '.' && tok != tNumFrac:
					next = tNumDot
				case c == 'e' || c == 'E':
					next = tNumE
				}
			case tNumDot:
				if !digit {
					return nil, f.bad(b, i, "malformed number")
				}
				next = tNumFrac
			case tNumE:
				if c == '+' || c == '-' {
					next = tNumESign
				} else if digit {
					next = tNumExp
				} else {
					return nil, f.bad(b, i, "malformed number")
				}
			case tNumESign, tNumExp:
				if digit {
					next = tNumExp
				} else if tok == tNumESign {
					return nil, f.bad(b, i, "malformed number")
				}
			}
			if next != tNone {
				tok = next
				i++
				continue
			}
			// The number ended before b[i], which is scanned below.
			tok = tNone
			st = stAfterValue
			if len(f.stack) == 1 {
				f.valueDone(i)
			}
		}
		c := b[i]
		switch class[c] {
		case cSpace:
			i++
			continue
		case cQuote:
			switch st {
			case stKeyOrClose, stKey:
				f.isKey = true
				if len(f.stack) == 1 {
					f.k0 = int32(i - f.start)
				}
			case stValue, stValueOrClose:
				f.isKey = false
				if len(f.stack) == 1 {
					f.valueStart(i)
				}
			default:
				return nil, f.bad(b, i, "unexpected string")
			}
			tok = tStr
			i++
			continue
		case cNum, cKw:
			if st != stValue && st != stValueOrClose {
				return nil, f.bad(b, i, "unexpected value")
			}
			if len(f.stack) == 1 {
				f.valueStart(i)
			}
			switch c {
			case 't':
				tok, f.kw = tKw, "rue"
			case 'f':
				tok, f.kw = tKw, "alse"
			case 'n':
				tok, f.kw = tKw, "ull"
			case '-':
				tok = tNumMinus
			case '0':
				tok = tNumZero
			default:
				tok = tNumInt
			}
			i++
			continue
		case cOpenObj, cOpenArr:
			if st != stValue && st != stValueOrClose {
				return nil, f.bad(b, i, "unexpected bracket")
			}
			if len(f.stack) >= maxNesting {
				return nil, f.bad(b, i, "nesting deeper than 1024 levels")
			}
			if len(f.stack) == 1 {
				f.valueStart(i)
			}
			f.stack = append(f.stack, c)
			if c == '{' {
				st = stKeyOrClose
			} else {
				st = stValueOrClose
			}
			i++
			continue
		case cCloseObj, cCloseArr:
			open := f.stack[len(f.stack)-1]
			if c == '}' && (open != '{' || st != stKeyOrClose && st != stAfterValue) ||
				c == ']' && (open != '[' || st != stValueOrClose && st != stAfterValue) {
				return nil, f.bad(b, i, "unexpected closing bracket")
			}
			f.stack = f.stack[:len(f.stack)-1]
			i++
			if len(f.stack) == 0 {
				msg := b[f.start:i]
				if len(msg) > f.max {
					return nil, fmt.Errorf("%w: a message from QEMU is larger than %d bytes (Options.MaxMessageSize)", ErrMessageTooLarge, f.max)
				}
				if len(msg) > 1<<minBufShift {
					f.hint = bits.Len(uint(len(msg)))
				}
				f.start, f.pos, f.began = i, i, false
				return msg, nil
			}
			st = stAfterValue
			if len(f.stack) == 1 {
				f.valueDone(i)
			} else if i+3 < len(b) && b[i] == ',' && b[i+1] == ' ' && b[i+2] == '{' && b[i+3] == '"' && f.stack[len(f.stack)-1] == '[' {
				// `}, {"` in an array of objects (query-qmp-schema is one):
				// straight into the next object's first member name, at the
				// depth just left.
				f.stack = append(f.stack, '{')
				f.isKey, tok = true, tStr
				i += 4
			}
			continue
		case cColon:
			if st != stColon {
				return nil, f.bad(b, i, "unexpected ':'")
			}
			st = stValue
			if i++; i < len(b) && b[i] == ' ' {
				i++ // QEMU's separator is ": "
			}
			continue
		case cComma:
			if st != stAfterValue {
				return nil, f.bad(b, i, "unexpected ','")
			}
			if f.stack[len(f.stack)-1] == '{' {
				st = stKey
			} else {
				st = stValue
			}
			if i++; i < len(b) && b[i] == ' ' {
				i++ // and ", "
			}
			continue
		}
		return nil, f.bad(b, i, "unexpected character")
	}
	f.pos, f.st, f.tok = i, st, tok
	return nil, nil
}

// valueStart notes where a top-level member's value begins (called at
// depth 1 only).
func (f *framer) valueStart(i int) {
	if f.nmem == maxMembers {
		f.memOK = false
		return
	}
	f.mem[f.nmem] = span{k0: f.k0, k1: f.k1, v0: int32(i - f.start)}
}

// valueDone closes a top-level member's span at a value that ends just
// before b[i] (called at depth 1 only).
func (f *framer) valueDone(i int) {
	if f.nmem < maxMembers {
		f.mem[f.nmem].v1 = int32(i - f.start)
		f.nmem++
	}
}

func (f *framer) bad(b []byte, i int, what string) error {
	lo := max(i-40, f.start)
	hi := min(i+40, len(b))
	return fmt.Errorf("%w: QEMU sent something that is not JSON: %s at byte %d of the message (%q, the bad byte is %q)",
		ErrProtocol, what, i-f.start, b[lo:hi], b[i:i+1])
}
