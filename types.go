package qmp

// The messages of the protocol, as v2.0.4 declared them: a command, its
// reply, an event, QEMU's version from the greeting, and the
// human-monitor and transaction commands built from them.

import (
	"encoding/json"
	"strconv"
	"time"
)

// Command represents a QMP command. See
// https://www.qemu.org/docs/master/interop/qmp-spec.html
//
// Arguments is marshaled with encoding/json; a nil interface omits it.
type Command struct {
	Name      string      `json:"execute"`
	Arguments interface{} `json:"arguments,omitempty"`
}

// Response represents a common structure of QMP response.
//
// Deprecated: nothing in the package uses it; Run decodes replies into
// the result it is given, and errors into NewQMPError's types. It is kept
// for programs written against v2.0.4 that decode raw messages themselves.
type Response struct {
	// Contains the data returned by the command.
	Return *json.RawMessage `json:"return"`

	// Contains details about an error that occurred.
	Error *GenericError `json:"error"`

	// A status change notification message
	// that can be sent unilaterally by the QMP server.
	Event *json.RawMessage `json:"event"`

	// A greeting message that is sent once when
	// a new QMP connection is established.
	Greeting *json.RawMessage `json:"QMP"`
}

// Event represents a QMP asynchronous event.
type Event struct {
	// Type or name of event. E.g., BLOCK_JOB_COMPLETED.
	Type string `json:"event"`

	// Arbitrary event data; nil when the event has none.
	Data json.RawMessage `json:"data"`

	// Event timestamp, provided by QEMU. QEMU sends -1 when its clock
	// failed; such an event gets the time the monitor received it instead,
	// and so does one whose timestamp is out of range (seconds beyond what
	// int64 microseconds hold, or microseconds >= 1,000,000).
	Timestamp struct {
		Seconds      uint64 `json:"seconds"`
		Microseconds uint64 `json:"microseconds"`
	} `json:"timestamp"`
}

// Time returns the event's QEMU timestamp.
func (e *Event) Time() time.Time {
	return time.Unix(int64(e.Timestamp.Seconds), int64(e.Timestamp.Microseconds)*1000)
}

// micros is the timestamp in microseconds since the Unix epoch, the unit
// QEMU uses and the one the history indexes.
func (e *Event) micros() int64 {
	return int64(e.Timestamp.Seconds)*1e6 + int64(e.Timestamp.Microseconds)
}

// Version represents a QEMU version structure returned when a QMP connection is initiated.
type Version struct {
	Package string `json:"package"`
	QEMU    struct {
		Major int `json:"major"`
		Micro int `json:"micro"`
		Minor int `json:"minor"`
	} `json:"qemu"`
}

// String returns the QEMU version as "major.minor.micro", e.g. "7.2.22".
func (v Version) String() string {
	return strconv.Itoa(v.QEMU.Major) + "." + strconv.Itoa(v.QEMU.Minor) + "." + strconv.Itoa(v.QEMU.Micro)
}

// HumanCommand represents a query struct to execute a command
// over the human monitor.
type HumanCommand struct {
	Cmd string `json:"command-line"`
}

// TransactionAction is a common structure of a QAPI command
// that can be executed as a part of transaction.
type TransactionAction struct {
	Type string      `json:"type"`
	Data interface{} `json:"data"`
}

// TransactionProperties is a set of additional options
// to control the execution of a transaction.
type TransactionProperties struct {
	CompletionMode string `json:"completion-mode,omitempty"` // "individual" (QEMU's default) or "grouped"; empty sends none
}

// AllowedTransactionActions is the list of QAPI commands
// that can be performed with transaction: QEMU's TransactionAction kinds
// (QEMU 9.x), plus the names older QEMU versions used ("x-" prefixes).
// RunTransaction rejects any other name before sending anything.
var AllowedTransactionActions = map[string]struct{}{
	"abort":                           {},
	"block-dirty-bitmap-add":          {},
	"block-dirty-bitmap-remove":       {},
	"block-dirty-bitmap-clear":        {},
	"block-dirty-bitmap-enable":       {},
	"block-dirty-bitmap-disable":      {},
	"block-dirty-bitmap-merge":        {},
	"x-block-dirty-bitmap-enable":     {},
	"x-block-dirty-bitmap-disable":    {},
	"x-block-dirty-bitmap-merge":      {},
	"blockdev-backup":                 {},
	"blockdev-snapshot":               {},
	"blockdev-snapshot-internal-sync": {},
	"blockdev-snapshot-sync":          {},
	"drive-backup":                    {},
}
