package qmp

// Waiting for the outcome of an operation
//
// Each wait starts from a cursor taken before the command whose outcome it
// waits for, so an event that comes before the wait begins is not missed.
// When the events after the cursor were evicted from the history, the
// waits that can ask QEMU for the state instead do so (waitOutcome).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// dataMatch builds a Match that decodes the event's data into a T and
// applies ok to it; undecodable data does not match.
func dataMatch[T any](ok func(*T) bool) func(*Event) bool {
	return func(e *Event) bool {
		var d T
		return json.Unmarshal(e.Data, &d) == nil && ok(&d)
	}
}

// deviceDeletedFilter selects the DEVICE_DELETED or
// DEVICE_UNPLUG_GUEST_ERROR event of device (id or QOM path).
func deviceDeletedFilter(device string) EventFilter {
	is := func(d *DeviceDeletedEventData) bool { return d.Device == device || d.Path == device }
	f := EventFilter{Types: []string{"DEVICE_DELETED", "DEVICE_UNPLUG_GUEST_ERROR"}, Match: dataMatch(is)}
	if plainString(device) {
		lit := []byte(`"` + device + `"`)
		// Every DEVICE_DELETED runs the Match of every pending wait; with
		// many waits, decoding each time costs (1,000 waits: 500k decodes).
		// Data that does not contain the name cannot name the device.
		decode := f.Match
		f.Match = func(e *Event) bool { return bytes.Contains(e.Data, lit) && decode(e) }
	}
	return f
}

// WaitDeviceDeleted waits for the DEVICE_DELETED event of device (its id or
// QOM path) with Seq > cursor: take EventCursor() before device_del. Like
// WaitDeviceDeletedEvent, it returns a *DeviceUnplugError when the guest
// refuses the unplug; unlike it, an earlier deletion of the same id is
// never mistaken for this one.
//
// When the events after cursor were evicted from the history, it asks
// QEMU whether the device still exists (qom-list of its QOM path): when it
// does not, the device is gone and it returns its event if that is still
// buffered, else a zero EventRecord and nil. (QEMU may remove a device
// before it sends DEVICE_DELETED, so a device's absence is not asked
// otherwise: the event is the better answer.)
func (m *Monitor) WaitDeviceDeleted(ctx context.Context, device string, cursor EventCursor) (EventRecord, error) {
	r, err := m.waitOutcome(ctx, cursor, deviceDeletedFilter(device), func(ctx context.Context) (bool, error) {
		path := device
		if !strings.HasPrefix(path, "/") {
			path = "/machine/peripheral/" + device
		}
		err := m.RunContext(ctx, Command{"qom-list", map[string]string{"path": path}}, nil)
		var nf *DeviceNotFound
		if errors.As(err, &nf) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return EventRecord{}, err
	}
	if r.Seq != 0 {
		if _, err := deviceDeleted(r); err != nil {
			return EventRecord{}, err
		}
	}
	return r, nil
}

// waitOutcome is the wait of the typed waits for an outcome: the first
// event after cursor that f selects. When none is buffered and the events
// after cursor were evicted, it first asks state whether QEMU's current
// state already shows the outcome; then it returns the event if it has
// come meanwhile, else a zero EventRecord. A state that cannot be asked
// fails the wait with an error that says both. A wait during which events
// are evicted asks state again.
func (m *Monitor) waitOutcome(ctx context.Context, cursor EventCursor, f EventFilter, state func(context.Context) (bool, error)) (EventRecord, error) {
	ctx = ctxOrBackground(ctx)
	q := newQuery(f, cursor, noSince)
	var lostWaiting error // events were evicted during the last wait
	for {
		from := m.EventCursor() // before the lookup: nothing falls between
		q.afterSeq = cursor
		if recs := m.events.lookup(q, 1); len(recs) > 0 {
			return recs[0], nil
		}
		evicted := m.events.evictedAfter(cursor, q.Types)
		if evicted == nil {
			evicted = lostWaiting
		}
		if evicted == nil {
			from = cursor
		} else {
			done, err := state(ctx)
			switch {
			case done:
				if recs := m.events.lookup(q, 1); len(recs) > 0 {
					return recs[0], nil
				}
				return EventRecord{}, nil
			case err != nil && ctx.Err() != nil:
				return EventRecord{}, ctx.Err()
			case err != nil:
				return EventRecord{}, fmt.Errorf("%w, and QEMU's state could not be asked instead: %w", evicted, err)
			}
		}
		r, err := m.WaitEventAfter(ctx, from, f)
		var oe *OverflowError
		if !errors.As(err, &oe) || oe.Oldest == 0 {
			return r, err
		}
		cursor, lostWaiting = oe.Oldest-1, oe
	}
}

// deviceDeleted turns the event a device wait found into its result.
func deviceDeleted(r EventRecord) (*Event, error) {
	if r.Type == "DEVICE_UNPLUG_GUEST_ERROR" {
		var d DeviceUnplugGuestErrorEventData
		json.Unmarshal(r.Data, &d)
		return nil, &DeviceUnplugError{Device: d.Device, Path: d.Path, Event: r}
	}
	return &r.Event, nil
}

// BlockJobResult is how a block job ended, as WaitBlockJob reports it.
type BlockJobResult struct {
	// Status is "completed" or "cancelled"; or "ended" when the job's end
	// event was evicted from the history and QEMU no longer has the job,
	// so how it ended is unknown.
	Status string
	// Error is QEMU's error message for a job that completed with an
	// error.
	Error string
	// Event is the event that said so (zero for "ended").
	Event EventRecord
}

// BlockJobPausedError is returned by WaitBlockJob and WaitBlockJobReady
// when the job hit an I/O error whose action is "stop" (on-error,
// on-source-error or on-target-error set to stop, or enospc for a full
// disk): QEMU has paused the job, which stays paused until it is resumed
// (block-job-resume, after fixing the cause) or cancelled
// (block-job-cancel). Errors whose action is "report" or "ignore" do not
// end the waits: the job goes on, or ends with the error in its
// BLOCK_JOB_COMPLETED.
type BlockJobPausedError struct {
	JobID     string
	Operation string      // "read" or "write"
	Event     EventRecord // the BLOCK_JOB_ERROR
}

func (e *BlockJobPausedError) Error() string {
	return fmt.Sprintf("qmp: block job %q hit a %s error and QEMU paused it; resume it (block-job-resume) once the cause is fixed, or cancel it (block-job-cancel)", e.JobID, e.Operation)
}

// blockJobFilter selects the events of job id of the given types, and
// BLOCK_JOB_ERROR events whose action stops the job.
func blockJobFilter(id string, types ...string) EventFilter {
	return EventFilter{
		Types: append(types, "BLOCK_JOB_ERROR"),
		Match: dataMatch(func(d *BlockJobErrorEventData) bool {
			return d.Device == id && (d.Operation == "" || d.Action == "stop")
		}),
	}
}

// blockJobPaused returns the error for a stopping BLOCK_JOB_ERROR r.
func blockJobPaused(id string, r EventRecord) error {
	var d BlockJobErrorEventData
	json.Unmarshal(r.Data, &d)
	return &BlockJobPausedError{JobID: id, Operation: d.Operation, Event: r}
}

// blockJobState looks up job id in query-block-jobs (nil: QEMU has no such
// job).
func (m *Monitor) blockJobState(ctx context.Context, id string) (*BlockJobInfo, error) {
	jobs, err := m.QueryBlockJobs(ctx)
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		if jobs[i].Device == id {
			return &jobs[i], nil
		}
	}
	return nil, nil
}

// WaitBlockJob waits until the block job jobID ends,
// completed or cancelled, considering events with Seq > cursor (take
// EventCursor() before starting the job). An I/O error that pauses the job
// returns a *BlockJobPausedError; other I/O errors do not end the wait.
// When the events after cursor were evicted from the history, it asks QEMU
// (query-block-jobs): a job QEMU no longer has has ended ("ended").
func (m *Monitor) WaitBlockJob(ctx context.Context, jobID string, cursor EventCursor) (*BlockJobResult, error) {
	r, err := m.waitOutcome(ctx, cursor, blockJobFilter(jobID, "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"), func(ctx context.Context) (bool, error) {
		job, err := m.blockJobState(ctx, jobID)
		return job == nil && err == nil, err
	})
	if err != nil {
		return nil, err
	}
	res := &BlockJobResult{Event: r}
	switch r.Type {
	case "BLOCK_JOB_COMPLETED":
		var d BlockJobCompletedEventData
		json.Unmarshal(r.Data, &d)
		res.Status, res.Error = "completed", d.ErrMessage
	case "BLOCK_JOB_CANCELLED":
		res.Status = "cancelled"
	case "BLOCK_JOB_ERROR":
		return nil, blockJobPaused(jobID, r)
	default:
		res.Status = "ended"
	}
	return res, nil
}

// MigrationError is WaitMigration's error for a migration that failed:
// Desc is QEMU's reason (query-migrate's "error-desc"), empty when QEMU gave
// none; Event is the MIGRATION event with status "failed".
type MigrationError struct {
	Desc  string
	Event EventRecord
}

func (e *MigrationError) Error() string {
	if e.Desc == "" {
		return "qmp: migration failed; QEMU gave no reason (query-migrate has no error-desc)"
	}
	return "qmp: migration failed: " + e.Desc
}

// WaitMigration waits for a MIGRATION event with a final status after
// cursor and returns it: "completed" or "cancelled"; a failed migration
// returns "" and a *MigrationError with QEMU's reason (from
// query-migrate). When the events after cursor were evicted from the
// history, it answers from query-migrate's status once that is final.
//
// QEMU sends MIGRATION events only when the "events" migration capability
// is on (migrate-set-capabilities): unless a final event is already
// buffered, WaitMigration asks QEMU (query-migrate-capabilities) and
// returns ErrMigrationEventsOff at once when it is off.
func (m *Monitor) WaitMigration(ctx context.Context, cursor EventCursor) (string, error) {
	ctx = ctxOrBackground(ctx)
	final := func(d *MigrationEventData) bool {
		return d.Status == "completed" || d.Status == "failed" || d.Status == "cancelled"
	}
	f := EventFilter{Types: []string{"MIGRATION"}, Match: dataMatch(final)}
	if len(m.events.lookup(newQuery(f, cursor, noSince), 1)) == 0 {
		if err := m.migrationEventsOn(ctx); err != nil {
			return "", err
		}
	}
	var d MigrationEventData
	r, err := m.waitOutcome(ctx, cursor, f, func(ctx context.Context) (bool, error) {
		info, err := m.QueryMigrate(ctx)
		if err != nil {
			return false, err
		}
		if info.Status != nil {
			d.Status = *info.Status
		}
		return final(&d), nil
	})
	if err != nil {
		return "", err
	}
	if r.Seq != 0 {
		json.Unmarshal(r.Data, &d)
	}
	if d.Status != "failed" {
		return d.Status, nil
	}
	merr := &MigrationError{Event: r}
	if info, err := m.QueryMigrate(ctx); err == nil && info.Status != nil && *info.Status == "failed" && info.ErrorDesc != nil {
		merr.Desc = *info.ErrorDesc
	}
	return "", merr
}

// migrationEventsOn returns nil when the "events" migration capability is
// on, ErrMigrationEventsOff when it is off, else why it could not tell.
func (m *Monitor) migrationEventsOn(ctx context.Context) error {
	caps, err := m.QueryMigrateCapabilities(ctx)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return ctx.Err()
		}
		return fmt.Errorf(`qmp: WaitMigration could not check the "events" migration capability: %w`, err)
	}
	for _, c := range caps {
		if c.Capability == "events" && c.State {
			return nil
		}
	}
	return ErrMigrationEventsOff
}

// WaitShutdown waits for the SHUTDOWN event after cursor. It also finds one
// that arrived just before QEMU closed the connection.
func (m *Monitor) WaitShutdown(ctx context.Context, cursor EventCursor) (EventRecord, error) {
	return m.WaitEventAfter(ctx, cursor, EventFilter{Types: []string{"SHUTDOWN"}})
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
