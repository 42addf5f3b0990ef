package qmp

// Typed commands: the NBD server and block exports. All methods are safe
// for concurrent use, as Run is.

import "context"

// SocketAddressLegacy is an address in the form nbd-server-start and
// chardev-add take in QEMU 7.2: Type ("inet", "unix", "vsock", "fd") and
// the address as Data, e.g. InetSocketAddress or UnixSocketAddress.
type SocketAddressLegacy struct {
	Type string      `json:"type"`
	Data interface{} `json:"data"`
}

// InetSocketAddress is a host and port (the Data of type "inet").
type InetSocketAddress struct {
	Host string `json:"host"`
	Port string `json:"port"`
	IPv4 *bool  `json:"ipv4,omitempty"`
	IPv6 *bool  `json:"ipv6,omitempty"`
}

// UnixSocketAddress is a unix socket path (the Data of type "unix").
type UnixSocketAddress struct {
	Path string `json:"path"`
}

// NBDServerStartArgs are nbd-server-start's arguments.
type NBDServerStartArgs struct {
	Addr           SocketAddressLegacy `json:"addr"`
	TLSCreds       string              `json:"tls-creds,omitempty"`
	TLSAuthz       string              `json:"tls-authz,omitempty"`
	MaxConnections *int64              `json:"max-connections,omitempty"` // 0: unlimited; nil: QEMU's default (100 since QEMU 9.1, unlimited before)
}

// NBDServerAddArgs are nbd-server-add's arguments (QEMU 5.2 deprecates
// nbd-server-add: prefer BlockExportAdd).
type NBDServerAddArgs struct {
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Device      string `json:"device"`
	Writable    bool   `json:"writable,omitempty"`
	Bitmap      string `json:"bitmap,omitempty"`
}

// BlockExportOptions are block-export-add's arguments, with the members
// of Type "nbd" (Name, Description, Bitmaps, AllocationDepth).
type BlockExportOptions struct {
	Type            string   `json:"type"` // "nbd", "vhost-user-blk", "fuse", "vduse-blk"
	ID              string   `json:"id"`
	NodeName        string   `json:"node-name"`
	Writable        bool     `json:"writable,omitempty"`
	Writethrough    bool     `json:"writethrough,omitempty"`
	IOThread        string   `json:"iothread,omitempty"`
	FixedIOThread   bool     `json:"fixed-iothread,omitempty"`
	Name            string   `json:"name,omitempty"` // the NBD export name (default: NodeName)
	Description     string   `json:"description,omitempty"`
	Bitmaps         []string `json:"bitmaps,omitempty"`
	AllocationDepth bool     `json:"allocation-depth,omitempty"`
}

type blockExportDelArgs struct {
	ID   string `json:"id"`
	Mode string `json:"mode,omitempty"` // "safe" or "hard"
}

var (
	cmdNbdServerStart = defCommand[NBDServerStartArgs, struct{}]("nbd-server-start")
	cmdNbdServerAdd   = defCommand[NBDServerAddArgs, struct{}]("nbd-server-add")
	cmdNbdServerStop  = defCommand[struct{}, struct{}]("nbd-server-stop")
	cmdBlockExportAdd = defCommand[BlockExportOptions, struct{}]("block-export-add")
	cmdBlockExportDel = defCommand[blockExportDelArgs, struct{}]("block-export-del")

	_ = defVariant[InetSocketAddress]("nbd-server-start.addr.type=inet.data", false)
	_ = defVariant[UnixSocketAddress]("nbd-server-start.addr.type=unix.data", false)
)

// NBDServerStart starts QEMU's NBD server (nbd-server-start).
func (m *Monitor) NBDServerStart(ctx context.Context, args NBDServerStartArgs) error {
	return cmdNbdServerStart.do(ctx, m, &args)
}

// NBDServerAdd exports a device over NBD (nbd-server-add, deprecated in
// QEMU 7.2).
func (m *Monitor) NBDServerAdd(ctx context.Context, args NBDServerAddArgs) error {
	return cmdNbdServerAdd.do(ctx, m, &args)
}

// NBDServerStop stops the NBD server and its exports (nbd-server-stop).
func (m *Monitor) NBDServerStop(ctx context.Context) error {
	return cmdNbdServerStop.do(ctx, m, nil)
}

// BlockExportAdd exports a node, e.g. over NBD (block-export-add).
func (m *Monitor) BlockExportAdd(ctx context.Context, opts BlockExportOptions) error {
	return cmdBlockExportAdd.do(ctx, m, &opts)
}

// BlockExportDel removes an export (block-export-del); mode "" is QEMU's
// default ("safe").
func (m *Monitor) BlockExportDel(ctx context.Context, id, mode string) error {
	return cmdBlockExportDel.do(ctx, m, &blockExportDelArgs{ID: id, Mode: mode})
}
