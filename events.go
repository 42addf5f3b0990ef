package qmp

// The event history's public face: cursors, records, filters, and the
// calls that look up, wait for and subscribe to events (the store itself
// is history.go; the waits for an operation's outcome are waits.go).

import (
	"context"
	"time"
)

// EventCursor is a position in a monitor's event history: the Seq of an
// event, or EventCursor() taken before a command so that a wait or lookup
// "after" it sees exactly the events that came later. It is a type of its
// own so that a cursor and a Unix time in seconds (the v2.0.4 calls'
// "after") cannot be mixed up: WaitDeviceDeleted(ctx, id,
// uint64(time.Now().Unix())) does not compile. The zero cursor is before
// the first event.
type EventCursor uint64

// EventRecord is an event as the history holds it. Its Data is shared with
// the history and every other reader of the event: treat it as read-only.
type EventRecord struct {
	// Seq numbers events in arrival order, from 1, without gaps. It is the
	// cursor for EventsAfter and WaitEventAfter.
	Seq EventCursor
	// Received is when the monitor read the event: the monitor's start time
	// plus the time elapsed since on the monotonic clock, so a step of the
	// wall clock neither reorders nor ages events.
	Received time.Time
	Event
}

// EventFilter selects events. The zero value selects every event.
type EventFilter struct {
	// Types lists the event names wanted; empty means all. An empty name
	// ("") in the list also means all types, in waits, lookups and
	// subscriptions alike, as t == "" does in the v2.0.4 calls.
	Types []string
	// Match, when set, must also accept the event. It never runs on the
	// monitor's reader goroutine, nor with a lock of the monitor held: a
	// wait runs it on the waiting goroutine, a subscription on a goroutine
	// of its own, a lookup on its caller's. So it may call the Monitor in
	// any way, Run and Close included, and a slow Match delays only its
	// own wait or subscription. One wait's or subscription's Match is never
	// called concurrently with itself. A Match that panics ends its wait
	// or subscription with a *MatchPanicError (lookups let the panic
	// through to their caller). The *Event it gets is valid only during
	// the call; its Data is shared and read-only.
	Match func(*Event) bool
}

// ctxOrBackground treats a nil ctx as context.Background().
func ctxOrBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// EventCursor returns the Seq of the newest event received so far (0 when
// none). Events that arrive later have larger Seq.
func (m *Monitor) EventCursor() EventCursor { return m.events.cursor() }

// EventsAfter returns the buffered events with Seq > cursor that f selects,
// whatever their timestamps.
func (m *Monitor) EventsAfter(cursor EventCursor, f EventFilter) []EventRecord {
	return m.events.lookup(newQuery(f, cursor, noSince), 0)
}

// EventsAfterChecked is EventsAfter that also says when the answer is
// incomplete: when events after cursor of f's types (any type when f has
// none) were evicted from the history before the lookup reached them, it
// returns those still buffered with an *OverflowError, where EventsAfter's
// answer cannot be told from one f made short.
func (m *Monitor) EventsAfterChecked(cursor EventCursor, f EventFilter) ([]EventRecord, error) {
	return m.events.lookupChecked(newQuery(f, cursor, noSince))
}

// WaitEventAfter returns the first event with Seq > cursor that f selects,
// buffered or future, whatever its timestamp. Take the cursor with
// EventCursor before sending the command whose event you wait for. A ctx
// that has already ended returns ctx.Err() at once, even with a match
// buffered (a loop that waits event by event thus stops at its ctx); a
// cursor whose next events were evicted from the history returns an
// *OverflowError.
func (m *Monitor) WaitEventAfter(ctx context.Context, cursor EventCursor, f EventFilter) (EventRecord, error) {
	return m.events.wait(ctxOrBackground(ctx), newQuery(f, cursor, noSince))
}

// EventsSince returns the buffered events whose QEMU timestamp is at or
// after t (microsecond precision) that f selects, in arrival order.
func (m *Monitor) EventsSince(t time.Time, f EventFilter) []EventRecord {
	return m.events.lookup(newQuery(f, 0, t.UnixMicro()), 0)
}

// WaitEventSince returns the first event whose QEMU timestamp is at or
// after t that f selects, buffered or future.
func (m *Monitor) WaitEventSince(ctx context.Context, t time.Time, f EventFilter) (EventRecord, error) {
	return m.events.wait(ctxOrBackground(ctx), newQuery(f, 0, t.UnixMicro()))
}

// Subscribe follows events live from now on: each event f selects is sent
// on the returned Subscription's C, buffered up to buffer events (256 when
// buffer <= 0). It ends when ctx ends (nil: never), on Close, when the
// reader falls behind, or when the connection ends; see Subscription.
func (m *Monitor) Subscribe(ctx context.Context, f EventFilter, buffer int) *Subscription {
	return m.events.subscribe(ctxOrBackground(ctx), f, buffer)
}
