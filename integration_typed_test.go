package qmp_test

// Typed commands, waits and the live schema against a real QEMU 7.2
// (internal/qemutest); they skip without QEMU unless QMP_TEST_QEMU=required.

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

func qemuOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestQEMUTypedRunState(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{Machine: "pc", Paused: true})
	ctx := ctxT(t, qemuWait)

	st, err := m.QueryStatus(ctx)
	qemuOK(t, "QueryStatus", err)
	if st.Status != "prelaunch" || st.Running {
		t.Errorf("QueryStatus = %+v, want prelaunch", st)
	}
	cur := m.EventCursor()
	qemuOK(t, "Cont", m.Cont(ctx))
	qemuWaitType(t, m, cur, "RESUME")
	cur = m.EventCursor()
	qemuOK(t, "Stop", m.Stop(ctx))
	qemuWaitType(t, m, cur, "STOP")
	cur = m.EventCursor()
	qemuOK(t, "SystemReset", m.SystemReset(ctx))
	r := qemuWaitType(t, m, cur, "RESET")
	d, err := qmp.DecodeEventData[qmp.ShutdownEventData](&r.Event)
	if err != nil || d.Guest || d.Reason != "host-qmp-system-reset" {
		t.Errorf("RESET data = %+v, %v; want host-qmp-system-reset", d, err)
	}

	v, err := m.QueryVersion(ctx)
	qemuOK(t, "QueryVersion", err)
	if v.String() != binaryVersion(t) || v.Package != m.Version().Package {
		t.Errorf("QueryVersion = %+v, want %s and the greeting's package %q", v, binaryVersion(t), m.Version().Package)
	}
	name, err := m.QueryName(ctx)
	qemuOK(t, "QueryName", err)
	if name.Name != nil {
		t.Errorf("QueryName = %q, want none (no -name)", *name.Name)
	}
	kvm, err := m.QueryKVM(ctx)
	qemuOK(t, "QueryKVM", err)
	if kvm.Enabled {
		t.Error("QueryKVM: enabled under -accel tcg")
	}
	cpus, err := m.QueryCPUsFast(ctx)
	qemuOK(t, "QueryCPUsFast", err)
	if len(cpus) != 1 || cpus[0].Target != "x86_64" || cpus[0].Props == nil || cpus[0].Props.SocketID == nil {
		t.Errorf("QueryCPUsFast = %+v, want one x86_64 vCPU with a socket-id", cpus)
	}
	slots, err := m.QueryHotpluggableCPUs(ctx)
	qemuOK(t, "QueryHotpluggableCPUs", err)
	if len(slots) == 0 || slots[0].QOMPath == nil {
		t.Errorf("QueryHotpluggableCPUs = %+v, want the plugged CPU's slot", slots)
	}
	mem, err := m.QueryMemoryDevices(ctx)
	qemuOK(t, "QueryMemoryDevices", err)
	if len(mem) != 0 {
		t.Errorf("QueryMemoryDevices = %+v, want none", mem)
	}
	vnc, err := m.QueryVNC(ctx)
	if err == nil && vnc.Enabled {
		t.Errorf("QueryVNC = %+v, want disabled under -display none", vnc)
	}
	_, err = m.ChardevAdd(ctx, "c0", qmp.ChardevBackend{Type: "null"})
	qemuOK(t, "ChardevAdd(null)", err)
	qemuOK(t, "ChardevRemove", m.ChardevRemove(ctx, "c0"))
	qemuOK(t, "NetdevAdd(hubport)", m.NetdevAdd(ctx, qmp.NetdevAddArgs{Type: "hubport", ID: "h0", Props: map[string]int{"hubid": 0}}))
	qemuOK(t, "SetLink", m.SetLink(ctx, "h0", false))
	qemuOK(t, "NetdevDel", m.NetdevDel(ctx, "h0"))

	cur = m.EventCursor()
	qemuOK(t, "Quit", m.Quit(ctx))
	if _, err := m.WaitShutdown(ctx, cur); err != nil {
		t.Errorf("WaitShutdown after Quit: %v", err)
	}
}

func TestQEMUTypedDiskHotplug(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{Machine: "pc", Paused: true})
	ctx := ctxT(t, qemuWait)

	qemuOK(t, "BlockdevAdd", m.BlockdevAdd(ctx, qmp.BlockdevOptions{Driver: "null-co", NodeName: "disk0",
		Props: qmp.BlockdevOptionsNull{Size: ptr(int64(1 << 30)), ReadZeroes: true}}))
	id := "vd0"
	qemuOK(t, "DeviceAdd", m.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "virtio-blk-pci", ID: id, Props: map[string]any{"drive": "disk0"}}))

	blk, err := m.QueryBlock(ctx)
	qemuOK(t, "QueryBlock", err)
	i := slices.IndexFunc(blk, func(b qmp.BlockInfo) bool {
		return b.Qdev != nil && *b.Qdev == "/machine/peripheral/vd0/virtio-backend"
	})
	if i < 0 || blk[i].Inserted == nil || *blk[i].Inserted.NodeName != "disk0" || blk[i].Inserted.Image.VirtualSize != 1<<30 {
		t.Fatalf("QueryBlock = %+v, want vd0 with node disk0 of 1 GiB", blk)
	}
	nodes, err := m.QueryNamedBlockNodes(ctx, true)
	qemuOK(t, "QueryNamedBlockNodes", err)
	if len(nodes) != 1 || nodes[0].Drv != "null-co" {
		t.Errorf("QueryNamedBlockNodes = %+v, want disk0", nodes)
	}
	pci, err := m.QueryPCI(ctx)
	qemuOK(t, "QueryPCI", err)
	found := false
	for _, bus := range pci {
		for _, d := range bus.Devices {
			found = found || d.QdevID == "vd0"
		}
	}
	if !found {
		t.Errorf("QueryPCI does not list vd0: %+v", pci)
	}
	// null-co cannot resize: QEMU's refusal comes back typed and named.
	var ge *qmp.GenericError
	if err := m.BlockResize(ctx, "disk0", 2<<30); !errors.As(err, &ge) || ge.Desc == "" {
		t.Errorf("BlockResize(null-co) = %v, want QEMU's *GenericError", err)
	}
	qemuOK(t, "BlockSetIOThrottle", m.BlockSetIOThrottle(ctx, qmp.BlockIOThrottle{ID: "/machine/peripheral/vd0/virtio-backend", BPS: 1 << 20}))
	blk, _ = m.QueryBlock(ctx)
	if blk[i].Inserted.BPS != 1<<20 {
		t.Errorf("after BlockSetIOThrottle: bps %d, want %d", blk[i].Inserted.BPS, 1<<20)
	}
	qemuOK(t, "BlockDirtyBitmapAdd", m.BlockDirtyBitmapAdd(ctx, qmp.BlockDirtyBitmapAddArgs{Node: "disk0", Name: "bm0"}))
	qemuOK(t, "BlockDirtyBitmapClear", m.BlockDirtyBitmapClear(ctx, "disk0", "bm0"))
	qemuOK(t, "BlockDirtyBitmapRemove", m.BlockDirtyBitmapRemove(ctx, "disk0", "bm0"))

	// Without a guest, a PCI unplug completes at the next reset.
	cur := m.EventCursor()
	qemuOK(t, "DeviceDel", m.DeviceDel(ctx, "vd0"))
	qemuOK(t, "SystemReset", m.SystemReset(ctx))
	r, err := m.WaitDeviceDeleted(ctx, "vd0", cur)
	qemuOK(t, "WaitDeviceDeleted(vd0)", err)
	if d, err := qmp.DecodeEventData[qmp.DeviceDeletedEventData](&r.Event); err != nil || d.Device != "vd0" {
		t.Errorf("DEVICE_DELETED data = %+v, %v", d, err)
	}
	qemuOK(t, "BlockdevDel", m.BlockdevDel(ctx, "disk0"))
	err = m.DeviceDel(ctx, "vd0")
	var dnf *qmp.DeviceNotFound
	if !errors.As(err, &dnf) {
		t.Errorf("DeviceDel of a removed device = %v, want *qmp.DeviceNotFound", err)
	}
}

func TestQEMUTypedUSBHotplug(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{Machine: "pc", Paused: true, ExtraArgs: []string{"-device", "qemu-xhci,id=xhci"}})
	ctx := ctxT(t, qemuWait)
	id, bus := "kbd0", "xhci.0"
	qemuOK(t, "DeviceAdd", m.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "usb-kbd", ID: id, Bus: bus}))
	cur := m.EventCursor()
	qemuOK(t, "DeviceDel", m.DeviceDel(ctx, "kbd0"))
	if _, err := m.WaitDeviceDeleted(ctx, "kbd0", cur); err != nil {
		t.Fatalf("WaitDeviceDeleted(kbd0): %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestQEMUTypedMirror(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	ctx := ctxT(t, qemuWait)
	for _, n := range []string{"src", "dst"} {
		qemuOK(t, "BlockdevAdd "+n, m.BlockdevAdd(ctx, qmp.BlockdevOptions{Driver: "null-co", NodeName: n,
			Props: qmp.BlockdevOptionsNull{Size: ptr(int64(64 << 20))}}))
	}
	cur := m.EventCursor()
	qemuOK(t, "BlockdevMirror", m.BlockdevMirror(ctx, qmp.BlockdevMirrorArgs{JobID: "m0", Device: "src", Target: "dst", Sync: "full"}))
	r, err := m.WaitBlockJobReady(ctx, "m0", cur)
	qemuOK(t, "WaitBlockJobReady", err)
	if d, err := qmp.DecodeEventData[qmp.BlockJobEventData](&r.Event); err != nil || d.Type != "mirror" || d.Len != 64<<20 {
		t.Errorf("BLOCK_JOB_READY data = %+v, %v", d, err)
	}
	if _, err := m.WaitJobStatus(ctx, "m0", "ready", cur); err != nil {
		t.Errorf("WaitJobStatus(ready): %v", err)
	}
	jobs, err := m.QueryBlockJobs(ctx)
	qemuOK(t, "QueryBlockJobs", err)
	if len(jobs) != 1 || !jobs[0].Ready || jobs[0].Status != "ready" || jobs[0].Device != "m0" {
		t.Errorf("QueryBlockJobs = %+v, want m0 ready", jobs)
	}
	qemuOK(t, "BlockJobSetSpeed", m.BlockJobSetSpeed(ctx, "m0", 1<<30))
	qemuOK(t, "BlockJobPause", m.BlockJobPause(ctx, "m0"))
	qemuOK(t, "BlockJobResume", m.BlockJobResume(ctx, "m0"))
	qemuOK(t, "BlockJobComplete", m.BlockJobComplete(ctx, "m0"))
	res, err := m.WaitBlockJob(ctx, "m0", cur)
	qemuOK(t, "WaitBlockJob", err)
	if res.Status != "completed" || res.Error != "" {
		t.Errorf("WaitBlockJob = %+v, want completed", res)
	}
	if _, err := m.WaitJobStatus(ctx, "m0", "null", cur); err != nil {
		t.Errorf("WaitJobStatus(null): %v", err)
	}
	// The job is gone: waiting for it to be ready again ends at once.
	_, err = m.WaitJobStatus(ctx, "m0", "ready", m.EventCursor()-2)
	var je *qmp.JobEndedError
	if !errors.As(err, &je) || je.JobID != "m0" {
		t.Errorf("WaitJobStatus(ready) after the end = %v, want a *JobEndedError", err)
	}
	if jobs, err := m.QueryJobs(ctx); err != nil || len(jobs) != 0 {
		t.Errorf("QueryJobs = %+v, %v; want none", jobs, err)
	}

	// The generic job-* commands, which replace block-job-* in QEMU 10.1.
	cur = m.EventCursor()
	qemuOK(t, "BlockdevMirror m1", m.BlockdevMirror(ctx, qmp.BlockdevMirrorArgs{JobID: "m1", Device: "src", Target: "dst", Sync: "full"}))
	_, err = m.WaitBlockJobReady(ctx, "m1", cur)
	qemuOK(t, "WaitBlockJobReady m1", err)
	qemuOK(t, "JobPause", m.JobPause(ctx, "m1"))
	if _, err := m.WaitJobStatus(ctx, "m1", "standby", cur); err != nil {
		t.Errorf("WaitJobStatus(standby) after JobPause: %v", err)
	}
	qemuOK(t, "JobResume", m.JobResume(ctx, "m1"))
	qemuOK(t, "JobComplete", m.JobComplete(ctx, "m1"))
	if res, err := m.WaitBlockJob(ctx, "m1", cur); err != nil || res.Status != "completed" {
		t.Errorf("WaitBlockJob(m1) after JobComplete = %+v, %v; want completed", res, err)
	}
	cur = m.EventCursor()
	qemuOK(t, "BlockdevMirror m2", m.BlockdevMirror(ctx, qmp.BlockdevMirrorArgs{JobID: "m2", Device: "src", Target: "dst", Sync: "full"}))
	_, err = m.WaitBlockJobReady(ctx, "m2", cur)
	qemuOK(t, "WaitBlockJobReady m2", err)
	qemuOK(t, "JobCancel", m.JobCancel(ctx, "m2"))
	if res, err := m.WaitBlockJob(ctx, "m2", cur); err != nil || res.Status != "cancelled" {
		t.Errorf("WaitBlockJob(m2) after JobCancel = %+v, %v; want cancelled", res, err)
	}
}

func TestQEMUTypedMigration(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	ctx := ctxT(t, qemuWait)
	qemuOK(t, "MigrateSetCapabilities", m.MigrateSetCapabilities(ctx, []qmp.MigrationCapabilityStatus{{Capability: "events", State: true}}))
	caps, err := m.QueryMigrateCapabilities(ctx)
	qemuOK(t, "QueryMigrateCapabilities", err)
	if i := slices.IndexFunc(caps, func(c qmp.MigrationCapabilityStatus) bool { return c.Capability == "events" }); i < 0 || !caps[i].State {
		t.Errorf("QueryMigrateCapabilities = %+v, want events on", caps)
	}
	qemuOK(t, "MigrateSetParameters", m.MigrateSetParameters(ctx, qmp.MigrationParameters{DowntimeLimit: ptr(int64(500))}))
	p, err := m.QueryMigrateParameters(ctx)
	qemuOK(t, "QueryMigrateParameters", err)
	if p.DowntimeLimit == nil || *p.DowntimeLimit != 500 {
		t.Errorf("QueryMigrateParameters downtime-limit = %v, want 500", p.DowntimeLimit)
	}
	cur := m.EventCursor()
	qemuOK(t, "Migrate", m.Migrate(ctx, qmp.MigrateArgs{URI: "exec:cat > /dev/null"}))
	status, err := m.WaitMigration(ctx, cur)
	qemuOK(t, "WaitMigration", err)
	if status != "completed" {
		t.Fatalf("WaitMigration = %q, want completed", status)
	}
	info, err := m.QueryMigrate(ctx)
	qemuOK(t, "QueryMigrate", err)
	if info.Status == nil || *info.Status != "completed" || info.RAM == nil || info.RAM.Total == 0 || info.TotalTime == nil {
		t.Errorf("QueryMigrate = %+v, want completed with RAM figures", info)
	}

	// Channels instead of a URI, where this QEMU takes them (from a fresh
	// QEMU: one that has migrated refuses to migrate again since 8.x).
	s, err := m.Schema(ctx)
	qemuOK(t, "Schema", err)
	if !s.Has("migrate.channels.addr.transport=exec.args") {
		t.Logf("QEMU %v has no migration channels: only the URI form ran", m.Version())
		return
	}
	_, m = qemuMonitor(t, qemutest.Config{})
	qemuOK(t, "MigrateSetCapabilities", m.MigrateSetCapabilities(ctx, []qmp.MigrationCapabilityStatus{{Capability: "events", State: true}}))
	cur = m.EventCursor()
	qemuOK(t, "Migrate with channels", m.Migrate(ctx, qmp.MigrateArgs{Channels: []qmp.MigrationChannel{{ChannelType: "main",
		Addr: qmp.MigrationAddress{Transport: "exec", Props: qmp.MigrationExecCommand{Args: []string{"/bin/sh", "-c", "cat > /dev/null"}}}}}}))
	if status, err := m.WaitMigration(ctx, cur); err != nil || status != "completed" {
		t.Errorf("WaitMigration after Migrate with channels = %q, %v; want completed", status, err)
	}
}

func TestQEMUTypedBalloonAndQOM(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{Machine: "pc", Paused: true, ExtraArgs: []string{"-device", "virtio-balloon,id=bal0"}})
	ctx := ctxT(t, qemuWait)
	b, err := m.QueryBalloon(ctx)
	qemuOK(t, "QueryBalloon", err)
	if b.Actual != 64<<20 {
		t.Errorf("QueryBalloon = %d, want 64 MiB", b.Actual)
	}
	// Without a guest driver the target is recorded and actual stays.
	qemuOK(t, "Balloon", m.Balloon(ctx, 32<<20))
	var target int64
	qemuOK(t, "QOMGet(target)", m.QOMGet(ctx, "/machine/peripheral/bal0", "guest-stats-polling-interval", &target))
	if target != 0 {
		t.Errorf("guest-stats-polling-interval = %d, want 0", target)
	}
	qemuOK(t, "QOMSet", m.QOMSet(ctx, "/machine/peripheral/bal0", "guest-stats-polling-interval", 2))
	qemuOK(t, "QOMGet", m.QOMGet(ctx, "/machine/peripheral/bal0", "guest-stats-polling-interval", &target))
	if target != 2 {
		t.Errorf("guest-stats-polling-interval after QOMSet = %d, want 2", target)
	}
	props, err := m.QOMList(ctx, "/machine/peripheral/bal0")
	qemuOK(t, "QOMList", err)
	if !slices.ContainsFunc(props, func(p qmp.ObjectPropertyInfo) bool {
		return p.Name == "guest-stats-polling-interval" && p.Type == "int"
	}) {
		t.Errorf("QOMList lacks guest-stats-polling-interval: %+v", props)
	}
	qemuOK(t, "ObjectAdd", m.ObjectAdd(ctx, qmp.ObjectAddArgs{QOMType: "iothread", ID: "io0", Props: map[string]int64{"poll-max-ns": 1000}}))
	var poll int64
	qemuOK(t, "QOMGet(poll-max-ns)", m.QOMGet(ctx, "/objects/io0", "poll-max-ns", &poll))
	if poll != 1000 {
		t.Errorf("poll-max-ns = %d, want 1000", poll)
	}
	qemuOK(t, "ObjectDel", m.ObjectDel(ctx, "io0"))

	// machine none has no balloon.
	_, m2 := qemuMonitor(t, qemutest.Config{})
	_, err = m2.QueryBalloon(ctx)
	var dna *qmp.DeviceNotActive
	if !errors.As(err, &dna) {
		t.Errorf("QueryBalloon without a balloon = %v, want *qmp.DeviceNotActive", err)
	}
}

func TestQEMUSchemaFeatureQueries(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{})
	ctx := ctxT(t, qemuWait)
	s, err := m.Schema(ctx)
	qemuOK(t, "Schema", err)
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"blockdev-add.driver=file.aio=io_uring", true},
		{"blockdev-add.driver=file.aio=native", true},
		{"blockdev-add.driver=null-co.read-zeroes", true},
		{"blockdev-mirror.copy-mode=write-blocking", true},
		{"migrate-set-capabilities.capabilities.capability=events", true},
		{"query-block->inserted.image.virtual-size", true},
		{"BLOCK_JOB_READY", true},
		{"drive-backup#deprecated", m.Version().QEMU.Major*100+m.Version().QEMU.Minor >= 602}, // deprecated in 6.2
		{"nbd-server-add#deprecated", true},
		{"block-export-add.type=nbd.bitmaps", true},
		{"blockdev-add.driver=file.aio=telepathy", false},
		{"no-such-command", false},
	} {
		if got := s.Has(tc.path); got != tc.ok {
			_, err := s.Lookup(tc.path)
			t.Errorf("Has(%q) = %v, want %v (%v)", tc.path, got, tc.ok, err)
		}
	}
	// What the schema lacks, QEMU refuses. Members in Props are the
	// driver's, sent unchecked (QEMU's schema does not describe every
	// driver's); QEMU's refusal is recognised, schema known or not.
	unknown := qmp.BlockdevOptions{Driver: "null-co", NodeName: "n0", Props: map[string]any{"telepathy": true}}
	_, fresh := qemuMonitor(t, qemutest.Config{})
	for _, mon := range []*qmp.Monitor{m, fresh} {
		err = mon.BlockdevAdd(ctx, unknown)
		var ue *qmp.UnsupportedError
		var ge *qmp.GenericError
		if !errors.As(err, &ue) || ue.Path != "blockdev-add.telepathy" || !errors.As(err, &ge) || !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("BlockdevAdd with an unknown option = %v, want an *UnsupportedError for blockdev-add.telepathy wrapping QEMU's *GenericError", err)
		}
	}
	if s2, err := m.Schema(ctx); err != nil || s2 != s {
		t.Errorf("second Schema = %p, %v; want the cached %p", s2, err, s)
	}
}

// With -compat deprecated-output=hide QEMU sends its enums without the
// deprecated "values" list: enum queries must still answer from
// members[].name.
func TestQEMUSchemaEnumsWithoutValues(t *testing.T) {
	t.Parallel()
	m := qemuHidingDeprecated(t)
	ctx := ctxT(t, qemuWait)
	var raw []struct {
		MetaType string    `json:"meta-type"`
		Values   *[]string `json:"values"`
	}
	qemuOK(t, "query-qmp-schema", m.RunContext(ctx, qmp.Command{Name: "query-qmp-schema"}, &raw))
	for _, e := range raw {
		if e.MetaType == "enum" && e.Values != nil {
			t.Skip("this QEMU sends enum values despite deprecated-output=hide (before 6.2 they were not deprecated)")
		}
	}
	s, err := m.Schema(ctx)
	qemuOK(t, "Schema", err)
	for _, path := range []string{"blockdev-add.driver=file.aio=threads", "migrate-set-capabilities.capabilities.capability=events", "query-status->status=running"} {
		if _, err := s.Lookup(path); err != nil {
			t.Errorf("Lookup(%s) without enum values: %v", path, err)
		}
	}
	if s.Has("blockdev-add.driver=file.aio=telepathy") {
		t.Error("an enum value QEMU does not have matched")
	}
}

// A typed call that uses what the connected QEMU lacks fails with an
// *UnsupportedError: refused before sending once the schema is known,
// recognised in QEMU's refusal before; what this QEMU has is never
// refused so. Which calls lack what depends on the version (5.2: the
// screendump format and the medium change's force; 9.1 and later: the
// compress parameters), so each asks the schema.
func TestQEMUUnsupportedByVersion(t *testing.T) {
	t.Parallel()
	_, known := qemuMonitor(t, qemutest.Config{})
	_, fresh := qemuMonitor(t, qemutest.Config{}) // its schema is never fetched
	ctx := ctxT(t, qemuWait)
	s, err := known.Schema(ctx)
	qemuOK(t, "Schema", err)
	level := int64(1)
	png := filepath.Join(t.TempDir(), "screen.png")
	calls := []struct {
		path string
		call func(*qmp.Monitor) error
	}{
		{"migrate-set-parameters.compress-level", func(m *qmp.Monitor) error {
			return m.MigrateSetParameters(ctx, qmp.MigrationParameters{CompressLevel: &level})
		}},
		{"screendump.format", func(m *qmp.Monitor) error {
			return m.Screendump(ctx, qmp.ScreendumpArgs{Filename: png, Format: "png"})
		}},
		{"blockdev-change-medium.force", func(m *qmp.Monitor) error {
			return m.BlockdevChangeMedium(ctx, qmp.BlockdevChangeMediumArgs{ID: "nosuch", Filename: "/dev/null", Force: true})
		}},
	}
	var lacking []string
	for _, c := range calls {
		has := s.Has(c.path)
		if !has {
			lacking = append(lacking, c.path)
		}
		for _, m := range []*qmp.Monitor{known, fresh} {
			err := c.call(m)
			var ue *qmp.UnsupportedError
			var ge *qmp.GenericError
			switch unsupported := errors.As(err, &ue); {
			case has && unsupported:
				t.Errorf("%s, which QEMU %v has: %v", c.path, m.Version(), err)
			case has:
			case !unsupported || ue.Path != c.path || ue.Version != m.Version():
				t.Errorf("%s, which QEMU %v lacks: %v, want an *UnsupportedError naming it", c.path, m.Version(), err)
			case m == known && ue.Err != nil:
				t.Errorf("%s with the schema known: %v, want it refused before sending", c.path, err)
			case m == fresh && !errors.As(err, &ge):
				t.Errorf("%s without the schema: %v, want QEMU's refusal inside", c.path, err)
			}
		}
	}
	t.Logf("QEMU %v lacks %q", known.Version(), lacking)
}

// Driver properties (Props) are the driver's, which QEMU's schema does not
// describe: with the schema fetched, such calls still go through.
func TestQEMUPropsNotCheckedAgainstSchema(t *testing.T) {
	t.Parallel()
	_, m := qemuMonitor(t, qemutest.Config{Machine: "pc", Paused: true})
	ctx := ctxT(t, qemuWait)
	_, err := m.Schema(ctx)
	qemuOK(t, "Schema", err)
	qemuOK(t, "DeviceAdd with Props", m.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "virtio-rng-pci", ID: "rng0", Props: map[string]any{"max-bytes": 1024, "period": 1000}}))
	qemuOK(t, "ObjectAdd with Props", m.ObjectAdd(ctx, qmp.ObjectAddArgs{QOMType: "memory-backend-ram", ID: "mem0", Props: map[string]any{"size": 1 << 20}}))
}

// A QEMU run with -compat deprecated-output=hide leaves deprecated
// commands out of its schema but still runs them: typed calls are not
// refused for them.
func TestQEMUHiddenDeprecatedNotRefused(t *testing.T) {
	t.Parallel()
	m := qemuHidingDeprecated(t)
	ctx := ctxT(t, qemuWait)
	s, err := m.Schema(ctx)
	qemuOK(t, "Schema", err)
	if s.Has("drive-backup") {
		t.Skip("this QEMU lists drive-backup despite deprecated-output=hide (it deprecated it in 6.2)")
	}
	err = m.DriveBackup(ctx, qmp.DriveBackupArgs{Device: "nosuch", Target: filepath.Join(t.TempDir(), "b"), Sync: "full"})
	var ue *qmp.UnsupportedError
	var ge *qmp.GenericError
	if errors.As(err, &ue) || !errors.As(err, &ge) {
		t.Errorf("DriveBackup hidden from the schema = %v, want QEMU's own error (it runs the command)", err)
	}
}

// qemuHidingDeprecated starts a QEMU with -compat deprecated-output=hide
// and connects to it, or skips on a QEMU without -compat (added in 6.0).
func qemuHidingDeprecated(t *testing.T) *qmp.Monitor {
	t.Helper()
	bin, ok := qemutest.Binary()
	if !ok {
		qemutest.Require(t, qemutest.Config{}) // skips, or fails where QEMU is required
	}
	help, err := exec.Command(bin, "-help").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(help, []byte("\n-compat ")) {
		t.Skip("this QEMU has no -compat option (added in 6.0)")
	}
	_, m := qemuMonitor(t, qemutest.Config{ExtraArgs: []string{"-compat", "deprecated-output=hide"}})
	return m
}
