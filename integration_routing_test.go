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
