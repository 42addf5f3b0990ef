package qmp

// Encoding commands: a Command is written without reflection for its
// envelope, everything else with encoding/json, and the result checked
// (check.go) before it may be sent.

import (
	"encoding/json"
	"fmt"
)

// prepare encodes cmd and makes sure QEMU takes it as exactly one message
// (check.go). A Command with a plain name and no arguments is one by
// construction (`{"execute":"name"}`: one object, five tokens, ASCII), so
// only the others pay for the check.
func (c *call) prepare(cmd interface{}) error {
	plain, err := c.encode(cmd)
	if err != nil || plain {
		return err
	}
	c.id, err = checkCommand(c.msg, false)
	return err
}

// maxPlainName bounds the names prepare trusts without a check, far below
// QEMU's token size limit.
const maxPlainName = 1 << 20

// encode writes cmd's JSON into c.msg, and reports whether it is a Command
// with a plain name and no arguments. Command values skip reflection for
// the envelope; their arguments use encoding/json as always.
func (c *call) encode(cmd interface{}) (plain bool, err error) {
	var name string
	var args interface{}
	switch v := cmd.(type) {
	case Command:
		name, args = v.Name, v.Arguments
	case *Command:
		if v == nil {
			return false, &CommandError{Reason: "the command is a nil *Command"}
		}
		name, args = v.Name, v.Arguments
	default:
		b, err := json.Marshal(cmd)
		if err != nil {
			return false, &CommandError{Reason: fmt.Sprintf("the command (a %T) does not encode to JSON", cmd), Err: err}
		}
		c.msg = b
		return false, nil
	}
	var ab []byte
	if args != nil {
		if ab, err = json.Marshal(args); err != nil {
			return false, &CommandError{Member: "arguments", Reason: fmt.Sprintf("the arguments of %s (a %T) do not encode to JSON", name, args), Err: err}
		}
	}
	if n := len(`{"execute":"","arguments":}`) + len(name) + len(ab); n > cap(c.msg) {
		c.msg = make([]byte, 0, n)
	}
	c.msg = append(c.msg, `{"execute":`...)
	if plain = plainString(name); plain {
		c.msg = append(append(append(c.msg, '"'), name...), '"')
	} else {
		c.msg = appendString(c.msg, name)
	}
	if ab != nil {
		c.msg = append(c.msg, `,"arguments":`...)
		c.msg = append(c.msg, ab...)
	}
	c.msg = append(c.msg, '}')
	return plain && ab == nil && len(name) <= maxPlainName, nil
}

// appendString appends s as a JSON string, as encoding/json would.
func appendString(b []byte, s string) []byte {
	if !plainString(s) {
		q, _ := json.Marshal(s)
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainString reports whether QEMU and encoding/json write every byte of s
// as is inside a JSON string (printable ASCII, nothing they escape), and so
// read them back as is.
func plainString[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// commandParts extracts the name and arguments of any command value.
func commandParts(cmd interface{}) (string, json.RawMessage, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return "", nil, &CommandError{Reason: fmt.Sprintf("the command (a %T) does not encode to JSON", cmd), Err: err}
	}
	var parts struct {
		Name      string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(b, &parts); err != nil || parts.Name == "" {
		return "", nil, &CommandError{Member: "execute", Reason: fmt.Sprintf("the command %.80s names no command in a string \"execute\" member", b)}
	}
	return parts.Name, parts.Arguments, nil
}
