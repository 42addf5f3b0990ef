package qmp

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"
)

// Traffic logging (Options.Logger).
//
// Every message sent and received is a debug record whose message is
// "qmp send" or "qmp recv", with these attributes:
//
//	dir      "send" or "recv"
//	kind     "command", "reply", "error" (an error reply), "event",
//	         "greeting", or "other"
//	name     the command or event name (commands and events only)
//	id       the command's or reply's "id", as JSON (when present)
//	size     the message's length in bytes
//	json     the message itself as raw JSON, which JSON handlers embed
//	         unescaped; a string when it was cut or is not valid JSON
//	cut      how many bytes were cut from the end of json (only when the
//	         message is longer than logLimit)
//	latency  for a reply, how long after its command was sent (when known)
//
// Dropped and malformed messages are warn records whose message says what
// happened, with the same attributes. No attribute is named "msg", the key
// handlers use for the record's message.

// logLimit is how many bytes of a message a record carries.
const logLimit = 8 << 10

// logMsg records one message sent or received at debug level.
func (m *Monitor) logMsg(dir string, msg []byte) {
	if m.log == nil || !m.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	m.log.LogAttrs(context.Background(), slog.LevelDebug, "qmp "+dir, trafficAttrs(dir, msg, 0)...)
}

// logReply records a received reply with its latency, the time since its
// command was queued; the router calls it instead of logMsg once it knows
// the call.
func (m *Monitor) logReply(msg []byte, latency time.Duration) {
	if m.log == nil || !m.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	m.log.LogAttrs(context.Background(), slog.LevelDebug, "qmp recv", trafficAttrs("recv", msg, latency)...)
}

// warn records a received message that was dropped or malformed.
func (m *Monitor) warn(what string, msg []byte) {
	if m.log == nil {
		return
	}
	m.log.LogAttrs(context.Background(), slog.LevelWarn, what, trafficAttrs("recv", msg, 0)...)
}

// trafficAttrs describes msg. It copies what it keeps, since the caller
// reuses msg's buffer and a handler may keep the record.
func trafficAttrs(dir string, msg []byte, latency time.Duration) []slog.Attr {
	d := describeMsg(msg)
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("dir", dir), slog.String("kind", d.kind))
	if d.name != "" {
		attrs = append(attrs, slog.String("name", d.name))
	}
	if d.id != nil {
		attrs = append(attrs, slog.String("id", string(d.id)))
	}
	attrs = append(attrs, slog.Int("size", len(msg)))
	if len(msg) > logLimit {
		attrs = append(attrs, slog.String("json", string(msg[:logLimit])), slog.Int("cut", len(msg)-logLimit))
	} else if json.Valid(msg) {
		attrs = append(attrs, slog.Any("json", json.RawMessage(bytes.Clone(msg))))
	} else {
		attrs = append(attrs, slog.String("json", string(msg)))
	}
	if latency > 0 {
		attrs = append(attrs, slog.Duration("latency", latency))
	}
	return attrs
}

// description is what the log says a message is.
type description struct {
	kind, name string
	id         []byte
}

// describeMsg finds the top-level members that say what msg is, without
// decoding the rest. It tolerates malformed input (the warn records).
func describeMsg(msg []byte) description {
	d := description{kind: "other"}
	i := logSkipSpace(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return d
	}
	i++
	for {
		i = logSkipSpace(msg, i)
		if i >= len(msg) || msg[i] != '"' {
			return d
		}
		kEnd := logSkipString(msg, i)
		key := msg[min(i+1, kEnd):max(i+1, kEnd-1)]
		i = logSkipSpace(msg, kEnd)
		if i >= len(msg) || msg[i] != ':' {
			return d
		}
		i = logSkipSpace(msg, i+1)
		vEnd := logSkipValue(msg, i)
		val := msg[i:vEnd]
		switch string(key) {
		case "execute", "exec-oob":
			d.kind, d.name = "command", logUnquote(val)
		case "event":
			d.kind, d.name = "event", logUnquote(val)
		case "return":
			if d.kind == "other" {
				d.kind = "reply"
			}
		case "error":
			if d.kind == "other" {
				d.kind = "error"
			}
		case "QMP":
			d.kind = "greeting"
		case "id":
			d.id = val
		}
		i = logSkipSpace(msg, vEnd)
		if i >= len(msg) || msg[i] != ',' {
			return d
		}
		i++
	}
}

func logSkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// logSkipString returns the position after the string starting at b[i] == '"'.
func logSkipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// logSkipValue returns the position after the JSON value starting at b[i].
func logSkipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			i = logSkipString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'):
			return i
		}
		i++
	}
	return i
}

// logUnquote returns a JSON string's value, or the raw bytes for anything else.
func logUnquote(v []byte) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}
