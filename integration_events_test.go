package qmp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

// A migration whose destination command exits at once fails; WaitMigration
// says why, in QEMU's words.
func TestQEMUMigrationFailureReason(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	qemuRun(t, m, "migrate-set-capabilities", map[string]interface{}{
		"capabilities": []map[string]interface{}{{"capability": "events", "state": true}},
	}, nil)
	cur := m.EventCursor()
	qemuRun(t, m, "migrate", map[string]string{"uri": "exec:false"}, nil)
	st, err := m.WaitMigration(ctxT(t, qemuWait), cur)
	var me *qmp.MigrationError
	if st != "" || !errors.As(err, &me) {
		t.Fatalf("WaitMigration after migrate to exec:false = %q, %v; want a *MigrationError", st, err)
	}
	if me.Desc == "" || !strings.Contains(err.Error(), me.Desc) || me.Event.Type != "MIGRATION" || me.Event.Seq <= cur {
		t.Fatalf("MigrationError = %+v (%v), want QEMU's error-desc and the failed event", me, err)
	}
	t.Logf("QEMU's reason: %s", me.Desc)
}

// With the events capability off (QEMU's default) no MIGRATION event is
// coming: WaitMigration says so at once instead of waiting out its ctx.
func TestQEMUWaitMigrationEventsOff(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	start := time.Now()
	st, err := m.WaitMigration(ctxT(t, qemuWait), m.EventCursor())
	if !errors.Is(err, qmp.ErrMigrationEventsOff) || st != "" {
		t.Fatalf("WaitMigration with events off = %q, %v; want ErrMigrationEventsOff", st, err)
	}
	if took := time.Since(start); took > qemuWait/2 {
		t.Fatalf("WaitMigration with events off took %v, want it at once", took)
	}
}

// The same-second caveat of the v2.0.4 waits, and the cursor form that
// does not have it: delete kbd0, add it back and delete it again within
// one second.
func TestQEMUSameSecondDeviceDeleted(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{
		Machine:   "pc",
		Paused:    true,
		ExtraArgs: []string{"-device", "qemu-xhci,id=xhci"},
	})
	kbd := map[string]string{"driver": "usb-kbd", "id": "kbd0", "bus": "xhci.0"}
	del := map[string]string{"id": "kbd0"}
	for attempt := 1; ; attempt++ {
		// Round 1.
		qemuRun(t, m, "device_add", kbd, nil)
		cur1 := m.EventCursor()
		qemuRun(t, m, "device_del", del, nil)
		first, err := m.WaitDeviceDeleted(ctxT(t, qemuWait), "kbd0", cur1)
		if err != nil {
			t.Fatalf("round 1: WaitDeviceDeleted(kbd0): %v", err)
		}
		// Round 2, as v2.0.4 programs (and this README before) wrote it.
		after := uint64(time.Now().Unix())
		qemuRun(t, m, "device_add", kbd, nil)
		cur2 := m.EventCursor()
		qemuRun(t, m, "device_del", del, nil)
		if first.Timestamp.Seconds < after {
			// The rounds straddled a second boundary: no caveat to show.
			qemuWaitType(t, m, cur2, "DEVICE_DELETED")
			if attempt == 5 {
				t.Fatal("5 attempts straddled a second boundary")
			}
			continue
		}
		old, err := m.WaitDeviceDeletedEvent(ctxT(t, qemuWait), "kbd0", after)
		if err != nil {
			t.Fatalf("round 2: WaitDeviceDeletedEvent: %v", err)
		}
		if old.Timestamp != first.Timestamp {
			t.Fatalf("round 2: the seconds-based wait returned the event at %v, want round 1's at %v (the documented caveat)", old.Time(), first.Time())
		}
		second, err := m.WaitDeviceDeleted(ctxT(t, qemuWait), "kbd0", cur2)
		if err != nil {
			t.Fatalf("round 2: WaitDeviceDeleted: %v", err)
		}
		if second.Seq <= cur2 || second.Seq == first.Seq {
			t.Fatalf("round 2: the cursor wait returned Seq %d, want round 2's event (Seq > %d; round 1 was %d)", second.Seq, cur2, first.Seq)
		}
		return
	}
}

// HMP errors are successful QMP replies; RunHumanChecked tells them apart.
func TestQEMURunHumanChecked(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	ctx := ctxT(t, qemuWait)
	for _, cmd := range []string{"device_del nope", "bogus", "object_del nope"} {
		out, err := m.RunHumanChecked(ctx, cmd)
		var he *qmp.HMPError
		if !errors.As(err, &he) || he.Message != strings.TrimRight(out, "\r\n") {
			t.Errorf("RunHumanChecked(%q) = %q, %v; want an *HMPError", cmd, out, err)
		}
	}
	out, err := m.RunHumanChecked(ctx, "info status")
	if err != nil || out != "VM status: running\r\n" {
		t.Errorf("RunHumanChecked(info status) = %q, %v", out, err)
	}
	if v, want := m.Version().String(), binaryVersion(t); v != want {
		t.Errorf("Version().String() = %q, want %q", v, want)
	}
}

// With a history of 10 events, DEVICE_DELETED is evicted by 12 more
// (stop/cont) before the wait: WaitDeviceDeleted answers from QOM that
// the device is gone, where it used to wait until its ctx ended, and a
// plain wait from the cursor says the events were evicted.
func TestQEMUWaitDeviceDeletedAfterEviction(t *testing.T) {
	t.Parallel()
	q := qemutest.Require(t, qemutest.Config{Machine: "pc", Paused: true, ExtraArgs: []string{"-device", "qemu-xhci,id=xhci"}})
	m, err := qmp.Dial(ctxT(t, qemuWait), "unix", q.Sockets[0], &qmp.Options{EventHistory: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	qemuRun(t, m, "device_add", map[string]string{"driver": "usb-kbd", "id": "kbd9", "bus": "xhci.0"}, nil)
	cur := m.EventCursor()
	qemuRun(t, m, "device_del", map[string]string{"id": "kbd9"}, nil)
	qemuWaitType(t, m, cur, "DEVICE_DELETED")
	for i := 0; i < 6; i++ {
		qemuRun(t, m, "cont", nil, nil)
		qemuRun(t, m, "stop", nil, nil)
	}
	qemuWaitType(t, m, m.EventCursor()-1, "STOP")
	if _, err := m.WaitEventAfter(ctxT(t, qemuWait), cur, qmp.EventFilter{Types: []string{"DEVICE_DELETED"}}); !errors.As(err, new(*qmp.OverflowError)) {
		t.Fatalf("WaitEventAfter(DEVICE_DELETED) after eviction = %v, want an *OverflowError", err)
	}
	if r, err := m.WaitDeviceDeleted(ctxT(t, qemuWait), "kbd9", cur); err != nil || r.Seq != 0 {
		t.Fatalf("WaitDeviceDeleted(kbd9) after eviction = Seq %d, %v; want QOM's answer that it is gone", r.Seq, err)
	}
}
