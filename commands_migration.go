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
	PrecopyBytes     int64   `json:"precopy-bytes"`
	DowntimeBytes    int64   `json:"downtime-bytes"`
	PostcopyBytes    int64   `json:"postcopy-bytes"`
	PostcopyRequests int64   `json:"postcopy-requests"`
}

// MigrationInfo is query-migrate's reply; members QEMU leaves out for the
// current status are nil.
type MigrationInfo struct {
	Status           *string         `json:"status,omitempty"` // "none", "setup", "active", "completed", "failed", ...
	RAM              *MigrationStats `json:"ram,omitempty"`
	Disk             *MigrationStats `json:"disk,omitempty"`
	TotalTime        *int64          `json:"total-time,omitempty"`
	ExpectedDowntime *int64          `json:"expected-downtime,omitempty"`
	Downtime         *int64          `json:"downtime,omitempty"`
	SetupTime        *int64          `json:"setup-time,omitempty"`
	CPUThrottle      *int64          `json:"cpu-throttle-percentage,omitempty"`
	ErrorDesc        *string         `json:"error-desc,omitempty"`
	BlockedReasons   []string        `json:"blocked-reasons,omitempty"`
}

// MigrationParameters are migrate-set-parameters's arguments and
// query-migrate-parameters's reply: nil members are not sent (and were
// not reported).
type MigrationParameters struct {
	AnnounceInitial      *int64  `json:"announce-initial,omitempty"`
	AnnounceMax          *int64  `json:"announce-max,omitempty"`
	AnnounceRounds       *int64  `json:"announce-rounds,omitempty"`
	AnnounceStep         *int64  `json:"announce-step,omitempty"`
	CompressLevel        *int64  `json:"compress-level,omitempty"`
	CompressThreads      *int64  `json:"compress-threads,omitempty"`
	DecompressThreads    *int64  `json:"decompress-threads,omitempty"`
	ThrottleTrigger      *int64  `json:"throttle-trigger-threshold,omitempty"`
	CPUThrottleInitial   *int64  `json:"cpu-throttle-initial,omitempty"`
	CPUThrottleIncrement *int64  `json:"cpu-throttle-increment,omitempty"`
	CPUThrottleTailslow  *bool   `json:"cpu-throttle-tailslow,omitempty"`
	TLSCreds             *string `json:"tls-creds,omitempty"`
	TLSHostname          *string `json:"tls-hostname,omitempty"`
	TLSAuthz             *string `json:"tls-authz,omitempty"`
	MaxBandwidth         *int64  `json:"max-bandwidth,omitempty"`  // bytes per second
	DowntimeLimit        *int64  `json:"downtime-limit,omitempty"` // milliseconds
	BlockIncremental     *bool   `json:"block-incremental,omitempty"`
	MultifdChannels      *int64  `json:"multifd-channels,omitempty"`
	XbzrleCacheSize      *int64  `json:"xbzrle-cache-size,omitempty"`
	MaxPostcopyBandwidth *int64  `json:"max-postcopy-bandwidth,omitempty"`
	MaxCPUThrottle       *int64  `json:"max-cpu-throttle,omitempty"`
	MultifdCompression   *string `json:"multifd-compression,omitempty"`
}

type (
	uriArgs struct {
		URI string `json:"uri"`
	}
	capabilitiesArgs struct {
		Capabilities []MigrationCapabilityStatus `json:"capabilities"`
	}
)

var (
	cmdMigrate                  = defCommand[uriArgs, struct{}]("migrate")
	cmdMigrateIncoming          = defCommand[uriArgs, struct{}]("migrate-incoming")
	cmdMigrateCancel            = defCommand[struct{}, struct{}]("migrate_cancel")
	cmdMigrateSetCapabilities   = defCommand[capabilitiesArgs, struct{}]("migrate-set-capabilities")
	cmdMigrateSetParameters     = defCommand[MigrationParameters, struct{}]("migrate-set-parameters")
	cmdQueryMigrate             = defCommand[struct{}, MigrationInfo]("query-migrate")
	cmdQueryMigrateCapabilities = defCommand[struct{}, []MigrationCapabilityStatus]("query-migrate-capabilities")
	cmdQueryMigrateParameters   = defCommand[struct{}, MigrationParameters]("query-migrate-parameters")
)

// Migrate starts migrating to uri, e.g. "tcp:host:port", "unix:/path",
// "exec:cmd" (migrate). With the "events" capability on, QEMU sends
// MIGRATION events; WaitMigration waits for the outcome.
func (m *Monitor) Migrate(ctx context.Context, uri string) error {
	return cmdMigrate.do(ctx, m, &uriArgs{URI: uri})
}

// MigrateIncoming starts listening for an incoming migration on a QEMU
// started with -incoming defer (migrate-incoming).
func (m *Monitor) MigrateIncoming(ctx context.Context, uri string) error {
	return cmdMigrateIncoming.do(ctx, m, &uriArgs{URI: uri})
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
