package main

// -follow: print events as JSON lines as they arrive, optionally after the
// buffered ones.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// followBuffer is the subscription's buffer: a reader this far behind ends
// it with an *qmp.OverflowError rather than losing events silently.
const followBuffer = 4096

// follow prints the events named in types (all when empty) until ctx ends
// (nil) or the connection does (nil after QEMU's SHUTDOWN, else its error).
// since > 0 first prints the events of the monitor's history received
// within that duration. ready, if not nil, is called once the subscription
// is in place, so that nothing sent after it is missed.
func follow(ctx context.Context, mon *qmp.Monitor, types []string, since time.Duration, pretty bool, out io.Writer, ready func()) error {
	f := qmp.EventFilter{Types: types}
	sub := mon.Subscribe(ctx, f, followBuffer)
	defer sub.Close()
	var last qmp.EventCursor
	if since > 0 {
		for _, rec := range mon.EventsSince(time.Now().Add(-since), f) {
			io.WriteString(out, formatEvent(rec.Event, pretty))
			last = rec.Seq
		}
	}
	if ready != nil {
		ready()
	}
	shutdown := false
	for rec := range sub.C {
		if rec.Seq <= last {
			continue // also in the history printed above
		}
		io.WriteString(out, formatEvent(rec.Event, pretty))
		last = rec.Seq
		shutdown = shutdown || rec.Type == "SHUTDOWN"
	}
	err := sub.Err()
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil
	case qmp.IsSocketClosed(err):
		// Events outside the filter still tell how the connection ended.
		if shutdown || len(mon.EventsAfter(0, qmp.EventFilter{Types: []string{"SHUTDOWN"}})) > 0 {
			return nil
		}
		return fmt.Errorf("connection ended: %w", err)
	}
	return err
}

// followDescription says what is followed, for the ready message.
func followDescription(types []string) string {
	if len(types) == 0 {
		return "all events"
	}
	return strings.Join(types, ", ")
}
