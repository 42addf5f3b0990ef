package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// TestZeroValues calls every method of a zero Monitor with zero arguments
// (a ctx that never ends): none panics or blocks, and those that return an
// error return one for which IsSocketClosed holds (or that refuses the
// arguments before sending). The zero Subscription's methods are harmless.
func TestZeroValues(t *testing.T) {
	var m qmp.Monitor
	v := reflect.ValueOf(&m)
	errType := reflect.TypeFor[error]()
	for i := 0; i < v.NumMethod(); i++ {
		meth, mt := v.Method(i), v.Type().Method(i)
		args := make([]reflect.Value, meth.Type().NumIn())
		for j := range args {
			at := meth.Type().In(j)
			if at == reflect.TypeFor[context.Context]() {
				args[j] = reflect.ValueOf(context.Background())
			} else {
				args[j] = reflect.Zero(at)
			}
		}
		if meth.Type().IsVariadic() {
			args = args[:len(args)-1]
		}
		done := make(chan error, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- fmt.Errorf("panicked: %v", p)
				}
			}()
			out := meth.Call(args)
			for _, o := range out {
				if o.Type() == errType && !o.IsNil() {
					err := o.Interface().(error)
					if !qmp.IsSocketClosed(err) && !errors.Is(err, qmp.ErrInvalidCommand) {
						done <- fmt.Errorf("returned %v, want the connection's end", err)
						return
					}
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("zero Monitor's %s: %v", mt.Name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("zero Monitor's %s blocked", mt.Name)
		}
	}
	if _, ok := <-m.Done(); ok {
		t.Error("the zero Monitor's Done is not closed")
	}
	var s qmp.Subscription
	s.Close()
	if s.Err() == nil {
		t.Error("the zero Subscription's Err is nil")
	}
}

// isRefusal reports errors returned before anything could be sent for the
// arguments' sake.
func isRefusal(err error) bool {
	for _, target := range []error{qmp.ErrInvalidCommand, qmp.ErrOOBNotEnabled, qmp.ErrFDPassingUnsupported} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// callAll calls every method of m with zero arguments and ctx, and checks
// each error it returns with ok, under a watchdog.
func callAll(t *testing.T, m *qmp.Monitor, ctx context.Context, what string, ok func(error) bool) {
	t.Helper()
	v := reflect.ValueOf(m)
	errType := reflect.TypeFor[error]()
	for i := 0; i < v.NumMethod(); i++ {
		meth, mt := v.Method(i), v.Type().Method(i)
		args := make([]reflect.Value, meth.Type().NumIn())
		takesCtx := false
		for j := range args {
			at := meth.Type().In(j)
			if at == reflect.TypeFor[context.Context]() {
				args[j], takesCtx = reflect.ValueOf(ctx), true
			} else {
				args[j] = reflect.Zero(at)
			}
		}
		if meth.Type().IsVariadic() {
			args = args[:len(args)-1]
		}
		if what == "a ctx that has ended" && !takesCtx {
			continue
		}
		done := make(chan error, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- fmt.Errorf("panicked: %v", p)
				}
			}()
			for _, o := range meth.Call(args) {
				if o.Type() == errType && !o.IsNil() {
					if err := o.Interface().(error); !ok(err) && !isRefusal(err) {
						done <- fmt.Errorf("returned %v", err)
						return
					}
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s with %s: %v", mt.Name, what, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s with %s blocked", mt.Name, what)
		}
	}
}

// TestErrorPolicy: every method that takes a ctx, given one that has
// ended, returns an error matching it (or none, or a refusal of its zero
// arguments); after Close, every method returns the connection's end.
func TestErrorPolicy(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	callAll(t, m, ctx, "a ctx that has ended", func(err error) bool { return errors.Is(err, context.Canceled) })
	m.Close()
	callAll(t, m, context.Background(), "the connection ended", qmp.IsSocketClosed)
}

// The review's edges of the error policy: v2.0.4's RunTransaction accepts
// a non-pointer result; the fd commands name themselves in QEMU's
// refusals; a closed file is refused before sending; a typed query whose
// reply does not decode returns no partial result; Schema with an ended
// ctx fetches nothing.
func TestErrorPolicyEdges(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("query-block", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{RawReturn: json.RawMessage(`[{"device": "a"}, {"device": 7}]`)}
	})
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	if err := m.RunTransaction([]qmp.Command{{Name: "abort"}}, map[string]any{}, nil); err != nil {
		t.Errorf("RunTransaction with a map result (v2.0.4 accepted it): %v", err)
	}
	err := m.CloseFD(ctx, "nope")
	var ge *qmp.GenericError
	if !errors.As(err, &ge) || !strings.HasPrefix(err.Error(), "qmp: closefd failed: ") {
		t.Errorf("CloseFD(nope) = %v, want QEMU's error wrapped with the command's name", err)
	}
	f, _ := os.Open(os.DevNull)
	f.Close()
	before := len(s.Requests())
	if err := m.GetFD(ctx, "x", f); !errors.Is(err, qmp.ErrInvalidCommand) {
		t.Errorf("GetFD(closed file) = %v, want a *CommandError", err)
	}
	if blocks, err := m.QueryBlock(ctx); err == nil || blocks != nil {
		t.Errorf("QueryBlock with an undecodable reply = %v, %v; want nil and an error", blocks, err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Schema(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Schema(ended ctx) = %v", err)
	}
	for _, r := range s.Requests()[before:] {
		if r.Name != "query-block" {
			t.Errorf("sent %s, want only query-block", r.Name)
		}
	}
}
