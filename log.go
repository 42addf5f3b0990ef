package qmp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Traffic logging (Options.Logger, whose doc lists the attributes).

// logLimit is how many bytes of a message a record carries, and
// logNameLimit how many of its name and id.
const (
	logLimit     = 8 << 10
	logNameLimit = 256
)

// logCut shortens a name or id for a record, saying how much it dropped.
func logCut(s string) string {
	if len(s) <= logNameLimit {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes cut)", s[:logNameLimit], len(s)-logNameLimit)
}

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
// The reply to a command that held a secret is not shown either (an HMP
// error may quote its command line).
func (m *Monitor) logReply(msg []byte, latency time.Duration, secret bool) {
	if m.log == nil || !m.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := trafficAttrs("recv", msg, latency)
	if secret {
		for i := range attrs {
			if attrs[i].Key == "json" {
				attrs[i] = slog.String("json", redacted)
			}
		}
	}
	m.log.LogAttrs(context.Background(), slog.LevelDebug, "qmp recv", attrs...)
}

// logSend records a command sent, its secrets redacted, and reports
// whether it held any.
func (m *Monitor) logSend(msg []byte) (secret bool) {
	if m.log == nil || !m.log.Enabled(context.Background(), slog.LevelDebug) {
		return false
	}
	msg, secret = redact(msg)
	m.log.LogAttrs(context.Background(), slog.LevelDebug, "qmp send", trafficAttrs("send", msg, 0)...)
	return secret
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
		attrs = append(attrs, slog.String("name", logCut(d.name)))
	}
	if d.id != nil {
		attrs = append(attrs, slog.String("id", logCut(string(d.id))))
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
	if i := skipSpace(msg, 0); i >= len(msg) || msg[i] != '{' {
		return d
	}
	eachMember(msg[skipSpace(msg, 0):], func(key, val []byte) {
		switch memberName(key) {
		case "execute", "exec-oob":
			d.kind, d.name = "command", unquote(val)
		case "event":
			d.kind, d.name = "event", unquote(val)
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
	})
	return d
}

// secretMembers are the members whose values never reach a log: QEMU's
// and the guest agent's passwords.
var secretMembers = map[string]bool{"password": true, "new-password": true, "old-password": true}

// redacted replaces a secret in the log.
const redacted = "<redacted>"

// redact returns msg, a command, with its secret values replaced by
// redacted (Options.Logger lists them), and whether it replaced any. Only
// commands that could hold one are decoded.
func redact(msg []byte) ([]byte, bool) {
	// Names may be spelt with escapes ("pass\u0077ord"), which QEMU decodes.
	if !bytes.Contains(msg, []byte("password")) && !bytes.Contains(msg, []byte("secret")) &&
		!bytes.Contains(msg, []byte("human-monitor-command")) && bytes.IndexByte(msg, '\\') < 0 {
		return msg, false
	}
	var cmd map[string]any
	if json.Unmarshal(msg, &cmd) != nil {
		return []byte(`"` + redacted + `"`), true
	}
	args, _ := cmd["arguments"].(map[string]any)
	changed := redactSecrets(args)
	name := cmd["execute"]
	if name == nil {
		name = cmd["exec-oob"]
	}
	switch name {
	case "object-add":
		if args["qom-type"] == "secret" {
			if args["data"] != nil {
				args["data"], changed = redacted, true
			}
			if props, _ := args["props"].(map[string]any); props["data"] != nil { // QEMU 5.2's form
				props["data"], changed = redacted, true
			}
		}
	case "human-monitor-command":
		line, _ := args["command-line"].(string)
		if l := strings.ToLower(line); strings.Contains(l, "password") || strings.Contains(l, "secret") {
			word, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			args["command-line"], changed = word+" "+redacted, true
		}
	}
	if !changed {
		return msg, false
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return []byte(`"` + redacted + `"`), true
	}
	return b, true
}

// redactSecrets replaces the values of secretMembers in v, at any depth,
// and reports whether it replaced any.
func redactSecrets(v any) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if secretMembers[k] {
				x[k], changed = redacted, true
			} else if redactSecrets(e) {
				changed = true
			}
		}
	case []any:
		for _, e := range x {
			if redactSecrets(e) {
				changed = true
			}
		}
	}
	return changed
}
