package qmp

// Typed commands: CPUs, memory and the balloon. All methods are safe for
// concurrent use, as Run is.

import (
	"context"
	"encoding/json"
)

// CPUInstanceProperties says where a CPU sits in the topology; members
// the machine does not use are nil.
type CPUInstanceProperties struct {
	NodeID    *int64 `json:"node-id,omitempty"`
	SocketID  *int64 `json:"socket-id,omitempty"`
	DieID     *int64 `json:"die-id,omitempty"`
	ClusterID *int64 `json:"cluster-id,omitempty"` // QEMU 7.1 and later
	CoreID    *int64 `json:"core-id,omitempty"`
	ThreadID  *int64 `json:"thread-id,omitempty"`
}

// CPUInfoFast is one vCPU in query-cpus-fast's reply.
type CPUInfoFast struct {
	CPUIndex int64                  `json:"cpu-index"`
	QOMPath  string                 `json:"qom-path"`
	ThreadID int64                  `json:"thread-id"`
	Props    *CPUInstanceProperties `json:"props,omitempty"`
	Target   string                 `json:"target"` // SysEmuTarget, e.g. "x86_64"
}

// HotpluggableCPU is one slot in query-hotpluggable-cpus's reply.
type HotpluggableCPU struct {
	Type       string                `json:"type"`
	VCPUsCount int64                 `json:"vcpus-count"`
	Props      CPUInstanceProperties `json:"props"`
	QOMPath    *string               `json:"qom-path,omitempty"` // nil: the slot is free
}

// MemoryDeviceInfo is one memory device in query-memory-devices's reply:
// Type ("dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc") says
// what Data holds; decode it into the matching *MemoryDeviceInfo type,
// e.g. PCDIMMDeviceInfo for "dimm".
type MemoryDeviceInfo struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// PCDIMMDeviceInfo is the Data of a "dimm" or "nvdimm" MemoryDeviceInfo.
type PCDIMMDeviceInfo struct {
	ID           *string `json:"id,omitempty"`
	Addr         int64   `json:"addr"`
	Size         int64   `json:"size"`
	Slot         int64   `json:"slot"`
	Node         int64   `json:"node"`
	Memdev       string  `json:"memdev"`
	Hotplugged   bool    `json:"hotplugged"`
	Hotpluggable bool    `json:"hotpluggable"`
}

// VirtioMEMDeviceInfo is the Data of a "virtio-mem" MemoryDeviceInfo.
type VirtioMEMDeviceInfo struct {
	ID            *string `json:"id,omitempty"`
	Memaddr       int64   `json:"memaddr"`
	RequestedSize int64   `json:"requested-size"`
	Size          int64   `json:"size"`
	MaxSize       int64   `json:"max-size"`
	BlockSize     int64   `json:"block-size"`
	Node          int64   `json:"node"`
	Memdev        string  `json:"memdev"`
}

// BalloonInfo is query-balloon's reply.
type BalloonInfo struct {
	Actual int64 `json:"actual"` // bytes of memory the guest has
}

type balloonArgs struct {
	Value int64 `json:"value"`
}

var (
	cmdQueryCpusFast         = defCommand[struct{}, []CPUInfoFast]("query-cpus-fast")
	cmdQueryHotpluggableCpus = defCommand[struct{}, []HotpluggableCPU]("query-hotpluggable-cpus")
	cmdQueryMemoryDevices    = defCommand[struct{}, []MemoryDeviceInfo]("query-memory-devices")
	cmdQueryBalloon          = defCommand[struct{}, BalloonInfo]("query-balloon")
	cmdBalloon               = defCommand[balloonArgs, struct{}]("balloon")

	_ = defVariant[PCDIMMDeviceInfo]("query-memory-devices->type=dimm.data", true)
	_ = defVariant[VirtioMEMDeviceInfo]("query-memory-devices->type=virtio-mem.data", true)
)

// QueryCPUsFast lists the vCPUs (query-cpus-fast).
func (m *Monitor) QueryCPUsFast(ctx context.Context) ([]CPUInfoFast, error) {
	return cmdQueryCpusFast.run(ctx, m, nil)
}

// QueryHotpluggableCPUs lists the CPU slots of the machine
// (query-hotpluggable-cpus).
func (m *Monitor) QueryHotpluggableCPUs(ctx context.Context) ([]HotpluggableCPU, error) {
	return cmdQueryHotpluggableCpus.run(ctx, m, nil)
}

// QueryMemoryDevices lists the memory devices (query-memory-devices).
func (m *Monitor) QueryMemoryDevices(ctx context.Context) ([]MemoryDeviceInfo, error) {
	return cmdQueryMemoryDevices.run(ctx, m, nil)
}

// QueryBalloon returns the guest's memory as the balloon sees it
// (query-balloon). Without a balloon device QEMU answers with
// *DeviceNotActive.
func (m *Monitor) QueryBalloon(ctx context.Context) (*BalloonInfo, error) {
	return cmdQueryBalloon.ptr(ctx, m, nil)
}

// Balloon asks the guest to resize its memory to bytes (balloon); the
// guest's driver reports the change with BALLOON_CHANGE.
func (m *Monitor) Balloon(ctx context.Context, bytes int64) error {
	return cmdBalloon.do(ctx, m, &balloonArgs{Value: bytes})
}
