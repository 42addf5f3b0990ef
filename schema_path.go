package qmp

// Schema paths: one-line questions to the live schema.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrNotInSchema is wrapped by the *SchemaPathError of a path that is well
// formed but names something the schema does not have.
var ErrNotInSchema = errors.New("not in the schema")

// ErrSchemaPathSyntax is wrapped by the *SchemaPathError of a malformed path.
var ErrSchemaPathSyntax = errors.New("malformed schema path")

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
	// Value is the value after a final "=", if any.
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
//	....m=VALUE               (at the end) member m accepts VALUE: an enum value,
//	                          true/false for a boolean, a number for an integer
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
func (s *Schema) Lookup(path string) (*SchemaMatch, error) {
	fail := func(matched string, wrap error, format string, a ...any) (*SchemaMatch, error) {
		return nil, &SchemaPathError{Path: path, Matched: matched, Reason: fmt.Sprintf(format, a...), Err: wrap}
	}
	body, feature, hasFeature := strings.Cut(path, "#")
	if hasFeature && (feature == "" || strings.ContainsAny(feature, "#.=")) {
		return fail("", ErrSchemaPathSyntax, "a feature name must follow \"#\"")
	}
	root, rest, returns := strings.Cut(body, "->")
	if !returns {
		root, rest, _ = strings.Cut(body, ".")
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

	var steps []string
	if rest != "" || strings.HasSuffix(body, ".") {
		steps = strings.Split(rest, ".")
	}
	cur := []pathCursor{{t: start}}
	matched := root
	if returns {
		matched += "->"
	}
	for i, step := range steps {
		name, value, hasValue := strings.Cut(step, "=")
		if name == "" || strings.Contains(value, "=") || hasValue && value == "" {
			return fail(matched, ErrSchemaPathSyntax, "step %q is not NAME or NAME=VALUE", step)
		}
		objs := objectsOf(cur)
		if len(objs) == 0 {
			return fail(matched, ErrNotInSchema, "%s has no members, so none called %q", describeCursors(cur), name)
		}
		var next []pathCursor
		var first *SchemaMember
		var firstIn *pathCursor
		for j := range objs {
			for _, m := range objs[j].members(name) {
				if first == nil {
					first, firstIn = m, &objs[j]
				}
				next = append(next, pathCursor{t: m.Type, member: m, in: &objs[j]})
			}
		}
		if first == nil {
			return fail(matched, ErrNotInSchema, "no member %q (there are: %s)", name, memberNames(objs))
		}
		res.Member, res.Type, res.Features = first, first.Type, first.Features
		sep := "."
		if i == 0 && returns {
			sep = ""
		}
		if !hasValue {
			matched += sep + step
			cur = next
			continue
		}
		// NAME=VALUE: either a union's branch or, at the end, a value test.
		var narrowed []pathCursor
		for _, c := range next {
			if c.in.t.Tag == name && c.in.t.Variant(value) != nil {
				narrowed = append(narrowed, pathCursor{t: c.in.t, branch: value})
			}
		}
		if len(narrowed) > 0 {
			// The path goes on inside the object that has the tag.
			res.Type, res.Value = firstIn.t, value
			if vf := first.Type.ValueFeatures(value); vf != nil {
				res.Features = vf
			}
			matched += sep + step
			cur = narrowed
			continue
		}
		if i != len(steps)-1 {
			return fail(matched+sep+name, ErrNotInSchema,
				"%q is not a union discriminator with a branch for %q, so the path cannot go on after it", name, value)
		}
		ok, why := schemaAccepts(first.Type, value)
		for _, c := range next[1:] {
			if !ok {
				ok, _ = schemaAccepts(c.t, value)
			}
		}
		if !ok {
			return fail(matched+sep+name, ErrNotInSchema, "member %q does not accept %q: %s", name, value, why)
		}
		res.Value = value
		if vf := first.Type.ValueFeatures(value); vf != nil {
			res.Features = vf
		}
		matched += sep + step
	}
	if hasFeature && !slices.Contains(res.Features, feature) {
		have := "no features"
		if len(res.Features) > 0 {
			have = "only the features " + strings.Join(res.Features, ", ")
		}
		return fail(matched, ErrNotInSchema, "feature %q is not there (it has %s)", feature, have)
	}
	return res, nil
}

// pathCursor is a place a path can be at: a type, how it got there, and, for a
// union, the branch a "tag=VALUE" step chose.
type pathCursor struct {
	t      *SchemaType
	member *SchemaMember
	in     *pathCursor
	branch string
}

// objectsOf looks through arrays and alternates to the object types.
func objectsOf(cs []pathCursor) []pathCursor {
	var out []pathCursor
	var add func(c pathCursor, depth int)
	add = func(c pathCursor, depth int) {
		if depth > 8 {
			return
		}
		switch c.t.MetaType {
		case "object":
			out = append(out, c)
		case "array":
			add(pathCursor{t: c.t.Element, member: c.member}, depth+1)
		case "alternate":
			for _, a := range c.t.Alternatives {
				add(pathCursor{t: a, member: c.member}, depth+1)
			}
		}
	}
	for _, c := range cs {
		add(c, 0)
	}
	return out
}

// members returns the members called name of the object at c: its own,
// the chosen branch's, or (no branch chosen) any branch's.
func (c *pathCursor) members(name string) []*SchemaMember {
	if m := c.t.Member(name, c.branch); m != nil {
		return []*SchemaMember{m}
	}
	if c.branch != "" {
		return nil
	}
	var out []*SchemaMember
	seen := map[*SchemaMember]bool{}
	for _, v := range c.t.Variants {
		if m := v.Type.Member(name, ""); m != nil && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// schemaAccepts reports whether a value written v is valid for t, and if not why.
func schemaAccepts(t *SchemaType, v string) (bool, string) {
	switch t.MetaType {
	case "enum":
		if t.HasValue(v) {
			return true, ""
		}
		return false, "its values are " + strings.Join(t.Values, ", ")
	case "builtin":
		switch t.JSONType {
		case "string", "value":
			return true, ""
		case "boolean":
			return v == "true" || v == "false", "it is a boolean"
		case "int":
			_, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				_, err = strconv.ParseUint(v, 10, 64)
			}
			return err == nil, "it is an integer"
		case "number":
			_, err := strconv.ParseFloat(v, 64)
			return err == nil, "it is a number"
		case "null":
			return v == "null", "it is null"
		}
	case "array":
		return schemaAccepts(t.Element, v)
	case "alternate":
		for _, a := range t.Alternatives {
			if ok, _ := schemaAccepts(a, v); ok {
				return true, ""
			}
		}
		return false, "none of its alternatives does"
	}
	return false, "it is " + describeType(t)
}

func describeCursors(cs []pathCursor) string {
	if len(cs) == 0 {
		return "nothing"
	}
	return describeType(cs[0].t)
}

func describeType(t *SchemaType) string {
	switch t.MetaType {
	case "builtin":
		if t.JSONType == "int" {
			return "an int"
		}
		return "a " + t.JSONType
	case "enum":
		return "an enum"
	case "array":
		return "a list of " + describeType(t.Element)
	case "alternate":
		return "an alternate"
	}
	return "an object"
}

// memberNames lists the members a step could have named, for errors.
func memberNames(objs []pathCursor) string {
	var names []string
	union := false
	for _, c := range objs {
		for _, m := range c.t.Members {
			if !slices.Contains(names, m.Name) {
				names = append(names, m.Name)
			}
		}
		if c.branch != "" {
			if v := c.t.Variant(c.branch); v != nil {
				for _, m := range v.Members {
					if !slices.Contains(names, m.Name) {
						names = append(names, m.Name)
					}
				}
			}
		} else if len(c.t.Variants) > 0 {
			union = true
		}
	}
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 24 {
		names = append(names[:24], "...")
	}
	s := strings.Join(names, ", ")
	if union {
		s += ", and those of the union's branches"
	}
	return s
}
