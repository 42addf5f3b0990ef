package qmp

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzScan proves the shared scanning helpers (scan.go) against
// encoding/json: on any input they never panic or read past it; on a valid
// JSON value skipValue spans it exactly, eachMember yields encoding/json's
// members in order, unquote decodes a string as encoding/json does, and
// the eight-bytes-at-a-time stops agree with a byte-by-byte loop.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` { "execute" : "x\"y" , "arguments" : {"k":[1,{"q":"}"}]} } `,
		`{"return": {}, "id": "a\\"}`, `"caf\u00e9 \ud83d\ude00"`, `[true,false,null,-1.5e+3]`,
		`{"event":"STOP","timestamp":{"seconds":1,"microseconds":2}}`, "\"\x7f\xc3\xa9 plain ascii run\"",
		`{"a":"\\\\","b":"\"","c":""}`, `{"` + string(bytes.Repeat([]byte("x"), 40)) + `":0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := 0; i <= len(b); i++ {
			if got, want := strStop(b, i), naiveStop(b, i, false); got != want {
				t.Fatalf("strStop(%q, %d) = %d, want %d", b, i, got, want)
			}
			if got, want := asciiStop(b, i), naiveStop(b, i, true); got != want {
				t.Fatalf("asciiStop(%q, %d) = %d, want %d", b, i, got, want)
			}
			skipValue(b, i)
		}
		eachMember(b, func(k, v []byte) {})
		describeMsg(b)
		u := unquote(b)
		if !json.Valid(b) {
			return
		}
		i := skipSpace(b, 0)
		end := skipValue(b, i)
		if skipSpace(b, end) != len(b) {
			t.Fatalf("skipValue(%q, %d) = %d: the value does not end there", b, i, end)
		}
		switch b[i] {
		case '"':
			var want string
			json.Unmarshal(b, &want)
			if u != want && bytes.Equal(b, bytes.TrimSpace(b)) {
				t.Fatalf("unquote(%q) = %q, encoding/json says %q", b, u, want)
			}
		case '{':
			var got [][2]string
			if err := eachMember(b[i:end], func(k, v []byte) { got = append(got, [2]string{string(k), string(v)}) }); err != nil {
				t.Fatalf("eachMember(%q): %v", b[i:end], err)
			}
			want := jsonMembers(t, b)
			if len(got) != len(want) {
				t.Fatalf("eachMember(%q): %d members, encoding/json has %d", b, len(got), len(want))
			}
			for j := range got {
				if k := memberName([]byte(got[j][0])); k != want[j][0] || got[j][1] != want[j][1] {
					t.Fatalf("eachMember(%q): member %d is %q: %s, encoding/json has %q: %s", b, j, k, got[j][1], want[j][0], want[j][1])
				}
			}
		}
	})
}

func naiveStop(b []byte, i int, ascii bool) int {
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || ascii && c >= 0x80 {
			return i
		}
	}
	return i
}

// jsonMembers returns the members of the object b as encoding/json reads
// them: names decoded, values as their raw bytes.
func jsonMembers(t *testing.T, b []byte) [][2]string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token()
	var out [][2]string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]string{k.(string), string(v)})
	}
	return out
}
