package qmp

// Scanning JSON bytes
//
// The one set of byte-level helpers that every reader of raw JSON in the
// package uses: the framer (QEMU's output), the router's member split
// (wire.go), the command check (check.go), the log's summaries (log.go)
// and the deprecation check (deprecation.go). The framer validates a message's grammar once; the others run
// only on bytes the framer or encoding/json has already made, so they skip
// rather than validate, and never read past the slice they are given.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf8"
)

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// stopMask sets the high bit of each byte of x (eight bytes of a string,
// little-endian) that ends a run of plain string bytes: '"', '\\' or a
// control character. The lowest one set is exact; those above it may be
// borrows, so only the lowest is used.
func stopMask(x uint64) uint64 {
	q := x ^ (lo8 * '"')
	s := x ^ (lo8 * '\\')
	return (((q - lo8) &^ q) | ((s - lo8) &^ s) | ((x - lo8*0x20) &^ x)) & hi8
}

// strStop returns the index of the first byte at or after i that ends a
// run of plain string bytes (stopMask's); len(b) if none. It tests eight
// bytes at a time.
func strStop(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if t := stopMask(binary.LittleEndian.Uint64(b[i:])); t != 0 {
			return i + bits.TrailingZeros64(t)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}

// asciiStop is strStop that also stops at the first byte of a multi-byte
// UTF-8 sequence (any byte ≥ 0x80), which the command check decodes.
func asciiStop(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if t := stopMask(x) | x&hi8; t != 0 {
			return i + bits.TrailingZeros64(t)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
			return i
		}
	}
	return i
}

// byte classes outside tokens
const (
	cBad uint8 = iota
	cSpace
	cQuote
	cOpenObj
	cCloseObj
	cOpenArr
	cCloseArr
	cColon
	cComma
	cNum
	cKw
)

var class = func() (t [256]uint8) {
	for _, c := range " \t\r\n" {
		t[c] = cSpace
	}
	t['"'], t['{'], t['}'], t['['], t[']'], t[':'], t[','] = cQuote, cOpenObj, cCloseObj, cOpenArr, cCloseArr, cColon, cComma
	for c := '0'; c <= '9'; c++ {
		t[c] = cNum
	}
	t['-'] = cNum
	t['t'], t['f'], t['n'] = cKw, cKw, cKw
	return t
}()

func isSpace(c byte) bool { return class[c] == cSpace }

func isHex(c byte) bool { return c-'0' < 10 || (c|0x20)-'a' < 6 }

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

// skipLiteral returns the index after the number, true, false or null
// that starts at b[i]; i when none does.
func skipLiteral(b []byte, i int) int {
	for i < len(b) && isLiteral(b[i]) {
		i++
	}
	return i
}

// isLiteral accepts the bytes of numbers, true, false and null.
func isLiteral(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z':
		return true
	}
	switch c {
	case '-', '+', '.', 'E':
		return true
	}
	return false
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
	return skipLiteral(b, i)
}

// unquote returns the value of JSON string v, or v's bytes as they are
// when v is not a string.
func unquote(v []byte) string {
	if len(v) >= 2 && v[0] == '"' && asciiStop(v, 1) == len(v)-1 && v[len(v)-1] == '"' {
		return string(v[1 : len(v)-1]) // ASCII, no escapes
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// memberName returns a member name as eachMember gives it (the bytes
// between the quotes) decoded: QEMU takes "\u0065xecute" for "execute".
func memberName(k []byte) string {
	if bytes.IndexByte(k, '\\') < 0 && utf8.Valid(k) {
		return string(k)
	}
	return unquote(append(append([]byte{'"'}, k...), '"'))
}
