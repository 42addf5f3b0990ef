package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// qemuTakes decides, independently of checkCommand, whether QEMU's
// streamer takes valid JSON b as exactly one message: it decodes b with
// encoding/json and counts depth, tokens and token bytes on the decoded
// value, as json-streamer.c counts them.
func qemuTakes(b []byte, oob bool) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil || d.More() {
		return false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if _, has := obj["exec-oob"]; has && !oob {
		return false
	}
	var depth func(any) int
	var tokens func(any) int
	depth = func(v any) int {
		m := 0
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				m = max(m, depth(e))
			}
			return m + 1
		case []any:
			for _, e := range x {
				m = max(m, depth(e))
			}
			return m + 1
		}
		return 0
	}
	tokens = func(v any) int {
		switch x := v.(type) {
		case map[string]any:
			n := 2 + max(len(x)-1, 0) // braces and commas
			for _, e := range x {
				n += 2 + tokens(e) // name and colon
			}
			return n
		case []any:
			n := 2 + max(len(x)-1, 0)
			for _, e := range x {
				n += tokens(e)
			}
			return n
		}
		return 1
	}
	var compact bytes.Buffer
	json.Compact(&compact, b) // outside strings, only whitespace is not a token
	for _, c := range compact.Bytes() {
		if c == 0xC0 || c == 0xC1 || c >= 0xF5 {
			return false // only strings can hold them in valid JSON
		}
	}
	return depth(v) <= 1024 && tokens(v) <= 2<<20 && compact.Len() <= 64<<20
}

// FuzzCommandCheck: checkCommand accepts exactly what QEMU takes as one
// message (computed independently above), and never panics on any input.
// And with the input as a command's name: a command prepare lets through
// unchecked as plain is one QEMU takes.
func FuzzCommandCheck(f *testing.F) {
	for _, s := range []string{`{"execute":"query-status"}`, `{"execute":"x","arguments":{"a":[1,{"b":null}],"c":"\u00e9\""}}`,
		`42`, `null`, `[]`, `{"exec-oob":"migrate-pause","id":1}`, "{\"id\":\"\xff\"}", `{} {}`, `{"a":` + strings.Repeat("[", 1030) + strings.Repeat("]", 1030) + `}`} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("query-\x01status\""), false)
	f.Add([]byte(strings.Repeat("n", maxPlainName+1)), false)
	f.Fuzz(func(t *testing.T, b []byte, oob bool) {
		c := newCall()
		if plain, err := c.encode(Command{Name: string(b)}); err != nil || plain && (!qemuTakes(c.msg, false) || checkCommand(c.msg, false) != nil) {
			t.Fatalf("Command{Name: %.80q}: encoded as %.80q, plain, yet QEMU would not take it (err %v)", b, c.msg, err)
		}
		err := checkCommand(b, oob)
		if !json.Valid(b) {
			return // the library checks only what encoding/json produced
		}
		if want := qemuTakes(b, oob); (err == nil) != want {
			t.Fatalf("checkCommand(%q, oob=%v) = %v, but QEMU takes it as one message: %v", b, oob, err, want)
		}
		if err != nil && !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("error %v does not match ErrInvalidCommand", err)
		}
	})
}

// TestCheckCommandLimits probes each limit at its bound and one past it.
func TestCheckCommandLimits(t *testing.T) {
	nest := func(n int) []byte { // n levels in all, the command object included
		return []byte(`{"execute":"x","arguments":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	// {"execute":"x","arguments":[0,0,...]}: 8 tokens of envelope, 2 brackets, 2k-1 in the array
	zeros := func(k int) []byte {
		return []byte(`{"execute":"x","arguments":[` + strings.TrimSuffix(strings.Repeat("0,", k), ",") + `]}`)
	}
	str := func(n int) []byte { // a string token of n bytes, quotes included
		return []byte(`{"execute":"x","arguments":"` + strings.Repeat("a", n-2) + `"}`)
	}
	const envelopeTokens = 8 + 2 // { "execute" : "x" , "arguments" : } plus [ ]
	const envelopeBytes = len(`{"execute":"x","arguments":}`)
	for _, tc := range []struct {
		name  string
		b     []byte
		limit string
	}{
		{"depth 1024", nest(1024), ""},
		{"depth 1025", nest(1025), "nesting"},
		{"tokens at the limit", zeros((2<<20 - envelopeTokens + 1) / 2), ""}, // 2,097,151: the parity allows no closer
		{"tokens past the limit", zeros((2<<20-envelopeTokens+1)/2 + 1), "tokens"},
		{"token bytes at the limit", str(64<<20 - envelopeBytes), ""},
		{"token bytes past the limit", str(64<<20 - envelopeBytes + 1), "token bytes"},
	} {
		err := checkCommand(tc.b, false)
		var ce *CommandError
		if tc.limit == "" && err != nil || tc.limit != "" && (!errors.As(err, &ce) || ce.Limit != tc.limit) {
			t.Errorf("%s: %v, want limit %q", tc.name, err, tc.limit)
		}
		if tc.limit != "" && qemuTakes(tc.b, false) || tc.limit == "" && !qemuTakes(tc.b, false) {
			t.Errorf("%s: the independent count disagrees", tc.name)
		}
	}
}

// BenchmarkCheckCommand is what the check adds to every Run (a typical
// device_del; compare with the whole Run in bench_test.go).
func BenchmarkCheckCommand(b *testing.B) {
	msg := []byte(`{"execute":"device_del","arguments":{"id":"virtio-disk1"}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if checkCommand(msg, false) != nil {
			b.Fatal("refused")
		}
	}
}
