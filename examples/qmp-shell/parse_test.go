package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := marshal(v, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseShort(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"query-status", `{"execute":"query-status"}`},
		{"  query-status  ", `{"execute":"query-status"}`},
		{"device_del id=usb0", `{"arguments":{"id":"usb0"},"execute":"device_del"}`},
		{"blockdev-add driver=null-co node-name=n0 size=4194304",
			`{"arguments":{"driver":"null-co","node-name":"n0","size":4194304},"execute":"blockdev-add"}`},
		{"blockdev-add driver=qcow2 node-name=q0 file.driver=file file.filename=/tmp/a.qcow2",
			`{"arguments":{"driver":"qcow2","file":{"driver":"file","filename":"/tmp/a.qcow2"},"node-name":"q0"},"execute":"blockdev-add"}`},
		{"x a.b.c=1 a.b.d=2 a.e=3", `{"arguments":{"a":{"b":{"c":1,"d":2},"e":3}},"execute":"x"}`},
		// JSON values: numbers, booleans, null, arrays, objects (with spaces), strings.
		{"x n=-1.5e3 t=true f=false z=null", `{"arguments":{"f":false,"n":-1.5e3,"t":true,"z":null},"execute":"x"}`},
		{`x l=[1, "two", {"three": 3}] o={"a": [1, 2]}`, `{"arguments":{"l":[1,"two",{"three":3}],"o":{"a":[1,2]}},"execute":"x"}`},
		{`x s="hello world" q='it is' id="123"`, `{"arguments":{"id":"123","q":"it is","s":"hello world"},"execute":"x"}`},
		{`x empty= eq=a=b`, `{"arguments":{"empty":"","eq":"a=b"},"execute":"x"}`},
		// Not JSON: strings.
		{"x a=True b=1x d=0x10 e=/dev/null", `{"arguments":{"a":"True","b":"1x","d":"0x10","e":"/dev/null"},"execute":"x"}`},
	} {
		c, err := parseShort(tc.line)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if got := mustJSON(t, c); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.line, got, tc.want)
		}
	}
}

func TestParseShortErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"x a=1 a=2", `key "a" given twice`},
		{"x a=1 a.b=2", `"a" already has a value`},
		{"x a.b=2 a=1", `already set through a dotted key`},
		{"x a..b=1", "empty name between dots"},
		{"x id", `"id": expected key=value`},
		{"x =1", `"=1": expected key=value`},
		{"x c=[ d=1", `unclosed '['`},
		{`x s="abc`, "unterminated string"},
		{"x s=]", `unbalanced ']'`},
		{"id=x", "is not a command name"},
	} {
		_, err := parseShort(tc.line)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.line, err, tc.want)
		}
	}
}

func TestParseJSONCommand(t *testing.T) {
	var p parser
	c, err := p.feed(`{"execute": "device_del", "arguments": {"id": "x", "n": 1.50}, "id": 7}`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, c), `{"arguments":{"id":"x","n":1.50},"execute":"device_del"}`; got != want {
		t.Fatalf("got %s, want %s (the id dropped, numbers as written)", got, want)
	}
	for line, want := range map[string]string{
		`{"execute": 1}`:                         `"execute" must be a non-empty string`,
		`{"arguments": {}}`:                      `no "execute"`,
		`{"execute": "x", "arguments": [1]}`:     `"arguments" must be an object`,
		`{"execute": "x", "bogus": 1}`:           `unexpected member "bogus"`,
		`{"exec-oob": "migrate-pause"}`:          `exec-oob is not supported`,
		`{"execute": "x"} {"execute": "y"}`:      "text after the object",
		`{"execute": "x"`:                        "bad JSON command",
		`{"execute": "x", "arguments": {"a": }}`: "bad JSON command",
	} {
		if _, err := p.feed(line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", line, err, want)
		}
	}
}

func TestParserTransaction(t *testing.T) {
	var p parser
	feed := func(line string) *command {
		t.Helper()
		c, err := p.feed(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		return c
	}
	for _, l := range []string{"transaction(", "  block-dirty-bitmap-add node=n0 name=b0 persistent=false", "", "# a comment", "abort",
		`{"type": "block-dirty-bitmap-clear", "data": {"node": "n0", "name": "b0"}}`} {
		if c := feed(l); c != nil {
			t.Fatalf("%q sent %s before the closing )", l, mustJSON(t, c))
		}
		if p.pending() < 0 {
			t.Fatalf("after %q: not in a transaction", l)
		}
	}
	if n := p.pending(); n != 3 {
		t.Fatalf("pending %d actions, want 3", n)
	}
	c := feed(")")
	want := `{"arguments":{"actions":[` +
		`{"data":{"name":"b0","node":"n0","persistent":false},"type":"block-dirty-bitmap-add"},` +
		`{"data":{},"type":"abort"},` +
		`{"data":{"name":"b0","node":"n0"},"type":"block-dirty-bitmap-clear"}]},"execute":"transaction"}`
	if c == nil || mustJSON(t, c) != want {
		t.Fatalf("transaction:\n got %v\nwant %s", c, want)
	}
	if p.pending() >= 0 {
		t.Fatal("still in a transaction after )")
	}

	// Properties on the opening line; an action line ending in " )" closes.
	feed("transaction( completion-mode=grouped")
	c = feed("abort )")
	if got, want := mustJSON(t, c), `{"arguments":{"actions":[{"data":{},"type":"abort"}],"properties":{"completion-mode":"grouped"}},"execute":"transaction"}`; got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	// All on one line, and empty.
	c = feed("transaction( )")
	if got, want := mustJSON(t, c), `{"arguments":{"actions":[]},"execute":"transaction"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// A bad action line is an error and leaves the block open.
	feed("transaction(")
	if _, err := p.feed("abort x"); err == nil {
		t.Fatal("bad action accepted")
	}
	if _, err := p.feed(`{"type": "abort", "dta": {}}`); err == nil {
		t.Fatal("action with an unknown member accepted")
	}
	if p.pending() != 0 {
		t.Fatalf("pending %d after bad actions, want 0", p.pending())
	}
	p.reset()
	if p.pending() >= 0 {
		t.Fatal("reset left the block open")
	}
}

func TestArgLines(t *testing.T) {
	got := argLines([]string{"stop", "device_del", "id=usb0", "query-status", "qom-set path=/x", "property=y", "value=a b", `{"execute":"cont"}`})
	want := []string{"stop", "device_del id=usb0", "query-status", `qom-set path=/x property=y value="a b"`, `{"execute":"cont"}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("argLines:\n got %q\nwant %q", got, want)
	}
	c, err := parseShort(got[3])
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := json.Marshal(c.Arguments["value"]); string(v) != `"a b"` {
		t.Fatalf("value %s", v)
	}
}

func TestSpaced(t *testing.T) {
	in := `{"a":"x:y, \"q\\\" ,z","b":[1,2]}`
	want := `{"a": "x:y, \"q\\\" ,z", "b": [1, 2]}`
	if got := string(spaced([]byte(in))); got != want {
		t.Fatalf("spaced(%s) = %s, want %s", in, got, want)
	}
}
