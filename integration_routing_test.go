//go:build unix

package qmp_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

// TestQEMUHostileInputsKeepRouting sends a real QEMU what once broke
// order matching (a command nesting past its parser's limit, values that are
// not objects), then a command at the limit exactly, then a few hundred
// concurrent mixed commands, and checks every reply is its caller's own:
// each device_del names its own id, which QEMU's error repeats.
func TestQEMUHostileInputsKeepRouting(t *testing.T) {
	_, m := qemuMonitor(t, qemutest.Config{})
	nested := func(n int) json.RawMessage {
		return json.RawMessage(strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	for name, cmd := range map[string]interface{}{
		"nesting 1,100": qmp.Command{Name: "query-name", Arguments: map[string]any{"x": nested(1100)}},
		"42":            42,
		"nil":           nil,
		"true":          true,
	} {
		if err := m.Run(cmd, nil); !errors.Is(err, qmp.ErrInvalidCommand) {
			t.Fatalf("%s: %v, want ErrInvalidCommand (nothing sent)", name, err)
		}
	}
	// 1,024 levels, the limit: QEMU takes it as one message and answers once
	// (query-name has no argument "x").
	err := m.Run(qmp.Command{Name: "query-name", Arguments: map[string]any{"x": nested(1022)}}, nil)
	var ge *qmp.GenericError
	if !errors.As(err, &ge) || strings.HasPrefix(ge.Desc, "JSON") {
		t.Fatalf("a command at the nesting limit: %v, want QEMU's own error about the argument", err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if bad++; bad <= 5 {
			t.Errorf(format, args...)
		}
	}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				switch i % 3 {
				case 0:
					var st struct {
						Status *string `json:"status"`
					}
					if err := m.Run(qmp.Command{Name: "query-status"}, &st); err != nil || st.Status == nil {
						fail("query-status: %+v, %v", st, err)
					}
				case 1:
					var kvm struct {
						Enabled *bool `json:"enabled"`
						Present *bool `json:"present"`
					}
					if err := m.Run(qmp.Command{Name: "query-kvm"}, &kvm); err != nil || kvm.Enabled == nil || kvm.Present == nil {
						fail("query-kvm: %+v, %v", kvm, err)
					}
				default:
					id := fmt.Sprintf("nodev-%d-%d", g, i)
					err := m.Run(qmp.Command{Name: "device_del", Arguments: map[string]string{"id": id}}, nil)
					var nf *qmp.DeviceNotFound
					if !errors.As(err, &nf) || !strings.Contains(nf.Desc, "'"+id+"'") {
						fail("device_del %s: %v, want its own DeviceNotFound", id, err)
					}
				}
			}
		}(g)
	}
	wg.Wait()
	if bad > 0 {
		t.Fatalf("%d of 320 replies were not their caller's", bad)
	}
}

// In-band commands carrying ids in the spellings QEMU rewrites ("\u0061"
// comes back as "a", members reordered, -0 as 0) run beside out-of-band
// commands on a real QEMU: every caller gets its own reply, and an in-band
// id of RunOOB's form is refused before sending.
func TestQEMUInbandIDsBesideOOB(t *testing.T) {
	t.Parallel()
	m := qemuOOBMonitor(t)
	ids := []string{`"\u0061"`, `{"b": [1, "x"], "a": -0}`, `18446744073709551615`, `"caf\u00e9"`, `"\ud83d\ude00"`}
	var wg sync.WaitGroup
	for g, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				var v struct {
					QEMU struct{ Major int } `json:"qemu"`
				}
				if g%2 == 0 {
					err := m.RunContext(ctxT(t, qemuWait), json.RawMessage(`{"execute": "query-version", "id": `+id+`}`), &v)
					if err != nil || v.QEMU.Major < 5 {
						t.Errorf("query-version with id %s = %+v, %v", id, v, err)
						return
					}
				} else {
					var name map[string]any
					err := m.RunContext(ctxT(t, qemuWait), json.RawMessage(`{"execute": "query-name", "id": `+id+`}`), &name)
					if err != nil || name == nil || len(name) > 1 {
						t.Errorf("query-name with id %s = %v, %v", id, name, err)
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				err := m.RunOOB(ctxT(t, qemuWait), qmp.Command{Name: "migrate-pause"}, nil)
				var ge *qmp.GenericError
				if !errors.As(err, &ge) {
					t.Errorf("RunOOB(migrate-pause) outside postcopy = %v, want QEMU's error", err)
					return
				}
			}
		}()
	}
	waitAll(t, &wg, 2*qemuWait)
	err := m.Run(json.RawMessage(`{"execute": "query-name", "id": "oob-1"}`), nil)
	var ce *qmp.CommandError
	if !errors.As(err, &ce) || ce.Member != "id" {
		t.Fatalf("an in-band id of RunOOB's form = %v, want a *CommandError", err)
	}
}
