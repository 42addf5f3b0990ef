package qmptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// marshal encodes v compactly without HTML escaping: QEMU never turns
// '<', '>' or '&' into \u003c-style escapes, and a fake that did would
// hide client bugs in string handling.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// mustMarshal is marshal for values built by this package, which always
// encode; user-supplied values go through marshal and report errors.
func mustMarshal(v any) []byte {
	b, err := marshal(v)
	if err != nil {
		panic("qmptest: " + err.Error())
	}
	return b
}

// qemuStyle re-spaces compact JSON the way QEMU's QObject serializer does:
// ", " between elements and ": " after keys, nothing else. Clients are
// expected to cope with any whitespace, but mimicking QEMU byte for byte
// keeps transcripts from the fake comparable with real ones.
func qemuStyle(compact []byte) []byte {
	out := make([]byte, 0, len(compact)+len(compact)/8)
	inStr, esc := false, false
	for _, c := range compact {
		out = append(out, c)
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case ',', ':':
			out = append(out, ' ')
		}
	}
	return out
}

// member is one key/value pair of a JSON object, kept in input order so
// that error messages naming "the first offending member" are
// deterministic (a Go map would randomize them).
type member struct {
	key string
	val json.RawMessage
}

// errNotObject reports that a JSON value is not an object.
var errNotObject = errors.New("not a JSON object")

// objectMembers splits a JSON object into its members in input order.
func objectMembers(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		ms = append(ms, member{key: key, val: v})
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return nil, err
	}
	return ms, nil
}

// jsonKind returns the first significant byte of a JSON value, enough to
// tell objects, arrays, strings and scalars apart.
func jsonKind(v json.RawMessage) byte {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return 0
	}
	return v[0]
}
