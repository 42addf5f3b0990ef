package main

// What completion knows about commands' arguments: a small model of
// query-qmp-schema (QEMU's introspection), enough to list the argument
// names of a command, the members of nested objects (dotted keys), the
// members of the union branch a discriminator selects, and enum values.

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	qmp "github.com/0xef53/go-qmp/v2"
)

// schemaEntity is one entry of query-qmp-schema's reply.
type schemaEntity struct {
	Name     string `json:"name"`
	MetaType string `json:"meta-type"`
	ArgType  string `json:"arg-type"`
	// object
	Members []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"members"`
	Tag      string `json:"tag"`
	Variants []struct {
		Case string `json:"case"`
		Type string `json:"type"`
	} `json:"variants"`
	// enum
	Values []string `json:"values"`
	// array
	ElementType string `json:"element-type"`
	// builtin
	JSONType string `json:"json-type"`
}

// argSchema answers completion's questions about arguments.
type argSchema struct {
	types    map[string]*schemaEntity
	commands map[string]string // command name -> arg-type
}

// parseSchema builds an argSchema from query-qmp-schema's return value.
func parseSchema(raw json.RawMessage) (*argSchema, error) {
	var list []*schemaEntity
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	s := &argSchema{types: map[string]*schemaEntity{}, commands: map[string]string{}}
	for _, e := range list {
		s.types[e.Name] = e
		if e.MetaType == "command" {
			s.commands[e.Name] = e.ArgType
		}
	}
	return s, nil
}

// object resolves a type name to an object type, looking through
// alternates (BlockdevRef is an object or a node name) and arrays.
func (s *argSchema) object(name string) *schemaEntity {
	for depth := 0; depth < 8; depth++ {
		e := s.types[name]
		if e == nil {
			return nil
		}
		switch e.MetaType {
		case "object":
			return e
		case "array":
			name = e.ElementType
		case "alternate":
			next := ""
			for _, m := range e.Members {
				if t := s.types[m.Type]; t != nil && t.MetaType == "object" {
					next = m.Type
					break
				}
			}
			if next == "" {
				return nil
			}
			name = next
		default:
			return nil
		}
	}
	return nil
}

// members lists the members of object o: its own, and those of the
// variant given (its tag's value in given), or of every variant when
// the tag has no value yet. Each member maps to its type name.
func (s *argSchema) members(o *schemaEntity, given map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	s.collect(o, given, prefix, out, 0)
	return out
}

func (s *argSchema) collect(o *schemaEntity, given map[string]string, prefix string, out map[string]string, depth int) {
	if o == nil || depth > 8 {
		return
	}
	for _, m := range o.Members {
		out[m.Name] = m.Type
	}
	if o.Tag == "" {
		return
	}
	tagValue, haveTag := given[prefix+o.Tag]
	for _, v := range o.Variants {
		if haveTag && v.Case != tagValue {
			continue
		}
		s.collect(s.types[v.Type], given, prefix, out, depth+1)
	}
}

// resolve walks a dotted path ("file" for "file.filename") from a
// command's arguments down to an object.
func (s *argSchema) resolve(cmd string, path []string, given map[string]string) *schemaEntity {
	argType, ok := s.commands[cmd]
	if !ok {
		return nil
	}
	o := s.object(argType)
	prefix := ""
	for _, p := range path {
		t, ok := s.members(o, given, prefix)[p]
		if !ok {
			return nil
		}
		o = s.object(t)
		prefix += p + "."
	}
	return o
}

// argNames lists the argument names at the dotted path below cmd: "id"
// for device_del; "driver", "node-name", "file", ... for blockdev-add; for
// members that are objects the name ends in "." (dotted keys follow), else
// in "=". given holds the key=value pairs already on the line, so that a
// union's discriminator (driver=qcow2) narrows the list to its branch.
func (s *argSchema) argNames(cmd string, path []string, given map[string]string) []string {
	if s == nil {
		return nil
	}
	o := s.resolve(cmd, path, given)
	if o == nil {
		return nil
	}
	prefix := strings.Join(path, ".")
	if prefix != "" {
		prefix += "."
	}
	var names []string
	for name, t := range s.members(o, given, prefix) {
		if _, set := given[prefix+name]; set {
			continue
		}
		if s.object(t) != nil && s.types[t].MetaType != "array" {
			names = append(names, name+".")
			if e := s.types[t]; e.MetaType == "alternate" {
				names = append(names, name+"=") // the alternate's scalar form
			}
			continue
		}
		names = append(names, name+"=")
	}
	sort.Strings(names)
	return names
}

// values lists the values the argument at the dotted key may take, when
// they are few: an enum's values, or true and false.
func (s *argSchema) values(cmd, key string, given map[string]string) []string {
	if s == nil {
		return nil
	}
	parts := strings.Split(key, ".")
	o := s.resolve(cmd, parts[:len(parts)-1], given)
	if o == nil {
		return nil
	}
	prefix := strings.Join(parts[:len(parts)-1], ".")
	if prefix != "" {
		prefix += "."
	}
	t, ok := s.members(o, given, prefix)[parts[len(parts)-1]]
	if !ok {
		return nil
	}
	return s.scalarValues(t, 0)
}

func (s *argSchema) scalarValues(t string, depth int) []string {
	e := s.types[t]
	if e == nil || depth > 4 {
		return nil
	}
	switch e.MetaType {
	case "enum":
		v := append([]string(nil), e.Values...)
		if len(v) == 0 { // QEMU < 6.2 lists only members
			for _, m := range e.Members {
				v = append(v, m.Name)
			}
		}
		sort.Strings(v)
		return v
	case "builtin":
		if e.JSONType == "boolean" {
			return []string{"false", "true"}
		}
	case "alternate":
		var v []string
		for _, m := range e.Members {
			v = append(v, s.scalarValues(m.Type, depth+1)...)
		}
		sort.Strings(v)
		return v
	}
	return nil
}

// transactionActions lists the action types transaction accepts
// (the cases of its actions' union).
func (s *argSchema) transactionActions() []string {
	if s == nil {
		return nil
	}
	o := s.resolve("transaction", nil, nil)
	if o == nil {
		return nil
	}
	var actT string
	for _, m := range o.Members {
		if m.Name == "actions" {
			actT = m.Type
		}
	}
	a := s.object(actT)
	if a == nil {
		return nil
	}
	var names []string
	for _, v := range a.Variants {
		names = append(names, v.Case)
	}
	if len(names) == 0 { // older QEMU: a simple union with a "type" enum
		for _, m := range a.Members {
			if m.Name == "type" {
				names = s.scalarValues(m.Type, 0)
			}
		}
	}
	sort.Strings(names)
	return names
}

// actionArgNames lists argument names of a transaction action (its "data"
// members).
func (s *argSchema) actionArgNames(act string, path []string, given map[string]string) []string {
	o := s.actionData(act)
	if o == nil {
		return nil
	}
	return s.argNames(o.Name, path, given)
}

// actionData returns a pseudo-command name whose arguments are the data of
// transaction action act, registering it on first use.
func (s *argSchema) actionData(act string) *schemaEntity {
	if s == nil {
		return nil
	}
	o := s.resolve("transaction", []string{"actions"}, map[string]string{"actions.type": act})
	if o == nil {
		return nil
	}
	for _, v := range o.Variants {
		if v.Case != act {
			continue
		}
		wrapper := s.object(v.Type)
		if wrapper == nil {
			return nil
		}
		for _, m := range wrapper.Members {
			if m.Name == "data" {
				pseudo := "transaction action " + act
				s.commands[pseudo] = m.Type
				return &schemaEntity{Name: pseudo}
			}
		}
	}
	return nil
}

// fetchSchema runs query-qmp-schema; nil when it fails.
func fetchSchema(ctx context.Context, mon *qmp.Monitor) *argSchema {
	var raw json.RawMessage
	if err := mon.RunContext(ctx, qmp.Command{Name: "query-qmp-schema"}, &raw); err != nil {
		return nil
	}
	s, err := parseSchema(raw)
	if err != nil {
		return nil
	}
	return s
}
