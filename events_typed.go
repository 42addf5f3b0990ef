package qmp

// Typed event data and one generic decoder (DecodeEventData). The types
// v2.0.4 had (DeviceDeletedEventData, BlockJobCompletedEventData, ...)
// are here too.

import (
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

// DeviceDeletedEventData describes the properties of the DEVICE_DELETED event.
//
// Emitted whenever the device removal completion is acknowledged by the guest.
// Devices without an id, and the child objects QEMU removes first, carry
// only Path.
type DeviceDeletedEventData struct {
	Device string `json:"device"`
	Path   string `json:"path"`
}

// BlockJobErrorEventData describes the properties of the BLOCK_JOB_ERROR event.
//
// Emitted when a block job encounters an error.
type BlockJobErrorEventData struct {
	Device    string `json:"device"`
	Operation string `json:"operation"`
	Action    string `json:"action"` // v2.0.4 misspelled the tag as "acton"
}

// BlockJobCompletedEventData describes the properties of the BLOCK_JOB_COMPLETED event.
//
// Emitted when a block job has completed.
type BlockJobCompletedEventData struct {
	Device     string `json:"device"`
	Type       string `json:"type"`
	ErrMessage string `json:"error"`
}

// JobStatusChangeEventData describes the properties of the JOB_STATUS_CHANGE event.
//
// Emitted when a job transitions to a different status.
type JobStatusChangeEventData struct {
	JobID  string `json:"id"`
	Status string `json:"status"`
}

// DeviceTrayMovedEventData describes the properties of the DEVICE_TRAY_MOVED event.
//
// Emitted whenever the tray of a removable device is moved.
type DeviceTrayMovedEventData struct {
	Device string `json:"device"`
	Open   bool   `json:"tray-open"`
	QdevID string `json:"id"`
}

// DeviceUnplugGuestErrorEventData describes the DEVICE_UNPLUG_GUEST_ERROR
// event: the guest refused or failed to release a device (QEMU 6.2 and
// later; older QEMUs send nothing then).
type DeviceUnplugGuestErrorEventData struct {
	Device string `json:"device"`
	Path   string `json:"path"`
}

// MigrationEventData describes the MIGRATION event (sent when the
// "events" migration capability is on).
type MigrationEventData struct {
	Status string `json:"status"`
}
