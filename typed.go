package qmp

// The machinery of the typed commands (commands_*.go): each is declared
// once with its QAPI name, argument and return types, which both the
// method and the conformance test (conformance_test.go) use, so what the
// methods send is exactly what is checked against QEMU's schema.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
)

// typedCommand is one typed command as the conformance test sees it.
type typedCommand struct {
	name string
	args reflect.Type // nil: the command takes no arguments
	ret  reflect.Type // nil: the return value ({}) is not decoded
}

// typedCommands lists every typed command, filled in at init.
var typedCommands []typedCommand

// typedVariant is a struct for the branch of a union, or another part of
// an argument or return type, that the conformance test checks at a
// schema path (schema_path.go).
type typedVariant struct {
	path string
	t    reflect.Type
	ret  bool // the type is read from QEMU (a return value or event data)
}

var typedVariants []typedVariant

func defVariant[T any](path string, ret bool) struct{} {
	typedVariants = append(typedVariants, typedVariant{path: path, t: reflect.TypeFor[T](), ret: ret})
	return struct{}{}
}

// qapiCommand is a command that takes arguments A (struct{}: none) and
// returns R (struct{}: nothing of interest). declared are the JSON names
// of A's own fields: the members checkSupported checks (what Props adds
// is the driver's, which QEMU's schema may not describe).
type qapiCommand[A, R any] struct {
	name     string
	declared map[string]bool
}

func defCommand[A, R any](name string) qapiCommand[A, R] {
	tc := typedCommand{name: name, args: reflect.TypeFor[A](), ret: reflect.TypeFor[R]()}
	if tc.args == reflect.TypeFor[struct{}]() {
		tc.args = nil
	}
	if tc.ret == reflect.TypeFor[struct{}]() {
		tc.ret = nil
	}
	typedCommands = append(typedCommands, tc)
	return qapiCommand[A, R]{name: name, declared: jsonFields(tc.args)}
}

// jsonFields returns the JSON names of struct t's fields.
func jsonFields(t reflect.Type) map[string]bool {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	names := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "-" && name != "" {
			names[name] = true
		}
	}
	return names
}

// run sends the command with args (nil: none) and decodes its return.
// Errors name the command and wrap QEMU's error (*GenericError and its
// classes, for errors.As) or the connection's (*ClosedError).
func (c qapiCommand[A, R]) run(ctx context.Context, m *Monitor, args *A) (R, error) {
	return c.send(m, args, func(cmd Command, r *R) error { return m.RunContext(ctx, cmd, r) })
}

// runWithFile is run with f's descriptor passed beside the command
// (RunWithFile).
func (c qapiCommand[A, R]) runWithFile(ctx context.Context, m *Monitor, args *A, f *os.File) (R, error) {
	return c.send(m, args, func(cmd Command, r *R) error { return m.RunWithFile(ctx, cmd, r, f) })
}

// send refuses what the connected QEMU lacks, when its schema is known,
// and recognises QEMU's refusal of it otherwise (*UnsupportedError).
func (c qapiCommand[A, R]) send(m *Monitor, args *A, roundTrip func(Command, *R) error) (R, error) {
	var r R
	var a interface{}
	if args != nil {
		a = args
	}
	if m.schema.known.Load() != nil {
		var enc []byte
		if args != nil {
			enc, _ = json.Marshal(args) // an error is RunContext's to report
		}
		if err := m.checkSupported(c.name, enc, c.declared); err != nil {
			return r, fmt.Errorf("qmp: %s failed: %w", c.name, err)
		}
	}
	if err := roundTrip(Command{Name: c.name, Arguments: a}, &r); err != nil {
		var zero R // a decode error may have filled r partly
		return zero, fmt.Errorf("qmp: %s failed: %w", c.name, m.recogniseUnsupported(c.name, err))
	}
	return r, nil
}

// ptr is run for methods that return a pointer: nil with every error.
func (c qapiCommand[A, R]) ptr(ctx context.Context, m *Monitor, args *A) (*R, error) {
	return pointerTo(c.run(ctx, m, args))
}

func pointerTo[R any](r R, err error) (*R, error) {
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// do is run for commands whose return value is of no interest.
func (c qapiCommand[A, R]) do(ctx context.Context, m *Monitor, args *A) error {
	_, err := c.run(ctx, m, args)
	return err
}

// mergeObjects encodes each part (a struct, a map, or nil) as a JSON
// object and joins their members into one object, the way QEMU's flat
// unions and free-form properties expect them. A member set by two parts
// is an error.
func mergeObjects(parts ...interface{}) ([]byte, error) {
	out := []byte{'{'}
	seen := map[string]bool{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		if v := reflect.ValueOf(p); (v.Kind() == reflect.Map || v.Kind() == reflect.Pointer) && v.IsNil() {
			continue
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(b, &members); err != nil {
			return nil, fmt.Errorf("qmp: properties of type %T are not a JSON object", p)
		}
		// Keep the order encoding/json gave each part.
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.Token()
		for dec.More() {
			tok, _ := dec.Token()
			var skip json.RawMessage
			dec.Decode(&skip)
			k := tok.(string)
			if seen[k] {
				return nil, fmt.Errorf("qmp: member %q is set twice", k)
			}
			seen[k] = true
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = appendString(out, k)
			out = append(out, ':')
			out = append(out, members[k]...)
		}
	}
	return append(out, '}'), nil
}
