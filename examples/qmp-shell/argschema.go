package main

// What completion knows about commands' arguments, read from the live
// schema (qmp.Monitor.Schema, QEMU's query-qmp-schema): the argument names
// of a command, the members of nested objects (dotted keys), the members
// of the union branch a discriminator selects, and enum values.

import (
	"context"
	"sort"
	"strings"

	qmp "github.com/0xef53/go-qmp/v2"
)

// argSchema answers completion's questions about arguments.
type argSchema struct {
	s *qmp.Schema
	// actions maps "transaction action NAME" to the data type of that
	// transaction action, so that action lines complete like commands.
	actions map[string]*qmp.SchemaType
}

// newArgSchema wraps a parsed schema; nil gives nil.
func newArgSchema(s *qmp.Schema) *argSchema {
	if s == nil {
		return nil
	}
	a := &argSchema{s: s, actions: map[string]*qmp.SchemaType{}}
	if u := a.actionUnion(); u != nil {
		for _, v := range u.Variants {
			if v.Type == nil {
				continue
			}
			for _, m := range v.Type.Members {
				if m.Name == "data" {
					a.actions[actionKey(v.Case)] = m.Type
				}
			}
		}
	}
	return a
}

// fetchSchema gets the monitor's schema; nil when it fails.
func fetchSchema(ctx context.Context, mon *qmp.Monitor) *argSchema {
	s, err := mon.Schema(ctx)
	if err != nil {
		return nil
	}
	return newArgSchema(s)
}

func actionKey(act string) string { return "transaction action " + act }

// args returns the arguments type of a command (or transaction action key).
func (a *argSchema) args(cmd string) *qmp.SchemaType {
	if t, ok := a.actions[cmd]; ok {
		return t
	}
	if c := a.s.Command(cmd); c != nil {
		return c.Args
	}
	return nil
}

// object resolves t to an object type, looking through arrays and
// alternates (BlockdevRef is an object or a node name).
func object(t *qmp.SchemaType) *qmp.SchemaType {
	for depth := 0; t != nil && depth < 8; depth++ {
		switch t.MetaType {
		case "object":
			return t
		case "array":
			t = t.Element
		case "alternate":
			var next *qmp.SchemaType
			for _, alt := range t.Alternatives {
				if alt != nil && alt.MetaType == "object" {
					next = alt
					break
				}
			}
			t = next
		default:
			return nil
		}
	}
	return nil
}

// members lists the members of object o: its own, and those of the branch
// its discriminator's value in given selects, or of every branch when the
// line has no value for it yet. given is keyed by dotted key; prefix is
// o's own dotted position ("file." below blockdev-add).
func members(o *qmp.SchemaType, given map[string]string, prefix string) map[string]*qmp.SchemaType {
	out := map[string]*qmp.SchemaType{}
	collect(o, given, prefix, out, map[*qmp.SchemaType]bool{})
	return out
}

// collect visits each type once: the schema is QEMU's to choose, and
// branches that share types (or list themselves) would otherwise cost
// more than the schema's size.
func collect(o *qmp.SchemaType, given map[string]string, prefix string, out map[string]*qmp.SchemaType, seen map[*qmp.SchemaType]bool) {
	if o == nil || seen[o] {
		return
	}
	seen[o] = true
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
		collect(v.Type, given, prefix, out, seen)
	}
}

// resolve walks a dotted path ("file" for "file.filename") from a
// command's arguments down to an object.
func (a *argSchema) resolve(cmd string, path []string, given map[string]string) *qmp.SchemaType {
	o := object(a.args(cmd))
	prefix := ""
	for _, p := range path {
		t, ok := members(o, given, prefix)[p]
		if !ok {
			return nil
		}
		o = object(t)
		prefix += p + "."
	}
	return o
}

func dotted(path []string) string {
	if len(path) == 0 {
		return ""
	}
	return strings.Join(path, ".") + "."
}

// argNames lists the argument names at the dotted path below cmd: "id="
// for device_del; "driver=", "node-name=", "file.", ... for blockdev-add:
// members that are objects end in "." (dotted keys follow), others in "=".
// given holds the key=value pairs already on the line: they are not
// offered again, and a union's discriminator (driver=qcow2) narrows the
// list to its branch.
func (a *argSchema) argNames(cmd string, path []string, given map[string]string) []string {
	if a == nil {
		return nil
	}
	o := a.resolve(cmd, path, given)
	if o == nil {
		return nil
	}
	prefix := dotted(path)
	var names []string
	for name, t := range members(o, given, prefix) {
		if _, set := given[prefix+name]; set {
			continue
		}
		switch {
		case t != nil && t.MetaType == "object":
			names = append(names, name+".")
		case t != nil && t.MetaType == "alternate" && object(t) != nil:
			names = append(names, name+".", name+"=") // inline object or its scalar form
		default:
			names = append(names, name+"=")
		}
	}
	sort.Strings(names)
	return names
}

// values lists the values the argument at the dotted key may take when
// they are few: an enum's values, or false and true.
func (a *argSchema) values(cmd, key string, given map[string]string) []string {
	if a == nil {
		return nil
	}
	parts := strings.Split(key, ".")
	o := a.resolve(cmd, parts[:len(parts)-1], given)
	if o == nil {
		return nil
	}
	t := members(o, given, dotted(parts[:len(parts)-1]))[parts[len(parts)-1]]
	return scalarValues(t, map[*qmp.SchemaType]bool{})
}

// scalarValues visits each type once, as collect does.
func scalarValues(t *qmp.SchemaType, seen map[*qmp.SchemaType]bool) []string {
	if t == nil || seen[t] {
		return nil
	}
	seen[t] = true
	var v []string
	switch t.MetaType {
	case "enum":
		v = append(v, t.Values...)
	case "builtin":
		if t.JSONType == "boolean" {
			v = []string{"false", "true"}
		}
	case "alternate":
		for _, alt := range t.Alternatives {
			v = append(v, scalarValues(alt, seen)...)
		}
	}
	sort.Strings(v)
	return v
}

// actionUnion is the type of one element of transaction's actions.
func (a *argSchema) actionUnion() *qmp.SchemaType {
	c := a.s.Command("transaction")
	if c == nil || c.Args == nil {
		return nil
	}
	for _, m := range c.Args.Members {
		if m.Name == "actions" {
			return object(m.Type)
		}
	}
	return nil
}

// transactionActions lists the action types transaction accepts.
func (a *argSchema) transactionActions() []string {
	if a == nil {
		return nil
	}
	var names []string
	for k := range a.actions {
		names = append(names, strings.TrimPrefix(k, actionKey("")))
	}
	sort.Strings(names)
	return names
}

// actionCommand returns the name under which argNames and values know the
// data of transaction action act, or "" when the schema has no such action.
func (a *argSchema) actionCommand(act string) string {
	if a == nil {
		return ""
	}
	if _, ok := a.actions[actionKey(act)]; !ok {
		return ""
	}
	return actionKey(act)
}
