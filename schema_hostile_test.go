package qmp

// The schema against a hostile QEMU: query-qmp-schema's reply is QEMU's to
// choose, so no schema, however its types refer to each other, may make
// an operation overflow the stack or cost more than the schema's size.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/0xef53/go-qmp/v2/qmptest"
)

// schemaEntity is one element of a query-qmp-schema reply, for building schemas.
type schemaEntity map[string]any

func memberEntity(name, typ string, features ...string) schemaEntity {
	m := schemaEntity{"name": name, "type": typ}
	if len(features) > 0 {
		m["features"] = features
	}
	return m
}

// mustSchema encodes es and parses it.
func mustSchema(t testing.TB, es []schemaEntity) (*Schema, []byte) {
	t.Helper()
	raw, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSchema(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s, raw
}

// workOf runs f and returns the heap allocations it made, a measure of
// its work that, unlike time, is the same on every machine. It counts the
// whole process, so it takes the least of three runs: the first may fill
// caches (fmt's, a sync.Pool emptied by a GC), and the fuzzing engine
// allocates now and then in other goroutines.
func workOf(f func()) (allocs, bytes uint64) {
	allocs, bytes = math.MaxUint64, math.MaxUint64
	var before, after runtime.MemStats
	for range 3 {
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		allocs = min(allocs, after.Mallocs-before.Mallocs)
		bytes = min(bytes, after.TotalAlloc-before.TotalAlloc)
	}
	return allocs, bytes
}

// checkLookup checks Lookup(path) against want: whether it matches, and, for
// a miss, words its error contains.
func checkLookup(t *testing.T, s *Schema, path string, ok bool, words ...string) {
	t.Helper()
	_, err := s.Lookup(path)
	if (err == nil) != ok {
		t.Errorf("Lookup(%q) = %v, want a match: %v", path, err, ok)
		return
	}
	for _, w := range words {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Lookup(%q) = %v, want an error containing %q", path, err, w)
		}
	}
}

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testMonitor is enough of a Monitor for the deprecation hook.
func testMonitor() *Monitor { return &Monitor{log: discardLogger} }

func TestSchemaCycleThroughArray(t *testing.T) {
	s, _ := mustSchema(t, []schemaEntity{
		{"name": "c", "meta-type": "command", "arg-type": "args", "ret-type": "self"},
		{"name": "args", "meta-type": "object", "members": []schemaEntity{
			memberEntity("self", "self"), memberEntity("pair", "p1"), memberEntity("dep", "int", "deprecated")}},
		{"name": "self", "meta-type": "array", "element-type": "self"}, // a list of itself
		{"name": "p1", "meta-type": "array", "element-type": "p2"},
		{"name": "p2", "meta-type": "array", "element-type": "p1"},
		{"name": "int", "meta-type": "builtin", "json-type": "int"},
	})
	checkLookup(t, s, "c.self", true)
	checkLookup(t, s, "c.self.x", false, "a list of a list of a list of lists nested further has no members")
	checkLookup(t, s, "c.self=1", false, "does not accept 1:")
	checkLookup(t, s, "c.pair=1", false, "does not accept 1:")
	checkLookup(t, s, "c.pair.x", false, "has no members")
	checkLookup(t, s, "c->x", false, "has no members")
	d := newDeprecations(s)
	if !d.commands["c"].args || !d.reach[s.Type("args")] || d.reach[s.Type("self")] {
		t.Errorf("deprecations: %+v; want c's arguments, and not the lists, to reach one", d.commands)
	}
	d.check(testMonitor(), []byte(`{"execute":"c","arguments":{"self":[[[[[]]]]],"pair":[[1]],"dep":1}}`))
}

func TestSchemaCycleThroughAlternate(t *testing.T) {
	s, _ := mustSchema(t, []schemaEntity{
		{"name": "c", "meta-type": "command", "arg-type": "obj", "ret-type": "obj"},
		{"name": "obj", "meta-type": "object", "members": []schemaEntity{memberEntity("a", "alt"), memberEntity("s", "selfish")}},
		// alt is itself or an object that leads back to it, or an int.
		{"name": "alt", "meta-type": "alternate", "members": []schemaEntity{memberEntity("0", "alt"), memberEntity("1", "obj"), memberEntity("2", "int")}},
		{"name": "selfish", "meta-type": "alternate", "members": []schemaEntity{memberEntity("0", "selfish")}},
		{"name": "int", "meta-type": "builtin", "json-type": "int"},
	})
	checkLookup(t, s, "c.a.a.a.a.s", true)
	checkLookup(t, s, "c.a=12", true)
	checkLookup(t, s, "c.a=x", false, "none of its alternatives does")
	checkLookup(t, s, "c.a.s.x", false, "an alternate has no members")
	checkLookup(t, s, "c.s=1", false, "none of its alternatives does")
	checkLookup(t, s, "c.a.b", false, `no member "b" (there are: a, s)`)
	d := newDeprecations(s)
	if len(d.commands) != 0 || len(d.reach) != 0 {
		t.Errorf("deprecations of a schema without any: %+v", d)
	}
}

// fanOutSchema has a chain of n alternates, each listing the next k
// times, which ends in an object whose one member is the chain again:
// one step of a path reaches the object k^n ways.
func fanOutSchema(t testing.TB, n, k int) (*Schema, []byte) {
	es := []schemaEntity{
		{"name": "c", "meta-type": "command", "arg-type": "o", "ret-type": "o"},
		{"name": "o", "meta-type": "object", "members": []schemaEntity{memberEntity("m", "a0", "deprecated")}},
	}
	for i := 0; i < n; i++ {
		next := fmt.Sprintf("a%d", i+1)
		if i == n-1 {
			next = "o"
		}
		var alts []schemaEntity
		for range k {
			alts = append(alts, schemaEntity{"type": next})
		}
		es = append(es, schemaEntity{"name": fmt.Sprintf("a%d", i), "meta-type": "alternate", "members": alts})
	}
	return mustSchema(t, es)
}

func TestSchemaFanOut(t *testing.T) {
	s, raw := fanOutSchema(t, 8, 4) // 4^8 = 65,536 ways per step
	if len(raw) > 1500 {
		t.Fatalf("the schema is %d bytes; the point is that it is small", len(raw))
	}
	for _, path := range []string{"c.m.m.m", "c.m.m.x", "c.m.m=1", "c->m.m.m#deprecated"} {
		allocs, bytes := workOf(func() { s.Lookup(path) })
		if allocs > 1000 || bytes > 64<<10 {
			t.Errorf("Lookup(%q) made %d allocations, %d bytes; want a few, as for any %d-byte schema",
				path, allocs, bytes, len(raw))
		}
	}
	checkLookup(t, s, "c.m.m.m", true)
	checkLookup(t, s, "c.m.m.x", false, `no member "x" (there are: m)`)
	checkLookup(t, s, "c.m=1", false, "none of its alternatives does")
	// The deprecation hook walks what is sent, through the chain.
	d := newDeprecations(s)
	args := `{"m":{"m":{"m":{}}}}`
	allocs, _ := workOf(func() { d.check(testMonitor(), []byte(`{"execute":"c","arguments":`+args+`}`)) })
	if allocs > 1000 {
		t.Errorf("the deprecation hook made %d allocations for %s", allocs, args)
	}
}

// bigSchema has an object of n members, a union of n branches, and an
// enum of n values, v1 deprecated; the last member and branch share the
// first's name, which must not hide the first.
func bigSchema(t testing.TB, n int) (*Schema, []byte) {
	members := make([]schemaEntity, n)
	variants := make([]schemaEntity, n)
	values := make([]string, n)
	for i := range n {
		members[i] = memberEntity(fmt.Sprintf("m%d", i), "e")
		variants[i] = schemaEntity{"case": fmt.Sprintf("v%d", i), "type": "branch"}
		values[i] = fmt.Sprintf("v%d", i)
	}
	members[n-1] = memberEntity("m0", "int")
	variants[n-1] = schemaEntity{"case": "v0", "type": "int"}
	return mustSchema(t, []schemaEntity{
		{"name": "c", "meta-type": "command", "arg-type": "big", "ret-type": "union"},
		{"name": "big", "meta-type": "object", "members": members},
		{"name": "union", "meta-type": "object", "tag": "kind", "variants": variants,
			"members": []schemaEntity{memberEntity("kind", "e")}},
		{"name": "branch", "meta-type": "object", "members": []schemaEntity{memberEntity("x", "int")}},
		{"name": "e", "meta-type": "enum", "values": values, "members": []schemaEntity{{"name": "v1", "features": []string{"deprecated"}}}},
		{"name": "int", "meta-type": "builtin", "json-type": "int"},
	})
}

func TestSchemaLargeObject(t *testing.T) {
	const n = 100000
	start := time.Now()
	s, raw := bigSchema(t, n)
	parse := time.Since(start) // of a few MB: the unit of linear work here
	big, union := s.Type("big"), s.Type("union")
	if m := big.Member("m0", ""); m == nil || m != &big.Members[0] {
		t.Errorf("Member(m0) = %+v, want the first of the two", m)
	}
	if v := union.Variant("v0"); v != s.Type("branch") {
		t.Errorf("Variant(v0) = %+v, want the first of the two", v)
	}
	if union.Member("x", "v77") == nil || union.Member("x", "nope") != nil {
		t.Error("Member(x) in a branch of the union disagrees with the schema")
	}
	// A miss on an n-member object lists n names at most once, and the
	// rest are hits in an index: 100 of them take less than one parse.
	start = time.Now()
	for i := range 25 {
		checkLookup(t, s, fmt.Sprintf("c.nope%d", i), false, "m0, m1, m2", "m23, ...")
		checkLookup(t, s, fmt.Sprintf("c.m%d=v%d", n-2-i, i), true)
		checkLookup(t, s, fmt.Sprintf("c->kind=v%d.x=1", 1000+i), true)
		checkLookup(t, s, fmt.Sprintf("c->x=%d", i), true) // any branch
	}
	if took := time.Since(start); took > parse {
		t.Errorf("100 lookups took %v, more than parsing the %d-byte schema (%v)", took, len(raw), parse)
	}
	d := newDeprecations(s)
	if !d.commands["c"].args {
		t.Fatal("c's arguments do not reach the deprecated value v1")
	}
	start = time.Now()
	var args strings.Builder
	args.WriteString(`{"execute":"c","arguments":{`)
	for i := range 1000 {
		fmt.Fprintf(&args, `"m%d":"v1",`, i)
	}
	args.WriteString(`"nope":1}}`)
	d.check(testMonitor(), []byte(args.String()))
	if took := time.Since(start); took > parse {
		t.Errorf("the deprecation hook took %v on 1000 members, more than parsing (%v)", took, parse)
	}
}

// chainSchema has a chain of n object types, each with a member of the
// next, that ends in a deprecated member: the worst case of a fixed point
// that goes round every type until nothing changes.
func chainSchema(t testing.TB, n int) (*Schema, []byte) {
	es := []schemaEntity{
		{"name": "c", "meta-type": "command", "arg-type": "t0", "ret-type": "t0"},
		{"name": "int", "meta-type": "builtin", "json-type": "int"},
	}
	for i := range n {
		m := memberEntity("next", fmt.Sprintf("t%d", i+1))
		if i == n-1 {
			m = memberEntity("old", "int", "deprecated")
		}
		es = append(es, schemaEntity{"name": fmt.Sprintf("t%d", i), "meta-type": "object", "members": []schemaEntity{m}})
	}
	return mustSchema(t, es)
}

func TestSchemaDeprecationIndexLinear(t *testing.T) {
	start := time.Now()
	s, raw := chainSchema(t, 20000)
	parse := time.Since(start)
	start = time.Now()
	d := newDeprecations(s)
	if took := time.Since(start); took > parse {
		t.Errorf("indexing the deprecations took %v, more than parsing the %d-byte schema (%v)", took, len(raw), parse)
	}
	if !d.commands["c"].args || len(d.reach) != 20000 {
		t.Errorf("%d types reach the deprecated member, want all 20000", len(d.reach))
	}
}

// TestSchemaShortCtx fetches a schema that is slow to index with a
// logger set: every call of Schema must end with its ctx, and Close at
// once.
func TestSchemaShortCtx(t *testing.T) {
	_, raw := chainSchema(t, 20000)
	srv := qmptest.NewServer(qmptest.Config{})
	defer srv.Close()
	srv.Handle("query-qmp-schema", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{RawReturn: raw}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Dial(ctx, "unix", srv.Path(), &Options{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const wait = 200 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		start := time.Now()
		s, err := m.Schema(ctx)
		cancel()
		if took := time.Since(start); took > wait+time.Second {
			t.Fatalf("Schema with a %v ctx returned after %v", wait, took)
		}
		if err == nil {
			if s.Command("c") == nil || m.schema.dep.Load() == nil {
				t.Fatal("the schema was fetched but not indexed for the logger")
			}
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	}
	start := time.Now()
	m.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
}

// TestSchemaWaitEndsWithClose waits for a schema QEMU never sends: Close
// ends the wait with the connection's error.
func TestSchemaWaitEndsWithClose(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Config{})
	defer srv.Close()
	srv.Handle("query-qmp-schema", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{NoReply: true}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Dial(ctx, "unix", srv.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := m.Schema(ctx)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it wait, or not: either way it must end
	m.Close()
	if err := <-errc; !IsSocketClosed(err) {
		t.Errorf("Schema during Close = %v, want a closed error", err)
	}
}

// FuzzSchema builds small schemas whose types refer to each other any
// way (cycles through arrays, alternates, objects and unions) from the
// input, and asks them paths and the deprecation hook. No operation may
// panic, and each has a budget of allocations in proportion to the
// schema's size: an exponential or quadratic one exceeds it.
func FuzzSchema(f *testing.F) {
	f.Add([]byte("\x04\x04\x00\x02\x01\x05\x03\x06\x02\x04\x01\x01\x02\x03\x00\x01\x02\x03\x04\x05"))
	f.Add([]byte("\x02\x02\x04\x00\x04\x04\x01\x01\x01\x01\x00\x03\x02\x00\x01\x00\x01\x02\x01\x02\x03\x04"))
	f.Add([]byte("\x06\x03\x02\x03\x03\x01\x01\x01\x00\x02\x02\x01\x03\x02\x00\x03\x05\x00\x01\x01\x02\x03\x01"))
	f.Add([]byte(`[{"name":"c","meta-type":"command","arg-type":"a","ret-type":"a"},{"name":"a","meta-type":"array","element-type":"a"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := ParseSchema(data); err == nil {
			s.Lookup("c.a.b=1#deprecated")
			newDeprecations(s)
		}
		g := &schemaGen{data: data}
		es := g.schema()
		s, raw := mustSchema(t, es)
		// The budgets: every step of a path may look at every type and
		// member once, and so may the deprecation index; the hook decodes
		// each JSON value once per level of the schema it goes through (32
		// at most). They are 3 to 10 times what 100,000 random inputs took
		// at most; an operation that is quadratic or worse in the schema's
		// size exceeds them.
		size := uint64(len(raw))
		for range 4 {
			path := g.path()
			steps := uint64(strings.Count(path, ".") + 1)
			allocs, bytes := workOf(func() { s.Lookup(path) })
			if allocs > 16+steps*size/8 || bytes > 1024+steps*size*8 {
				t.Fatalf("Lookup(%q) made %d allocations, %d bytes, on a %d-byte schema: %s", path, allocs, bytes, size, raw)
			}
		}
		var d *deprecations
		allocs, bytes := workOf(func() { d = newDeprecations(s) })
		if allocs > 16+size/8 || bytes > 1024+size*8 {
			t.Fatalf("newDeprecations made %d allocations, %d bytes, on a %d-byte schema: %s", allocs, bytes, size, raw)
		}
		m := testMonitor()
		for _, c := range []string{"c0", "c1"} {
			msg := fmt.Sprintf(`{"execute":%q,"arguments":%s}`, c, g.value(0))
			work := uint64(len(msg)) * 32 * size
			allocs, bytes := workOf(func() { d.check(m, []byte(msg)) })
			if allocs > 16+work/1024 || bytes > 1024+work/16 {
				t.Fatalf("the hook made %d allocations, %d bytes, for %s on a %d-byte schema: %s", allocs, bytes, msg, size, raw)
			}
		}
		for _, typ := range s.types {
			for _, name := range schemaGenNames {
				typ.Member(name, name)
				typ.Variant(name)
			}
		}
	})
}

// schemaGen turns fuzz input into a schema and paths on it: few names,
// so that paths often match, and references between types chosen freely.
type schemaGen struct {
	data  []byte
	types []string
}

var (
	schemaGenNames  = []string{"a", "b", "tag", "x"}
	schemaGenValues = []string{"x", "y", "1", "true", "null"}
	schemaGenJSON   = []string{"int", "string", "boolean", "number", "null", "value", "frob"}
)

// next returns the next input byte modulo n; 0 once the input is used up.
func (g *schemaGen) next(n int) int {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return int(b) % n
}

func (g *schemaGen) pick(xs []string) string { return xs[g.next(len(xs))] }

func (g *schemaGen) features() []string {
	if g.next(3) == 0 {
		return []string{"deprecated"}
	}
	return nil
}

func (g *schemaGen) schema() []schemaEntity {
	n := 1 + g.next(12)
	for i := range n {
		g.types = append(g.types, fmt.Sprintf("t%d", i))
	}
	es := []schemaEntity{
		{"name": "c0", "meta-type": "command", "arg-type": g.pick(g.types), "ret-type": g.pick(g.types), "features": g.features()},
		{"name": "c1", "meta-type": "command", "arg-type": g.pick(g.types), "ret-type": g.pick(g.types)},
		{"name": "E", "meta-type": "event", "arg-type": g.pick(g.types)},
	}
	for _, name := range g.types {
		e := schemaEntity{"name": name}
		switch g.next(5) {
		case 0:
			e["meta-type"], e["json-type"] = "builtin", g.pick(schemaGenJSON)
		case 1:
			var values []string
			var members []schemaEntity
			for range g.next(4) {
				v := g.pick(schemaGenValues)
				values = append(values, v)
				members = append(members, schemaEntity{"name": v, "features": g.features()})
			}
			e["meta-type"], e["values"], e["members"] = "enum", values, members
		case 2:
			e["meta-type"], e["element-type"] = "array", g.pick(g.types)
		case 3:
			var members, variants []schemaEntity
			for range g.next(5) {
				members = append(members, memberEntity(g.pick(schemaGenNames), g.pick(g.types), g.features()...))
			}
			for range g.next(4) {
				variants = append(variants, schemaEntity{"case": g.pick(schemaGenValues), "type": g.pick(g.types)})
			}
			e["meta-type"], e["members"], e["variants"] = "object", members, variants
			if g.next(2) == 0 {
				e["tag"] = g.pick(schemaGenNames)
			}
		case 4:
			var members []schemaEntity
			for range g.next(5) {
				members = append(members, memberEntity("", g.pick(g.types)))
			}
			e["meta-type"], e["members"] = "alternate", members
		}
		es = append(es, e)
	}
	return es
}

// path returns a path, mostly well formed, on the schema.
func (g *schemaGen) path() string {
	var b strings.Builder
	b.WriteString(g.pick([]string{"c0", "c1", "E", "nope"}))
	sep := "."
	if g.next(3) == 0 {
		sep = "->"
	}
	for range g.next(6) {
		b.WriteString(sep)
		sep = "."
		b.WriteString(g.pick(append(schemaGenNames, "")))
		if g.next(3) == 0 {
			b.WriteString("=" + g.pick(append(schemaGenValues, "", "x=y")))
		}
	}
	if g.next(3) == 0 {
		b.WriteString(g.pick([]string{"#deprecated", "#", "#a.b"}))
	}
	return b.String()
}

// value returns a JSON value for the hook to walk.
func (g *schemaGen) value(depth int) string {
	switch k := g.next(6); {
	case depth > 4 || k == 0:
		return `"` + g.pick(schemaGenValues) + `"`
	case k == 1:
		return "1"
	case k == 2:
		return "[" + g.value(depth+1) + "," + g.value(depth+1) + "]"
	default:
		var fields []string
		for range g.next(4) {
			fields = append(fields, fmt.Sprintf("%q:%s", g.pick(schemaGenNames), g.value(depth+1)))
		}
		return "{" + strings.Join(fields, ",") + "}"
	}
}
