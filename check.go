package qmp

// Checking a command before it is sent
//
// Matching replies by order (command.go) rests on QEMU answering every
// in-band command with exactly one reply. QEMU's JSON streamer
// (qobject/json-streamer.c) breaks that when a message exceeds one of its
// limits or contains a byte its lexer rejects: it reports an error, forgets
// what it had, and parses the rest of the message as new input, so one
// command draws many id-less errors, each taken for the reply of a later
// caller. A value that is not an object (42, null, true) has no closing
// bracket: QEMU cannot tell where it ends and answers only when the next
// command's bytes arrive. So every command is checked here, in one pass over
// its encoded bytes, and refused (nothing sent) unless QEMU is certain to
// take it as one message:
//
//   - it is one JSON object;
//   - brackets and braces nest at most 1,024 deep, the command's own object
//     included (QEMU's MAX_NESTING);
//   - it has at most 2,097,152 tokens (MAX_TOKEN_COUNT) and at most 64 MiB
//     of token bytes (MAX_TOKEN_SIZE; whitespace is not a token), counted as
//     the streamer counts them: each bracket, brace, colon and comma is a
//     token, and so is each whole string, number and keyword;
//   - no string holds a byte that QEMU's lexer rejects: the bytes 0xC0, 0xC1
//     and 0xF5 to 0xFF, which never occur in valid UTF-8 (encoding/json
//     replaces them in Go strings, but json.RawMessage passes them through);
//   - an in-band command has no top-level "exec-oob" member, whose reply
//     would overtake others (RunOOB sends those).
//
// QEMU versions differ by one token at the limits (7.2 checks the limits
// before the closing token, 9.x after it); the bounds above hold for both.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// The limits of QEMU's JSON streamer.
const (
	qemuMaxNesting    = 1024
	qemuMaxTokens     = 2 << 20
	qemuMaxTokenBytes = 64 << 20
)

// ErrInvalidCommand matches (errors.Is) every command refused before
// sending because QEMU could not take it as exactly one message; the error
// is a *CommandError saying why. Nothing was sent, and the connection and
// other callers are unaffected.
var ErrInvalidCommand = errors.New("qmp: command refused before sending")

// CommandError describes a command refused before sending.
type CommandError struct {
	// Limit names the QEMU limit the command exceeds: "nesting", "tokens"
	// or "token bytes"; empty when the command is refused for its shape.
	Limit string
	// Value and Max are the command's figure and QEMU's limit for Limit.
	Value, Max int
	// Reason says what is wrong, for the error text.
	Reason string
}

func (e *CommandError) Error() string {
	return "qmp: command not sent: " + e.Reason
}

// Is reports whether target is ErrInvalidCommand.
func (e *CommandError) Is(target error) bool { return target == ErrInvalidCommand }

func limitError(limit string, value, max int, what string) *CommandError {
	return &CommandError{Limit: limit, Value: value, Max: max,
		Reason: fmt.Sprintf("%s %d, but QEMU's JSON parser accepts at most %d in one message and would split it into several, answering each part", what, value, max)}
}

// checkCommand reports whether QEMU takes msg, an encoded command, as
// exactly one message; oob allows a top-level "exec-oob" member.
func checkCommand(msg []byte, oob bool) error {
	i := skipSpace(msg, 0)
	if i == len(msg) || msg[i] != '{' {
		shown := msg[i:min(len(msg), i+40)]
		return &CommandError{Reason: fmt.Sprintf("a command must encode to a JSON object, but it encodes to %q (QEMU would wait for more bytes to know where such a value ends)", shown)}
	}
	depth, maxDepth, tokens, tokenBytes := 0, 0, 0, 0
	keyStart := -1 // offset of the last top-level string, a member name if ':' follows
	for i < len(msg) {
		c := msg[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		case '{', '[':
			if depth++; depth > maxDepth {
				maxDepth = depth
			}
		case '}', ']':
			depth--
		case ':':
			if depth == 1 && keyStart >= 0 && !oob && string(msg[keyStart:i]) == `"exec-oob"` {
				return &CommandError{Reason: `the command has an "exec-oob" member: use RunOOB for out-of-band commands, whose replies may overtake in-band ones`}
			}
		case ',':
		case '"':
			j, bad := stringEnd(msg, i)
			if bad >= 0 {
				return &CommandError{Reason: fmt.Sprintf("byte %d of the command is 0x%02X inside a string, which QEMU's JSON lexer rejects (it is never valid UTF-8)", bad, msg[bad])}
			}
			if depth == 1 {
				keyStart = i
			}
			tokens++
			tokenBytes += j - i
			i = j
			continue
		default:
			j := i
			for j < len(msg) && isLiteral(msg[j]) && msg[j] != ',' && msg[j] != ':' && !isSpace(msg[j]) {
				j++
			}
			if j == i {
				return &CommandError{Reason: fmt.Sprintf("byte %d of the command (%q) is not JSON", i, msg[i])}
			}
			tokens++
			tokenBytes += j - i
			i = j
			continue
		}
		tokens++
		tokenBytes++
		i++
		if depth == 0 {
			if c != '}' && c != ']' {
				return &CommandError{Reason: "the command is not a single JSON object"}
			}
			if err := trailing(msg, i); err != nil {
				return err
			}
			break
		}
	}
	if depth != 0 {
		return &CommandError{Reason: "the command's JSON is truncated"}
	}
	switch {
	case maxDepth > qemuMaxNesting:
		return limitError("nesting", maxDepth, qemuMaxNesting, "brackets and braces in the command (its own object included) nest")
	case tokens > qemuMaxTokens:
		return limitError("tokens", tokens, qemuMaxTokens, "the command has JSON tokens numbering")
	case tokenBytes > qemuMaxTokenBytes:
		return limitError("token bytes", tokenBytes, qemuMaxTokenBytes, "the command's JSON tokens total bytes numbering")
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
// index of the first byte in it that QEMU's lexer rejects (-1 if none).
// b is valid JSON, so the string is terminated.
func stringEnd(b []byte, i int) (end, bad int) {
	i++
	for {
		// Skip plain ASCII eight bytes at a time.
		for ; i+8 <= len(b); i += 8 {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ (lo8 * '"')
			s := x ^ (lo8 * '\\')
			t := ((q - lo8) &^ q) | ((s - lo8) &^ s) | ((x - lo8*0x20) &^ x) | x
			if t &= hi8; t != 0 {
				i += bits.TrailingZeros64(t) >> 3
				break
			}
		}
		if i >= len(b) {
			return len(b), -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, -1
		case c == '\\':
			i += 2
		case c < 0x20 || c == 0xC0 || c == 0xC1 || c >= 0xF5:
			return i, i
		default:
			i++
		}
	}
}
