package qmp

// Typed commands: block jobs (mirror, backup) and the generic job
// commands. All methods are safe for concurrent use, as Run is.

import "context"

// BlockdevMirrorArgs are blockdev-mirror's arguments.
type BlockdevMirrorArgs struct {
	JobID          string `json:"job-id,omitempty"` // default: Device
	Device         string `json:"device"`           // the source node or device
	Target         string `json:"target"`           // the target node
	Replaces       string `json:"replaces,omitempty"`
	Sync           string `json:"sync"` // "full", "top", "none"
	Speed          int64  `json:"speed,omitempty"`
	Granularity    int64  `json:"granularity,omitempty"`
	BufSize        int64  `json:"buf-size,omitempty"`
	OnSourceError  string `json:"on-source-error,omitempty"` // "report", "ignore", "enospc", "stop", "auto"
	OnTargetError  string `json:"on-target-error,omitempty"`
	FilterNodeName string `json:"filter-node-name,omitempty"`
	CopyMode       string `json:"copy-mode,omitempty"` // "background", "write-blocking"
	AutoFinalize   *bool  `json:"auto-finalize,omitempty"`
	AutoDismiss    *bool  `json:"auto-dismiss,omitempty"`
}

// DriveMirrorArgs are drive-mirror's arguments: Target is a file name
// that QEMU opens (or creates, Mode "absolute-paths") with Format.
type DriveMirrorArgs struct {
	JobID         string `json:"job-id,omitempty"`
	Device        string `json:"device"`
	Target        string `json:"target"`
	Format        string `json:"format,omitempty"`
	NodeName      string `json:"node-name,omitempty"`
	Replaces      string `json:"replaces,omitempty"`
	Sync          string `json:"sync"`
	Mode          string `json:"mode,omitempty"` // "existing", "absolute-paths"
	Speed         int64  `json:"speed,omitempty"`
	Granularity   int64  `json:"granularity,omitempty"`
	BufSize       int64  `json:"buf-size,omitempty"`
	OnSourceError string `json:"on-source-error,omitempty"`
	OnTargetError string `json:"on-target-error,omitempty"`
	Unmap         *bool  `json:"unmap,omitempty"`
	CopyMode      string `json:"copy-mode,omitempty"`
	AutoFinalize  *bool  `json:"auto-finalize,omitempty"`
	AutoDismiss   *bool  `json:"auto-dismiss,omitempty"`
}

// BlockdevBackupArgs are blockdev-backup's arguments.
type BlockdevBackupArgs struct {
	JobID          string `json:"job-id,omitempty"`
	Device         string `json:"device"`
	Target         string `json:"target"`
	Sync           string `json:"sync"` // "full", "top", "none", "incremental", "bitmap"
	Speed          int64  `json:"speed,omitempty"`
	Bitmap         string `json:"bitmap,omitempty"`
	BitmapMode     string `json:"bitmap-mode,omitempty"` // "on-success", "never", "always"
	Compress       bool   `json:"compress,omitempty"`
	OnSourceError  string `json:"on-source-error,omitempty"`
	OnTargetError  string `json:"on-target-error,omitempty"`
	AutoFinalize   *bool  `json:"auto-finalize,omitempty"`
	AutoDismiss    *bool  `json:"auto-dismiss,omitempty"`
	FilterNodeName string `json:"filter-node-name,omitempty"`
}

// DriveBackupArgs are drive-backup's arguments (QEMU 6.2 deprecates
// drive-backup: prefer blockdev-backup).
type DriveBackupArgs struct {
	JobID         string `json:"job-id,omitempty"`
	Device        string `json:"device"`
	Target        string `json:"target"` // a file name
	Format        string `json:"format,omitempty"`
	Mode          string `json:"mode,omitempty"`
	Sync          string `json:"sync"`
	Speed         int64  `json:"speed,omitempty"`
	Bitmap        string `json:"bitmap,omitempty"`
	BitmapMode    string `json:"bitmap-mode,omitempty"`
	Compress      bool   `json:"compress,omitempty"`
	OnSourceError string `json:"on-source-error,omitempty"`
	OnTargetError string `json:"on-target-error,omitempty"`
	AutoFinalize  *bool  `json:"auto-finalize,omitempty"`
	AutoDismiss   *bool  `json:"auto-dismiss,omitempty"`
}

// BlockJobInfo is one job in query-block-jobs's reply.
type BlockJobInfo struct {
	Type         string  `json:"type"`   // "mirror", "backup", "commit", "stream"
	Device       string  `json:"device"` // the job id
	Len          int64   `json:"len"`
	Offset       int64   `json:"offset"`
	Busy         bool    `json:"busy"`
	Paused       bool    `json:"paused"`
	Speed        int64   `json:"speed"`
	IOStatus     string  `json:"io-status"`
	Ready        bool    `json:"ready"`
	Status       string  `json:"status"` // JobStatus
	AutoFinalize bool    `json:"auto-finalize"`
	AutoDismiss  bool    `json:"auto-dismiss"`
	Error        *string `json:"error,omitempty"`
}

// JobInfo is one job in query-jobs's reply.
type JobInfo struct {
	ID              string  `json:"id"`
	Type            string  `json:"type"`
	Status          string  `json:"status"` // "created", "running", "ready", "concluded", ...
	CurrentProgress int64   `json:"current-progress"`
	TotalProgress   int64   `json:"total-progress"`
	Error           *string `json:"error,omitempty"`
}

type (
	deviceArgs struct {
		Device string `json:"device"`
	}
	cancelArgs struct {
		Device string `json:"device"`
		Force  bool   `json:"force,omitempty"`
	}
	speedArgs struct {
		Device string `json:"device"`
		Speed  int64  `json:"speed"`
	}
)

var (
	cmdBlockdevMirror   = defCommand[BlockdevMirrorArgs, struct{}]("blockdev-mirror")
	cmdDriveMirror      = defCommand[DriveMirrorArgs, struct{}]("drive-mirror")
	cmdBlockdevBackup   = defCommand[BlockdevBackupArgs, struct{}]("blockdev-backup")
	cmdDriveBackup      = defCommand[DriveBackupArgs, struct{}]("drive-backup")
	cmdQueryBlockJobs   = defCommand[struct{}, []BlockJobInfo]("query-block-jobs")
	cmdQueryJobs        = defCommand[struct{}, []JobInfo]("query-jobs")
	cmdBlockJobComplete = defCommand[deviceArgs, struct{}]("block-job-complete")
	cmdBlockJobCancel   = defCommand[cancelArgs, struct{}]("block-job-cancel")
	cmdBlockJobPause    = defCommand[deviceArgs, struct{}]("block-job-pause")
	cmdBlockJobResume   = defCommand[deviceArgs, struct{}]("block-job-resume")
	cmdBlockJobSetSpeed = defCommand[speedArgs, struct{}]("block-job-set-speed")
	cmdJobDismiss       = defCommand[idArgs, struct{}]("job-dismiss")
	cmdJobFinalize      = defCommand[idArgs, struct{}]("job-finalize")
	cmdJobComplete      = defCommand[idArgs, struct{}]("job-complete")
	cmdJobCancel        = defCommand[idArgs, struct{}]("job-cancel")
	cmdJobPause         = defCommand[idArgs, struct{}]("job-pause")
	cmdJobResume        = defCommand[idArgs, struct{}]("job-resume")
)

// BlockdevMirror starts a mirror job between two nodes (blockdev-mirror).
// Take EventCursor() first, then WaitBlockJobReady and BlockJobComplete.
func (m *Monitor) BlockdevMirror(ctx context.Context, args BlockdevMirrorArgs) error {
	return cmdBlockdevMirror.do(ctx, m, &args)
}

// DriveMirror starts a mirror job to an image file (drive-mirror).
func (m *Monitor) DriveMirror(ctx context.Context, args DriveMirrorArgs) error {
	return cmdDriveMirror.do(ctx, m, &args)
}

// BlockdevBackup starts a backup job to a node (blockdev-backup).
func (m *Monitor) BlockdevBackup(ctx context.Context, args BlockdevBackupArgs) error {
	return cmdBlockdevBackup.do(ctx, m, &args)
}

// DriveBackup starts a backup job to an image file (drive-backup, which
// QEMU 6.2 deprecates).
func (m *Monitor) DriveBackup(ctx context.Context, args DriveBackupArgs) error {
	return cmdDriveBackup.do(ctx, m, &args)
}

// QueryBlockJobs lists the block jobs (query-block-jobs).
func (m *Monitor) QueryBlockJobs(ctx context.Context) ([]BlockJobInfo, error) {
	return cmdQueryBlockJobs.run(ctx, m, nil)
}

// QueryJobs lists all jobs (query-jobs).
func (m *Monitor) QueryJobs(ctx context.Context) ([]JobInfo, error) {
	return cmdQueryJobs.run(ctx, m, nil)
}

// BlockJobComplete tells a READY mirror job to switch over and finish
// (block-job-complete); QEMU sends BLOCK_JOB_COMPLETED. QEMU 10.1
// deprecates block-job-complete: JobComplete does the same on every QEMU.
func (m *Monitor) BlockJobComplete(ctx context.Context, jobID string) error {
	return cmdBlockJobComplete.do(ctx, m, &deviceArgs{Device: jobID})
}

// BlockJobCancel cancels a block job (block-job-cancel). A READY mirror
// cancelled without force completes instead, without switching over.
func (m *Monitor) BlockJobCancel(ctx context.Context, jobID string, force bool) error {
	return cmdBlockJobCancel.do(ctx, m, &cancelArgs{Device: jobID, Force: force})
}

// BlockJobPause pauses a block job (block-job-pause). QEMU 10.1
// deprecates block-job-pause: JobPause does the same on every QEMU.
func (m *Monitor) BlockJobPause(ctx context.Context, jobID string) error {
	return cmdBlockJobPause.do(ctx, m, &deviceArgs{Device: jobID})
}

// BlockJobResume resumes a paused block job (block-job-resume). QEMU 10.1
// deprecates block-job-resume: JobResume does the same on every QEMU.
func (m *Monitor) BlockJobResume(ctx context.Context, jobID string) error {
	return cmdBlockJobResume.do(ctx, m, &deviceArgs{Device: jobID})
}

// BlockJobSetSpeed sets a block job's speed limit in bytes per second,
// 0 for none (block-job-set-speed).
func (m *Monitor) BlockJobSetSpeed(ctx context.Context, jobID string, speed int64) error {
	return cmdBlockJobSetSpeed.do(ctx, m, &speedArgs{Device: jobID, Speed: speed})
}

// JobDismiss removes a concluded job (job-dismiss), for jobs started with
// auto-dismiss false.
func (m *Monitor) JobDismiss(ctx context.Context, id string) error {
	return cmdJobDismiss.do(ctx, m, &idArgs{ID: id})
}

// JobFinalize finalizes a pending job (job-finalize), for jobs started
// with auto-finalize false.
func (m *Monitor) JobFinalize(ctx context.Context, id string) error {
	return cmdJobFinalize.do(ctx, m, &idArgs{ID: id})
}

// JobComplete tells a READY job (a mirror, a commit of the active layer)
// to switch over and finish (job-complete).
func (m *Monitor) JobComplete(ctx context.Context, id string) error {
	return cmdJobComplete.do(ctx, m, &idArgs{ID: id})
}

// JobCancel cancels a job (job-cancel). A job that was almost done may
// still complete; JOB_STATUS_CHANGE says which (WaitJobStatus).
func (m *Monitor) JobCancel(ctx context.Context, id string) error {
	return cmdJobCancel.do(ctx, m, &idArgs{ID: id})
}

// JobPause pauses a job (job-pause); a paused job resumes only with
// JobResume.
func (m *Monitor) JobPause(ctx context.Context, id string) error {
	return cmdJobPause.do(ctx, m, &idArgs{ID: id})
}

// JobResume resumes a job paused by JobPause (job-resume).
func (m *Monitor) JobResume(ctx context.Context, id string) error {
	return cmdJobResume.do(ctx, m, &idArgs{ID: id})
}
