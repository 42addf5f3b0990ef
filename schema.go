package qmp

// The live schema: what query-qmp-schema says the connected QEMU accepts,
// parsed into a compact, read-only model that answers "does this QEMU have
// X" questions (see schema_path.go for the path syntax).

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// Schema is the QAPI schema a QEMU reports with query-qmp-schema: its
// commands, events and the types they use. QEMU names most types by
// number ("123"); commands, events, members and enum values carry their
// real names, so queries go through those (see Schema.Lookup).
//
// A Schema is read-only once built: all its methods are safe for
// concurrent use, and callers must not modify what they return.
type Schema struct {
	commands map[string]*SchemaCommand
	events   map[string]*SchemaEvent
	types    map[string]*SchemaType
	// hidesDeprecated: the enums came without "values", as from a QEMU
	// run with -compat deprecated-output=hide, which also leaves out
	// deprecated commands and members it still accepts.
	hidesDeprecated bool
}

// SchemaCommand is one command of the schema.
type SchemaCommand struct {
	Name     string
	Args     *SchemaType // an object type; QEMU gives commands without arguments an empty object
	Returns  *SchemaType
	AllowOOB bool     // may be run with exec-oob
	Features []string // e.g. "deprecated", "unstable"
}

// SchemaEvent is one event of the schema.
type SchemaEvent struct {
	Name     string
	Data     *SchemaType // an object type; events without data have an empty object
	Features []string
}

// SchemaType is one type of the schema. MetaType says which of the other
// fields apply:
//
//	"builtin"    JSONType: "string", "int", "number", "boolean", "null" or "value" (any)
//	"enum"       Values (and their features, see ValueFeatures)
//	"array"      Element
//	"object"     Members; a union also has Tag (the discriminator member) and Variants
//	"alternate"  Alternatives: the value is any one of them, told apart by JSON type
type SchemaType struct {
	Name         string
	MetaType     string
	JSONType     string
	Members      []SchemaMember
	Tag          string
	Variants     []SchemaVariant
	Values       []string
	Element      *SchemaType
	Alternatives []*SchemaType
	Features     []string

	valueFeatures map[string][]string // enum values that have features; nil for most enums

	// Indexes by name of the Members and Variants of types that have many
	// (the first of a name wins, as in a scan): a schema is untrusted, and
	// scanning a 100,000-member object on every Member would make path
	// lookups and the deprecation hook quadratic. Small types are scanned,
	// which is as fast and keeps the model small.
	memberIndex  map[string]int
	variantIndex map[string]int
}

// indexMin is the length from which a list searched by name (members,
// variants) or a typeSet is indexed rather than scanned.
const indexMin = 32

// indexNames maps the name of each x of xs to its position, the first of
// a name winning; nil when xs is too short to need it.
func indexNames[T any](xs []T, name func(*T) string) map[string]int {
	if len(xs) < indexMin {
		return nil
	}
	idx := make(map[string]int, len(xs))
	for i := range xs {
		if _, dup := idx[name(&xs[i])]; !dup {
			idx[name(&xs[i])] = i
		}
	}
	return idx
}

// SchemaMember is a member of an object type.
type SchemaMember struct {
	Name     string
	Type     *SchemaType
	Optional bool
	Features []string
}

// SchemaVariant is the branch of a union taken when the discriminator
// (SchemaType.Tag) has the value Case; its members add to the union's own.
type SchemaVariant struct {
	Case string
	Type *SchemaType
}

// Command returns the command called name, or nil.
func (s *Schema) Command(name string) *SchemaCommand { return s.commands[name] }

// Event returns the event called name, or nil.
func (s *Schema) Event(name string) *SchemaEvent { return s.events[name] }

// Type returns the type called name (as the schema names it: a builtin
// name such as "str", or QEMU's number for the others), or nil.
func (s *Schema) Type(name string) *SchemaType { return s.types[name] }

// Commands returns the names of all commands, sorted.
func (s *Schema) Commands() []string { return schemaNames(s.commands) }

// Events returns the names of all events, sorted.
func (s *Schema) Events() []string { return schemaNames(s.events) }

func schemaNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Member returns the member called name of an object type: one of its
// own, or, when branch is not "", one of the union branch where the
// discriminator has the value branch. It returns nil when there is none.
func (t *SchemaType) Member(name, branch string) *SchemaMember {
	if m := t.ownMember(name); m != nil {
		return m
	}
	if branch != "" {
		if v := t.Variant(branch); v != nil {
			return v.ownMember(name)
		}
	}
	return nil
}

// ownMember returns t's own member called name, or nil.
func (t *SchemaType) ownMember(name string) *SchemaMember {
	if t.memberIndex != nil {
		if i, ok := t.memberIndex[name]; ok {
			return &t.Members[i]
		}
		return nil
	}
	for i := range t.Members {
		if t.Members[i].Name == name {
			return &t.Members[i]
		}
	}
	return nil
}

// Variant returns the type of the union branch for discriminator value
// c, or nil.
func (t *SchemaType) Variant(c string) *SchemaType {
	if t.variantIndex != nil {
		if i, ok := t.variantIndex[c]; ok {
			return t.Variants[i].Type
		}
		return nil
	}
	for _, v := range t.Variants {
		if v.Case == c {
			return v.Type
		}
	}
	return nil
}

// HasValue reports whether an enum type has the value v.
func (t *SchemaType) HasValue(v string) bool { return slices.Contains(t.Values, v) }

// ValueFeatures returns the features of enum value v (nil for most).
func (t *SchemaType) ValueFeatures(v string) []string { return t.valueFeatures[v] }

// rawEntity is one element of query-qmp-schema's reply, all meta-types in
// one struct.
type rawEntity struct {
	Name        string      `json:"name"`
	MetaType    string      `json:"meta-type"`
	ArgType     string      `json:"arg-type"`
	RetType     string      `json:"ret-type"`
	AllowOOB    bool        `json:"allow-oob"`
	Features    []string    `json:"features"`
	JSONType    string      `json:"json-type"`
	Members     []rawMember `json:"members"`
	Values      []string    `json:"values"`
	Tag         string      `json:"tag"`
	ElementType string      `json:"element-type"`
	Variants    []struct {
		Case string `json:"case"`
		Type string `json:"type"`
	} `json:"variants"`
}

// rawMember is an object member, an enum member or an alternative.
type rawMember struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	Default  json.RawMessage `json:"default"` // present (as null) when the member is optional
	Features []string        `json:"features"`
}

// ParseSchema parses the return value of query-qmp-schema (a JSON array)
// into a Schema. Errors wrap ErrSchema and name the entity at fault.
func ParseSchema(data []byte) (*Schema, error) {
	var raw []rawEntity
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	s := &Schema{
		commands: make(map[string]*SchemaCommand),
		events:   make(map[string]*SchemaEvent),
		types:    make(map[string]*SchemaType),
	}
	strs := make(map[string]string) // interns feature names
	feats := func(f []string) []string {
		if len(f) == 0 {
			return nil
		}
		out := make([]string, len(f))
		for i, x := range f {
			if y, ok := strs[x]; ok {
				out[i] = y
			} else {
				strs[x], out[i] = x, x
			}
		}
		return out
	}
	// First pass: one SchemaType per type, so that references resolve in
	// any order.
	ntypes := 0
	for i := range raw {
		switch raw[i].MetaType {
		case "command", "event":
		default:
			ntypes++
		}
	}
	types := make([]SchemaType, ntypes)
	for i := range raw {
		e := &raw[i]
		switch e.MetaType {
		case "command", "event":
			continue
		case "builtin", "enum", "array", "object", "alternate":
		default:
			return nil, fmt.Errorf("%w: %q has unknown meta-type %q", ErrSchema, e.Name, e.MetaType)
		}
		if e.Name == "" {
			return nil, fmt.Errorf("%w: a %s without a name", ErrSchema, e.MetaType)
		}
		if s.types[e.Name] != nil {
			return nil, fmt.Errorf("%w: type %q is defined twice", ErrSchema, e.Name)
		}
		t := &types[len(s.types)]
		t.Name, t.MetaType, t.JSONType, t.Features = e.Name, e.MetaType, e.JSONType, feats(e.Features)
		s.types[e.Name] = t
	}
	ref := func(owner, name string) (*SchemaType, error) {
		if t := s.types[name]; t != nil {
			return t, nil
		}
		return nil, fmt.Errorf("%w: %s refers to type %q, which the schema does not define", ErrSchema, owner, name)
	}
	var err error
	for i := range raw {
		e := &raw[i]
		switch e.MetaType {
		case "command":
			c := &SchemaCommand{Name: e.Name, AllowOOB: e.AllowOOB, Features: feats(e.Features)}
			if c.Args, err = ref("command "+e.Name, e.ArgType); err != nil {
				return nil, err
			}
			if c.Returns, err = ref("command "+e.Name, e.RetType); err != nil {
				return nil, err
			}
			s.commands[e.Name] = c
		case "event":
			ev := &SchemaEvent{Name: e.Name, Features: feats(e.Features)}
			if ev.Data, err = ref("event "+e.Name, e.ArgType); err != nil {
				return nil, err
			}
			s.events[e.Name] = ev
		case "enum":
			t := s.types[e.Name]
			// members[].name since QEMU 6.2, which deprecated values (hidden
			// with -compat deprecated-output=hide); values before.
			// QEMU sends both lists alike; a value in only one counts too.
			t.Values = e.Values
			if len(e.Values) == 0 && len(e.Members) > 0 {
				s.hidesDeprecated = true
			}
			same := len(e.Members) == len(e.Values)
			for i := 0; same && i < len(e.Members); i++ {
				same = e.Members[i].Name == e.Values[i]
			}
			if !same {
				have := make(map[string]bool, len(e.Values))
				for _, v := range e.Values {
					have[v] = true
				}
				for _, m := range e.Members {
					if !have[m.Name] {
						have[m.Name] = true
						t.Values = append(t.Values, m.Name)
					}
				}
			}
			for _, m := range e.Members {
				if len(m.Features) > 0 {
					if t.valueFeatures == nil {
						t.valueFeatures = make(map[string][]string)
					}
					t.valueFeatures[m.Name] = feats(m.Features)
				}
			}
		case "array":
			t := s.types[e.Name]
			if t.Element, err = ref("array "+e.Name, e.ElementType); err != nil {
				return nil, err
			}
		case "alternate":
			t := s.types[e.Name]
			t.Alternatives = make([]*SchemaType, len(e.Members))
			for j, m := range e.Members {
				if t.Alternatives[j], err = ref("alternate "+e.Name, m.Type); err != nil {
					return nil, err
				}
			}
		case "object":
			t := s.types[e.Name]
			t.Tag = e.Tag
			if len(e.Members) > 0 {
				t.Members = make([]SchemaMember, len(e.Members))
			}
			for j, m := range e.Members {
				mt, err := ref("member "+m.Name+" of object "+e.Name, m.Type)
				if err != nil {
					return nil, err
				}
				t.Members[j] = SchemaMember{Name: m.Name, Type: mt, Optional: m.Default != nil, Features: feats(m.Features)}
			}
			if len(e.Variants) > 0 {
				t.Variants = make([]SchemaVariant, len(e.Variants))
			}
			for j, v := range e.Variants {
				vt, err := ref("variant "+v.Case+" of object "+e.Name, v.Type)
				if err != nil {
					return nil, err
				}
				t.Variants[j] = SchemaVariant{Case: v.Case, Type: vt}
			}
			t.memberIndex = indexNames(t.Members, func(m *SchemaMember) string { return m.Name })
			t.variantIndex = indexNames(t.Variants, func(v *SchemaVariant) string { return v.Case })
		}
	}
	return s, nil
}
