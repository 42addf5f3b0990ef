package qmp

// Typed event data, one generic decoder, and cursor-based waits for the
// outcomes of the typed commands. The data types of types.go
// (DeviceDeletedEventData, BlockJobCompletedEventData, ...) serve the
// events they were made for.

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
)

// ShutdownEventData is the data of SHUTDOWN (and of RESET, which has the
// same members).
type ShutdownEventData struct {
	Guest  bool   `json:"guest"`  // the guest asked for it
	Reason string `json:"reason"` // ShutdownCause: "host-qmp-quit", "guest-shutdown", ...
}

// BlockJobEventData is the data of BLOCK_JOB_READY and BLOCK_JOB_CANCELLED.
type BlockJobEventData struct {
	Type   string `json:"type"`   // "mirror", "backup", "commit", "stream", ...
	Device string `json:"device"` // the job id
	Len    int64  `json:"len"`
	Offset int64  `json:"offset"`
	Speed  int64  `json:"speed"`
}

// BlockJobPendingEventData is the data of BLOCK_JOB_PENDING.
type BlockJobPendingEventData struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// BalloonChangeEventData is the data of BALLOON_CHANGE.
type BalloonChangeEventData struct {
	Actual int64 `json:"actual"` // bytes of memory the guest now has
}

// MigrationPassEventData is the data of MIGRATION_PASS.
type MigrationPassEventData struct {
	Pass int64 `json:"pass"`
}

// BlockIOErrorEventData is the data of BLOCK_IO_ERROR.
type BlockIOErrorEventData struct {
	Device    string  `json:"device"`
	NodeName  *string `json:"node-name,omitempty"`
	Operation string  `json:"operation"` // "read" or "write"
	Action    string  `json:"action"`    // "ignore", "report", "stop"
	NoSpace   *bool   `json:"nospace,omitempty"`
	Reason    string  `json:"reason"`
}

// typedEvents maps the events the typed layer knows to their data type
// (nil: the event has no data). The conformance test checks each against
// the schema.
var typedEvents = map[string]reflect.Type{
	"SHUTDOWN":                  reflect.TypeFor[ShutdownEventData](),
	"RESET":                     reflect.TypeFor[ShutdownEventData](),
	"STOP":                      nil,
	"RESUME":                    nil,
	"POWERDOWN":                 nil,
	"DEVICE_DELETED":            reflect.TypeFor[DeviceDeletedEventData](),
	"DEVICE_UNPLUG_GUEST_ERROR": reflect.TypeFor[DeviceUnplugGuestErrorEventData](),
	"DEVICE_TRAY_MOVED":         reflect.TypeFor[DeviceTrayMovedEventData](),
	"BLOCK_JOB_READY":           reflect.TypeFor[BlockJobEventData](),
	"BLOCK_JOB_CANCELLED":       reflect.TypeFor[BlockJobEventData](),
	"BLOCK_JOB_COMPLETED":       reflect.TypeFor[BlockJobCompletedEventData](),
	"BLOCK_JOB_ERROR":           reflect.TypeFor[BlockJobErrorEventData](),
	"BLOCK_JOB_PENDING":         reflect.TypeFor[BlockJobPendingEventData](),
	"BLOCK_IO_ERROR":            reflect.TypeFor[BlockIOErrorEventData](),
	"JOB_STATUS_CHANGE":         reflect.TypeFor[JobStatusChangeEventData](),
	"MIGRATION":                 reflect.TypeFor[MigrationEventData](),
	"MIGRATION_PASS":            reflect.TypeFor[MigrationPassEventData](),
	"BALLOON_CHANGE":            reflect.TypeFor[BalloonChangeEventData](),
}

// DecodeEventData decodes e's data into a new T: one of the *EventData
// types, or any struct or map of the caller's. An event without data
// decodes as {}. Safe for concurrent use (e is only read).
func DecodeEventData[T any](e *Event) (*T, error) {
	v := new(T)
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("qmp: decoding the data of %s as %T: %w", e.Type, *v, err)
	}
	return v, nil
}

// JobEndedError is returned by the waits below when the job ended (or
// reached a status after which the awaited one cannot come) first.
type JobEndedError struct {
	JobID string
	Want  string      // what the wait waited for: "ready", or a job status
	Event EventRecord // the event that ended the wait; zero when QEMU's state said so
}

func (e *JobEndedError) Error() string {
	if e.Event.Seq == 0 {
		return fmt.Sprintf("qmp: job %q did not become %s: QEMU no longer has it, and the event that ended it was evicted from the event history", e.JobID, e.Want)
	}
	return fmt.Sprintf("qmp: job %q did not become %s: QEMU sent %s %s first", e.JobID, e.Want, e.Event.Type, e.Event.Data)
}

// WaitBlockJobReady waits until the block job jobID (a mirror, or a
// commit of the active layer) reports BLOCK_JOB_READY after cursor: take
// EventCursor() before starting the job. When the job completes or is
// cancelled first, it returns a *JobEndedError holding that event; when an
// I/O error pauses it, a *BlockJobPausedError (other I/O errors do not end
// the wait). When the events after cursor were evicted from the history,
// it asks QEMU (query-block-jobs): a job that is ready returns a zero
// EventRecord, one QEMU no longer has a *JobEndedError with a zero Event.
// Use WaitBlockJob for how a job ended.
func (m *Monitor) WaitBlockJobReady(ctx context.Context, jobID string, cursor EventCursor) (EventRecord, error) {
	gone := false
	r, err := m.waitOutcome(ctx, cursor, blockJobFilter(jobID, "BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"), func(ctx context.Context) (bool, error) {
		job, err := m.blockJobState(ctx, jobID)
		gone = job == nil && err == nil
		return gone || job != nil && job.Ready, err
	})
	switch {
	case err != nil:
		return EventRecord{}, err
	case r.Type == "BLOCK_JOB_ERROR":
		return EventRecord{}, blockJobPaused(jobID, r)
	case gone || r.Seq != 0 && r.Type != "BLOCK_JOB_READY":
		return EventRecord{}, &JobEndedError{JobID: jobID, Want: "ready", Event: r}
	}
	return r, nil
}

// jobStatusOrder ranks the statuses a job can only leave forwards; the
// others ("running", "paused", "ready", "standby", ...) may come and go.
var jobStatusOrder = map[string]int{"waiting": 1, "pending": 2, "aborting": 3, "concluded": 4, "null": 5}

// WaitJobStatus waits until job id reaches status (a JobStatus: "ready",
// "pending", "concluded", "null", ...) in a JOB_STATUS_CHANGE after
// cursor: take EventCursor() before starting the job. When the job
// reaches a status after which status cannot come (aborting, concluded or
// null before it, or waiting/pending past an earlier status), it returns
// a *JobEndedError.
func (m *Monitor) WaitJobStatus(ctx context.Context, id, status string, cursor EventCursor) (EventRecord, error) {
	want := jobStatusOrder[status]
	f := EventFilter{
		Types: []string{"JOB_STATUS_CHANGE"},
		Match: dataMatch(func(d *JobStatusChangeEventData) bool {
			if d.JobID != id {
				return false
			}
			got, final := jobStatusOrder[d.Status]
			return d.Status == status || final && (want == 0 || got > want) ||
				d.Status == "aborting" && status != "concluded" && status != "null"
		}),
	}
	r, err := m.WaitEventAfter(ctx, cursor, f)
	if err != nil {
		return EventRecord{}, err
	}
	var d JobStatusChangeEventData
	json.Unmarshal(r.Data, &d)
	if d.Status != status {
		return EventRecord{}, &JobEndedError{JobID: id, Want: status, Event: r}
	}
	return r, nil
}
