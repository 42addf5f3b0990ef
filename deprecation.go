package qmp

// Deprecation warnings: once the schema is known, commands and argument
// members that QEMU marks "deprecated" are logged the first time they are
// sent.

import (
	"encoding/json"
	"slices"
)

// deprecations is what the hook needs from the schema, computed once.
type deprecations struct {
	s        *Schema
	commands map[string]depCommand // only commands with something deprecated in reach
	reach    map[*SchemaType]bool  // the type contains deprecated members or values
}

type depCommand struct {
	self bool // the command itself is deprecated
	args bool // its arguments can contain deprecated members or values
}

func isDeprecated(features []string) bool { return slices.Contains(features, "deprecated") }

// newDeprecations indexes s for the hook, in time linear in its size.
func newDeprecations(s *Schema) *deprecations {
	d := &deprecations{s: s, commands: make(map[string]depCommand), reach: make(map[*SchemaType]bool)}
	// reach is the set of types with a deprecated member or enum value, and
	// of the types that contain one of them (types may recurse): a search
	// from the former along the containment edges reversed, which visits
	// every type and edge once. (A fixed point over all types, repeated
	// until nothing changes, is quadratic on a long chain of types.)
	containers := make(map[*SchemaType][]*SchemaType)
	var todo []*SchemaType
	for _, t := range s.types {
		if hasDeprecated(t) {
			d.reach[t] = true
			todo = append(todo, t)
		}
		forEachContained(t, func(c *SchemaType) { containers[c] = append(containers[c], t) })
	}
	for len(todo) > 0 {
		t := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, u := range containers[t] {
			if !d.reach[u] {
				d.reach[u] = true
				todo = append(todo, u)
			}
		}
	}
	for name, c := range s.commands {
		dc := depCommand{self: isDeprecated(c.Features), args: d.reach[c.Args]}
		if dc.self || dc.args {
			d.commands[name] = dc
		}
	}
	return d
}

// hasDeprecated reports whether t itself has a deprecated member or enum
// value.
func hasDeprecated(t *SchemaType) bool {
	switch t.MetaType {
	case "enum":
		for _, f := range t.valueFeatures {
			if isDeprecated(f) {
				return true
			}
		}
	case "object":
		for _, m := range t.Members {
			if isDeprecated(m.Features) {
				return true
			}
		}
	}
	return false
}

// forEachContained calls f with each type a value of type t can contain:
// an array's element, an alternate's alternatives, an object's member and
// branch types.
func forEachContained(t *SchemaType, f func(*SchemaType)) {
	if t.Element != nil {
		f(t.Element)
	}
	for _, a := range t.Alternatives {
		f(a)
	}
	for _, m := range t.Members {
		f(m.Type)
	}
	for _, v := range t.Variants {
		f(v.Type)
	}
}

// noteDeprecated is the hook on every command RunContext sends (msg is the
// encoded command). It costs one atomic load until the schema has been
// fetched with a logger set.
func (m *Monitor) noteDeprecated(msg []byte) {
	d := m.schema.dep.Load()
	if d == nil {
		return
	}
	d.check(m, msg)
}

// check logs the deprecated things msg uses that were not logged before.
func (d *deprecations) check(m *Monitor, msg []byte) {
	var name string
	var args []byte
	eachMember(msg, func(k, v []byte) {
		switch memberName(k) {
		case "execute", "exec-oob":
			name = unquote(v)
		case "arguments":
			args = v
		}
	})
	dc, ok := d.commands[name]
	if !ok {
		return
	}
	if dc.self {
		m.warnDeprecated(name, "command")
	}
	if !dc.args || args == nil {
		return
	}
	d.walk(m, args, d.s.commands[name].Args, name, 0)
}

// walk logs the deprecated members and enum values in v, a value of type
// t at schema path at.
func (d *deprecations) walk(m *Monitor, v json.RawMessage, t *SchemaType, at string, depth int) {
	if depth > 32 || !d.reach[t] {
		return
	}
	switch t.MetaType {
	case "enum":
		var s string
		if json.Unmarshal(v, &s) == nil && isDeprecated(t.valueFeatures[s]) {
			m.warnDeprecated(at+"="+s, "value")
		}
	case "array":
		var elems []json.RawMessage
		if json.Unmarshal(v, &elems) == nil {
			for _, e := range elems {
				d.walk(m, e, t.Element, at, depth+1)
			}
		}
	case "alternate":
		for _, a := range t.Alternatives {
			if fitsJSON(a, v) {
				d.walk(m, v, a, at, depth+1)
				return
			}
		}
	case "object":
		var obj map[string]json.RawMessage
		if json.Unmarshal(v, &obj) != nil {
			return
		}
		var branch string
		if t.Tag != "" {
			json.Unmarshal(obj[t.Tag], &branch)
		}
		for k, val := range obj {
			mem := t.Member(k, "")
			p := at + "." + k
			if mem == nil && branch != "" {
				if mem = t.Member(k, branch); mem != nil {
					p = at + "." + t.Tag + "=" + branch + "." + k
				}
			}
			if mem == nil {
				continue
			}
			if isDeprecated(mem.Features) {
				m.warnDeprecated(p, "member")
			}
			d.walk(m, val, mem.Type, p, depth+1)
		}
	}
}

// fitsJSON reports whether the JSON value v has the shape of type t, the
// way QEMU tells an alternate's alternatives apart.
func fitsJSON(t *SchemaType, v json.RawMessage) bool {
	v = v[skipSpace(v, 0):]
	if len(v) == 0 {
		return false
	}
	switch t.MetaType {
	case "object":
		return v[0] == '{'
	case "array":
		return v[0] == '['
	case "enum":
		return v[0] == '"'
	}
	switch t.JSONType {
	case "string":
		return v[0] == '"'
	case "boolean":
		return v[0] == 't' || v[0] == 'f'
	case "null":
		return v[0] == 'n'
	case "int", "number":
		return v[0] == '-' || v[0] >= '0' && v[0] <= '9'
	}
	return true
}

// warnDeprecated logs name (a schema path) once per connection.
func (m *Monitor) warnDeprecated(name, what string) {
	if _, seen := m.schema.warned.LoadOrStore(name, struct{}{}); seen {
		return
	}
	m.log.Warn("qmp: sent a "+what+" that QEMU marks deprecated", "name", name)
}
