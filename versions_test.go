package qmp

// The typed layer against every QEMU whose schema is recorded in testdata
// (qmp-schema-VERSION.json). The model is the union of those versions: a
// command, event, member or union branch that some of them lack stays
// (the others need it), can be left out when sent and shows its absence
// when read, and its doc comment says which versions have it, as "QEMU
// 8.2 and later", "QEMU 9.0 and earlier" or "QEMU 6.0 to 8.2". TestConformanceAllVersions holds
// every such comment to the recorded schemas: a claim that a recorded
// version contradicts, or a difference that no comment states, fails.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type recordedSchema struct {
	version string // "7.2"
	s       *Schema
}

// recordedSchemas parses testdata/qmp-schema-*.json, oldest first.
func recordedSchemas(tb testing.TB) []recordedSchema {
	tb.Helper()
	files, err := filepath.Glob("testdata/qmp-schema-*.json")
	if err != nil {
		tb.Fatal(err)
	}
	var out []recordedSchema
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		s, err := ParseSchema(raw)
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "qmp-schema-"), ".json")
		out = append(out, recordedSchema{v, s})
	}
	slices.SortFunc(out, func(a, b recordedSchema) int { return compareVersions(a.version, b.version) })
	return out
}

// compareVersions orders "MAJOR.MINOR" strings numerically.
func compareVersions(a, b string) int {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		x, _ := strconv.Atoi(pa[min(i, len(pa)-1)])
		y, _ := strconv.Atoi(pb[min(i, len(pb)-1)])
		if x != y {
			return x - y
		}
	}
	return 0
}

// versionClaim is how a doc comment says which QEMU versions have a thing.
var versionClaim = regexp.MustCompile(`QEMU\s+(\d+\.\d+)\s+(and\s+later|and\s+earlier|to\s+(\d+\.\d+))`)

type claim struct{ from, to string } // "" for no bound

func (c claim) covers(v string) bool {
	return (c.from == "" || compareVersions(v, c.from) >= 0) && (c.to == "" || compareVersions(v, c.to) <= 0)
}

func (c claim) String() string {
	switch {
	case c.to == "":
		return "QEMU " + c.from + " and later"
	case c.from == "":
		return "QEMU " + c.to + " and earlier"
	}
	return "QEMU " + c.from + " to " + c.to
}

// docClaims returns the version claims of the package's doc comments, by
// the keys the conformance walk records: "Type.Field", "command NAME" (the
// doc of the method that names "(NAME)"), "event NAME" and variant paths
// (the doc of the type registered for them).
func docClaims(t *testing.T) map[string]claim {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, f := range pkgs["qmp"].Files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Doc == nil {
					continue
				}
				for _, tc := range typedCommands {
					if strings.Contains(d.Doc.Text(), "("+tc.name+")") {
						docs["command "+tc.name] += d.Doc.Text()
					}
				}
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					ts, ok := sp.(*ast.TypeSpec)
					if !ok {
						continue
					}
					doc := ts.Doc
					if doc == nil && len(d.Specs) == 1 {
						doc = d.Doc
					}
					docs["type "+ts.Name.Name] = doc.Text()
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					for _, fl := range st.Fields.List {
						for _, n := range fl.Names {
							docs[ts.Name.Name+"."+n.Name] = fl.Doc.Text() + fl.Comment.Text()
						}
					}
				}
			}
		}
	}
	for n, ty := range typedEvents {
		if ty != nil {
			docs["event "+n] = docs["type "+ty.Name()]
		}
	}
	for _, v := range typedVariants {
		docs[v.path] = docs["type "+v.t.Name()]
	}
	claims := map[string]claim{}
	for k, doc := range docs {
		if m := versionClaim.FindStringSubmatch(doc); m != nil {
			switch {
			case m[3] != "":
				claims[k] = claim{m[1], m[3]}
			case strings.HasSuffix(m[2], "earlier"):
				claims[k] = claim{"", m[1]}
			default:
				claims[k] = claim{m[1], ""}
			}
		}
	}
	return claims
}

func TestConformanceAllVersions(t *testing.T) {
	rs := recordedSchemas(t)
	var versions []string
	for _, r := range rs {
		versions = append(versions, r.version)
	}
	if want := []string{"5.2", "7.2", "10.0", "11.1"}; !slices.Equal(versions, want) {
		t.Fatalf("recorded schemas: %v, want %v (the versions CI runs)", versions, want)
	}
	if len(typedCommands) < 60 {
		t.Errorf("only %d typed commands registered", len(typedCommands))
	}
	pointers, history := checkVersions(t, rs, true)
	if !maps.Equal(history, versionHistory) {
		var b strings.Builder
		var keys []string
		for k := range history {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "\t%q: {%q, %q},\n", k, history[k].since, history[k].until)
		}
		t.Errorf("versionHistory (unsupported.go) differs from the doc comments; make it:\n%s", b.String())
	}
	for k := range argPointers {
		if !pointers[k] {
			t.Errorf("argPointers lists %s, which no typed argument has", k)
		}
	}
}

// checkVersions checks the typed layer against each of rs and holds the
// doc comments' version claims to them; all says rs are every recorded
// version (so a member mandatory in all that have it is known to be). It
// returns the argPointers entries met, and what versionHistory should be:
// the claims of the commands and argument members, by schema path.
func checkVersions(t *testing.T, rs []recordedSchema, all bool) (pointers map[string]bool, history map[string]struct{ since, until string }) {
	t.Helper()
	facts := map[string]fieldFacts{}
	argPaths := map[string]map[string]bool{}
	has := make([]map[string]bool, len(rs))
	mandatory := make([]map[string]bool, len(rs))
	pointers = map[string]bool{}
	for i, r := range rs {
		c := &conformance{s: r.s, seen: map[[2]any]bool{}, pointers: pointers,
			presence: map[string]bool{}, mandatory: map[string]bool{}, facts: facts, argPaths: argPaths}
		c.run()
		for _, p := range c.problems {
			t.Errorf("QEMU %s: %s", r.version, p)
		}
		for _, d := range c.deprecated {
			t.Logf("QEMU %s deprecates %s", r.version, d)
		}
		has[i], mandatory[i] = c.presence, c.mandatory
	}
	if !all {
		mandatory = nil
	}
	claims := docClaims(t)
	for _, p := range versionProblems(rs, has, mandatory, facts, claims) {
		t.Error(p)
	}
	history = map[string]struct{ since, until string }{}
	for k, c := range claims {
		if name, ok := strings.CutPrefix(k, "command "); ok {
			history[name] = struct{ since, until string }{c.from, c.to}
		}
		for path := range argPaths[k] {
			history[path] = struct{ since, until string }{c.from, c.to}
		}
	}
	return pointers, history
}

// versionProblems holds what each recorded QEMU has of the typed layer
// (has[i][key], for the keys its walk met) to the doc comments' claims and
// to the rules for what only some versions have. mandatory (nil: not
// known for every version) holds the omitempty arguments each makes
// mandatory.
func versionProblems(rs []recordedSchema, has, mandatory []map[string]bool, facts map[string]fieldFacts, claims map[string]claim) []string {
	var keys []string
	seen := map[string]bool{}
	for _, h := range has {
		for k := range h {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	var problems []string
	for _, k := range keys {
		c, claimed := claims[k]
		var lacking []string
		for i, r := range rs {
			present, walked := has[i][k]
			if !walked {
				continue // what holds it is missing there
			}
			if !present {
				lacking = append(lacking, r.version)
			}
			switch want := !claimed || c.covers(r.version); {
			case present == want:
			case !claimed:
				problems = append(problems, k+" is not in QEMU "+r.version+
					`: say in its doc comment which versions have it ("QEMU X.Y and later", "QEMU X.Y and earlier" or "QEMU X.Y to X.Y")`)
			case present:
				problems = append(problems, k+": its doc comment says "+c.String()+", but QEMU "+r.version+" has it")
			default:
				problems = append(problems, k+": its doc comment says "+c.String()+", but QEMU "+r.version+" lacks it")
			}
		}
		f, isField := facts[k]
		switch {
		case len(lacking) == 0 || !isField:
		case f.ret && !f.showsAbsent:
			problems = append(problems, k+" ("+f.at+") is read from QEMU, which "+strings.Join(lacking, ", ")+
				" does not send: it must be a pointer, slice or map so that its absence shows")
		case !f.ret && !f.omitempty:
			problems = append(problems, k+" ("+f.at+") is sent, but QEMU "+strings.Join(lacking, ", ")+
				" does not have it: it needs omitempty so that leaving it out sends nothing")
		}
		if f.omitempty && !f.ret && mandatory != nil {
			always := true
			for i := range rs {
				if has[i][k] && !mandatory[i][k] {
					always = false
				}
			}
			if always {
				problems = append(problems, k+" ("+f.at+") is mandatory in every QEMU that has it, but has omitempty (a zero value would not be sent)")
			}
		}
	}
	return problems
}

// versionProblems fails what it should.
func TestVersionProblemsCatchMistakes(t *testing.T) {
	rs := []recordedSchema{{version: "5.2"}, {version: "7.2"}, {version: "10.0"}, {version: "11.1"}}
	has := []map[string]bool{
		{"A.Old": true, "A.New": false, "A.Unsaid": false, "A.Wrong": true, "A.Read": false, "A.Sent": false, "command c": true},
		{"A.Old": true, "A.New": false, "A.Unsaid": true, "A.Wrong": true, "A.Read": true, "A.Sent": true, "command c": true},
		{"A.Old": false, "A.New": true, "A.Unsaid": true, "A.Wrong": true, "A.Read": true, "A.Sent": true, "command c": true},
		{"A.Old": false, "A.New": true, "A.Unsaid": true, "A.Wrong": true, "A.Read": true, "A.Sent": true, "command c": false},
	}
	mandatory := []map[string]bool{{}, {"A.Always": true}, {"A.Always": true}, {"A.Always": true}}
	for i := range has[1:] {
		has[i+1]["A.Always"] = true
	}
	facts := map[string]fieldFacts{
		"A.Read":   {at: "r", ret: true, showsAbsent: false},
		"A.Sent":   {at: "s", ret: false, omitempty: false},
		"A.Always": {at: "a", ret: false, omitempty: true},
		"A.Old":    {at: "o", ret: true, showsAbsent: true},
		"A.New":    {at: "n", ret: false, omitempty: true},
	}
	claims := map[string]claim{
		"A.Old": {"5.2", "8.2"}, "A.New": {"8.2", ""}, "A.Wrong": {"8.2", ""},
		"A.Read": {"7.2", ""}, "A.Sent": {"6.0", ""}, "A.Always": {"7.0", ""},
	}
	got := strings.Join(versionProblems(rs, has, mandatory, facts, claims), "\n")
	for _, want := range []string{
		"A.Unsaid is not in QEMU 5.2: say in its doc comment",
		"A.Wrong: its doc comment says QEMU 8.2 and later, but QEMU 5.2 has it",
		"A.Read (r) is read from QEMU, which 5.2 does not send",
		"A.Sent (s) is sent, but QEMU 5.2 does not have it",
		"A.Always (a) is mandatory in every QEMU that has it, but has omitempty",
		"command c is not in QEMU 11.1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not contain %q; got:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 7 {
		t.Errorf("%d problems, want 7 (A.Wrong twice; A.Old and A.New are right):\n%s", n, got)
	}
}
