package main

// The short command form and transaction blocks: turning what the user
// typed into the QMP commands to send.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// command is one QMP command to send, as QEMU will see it.
type command struct {
	Name      string         `json:"execute"`
	Arguments map[string]any `json:"arguments,omitempty"`
}

// action is one action of a transaction. Data is never nil: QEMU wants an
// object even for actions without arguments ("abort").
type action struct {
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

// tokenize splits a line at whitespace that is outside quotes ("..." with
// JSON escapes, '...' taken literally) and outside [...] and {...}, so
// that a value may be a JSON array or object with spaces in it.
func tokenize(line string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	inTok := false
	var stack []byte // open brackets
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' {
					j++
				}
			}
			if j >= len(line) {
				return nil, fmt.Errorf("unterminated string starting at column %d", i+1)
			}
			cur.WriteString(line[i : j+1])
			inTok = true
			i = j
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated string starting at column %d", i+1)
			}
			cur.WriteString(line[i : i+1+j+1])
			inTok = true
			i += j + 1
		case c == '[' || c == '{':
			stack = append(stack, c)
			cur.WriteByte(c)
			inTok = true
		case c == ']' || c == '}':
			open := byte('[')
			if c == '}' {
				open = '{'
			}
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return nil, fmt.Errorf("unbalanced %q at column %d", c, i+1)
			}
			stack = stack[:len(stack)-1]
			cur.WriteByte(c)
			inTok = true
		case (c == ' ' || c == '\t') && len(stack) == 0:
			if inTok {
				toks = append(toks, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	if inTok {
		toks = append(toks, cur.String())
	}
	return toks, nil
}

// parseValue turns the text after "key=" into a value: text in single
// quotes is that text; anything that is valid JSON (a number, true, false,
// null, "a string", [...], {...}) is that JSON; anything else is a string.
func parseValue(s string) any {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1]
	}
	if s != "" && json.Valid([]byte(s)) {
		var b bytes.Buffer
		if json.Compact(&b, []byte(s)) == nil {
			return json.RawMessage(b.Bytes())
		}
	}
	return s
}

// setDotted stores v at the dotted key in m, creating nested objects:
// setDotted(m, "file.driver", "file") gives {"file": {"driver": "file"}}.
func setDotted(m map[string]any, key string, v any) error {
	parts := strings.Split(key, ".")
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("bad key %q: empty name between dots", key)
		}
	}
	for i, p := range parts[:len(parts)-1] {
		switch sub := m[p].(type) {
		case nil:
			n := map[string]any{}
			m[p] = n
			m = n
		case map[string]any:
			m = sub
		default:
			return fmt.Errorf("key %q: %q already has a value", key, strings.Join(parts[:i+1], "."))
		}
	}
	last := parts[len(parts)-1]
	if old, ok := m[last]; ok {
		if _, isObj := old.(map[string]any); isObj {
			return fmt.Errorf("key %q: already set through a dotted key", key)
		}
		return fmt.Errorf("key %q given twice", key)
	}
	m[last] = v
	return nil
}

// parseArgs turns key=value tokens into an arguments object (nil when
// there are none).
func parseArgs(toks []string) (map[string]any, error) {
	if len(toks) == 0 {
		return nil, nil
	}
	args := map[string]any{}
	for _, t := range toks {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: expected key=value", t)
		}
		if err := setDotted(args, k, parseValue(v)); err != nil {
			return nil, err
		}
	}
	return args, nil
}

// parseShort parses qmp-shell's short form: a command name followed by
// key=value arguments.
func parseShort(line string) (command, error) {
	toks, err := tokenize(line)
	if err != nil {
		return command{}, err
	}
	if len(toks) == 0 {
		return command{}, errors.New("empty command")
	}
	if strings.ContainsAny(toks[0], "=\"'[]{}") {
		return command{}, fmt.Errorf("%q is not a command name", toks[0])
	}
	args, err := parseArgs(toks[1:])
	if err != nil {
		return command{}, err
	}
	return command{Name: toks[0], Arguments: args}, nil
}

// parseJSONCommand parses a whole QMP command written as a JSON object.
// An "id" is accepted and dropped: the library matches replies itself.
func parseJSONCommand(line string) (command, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return command{}, fmt.Errorf("bad JSON command: %v", err)
	}
	if dec.More() {
		return command{}, errors.New("bad JSON command: text after the object")
	}
	var cmd command
	for k, v := range raw {
		switch k {
		case "execute":
			if err := json.Unmarshal(v, &cmd.Name); err != nil || cmd.Name == "" {
				return command{}, errors.New(`bad JSON command: "execute" must be a non-empty string`)
			}
		case "arguments":
			if err := decodeObject(v, &cmd.Arguments); err != nil {
				return command{}, errors.New(`bad JSON command: "arguments" must be an object`)
			}
		case "id":
		case "exec-oob":
			return command{}, errors.New(`exec-oob is not supported here; use "execute"`)
		default:
			return command{}, fmt.Errorf("bad JSON command: unexpected member %q", k)
		}
	}
	if cmd.Name == "" {
		return command{}, errors.New(`bad JSON command: no "execute"`)
	}
	return cmd, nil
}

// decodeObject decodes a JSON object keeping numbers as written.
func decodeObject(b []byte, m *map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(m)
}

// parser turns input lines into commands, collecting the lines of a
// transaction block:
//
//	transaction( [property=value ...]
//	  action-type key=value ...
//	  ...
//	)
type parser struct {
	inTrans bool
	actions []action
	props   map[string]any
}

// errTransactionOpen is reported when input ends inside a transaction block.
var errTransactionOpen = errors.New("input ended inside transaction( ... ): nothing sent")

// feed takes one line. It returns the command to send, or nil when the line
// sent nothing (blank, a comment, or a line inside a transaction block).
func (p *parser) feed(line string) (*command, error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return nil, nil
	}
	if p.inTrans {
		return p.feedTrans(line)
	}
	if strings.HasPrefix(line, "{") {
		c, err := parseJSONCommand(line)
		return &c, err
	}
	if rest, ok := strings.CutPrefix(line, "transaction("); ok {
		toks, err := tokenize(rest)
		if err != nil {
			return nil, err
		}
		closed := len(toks) > 0 && toks[len(toks)-1] == ")"
		if closed {
			toks = toks[:len(toks)-1]
		}
		props, err := parseArgs(toks)
		if err != nil {
			return nil, fmt.Errorf("transaction properties: %v", err)
		}
		p.inTrans, p.actions, p.props = true, nil, props
		if closed {
			return p.finish()
		}
		return nil, nil
	}
	c, err := parseShort(line)
	return &c, err
}

func (p *parser) feedTrans(line string) (*command, error) {
	if line == ")" {
		return p.finish()
	}
	closing := false
	if strings.HasSuffix(line, " )") || strings.HasSuffix(line, "\t)") {
		closing = true
		line = strings.TrimSpace(line[:len(line)-1])
	}
	var a action
	if strings.HasPrefix(line, "{") {
		var raw struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		if err := dec.Decode(&raw); err != nil || raw.Type == "" {
			return nil, fmt.Errorf(`bad action: want {"type": ..., "data": {...}}`)
		}
		a = action{Type: raw.Type, Data: raw.Data}
	} else {
		c, err := parseShort(line)
		if err != nil {
			return nil, err
		}
		a = action{Type: c.Name, Data: c.Arguments}
	}
	if a.Data == nil {
		a.Data = map[string]any{}
	}
	p.actions = append(p.actions, a)
	if closing {
		return p.finish()
	}
	return nil, nil
}

func (p *parser) finish() (*command, error) {
	args := map[string]any{"actions": p.actions}
	if p.actions == nil {
		args["actions"] = []action{}
	}
	if p.props != nil {
		args["properties"] = p.props
	}
	p.reset()
	return &command{Name: "transaction", Arguments: args}, nil
}

// pending returns how many actions the open transaction block has, or -1
// when no block is open.
func (p *parser) pending() int {
	if !p.inTrans {
		return -1
	}
	return len(p.actions)
}

// reset drops an open transaction block.
func (p *parser) reset() { p.inTrans, p.actions, p.props = false, nil, nil }

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
