package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
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
	if id, has := obj["id"]; has && !oob && !echoable(id) {
		return false
	}
	var compact bytes.Buffer
	json.Compact(&compact, b) // outside strings, only whitespace is not a token
	return validUnicode(compact.Bytes()) && !duplicateNames(b) &&
		depth(v) <= 1024 && tokens(v) <= 2<<20 && compact.Len() < 64<<20
}

// echoable reports whether QEMU echoes id as JSON that the library can
// match, and whether it is free of RunOOB's form.
func echoable(id any) bool {
	switch x := id.(type) {
	case json.Number:
		_, ierr := strconv.ParseInt(string(x), 10, 64)
		_, uerr := strconv.ParseUint(string(x), 10, 64)
		return ierr == nil || uerr == nil
	case string:
		rest, ok := strings.CutPrefix(x, "oob-")
		return !ok || rest == "" || strings.Trim(rest, "0123456789") != ""
	case map[string]any:
		for _, e := range x {
			if !echoable(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !echoable(e) {
				return false
			}
		}
	}
	return true
}

// validUnicode reports whether every string in compact JSON is what
// QEMU's parser accepts: UTF-8 (or modified UTF-8's C0 80) of scalar
// values that are not noncharacters, written raw or as escapes
// (surrogates only as pairs).
func validUnicode(b []byte) bool {
	b = bytes.ReplaceAll(b, []byte("\xc0\x80"), []byte("\\u0000")) // modified UTF-8's U+0000
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.Is(unicode.Noncharacter_Code_Point, r) {
			return false
		}
	}
	unit := func(h []byte) rune {
		u, _ := strconv.ParseUint(string(h), 16, 16)
		return rune(u)
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			i++
			continue
		}
		r := unit(b[i+2 : i+6])
		i += 5
		if utf16.IsSurrogate(r) {
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return false
			}
			if r = utf16.DecodeRune(r, unit(b[i+3:i+7])); r == utf8.RuneError {
				return false
			}
			i += 6
		}
		if unicode.Is(unicode.Noncharacter_Code_Point, r) {
			return false
		}
	}
	return true
}

// duplicateNames reports whether any object in b names a member twice
// (names decoded), reading b as a token stream.
func duplicateNames(b []byte) bool {
	b = bytes.ReplaceAll(b, []byte("\xc0\x80"), []byte(`\u0000`)) // one U+0000 to QEMU
	d := json.NewDecoder(bytes.NewReader(b))
	type level struct {
		names map[string]bool
		key   bool // the next token is a name
	}
	var stack []*level
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top != nil && top.names != nil {
					top.key = true
				}
				stack = append(stack, &level{names: map[string]bool{}, key: true})
				continue
			case '[':
				if top != nil && top.names != nil {
					top.key = true
				}
				stack = append(stack, &level{})
				continue
			default:
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			if top != nil && top.names != nil && top.key {
				if top.names[t] {
					return true
				}
				top.names[t] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.names != nil {
			top.key = true
		}
	}
}

func checkErr(b []byte, oob bool) error {
	_, err := checkCommand(b, oob)
	return err
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
	for _, s := range []string{`{"id":"\uffff"}`, `{"a":"\ud800"}`, `{"a":"\udc00\ud800"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud83f\udfff"}`,
		`{"a":1,"a":2}`, `{"a":{"b":1,"\u0062":2}}`, "{\"a\":\"\xef\xbf\xbf\xed\xa0\x80\"}", `{"id":1e400}`, `{"id":-0}`, `{"id":1.5}`,
		`{"id":"oob-1"}`, `{"id":"oob-\u0031"}`, `{"exec-\u006fob":"x"}`, "{\"a\xc0\x80\":1,\"a\\u0000\":2}"} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("query-\x01status\""), false)
	f.Add([]byte(strings.Repeat("n", maxPlainName+1)), false)
	f.Fuzz(func(t *testing.T, b []byte, oob bool) {
		c := newCall()
		if plain, err := c.encode(Command{Name: string(b)}); err != nil || plain && (!qemuTakes(c.msg, false) || checkErr(c.msg, false) != nil) {
			t.Fatalf("Command{Name: %.80q}: encoded as %.80q, plain, yet QEMU would not take it (err %v)", b, c.msg, err)
		}
		err := checkErr(b, oob)
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
		{"token bytes at the limit", str(64<<20 - 1 - envelopeBytes), ""},
		{"token bytes past the limit", str(64<<20 - envelopeBytes), "token bytes"},
	} {
		err := checkErr(tc.b, false)
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
		if checkErr(msg, false) != nil {
			b.Fatal("refused")
		}
	}
}
