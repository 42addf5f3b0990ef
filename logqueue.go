package qmp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

// The Logger's handler never runs on the reader goroutine: records go
// through a queue to a goroutine of the monitor's own, in the order they
// were made, so a handler may call the Monitor in any way (Run, Close)
// and a slow one never holds up replies or events. The queue holds
// logQueueLen records (each carries at most logLimit bytes of a message);
// when the handler falls that far behind, further records are dropped and
// counted, and the next record handled is preceded by a warning saying how
// many. A panicking handler loses its record, not the process.

const logQueueLen = 256

// logQueue is the slog.Handler the monitor logs through.
type logQueue struct {
	h slog.Handler // the Logger's handler, with this view's attributes
	*logShared
}

type logShared struct {
	root    slog.Handler
	ch      chan logItem
	dropped atomic.Uint64
	goid    atomic.Uint64 // the log goroutine's id, once it runs
	exited  chan struct{} // closed when the log goroutine has returned
}

type logItem struct {
	h slog.Handler
	r slog.Record
}

func newLogQueue(h slog.Handler) *logQueue {
	return &logQueue{h: h, logShared: &logShared{root: h, ch: make(chan logItem, logQueueLen), exited: make(chan struct{})}}
}

// Enabled asks the Logger's handler; it runs where the record is made (the
// reader included), so a handler's Enabled must only check a level.
func (q *logQueue) Enabled(ctx context.Context, l slog.Level) bool { return q.h.Enabled(ctx, l) }

func (q *logQueue) Handle(_ context.Context, r slog.Record) error {
	select {
	case q.ch <- logItem{q.h, r.Clone()}:
	default:
		q.dropped.Add(1)
	}
	return nil
}

func (q *logQueue) WithAttrs(as []slog.Attr) slog.Handler {
	return &logQueue{q.h.WithAttrs(as), q.logShared}
}

func (q *logQueue) WithGroup(name string) slog.Handler {
	return &logQueue{q.h.WithGroup(name), q.logShared}
}

// run hands records to the handler until the reader has stopped, then
// what is left, and returns.
func (s *logShared) run(readerDone <-chan struct{}) {
	defer close(s.exited)
	s.goid.Store(goid())
	for {
		select {
		case it := <-s.ch:
			s.handle(it)
		case <-readerDone:
			s.drain()
			s.reportDrops(time.Now()) // drops after the last record handled
			return
		}
	}
}

// drain handles the records queued.
func (s *logShared) drain() {
	for {
		select {
		case it := <-s.ch:
			s.handle(it)
		default:
			return
		}
	}
}

func (s *logShared) handle(it logItem) {
	s.reportDrops(it.r.Time)
	s.call(it.h, it.r)
}

// reportDrops warns of the records dropped since the last warning, if any.
func (s *logShared) reportDrops(t time.Time) {
	if n := s.dropped.Swap(0); n > 0 {
		r := slog.NewRecord(t, slog.LevelWarn, fmt.Sprintf("qmp: %d log records were dropped because the Logger's handler fell %d records behind", n, logQueueLen), 0)
		r.AddAttrs(slog.Uint64("dropped", n))
		s.call(s.root, r)
	}
}

func (s *logShared) call(h slog.Handler, r slog.Record) {
	defer func() { recover() }() // a handler's panic loses its record only
	if h.Enabled(context.Background(), r.Level) {
		h.Handle(context.Background(), r)
	}
}

// onLogGoroutine reports whether the caller is the log goroutine, that is,
// a handler: Close must not wait for that goroutine from inside it.
func (s *logShared) onLogGoroutine() bool { return s.goid.Load() == goid() }

// goid returns the calling goroutine's id, as runtime.Stack prints it
// ("goroutine 18 [running]:"). Only Close and the log goroutine's start
// use it, once each.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _ = bytes.CutPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		id, _ := strconv.ParseUint(string(b[:i]), 10, 64)
		return id
	}
	return 0
}
