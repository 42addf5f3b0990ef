package qmp

// Schema paths: one-line questions to the live schema.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// SchemaPathError says where a schema path stopped matching. errors.Is
// finds ErrNotInSchema or ErrSchemaPathSyntax in it.
type SchemaPathError struct {
	Path    string // the whole path
	Matched string // the longest prefix that matched ("" when the root did not)
	Reason  string // what did not match, as a sentence fragment
	Err     error  // ErrNotInSchema or ErrSchemaPathSyntax
}

func (e *SchemaPathError) Error() string {
	if e.Matched == "" {
		return fmt.Sprintf("qmp: schema path %q: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("qmp: schema path %q: after %q, %s", e.Path, e.Matched, e.Reason)
}

func (e *SchemaPathError) Unwrap() error { return e.Err }

// SchemaMatch is what a schema path named.
type SchemaMatch struct {
	Command *SchemaCommand // the root, when it is a command
	Event   *SchemaEvent   // the root, when it is an event
	Member  *SchemaMember  // the last member named; nil for a bare root
	// Type is where the path ends: the last member's type, or the root's
	// argument, return or data type.
	Type *SchemaType
	// Value is the value after the path's final "=", if the path ends
	// with one (a string's value, or the literal as written); "" when a
	// "tag=VALUE" step is followed by more.
	Value string
	// Features are those of the last thing named: the enum value after a
	// final "=" (when it has any), else the member, else the root.
	Features []string
}

// HasFeature reports whether the last thing the path named has feature f.
func (r *SchemaMatch) HasFeature(f string) bool { return slices.Contains(r.Features, f) }

// Has reports whether path (see Lookup) matches.
func (s *Schema) Has(path string) bool {
	_, err := s.Lookup(path)
	return err == nil
}

// Lookup answers a question about the schema written as a path:
//
//	ROOT                      the command or event ROOT exists
//	ROOT.a.b.c                ... and takes member a, whose type has member b, ...
//	ROOT->a.b                 the command ROOT returns an object with member a, ...
//	....tag=VALUE.m           in a union, tag (the discriminator) is VALUE: m may
//	                          then be a member of that branch
//	....m=VALUE               (at the end) member m accepts VALUE, by its JSON
//	                          type: null, true, false and numbers stand for
//	                          themselves, a JSON string in double quotes for
//	                          itself (it may hold "." and "#": m="/tmp/a.img"),
//	                          any other text for that string (an enum value)
//	...#FEATURE               the last thing named carries FEATURE
//	                          ("deprecated", "unstable", ...)
//
// ROOT is a command or an event name (QAPI names them in one namespace, so
// it is never both). Arrays are looked through (a step into a list member
// goes to its elements) and so are alternates (a step matches in any of
// their object alternatives). A member of a union that no "tag=VALUE" step
// narrowed matches in any branch. For example, against QEMU 7.2:
//
//	blockdev-add                                   true
//	BLOCK_JOB_READY.len                            true
//	blockdev-add.driver=file.aio=io_uring          true: driver file takes aio io_uring
//	blockdev-add.driver=qcow2.file.driver=file.filename
//	                                               true: file is an alternate (reference
//	                                               or inline options)
//	migrate-set-capabilities.capabilities.capability=events
//	                                               true: an array of objects
//	object-add.qom-type=memory-backend-file.mem-path
//	                                               true
//	query-block->inserted.image.virtual-size       true
//	drive-backup#deprecated                        true
//	blockdev-add.driver=file.aio=bogus             false: no such value
//
// A path that does not match returns a *SchemaPathError naming the
// prefix that matched and what was missing.
//
// The schema is QEMU's to choose: whatever its types refer to (cycles
// through arrays and alternates included), each step of a path costs
// time and memory at most linear in the schema's size.
func (s *Schema) Lookup(path string) (*SchemaMatch, error) {
	fail := func(matched string, wrap error, format string, a ...any) (*SchemaMatch, error) {
		return nil, &SchemaPathError{Path: path, Matched: matched, Reason: fmt.Sprintf(format, a...), Err: wrap}
	}
	steps, feature, hasFeature, err := splitPath(path)
	if err != nil {
		return fail("", ErrSchemaPathSyntax, "%s", err)
	}
	if hasFeature && (feature == "" || strings.ContainsAny(feature, "#.=")) {
		return fail("", ErrSchemaPathSyntax, "a feature name must follow \"#\"")
	}
	body := path
	if hasFeature {
		body = path[:len(path)-len(feature)-1]
	}
	root, returns := steps[0], false
	if r, _, ok := strings.Cut(root, "->"); ok && !strings.Contains(r, "=") {
		root, returns = r, true
		steps[0] = steps[0][len(r)+2:]
	} else {
		steps = steps[1:]
	}
	if root == "" {
		return fail("", ErrSchemaPathSyntax, "the path does not start with a command or event name")
	}
	res := &SchemaMatch{}
	var start *SchemaType
	if c := s.commands[root]; c != nil {
		res.Command, res.Features = c, c.Features
		start = c.Args
		if returns {
			start = c.Returns
		}
	} else if e := s.events[root]; e != nil {
		if returns {
			return fail(root, ErrSchemaPathSyntax, "\"->\" follows an event, which returns nothing")
		}
		res.Event, res.Features = e, e.Features
		start = e.Data
	} else {
		return fail("", ErrNotInSchema, "there is no command or event %q", root)
	}
	res.Type = start

	if returns && len(steps) == 1 && steps[0] == "" {
		steps = nil // ROOT-> alone
	}
	// Every step looks at the set of objects the path can be in, each once
	// (a union with the branch a "tag=VALUE" step chose), so that a step
	// costs at most the schema's size however its types refer to each
	// other.
	objs := objectsOf([]*SchemaType{start})
	var ms []*SchemaMember // the members named in one object, reused
	end := len(root)       // of the prefix of body that matched
	if returns {
		end += len("->")
	}
	for i, step := range steps {
		matched := body[:end]
		if i > 0 || !returns {
			end++ // the "." before the step
		}
		name, text, hasValue := strings.Cut(step, "=")
		named := body[:end+len(name)]
		end += len(step)
		if name == "" || hasValue && text == "" {
			return fail(matched, ErrSchemaPathSyntax, "step %q is not NAME or NAME=VALUE", step)
		}
		var value pathValue
		if hasValue {
			if value, err = parsePathValue(text); err != nil {
				return fail(matched, ErrSchemaPathSyntax, "step %q: %v", step, err)
			}
		}
		res.Value = "" // only a value at the end of the path is the match's
		if len(objs) == 0 {
			return fail(matched, ErrNotInSchema, "%s has no members, so none called %q", describeType(res.Type), name)
		}
		var first *SchemaMember
		var firstIn *SchemaType
		var types typeSet // of the members named
		var narrowed []pathCursor
		var branchesSeen, unionsSeen typeSet // each walked once per step
		for _, o := range objs {
			ms = o.appendMembers(&branchesSeen, ms[:0], name)
			for _, m := range ms {
				if first == nil {
					first, firstIn = m, o.t
				}
				types.add(m.Type)
			}
			// NAME=VALUE may choose the branch of a union whose
			// discriminator is NAME: this object, or a union that is a
			// branch of it (QAPI flattens a union's branches into it).
			if hasValue && value.kind == jsonString && len(ms) > 0 {
				o.eachUnion(&unionsSeen, func(u *SchemaType) {
					if u.Tag == name && u.Variant(value.text) != nil {
						narrowed = append(narrowed, pathCursor{t: u, branch: value.text})
					}
				})
			}
		}
		if first == nil {
			return fail(matched, ErrNotInSchema, "no member %q (there are: %s)", name, memberNames(objs))
		}
		res.Member, res.Type, res.Features = first, first.Type, first.Features
		if !hasValue {
			objs = objectsOf(types.list)
			continue
		}
		if len(narrowed) > 0 {
			// The path goes on inside the objects that have the tag.
			res.Type, res.Value = firstIn, value.text
			if vf := first.Type.ValueFeatures(value.text); vf != nil {
				res.Features = vf
			}
			objs = narrowed
			continue
		}
		// Else a value test, which ends the path.
		if i != len(steps)-1 {
			return fail(named, ErrNotInSchema,
				"%q is not a union discriminator with a branch for %s, so the path cannot go on after it (%s)", name, value, quoteHint(value))
		}
		if ok, why := schemaAccepts(types.list, value); !ok {
			if value.kind != jsonString {
				if ok, _ := schemaAccepts(types.list, pathValue{value.text, jsonString}); ok {
					why += fmt.Sprintf(` (it accepts the string: write "%s")`, value.text)
				}
			}
			return fail(named, ErrNotInSchema, "member %q does not accept %s: %s", name, value, why)
		}
		res.Value = value.text
		if vf := first.Type.ValueFeatures(value.text); vf != nil {
			res.Features = vf
		}
	}
	if hasFeature && !slices.Contains(res.Features, feature) {
		have := "no features"
		if len(res.Features) > 0 {
			have = "only the features " + strings.Join(res.Features, ", ")
		}
		return fail(body[:end], ErrNotInSchema, "feature %q is not there (it has %s)", feature, have)
	}
	return res, nil
}

// pathCursor is an object a path can be in and, for a union, the branch
// a "tag=VALUE" step chose.
type pathCursor struct {
	t      *SchemaType
	branch string
}

// appendMembers appends to ms the members called name of the object at c:
// its own, the chosen branch's, or (no branch chosen) any branch's; and
// those of the branches of a branch that is itself a union.
func (c pathCursor) appendMembers(seen *typeSet, ms []*SchemaMember, name string) []*SchemaMember {
	if m := c.t.ownMember(name); m != nil {
		return append(ms, m)
	}
	c.eachBranch(seen, func(b *SchemaType) {
		if m := b.ownMember(name); m != nil {
			ms = append(ms, m)
		}
	})
	return ms
}

// eachBranch calls f on each branch type whose members the object at c
// has: the chosen branch (or, none chosen, every branch), and the branches
// of those that are unions. seen is shared by a path step's cursors, so
// that a step visits each type once however the unions nest.
func (c pathCursor) eachBranch(seen *typeSet, f func(*SchemaType)) {
	var roots []*SchemaType
	if c.branch != "" {
		if b := c.t.Variant(c.branch); b != nil {
			roots = append(roots, b)
		}
	} else {
		for _, v := range c.t.Variants {
			roots = append(roots, v.Type)
		}
	}
	for len(roots) > 0 {
		b := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if !seen.add(b) {
			continue
		}
		f(b)
		for _, v := range b.Variants {
			roots = append(roots, v.Type)
		}
	}
}

// eachUnion calls f on the unions whose discriminator the object at c
// has: its own type and its branches that are unions.
func (c pathCursor) eachUnion(seen *typeSet, f func(*SchemaType)) {
	if c.t.Tag != "" {
		f(c.t)
	}
	c.eachBranch(seen, func(b *SchemaType) {
		if b.Tag != "" {
			f(b)
		}
	})
}

// typeSet is a set of types that keeps the order they were added in. The
// sets of a valid schema's lookups hold a type or two, so it scans a
// short list and indexes a long one.
type typeSet struct {
	list []*SchemaType
	idx  map[*SchemaType]bool
}

// add adds t and reports whether it was new.
func (s *typeSet) add(t *SchemaType) bool {
	switch {
	case s.idx != nil:
		if s.idx[t] {
			return false
		}
		s.idx[t] = true
	case slices.Contains(s.list, t):
		return false
	case len(s.list) == indexMin:
		s.idx = make(map[*SchemaType]bool, 2*indexMin)
		for _, u := range s.list {
			s.idx[u] = true
		}
		s.idx[t] = true
	}
	s.list = append(s.list, t)
	return true
}

// walkTypes calls f on each of roots and on each type reached from them
// through arrays and alternates, depth first in the order of the
// alternatives, each type once: a cycle ends where it meets a type
// already seen. It stops when f returns false. seen carries the types
// already walked across calls.
func walkTypes(seen *typeSet, roots []*SchemaType, f func(*SchemaType) bool) {
	// An explicit stack: the depth of the walk is up to the schema.
	stack := make([]*SchemaType, 0, len(roots))
	for i := len(roots) - 1; i >= 0; i-- {
		stack = append(stack, roots[i])
	}
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !seen.add(t) {
			continue
		}
		if !f(t) {
			return
		}
		switch t.MetaType {
		case "array":
			stack = append(stack, t.Element)
		case "alternate":
			for i := len(t.Alternatives) - 1; i >= 0; i-- {
				stack = append(stack, t.Alternatives[i])
			}
		}
	}
}

// objectsOf looks through arrays and alternates to the object types.
func objectsOf(ts []*SchemaType) []pathCursor {
	var out []pathCursor
	var seen typeSet
	walkTypes(&seen, ts, func(t *SchemaType) bool {
		if t.MetaType == "object" {
			out = append(out, pathCursor{t: t})
		}
		return true
	})
	return out
}

// schemaAccepts reports whether a value written v is valid for one of ts,
// and if not why not for ts[0].
func schemaAccepts(ts []*SchemaType, v pathValue) (bool, string) {
	var seen typeSet
	why := ""
	ok := false
	for i, root := range ts {
		walkTypes(&seen, []*SchemaType{root}, func(t *SchemaType) bool {
			switch t.MetaType {
			case "array":
				return true
			case "alternate":
				if i == 0 && why == "" {
					why = "none of its alternatives does"
				}
				return true
			}
			if ok = scalarAccepts(t, v); ok {
				return false
			}
			if i == 0 && why == "" {
				why = whyNot(t)
			}
			return true
		})
		if ok {
			return true, ""
		}
	}
	if why == "" { // only arrays of arrays, with no end
		why = "it is " + describeType(ts[0])
	}
	return false, why
}

// scalarAccepts reports whether value v is valid for t, which is neither
// an array nor an alternate.
func scalarAccepts(t *SchemaType, v pathValue) bool {
	switch t.MetaType {
	case "enum":
		return v.kind == jsonString && t.HasValue(v.text)
	case "builtin":
		switch t.JSONType {
		case "value":
			return true
		case "string":
			return v.kind == jsonString
		case "boolean":
			return v.kind == jsonBool
		case "int":
			if v.kind != jsonNumber {
				return false
			}
			_, err := strconv.ParseInt(v.text, 10, 64)
			if err != nil {
				_, err = strconv.ParseUint(v.text, 10, 64)
			}
			return err == nil
		case "number":
			return v.kind == jsonNumber
		case "null":
			return v.kind == jsonNull
		}
	}
	return false
}

// quoteHint says how to write what v may have been meant as.
func quoteHint(v pathValue) string {
	if v.kind != jsonString {
		return fmt.Sprintf(`for the string %q, write "%s"`, v.text, v.text)
	}
	return `a value that holds "." goes in double quotes`
}

// pathValue is the VALUE of a NAME=VALUE step, with its JSON type.
type pathValue struct {
	text string // a string's value, or the literal as written
	kind byte   // jsonString, jsonNumber, jsonBool or jsonNull
}

const (
	jsonString = 's'
	jsonNumber = 'n'
	jsonBool   = 'b'
	jsonNull   = 'z'
)

func (v pathValue) String() string {
	switch v.kind {
	case jsonString:
		return strconv.Quote(v.text)
	case jsonNull:
		return "null"
	}
	return v.text
}

// parsePathValue reads VALUE: a JSON string in double quotes, null, true,
// false or a JSON number stand for themselves; any other text is a string.
func parsePathValue(text string) (pathValue, error) {
	switch {
	case text == "null":
		return pathValue{text, jsonNull}, nil
	case text == "true" || text == "false":
		return pathValue{text, jsonBool}, nil
	case strings.HasPrefix(text, `"`):
		var s string
		if err := json.Unmarshal([]byte(text), &s); err != nil {
			return pathValue{}, fmt.Errorf("%s is not a JSON string", text)
		}
		return pathValue{s, jsonString}, nil
	case text[0] == '-' || text[0] >= '0' && text[0] <= '9':
		if !json.Valid([]byte(text)) {
			return pathValue{}, fmt.Errorf("%s is not a JSON number (write a string that looks like one in double quotes)", text)
		}
		return pathValue{text, jsonNumber}, nil
	case strings.Contains(text, "="):
		return pathValue{}, fmt.Errorf("%s holds \"=\": write the value as a JSON string in double quotes", text)
	}
	return pathValue{text, jsonString}, nil
}

// splitPath splits path at its separators into the root and its steps,
// and the feature after "#". A value in double quotes (a JSON string) or
// a number may hold "." and "#": the separators are looked for outside
// them.
func splitPath(path string) (steps []string, feature string, hasFeature bool, err error) {
	start, inValue := 0, false
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '=' && !inValue:
			inValue = true
			switch j := i + 1; {
			case j < len(path) && path[j] == '"':
				k := j + 1
				for k < len(path) && path[k] != '"' {
					if path[k] == '\\' {
						k++
					}
					k++
				}
				if k >= len(path) {
					return nil, "", false, fmt.Errorf("the value at byte %d has no closing quote", j)
				}
				i = k
			case j < len(path) && (path[j] == '-' || path[j] >= '0' && path[j] <= '9'):
				for i = j; i+1 < len(path) && strings.IndexByte("0123456789.eE+-", path[i+1]) >= 0; i++ {
				}
			}
		case c == '.':
			steps = append(steps, path[start:i])
			start, inValue = i+1, false
		case c == '#':
			return append(steps, path[start:i]), path[i+1:], true, nil
		}
	}
	return append(steps, path[start:]), "", false, nil
}

// whyNot says why t, which scalarAccepts refused, takes no value written so.
func whyNot(t *SchemaType) string {
	switch t.MetaType {
	case "enum":
		return "its values are " + strings.Join(t.Values, ", ")
	case "builtin":
		switch t.JSONType {
		case "boolean":
			return "it is a boolean"
		case "int":
			return "it is an integer"
		case "number":
			return "it is a number"
		case "null":
			return "it is null"
		}
	}
	return "it is " + describeType(t)
}

// describeNesting is how many lists in lists describeType spells out: QAPI
// has no lists of lists, and a schema may make one that has no end.
const describeNesting = 3

func describeType(t *SchemaType) string {
	lists := ""
	for n := 0; t.MetaType == "array"; n++ {
		if n == describeNesting {
			return lists + "lists nested further"
		}
		lists += "a list of "
		t = t.Element
	}
	switch t.MetaType {
	case "builtin":
		if t.JSONType == "int" {
			return lists + "an int"
		}
		return lists + "a " + t.JSONType
	case "enum":
		return lists + "an enum"
	case "alternate":
		return lists + "an alternate"
	}
	return lists + "an object"
}

// memberNames lists the members a step could have named, for errors: the
// first 24, for an object may have any number.
func memberNames(objs []pathCursor) string {
	const most = 24
	var names []string
	seen := make(map[string]bool)
	more, union := false, false
	add := func(ms []SchemaMember) {
		for i := 0; i < len(ms) && !more; i++ {
			if n := ms[i].Name; !seen[n] {
				seen[n] = true
				if len(names) == most {
					more = true
				} else {
					names = append(names, n)
				}
			}
		}
	}
	for _, c := range objs {
		add(c.t.Members)
		if c.branch != "" {
			if v := c.t.Variant(c.branch); v != nil {
				add(v.Members)
			}
		} else if len(c.t.Variants) > 0 {
			union = true
		}
	}
	if len(names) == 0 {
		return "none"
	}
	if more {
		names = append(names, "...")
	}
	s := strings.Join(names, ", ")
	if union {
		s += ", and those of the union's branches"
	}
	return s
}
