package qmp

// Checking a command before it is sent
//
// Matching replies by order (command.go) rests on QEMU answering every
// in-band command with exactly one reply. QEMU's JSON streamer
// (qobject/json-streamer.c) breaks that when a message exceeds one of its
// limits or contains a byte its lexer rejects: it reports an error, forgets
// what it had, and parses the rest of the message as new input, so one
// command draws many id-less errors. Its parser (qobject/json-parser.c)
// refuses more: a string that is not valid Unicode, or an object that names
// a member twice, draws one id-less "JSON parse error" that no caller can be
// matched with. A value that is not an object (42, null, true) has no
// closing bracket: QEMU cannot tell where it ends and answers only when the
// next command's bytes arrive. So every command is checked here, in one pass
// over its encoded bytes, and refused (nothing sent) unless QEMU is certain
// to take it as one message and answer it:
//
//   - it is one JSON object;
//   - brackets and braces nest at most 1,024 deep, the command's own object
//     included (QEMU's MAX_NESTING);
//   - it has at most 2,097,152 tokens (MAX_TOKEN_COUNT) and less than 64 MiB
//     of token bytes (MAX_TOKEN_SIZE, which the last token may not reach;
//     whitespace is not a token), counted as the streamer counts them: each
//     bracket, brace, colon and comma is a token, and so is each whole
//     string, number and keyword;
//   - every string is valid UTF-8 or the bytes C0 80 (U+0000 in the
//     modified UTF-8 QEMU uses; its lexer rejects the bytes 0xFE and 0xFF,
//     its parser every other malformed sequence and the UTF-8 forms of
//     surrogates) and holds no Unicode noncharacter (U+FDD0 to
//     U+FDEF, and U+FFFE and U+FFFF of every plane), raw or escaped; a \u
//     escape of a surrogate must be a high one followed by a low one.
//     encoding/json writes Go strings as valid UTF-8, but noncharacters are
//     valid UTF-8, and json.RawMessage passes any byte through;
//   - no object names a member twice (names compared as QEMU compares them,
//     after their escapes are decoded);
//   - an in-band command has no top-level "exec-oob" member, whose reply
//     would overtake others (RunOOB sends those), and its "id", if any, is
//     one QEMU echoes as valid JSON and not one of the ids RunOOB uses.
//
// QEMU versions differ by one token at the limits (7.2 checks the limits
// before the closing token, 9.x after it); the bounds above hold for both.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The limits of QEMU's JSON streamer.
const (
	qemuMaxNesting    = 1024
	qemuMaxTokens     = 2 << 20
	qemuMaxTokenBytes = 64<<20 - 1
)

func limitError(limit string, value, max int, what string) *CommandError {
	return &CommandError{Limit: limit, Value: value, Max: max,
		Reason: fmt.Sprintf("%s %d, but QEMU's JSON parser accepts at most %d in one message and would split it into several, answering each part", what, value, max)}
}

// frame is an open object or array.
type frame struct {
	obj   bool
	name  []byte              // the member being read (objects), decoded
	index int                 // the element being read (arrays)
	keys  int                 // where this object's member names start in check's keys
	set   map[string]struct{} // its names, once there are too many to compare one by one
}

// maxLinearKeys is how many member names of one object are compared one by
// one before they go into a map: a linear search is faster for the few
// members commands have, and the map keeps a huge object linear.
const maxLinearKeys = 16

// checkCommand reports whether QEMU takes msg, an encoded command, as
// exactly one message and answers it; oob allows a top-level "exec-oob"
// member. It returns the canonical form of the top-level "id", if any
// (canonicalID).
func checkCommand(msg []byte, oob bool) (id string, err error) {
	// Typical commands fit these on the stack: the check allocates nothing.
	var frameBuf [8]frame
	var keyBuf [16][]byte
	idv, err := check(msg, oob, frameBuf[:0], keyBuf[:0])
	if err != nil || idv == nil {
		return "", err
	}
	return canonicalID(idv)
}

// check is checkCommand's pass over msg. frames are the open objects and
// arrays, keys the member names of the open objects (innermost last),
// both empty, with room the pass may use.
func check(msg []byte, oob bool, frames []frame, keys [][]byte) (id []byte, err error) {
	i := skipSpace(msg, 0)
	if i == len(msg) || msg[i] != '{' {
		shown := msg[i:min(len(msg), i+40)]
		return nil, &CommandError{Reason: fmt.Sprintf("a command must encode to a JSON object, but it encodes to %q (QEMU would wait for more bytes to know where such a value ends)", shown)}
	}
	maxDepth, tokens, tokenBytes := 0, 0, 0
	expectKey := false // the next string is a member name
	for i < len(msg) {
		c := msg[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		case '{', '[':
			frames = append(frames, frame{obj: c == '{', keys: len(keys)})
			maxDepth = max(maxDepth, len(frames))
			expectKey = c == '{'
		case '}', ']':
			if len(frames) == 0 {
				return nil, &CommandError{Reason: "the command's JSON is not balanced"}
			}
			f := &frames[len(frames)-1]
			keys = keys[:f.keys]
			*f = frame{}
			frames = frames[:len(frames)-1]
		case ':':
			if len(frames) == 1 {
				name := frames[0].name
				if !oob && string(name) == "exec-oob" {
					return nil, &CommandError{Member: "exec-oob", Reason: `an in-band command may not have this member: use RunOOB for out-of-band commands, whose replies may overtake in-band ones`}
				}
				if !oob && string(name) == "id" {
					vs := skipSpace(msg, i+1)
					id = msg[vs:skipValue(msg, vs)]
					if err := checkInbandID(id); err != nil {
						return nil, err
					}
				}
			}
		case ',':
			if f := &frames[len(frames)-1]; f.obj {
				expectKey = true
			} else {
				f.index++
			}
		case '"':
			j, bad, why := stringEnd(msg, i)
			if bad >= 0 {
				return nil, &CommandError{Member: path(frames, expectKey, msg[i:j]), Reason: fmt.Sprintf("byte %d of the command begins %s, which QEMU's JSON parser refuses", bad, why)}
			}
			if expectKey {
				if keys, err = addKey(frames, keys, msg[i:j]); err != nil {
					return nil, err
				}
				expectKey = false
			}
			tokens++
			tokenBytes += j - i
			i = j
			continue
		default:
			j := skipLiteral(msg, i)
			if j == i {
				return nil, &CommandError{Reason: fmt.Sprintf("byte %d of the command (%q) is not JSON", i, msg[i])}
			}
			tokens++
			tokenBytes += j - i
			i = j
			continue
		}
		tokens++
		tokenBytes++
		i++
		if len(frames) == 0 {
			if c != '}' && c != ']' {
				return nil, &CommandError{Reason: "the command is not a single JSON object"}
			}
			if err := trailing(msg, i); err != nil {
				return nil, err
			}
			break
		}
	}
	if len(frames) != 0 {
		return nil, &CommandError{Reason: "the command's JSON is truncated"}
	}
	switch {
	case maxDepth > qemuMaxNesting:
		return nil, limitError("nesting", maxDepth, qemuMaxNesting, "brackets and braces in the command (its own object included) nest")
	case tokens > qemuMaxTokens:
		return nil, limitError("tokens", tokens, qemuMaxTokens, "the command has JSON tokens numbering")
	case tokenBytes > qemuMaxTokenBytes:
		return nil, limitError("token bytes", tokenBytes, qemuMaxTokenBytes, "the command's JSON tokens total bytes numbering")
	}
	return id, nil
}

// addKey records tok, a member name as written (quotes included), in the
// innermost object, refusing it if the object already has it, and returns
// keys with it.
func addKey(frames []frame, keys [][]byte, tok []byte) ([][]byte, error) {
	name := tok[1 : len(tok)-1]
	if bytes.IndexByte(name, '\\') >= 0 || bytes.Contains(name, modifiedNUL) {
		// Compared as QEMU stores them: escapes decoded, and U+0000 (as
		// \u0000 or C0 80) one and the same.
		var s string
		json.Unmarshal(bytes.ReplaceAll(tok, modifiedNUL, []byte(`\u0000`)), &s) // cannot fail: stringEnd accepted it
		name = []byte(s)
	}
	f := &frames[len(frames)-1]
	f.name = name
	dup := false
	if f.set != nil {
		_, dup = f.set[string(name)]
		f.set[string(name)] = struct{}{}
	} else {
		for _, n := range keys[f.keys:] {
			if bytes.Equal(n, name) {
				dup = true
				break
			}
		}
		if keys = append(keys, name); len(keys)-f.keys > maxLinearKeys {
			f.set = make(map[string]struct{}, 2*maxLinearKeys)
			for _, n := range keys[f.keys:] {
				f.set[string(n)] = struct{}{}
			}
			keys = keys[:f.keys]
		}
	}
	if dup {
		return keys, &CommandError{Member: path(frames, false, nil), Reason: "an object names this member twice, which QEMU's JSON parser refuses"}
	}
	return keys, nil
}

// path names the member being read, as "arguments.props[2].id"; when key
// is set, tok is a member name not yet recorded.
func path(frames []frame, key bool, tok []byte) string {
	var b strings.Builder
	for n, f := range frames {
		name := f.name
		last := n == len(frames)-1
		if last && key {
			name = bytes.Trim(tok, `"`) // as written: it may not decode
		}
		switch {
		case f.obj && name != nil:
			if n > 0 {
				b.WriteByte('.')
			}
			b.Write(name)
		case !f.obj && !(last && key):
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	return b.String()
}

// checkInbandID refuses an in-band command's id that QEMU would not echo
// exactly (canonicalID), or that has the form of RunOOB's ids, whose
// replies it could take.
func checkInbandID(id []byte) error {
	key, err := canonicalID(id)
	if err != nil {
		return &CommandError{Member: "id", Reason: err.Error() + ", so its reply could not be matched; use a short string or a small integer"}
	}
	if isOOBID(key) {
		return &CommandError{Member: "id", Reason: fmt.Sprintf("the id %s has the form RunOOB gives its own commands (\"oob-\" and digits); use another", id)}
	}
	return nil
}

func trailing(msg []byte, i int) error {
	if j := skipSpace(msg, i); j < len(msg) {
		return &CommandError{Reason: fmt.Sprintf("the command is more than one JSON value (%q follows the first)", msg[j:min(len(msg), j+40)])}
	}
	return nil
}

// stringEnd returns the index after the string starting at b[i], and the
// index of the first character in it that QEMU's lexer or parser refuses
// (-1 if none) with what it is. The library checks only what
// encoding/json wrote, so b is valid JSON, but it never reads past b.
func stringEnd(b []byte, i int) (end, bad int, why string) {
	i++
	for {
		if i = asciiStop(b, i); i >= len(b) {
			return len(b), len(b) - 1, "a string that does not end"
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, -1, ""
		case c == '\\' && (i+1 >= len(b) || b[i+1] == 'u' && i+6 > len(b)):
			return len(b), i, "an escape that does not end"
		case c == '\\' && b[i+1] == 'u':
			r, n := unicodeEscape(b[i:])
			switch {
			case r < 0:
				return i, i, fmt.Sprintf("%q, a surrogate escape that is not a high one followed by a low one", b[i:i+n])
			case noncharacter(r):
				return i, i, fmt.Sprintf("%q, an escape of the Unicode noncharacter U+%04X", b[i:i+n], r)
			}
			i += n
		case c == '\\':
			i += 2
		case c < 0x20:
			return i, i, fmt.Sprintf("the control character 0x%02X, which must be escaped", c)
		case c < utf8.RuneSelf:
			i++
		case c == 0xC0 && i+1 < len(b) && b[i+1] == 0x80:
			i += 2 // modifiedNUL
		default:
			r, n := utf8.DecodeRune(b[i:])
			switch {
			case r == utf8.RuneError && n == 1:
				return i, i, fmt.Sprintf("the byte 0x%02X, which is not valid UTF-8 there", c)
			case noncharacter(r):
				return i, i, fmt.Sprintf("the Unicode noncharacter U+%04X", r)
			}
			i += n
		}
	}
}

// modifiedNUL is U+0000 in the modified UTF-8 QEMU stores strings in.
var modifiedNUL = []byte{0xC0, 0x80}

// unicodeEscape decodes the \uXXXX escape at the start of b, and a second
// one after it when the first is a high surrogate; it returns the code
// point and the bytes read, or -1 for a surrogate that is not so paired.
func unicodeEscape(b []byte) (rune, int) {
	r := hex4(b[2:6])
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return -1, 6
	case r < 0xD800 || r > 0xDBFF:
		return r, 6
	}
	if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
		return -1, 6
	}
	lo := hex4(b[8:12])
	if lo < 0xDC00 || lo > 0xDFFF {
		return -1, 12
	}
	return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// noncharacter reports whether r is one of the 66 code points Unicode
// reserves as noncharacters, which QEMU's parser refuses.
func noncharacter(r rune) bool {
	return r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE
}
