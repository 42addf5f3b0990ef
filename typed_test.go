package qmp_test

// Typed commands, the schema fetch and the deprecation warnings against
// the simulated QEMU (qmptest).

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// echoServer answers every named command with {} (or ret, when given).
func echoServer(t *testing.T, names ...string) *qmptest.Server {
	s := newServer(t, qmptest.Config{})
	for _, n := range names {
		s.Handle(n, func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{} })
	}
	return s
}

// lastArgs returns the compacted arguments of the last request named name.
func lastArgs(t *testing.T, s *qmptest.Server, name string) string {
	t.Helper()
	reqs := s.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Name == name {
			var b bytes.Buffer
			if len(reqs[i].Arguments) == 0 {
				return ""
			}
			if err := json.Compact(&b, reqs[i].Arguments); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
	}
	t.Fatalf("no %s request was received", name)
	return ""
}

func TestTypedCommandsWire(t *testing.T) {
	s := echoServer(t, "blockdev-add", "migrate-set-capabilities", "blockdev-mirror", "object-add",
		"chardev-add", "block_resize", "block_set_io_throttle", "migrate-set-parameters", "qom-set")
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	id := "vd0"
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"device_add", func() error {
			return m.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "virtio-blk-pci", ID: id, Props: map[string]any{"drive": "d0", "bootindex": 1}})
		}, `{"driver":"virtio-blk-pci","id":"vd0","bootindex":1,"drive":"d0"}`},
		{"blockdev-add", func() error {
			return m.BlockdevAdd(ctx, qmp.BlockdevOptions{Driver: "file", NodeName: "f0",
				Props: qmp.BlockdevOptionsFile{Filename: "/tmp/x.img", AIO: "io_uring"}})
		}, `{"driver":"file","node-name":"f0","filename":"/tmp/x.img","aio":"io_uring"}`},
		{"blockdev-add", func() error {
			return m.BlockdevAdd(ctx, qmp.BlockdevOptions{Driver: "qcow2", NodeName: "q0",
				Props: qmp.BlockdevOptionsQcow2{File: qmp.BlockdevOptions{Driver: "file", Props: map[string]string{"filename": "/a"}}}})
		}, `{"driver":"qcow2","node-name":"q0","file":{"driver":"file","filename":"/a"}}`},
		{"migrate-set-capabilities", func() error {
			return m.MigrateSetCapabilities(ctx, []qmp.MigrationCapabilityStatus{{Capability: "events", State: true}, {Capability: "xbzrle"}})
		}, `{"capabilities":[{"capability":"events","state":true},{"capability":"xbzrle","state":false}]}`},
		{"blockdev-mirror", func() error {
			return m.BlockdevMirror(ctx, qmp.BlockdevMirrorArgs{JobID: "j", Device: "src", Target: "dst", Sync: "full"})
		}, `{"job-id":"j","device":"src","target":"dst","sync":"full"}`},
		{"object-add", func() error {
			return m.ObjectAdd(ctx, qmp.ObjectAddArgs{QOMType: "memory-backend-ram", ID: "mem0", Props: map[string]int64{"size": 1 << 20}})
		}, `{"qom-type":"memory-backend-ram","id":"mem0","size":1048576}`},
		{"chardev-add", func() error {
			_, err := m.ChardevAdd(ctx, "c0", qmp.ChardevBackend{Type: "null"})
			return err
		}, `{"id":"c0","backend":{"type":"null","data":{}}}`},
		{"block_resize", func() error { return m.BlockResize(ctx, "n0", 4096) }, `{"node-name":"n0","size":4096}`},
		{"block_set_io_throttle", func() error {
			return m.BlockSetIOThrottle(ctx, qmp.BlockIOThrottle{ID: "vd0", BPS: 1000})
		}, `{"id":"vd0","bps":1000,"bps_rd":0,"bps_wr":0,"iops":0,"iops_rd":0,"iops_wr":0}`},
		{"migrate-set-parameters", func() error {
			bw := int64(0)
			return m.MigrateSetParameters(ctx, qmp.MigrationParameters{MaxBandwidth: &bw})
		}, `{"max-bandwidth":0}`},
		{"qom-set", func() error { return m.QOMSet(ctx, "/machine", "x", []int{1}) }, `{"path":"/machine","property":"x","value":[1]}`},
	} {
		if err := tc.call(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := lastArgs(t, s, tc.name); got != tc.want {
			t.Errorf("%s sent %s, want %s", tc.name, got, tc.want)
		}
	}
	if err := m.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "x", ID: id, Props: map[string]any{"id": "other"}}); err == nil ||
		!strings.Contains(err.Error(), `"id" is set twice`) {
		t.Errorf("DeviceAdd with id in Props too: %v, want a set-twice error", err)
	}
}

func TestTypedCommandsReplies(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("query-block", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{RawReturn: json.RawMessage(`[{"device":"","qdev":"/machine/peripheral/vd0/virtio-backend","type":"unknown","removable":false,"locked":false,
			"inserted":{"file":"null-co://","node-name":"d0","ro":false,"drv":"null-co","backing_file_depth":0,"encrypted":false,"detect_zeroes":"off",
			"bps":0,"bps_rd":0,"bps_wr":0,"iops":0,"iops_rd":0,"iops_wr":0,"image":{"filename":"null-co://","format":"null-co","virtual-size":1073741824},
			"cache":{"writeback":true,"direct":false,"no-flush":false},"write_threshold":0}}]`)}
	})
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	st, err := m.QueryStatus(ctx)
	if err != nil || st.Status != "running" || !st.Running {
		t.Errorf("QueryStatus = %+v, %v; want running", st, err)
	}
	v, err := m.QueryVersion(ctx)
	if err != nil || v.QEMU.Major != 7 || v.QEMU.Minor != 2 {
		t.Errorf("QueryVersion = %+v, %v", v, err)
	}
	blk, err := m.QueryBlock(ctx)
	if err != nil || len(blk) != 1 || blk[0].Inserted == nil || blk[0].Inserted.Image.VirtualSize != 1<<30 ||
		blk[0].Qdev == nil || *blk[0].Inserted.NodeName != "d0" || blk[0].TrayOpen != nil {
		t.Errorf("QueryBlock = %+v, %v", blk, err)
	}
	err = m.DeviceDel(ctx, "nope")
	var dnf *qmp.DeviceNotFound
	if !errors.As(err, &dnf) || !strings.Contains(err.Error(), "device_del failed") {
		t.Errorf("DeviceDel(nope) = %v, want a *DeviceNotFound naming device_del", err)
	}
	m.Close()
	if err := m.Stop(ctx); !qmp.IsSocketClosed(err) || !errors.Is(err, qmp.ErrClosed) {
		t.Errorf("Stop after Close = %v, want a closed error", err)
	}
	if err := m.Quit(ctx); !qmp.IsSocketClosed(err) {
		t.Errorf("Quit after Close = %v, want a closed error", err)
	}
}

// schemaServer serves the 7.2 schema; fail makes the next calls fail,
// and gate (when set) holds each reply until it is closed.
type schemaServer struct {
	*qmptest.Server
	calls atomic.Int32
	fail  atomic.Bool
	gate  chan struct{}
	in    chan struct{}
}

func newSchemaServer(t *testing.T, gated bool) *schemaServer {
	ss := &schemaServer{Server: newServer(t, qmptest.Config{})}
	if gated {
		ss.gate, ss.in = make(chan struct{}), make(chan struct{}, 1)
	}
	raw := schema72Bytes(t)
	ss.Handle("query-qmp-schema", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		ss.calls.Add(1)
		if ss.in != nil {
			ss.in <- struct{}{}
		}
		if ss.gate != nil {
			<-ss.gate
		}
		if ss.fail.Load() {
			return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "not today"}
		}
		return qmptest.Reply{RawReturn: raw}
	})
	for _, n := range []string{"drive-backup", "block_set_io_throttle", "blockdev-backup"} {
		ss.Handle(n, func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{} })
	}
	return ss
}

func schema72Bytes(t testing.TB) []byte {
	schema72T(t)
	return schema72Raw
}
