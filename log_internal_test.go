package qmp

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// logReply carries the reply's latency; describeMsg names what a message
// is even when it is malformed.
func TestLogReplyLatency(t *testing.T) {
	var buf bytes.Buffer
	m := &Monitor{log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	m.logReply([]byte(`{"return": {}, "id": "x1"}`), 1500*time.Microsecond, false)
	var rec struct {
		Msg, Dir, Kind, ID string
		Latency            int64
		JSON               json.RawMessage
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("record %s: %v", buf.Bytes(), err)
	}
	if rec.Msg != "qmp recv" || rec.Dir != "recv" || rec.Kind != "reply" || rec.ID != `"x1"` ||
		rec.Latency != int64(1500*time.Microsecond) || string(rec.JSON) != `{"return":{},"id":"x1"}` {
		t.Fatalf("logReply record = %+v (%s)", rec, buf.Bytes())
	}
}

func TestDescribeMsg(t *testing.T) {
	for _, c := range []struct {
		msg        string
		kind, name string
	}{
		{`{"execute": "query-status"}`, "command", "query-status"},
		{`{"arguments": {"execute": "no", "x": [1, {"event": "no"}]}, "execute":"device_del"}`, "command", "device_del"},
		{`{"exec-oob": "migrate-pause", "id": 7}`, "command", "migrate-pause"},
		{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}`, "event", "STOP"},
		{`{"return": "a \"quoted\" }"}`, "reply", ""},
		{`{"error": {"class": "GenericError", "desc": "x"}}`, "error", ""},
		{`{"QMP": {"version": {}}}`, "greeting", ""},
		{`{"neither": 1}`, "other", ""},
		{`not json`, "other", ""},
		{`{"execute": "trunc`, "command", `"trunc`},
		{``, "other", ""},
	} {
		d := describeMsg([]byte(c.msg))
		if d.kind != c.kind || d.name != c.name {
			t.Errorf("describeMsg(%s) = %s %q, want %s %q", c.msg, d.kind, d.name, c.kind, c.name)
		}
	}
	if d := describeMsg([]byte(strings.Repeat("[", 100))); d.kind != "other" {
		t.Errorf("describeMsg(nested garbage) = %+v", d)
	}
}

// redact covers out-of-band commands too, and records cut a message's
// name and id as they cut its JSON.
func TestRedactOOBAndCutNames(t *testing.T) {
	out, changed := redact([]byte(`{"exec-oob": "object-add", "arguments": {"qom-type": "secret", "id": "s", "data": "S3CRET"}, "id": "oob-1"}`))
	if !changed || bytes.Contains(out, []byte("S3CRET")) {
		t.Fatalf("redact(exec-oob object-add secret) = %s, %v", out, changed)
	}
	long := strings.Repeat("n", 1<<20)
	for _, a := range trafficAttrs("recv", []byte(`{"event": "`+long+`", "id": "`+long+`", "timestamp": {"seconds": 1, "microseconds": 0}}`), 0) {
		if (a.Key == "name" || a.Key == "id") && len(a.Value.String()) > logNameLimit+64 {
			t.Fatalf("attribute %s carries %d bytes", a.Key, len(a.Value.String()))
		}
	}
}

// Drops with no record after them (the queue full to the end of the
// connection) are still reported when the log goroutine finishes.
func TestLogDropsReportedAtTheEnd(t *testing.T) {
	var got []slog.Record
	q := newLogQueue(recordingHandler{&got})
	q.dropped.Add(3)
	done := make(chan struct{})
	close(done)
	q.run(done)
	if len(got) != 1 || got[0].Level != slog.LevelWarn || !strings.Contains(got[0].Message, "3 log records were dropped") {
		t.Fatalf("records at the end: %v, want one warning of 3 dropped", got)
	}
}

type recordingHandler struct{ recs *[]slog.Record }

func (h recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordingHandler) Handle(_ context.Context, r slog.Record) error {
	*h.recs = append(*h.recs, r)
	return nil
}
func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordingHandler) WithGroup(string) slog.Handler      { return h }
