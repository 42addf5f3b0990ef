package qmp

// Typed commands: migration. All methods are safe for concurrent use, as
// Run is.

import "context"

// MigrationCapabilityStatus is one migration capability and its state.
type MigrationCapabilityStatus struct {
	Capability string `json:"capability"` // "events", "xbzrle", "postcopy-ram", ...
	State      bool   `json:"state"`
}

// MigrationStats are the RAM or disk figures of a migration.
type MigrationStats struct {
	Transferred      int64   `json:"transferred"`
	Remaining        int64   `json:"remaining"`
	Total            int64   `json:"total"`
	Duplicate        int64   `json:"duplicate"`
	Normal           int64   `json:"normal"`
	NormalBytes      int64   `json:"normal-bytes"`
	DirtyPagesRate   int64   `json:"dirty-pages-rate"`
	Mbps             float64 `json:"mbps"`
	DirtySyncCount   int64   `json:"dirty-sync-count"`
	PageSize         int64   `json:"page-size"`
	PagesPerSecond   int64   `json:"pages-per-second"`
	PrecopyBytes     *int64  `json:"precopy-bytes,omitempty"`  // QEMU 7.0 and later
	DowntimeBytes    *int64  `json:"downtime-bytes,omitempty"` // QEMU 7.0 and later
	PostcopyBytes    *int64  `json:"postcopy-bytes,omitempty"` // QEMU 7.0 and later
	PostcopyRequests int64   `json:"postcopy-requests"`
}

// MigrationInfo is query-migrate's reply; members QEMU leaves out for the
// current status are nil.
type MigrationInfo struct {
	Status           *string         `json:"status,omitempty"` // "none", "setup", "active", "completed", "failed", ...
	RAM              *MigrationStats `json:"ram,omitempty"`
	Disk             *MigrationStats `json:"disk,omitempty"` // QEMU 9.0 and earlier (block migration was removed in 9.1)
	TotalTime        *int64          `json:"total-time,omitempty"`
	ExpectedDowntime *int64          `json:"expected-downtime,omitempty"`
	Downtime         *int64          `json:"downtime,omitempty"`
	SetupTime        *int64          `json:"setup-time,omitempty"`
	CPUThrottle      *int64          `json:"cpu-throttle-percentage,omitempty"`
	ErrorDesc        *string         `json:"error-desc,omitempty"`
	BlockedReasons   []string        `json:"blocked-reasons,omitempty"` // QEMU 6.0 and later
}

// MigrationParameters are migrate-set-parameters's arguments and
// query-migrate-parameters's reply: nil members are not sent (and were
// not reported).
type MigrationParameters struct {
	AnnounceInitial      *int64  `json:"announce-initial,omitempty"`
	AnnounceMax          *int64  `json:"announce-max,omitempty"`
	AnnounceRounds       *int64  `json:"announce-rounds,omitempty"`
	AnnounceStep         *int64  `json:"announce-step,omitempty"`
	CompressLevel        *int64  `json:"compress-level,omitempty"`     // QEMU 9.0 and earlier
	CompressThreads      *int64  `json:"compress-threads,omitempty"`   // QEMU 9.0 and earlier
	DecompressThreads    *int64  `json:"decompress-threads,omitempty"` // QEMU 9.0 and earlier
	ThrottleTrigger      *int64  `json:"throttle-trigger-threshold,omitempty"`
	CPUThrottleInitial   *int64  `json:"cpu-throttle-initial,omitempty"`
	CPUThrottleIncrement *int64  `json:"cpu-throttle-increment,omitempty"`
	CPUThrottleTailslow  *bool   `json:"cpu-throttle-tailslow,omitempty"`
	TLSCreds             *string `json:"tls-creds,omitempty"`
	TLSHostname          *string `json:"tls-hostname,omitempty"`
	TLSAuthz             *string `json:"tls-authz,omitempty"`
	MaxBandwidth         *int64  `json:"max-bandwidth,omitempty"`     // bytes per second
	DowntimeLimit        *int64  `json:"downtime-limit,omitempty"`    // milliseconds
	BlockIncremental     *bool   `json:"block-incremental,omitempty"` // QEMU 9.0 and earlier
	MultifdChannels      *int64  `json:"multifd-channels,omitempty"`
	XbzrleCacheSize      *int64  `json:"xbzrle-cache-size,omitempty"`
	MaxPostcopyBandwidth *int64  `json:"max-postcopy-bandwidth,omitempty"`
	MaxCPUThrottle       *int64  `json:"max-cpu-throttle,omitempty"`
	MultifdCompression   *string `json:"multifd-compression,omitempty"`
}

// MigrateArgs are migrate's arguments: URI, or Channels on a QEMU that
// takes them.
type MigrateArgs struct {
	// URI is where to migrate to: "tcp:host:port", "unix:/path",
	// "exec:cmd", "fd:name", "file:/path,offset=N". Optional since QEMU
	// 9.0 (and 8.2.2), which take Channels instead.
	URI string `json:"uri,omitempty"`
	// Channels are where to migrate to, as structured addresses (QEMU
	// 8.2 and later).
	Channels []MigrationChannel `json:"channels,omitempty"`
	// Resume resumes a paused postcopy migration.
	Resume bool `json:"resume,omitempty"`
}

// MigrateIncomingArgs are migrate-incoming's arguments: URI, or Channels
// on a QEMU that takes them.
type MigrateIncomingArgs struct {
	// URI is where to listen: as MigrateArgs.URI. Optional since QEMU 8.2.
	URI string `json:"uri,omitempty"`
	// Channels are where to listen (QEMU 8.2 and later).
	Channels []MigrationChannel `json:"channels,omitempty"`
	// ExitOnError set to false keeps QEMU running after a failed incoming
	// migration, for another try (QEMU 9.1 and later; nil: QEMU's
	// default, true).
	ExitOnError *bool `json:"exit-on-error,omitempty"`
}

// MigrationChannel is one channel of a migration (QEMU 8.2 and later).
type MigrationChannel struct {
	ChannelType string           `json:"channel-type"` // "main" (and "cpr" since QEMU 10.0)
	Addr        MigrationAddress `json:"addr"`
}

// MigrationAddress is where a migration channel goes: Transport "socket"
// (Props: a SocketAddress), "exec" (MigrationExecCommand), "file"
// (FileMigrationArgs) or "rdma" (InetSocketAddress), sent as members of
// the same object (QEMU 8.2 and later).
type MigrationAddress struct {
	Transport string      `json:"transport"`
	Props     interface{} `json:"-"`
}

// MarshalJSON sends Props as members of the same object.
func (a MigrationAddress) MarshalJSON() ([]byte, error) {
	type plain MigrationAddress
	return mergeObjects(plain(a), a.Props)
}

// SocketAddress is a socket address in the flat form newer commands take
// (migration channels): Type "inet", "unix", "vsock" or "fd", with that
// type's members (InetSocketAddress, UnixSocketAddress) in Props.
type SocketAddress struct {
	Type  string      `json:"type"`
	Props interface{} `json:"-"`
}

// MarshalJSON sends Props as members of the same object.
func (a SocketAddress) MarshalJSON() ([]byte, error) {
	type plain SocketAddress
	return mergeObjects(plain(a), a.Props)
}

// MigrationExecCommand is the command line of an "exec" migration
// channel, its program first (QEMU 8.2 and later).
type MigrationExecCommand struct {
	Args []string `json:"args"`
}

// FileMigrationArgs are the file and the offset in it of a "file"
// migration channel (QEMU 8.2 and later).
type FileMigrationArgs struct {
	Filename string `json:"filename"`
	Offset   uint64 `json:"offset"`
}

type (
	capabilitiesArgs struct {
		Capabilities []MigrationCapabilityStatus `json:"capabilities"`
	}
)

var (
	cmdMigrate                  = defCommand[MigrateArgs, struct{}]("migrate")
	cmdMigrateIncoming          = defCommand[MigrateIncomingArgs, struct{}]("migrate-incoming")
	cmdMigrateCancel            = defCommand[struct{}, struct{}]("migrate_cancel")
	cmdMigrateSetCapabilities   = defCommand[capabilitiesArgs, struct{}]("migrate-set-capabilities")
	cmdMigrateSetParameters     = defCommand[MigrationParameters, struct{}]("migrate-set-parameters")
	cmdQueryMigrate             = defCommand[struct{}, MigrationInfo]("query-migrate")
	cmdQueryMigrateCapabilities = defCommand[struct{}, []MigrationCapabilityStatus]("query-migrate-capabilities")
	cmdQueryMigrateParameters   = defCommand[struct{}, MigrationParameters]("query-migrate-parameters")
)

// Migrate starts a migration (migrate): MigrateArgs{URI: "unix:/path"}
// on every QEMU. With the "events" capability on, QEMU sends MIGRATION
// events; WaitMigration waits for the outcome.
func (m *Monitor) Migrate(ctx context.Context, args MigrateArgs) error {
	return cmdMigrate.do(ctx, m, &args)
}

// MigrateIncoming starts listening for an incoming migration on a QEMU
// started with -incoming defer (migrate-incoming).
func (m *Monitor) MigrateIncoming(ctx context.Context, args MigrateIncomingArgs) error {
	return cmdMigrateIncoming.do(ctx, m, &args)
}

// MigrateCancel cancels the migration in progress (migrate_cancel).
func (m *Monitor) MigrateCancel(ctx context.Context) error {
	return cmdMigrateCancel.do(ctx, m, nil)
}

// MigrateSetCapabilities turns migration capabilities on or off
// (migrate-set-capabilities).
func (m *Monitor) MigrateSetCapabilities(ctx context.Context, caps []MigrationCapabilityStatus) error {
	return cmdMigrateSetCapabilities.do(ctx, m, &capabilitiesArgs{Capabilities: caps})
}

// MigrateSetParameters sets the non-nil migration parameters
// (migrate-set-parameters).
func (m *Monitor) MigrateSetParameters(ctx context.Context, p MigrationParameters) error {
	return cmdMigrateSetParameters.do(ctx, m, &p)
}

// QueryMigrate returns the state of the current or last migration
// (query-migrate).
func (m *Monitor) QueryMigrate(ctx context.Context) (*MigrationInfo, error) {
	return cmdQueryMigrate.ptr(ctx, m, nil)
}

// QueryMigrateCapabilities lists the migration capabilities and their
// states (query-migrate-capabilities).
func (m *Monitor) QueryMigrateCapabilities(ctx context.Context) ([]MigrationCapabilityStatus, error) {
	return cmdQueryMigrateCapabilities.run(ctx, m, nil)
}

// QueryMigrateParameters returns the migration parameters
// (query-migrate-parameters).
func (m *Monitor) QueryMigrateParameters(ctx context.Context) (*MigrationParameters, error) {
	return cmdQueryMigrateParameters.ptr(ctx, m, nil)
}

var (
	_ = defVariant[MigrationExecCommand]("migrate.channels.addr.transport=exec", false)
	_ = defVariant[FileMigrationArgs]("migrate.channels.addr.transport=file", false)
)
