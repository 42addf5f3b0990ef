package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// chunkReader delivers its input in the given chunk sizes (cycled).
type chunkReader struct {
	b     []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = max(1, r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	n = min(n, len(p), len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// viablePrefix reports, by encoding/json's own scanner, whether b (after
// leading whitespace) can still become a JSON object: empty, or a prefix
// the decoder stops on only for want of bytes.
func viablePrefix(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return true
	}
	if b[0] != '{' {
		return false
	}
	var v json.RawMessage
	err := json.NewDecoder(bytes.NewReader(b)).Decode(&v)
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// FuzzFramer checks the framer's contract on any input, delivered in any
// chunking: (1) every message it returns is a JSON object by
// encoding/json, and the messages are exactly the input's leading objects,
// whole and at their boundaries; (2) when it asks for more input at the end,
// what it holds can still become a JSON object; (3) when it fails, what it
// holds cannot (or breaks a limit).
func FuzzFramer(f *testing.F) {
	for _, s := range []string{`{"return": {}}` + "\r\n" + `{"event": "X", "data": {"a": [1, -2.5e3, true, null, "\u00e9\"}"]}}`,
		"{\"return\": {\"unterminated\": \"string}\r\n{\"return\": {}}\r\n", `{"a" "b"}`, `{"a": 01}`, `{"a":1 2}`, `{"a": tru}`, `[]`,
		"{\n  \"pretty\": [\n    1,\n    {}\n  ]\n}\r\n", `{"a":"\q"}`, `{"a":"\u12G4"}`, `{,}`, `{"a":[1,]}`,
		`{"return": [{"name": "a", "t": "b"}, {"c": ["d", "e"]}, {"f": null}], "id": "x", "k": "v"}`} {
		f.Add([]byte(s), []byte{1, 3, 7})
	}
	f.Fuzz(func(t *testing.T, in []byte, sizes []byte) {
		sz := make([]int, len(sizes))
		for i, s := range sizes {
			sz[i] = int(s)
		}
		fr := newFramer(&chunkReader{b: in, sizes: sz}, 1<<16)
		rest := in
		for {
			msg, err := fr.next()
			if err != nil {
				held := rest
				switch {
				case err == io.EOF:
					if len(bytes.TrimLeft(held, " \t\r\n")) != 0 {
						t.Fatalf("EOF with %q unreturned", held)
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
					if !viablePrefix(held) {
						t.Fatalf("waited for more input after %q, which cannot become a JSON object", held)
					}
				case errors.Is(err, ErrProtocol):
					if viablePrefix(held) && !strings.Contains(err.Error(), "nesting deeper") {
						t.Fatalf("rejected %q, which can still become a JSON object: %v", held, err)
					}
					if !strings.Contains(err.Error(), "at byte ") {
						t.Fatalf("protocol error does not name the offset: %v", err)
					}
				case errors.Is(err, ErrMessageTooLarge):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			// The next message must be exactly the next JSON value of the input.
			trimmed := bytes.TrimLeft(rest, " \t\r\n")
			if !bytes.HasPrefix(trimmed, msg) {
				t.Fatalf("message %q is not the next bytes of %q", msg, trimmed)
			}
			if !json.Valid(msg) || msg[0] != '{' {
				t.Fatalf("returned %q, which is not a JSON object", msg)
			}
			var v json.RawMessage
			d := json.NewDecoder(bytes.NewReader(trimmed))
			if err := d.Decode(&v); err != nil || !bytes.Equal(v, msg) {
				t.Fatalf("returned %q where encoding/json finds %q (%v)", msg, v, err)
			}
			rest = trimmed[len(msg):]
		}
	})
}

// TestFramerEverySplit: a stream of replies and events split at every byte
// boundary frames identically.
func TestFramerEverySplit(t *testing.T) {
	in := "{\"return\": {\"a\": [1, 2.5, -3e2, true, false, null, \"x\\\"y\\u00e9\"]}}\r\n" +
		`{"return": [{"name": "a", "t": "b"}, {"name": "c", "x": ["p", "q"]}, {"n": []}], "id": "i", "k": "v"}` + "\r\n" +
		`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}` + "\r\n{\n \"id\": \"oob-1\", \"return\": {}\n}"
	want, err := frames(t, strings.NewReader(in), 1<<20)
	if err != io.EOF || len(want) != 4 {
		t.Fatalf("whole: %q, %v", want, err)
	}
	for k := 1; k < len(in); k++ {
		got, err := frames(t, &chunkReader{b: []byte(in), sizes: []int{k, len(in)}}, 1<<20)
		if err != io.EOF || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("split at %d: %q, %v", k, got, err)
		}
	}
}

// TestFramerRejectsAtOnce: the framer fails on the first impossible byte,
// without waiting for the rest of the message, and shows where.
func TestFramerRejectsAtOnce(t *testing.T) {
	for _, in := range []string{"{\"a\": \"x\ny", `{"a":1 2`, `{"a": 01`, `{"a": tx`, `{"a":"\q`, `{"a" "b"`, `{,`, `{"a":[1,]`, `x`} {
		_, err := frames(t, strings.NewReader(in), 1<<20)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "at byte") {
			t.Errorf("%q: %v, want a protocol error naming the byte", in, err)
		}
	}
}

// repeatReader yields msg over and over, in reads of at most 64 KiB.
type repeatReader struct {
	msg []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), 64<<10)], r.msg[r.off:])
	if r.off += n; r.off == len(r.msg) {
		r.off = 0
	}
	return n, nil
}

// BenchmarkFramerSchema is the framer alone on query-qmp-schema's real
// reply (QEMU 7.2, 207 KB): the cost of checking structure-heavy JSON.
func BenchmarkFramerSchema(b *testing.B) {
	schema, err := os.ReadFile("testdata/qmp-schema-7.2.json")
	if err != nil {
		b.Fatal(err)
	}
	msg := append(append([]byte(`{"return": `), bytes.TrimSpace(schema)...), "}\r\n"...)
	f := newFramer(&repeatReader{msg: msg}, 64<<20)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := f.next()
		if err != nil || len(got) != len(msg)-2 {
			b.Fatalf("next: %d bytes, %v", len(got), err)
		}
	}
}
