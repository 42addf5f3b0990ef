package qmp_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// warnings collects the messages of warn-level records.
type warnings struct {
	mu   sync.Mutex
	recs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	var name string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "name" {
			name = a.Value.String()
		}
		return true
	})
	w.mu.Lock()
	w.recs = append(w.recs, r.Message+": "+name)
	w.mu.Unlock()
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }

func (w *warnings) WithGroup(string) slog.Handler { return w }

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.recs...)
}

func TestDeprecationWarnings(t *testing.T) {
	ss := newSchemaServer(t, false)
	ctx := ctxT(t, 10*time.Second)
	backup := qmp.DriveBackupArgs{Device: "d0", Target: "/tmp/b", Sync: "full"}
	w := &warnings{}
	early := dial(t, ss.Server, &qmp.Options{Logger: slog.New(w)})
	if err := early.DriveBackup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	early.Close() // the handler has had every record
	if got := w.list(); len(got) != 0 {
		t.Fatalf("warnings before the schema was fetched: %q", got)
	}
	m := dial(t, ss.Server, &qmp.Options{Logger: slog.New(w)})
	if _, err := m.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := m.DriveBackup(ctx, backup); err != nil {
			t.Fatal(err)
		}
		if err := m.BlockSetIOThrottle(ctx, qmp.BlockIOThrottle{Device: "d0"}); err != nil {
			t.Fatal(err)
		}
		if err := m.BlockSetIOThrottle(ctx, qmp.BlockIOThrottle{ID: "vd0"}); err != nil {
			t.Fatal(err)
		}
		if err := m.BlockdevBackup(ctx, qmp.BlockdevBackupArgs{Device: "d0", Target: "t0", Sync: "full"}); err != nil {
			t.Fatal(err)
		}
		if err := m.RunTransaction([]qmp.Command{{Name: "drive-backup", Arguments: backup}}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"qmp: sent a command that QEMU marks deprecated: drive-backup",
		"qmp: sent a member that QEMU marks deprecated: block_set_io_throttle.device",
		"qmp: sent a value that QEMU marks deprecated: transaction.actions.type=drive-backup",
	}
	m.Close() // the Logger's handler has had every record once Close returns
	got := w.list()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// QEMU decodes member names, so the check does too: "\u0065xecute" is
// "execute".
func TestDeprecationEscapedNames(t *testing.T) {
	ss := newSchemaServer(t, false)
	ctx := ctxT(t, 10*time.Second)
	w := &warnings{}
	m := dial(t, ss.Server, &qmp.Options{Logger: slog.New(w)})
	if _, err := m.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	cmd := json.RawMessage(`{"\u0065xecute":"drive-backup","arguments":{"device":"d0","target":"/tmp/b","sync":"full"}}`)
	if err := m.RunContext(ctx, cmd, nil); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if got, want := w.list(), []string{"qmp: sent a command that QEMU marks deprecated: drive-backup"}; !slices.Equal(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}
