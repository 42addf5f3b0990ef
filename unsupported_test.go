package qmp_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// With the schema fetched, a typed call that names a member or command the
// QEMU lacks is refused before sending, and says since when it exists.
func TestUnsupportedRefusedBeforeSending(t *testing.T) {
	raw, err := os.ReadFile("testdata/qmp-schema-5.2.json")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, qmptest.Config{Version: "5.2.0", Schema: raw})
	m := dial(t, s, nil)
	ctx := ctxT(t, 10*time.Second)
	if _, err := m.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	before := len(s.Requests())
	err = m.Screendump(ctx, qmp.ScreendumpArgs{Filename: "/tmp/x.png", Format: "png"})
	var ue *qmp.UnsupportedError
	if !errors.As(err, &ue) || ue.Path != "screendump.format" || ue.Since != "7.1" || ue.Err != nil ||
		ue.Version.QEMU.Major != 5 || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Screendump with a format on 5.2 = %v (%+v), want an *UnsupportedError for screendump.format since 7.1", err, ue)
	}
	const want = "qmp: screendump failed: qmp: QEMU 5.2.0 does not have screendump.format (QEMU 7.1 and later have it)"
	if err.Error() != want {
		t.Errorf("error text:\n%s\nwant:\n%s", err, want)
	}
	if n := len(s.Requests()); n != before {
		t.Errorf("%d commands reached QEMU, want none", n-before)
	}
	// What 5.2 has goes through.
	s.Handle("screendump", func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{} })
	if err := m.Screendump(ctx, qmp.ScreendumpArgs{Filename: "/tmp/x.ppm"}); err != nil {
		t.Errorf("Screendump without a format on 5.2: %v", err)
	}
}

func TestUnsupportedCommandRefusedBeforeSending(t *testing.T) {
	s := newServer(t, qmptest.Config{Schema: json.RawMessage(`[{"name":"query-status","meta-type":"command","arg-type":"0","ret-type":"0"},{"name":"0","meta-type":"object","members":[]}]`)})
	m := dial(t, s, nil)
	ctx := ctxT(t, 10*time.Second)
	if _, err := m.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	err := m.JobPause(ctx, "j0")
	var ue *qmp.UnsupportedError
	if !errors.As(err, &ue) || ue.Path != "job-pause" || ue.Err != nil {
		t.Fatalf("JobPause on a QEMU without job-pause = %v, want an *UnsupportedError for job-pause", err)
	}
	for _, r := range s.Requests() {
		if r.Name == "job-pause" {
			t.Error("job-pause was sent")
		}
	}
}

// Without the schema, QEMU's own refusal is recognised; the QEMU error
// stays reachable, and Run keeps returning it bare.
func TestUnsupportedRecognisedInQEMUsAnswer(t *testing.T) {
	s := newServer(t, qmptest.Config{Version: "10.0.2"})
	s.Handle("migrate-set-parameters", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "Parameter 'compress-level' is unexpected"}
	})
	s.Handle("job-pause", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{ErrClass: "CommandNotFound", ErrDesc: "The command job-pause has not been found"}
	})
	s.Handle("migrate-incoming", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "Parameter 'uri' is missing"}
	})
	m := dial(t, s, nil)
	ctx := ctxT(t, 10*time.Second)
	level := int64(1)
	err := m.MigrateSetParameters(ctx, qmp.MigrationParameters{CompressLevel: &level})
	var ue *qmp.UnsupportedError
	var ge *qmp.GenericError
	if !errors.As(err, &ue) || ue.Path != "migrate-set-parameters.compress-level" || ue.Until != "9.0" || !errors.As(err, &ge) || ge.Desc != "Parameter 'compress-level' is unexpected" {
		t.Errorf("MigrateSetParameters refused by QEMU = %v, want an *UnsupportedError (until 9.0) wrapping QEMU's *GenericError", err)
	}
	if want := "QEMU 10.0.2 does not have migrate-set-parameters.compress-level (QEMU 9.0 was the last to have it): GenericError error: Parameter 'compress-level' is unexpected"; !strings.Contains(err.Error(), want) {
		t.Errorf("error text %q does not contain %q", err, want)
	}
	err = m.JobPause(ctx, "j0")
	var cnf *qmp.CommandNotFound
	if !errors.As(err, &ue) || ue.Path != "job-pause" || !errors.As(err, &cnf) {
		t.Errorf("JobPause refused by QEMU = %v, want an *UnsupportedError wrapping *CommandNotFound", err)
	}
	// Other refusals are QEMU's alone.
	err = m.MigrateIncoming(ctx, qmp.MigrateIncomingArgs{})
	if errors.As(err, &ue) || !errors.As(err, &ge) {
		t.Errorf("MigrateIncoming refused for another reason = %v, want QEMU's error only", err)
	}
	s.Handle("block-job-pause", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{ErrClass: "CommandNotFound", ErrDesc: "Deprecated command block-job-pause disabled by policy"}
	})
	if err := m.BlockJobPause(ctx, "j0"); errors.As(err, &ue) || !errors.As(err, &cnf) {
		t.Errorf("BlockJobPause disabled by -compat policy = %v, want QEMU's *CommandNotFound only (QEMU has it)", err)
	}
	// A nested member is named as a schema path.
	s.Handle("migrate", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "Parameter 'channels[0].addr.bogus' is unexpected"}
	})
	if err := m.Migrate(ctx, qmp.MigrateArgs{URI: "unix:/x"}); !errors.As(err, &ue) || ue.Path != "migrate.channels.addr.bogus" {
		t.Errorf("Migrate refused for a nested member = %v, want an *UnsupportedError for migrate.channels.addr.bogus", err)
	}
	// Run with an untyped command keeps v2.0.4's behaviour.
	err = m.Run(qmp.Command{Name: "migrate-set-parameters", Arguments: map[string]int{"compress-level": 1}}, nil)
	if errors.As(err, &ue) {
		t.Errorf("Run = %v, want QEMU's error as v2.0.4 returned it", err)
	}
	if _, ok := err.(*qmp.GenericError); !ok {
		t.Errorf("Run = %T, want a bare *GenericError", err)
	}
}

// With the schema known, a member it has is not missing, only misplaced
// (another union branch's): that refusal stays QEMU's.
func TestUnsupportedNotForAMisplacedMember(t *testing.T) {
	s := newServer(t, qmptest.Config{}) // QEMU 7.2's schema
	s.Handle("blockdev-add", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "Parameter 'filename' is unexpected"}
	})
	m := dial(t, s, nil)
	ctx := ctxT(t, 10*time.Second)
	if _, err := m.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	err := m.BlockdevAdd(ctx, qmp.BlockdevOptions{Driver: "null-co", NodeName: "n0", Props: map[string]any{"filename": "/x"}})
	var ue *qmp.UnsupportedError
	var ge *qmp.GenericError
	if errors.As(err, &ue) || !errors.As(err, &ge) {
		t.Errorf("BlockdevAdd of null-co with a file option = %v, want QEMU's error only", err)
	}
	// Props are the driver's: not checked before sending.
	s.Handle("device_add", func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{} })
	if err := m.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "virtio-net-pci", ID: "n0", Props: map[string]any{"netdev": "hn0"}}); err != nil {
		t.Errorf("DeviceAdd with driver properties, schema known = %v, want it sent", err)
	}
}
