package qmp_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// syncBuffer is a bytes.Buffer safe for the reader and test goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// logRecords parses JSON log lines, failing on any that does not parse or
// repeats a key.
func logRecords(t *testing.T, out string) []map[string]json.RawMessage {
	t.Helper()
	var recs []map[string]json.RawMessage
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("log line is not a JSON object: %s", line)
		}
		rec := make(map[string]json.RawMessage)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("log line %s: %v", line, err)
			}
			key := tok.(string)
			if _, dup := rec[key]; dup {
				t.Fatalf("log line repeats the key %q: %s", key, line)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("log line %s: %v", line, err)
			}
			rec[key] = v
		}
		recs = append(recs, rec)
	}
	return recs
}

func str(t *testing.T, rec map[string]json.RawMessage, key string) string {
	t.Helper()
	var s string
	if v, ok := rec[key]; ok {
		if err := json.Unmarshal(v, &s); err != nil {
			t.Fatalf("%s = %s, want a string", key, v)
		}
	}
	return s
}

func TestLogJSONRecords(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	big := strings.Repeat("x", 20<<10)
	s.Handle("x-big", func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{Return: big} })
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := dial(t, s, &qmp.Options{Logger: log})
	ctx := ctxT(t, 5*time.Second)
	if err := m.RunContext(ctx, qmp.Command{Name: "query-name"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.RunContext(ctx, qmp.Command{Name: "x-big"}, nil); err != nil {
		t.Fatal(err)
	}
	cur := m.EventCursor()
	s.SendEvent("STOP", nil)
	s.SendRaw([]byte(`{"neither": "reply nor event"}` + "\r\n"))
	if _, err := m.WaitEventAfter(ctx, cur, qmp.EventFilter{Types: []string{"STOP"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.RunContext(ctx, qmp.Command{Name: "query-name"}, nil); err != nil { // the odd message was read before this reply
		t.Fatal(err)
	}
	m.Close() // the reader has stopped: nothing writes to buf any more

	recs := logRecords(t, buf.String())
	var seen []string
	for _, r := range recs {
		msg, dir, kind, name := str(t, r, "msg"), str(t, r, "dir"), str(t, r, "kind"), str(t, r, "name")
		seen = append(seen, msg+" "+dir+" "+kind+" "+name)
		if dir == "" {
			continue // the connection's end
		}
		if msg != "qmp "+dir && str(t, r, "level") != "WARN" {
			t.Errorf("record %s: msg %q for dir %q", r, msg, dir)
		}
		var size int
		json.Unmarshal(r["size"], &size)
		payload := r["json"]
		if _, cut := r["cut"]; cut {
			var cutN int
			json.Unmarshal(r["cut"], &cutN)
			if got := len(str(t, r, "json")); got+cutN != size || got > 8<<10 {
				t.Errorf("cut record: %d bytes kept + %d cut, size %d", got, cutN, size)
			}
			continue
		}
		// The message is embedded as JSON, not as an escaped string.
		if len(payload) == 0 || payload[0] != '{' {
			t.Errorf("record %s: json = %.80s, want the raw message", msg, payload)
		}
	}
	for _, want := range []string{
		"qmp recv recv greeting ",
		"qmp send send command qmp_capabilities",
		"qmp recv recv reply ",
		"qmp send send command query-name",
		"qmp send send command x-big",
		"qmp recv recv event STOP",
		"qmp: dropped a message that is neither a reply nor an event recv other ",
	} {
		found := false
		for _, s := range seen {
			found = found || s == want
		}
		if !found {
			t.Errorf("no record %q among\n%s", want, strings.Join(seen, "\n"))
		}
	}
	cut := 0
	for _, r := range recs {
		if _, ok := r["cut"]; ok {
			cut++
		}
	}
	if cut != 1 {
		t.Errorf("%d records were cut, want 1 (the 20 KiB reply)", cut)
	}
}

func TestLogTextHandler(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	var buf syncBuffer
	m := dial(t, s, &qmp.Options{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{Name: "query-name"}, nil); err != nil {
		t.Fatal(err)
	}
	m.Close()
	want := `msg="qmp send" dir=send kind=command name=query-name size=24 json="{\"execute\":\"query-name\"}"`
	if !strings.Contains(buf.String(), want) {
		t.Errorf("log lacks %s\nlog:\n%s", want, buf.String())
	}
}

func TestLogDisabledBelowDebug(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	var buf syncBuffer
	m := dial(t, s, &qmp.Options{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := m.RunContext(ctxT(t, 5*time.Second), qmp.Command{Name: "query-name"}, nil); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if out := buf.String(); out != "" {
		t.Errorf("at warn level the log has traffic:\n%s", out)
	}
}

var _ io.Writer = (*syncBuffer)(nil)

// TestLogReplyLatencyOnTheWire: every reply a caller receives is logged
// with its latency; events and the handshake are logged without one.
func TestLogReplyLatencyOnTheWire(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := dial(t, s, &qmp.Options{Logger: log})
	for i := 0; i < 3; i++ {
		if err := m.Run(qmp.Command{Name: "query-status"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	replies := 0
	for _, r := range logRecords(t, buf.String()) {
		if str(t, r, "dir") != "recv" || str(t, r, "kind") != "reply" {
			continue
		}
		if _, ok := r["latency"]; ok {
			replies++
		}
	}
	if replies != 3 {
		t.Fatalf("%d reply records carry a latency, want 3 (one per Run):\n%s", replies, buf.String())
	}
}
