package qmp

// Typed commands: block devices, nodes, media and dirty bitmaps. All
// methods are safe for concurrent use, as Run is.

import (
	"context"
	"encoding/json"
)

// BlockInfo is one block device (a drive, not a node) in query-block's
// reply.
type BlockInfo struct {
	Device    string           `json:"device"` // "" for devices created with -device/blockdev only
	Qdev      *string          `json:"qdev,omitempty"`
	Type      string           `json:"type"`
	Removable bool             `json:"removable"`
	Locked    bool             `json:"locked"`
	Inserted  *BlockDeviceInfo `json:"inserted,omitempty"` // nil: no medium
	TrayOpen  *bool            `json:"tray_open,omitempty"`
	IOStatus  *string          `json:"io-status,omitempty"` // "ok", "failed", "nospace"
}

// BlockDeviceInfo describes a node: the medium of a BlockInfo, or one
// entry of query-named-block-nodes.
type BlockDeviceInfo struct {
	File             string            `json:"file"`
	NodeName         *string           `json:"node-name,omitempty"`
	RO               bool              `json:"ro"`
	Drv              string            `json:"drv"`
	BackingFile      *string           `json:"backing_file,omitempty"`
	BackingFileDepth int64             `json:"backing_file_depth"`
	Encrypted        bool              `json:"encrypted"`
	DetectZeroes     string            `json:"detect_zeroes"`
	BPS              int64             `json:"bps"`
	BPSRd            int64             `json:"bps_rd"`
	BPSWr            int64             `json:"bps_wr"`
	IOPS             int64             `json:"iops"`
	IOPSRd           int64             `json:"iops_rd"`
	IOPSWr           int64             `json:"iops_wr"`
	Image            ImageInfo         `json:"image"`
	Group            *string           `json:"group,omitempty"`
	Cache            BlockdevCacheInfo `json:"cache"`
	WriteThreshold   int64             `json:"write_threshold"`
	DirtyBitmaps     []BlockDirtyInfo  `json:"dirty-bitmaps,omitempty"`
}

// ImageInfo describes an image file.
type ImageInfo struct {
	Filename       string          `json:"filename"`
	Format         string          `json:"format"`
	DirtyFlag      *bool           `json:"dirty-flag,omitempty"`
	ActualSize     *int64          `json:"actual-size,omitempty"`
	VirtualSize    int64           `json:"virtual-size"`
	ClusterSize    *int64          `json:"cluster-size,omitempty"`
	Encrypted      *bool           `json:"encrypted,omitempty"`
	Compressed     *bool           `json:"compressed,omitempty"`
	BackingFile    *string         `json:"backing-filename,omitempty"`
	FullBacking    *string         `json:"full-backing-filename,omitempty"`
	BackingFormat  *string         `json:"backing-filename-format,omitempty"`
	BackingImage   *ImageInfo      `json:"backing-image,omitempty"`
	FormatSpecific json.RawMessage `json:"format-specific,omitempty"`
}

// BlockdevCacheInfo is a node's cache mode.
type BlockdevCacheInfo struct {
	Writeback bool `json:"writeback"`
	Direct    bool `json:"direct"`
	NoFlush   bool `json:"no-flush"`
}

// BlockDirtyInfo describes a dirty bitmap.
type BlockDirtyInfo struct {
	Name         *string `json:"name,omitempty"`
	Count        int64   `json:"count"`
	Granularity  int64   `json:"granularity"`
	Recording    bool    `json:"recording"`
	Busy         bool    `json:"busy"`
	Persistent   bool    `json:"persistent"`
	Inconsistent *bool   `json:"inconsistent,omitempty"`
}

// BlockdevOptions are blockdev-add's arguments: the members every driver
// has typed, the driver's own options in Props (a struct such as
// BlockdevOptionsFile, or a map), sent as members of the same object. The
// schema path "blockdev-add.driver=DRIVER.MEMBER" says whether a QEMU
// knows a driver's option (Schema.Has).
type BlockdevOptions struct {
	Driver       string                `json:"driver"`
	NodeName     string                `json:"node-name,omitempty"`
	Discard      string                `json:"discard,omitempty"` // "ignore" or "unmap"
	Cache        *BlockdevCacheOptions `json:"cache,omitempty"`
	ReadOnly     *bool                 `json:"read-only,omitempty"`
	AutoReadOnly *bool                 `json:"auto-read-only,omitempty"`
	ForceShare   *bool                 `json:"force-share,omitempty"`
	DetectZeroes string                `json:"detect-zeroes,omitempty"` // "off", "on", "unmap"
	Props        interface{}           `json:"-"`
}

// MarshalJSON sends Props as members of the same object.
func (o BlockdevOptions) MarshalJSON() ([]byte, error) {
	type plain BlockdevOptions
	return mergeObjects(plain(o), o.Props)
}

// BlockdevCacheOptions is a node's cache mode for blockdev-add.
type BlockdevCacheOptions struct {
	Direct  *bool `json:"direct,omitempty"`
	NoFlush *bool `json:"no-flush,omitempty"`
}

// BlockdevOptionsFile are the options of drivers file, host_device and
// host_cdrom.
type BlockdevOptionsFile struct {
	Filename  string `json:"filename"`
	Locking   string `json:"locking,omitempty"` // "on", "off", "auto"
	AIO       string `json:"aio,omitempty"`     // "threads", "native", "io_uring"
	DropCache *bool  `json:"drop-cache,omitempty"`
}

// BlockdevOptionsNull are the options of drivers null-co and null-aio.
type BlockdevOptionsNull struct {
	Size       *int64 `json:"size,omitempty"`
	LatencyNS  int64  `json:"latency-ns,omitempty"`
	ReadZeroes bool   `json:"read-zeroes,omitempty"`
}

// BlockdevOptionsRaw are the options of driver raw. File is a node name
// (string) or inline BlockdevOptions.
type BlockdevOptionsRaw struct {
	File   interface{} `json:"file"`
	Offset int64       `json:"offset,omitempty"`
	Size   *int64      `json:"size,omitempty"`
}

// BlockdevOptionsQcow2 are the main options of driver qcow2. File and
// Backing are node names (string) or inline BlockdevOptions; Backing may
// also be json.RawMessage("null") for no backing file.
type BlockdevOptionsQcow2 struct {
	File          interface{} `json:"file"`
	Backing       interface{} `json:"backing,omitempty"`
	LazyRefcounts *bool       `json:"lazy-refcounts,omitempty"`
	CacheSize     int64       `json:"cache-size,omitempty"`
}

// BlockIOThrottle are block_set_io_throttle's arguments. The six limits
// without omitempty are mandatory (0 means unlimited).
type BlockIOThrottle struct {
	Device        string `json:"device,omitempty"` // deprecated: use ID
	ID            string `json:"id,omitempty"`     // the device's qdev id
	BPS           int64  `json:"bps"`
	BPSRd         int64  `json:"bps_rd"`
	BPSWr         int64  `json:"bps_wr"`
	IOPS          int64  `json:"iops"`
	IOPSRd        int64  `json:"iops_rd"`
	IOPSWr        int64  `json:"iops_wr"`
	BPSMax        int64  `json:"bps_max,omitempty"`
	BPSRdMax      int64  `json:"bps_rd_max,omitempty"`
	BPSWrMax      int64  `json:"bps_wr_max,omitempty"`
	IOPSMax       int64  `json:"iops_max,omitempty"`
	IOPSRdMax     int64  `json:"iops_rd_max,omitempty"`
	IOPSWrMax     int64  `json:"iops_wr_max,omitempty"`
	BPSMaxLength  int64  `json:"bps_max_length,omitempty"`
	IOPSMaxLength int64  `json:"iops_max_length,omitempty"`
	IOPSSize      int64  `json:"iops_size,omitempty"`
	Group         string `json:"group,omitempty"`
}

// BlockdevChangeMediumArgs are blockdev-change-medium's arguments.
type BlockdevChangeMediumArgs struct {
	ID           string `json:"id,omitempty"` // the device's qdev id
	Filename     string `json:"filename"`
	Format       string `json:"format,omitempty"`
	Force        bool   `json:"force,omitempty"`          // QEMU 7.1 and later
	ReadOnlyMode string `json:"read-only-mode,omitempty"` // "retain", "read-only", "read-write"
}

// BlockDirtyBitmapAddArgs are block-dirty-bitmap-add's arguments.
type BlockDirtyBitmapAddArgs struct {
	Node        string `json:"node"`
	Name        string `json:"name"`
	Granularity int64  `json:"granularity,omitempty"`
	Persistent  bool   `json:"persistent,omitempty"`
	Disabled    bool   `json:"disabled,omitempty"`
}

type (
	nodeNameArgs struct {
		NodeName string `json:"node-name"`
	}
	namedNodesArgs struct {
		Flat bool `json:"flat,omitempty"`
	}
	blockResizeArgs struct {
		NodeName string `json:"node-name,omitempty"`
		Size     int64  `json:"size"`
	}
	openTrayArgs struct {
		ID    string `json:"id,omitempty"`
		Force bool   `json:"force,omitempty"`
	}
	trayArgs struct {
		ID string `json:"id,omitempty"`
	}
	insertMediumArgs struct {
		ID       string `json:"id"`
		NodeName string `json:"node-name"`
	}
	bitmapArgs struct {
		Node string `json:"node"`
		Name string `json:"name"`
	}
)

var (
	cmdQueryBlock           = defCommand[struct{}, []BlockInfo]("query-block")
	cmdQueryNamedBlockNodes = defCommand[namedNodesArgs, []BlockDeviceInfo]("query-named-block-nodes")
	cmdBlockdevAdd          = defCommand[BlockdevOptions, struct{}]("blockdev-add")
	cmdBlockdevDel          = defCommand[nodeNameArgs, struct{}]("blockdev-del")
	cmdBlockResize          = defCommand[blockResizeArgs, struct{}]("block_resize")
	cmdBlockSetIOThrottle   = defCommand[BlockIOThrottle, struct{}]("block_set_io_throttle")
	cmdBlockdevOpenTray     = defCommand[openTrayArgs, struct{}]("blockdev-open-tray")
	cmdBlockdevCloseTray    = defCommand[trayArgs, struct{}]("blockdev-close-tray")
	cmdBlockdevRemoveMedium = defCommand[idArgs, struct{}]("blockdev-remove-medium")
	cmdBlockdevInsertMedium = defCommand[insertMediumArgs, struct{}]("blockdev-insert-medium")
	cmdBlockdevChangeMedium = defCommand[BlockdevChangeMediumArgs, struct{}]("blockdev-change-medium")
	cmdBitmapAdd            = defCommand[BlockDirtyBitmapAddArgs, struct{}]("block-dirty-bitmap-add")
	cmdBitmapRemove         = defCommand[bitmapArgs, struct{}]("block-dirty-bitmap-remove")
	cmdBitmapClear          = defCommand[bitmapArgs, struct{}]("block-dirty-bitmap-clear")

	_ = defVariant[BlockdevOptionsFile]("blockdev-add.driver=file", false)
	_ = defVariant[BlockdevOptionsNull]("blockdev-add.driver=null-co", false)
	_ = defVariant[BlockdevOptionsRaw]("blockdev-add.driver=raw", false)
	_ = defVariant[BlockdevOptionsQcow2]("blockdev-add.driver=qcow2", false)
)

// QueryBlock lists the block devices (query-block).
func (m *Monitor) QueryBlock(ctx context.Context) ([]BlockInfo, error) {
	return cmdQueryBlock.run(ctx, m, nil)
}

// QueryNamedBlockNodes lists the block nodes (query-named-block-nodes);
// flat leaves out the backing chains of each image.
func (m *Monitor) QueryNamedBlockNodes(ctx context.Context, flat bool) ([]BlockDeviceInfo, error) {
	return cmdQueryNamedBlockNodes.run(ctx, m, &namedNodesArgs{Flat: flat})
}

// BlockdevAdd adds a block node (blockdev-add).
func (m *Monitor) BlockdevAdd(ctx context.Context, opts BlockdevOptions) error {
	return cmdBlockdevAdd.do(ctx, m, &opts)
}

// BlockdevDel removes a block node no device uses (blockdev-del).
func (m *Monitor) BlockdevDel(ctx context.Context, nodeName string) error {
	return cmdBlockdevDel.do(ctx, m, &nodeNameArgs{NodeName: nodeName})
}

// BlockResize resizes the image of a node to size bytes (block_resize).
func (m *Monitor) BlockResize(ctx context.Context, nodeName string, size int64) error {
	return cmdBlockResize.do(ctx, m, &blockResizeArgs{NodeName: nodeName, Size: size})
}

// BlockSetIOThrottle sets a device's I/O limits (block_set_io_throttle).
func (m *Monitor) BlockSetIOThrottle(ctx context.Context, limits BlockIOThrottle) error {
	return cmdBlockSetIOThrottle.do(ctx, m, &limits)
}

// BlockdevOpenTray opens the tray of a removable device, by qdev id
// (blockdev-open-tray); QEMU sends DEVICE_TRAY_MOVED.
func (m *Monitor) BlockdevOpenTray(ctx context.Context, id string, force bool) error {
	return cmdBlockdevOpenTray.do(ctx, m, &openTrayArgs{ID: id, Force: force})
}

// BlockdevCloseTray closes the tray of a removable device
// (blockdev-close-tray).
func (m *Monitor) BlockdevCloseTray(ctx context.Context, id string) error {
	return cmdBlockdevCloseTray.do(ctx, m, &trayArgs{ID: id})
}

// BlockdevRemoveMedium removes the medium of a device whose tray is open
// (blockdev-remove-medium).
func (m *Monitor) BlockdevRemoveMedium(ctx context.Context, id string) error {
	return cmdBlockdevRemoveMedium.do(ctx, m, &idArgs{ID: id})
}

// BlockdevInsertMedium inserts node nodeName as the medium of a device
// whose tray is open (blockdev-insert-medium).
func (m *Monitor) BlockdevInsertMedium(ctx context.Context, id, nodeName string) error {
	return cmdBlockdevInsertMedium.do(ctx, m, &insertMediumArgs{ID: id, NodeName: nodeName})
}

// BlockdevChangeMedium replaces a device's medium with an image file
// (blockdev-change-medium).
func (m *Monitor) BlockdevChangeMedium(ctx context.Context, args BlockdevChangeMediumArgs) error {
	return cmdBlockdevChangeMedium.do(ctx, m, &args)
}

// BlockDirtyBitmapAdd creates a dirty bitmap (block-dirty-bitmap-add).
func (m *Monitor) BlockDirtyBitmapAdd(ctx context.Context, args BlockDirtyBitmapAddArgs) error {
	return cmdBitmapAdd.do(ctx, m, &args)
}

// BlockDirtyBitmapRemove deletes a dirty bitmap (block-dirty-bitmap-remove).
func (m *Monitor) BlockDirtyBitmapRemove(ctx context.Context, node, name string) error {
	return cmdBitmapRemove.do(ctx, m, &bitmapArgs{Node: node, Name: name})
}

// BlockDirtyBitmapClear clears a dirty bitmap (block-dirty-bitmap-clear).
func (m *Monitor) BlockDirtyBitmapClear(ctx context.Context, node, name string) error {
	return cmdBitmapClear.do(ctx, m, &bitmapArgs{Node: node, Name: name})
}
