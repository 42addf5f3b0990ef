package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// frames runs the framer over input delivered by r and returns the messages.
func frames(t *testing.T, r io.Reader, max int) ([]string, error) {
	t.Helper()
	f := newFramer(r, max)
	var out []string
	for {
		msg, err := f.next()
		if err != nil {
			return out, err
		}
		out = append(out, string(msg))
	}
}

func TestFramerSplitsMessages(t *testing.T) {
	in := "{\"return\": {}}\r\n{\"a\": \"}{\\\"\"}\n\n  {\n  \"pretty\": [\n    1,\n    {}\n  ]\n}\r\n{}{\"x\":null}"
	want := []string{`{"return": {}}`, `{"a": "}{\""}`, "{\n  \"pretty\": [\n    1,\n    {}\n  ]\n}", `{}`, `{"x":null}`}
	for name, r := range map[string]io.Reader{
		"whole":   strings.NewReader(in),
		"onebyte": iotest.OneByteReader(strings.NewReader(in)),
		"half":    iotest.HalfReader(strings.NewReader(in)),
	} {
		got, err := frames(t, r, 1<<20)
		if err != io.EOF {
			t.Errorf("%s: err = %v, want io.EOF", name, err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: got %q\nwant %q", name, got, want)
		}
	}
}

func TestFramerErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"garbage\r\n", ErrProtocol},
		{`{"a": [}`, ErrProtocol},
		{`{"a": @}`, ErrProtocol},
		{`{"return": {}`, io.ErrUnexpectedEOF},
		{`{"a": "` + strings.Repeat("x", 5000) + `"}`, ErrMessageTooLarge},
		{strings.Repeat("[", 2000), ErrProtocol},
	} {
		_, err := frames(t, strings.NewReader(tc.in), 4096)
		if !errors.Is(err, tc.want) {
			t.Errorf("%.40q: err = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestFramerLargeMessage(t *testing.T) {
	big := `{"return": "` + strings.Repeat("y", 3<<20) + `"}`
	got, err := frames(t, strings.NewReader(big+"\r\n"+`{"return": 1}`), 64<<20)
	if err != io.EOF || len(got) != 2 || got[0] != big || got[1] != `{"return": 1}` {
		t.Fatalf("got %d messages, err %v", len(got), err)
	}
}

func TestSplitMembers(t *testing.T) {
	mb, err := splitMembers([]byte(`{"id": "o1", "error": {"class": "GenericError", "desc": "x"}, "return": null, "extra": [1, {"id": 2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(mb.id) != `"o1"` || string(mb.ret) != "null" || string(mb.err) != `{"class": "GenericError", "desc": "x"}` ||
		mb.present != hasReturn|hasError {
		t.Fatalf("got %+v", mb)
	}
	for _, bad := range []string{`{1: 2}`, `{"a" 1}`, `{"a": 1 "b": 2}`, `{"a": }`} {
		if _, err := splitMembers([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want a protocol error", bad, err)
		}
	}
}

// FuzzFramer checks the framer and member splitter against encoding/json:
// every valid object is framed whole with the same top-level members, and
// nothing panics on any input.
// FuzzEvent: the members the router takes from the framer's spans, and
// events parsed without reflection, agree with encoding/json.
func FuzzEvent(f *testing.F) {
	for _, s := range []string{`{"return": {}}`, `{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "X\\u00e9"}`, `{"event": "X", "data": {"a": "\"}"}, "timestamp": {"seconds": 1, "microseconds": 2}}`,
		`{"id": [1, 2], "return": "\u00e9"}`, `{"QMP": {"version": {}}}`, `{]`, `{"a":"\\"}`,
		`{"return": [{"name": "a", "t": "b"}, {"c": ["d", "e"]}, {"f": null}], "id": "x", "k": "v"}`,
		`{"timestamp": {"seconds": 1, "microseconds": 2, "seconds": 3}, "event": "X"}`, `{"timestamp": {"seconds": -0, "microseconds": 2 }, "event": "X"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFramer(iotest.OneByteReader(bytes.NewReader(in)), 1<<16)
		msg, err := fr.next()
		var obj map[string]json.RawMessage
		valid := json.Unmarshal(in, &obj) == nil && obj != nil
		if !valid {
			if err == nil {
				splitMembers(msg) // must not panic
			}
			return
		}
		if err != nil {
			t.Fatalf("valid object %q: %v", in, err)
		}
		mb, err := fr.membersOf(msg)
		if err != nil {
			t.Fatalf("valid object %q: %v", in, err)
		}
		if walked, err := splitMembers(msg); err != nil || fmt.Sprintf("%q", walked) != fmt.Sprintf("%q", mb) {
			t.Fatalf("members of %q: from spans %+v, walked %+v (%v)", in, mb, walked, err)
		}
		// Read whole, the framer takes its multi-byte shortcuts; the spans
		// must not change.
		whole := newFramer(bytes.NewReader(in), 1<<16)
		if wmsg, err := whole.next(); err != nil || !bytes.Equal(wmsg, msg) {
			t.Fatalf("read whole, %q framed as %q (%v), read a byte at a time as %q", in, wmsg, err, msg)
		} else if wmb, err := whole.membersOf(wmsg); err != nil || fmt.Sprintf("%q", wmb) != fmt.Sprintf("%q", mb) {
			t.Fatalf("members of %q read whole: %+v, a byte at a time %+v (%v)", in, wmb, mb, err)
		}
		if r, ok := obj["return"]; ok && !bytes.Equal(bytes.TrimSpace(r), mb.ret) {
			t.Fatalf("return %q, json says %q", mb.ret, r)
		}
		if _, ok := obj["event"]; ok != (mb.present&hasEvent != 0) {
			t.Fatalf("event presence differs for %q", in)
		}
		if mb.present&hasEvent == 0 {
			return
		}
		// Where encoding/json can decode the event (member names matched
		// exactly, as QEMU writes them), parseEvent must agree.
		var typ string
		var ts map[string]json.RawMessage
		if json.Unmarshal(obj["event"], &typ) != nil {
			return
		}
		if raw, ok := obj["timestamp"]; ok && json.Unmarshal(raw, &ts) != nil {
			return
		}
		e, sec, usec, err := parseEvent(mb, eventNames{})
		if err != nil {
			if ts != nil {
				return // e.g. 1e3 or 1.0: valid JSON numbers QEMU never sends
			}
			t.Fatalf("parseEvent(%q): %v", in, err)
		}
		if e.Type != typ || !bytes.Equal(e.Data, bytes.TrimSpace(obj["data"])) {
			t.Fatalf("parseEvent(%q) = %q %q, json says %q %q", in, e.Type, e.Data, typ, obj["data"])
		}
		for name, got := range map[string]int64{"seconds": sec, "microseconds": usec} {
			var want int64 = -1
			if raw, ok := ts[name]; ok && json.Unmarshal(raw, &want) != nil {
				return
			}
			if got != want {
				t.Fatalf("parseEvent(%q): %s = %d, json says %d", in, name, got, want)
			}
		}
	})
}
