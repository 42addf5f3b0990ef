package qmp_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	qmp "github.com/0xef53/go-qmp/v2"
)

// schema72File is QEMU 7.2.22's query-qmp-schema reply (its "return"
// value), from /work/shared/qemu/transcripts/qmp-schema.txt.
const schema72File = "testdata/qmp-schema-7.2.json"

var (
	schema72Once sync.Once
	schema72     *qmp.Schema
	schema72Raw  []byte
	schema72Err  error
)

// schema72T returns the parsed 7.2 schema, parsed once per test binary.
func schema72T(t testing.TB) *qmp.Schema {
	t.Helper()
	schema72Once.Do(func() {
		schema72Raw, schema72Err = os.ReadFile(schema72File)
		if schema72Err == nil {
			schema72, schema72Err = qmp.ParseSchema(schema72Raw)
		}
	})
	if schema72Err != nil {
		t.Fatalf("parsing %s: %v", schema72File, schema72Err)
	}
	return schema72
}

func TestSchemaParse72(t *testing.T) {
	s := schema72T(t)
	if n := len(s.Commands()); n != 216 {
		t.Errorf("%d commands, want 216", n)
	}
	if n := len(s.Events()); n != 52 {
		t.Errorf("%d events, want 52", n)
	}
	c := s.Command("blockdev-add")
	if c == nil || c.Args.MetaType != "object" || c.Args.Tag != "driver" {
		t.Fatalf("blockdev-add = %+v, want a command whose arguments are a union on driver", c)
	}
	if c.AllowOOB {
		t.Error("blockdev-add allows OOB")
	}
	if !s.Command("migrate-pause").AllowOOB {
		t.Error("migrate-pause does not allow OOB")
	}
	nn := c.Args.Member("node-name", "")
	if nn == nil || !nn.Optional || nn.Type.MetaType != "builtin" || nn.Type.JSONType != "string" {
		t.Errorf("blockdev-add node-name = %+v, want an optional string", nn)
	}
	if d := c.Args.Member("driver", ""); d == nil || d.Optional || d.Type.MetaType != "enum" || !d.Type.HasValue("qcow2") {
		t.Errorf("blockdev-add driver = %+v, want a mandatory enum with qcow2", d)
	}
	file := c.Args.Variant("file")
	if file == nil || file.Member("filename", "") == nil || c.Args.Member("aio", "file") == nil {
		t.Error("blockdev-add's file branch has no filename or aio")
	}
	if c.Args.Member("aio", "") != nil {
		t.Error("Member(aio, \"\") found a branch member without a branch")
	}
	if c.Args.Member("aio", "qcow2") != nil {
		t.Error("Member(aio, qcow2) found a member of another branch")
	}
	if !slices.Contains(s.Command("drive-backup").Features, "deprecated") {
		t.Error("drive-backup is not deprecated in 7.2")
	}
	if e := s.Event("BLOCK_JOB_READY"); e == nil || e.Data.Member("device", "") == nil {
		t.Errorf("BLOCK_JOB_READY = %+v, want data with device", e)
	}
	if s.Type("str") == nil || s.Type("str").JSONType != "string" || s.Type("int").JSONType != "int" {
		t.Error("builtins str and int are missing or wrong")
	}
	if s.Command("no-such-command") != nil || s.Command("query-status") == nil || s.Event("SHUTDOWN") == nil || s.Event("shutdown") != nil {
		t.Error("Command/Event disagree with the schema")
	}
	// 7.2's one deprecated enum value: TransactionActionKind drive-backup.
	if _, err := s.Lookup("transaction.actions.type=drive-backup#deprecated"); err != nil {
		t.Error(err)
	}
}

func TestSchemaParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{}`, "cannot unmarshal"},
		{`[{"name":"x","meta-type":"command","arg-type":"0","ret-type":"0"}]`, `command x refers to type "0"`},
		{`[{"name":"0","meta-type":"object","members":[{"name":"a","type":"9"}]}]`, `member a of object 0 refers to type "9"`},
		{`[{"name":"0","meta-type":"widget"}]`, `unknown meta-type "widget"`},
		{`[{"name":"0","meta-type":"object","members":[]},{"name":"0","meta-type":"enum","values":[]}]`, `defined twice`},
		{`[{"name":"1","meta-type":"array","element-type":"7"}]`, `array 1 refers to type "7"`},
	} {
		_, err := qmp.ParseSchema([]byte(tc.in))
		if err == nil || !errors.Is(err, qmp.ErrSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSchema(%s) = %v, want an ErrSchema containing %q", tc.in, err, tc.want)
		}
	}
	// A minimal valid schema, with types referenced before they are defined.
	s, err := qmp.ParseSchema([]byte(`[{"name":"c","meta-type":"command","arg-type":"1","ret-type":"0"},
		{"name":"1","meta-type":"object","members":[{"name":"xs","type":"[int]","default":null}]},
		{"name":"[int]","meta-type":"array","element-type":"int"},
		{"name":"0","meta-type":"object","members":[]},{"name":"int","meta-type":"builtin","json-type":"int"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Has("c.xs=12") || s.Has("c.xs=a") || !s.Command("c").Args.Members[0].Optional {
		t.Error("minimal schema: c.xs should be an optional list of int")
	}
}

func TestSchemaPath(t *testing.T) {
	s := schema72T(t)
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"blockdev-add", true},
		{"SHUTDOWN", true},
		{"SHUTDOWN.guest", true},
		{"SHUTDOWN.reason=guest-shutdown", true},
		{"SHUTDOWN.reason=bored", false},
		{"BLOCK_JOB_READY.len", true},
		{"blockdev-add.node-name", true},
		{"blockdev-add.driver=file", true},
		{"blockdev-add.driver=file.filename", true},
		{"blockdev-add.driver=file.aio=io_uring", true},
		{"blockdev-add.driver=file.aio=threads", true},
		{"blockdev-add.driver=file.aio=bogus", false},
		{"blockdev-add.driver=qcow2.aio", false},                      // not in the qcow2 branch
		{"blockdev-add.aio=native", true},                             // any branch
		{"blockdev-add.driver=qcow2.file.driver=file.filename", true}, // through an alternate
		{"blockdev-add.driver=qcow2.file.filename", true},
		{"blockdev-add.driver=no-such-driver", false},
		{"blockdev-add.read-only=true", true},
		{"blockdev-add.read-only=maybe", false},
		{"block_resize.size=1024", true},
		{"block_resize.size=big", false},
		{"migrate-set-capabilities.capabilities.capability=events", true},
		{"migrate-set-capabilities.capabilities.capability=telepathy", false},
		{"object-add.qom-type=memory-backend-file.mem-path", true},
		{"object-add.qom-type=iothread.mem-path", false},
		{"query-block->inserted.image.virtual-size", true},
		{"query-block->device", true},
		{"query-block->no-such", false},
		{"query-block->", true},
		{"query-status->status=running", true},
		{"drive-backup#deprecated", true},
		{"blockdev-backup#deprecated", false},
		{"blockdev-add.driver=file.x-check-cache-dropped#unstable", true},
		{"transaction.actions.type=drive-backup#deprecated", true},
		{"transaction.actions.type=blockdev-backup#deprecated", false},
		{"no-such-command", false},
		{"SHUTDOWN->guest", false},
		{"blockdev-add.", false},
		{"blockdev-add.driver=", false},
		{"blockdev-add.a=b=c", false},
		{"#deprecated", false},
		{"drive-backup#", false},
		{"query-status.status", false}, // query-status takes no arguments
		{"blockdev-add.node-name.deeper", false},
	} {
		if got := s.Has(tc.path); got != tc.ok {
			_, err := s.Lookup(tc.path)
			t.Errorf("Has(%q) = %v, want %v (Lookup: %v)", tc.path, got, tc.ok, err)
		}
	}
}

func TestSchemaPathMatch(t *testing.T) {
	s := schema72T(t)
	r, err := s.Lookup("blockdev-add.driver=file.aio=io_uring")
	if err != nil {
		t.Fatal(err)
	}
	if r.Command == nil || r.Command.Name != "blockdev-add" || r.Member == nil || r.Member.Name != "aio" ||
		!r.Member.Optional || r.Type.MetaType != "enum" || r.Value != "io_uring" {
		t.Errorf("Lookup = %+v, want blockdev-add's optional enum member aio with value io_uring", r)
	}
	r, err = s.Lookup("blockdev-add.driver=file.x-check-cache-dropped")
	if err != nil || !r.HasFeature("unstable") || r.HasFeature("deprecated") {
		t.Errorf("x-check-cache-dropped: %+v, %v; want the feature unstable only", r, err)
	}
	r, err = s.Lookup("SHUTDOWN")
	if err != nil || r.Event == nil || r.Command != nil || r.Member != nil || r.Type != s.Event("SHUTDOWN").Data {
		t.Errorf("Lookup(SHUTDOWN) = %+v, %v", r, err)
	}
}

func TestSchemaPathErrors(t *testing.T) {
	s := schema72T(t)
	for _, tc := range []struct {
		path, matched string
		is            error
		reason        []string
	}{
		{"blockdev-add.driver=file.aoi", "blockdev-add.driver=file", qmp.ErrNotInSchema, []string{`no member "aoi"`, "filename", "aio"}},
		{"blockdev-add.driver=file.aio=bogus", "blockdev-add.driver=file.aio", qmp.ErrNotInSchema, []string{`does not accept "bogus"`, "io_uring"}},
		{"no-such", "", qmp.ErrNotInSchema, []string{`no command or event "no-such"`}},
		{"blockdev-add.node-name.x", "blockdev-add.node-name", qmp.ErrNotInSchema, []string{"a string has no members"}},
		{"drive-backup#unstable", "drive-backup", qmp.ErrNotInSchema, []string{`feature "unstable" is not there`, "deprecated"}},
		{"blockdev-add.node-name=x.y", "blockdev-add.node-name", qmp.ErrNotInSchema, []string{"not a union discriminator"}},
		{"blockdev-add..x", "blockdev-add", qmp.ErrSchemaPathSyntax, []string{`step "" is not`}},
		{"SHUTDOWN->x", "SHUTDOWN", qmp.ErrSchemaPathSyntax, []string{"returns nothing"}},
	} {
		_, err := s.Lookup(tc.path)
		var pe *qmp.SchemaPathError
		if !errors.As(err, &pe) || !errors.Is(err, tc.is) {
			t.Errorf("Lookup(%q) = %v, want a *SchemaPathError wrapping %v", tc.path, err, tc.is)
			continue
		}
		if pe.Path != tc.path || pe.Matched != tc.matched {
			t.Errorf("Lookup(%q): Path %q, Matched %q; want Matched %q", tc.path, pe.Path, pe.Matched, tc.matched)
		}
		for _, w := range tc.reason {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Lookup(%q): %q does not contain %q", tc.path, err, w)
			}
		}
	}
}
