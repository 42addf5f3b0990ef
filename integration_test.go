package qmp_test

// Integration tests against a real QEMU 7.2 (internal/qemutest). Each test
// starts its own guest-less QEMU, so they run in parallel. The expected
// messages and their order come from /work/shared/qemu/transcripts.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

// qemuWait bounds every wait for something QEMU does promptly: a hang
// detector, not a speed target.
const qemuWait = 10 * time.Second

// qemuMonitor starts a QEMU for the test and connects a Monitor to its
// first QMP socket; the Monitor is closed, then QEMU stopped, at the end.
func qemuMonitor(t *testing.T, cfg qemutest.Config) (*qemutest.QEMU, *qmp.Monitor) {
	t.Helper()
	q := qemutest.Require(t, cfg)
	return q, qemuConnect(t, q.Sockets[0])
}

// qemuConnect connects a Monitor to a QMP socket, closed at the end of the
// test.
func qemuConnect(t *testing.T, path string) *qmp.Monitor {
	t.Helper()
	m, err := qmp.NewMonitor(path, 5*time.Second)
	if err != nil {
		t.Fatalf("NewMonitor(%s): %v", path, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// qemuRun runs a command that must succeed and decodes its return into res.
func qemuRun(t *testing.T, m *qmp.Monitor, name string, args, res interface{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), qemuWait)
	defer cancel()
	if err := m.RunContext(ctx, qmp.Command{Name: name, Arguments: args}, res); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// qemuNow is the current Unix second, the `after` of the v2.0.4 waits: an
// event QEMU sends from now on has a timestamp at or after it.
func qemuNow() uint64 { return uint64(time.Now().Unix()) }

// qemuStatus returns query-status's "status".
func qemuStatus(t *testing.T, m *qmp.Monitor) string {
	t.Helper()
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	qemuRun(t, m, "query-status", nil, &st)
	if st.Running != (st.Status == "running") {
		t.Fatalf("query-status: status %q with running=%v", st.Status, st.Running)
	}
	return st.Status
}

// qemuEventTypes lists the types of records, in order.
func qemuEventTypes(recs []qmp.EventRecord) []string {
	types := make([]string, len(recs))
	for i, r := range recs {
		types[i] = r.Type
	}
	return types
}

// qemuData decodes an event's data into a map for exact comparison.
func qemuData(t *testing.T, e qmp.Event) map[string]interface{} {
	t.Helper()
	var d map[string]interface{}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("%s data %s: %v", e.Type, e.Data, err)
	}
	return d
}

// qemuWaitType waits for the first event of type typ after cursor.
func qemuWaitType(t *testing.T, m *qmp.Monitor, cursor qmp.EventCursor, typ string) qmp.EventRecord {
	t.Helper()
	r, err := m.WaitEventAfter(ctxT(t, qemuWait), cursor, qmp.EventFilter{Types: []string{typ}})
	if err != nil {
		t.Fatalf("waiting for %s after Seq %d: %v", typ, cursor, err)
	}
	return r
}

// binaryVersion is the version the QEMU binary reports with --version.
func binaryVersion(t *testing.T) string {
	t.Helper()
	v, err := qemutest.Version()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestQEMUHandshakeAndVersion(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})

	if v, want := m.Version().String(), binaryVersion(t); v != want {
		t.Fatalf("Version() = %s, want %s (what the binary's --version says)", v, want)
	}
	if caps := m.Capabilities(); !slices.Contains(caps, "oob") {
		t.Errorf("Capabilities() = %q, want it to contain \"oob\"", caps)
	}
	if m.OOBEnabled() {
		t.Error("OOBEnabled() = true without Options.EnableOOB")
	}
	if st := qemuStatus(t, m); st != "running" {
		t.Errorf("query-status: status %q, want running", st)
	}
	var qv qmp.Version
	qemuRun(t, m, "query-version", nil, &qv)
	if qv != m.Version() {
		t.Errorf("query-version = %+v, greeting said %+v", qv, m.Version())
	}
}

func TestQEMUErrorClasses(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	run := func(name string, args interface{}) error {
		err := m.RunContext(ctxT(t, qemuWait), qmp.Command{Name: name, Arguments: args}, nil)
		if err == nil {
			t.Fatalf("%s %v: no error", name, args)
		}
		return err
	}
	// want checks the class and text of a concrete error's *GenericError,
	// and that errors.As finds that same *GenericError.
	want := func(err error, ge *qmp.GenericError, class, desc string) {
		t.Helper()
		if ge == nil || ge.Class != class || ge.Desc != desc {
			t.Errorf("got %+v, want class %q desc %q", ge, class, desc)
		}
		var viaAs *qmp.GenericError
		if !errors.As(err, &viaAs) || viaAs != ge {
			t.Errorf("errors.As(%T) to *GenericError = %p, want %p", err, viaAs, ge)
		}
	}

	err := run("no-such-command", nil)
	if cnf, ok := err.(*qmp.CommandNotFound); !ok {
		t.Errorf("unknown command: %T %v, want *qmp.CommandNotFound", err, err)
	} else {
		want(err, cnf.GenericError, "CommandNotFound", "The command no-such-command has not been found")
	}

	err = run("query-name", map[string]int{"x": 1})
	if ge, ok := err.(*qmp.GenericError); !ok {
		t.Errorf("bad argument: %T %v, want *qmp.GenericError", err, err)
	} else {
		want(err, ge, "GenericError", "Parameter 'x' is unexpected")
	}

	err = run("device_del", map[string]string{"id": "nope"})
	if dnf, ok := err.(*qmp.DeviceNotFound); !ok {
		t.Errorf("device_del of a missing id: %T %v, want *qmp.DeviceNotFound", err, err)
	} else {
		want(err, dnf.GenericError, "DeviceNotFound", "Device 'nope' not found")
	}

	err = run("block-job-cancel", map[string]string{"device": "nope"})
	if dna, ok := err.(*qmp.DeviceNotActive); !ok {
		t.Errorf("block-job-cancel of an unknown job: %T %v, want *qmp.DeviceNotActive", err, err)
	} else {
		want(err, dna.GenericError, "DeviceNotActive", "Block job 'nope' not found")
	}

	// Errors leave the connection usable.
	if st := qemuStatus(t, m); st != "running" {
		t.Errorf("query-status after errors: %q, want running", st)
	}
}

func TestQEMULifecycleEvents(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})

	// step runs cmd and returns the one event it causes. QEMU's main loop
	// performs system_reset and system_powerdown after the command has
	// returned, so their event can come after the reply: wait for it.
	step := func(cmd, wantEvent string) qmp.EventRecord {
		t.Helper()
		cursor := m.EventCursor()
		qemuRun(t, m, cmd, nil, nil)
		r := qemuWaitType(t, m, cursor, wantEvent)
		if got := m.EventsAfter(cursor, qmp.EventFilter{}); len(got) != 1 || got[0].Seq != r.Seq {
			t.Fatalf("events after %s: %q, want [%s]", cmd, qemuEventTypes(got), wantEvent)
		}
		return r
	}

	step("stop", "STOP")
	if st := qemuStatus(t, m); st != "paused" {
		t.Fatalf("status after stop: %q, want paused", st)
	}

	after := qemuNow()
	cursor := m.EventCursor()
	qemuRun(t, m, "cont", nil, nil)
	ev, err := m.WaitMachineResumeStateEvent(ctxT(t, qemuWait), after)
	if err != nil {
		t.Fatalf("WaitMachineResumeStateEvent: %v", err)
	}
	resumes := m.EventsAfter(cursor, qmp.EventFilter{Types: []string{"RESUME"}})
	if ev.Type != "RESUME" || len(resumes) != 1 || resumes[0].Event.Timestamp != ev.Timestamp {
		t.Fatalf("WaitMachineResumeStateEvent = %+v, want the RESUME of cont %+v", ev, resumes)
	}
	if st := qemuStatus(t, m); st != "running" {
		t.Fatalf("status after cont: %q, want running", st)
	}

	reset := step("system_reset", "RESET")
	if d := qemuData(t, reset.Event); !reflect.DeepEqual(d, map[string]interface{}{"guest": false, "reason": "host-qmp-system-reset"}) {
		t.Errorf("RESET data = %v", d)
	}
	if pd := step("system_powerdown", "POWERDOWN"); pd.Data != nil {
		t.Errorf("POWERDOWN data = %s, want none", pd.Data)
	}
}

func TestQEMUUSBHotUnplug(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{
		Machine:   "pc",
		Paused:    true, // as in hotplug.txt: no firmware needs to run
		ExtraArgs: []string{"-device", "qemu-xhci,id=xhci"},
	})

	qemuRun(t, m, "device_add", map[string]string{"driver": "usb-tablet", "id": "tab0", "bus": "xhci.0"}, nil)
	after := qemuNow()
	qemuRun(t, m, "device_del", map[string]string{"id": "tab0"}, nil)
	ev, err := m.WaitDeviceDeletedEvent(ctxT(t, qemuWait), "tab0", after)
	if err != nil {
		t.Fatalf("WaitDeviceDeletedEvent(tab0): %v", err)
	}
	want := map[string]interface{}{"device": "tab0", "path": "/machine/peripheral/tab0"}
	if d := qemuData(t, *ev); ev.Type != "DEVICE_DELETED" || !reflect.DeepEqual(d, want) {
		t.Errorf("WaitDeviceDeletedEvent = %s %v, want DEVICE_DELETED %v", ev.Type, d, want)
	}

	err = m.RunContext(ctxT(t, qemuWait), qmp.Command{Name: "device_del", Arguments: map[string]string{"id": "tab0"}}, nil)
	if _, ok := err.(*qmp.DeviceNotFound); !ok {
		t.Errorf("device_del of the removed tab0: %T %v, want *qmp.DeviceNotFound", err, err)
	}
}

func TestQEMUPCIUnplugCompletesAtReset(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{Machine: "pc", Paused: true})

	qemuRun(t, m, "device_add", map[string]string{"driver": "virtio-rng-pci", "id": "rng0"}, nil)
	after := qemuNow()
	cursor := m.EventCursor()
	qemuRun(t, m, "device_del", map[string]string{"id": "rng0"}, nil)

	// Without a guest to acknowledge, the unplug stays pending. QEMU 6.x
	// began to refuse a repeated request (7.2 and later do); 5.2 takes it.
	err := m.RunContext(ctxT(t, qemuWait), qmp.Command{Name: "device_del", Arguments: map[string]string{"id": "rng0"}}, nil)
	var ge *qmp.GenericError
	switch v := m.Version().QEMU; {
	case v.Major >= 7:
		if !errors.As(err, &ge) || !strings.Contains(ge.Desc, "rng0") {
			t.Fatalf("second device_del on QEMU %v: %v, want the pending-unplug GenericError", m.Version(), err)
		}
	case v.Major < 6:
		if err != nil {
			t.Fatalf("second device_del on QEMU %v: %v, want it taken", m.Version(), err)
		}
	}
	if got := m.EventsAfter(cursor, qmp.EventFilter{Types: []string{"DEVICE_DELETED"}}); len(got) != 0 {
		t.Fatalf("DEVICE_DELETED before the reset: %v", got)
	}

	// A waiter that may already be registered when the events arrive (the
	// live path) must skip the child's event as well as a lookup does.
	type result struct {
		ev  *qmp.Event
		err error
	}
	live := make(chan result, 1)
	ctx := ctxT(t, qemuWait)
	go func() {
		ev, err := m.WaitDeviceDeletedEvent(ctx, "rng0", after)
		live <- result{ev, err}
	}()

	// The reset happens in QEMU's main loop, so the events may come after
	// system_reset's reply. Unlike hotplug.txt, the VM is not resumed
	// first: with the firmware running, the unplug at reset sometimes
	// never completed (7 runs in 12 with a library-free client too).
	qemuRun(t, m, "system_reset", nil, nil)

	var liveEv *qmp.Event
	select {
	case r := <-live:
		if r.err != nil {
			t.Fatalf("live WaitDeviceDeletedEvent(rng0): %v; events since device_del: %q",
				r.err, qemuEventTypes(m.EventsAfter(cursor, qmp.EventFilter{})))
		}
		liveEv = r.ev
	case <-time.After(qemuWait):
		t.Fatal("live WaitDeviceDeletedEvent(rng0) did not return")
	}

	// QEMU sends the child's event just before the device's own, and
	// nothing else is unplugged.
	dels := m.EventsAfter(cursor, qmp.EventFilter{Types: []string{"DEVICE_DELETED"}})
	if len(dels) != 2 {
		t.Fatalf("DEVICE_DELETED events after system_reset: %d, want 2 (child, then rng0)", len(dels))
	}
	child, own := dels[0], dels[1]
	if d := qemuData(t, child.Event); !reflect.DeepEqual(d, map[string]interface{}{"path": "/machine/peripheral/rng0/virtio-backend"}) {
		t.Errorf("first DEVICE_DELETED = %v, want the virtio-backend child", d)
	}
	if d := qemuData(t, own.Event); !reflect.DeepEqual(d, map[string]interface{}{"device": "rng0", "path": "/machine/peripheral/rng0"}) {
		t.Errorf("second DEVICE_DELETED = %v, want rng0's own", d)
	}
	if child.Seq >= own.Seq {
		t.Errorf("child event Seq %d not before the device's Seq %d", child.Seq, own.Seq)
	}

	check := func(how string, ev *qmp.Event) {
		t.Helper()
		if ev.Timestamp != own.Event.Timestamp || string(ev.Data) != string(own.Data) {
			t.Errorf("%s WaitDeviceDeletedEvent(rng0) = %s at %v, want rng0's own event %s at %v",
				how, ev.Data, ev.Time(), own.Data, own.Time())
		}
	}
	check("live", liveEv)
	ev, err := m.WaitDeviceDeletedEvent(ctxT(t, qemuWait), "rng0", after)
	if err != nil {
		t.Fatalf("buffered WaitDeviceDeletedEvent(rng0): %v", err)
	}
	check("buffered", ev)
}

// qemuBlockNodes adds the null-co source and target nodes of blockjobs.txt,
// smaller so that a full mirror is quick.
func qemuBlockNodes(t *testing.T, m *qmp.Monitor) {
	t.Helper()
	const size = 64 << 20
	qemuRun(t, m, "blockdev-add", map[string]interface{}{"driver": "null-co", "node-name": "src", "size": size, "read-zeroes": true}, nil)
	qemuRun(t, m, "blockdev-add", map[string]interface{}{"driver": "null-co", "node-name": "tgt", "size": size}, nil)
}

// qemuMirrorReady starts a mirror job src → tgt and waits until it is
// ready, through WaitJobStatusChangeEvent and BLOCK_JOB_READY.
func qemuMirrorReady(t *testing.T, m *qmp.Monitor, jobID string, cursor qmp.EventCursor, after uint64) {
	t.Helper()
	qemuRun(t, m, "blockdev-mirror", map[string]string{"job-id": jobID, "device": "src", "target": "tgt", "sync": "full"}, nil)
	ev, err := m.WaitJobStatusChangeEvent(ctxT(t, qemuWait), jobID, "ready", after)
	if err != nil {
		t.Fatalf("WaitJobStatusChangeEvent(%s, ready): %v", jobID, err)
	}
	if d := qemuData(t, *ev); !reflect.DeepEqual(d, map[string]interface{}{"id": jobID, "status": "ready"}) {
		t.Fatalf("WaitJobStatusChangeEvent(%s, ready) = %v", jobID, d)
	}
	ready := qemuWaitType(t, m, cursor, "BLOCK_JOB_READY")
	if d := qemuData(t, ready.Event); d["device"] != jobID || d["type"] != "mirror" {
		t.Fatalf("BLOCK_JOB_READY data = %v, want job %s", d, jobID)
	}
	// QEMU sends the status change first (blockjobs.txt).
	statuses := m.EventsAfter(cursor, qmp.EventFilter{Types: []string{"JOB_STATUS_CHANGE"}})
	var seen []string
	for _, r := range statuses {
		if r.Seq > ready.Seq {
			break
		}
		seen = append(seen, qemuData(t, r.Event)["status"].(string))
	}
	if want := []string{"created", "running", "ready"}; !slices.Equal(seen, want) {
		t.Fatalf("job statuses up to BLOCK_JOB_READY = %q, want %q", seen, want)
	}
}

func TestQEMUBlockMirrorComplete(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	qemuBlockNodes(t, m)

	after := qemuNow()
	cursor := m.EventCursor()
	qemuMirrorReady(t, m, "mirror0", cursor, after)
	if _, found, err := m.FindBlockJobCompletedEvent("mirror0", after); found || err != nil {
		t.Fatalf("FindBlockJobCompletedEvent before job-complete: found=%v err=%v", found, err)
	}

	qemuRun(t, m, "job-complete", map[string]string{"id": "mirror0"}, nil)
	res, err := m.WaitBlockJob(ctxT(t, qemuWait), "mirror0", cursor)
	if err != nil {
		t.Fatalf("WaitBlockJob(mirror0): %v", err)
	}
	if res.Status != "completed" || res.Error != "" || res.Event.Type != "BLOCK_JOB_COMPLETED" {
		t.Errorf("WaitBlockJob(mirror0) = %q %q %s, want completed without error", res.Status, res.Error, res.Event.Type)
	}
	if _, err := m.WaitJobStatusChangeEvent(ctxT(t, qemuWait), "mirror0", "concluded", after); err != nil {
		t.Fatalf("WaitJobStatusChangeEvent(mirror0, concluded): %v", err)
	}
	ev, found, err := m.FindBlockJobCompletedEvent("mirror0", after)
	if err != nil || !found {
		t.Fatalf("FindBlockJobCompletedEvent(mirror0): found=%v err=%v", found, err)
	}
	var d qmp.BlockJobCompletedEventData
	if err := json.Unmarshal(ev.Data, &d); err != nil || d != (qmp.BlockJobCompletedEventData{Device: "mirror0", Type: "mirror"}) {
		t.Errorf("BLOCK_JOB_COMPLETED data = %+v (%v)", d, err)
	}
	if ev.Timestamp != res.Event.Timestamp {
		t.Errorf("FindBlockJobCompletedEvent and WaitBlockJob disagree: %v vs %v", ev.Time(), res.Event.Time())
	}
	var jobs []interface{}
	qemuRun(t, m, "query-jobs", nil, &jobs)
	if len(jobs) != 0 {
		t.Errorf("query-jobs after completion = %v, want none", jobs)
	}
}

func TestQEMUBlockJobForceCancel(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	qemuBlockNodes(t, m)

	after := qemuNow()
	cursor := m.EventCursor()
	qemuMirrorReady(t, m, "mirror1", cursor, after)
	qemuRun(t, m, "block-job-cancel", map[string]interface{}{"device": "mirror1", "force": true}, nil)
	res, err := m.WaitBlockJob(ctxT(t, qemuWait), "mirror1", cursor)
	if err != nil {
		t.Fatalf("WaitBlockJob(mirror1): %v", err)
	}
	if res.Status != "cancelled" || res.Error != "" || res.Event.Type != "BLOCK_JOB_CANCELLED" {
		t.Errorf("WaitBlockJob(mirror1) = %q %q %s, want cancelled", res.Status, res.Error, res.Event.Type)
	}
	if _, found, err := m.FindBlockJobCompletedEvent("mirror1", after); found || err != nil {
		t.Errorf("FindBlockJobCompletedEvent after a forced cancel: found=%v err=%v", found, err)
	}
}

func TestQEMUBlockJobError(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	qemuRun(t, m, "blockdev-add", map[string]interface{}{"driver": "null-co", "node-name": "src2", "size": 1 << 20}, nil)
	qemuRun(t, m, "blockdev-add", map[string]interface{}{"driver": "null-co", "node-name": "tgt2", "size": 1 << 20}, nil)
	// blkdebug fails every write to the target with EIO.
	qemuRun(t, m, "blockdev-add", map[string]interface{}{
		"driver": "blkdebug", "image": "tgt2", "node-name": "bad",
		"inject-error": []map[string]interface{}{{"event": "pwritev", "errno": 5}},
	}, nil)

	after := qemuNow()
	cursor := m.EventCursor()
	qemuRun(t, m, "blockdev-backup", map[string]string{
		"job-id": "err1", "device": "src2", "target": "bad", "sync": "full", "on-target-error": "stop",
	}, nil)
	_, err := m.WaitBlockJob(ctxT(t, qemuWait), "err1", cursor)
	var pe *qmp.BlockJobPausedError
	if !errors.As(err, &pe) || pe.JobID != "err1" || pe.Operation != "write" || pe.Event.Type != "BLOCK_JOB_ERROR" {
		t.Fatalf("WaitBlockJob(err1) = %v, want a *BlockJobPausedError for the write error", err)
	}
	if job := qemuBlockJob(t, m, "err1"); job == nil || !job.Paused {
		t.Fatalf("after the stopping error query-block-jobs has %+v, want err1 paused", job)
	}
	ev, found, err := m.FindBlockJobErrorEvent("err1", after)
	if err != nil || !found {
		t.Fatalf("FindBlockJobErrorEvent(err1): found=%v err=%v", found, err)
	}
	var d qmp.BlockJobErrorEventData
	if err := json.Unmarshal(ev.Data, &d); err != nil || d != (qmp.BlockJobErrorEventData{Device: "err1", Operation: "write", Action: "stop"}) {
		t.Errorf("BLOCK_JOB_ERROR data = %+v (%v)", d, err)
	}

	// With on-target-error=stop the job is paused, not over: cancel it.
	errCursor := pe.Event.Seq
	qemuRun(t, m, "block-job-cancel", map[string]interface{}{"device": "err1", "force": true}, nil)
	res, err := m.WaitBlockJob(ctxT(t, qemuWait), "err1", errCursor)
	if err != nil {
		t.Fatalf("WaitBlockJob(err1) after cancel: %v", err)
	}
	if res.Status != "cancelled" {
		t.Errorf("WaitBlockJob(err1) after cancel = %q, want cancelled", res.Status)
	}
}

// qemuBlockJob returns query-block-jobs' entry for job id, or nil.
func qemuBlockJob(t *testing.T, m *qmp.Monitor, id string) *qmp.BlockJobInfo {
	t.Helper()
	jobs, err := m.QueryBlockJobs(ctxT(t, qemuWait))
	if err != nil {
		t.Fatalf("query-block-jobs: %v", err)
	}
	for i := range jobs {
		if jobs[i].Device == id {
			return &jobs[i]
		}
	}
	return nil
}

// Errors whose action is not "stop" do not end the block job waits: with
// "ignore" a mirror whose target fails one write still becomes ready and
// completes; with "report" a backup ends with QEMU's error text in its
// BLOCK_JOB_COMPLETED, which is WaitBlockJob's answer.
func TestQEMUBlockJobErrorsThatDoNotStop(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	for _, n := range []string{"tgt3", "src4", "tgt4"} {
		qemuRun(t, m, "blockdev-add", map[string]interface{}{"driver": "null-co", "node-name": n, "size": 1 << 20}, nil)
	}
	// A mirror copies only data: the source is a file that holds some.
	img := filepath.Join(t.TempDir(), "src3.img")
	if err := os.WriteFile(img, bytes.Repeat([]byte{0xAB}, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	qemuRun(t, m, "blockdev-add", map[string]interface{}{"driver": "file", "filename": img, "node-name": "src3"}, nil)
	qemuRun(t, m, "blockdev-add", map[string]interface{}{
		"driver": "blkdebug", "image": "tgt3", "node-name": "once",
		"inject-error": []map[string]interface{}{{"event": "pwritev", "errno": 5, "once": true}},
	}, nil)
	qemuRun(t, m, "blockdev-add", map[string]interface{}{
		"driver": "blkdebug", "image": "tgt4", "node-name": "always",
		"inject-error": []map[string]interface{}{{"event": "pwritev", "errno": 5}},
	}, nil)

	cur := m.EventCursor()
	qemuRun(t, m, "blockdev-mirror", map[string]string{"job-id": "ign", "device": "src3", "target": "once", "sync": "full", "on-target-error": "ignore"}, nil)
	if _, err := m.WaitBlockJobReady(ctxT(t, qemuWait), "ign", cur); err != nil {
		t.Fatalf("WaitBlockJobReady(ign) with an ignored write error: %v", err)
	}
	if recs := m.EventsAfter(cur, qmp.EventFilter{Types: []string{"BLOCK_JOB_ERROR"}}); len(recs) == 0 {
		t.Fatalf("no BLOCK_JOB_ERROR: the test no longer shows an ignored error: %v", qemuEventTypes(m.EventsAfter(cur, qmp.EventFilter{})))
	}
	qemuRun(t, m, "block-job-complete", map[string]string{"device": "ign"}, nil)
	if res, err := m.WaitBlockJob(ctxT(t, qemuWait), "ign", cur); err != nil || res.Status != "completed" {
		t.Fatalf("WaitBlockJob(ign) = %+v, %v; want completed", res, err)
	}

	cur = m.EventCursor()
	qemuRun(t, m, "blockdev-backup", map[string]string{"job-id": "rep", "device": "src4", "target": "always", "sync": "full", "on-target-error": "report"}, nil)
	res, err := m.WaitBlockJob(ctxT(t, qemuWait), "rep", cur)
	if err != nil || res.Status != "completed" || res.Error == "" || res.Event.Type != "BLOCK_JOB_COMPLETED" {
		t.Fatalf("WaitBlockJob(rep) = %+v, %v; want completed with QEMU's error", res, err)
	}
}

func TestQEMUTransactionDirtyBitmap(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	qemuBlockNodes(t, m)

	add := func(name string) qmp.Command {
		return qmp.Command{Name: "block-dirty-bitmap-add", Arguments: map[string]string{"node": "src", "name": name}}
	}
	var ret map[string]interface{}
	if err := m.RunTransaction([]qmp.Command{add("bm0"), add("bm1")}, &ret, nil); err != nil {
		t.Fatalf("RunTransaction(add bm0, bm1): %v", err)
	}
	if len(ret) != 0 {
		t.Errorf("transaction returned %v, want {}", ret)
	}
	bitmaps := func() []string {
		t.Helper()
		var nodes []struct {
			NodeName string `json:"node-name"`
			Bitmaps  []struct {
				Name string `json:"name"`
			} `json:"dirty-bitmaps"`
		}
		qemuRun(t, m, "query-named-block-nodes", map[string]bool{"flat": true}, &nodes)
		var names []string
		for _, n := range nodes {
			if n.NodeName == "src" {
				for _, b := range n.Bitmaps {
					names = append(names, b.Name)
				}
			}
		}
		sort.Strings(names)
		return names
	}
	if got := bitmaps(); !slices.Equal(got, []string{"bm0", "bm1"}) {
		t.Fatalf("bitmaps on src after the transaction: %q, want [bm0 bm1]", got)
	}

	// All or nothing: bm0 exists, so bm2 must not be added either.
	err := m.RunTransaction([]qmp.Command{add("bm2"), add("bm0")}, nil, nil)
	var ge *qmp.GenericError
	if !errors.As(err, &ge) || !strings.Contains(ge.Desc, "bm0") {
		t.Fatalf("RunTransaction(add bm2, bm0) = %v, want a GenericError about bm0", err)
	}
	if got := bitmaps(); !slices.Equal(got, []string{"bm0", "bm1"}) {
		t.Errorf("bitmaps on src after the failed transaction: %q, want [bm0 bm1]", got)
	}
}

func TestQEMUMigrationToFile(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	qemuRun(t, m, "migrate-set-capabilities", map[string]interface{}{
		"capabilities": []map[string]interface{}{{"capability": "events", "state": true}},
	}, nil)

	file := filepath.Join(t.TempDir(), "vmstate")
	cursor := m.EventCursor()
	qemuRun(t, m, "migrate", map[string]string{"uri": "exec:cat > " + file}, nil)
	status, err := m.WaitMigration(ctxT(t, qemuWait), cursor)
	if err != nil {
		t.Fatalf("WaitMigration: %v", err)
	}
	if status != "completed" {
		t.Fatalf("WaitMigration = %q, want completed", status)
	}
	var seen []string
	for _, r := range m.EventsAfter(cursor, qmp.EventFilter{Types: []string{"MIGRATION"}}) {
		var d qmp.MigrationEventData
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatalf("MIGRATION data %s: %v", r.Data, err)
		}
		seen = append(seen, d.Status)
	}
	// setup, active, ..., completed: the steps between are this QEMU's
	// (10.0 adds "device"), each a MigrationStatus value its schema has.
	schema, err := m.Schema(ctxT(t, qemuWait))
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 3 || seen[0] != "setup" || seen[1] != "active" || seen[len(seen)-1] != "completed" {
		t.Errorf("MIGRATION statuses = %q, want setup, active, ..., completed", seen)
	}
	for _, st := range seen {
		if !schema.Has("MIGRATION.status=" + st) {
			t.Errorf("MIGRATION status %q is not a value of this QEMU's MigrationStatus", st)
		}
	}
	var info struct {
		Status string `json:"status"`
	}
	qemuRun(t, m, "query-migrate", nil, &info)
	if info.Status != "completed" {
		t.Errorf("query-migrate status = %q, want completed", info.Status)
	}
	// QEMU announces "completed" from the migration thread and switches
	// the run state from finish-migrate to postmigrate a little later on
	// its main loop, with no event for it: ask until it has (each query
	// is a round trip through that main loop), for at most 5 s.
	st := qemuStatus(t, m)
	for deadline := time.Now().Add(5 * time.Second); st == "finish-migrate" && time.Now().Before(deadline); {
		st = qemuStatus(t, m)
	}
	if st != "postmigrate" {
		t.Errorf("status after migration = %q, want postmigrate", st)
	}
}

func TestQEMUHumanAndSchema(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})

	out, err := m.RunHuman("info version")
	if err != nil {
		t.Fatalf("RunHuman(info version): %v", err)
	}
	if want := binaryVersion(t); !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "\r\n") {
		t.Errorf("info version = %q, want %s... and a CRLF", out, want)
	}
	// HMP errors are successful QMP replies carrying text.
	if out, err := m.RunHuman("bogus"); err != nil || out != "unknown command: 'bogus'\r\n" {
		t.Errorf("RunHuman(bogus) = %q, %v", out, err)
	}

	// query-qmp-schema is one large message (150 KB in 5.2, 250 KB in 11.1).
	var raw json.RawMessage
	qemuRun(t, m, "query-qmp-schema", nil, &raw)
	var schema []map[string]interface{}
	if err := json.Unmarshal(raw, &schema); err != nil || len(raw) < 100<<10 || len(schema) < 500 {
		t.Fatalf("query-qmp-schema: %d bytes, %d entries (%v), want one message of 100 KB and more", len(raw), len(schema), err)
	}
	var found bool
	for _, e := range schema {
		if e["name"] == "query-status" && e["meta-type"] == "command" {
			found = true
		}
	}
	if !found {
		t.Error("query-qmp-schema lacks the command query-status")
	}
}

func TestQEMUConcurrentCommands(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{ExtraArgs: []string{"-name", "qmp-concurrent"}})

	const goroutines, perG = 16, 500
	// Each command's reply, as this QEMU gives it to one caller at a time,
	// is the reference; they differ, so a reply handed to the wrong caller
	// is caught.
	names := []string{"query-name", "query-status", "query-version"}
	want := map[string]string{}
	for _, n := range names {
		var r map[string]interface{}
		if err := m.Run(qmp.Command{Name: n}, &r); err != nil {
			t.Fatal(err)
		}
		want[n] = qemuJSON(r)
	}
	if want["query-name"] != `{"name":"qmp-concurrent"}` || want["query-status"] == want["query-version"] {
		t.Fatalf("references %v: want distinct replies and the -name given", want)
	}
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				n := names[(g+i)%len(names)]
				var r map[string]interface{}
				if err := m.Run(qmp.Command{Name: n}, &r); err != nil {
					errs <- err
					return
				}
				if got := qemuJSON(r); got != want[n] {
					errs <- errors.New(n + " got a reply that is not its own: " + got)
					return
				}
			}
		}(g)
	}
	waitAll(t, &wg, 60*time.Second)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func qemuJSON(v interface{}) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestQEMUQuitShutdownAfterEnd(t *testing.T) {
	t.Parallel()
	q, m := qemuMonitor(t, qemutest.Config{})

	// QEMU sends SHUTDOWN and the reply, then closes the socket.
	if err := m.Run(qmp.Command{Name: "quit"}, nil); err != nil {
		t.Fatalf("quit: %v", err)
	}
	waitClosed(t, m, qemuWait)

	evs, err := m.GetEvents(ctxT(t, qemuWait), "SHUTDOWN", 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("GetEvents(SHUTDOWN) after the end = %v, %v; want one event", evs, err)
	}
	if d := qemuData(t, evs[0]); !reflect.DeepEqual(d, map[string]interface{}{"guest": false, "reason": "host-qmp-quit"}) {
		t.Errorf("SHUTDOWN data = %v", d)
	}
	found, ok := m.FindEvents("SHUTDOWN", 0)
	if !ok || len(found) != 1 || found[0].Timestamp != evs[0].Timestamp {
		t.Errorf("FindEvents(SHUTDOWN) after the end = %v, %v", found, ok)
	}

	err = m.Err()
	var ce *qmp.ClosedError
	_, isOpError := err.(*net.OpError) // what v2.0.4's callers assert
	if !isOpError || !errors.As(err, &ce) || !qmp.IsSocketClosed(err) || !errors.Is(err, qmp.ErrClosed) {
		t.Fatalf("Err() = %T %v, want a *net.OpError wrapping a *qmp.ClosedError, for which IsSocketClosed holds", err, err)
	}
	// EOF and ECONNRESET are both QEMU's normal end; the monitor reports io.EOF.
	if ce.Cause != io.EOF {
		t.Errorf("ClosedError.Cause = %v, want io.EOF", ce.Cause)
	}
	if err := m.Run(qmp.Command{Name: "query-status"}, nil); !qmp.IsSocketClosed(err) {
		t.Errorf("Run after the end = %v, want IsSocketClosed", err)
	}
	select {
	case <-q.Exited():
	case <-time.After(qemuWait):
		t.Error("QEMU still running after quit")
	}
}

func TestQEMUKilledWithPendingCalls(t *testing.T) {
	t.Parallel()
	q, m := qemuMonitor(t, qemutest.Config{})
	qemuRun(t, m, "stop", nil, nil)

	const n = 8
	type result struct {
		what string
		ok   bool // a wait returned an event, or a Run never ended with an error
		err  error
	}
	results := make(chan result, 2*n)
	running := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		// The VM is stopped and nobody resumes it: no RESUME is coming, so
		// only the end of the connection can release these waits. No ctx
		// deadline either.
		go func() {
			ev, err := m.WaitMachineResumeStateEvent(context.Background(), 0)
			results <- result{"WaitMachineResumeStateEvent", ev != nil, err}
		}()
		// Runs in a loop, so that some are in flight at the kill.
		go func() {
			for j := 0; ; j++ {
				err := m.Run(qmp.Command{Name: "query-status"}, nil)
				if j == 0 {
					running <- struct{}{}
				}
				if err != nil {
					// Err and Done are final before any call learns of the end.
					if m.Err() == nil {
						err = fmt.Errorf("Run returned %v while Err() was still nil", err)
					}
					results <- result{"Run", false, err}
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case <-running:
		case <-time.After(qemuWait):
			t.Fatal("Run loops did not start")
		}
	}

	if err := q.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	deadline := time.After(5 * time.Second)
	for i := 0; i < 2*n; i++ {
		select {
		case r := <-results:
			if r.ok || !qmp.IsSocketClosed(r.err) {
				t.Errorf("%s after SIGKILL: ok=%v err=%v, want no result and an IsSocketClosed error", r.what, r.ok, r.err)
			}
			if _, isOpError := r.err.(*net.OpError); !isOpError { // what v2.0.4's callers (kvmrun) assert
				t.Errorf("%s after SIGKILL: %T, want a *net.OpError as v2.0.4 returned", r.what, r.err)
			}
		case <-deadline:
			t.Fatalf("only %d of %d pending calls returned within 5s of SIGKILL", i, 2*n)
		}
	}
	waitClosed(t, m, qemuWait)
	if !qmp.IsSocketClosed(m.Err()) {
		t.Errorf("Err() = %v, want IsSocketClosed", m.Err())
	}
	// A call made after the end gets the same shape.
	err := m.Run(qmp.Command{Name: "quit"}, nil)
	if _, isOpError := err.(*net.OpError); !isOpError || !qmp.IsSocketClosed(err) {
		t.Errorf("Run after the end: %T %v, want a *net.OpError for which IsSocketClosed holds", err, err)
	}
}

func TestQEMUSecondClientOnBusySocket(t *testing.T) {
	t.Parallel()
	q, m := qemuMonitor(t, qemutest.Config{})

	// QEMU accepts the connection but greets it only once the first client
	// leaves.
	start := time.Now()
	m2, err := qmp.NewMonitor(q.Sockets[0], 500*time.Millisecond)
	if err == nil {
		m2.Close()
		t.Fatal("second NewMonitor on a busy socket succeeded")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("second NewMonitor returned after %v, with a 500ms timeout", elapsed)
	}
	if !errors.Is(err, qmp.ErrHandshake) || !strings.Contains(err.Error(), "another client") {
		t.Errorf("second NewMonitor: %v, want an error wrapping ErrHandshake that mentions another client", err)
	}
	if st := qemuStatus(t, m); st != "running" {
		t.Errorf("first monitor after the second client's attempt: status %q", st)
	}

	// Once the first client leaves, the socket serves the next one (QEMU
	// first accepts, greets and drops the abandoned second connection).
	m.Close()
	m3 := qemuConnect(t, q.Sockets[0])
	if st := qemuStatus(t, m3); st != "running" {
		t.Errorf("third client: status %q, want running", st)
	}
}

func TestQEMUTwoMonitorsSeeSameEvent(t *testing.T) {
	t.Parallel()
	q, m1 := qemuMonitor(t, qemutest.Config{Sockets: 2})
	m2 := qemuConnect(t, q.Sockets[1])

	c1, c2 := m1.EventCursor(), m2.EventCursor()
	qemuRun(t, m1, "stop", nil, nil)
	e1 := qemuWaitType(t, m1, c1, "STOP")
	e2 := qemuWaitType(t, m2, c2, "STOP")
	if e1.Timestamp != e2.Timestamp {
		t.Errorf("STOP timestamps differ: monitor 1 %v, monitor 2 %v", e1.Time(), e2.Time())
	}
	if st := qemuStatus(t, m2); st != "paused" {
		t.Errorf("monitor 2 sees status %q after stop on monitor 1, want paused", st)
	}

	c1, c2 = m1.EventCursor(), m2.EventCursor()
	qemuRun(t, m2, "cont", nil, nil)
	r1 := qemuWaitType(t, m1, c1, "RESUME")
	r2 := qemuWaitType(t, m2, c2, "RESUME")
	if r1.Timestamp != r2.Timestamp {
		t.Errorf("RESUME timestamps differ: monitor 1 %v, monitor 2 %v", r1.Time(), r2.Time())
	}
}

func TestQEMURunContextDeadline(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})

	// QEMU reads its input one byte per syscall (~2.7 µs a byte), so a
	// 16 KB argument keeps it busy for several times the 10 ms deadline.
	// Its late reply (an error about "x") must be dropped, not handed to
	// the next caller.
	big := map[string]string{"x": strings.Repeat("a", 16<<10)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := m.RunContext(ctx, qmp.Command{Name: "query-name", Arguments: big}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunContext with a 10ms deadline = %v, want context.DeadlineExceeded", err)
	}
	if st := qemuStatus(t, m); st != "running" {
		t.Errorf("query-status after the abandoned command: %q, want running", st)
	}
	var v qmp.Version
	qemuRun(t, m, "query-version", nil, &v)
	if v != m.Version() {
		t.Errorf("query-version = %+v, want %+v", v, m.Version())
	}
}
