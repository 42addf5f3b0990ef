package qmp

// The v2.0.4 event calls. They take `after` as Unix seconds, inclusive: an
// event counts when its QEMU timestamp is at or after that second. Several
// events share a second, so a wait started within the same second as an
// earlier matching event returns that earlier event at once; the cursor
// calls (EventCursor, WaitEventAfter and the waits built on it) see exactly
// the events that arrived after the cursor, and replace these.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
)

// secs converts v2.0.4's Unix seconds to the index's microseconds; a
// second beyond what the index holds selects nothing.
func secs(after uint64) int64 {
	if after > maxEventSeconds {
		return math.MaxInt64
	}
	return int64(after) * 1e6
}

func typesOf(t string) []string {
	if t == "" {
		return nil
	}
	return []string{t}
}

func events(rs []EventRecord) []Event {
	out := make([]Event, len(rs))
	for i := range rs {
		out[i] = rs[i].Event
	}
	return out
}

// GetEvents returns the buffered events of type t ("" for any type) whose
// timestamp is at or after `after` (Unix seconds). If there are none, it
// waits for the first such event and returns it alone, until ctx ends
// (returning ctx.Err()) or the connection ends (returning its error).
//
// Deprecated: an earlier event in the same second is taken for a new one.
// Take EventCursor() before the command and use WaitEventAfter (one event)
// or EventsAfter (those buffered); EventsSince selects by time.
func (m *Monitor) GetEvents(ctx context.Context, t string, after uint64) ([]Event, error) {
	q := newQuery(EventFilter{Types: typesOf(t)}, 0, secs(after))
	if found := m.events.lookup(q, 0); len(found) > 0 {
		return events(found), nil
	}
	r, err := m.events.wait(ctxOrBackground(ctx), q)
	if err != nil {
		return nil, err
	}
	return []Event{r.Event}, nil
}

// FindEvents returns the buffered events of type t ("" for any type) whose
// timestamp is at or after `after` (Unix seconds), and whether there were
// any. It works after the connection ended too. It returns up to
// Options.EventHistory events (10,000 by default; v2.0.4 kept 100).
//
// Deprecated: an earlier event in the same second is taken for a new one.
// Use EventsAfter with a cursor taken by EventCursor() before the
// command, or EventsSince for a time.
func (m *Monitor) FindEvents(t string, after uint64) ([]Event, bool) {
	found := m.events.lookup(newQuery(EventFilter{Types: typesOf(t)}, 0, secs(after)), 0)
	return events(found), len(found) > 0
}

// waitSecs is the wait behind the v2.0.4 waits: the first event f selects
// whose timestamp is at or after `after` (Unix seconds).
func (m *Monitor) waitSecs(ctx context.Context, after uint64, f EventFilter) (*Event, error) {
	r, err := m.events.wait(ctxOrBackground(ctx), newQuery(f, 0, secs(after)))
	if err != nil {
		return nil, err
	}
	return &r.Event, nil
}

// WaitMachineResumeStateEvent waits for a RESUME event at or after `after`
// (Unix seconds).
//
// Deprecated: an earlier RESUME in the same second is returned at once.
// Take EventCursor() before cont and use WaitEventAfter(ctx, cursor,
// EventFilter{Types: []string{"RESUME"}}).
func (m *Monitor) WaitMachineResumeStateEvent(ctx context.Context, after uint64) (*Event, error) {
	return m.waitSecs(ctx, after, EventFilter{Types: []string{"RESUME"}})
}

// WaitDeviceDeletedEvent waits for the DEVICE_DELETED event of device (its
// id, or its QOM path) at or after `after` (Unix seconds). The path-only
// events QEMU sends first for the device's children do not match. When QEMU
// reports DEVICE_UNPLUG_GUEST_ERROR for the device instead, it returns a
// *DeviceUnplugError at once (v2.0.4 kept waiting).
//
// Deprecated: after a deletion of the same id earlier in the same second,
// it returns that deletion's event. Take EventCursor() before device_del
// and use WaitDeviceDeleted.
func (m *Monitor) WaitDeviceDeletedEvent(ctx context.Context, device string, after uint64) (*Event, error) {
	f := deviceDeletedFilter(device)
	r, err := m.events.wait(ctxOrBackground(ctx), newQuery(f, 0, secs(after)))
	if err != nil {
		return nil, err
	}
	return deviceDeleted(r)
}

// WaitJobStatusChangeEvent waits for a JOB_STATUS_CHANGE event of job jobID
// reaching status, at or after `after` (Unix seconds).
//
// Deprecated: an earlier change in the same second is returned at once,
// and a job that ends without reaching status is waited for until ctx
// ends. Take EventCursor() before starting the job and use WaitJobStatus.
func (m *Monitor) WaitJobStatusChangeEvent(ctx context.Context, jobID, status string, after uint64) (*Event, error) {
	return m.waitSecs(ctx, after, EventFilter{
		Types: []string{"JOB_STATUS_CHANGE"},
		Match: dataMatch(func(d *JobStatusChangeEventData) bool { return d.JobID == jobID && d.Status == status }),
	})
}

// trayFilter selects DEVICE_TRAY_MOVED of device (block device name or
// qdev id); open nil accepts either state.
func trayFilter(device string, open *bool) EventFilter {
	return EventFilter{
		Types: []string{"DEVICE_TRAY_MOVED"},
		Match: dataMatch(func(d *DeviceTrayMovedEventData) bool {
			return (d.Device == device || d.QdevID == device) && (open == nil || d.Open == *open)
		}),
	}
}

// WaitDeviceTrayMovedEvent waits for a DEVICE_TRAY_MOVED event of device
// (its block device name or qdev id), open or closed, at or after `after`
// (Unix seconds).
//
// Deprecated: an earlier move in the same second is returned at once. Take
// EventCursor() before the command and use WaitEventAfter with
// EventFilter{Types: []string{"DEVICE_TRAY_MOVED"}} and a Match on
// DeviceTrayMovedEventData.
func (m *Monitor) WaitDeviceTrayMovedEvent(ctx context.Context, device string, after uint64) (*Event, error) {
	return m.waitSecs(ctx, after, trayFilter(device, nil))
}

// WaitDeviceTrayClosedEvent waits for a DEVICE_TRAY_MOVED event of device
// with tray-open false, at or after `after` (Unix seconds).
//
// Deprecated: as WaitDeviceTrayMovedEvent.
func (m *Monitor) WaitDeviceTrayClosedEvent(ctx context.Context, device string, after uint64) (*Event, error) {
	closed := false
	return m.waitSecs(ctx, after, trayFilter(device, &closed))
}

// WaitDeviceTrayOpenedEvent waits for a DEVICE_TRAY_MOVED event of device
// with tray-open true, at or after `after` (Unix seconds).
//
// Deprecated: as WaitDeviceTrayMovedEvent.
func (m *Monitor) WaitDeviceTrayOpenedEvent(ctx context.Context, device string, after uint64) (*Event, error) {
	open := true
	return m.waitSecs(ctx, after, trayFilter(device, &open))
}

// findByDevice returns the first buffered event of type t at or after
// `after` whose data, decoded as T, names device.
func findByDevice[T any](m *Monitor, t, device string, after uint64, dev func(*T) string) (*Event, bool, error) {
	found := m.events.lookup(newQuery(EventFilter{Types: []string{t}}, 0, secs(after)), 0)
	for i := range found {
		var d T
		if err := json.Unmarshal(found[i].Data, &d); err != nil {
			return nil, false, fmt.Errorf("qmp: decoding %s data: %w", t, err)
		}
		if dev(&d) == device {
			return &found[i].Event, true, nil
		}
	}
	return nil, false, nil
}

// FindBlockJobErrorEvent finds a buffered BLOCK_JOB_ERROR of the block job
// device (its job id) at or after `after` (Unix seconds).
//
// Deprecated: an earlier error in the same second is taken for a new one.
// Take EventCursor() before starting the job and use WaitBlockJob, which
// reports an error that pauses the job as a *BlockJobPausedError, or
// EventsAfter.
func (m *Monitor) FindBlockJobErrorEvent(device string, after uint64) (*Event, bool, error) {
	return findByDevice(m, "BLOCK_JOB_ERROR", device, after, func(d *BlockJobErrorEventData) string { return d.Device })
}

// FindBlockJobCompletedEvent finds a buffered BLOCK_JOB_COMPLETED of the
// block job device (its job id) at or after `after` (Unix seconds).
//
// Deprecated: an earlier job of the same id in the same second is taken
// for this one. Take EventCursor() before starting the job and use
// WaitBlockJob.
func (m *Monitor) FindBlockJobCompletedEvent(device string, after uint64) (*Event, bool, error) {
	return findByDevice(m, "BLOCK_JOB_COMPLETED", device, after, func(d *BlockJobCompletedEventData) string { return d.Device })
}
