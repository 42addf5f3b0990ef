package qmp

import (
	"log/slog"
	"time"
)

// Options configures a Monitor. The zero value (or a nil *Options) gives
// the defaults documented on each field.
type Options struct {
	// MaxMessageSize is the largest message QEMU may send, in bytes. A larger
	// one ends the connection with ErrMessageTooLarge. Default 64 MiB
	// (query-qmp-schema is ~200 KB).
	MaxMessageSize int

	// EventHistory is how many events the history keeps. Default 10,000.
	EventHistory int
	// EventHistoryBytes bounds the bytes of event data the history keeps
	// (oldest evicted first). Default 64 MiB.
	EventHistoryBytes int
	// EventHistoryAge, when positive, also evicts events received longer ago
	// than this, measured on the monotonic clock, when events arrive and on
	// every lookup and wait. Unlike the count and bytes bounds, which always
	// keep the newest event, it evicts the newest event too once it is
	// older than this.
	EventHistoryAge time.Duration

	// Logger, when set, receives every message sent and received as a
	// debug record whose message is "qmp send" or "qmp recv", and dropped
	// or malformed messages as warn records whose message says what
	// happened. Their attributes:
	//
	//	dir      "send" or "recv"
	//	kind     "command", "reply", "error" (an error reply), "event",
	//	         "greeting", or "other"
	//	name     the command or event name (commands and events only)
	//	id       the command's or reply's "id", as JSON (when present)
	//	size     the message's length in bytes
	//	json     the message as raw JSON, which JSON handlers embed
	//	         unescaped; a string when it was cut or is not valid JSON
	//	cut      how many bytes were cut from the end of json (messages
	//	         over 8 KiB); name and id are cut past 256 bytes
	//	latency  for a reply, how long after its command was sent
	//
	// Secrets never reach it: in commands sent, the values of members
	// named "password", "new-password" or "old-password" (at any depth),
	// the "data" of an object-add of qom-type "secret" (also under
	// "props", QEMU 5.2's form), and all but the
	// first word of a human-monitor-command line that mentions a password
	// or a secret are replaced by "<redacted>".
	//
	// The handler's Handle runs on a goroutine of the monitor's own, never
	// the reader, in order, so it may call the Monitor (Run, Close); up to
	// 256 records queue for it, and beyond that records are dropped and
	// the drop reported in a warn record. Its Enabled is called where
	// records are made and must only check a level.
	Logger *slog.Logger

	// WaitForSocket makes Dial retry while the socket does not exist,
	// refuses connections (QEMU still starting) or is busy (IsSocketBusy:
	// another client holds it), until its ctx ends. NewMonitor never waits:
	// it fails at once when nothing listens or the socket is busy.
	WaitForSocket bool

	// EnableOOB asks for the "oob" capability when QEMU offers it, so that
	// RunOOB can send out-of-band commands.
	EnableOOB bool

	// MaxInFlight caps the in-band commands sent and not yet answered,
	// including those whose callers gave up (they still run in QEMU);
	// further callers wait for a slot in the order they came, bounded by
	// their ctx. It bounds what piles up while QEMU is stalled, not
	// throughput. Default: 8 when OOB was negotiated (QEMU stops reading
	// its socket once 8 in-band commands are queued, which would also hold
	// back OOB commands), 128 otherwise.
	MaxInFlight int
}

// The default in-flight caps (Options.MaxInFlight).
const (
	defaultInFlight    = 128
	defaultInFlightOOB = 8
)

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.MaxMessageSize <= 0 {
		r.MaxMessageSize = 64 << 20
	}
	if r.EventHistory <= 0 {
		r.EventHistory = 10000
	}
	if r.EventHistoryBytes <= 0 {
		r.EventHistoryBytes = 64 << 20
	}
	return r
}
