package qmp

import (
	"strings"
	"testing"
)

// A value in a path is matched by its JSON type, may hold "." and "#" in
// double quotes or as a number, and only a value at the end of the path is
// the match's Value.
func TestSchemaPathValues(t *testing.T) {
	s := parseSchema72(t)
	for _, tc := range []struct {
		path  string
		ok    bool
		value string
	}{
		{`blockdev-add.driver=qcow2.file=node0`, true, "node0"},   // the reference branch
		{`blockdev-add.driver=qcow2.file="node0"`, true, "node0"}, // the same, quoted
		{`blockdev-add.driver=raw.file=null`, false, ""},          // QEMU refuses null there
		{`blockdev-add.driver=qcow2.file=42`, false, ""},          // and 42
		{`blockdev-add.driver=qcow2.file="42"`, true, "42"},       // but takes the string
		{`blockdev-add.driver=qcow2.backing=null`, true, "null"},  // BlockdevRefOrNull
		{`blockdev-add.driver=file.filename="/tmp/a.img"`, true, "/tmp/a.img"},
		{`blockdev-add.driver=file.filename="a#b.c"#deprecated`, false, ""}, // "#" inside quotes is not the feature
		{`blockdev-add.driver=file.read-only=true`, true, "true"},
		{`blockdev-add.driver=file.read-only="true"`, false, ""}, // a string, not a boolean
		{`query-migrate->ram.mbps=1.5`, true, "1.5"},
		{`query-migrate->ram.mbps=-2e3`, true, "-2e3"},
		{`query-migrate->ram.total=1.5`, false, ""}, // an integer
		{`set_password.protocol=vnc`, true, "vnc"},
		{`set_password.protocol=vnc.password`, true, ""}, // Value is the final one only
		{`set_password.protocol="vnc".password=x`, true, "x"},
	} {
		r, err := s.Lookup(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("Lookup(%s) = %v, want a match: %v", tc.path, err, tc.ok)
			continue
		}
		if err == nil && r.Value != tc.value {
			t.Errorf("Lookup(%s).Value = %q, want %q", tc.path, r.Value, tc.value)
		}
	}
	checkLookup(t, s, `blockdev-add.driver=file.filename=/tmp/a.img`, false, "goes in double quotes")
	checkLookup(t, s, `blockdev-add.driver=file.filename="/tmp`, false, "no closing quote")
	checkLookup(t, s, `blockdev-add.driver=file.filename=a=b`, false, "holds \"=\"")
	checkLookup(t, s, `query-migrate->ram.mbps=1.5.5`, false, "not a JSON number")
	checkLookup(t, s, `blockdev-add.driver=raw.file=null`, false, `does not accept null`)
}

// Enum values come from members[].name, which QEMU sends also when it
// hides the deprecated values list (-compat deprecated-output=hide).
func TestSchemaEnumMembersWithoutValues(t *testing.T) {
	s, _ := mustSchema(t, []schemaEntity{
		{"name": "c", "meta-type": "command", "arg-type": "args", "ret-type": "args"},
		{"name": "args", "meta-type": "object", "members": []schemaEntity{memberEntity("mode", "e")}},
		{"name": "e", "meta-type": "enum", "members": []schemaEntity{{"name": "on"}, {"name": "off", "features": []string{"deprecated"}}}},
	})
	checkLookup(t, s, "c.mode=on", true)
	checkLookup(t, s, "c.mode=off#deprecated", true)
	checkLookup(t, s, "c.mode=auto", false, "its values are on, off")
}

// A union that is a branch of a union (MigrationAddress's "socket" is
// SocketAddress, itself a union on "type") is flattened into it, as QEMU
// does: its discriminator narrows, and its branches' members are there.
func TestSchemaPathNestedUnion(t *testing.T) {
	rs := recordedSchemas(t)
	s := rs[len(rs)-1].s // QEMU 11.1: migration channels
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"migrate.channels.addr.transport=socket.type=inet.host", true},
		{"migrate.channels.addr.transport=socket.type=unix.path", true},
		{"migrate.channels.addr.transport=socket.host", true}, // any branch of socket
		{"migrate.channels.addr.transport=socket.type=unix.host", false},
		{"migrate.channels.addr.transport=exec.host", false},
		{"migrate.channels.addr.transport=socket.type=inet.port", true},
	} {
		if _, err := s.Lookup(tc.path); (err == nil) != tc.ok {
			t.Errorf("Lookup(%s) = %v, want a match: %v", tc.path, err, tc.ok)
		}
	}
}

// A string that reads as a JSON literal goes in double quotes, and the
// errors say so (ChardevBackendKind has a value "null").
func TestSchemaPathLiteralLookingStrings(t *testing.T) {
	s := parseSchema72(t)
	checkLookup(t, s, `chardev-add.backend.type="null"`, true)
	checkLookup(t, s, `chardev-add.backend.type="null".data`, true)
	checkLookup(t, s, `chardev-add.backend.type=null`, false, `it accepts the string: write "null"`)
	checkLookup(t, s, `chardev-add.backend.type=null.data`, false, `for the string "null", write "null"`)
}

// FuzzSchemaPath: any path splits into steps that rejoin into it, and
// Lookup answers it (no panic) on a real schema with unions in unions.
func FuzzSchemaPath(f *testing.F) {
	rs := recordedSchemas(f)
	s := rs[len(rs)-1].s
	for _, p := range []string{
		`blockdev-add.driver=qcow2.file="a.b#c"`, `migrate.channels.addr.transport=socket.type=inet.host`,
		`query-migrate->ram.mbps=-1.5e3`, `chardev-add.backend.type="null".data#deprecated`, `x->`, `a.b=c=d`,
		`blockdev-add.driver=file.filename="\"\\."`, `.`, `#`, `=`, `a..b`,
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		steps, feature, hasFeature, err := splitPath(path)
		if err == nil {
			rejoined := strings.Join(steps, ".")
			if hasFeature {
				rejoined += "#" + feature
			}
			if rejoined != path {
				t.Fatalf("splitPath(%q) = %q, %q: rejoins as %q", path, steps, feature, rejoined)
			}
		}
		s.Lookup(path)
	})
}
