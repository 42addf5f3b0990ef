package qmp_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// The typed waits for an outcome answer from QEMU's state when the event
// they need was evicted from the history, and wait for the event when the
// state says the outcome has not come yet.
func TestOutcomeWaitsAfterEviction(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	var deviceGone, jobGone atomic.Bool
	s.Handle("qom-list", func(_ *qmptest.Server, r *qmptest.Request) qmptest.Reply {
		if deviceGone.Load() {
			return qmptest.Reply{ErrClass: "DeviceNotFound", ErrDesc: "Device '/machine/peripheral/net0' not found"}
		}
		return qmptest.Reply{Return: []map[string]string{{"name": "type", "type": "string"}}}
	})
	s.Handle("query-block-jobs", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		if jobGone.Load() {
			return qmptest.Reply{Return: []any{}}
		}
		return qmptest.Reply{Return: []map[string]any{{"device": "job0", "type": "mirror", "ready": true, "len": 1, "offset": 1, "busy": false, "paused": false, "speed": 0, "io-status": "ok"}}}
	})
	s.Handle("query-migrate-capabilities", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{Return: []map[string]any{{"capability": "events", "state": true}}}
	})
	s.Handle("query-migrate", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{Return: map[string]string{"status": "completed"}}
	})
	m := dial(t, s, &qmp.Options{EventHistory: 10})
	flood := func() {
		for i := 0; i < 12; i++ {
			s.SendEvent("STOP", nil)
		}
		evSync(t, m)
	}
	ctx := ctxT(t, 5*time.Second)

	cur := m.EventCursor()
	s.SendEvent("DEVICE_DELETED", map[string]string{"device": "net0", "path": "/machine/peripheral/net0"})
	flood()
	deviceGone.Store(true)
	if r, err := m.WaitDeviceDeleted(ctx, "net0", cur); err != nil || r.Seq != 0 {
		t.Fatalf("WaitDeviceDeleted after its event was evicted = Seq %d, %v; want the state's answer", r.Seq, err)
	}
	if _, err := m.WaitEventAfter(ctx, cur, qmp.EventFilter{Types: []string{"DEVICE_DELETED"}}); !errors.As(err, new(*qmp.OverflowError)) {
		t.Fatalf("WaitEventAfter after eviction = %v, want an *OverflowError", err)
	}

	// The device still exists: the wait goes on until its event comes.
	deviceGone.Store(false)
	cur = m.EventCursor()
	flood()
	done := make(chan error, 1)
	go func() { _, err := m.WaitDeviceDeleted(ctx, "net1", cur); done <- err }()
	s.SendEvent("DEVICE_DELETED", map[string]string{"device": "net1", "path": "/machine/peripheral/net1"})
	if err := <-done; err != nil {
		t.Fatalf("WaitDeviceDeleted(net1) = %v", err)
	}

	cur = m.EventCursor()
	s.SendEvent("BLOCK_JOB_READY", map[string]string{"device": "job0", "type": "mirror"})
	s.SendEvent("BLOCK_JOB_COMPLETED", map[string]string{"device": "job0", "type": "mirror"})
	s.SendEvent("MIGRATION", map[string]string{"status": "completed"})
	flood()
	if r, err := m.WaitBlockJobReady(ctx, "job0", cur); err != nil || r.Seq != 0 {
		t.Fatalf("WaitBlockJobReady after eviction, job ready = Seq %d, %v", r.Seq, err)
	}
	jobGone.Store(true)
	if res, err := m.WaitBlockJob(ctx, "job0", cur); err != nil || res.Status != "ended" {
		t.Fatalf("WaitBlockJob after eviction, job gone = %+v, %v; want ended", res, err)
	}
	var je *qmp.JobEndedError
	if _, err := m.WaitBlockJobReady(ctx, "job0", cur); !errors.As(err, &je) {
		t.Fatalf("WaitBlockJobReady after eviction, job gone = %v, want a *JobEndedError", err)
	}
	if st, err := m.WaitMigration(ctx, cur); err != nil || st != "completed" {
		t.Fatalf("WaitMigration after eviction = %q, %v; want query-migrate's completed", st, err)
	}
}

// Only the eviction of events a query selects fails it: a wait or
// subscription for some types carries on while events of other types are
// evicted, by count or by age, with or without a Match.
func TestEvictionOfOtherTypesIsNoOverflow(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m := dial(t, s, &qmp.Options{EventHistory: 10})
	ctx := ctxT(t, 5*time.Second)
	match := func(*qmp.Event) bool { return true }
	cur := m.EventCursor()
	sub := m.Subscribe(ctx, qmp.EventFilter{Types: []string{"RESUME"}, Match: match}, 4)
	defer sub.Close()
	for i := 0; i < 30; i++ {
		s.SendEvent("STOP", nil)
	}
	evSync(t, m)
	s.SendEvent("RESUME", nil)
	for _, f := range []qmp.EventFilter{{Types: []string{"RESUME"}}, {Types: []string{"RESUME"}, Match: match}} {
		if r, err := m.WaitEventAfter(ctx, cur, f); err != nil || r.Type != "RESUME" {
			t.Fatalf("WaitEventAfter(RESUME) past 30 evicted STOPs = %+v, %v", r, err)
		}
	}
	if recs, err := m.EventsAfterChecked(cur, qmp.EventFilter{Types: []string{"RESUME"}}); err != nil || len(recs) != 1 {
		t.Fatalf("EventsAfterChecked(RESUME) = %d, %v; want the RESUME and no error", len(recs), err)
	}
	if _, err := m.EventsAfterChecked(cur, qmp.EventFilter{Types: []string{"STOP"}}); !errors.As(err, new(*qmp.OverflowError)) {
		t.Fatalf("EventsAfterChecked(STOP) = %v, want an *OverflowError", err)
	}
	select {
	case r, ok := <-sub.C:
		if !ok || r.Type != "RESUME" {
			t.Fatalf("subscription: %+v, %v (Err %v)", r, ok, sub.Err())
		}
	case <-ctx.Done():
		t.Fatal("the subscription did not deliver RESUME")
	}
}

// An outcome's event evicted while the wait runs: the wait asks QEMU's
// state rather than wait for an event that is gone.
func TestOutcomeEvictedDuringTheWait(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("query-block-jobs", func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{Return: []any{}} })
	m := dial(t, s, &qmp.Options{EventHistory: 10})
	cur := m.EventCursor()
	// The wait is held just before it sleeps until the job's end has come
	// and gone, so that it wakes to find the event evicted.
	waiting, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(qmp.SetTestHook(func(where string) {
		if where == "event wait" {
			once.Do(func() { close(waiting); <-release })
		}
	}))
	done := make(chan error, 1)
	go func() {
		res, err := m.WaitBlockJob(ctxT(t, 5*time.Second), "job0", cur)
		if err == nil && res.Status != "ended" {
			err = fmt.Errorf("status %q, want ended (QEMU no longer has the job)", res.Status)
		}
		done <- err
	}()
	<-waiting
	s.SendRaw([]byte(`{"event": "BLOCK_JOB_COMPLETED", "data": {"device": "job0", "type": "mirror"}, "timestamp": {"seconds": 1, "microseconds": 0}}` + "\r\n" +
		strings.Repeat(`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}`+"\r\n", 50)))
	evSync(t, m)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("WaitBlockJob with its event evicted during the wait: %v", err)
	}
}
