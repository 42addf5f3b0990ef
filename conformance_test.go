package qmp

// The conformance test: every typed command, argument, return and event
// data struct is walked by reflection and checked against a QAPI schema,
// the 7.2 transcript in the unit test and the installed QEMU's own in
// TestQEMUConformance, so that a QEMU that renames or drops something
// fails here rather than in a user's program.
//
// Rules, for each struct field with a JSON name:
//   - the name is a member of the schema type the struct stands for (for
//     a union: a member of the union, of the branch the struct is
//     registered for, or, with no branch, of any branch);
//   - its Go type can carry the member's JSON type (bool, integer, number,
//     string or enum, list, object; interface{} and json.RawMessage take
//     anything; an alternate takes what one of its alternatives takes);
//   - arguments: an optional member has omitempty (so "not set" is not
//     sent) and a mandatory one does not (so a zero value is sent); an
//     optional bool, number or string is a pointer exactly when it is
//     listed in argPointers (QEMU reads its zero value differently from
//     its absence), and a plain value otherwise;
//   - replies and event data: an optional member is a pointer, slice, map
//     or interface, so its absence shows, or a string, where "" reads as
//     absent.
// Members QEMU marks deprecated are reported with t.Log, not failed.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

type conformance struct {
	s          *Schema
	problems   []string
	deprecated []string
	seen       map[[2]any]bool
	pointers   map[string]bool // the argPointers entries met
	// presence, when set, records what this schema has of the typed layer
	// ("command NAME", "event NAME", "Type.Field" and variant paths: true
	// when there, false when missing) instead of failing on what is
	// missing: checkVersions then holds the doc comments to it.
	presence map[string]bool
	// mandatory holds, in that mode, the omitempty arguments this schema
	// makes mandatory, and facts what each field is: checkVersions fails
	// the first only when every QEMU that has the member makes it
	// mandatory, and a field that some QEMU lacks if it cannot be left
	// out (arguments) or show its absence (replies).
	mandatory map[string]bool
	facts     map[string]fieldFacts
	argPaths  map[string]map[string]bool // the schema paths each argument field was met at
}

type fieldFacts struct {
	at                          string // the first schema path it was met at
	ret, omitempty, showsAbsent bool
}

// missing records that the schema lacks what key names, or fails.
func (c *conformance) missing(key string, format string, a ...any) {
	if c.presence != nil {
		c.presence[key] = false
		return
	}
	c.fail(format, a...)
}

func (c *conformance) present(key string) {
	if c.presence != nil {
		c.presence[key] = true
	}
}

// argPointers are the optional arguments whose zero value QEMU reads
// differently from their absence, with the reason; they are pointers, so
// that a zero can be sent. Every other optional argument is a plain value
// with omitempty, because leaving it out and sending its zero mean the
// same to QEMU (README, "Typed commands and the live schema").
// A key is "Type.Field", or "Type" for all of a type's fields.
var argPointers = map[string]string{
	"BlockdevBackupArgs.AutoFinalize":    "default true",
	"BlockdevBackupArgs.AutoDismiss":     "default true",
	"BlockdevMirrorArgs.AutoFinalize":    "default true",
	"BlockdevMirrorArgs.AutoDismiss":     "default true",
	"DriveBackupArgs.AutoFinalize":       "default true",
	"DriveBackupArgs.AutoDismiss":        "default true",
	"DriveMirrorArgs.AutoFinalize":       "default true",
	"DriveMirrorArgs.AutoDismiss":        "default true",
	"DriveMirrorArgs.Unmap":              "default true",
	"BlockdevOptionsFile.DropCache":      "default true",
	"BlockdevOptionsQcow2.LazyRefcounts": "absent: the image header's setting",
	"InetSocketAddress.IPv4":             "absent: either family; false: not this one",
	"InetSocketAddress.IPv6":             "absent: either family; false: not this one",
	"MigrationParameters":                "absent leaves a parameter as it is; a zero (\"\" for tls-creds turns TLS off) sets it",
	"ScreendumpArgs.Head":                "head 0 needs a device; absent does not",
	"MigrateIncomingArgs.ExitOnError":    "default true",
	"BlockdevOptions.ReadOnly":           "absent: a child node inherits its parent's (a backing node: on)",
	"BlockdevOptions.AutoReadOnly":       "absent: a child node inherits its parent's",
	"BlockdevOptions.ForceShare":         "absent: a child node inherits its parent's",
	"BlockdevCacheOptions":               "absent: a child node inherits its parent's; an empty cache object is refused",
	"BlockdevOptionsNull.Size":           "absent: 1 GiB; 0: an empty device",
	"BlockdevOptionsRaw.Size":            "absent: to the end of the file; 0: empty",
	"NBDServerStartArgs.MaxConnections":  "absent: 100 since QEMU 9.1; 0: unlimited",
	"AddFDArgs.FDSetID":                  "fd set 0 is a set; absent: a new one",
	"removeFDArgs.FD":                    "fd 0 is a descriptor; absent: the whole set",
}

func isScalar(k reflect.Kind) bool {
	switch k {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// run checks the whole typed layer against c.s.
func (c *conformance) run() {
	s := c.s
	for _, tc := range typedCommands {
		sc := s.Command(tc.name)
		if sc == nil {
			c.missing("command "+tc.name, "command %s is not in the schema", tc.name)
			continue
		}
		c.present("command " + tc.name)
		if isDeprecated(sc.Features) {
			c.deprecated = append(c.deprecated, tc.name)
		}
		if tc.args == nil {
			for _, m := range sc.Args.Members {
				if !m.Optional {
					c.fail("%s: the typed command sends no arguments, but %s is mandatory", tc.name, m.Name)
				}
			}
		} else {
			c.object(tc.name, tc.args, sc.Args, "", false)
		}
		if tc.ret != nil {
			c.value(tc.name+"->", tc.ret, sc.Returns, true)
		}
	}
	for _, v := range typedVariants {
		r, err := s.Lookup(v.path)
		if err != nil {
			c.missing(v.path, "%v: %v", v.t, err)
			continue
		}
		c.present(v.path)
		if r.Value != "" && r.Type.Tag != "" {
			c.object(v.path, v.t, r.Type, r.Value, v.ret)
		} else {
			c.value(v.path, v.t, r.Type, v.ret)
		}
	}
	names := make([]string, 0, len(typedEvents))
	for n := range typedEvents {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := s.Event(n)
		if e == nil {
			c.missing("event "+n, "event %s is not in the schema", n)
			continue
		}
		c.present("event " + n)
		if isDeprecated(e.Features) {
			c.deprecated = append(c.deprecated, n)
		}
		if t := typedEvents[n]; t != nil {
			c.object(n, t, e.Data, "", true)
		} else if len(e.Data.Members) > 0 {
			c.fail("event %s has data, but the typed layer decodes none", n)
		}
	}
}

func (c *conformance) fail(format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, a...))
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// object checks struct gt against object type st (branch: the union
// branch chosen, "" for none); ret says gt is read from QEMU.
func (c *conformance) object(where string, gt reflect.Type, st *SchemaType, branch string, ret bool) {
	for gt.Kind() == reflect.Pointer {
		gt = gt.Elem()
	}
	key := [2]any{gt, st}
	if branch != "" || c.seen[key] {
		if c.seen[[2]any{gt, st.Name + "=" + branch}] {
			return
		}
		c.seen[[2]any{gt, st.Name + "=" + branch}] = true
	}
	c.seen[key] = true
	if gt.Kind() != reflect.Struct {
		c.fail("%s: %v is not a struct", where, gt)
		return
	}
	if st.MetaType != "object" {
		c.fail("%s: %v stands for %s, not an object", where, gt, describeType(st))
		return
	}
	for i := 0; i < gt.NumField(); i++ {
		f := gt.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			c.fail("%s: field %v.%s has no JSON name", where, gt, f.Name)
			continue
		}
		omitempty := slices.Contains(strings.Split(opts, ","), "omitempty")
		at := where + "." + name
		m := st.Member(name, branch)
		inBranch := false
		if m == nil && branch == "" {
			for _, v := range st.Variants {
				if m = v.Type.Member(name, ""); m != nil {
					inBranch = true
					break
				}
			}
		}
		if m == nil {
			c.missing(gt.Name()+"."+f.Name, "%s: field %v.%s: the schema has no member %q there", at, gt, f.Name, name)
			continue
		}
		c.present(gt.Name() + "." + f.Name)
		k := f.Type.Kind()
		showsAbsent := k == reflect.Pointer || k == reflect.Slice || k == reflect.Map || k == reflect.Interface || k == reflect.String
		if c.argPaths != nil && !ret {
			key := gt.Name() + "." + f.Name
			if c.argPaths[key] == nil {
				c.argPaths[key] = map[string]bool{}
			}
			c.argPaths[key][at] = true
		}
		if c.facts != nil {
			if _, ok := c.facts[gt.Name()+"."+f.Name]; !ok {
				c.facts[gt.Name()+"."+f.Name] = fieldFacts{at, ret, omitempty, showsAbsent}
			}
		}
		if isDeprecated(m.Features) && !slices.Contains(c.deprecated, at) {
			c.deprecated = append(c.deprecated, at)
		}
		if ret {
			if m.Optional && !showsAbsent {
				c.fail("%s: member is optional, but field %v.%s (%v) cannot show its absence", at, gt, f.Name, f.Type)
			}
		} else {
			if m.Optional && !omitempty {
				c.fail("%s: member is optional, but field %v.%s has no omitempty (its zero value would be sent)", at, gt, f.Name)
			}
			if !m.Optional && omitempty && !inBranch && branch == "" {
				if c.mandatory != nil {
					c.mandatory[gt.Name()+"."+f.Name] = true
				} else {
					c.fail("%s: member is mandatory, but field %v.%s has omitempty (a zero value would not be sent)", at, gt, f.Name)
				}
			}
			if m.Optional {
				c.optionalArg(at, gt, f)
			}
		}
		c.value(at, f.Type, m.Type, ret)
	}
}

// optionalArg checks an optional argument against argPointers.
func (c *conformance) optionalArg(at string, gt reflect.Type, f reflect.StructField) {
	key := gt.Name() + "." + f.Name
	_, listed := argPointers[key]
	if !listed {
		key = gt.Name()
		_, listed = argPointers[key]
	}
	if listed && c.pointers != nil {
		c.pointers[key] = true
	}
	pointer := f.Type.Kind() == reflect.Pointer && isScalar(f.Type.Elem().Kind())
	switch {
	case pointer && !listed:
		c.fail("%s: field %v.%s is a pointer, but QEMU reads its zero value as its absence: make it a plain %v with omitempty, or list it in argPointers with the reason",
			at, gt, f.Name, f.Type.Elem())
	case listed && isScalar(f.Type.Kind()):
		c.fail("%s: field %v.%s is listed in argPointers (its zero is a value of its own), but is a plain %v, so a zero is never sent",
			at, gt, f.Name, f.Type)
	}
}

// value checks that Go type gt can carry values of schema type st.
func (c *conformance) value(where string, gt reflect.Type, st *SchemaType, ret bool) {
	if why := c.compatible(where, gt, st, ret); why != "" {
		c.fail("%s: %v cannot carry %s: %s", where, gt, describeType(st), why)
	}
}

// compatible returns "" when gt fits st, else why not. Struct members are
// checked (and reported) by object.
func (c *conformance) compatible(where string, gt reflect.Type, st *SchemaType, ret bool) string {
	for gt.Kind() == reflect.Pointer {
		gt = gt.Elem()
	}
	if gt == rawMessageType || gt.Kind() == reflect.Interface || st.MetaType == "builtin" && st.JSONType == "value" {
		return ""
	}
	if st.MetaType == "alternate" {
		for _, a := range st.Alternatives {
			sub := &conformance{s: c.s, seen: map[[2]any]bool{}}
			if sub.compatible(where, gt, a, ret) == "" && len(sub.problems) == 0 {
				if a.MetaType == "object" {
					c.object(where, gt, a, "", ret)
				}
				return ""
			}
		}
		return "no alternative fits"
	}
	builtin := func(types ...string) string {
		if st.MetaType == "builtin" && slices.Contains(types, st.JSONType) {
			return ""
		}
		return "the schema has " + describeType(st)
	}
	switch gt.Kind() {
	case reflect.Bool:
		return builtin("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return builtin("int")
	case reflect.Float32, reflect.Float64:
		return builtin("number", "int")
	case reflect.String:
		if st.MetaType == "enum" {
			return ""
		}
		return builtin("string")
	case reflect.Slice, reflect.Array:
		if st.MetaType != "array" {
			return "the schema has " + describeType(st)
		}
		return c.compatible(where, gt.Elem(), st.Element, ret)
	case reflect.Map:
		if st.MetaType != "object" {
			return "the schema has " + describeType(st)
		}
		return ""
	case reflect.Struct:
		if st.MetaType != "object" {
			return "the schema has " + describeType(st)
		}
		c.object(where, gt, st, "", ret)
		return ""
	}
	return "unsupported Go kind " + gt.Kind().String()
}

// parseSchema72 parses the QEMU 7.2 schema in testdata (the internal
// tests' counterpart of schema_test.go's schema72T).
func parseSchema72(tb testing.TB) *Schema {
	tb.Helper()
	raw, err := os.ReadFile("testdata/qmp-schema-7.2.json")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ParseSchema(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestConformanceCatchesMistakes proves the checker fails what it should.
func TestConformanceCatchesMistakes(t *testing.T) {
	s := parseSchema72(t)
	type badArgs struct {
		NodeName string `json:"nodename"`            // misspelt
		Size     string `json:"size"`                // an int in the schema
		Device   string `json:"device"`              // optional without omitempty
		Extra    int64  `json:"x-extra,omitempty"`   // not a member
		Sz       []int  `json:"node-name,omitempty"` // a string in the schema
	}
	type badRet struct {
		Device   string `json:"device"`
		Inserted struct {
			RO string `json:"ro"` // a bool
		} `json:"inserted"` // optional, not a pointer
	}
	type badJob struct {
		Compress     *bool `json:"compress,omitempty"`      // default false: plain
		AutoFinalize bool  `json:"auto-finalize,omitempty"` // default true: a pointer
	}
	argPointers["badJob.AutoFinalize"] = "default true"
	defer delete(argPointers, "badJob.AutoFinalize")
	c := &conformance{s: s, seen: map[[2]any]bool{}}
	c.object("blockdev-backup", reflect.TypeFor[badJob](), s.Command("blockdev-backup").Args, "", false)
	c.object("block_resize", reflect.TypeFor[badArgs](), s.Command("block_resize").Args, "", false)
	c.value("query-block->", reflect.TypeFor[[]badRet](), s.Command("query-block").Returns, true)
	c.object("blockdev-add.driver=file", reflect.TypeFor[BlockdevOptionsQcow2](), s.Command("blockdev-add").Args, "file", false)
	got := strings.Join(c.problems, "\n")
	for _, want := range []string{
		`block_resize.nodename: field qmp.badArgs.NodeName: the schema has no member "nodename"`,
		`block_resize.size: string cannot carry an int`,
		`block_resize.device: member is optional, but field qmp.badArgs.Device has no omitempty`,
		`block_resize.x-extra: field`,
		`block_resize.node-name: []int cannot carry a string`,
		`query-block->.inserted: member is optional, but field qmp.badRet.Inserted`,
		`query-block->.inserted.ro: string cannot carry a boolean`,
		`blockdev-add.driver=file.file: field qmp.BlockdevOptionsQcow2.File: the schema has no member "file"`,
		`blockdev-backup.compress: field qmp.badJob.Compress is a pointer, but QEMU reads its zero value as its absence`,
		`blockdev-backup.auto-finalize: field qmp.badJob.AutoFinalize is listed in argPointers`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not contain %q; got:\n%s", want, got)
		}
	}
	if len(c.problems) != 13 {
		t.Errorf("%d problems, want 13 (the four qcow2 options are not file options):\n%s", len(c.problems), got)
	}
}

// TestQEMUConformance checks the typed layer against the schema of the
// installed QEMU.
func TestQEMUConformance(t *testing.T) {
	t.Parallel()
	q := qemutest.Require(t, qemutest.Config{})
	m, err := NewMonitor(q.Sockets[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := m.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := m.Version()
	t.Logf("QEMU %d.%d.%d: %d commands, %d events", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro, len(s.Commands()), len(s.Events()))
	checkVersions(t, []recordedSchema{{fmt.Sprintf("%d.%d", v.QEMU.Major, v.QEMU.Minor), s}}, false)
}
