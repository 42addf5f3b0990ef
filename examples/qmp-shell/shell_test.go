package main

// The shell against the simulated QEMU of qmptest, run in-process
// (so the race detector sees it) with piped stdin.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

func newServer(t *testing.T, cfg qmptest.Config) *qmptest.Server {
	t.Helper()
	s := qmptest.NewServer(cfg)
	t.Cleanup(s.Close)
	return s
}

// syncBuffer is a bytes.Buffer safe for concurrent use that signals each
// write, so that tests wait for output instead of sleeping.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor waits until the buffer contains want.
func (b *syncBuffer) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ch, has := b.changed, strings.Contains(b.b.String(), want)
		b.mu.Unlock()
		if has {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %q within %v in:\n%s", want, timeout, b.String())
		}
	}
}

type shellRun struct {
	stdout, stderr string
	code           int
}

// runShell runs the shell in-process with stdin and args (no terminal), the
// environment given as KEY=VALUE pairs, and a 20s hang detector.
func runShell(t *testing.T, stdin string, env []string, args ...string) shellRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	getenv := func(k string) string {
		for _, kv := range env {
			if key, v, _ := strings.Cut(kv, "="); key == k {
				return v
			}
		}
		return ""
	}
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb, getenv)
	if ctx.Err() != nil {
		t.Fatalf("qmp-shell %q still running after 20s; stdout:\n%s\nstderr:\n%s", args, out.String(), errb.String())
	}
	return shellRun{out.String(), errb.String(), code}
}

func (r shellRun) expect(t *testing.T, code int, stdout string) {
	t.Helper()
	if r.code != code || r.stdout != stdout {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nwant stdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, stdout, r.stderr)
	}
}

// sent lists the commands the server received after qmp_capabilities, as
// name + " " + arguments.
func sent(s *qmptest.Server) []string {
	var out []string
	for _, r := range s.Requests() {
		if r.Name == "qmp_capabilities" {
			continue
		}
		line := r.Name
		if r.Arguments != nil {
			var b bytes.Buffer
			json.Compact(&b, r.Arguments)
			line += " " + b.String()
		}
		out = append(out, line)
	}
	return out
}

func expectSent(t *testing.T, s *qmptest.Server, want ...string) {
	t.Helper()
	got := sent(s)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// acceptAll makes the server accept the named commands with an empty
// return, as QEMU would when they succeed.
func acceptAll(s *qmptest.Server, names ...string) {
	for _, n := range names {
		s.Handle(n, func(*qmptest.Server, *qmptest.Request) qmptest.Reply { return qmptest.Reply{} })
	}
}

func TestShortFormPiped(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	acceptAll(s, "blockdev-add", "qom-set")
	in := `query-status
# a comment, and a blank line

blockdev-add driver=null-co node-name=n0 size=4194304
blockdev-add driver=qcow2 node-name=q0 file.driver=file file.filename=/tmp/a.qcow2
qom-set path=/machine property=x value=[1, {"a": true}] s="with space" q='single quoted' n=null
{"execute": "query-version", "id": "dropped"}
`
	r := runShell(t, in, nil, s.Path())
	r.expect(t, 0, `{"return": {"running": true, "singlestep": false, "status": "running"}}
{"return": {}}
{"return": {}}
{"return": {}}
{"return": {"package": "qmptest", "qemu": {"major": 7, "micro": 22, "minor": 2}}}
`)
	expectSent(t, s,
		"query-status",
		`blockdev-add {"driver":"null-co","node-name":"n0","size":4194304}`,
		`blockdev-add {"driver":"qcow2","file":{"driver":"file","filename":"/tmp/a.qcow2"},"node-name":"q0"}`,
		`qom-set {"n":null,"path":"/machine","property":"x","q":"single quoted","s":"with space","value":[1,{"a":true}]}`,
		"query-version")
	if r.stderr != "" {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestTransactionPiped(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	in := "transaction(\n" +
		"  block-dirty-bitmap-add node=n0 name=b0 persistent=false\n" +
		"  abort\n" +
		")\n" +
		"transaction( completion-mode=grouped\n" +
		"block-dirty-bitmap-clear node=n0 name=b0 )\n"
	r := runShell(t, in, nil, s.Path())
	r.expect(t, 0, "{\"return\": {}}\n{\"return\": {}}\n")
	expectSent(t, s,
		`transaction {"actions":[{"type":"block-dirty-bitmap-add","data":{"name":"b0","node":"n0","persistent":false}},{"type":"abort","data":{}}]}`,
		`transaction {"actions":[{"type":"block-dirty-bitmap-clear","data":{"name":"b0","node":"n0"}}],"properties":{"completion-mode":"grouped"}}`)

	// Input ending inside a block sends nothing and fails.
	r = runShell(t, "transaction(\nabort\n", nil, s.Path())
	if r.code != 1 || !strings.Contains(r.stderr, "input ended inside transaction( ... ): nothing sent") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if n := len(sent(s)); n != 2 {
		t.Fatalf("%d commands sent, want still 2", n)
	}
}

func TestHMPPiped(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{Version: "9.1.3"})
	r := runShell(t, "info version\n\nstop\ninfo status\nbogus\n", nil, "-H", s.Path())
	// HMP's \r\n become \n; its errors are output, not failures; the
	// STOP event comes before the output of the command that caused it.
	want := "9.1.3 (qmptest)\n" +
		"STOP\n" +
		"VM status: paused\n" +
		"unknown command: 'bogus'\n"
	lines := strings.SplitAfter(r.stdout, "\n")
	if len(lines) > 1 && strings.HasPrefix(lines[1], `{"event": "STOP"`) {
		lines[1] = "STOP\n"
	}
	if r.code != 0 || strings.Join(lines, "") != want {
		t.Fatalf("exit %d\nstdout:\n%s\nwant (STOP standing for the event line):\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
	expectSent(t, s,
		`human-monitor-command {"command-line":"info version"}`,
		`human-monitor-command {"command-line":"stop"}`,
		`human-monitor-command {"command-line":"info status"}`,
		`human-monitor-command {"command-line":"bogus"}`)
}

func TestJSONOutput(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	r := runShell(t, "stop\nquery-status\ndevice_del id=nosuch\n", nil, "-json", "-k", s.Path())
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 1 || len(lines) != 4 {
		t.Fatalf("exit %d, %d lines, want 1 and 4:\n%s\nstderr: %s", r.code, len(lines), r.stdout, r.stderr)
	}
	type line struct {
		Event  string          `json:"event"`
		Return json.RawMessage `json:"return"`
		Error  *struct{ Class, Desc string }
	}
	var got []line
	for _, l := range lines {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("not one JSON value per line: %q: %v", l, err)
		}
		if strings.Contains(l, ": ") || strings.Contains(l, ", ") {
			t.Fatalf("-json output not compact: %q", l)
		}
		got = append(got, x)
	}
	if got[0].Event != "STOP" || string(got[1].Return) != "{}" ||
		string(got[2].Return) != `{"running":false,"singlestep":false,"status":"paused"}` ||
		got[3].Error == nil || got[3].Error.Class != "DeviceNotFound" || got[3].Error.Desc != "Device 'nosuch' not found" {
		t.Fatalf("stdout:\n%s", r.stdout)
	}

	// HMP output in -json mode is a JSON string.
	r = runShell(t, "info version\n", nil, "-json", "-H", s.Path())
	r.expect(t, 0, `{"return":"7.2.22 (qmptest)\r\n"}`+"\n")
}

func TestPretty(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	r := runShell(t, "query-status\n", nil, "-p", s.Path())
	r.expect(t, 0, `{
    "return": {
        "running": true,
        "singlestep": false,
        "status": "running"
    }
}
`)
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	q := "The command nosuch has not been found"
	t.Run("stops-at-first-error", func(t *testing.T) {
		s := newServer(t, qmptest.Config{})
		r := runShell(t, "query-name\nnosuch\nstop\n", nil, s.Path())
		r.expect(t, 1, `{"return": {}}`+"\n"+`{"error": {"class": "CommandNotFound", "desc": "`+q+`"}}`+"\n")
		expectSent(t, s, "query-name", "nosuch") // stop not sent
	})
	t.Run("keep-going", func(t *testing.T) {
		s := newServer(t, qmptest.Config{})
		r := runShell(t, "nosuch\nquery-name\n", nil, "-k", s.Path())
		r.expect(t, 1, `{"error": {"class": "CommandNotFound", "desc": "`+q+`"}}`+"\n"+`{"return": {}}`+"\n")
		expectSent(t, s, "nosuch", "query-name")
	})
	t.Run("syntax-error", func(t *testing.T) {
		s := newServer(t, qmptest.Config{})
		r := runShell(t, "device_del id\nstop\n", nil, s.Path())
		r.expect(t, 1, "")
		if !strings.Contains(r.stderr, `error: "id": expected key=value`) {
			t.Fatalf("stderr %q", r.stderr)
		}
		expectSent(t, s)
	})
	t.Run("all-fine", func(t *testing.T) {
		s := newServer(t, qmptest.Config{})
		r := runShell(t, "query-name\n", nil, s.Path())
		r.expect(t, 0, `{"return": {}}`+"\n")
	})
	t.Run("connection-lost", func(t *testing.T) {
		s := newServer(t, qmptest.Config{})
		s.Handle("query-name", func(s *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
			s.DropConnection()
			return qmptest.Reply{NoReply: true}
		})
		r := runShell(t, "query-name\nstop\n", nil, "-k", s.Path())
		if r.code != 1 || !strings.Contains(r.stderr, "error: query-name: ") || !strings.Contains(r.stderr, "connection to QEMU ended") {
			t.Fatalf("exit %d, stderr %q (-k does not go on once the connection is gone)", r.code, r.stderr)
		}
	})
	t.Run("quit", func(t *testing.T) {
		s := newServer(t, qmptest.Config{})
		r := runShell(t, "quit\n", nil, "-events=false", s.Path())
		r.expect(t, 0, `{"return": {}}`+"\n")
	})
	t.Run("no-socket", func(t *testing.T) {
		r := runShell(t, "", nil, filepath.Join(t.TempDir(), "nosuch.sock"))
		if r.code != 1 || !strings.Contains(r.stderr, "is QEMU running? -wait-socket waits for it") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestCommandsFromArguments(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	// device_del id=nosuch as two arguments is one command.
	r := runShell(t, "not read", nil, "-k", s.Path(), "query-name", "device_del", "id=nosuch", `{"execute":"query-name"}`)
	r.expect(t, 1, `{"return": {}}
{"error": {"class": "DeviceNotFound", "desc": "Device 'nosuch' not found"}}
{"return": {}}
`)
	expectSent(t, s, "query-name", `device_del {"id":"nosuch"}`, "query-name")
}

func TestSocketSources(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	r := runShell(t, "query-name\n", []string{"QMP_SOCKET=" + s.Path()})
	r.expect(t, 0, `{"return": {}}`+"\n")
	r = runShell(t, "", []string{"QMP_SOCKET=/nonexistent"}, "-socket", s.Path(), "query-name")
	r.expect(t, 0, `{"return": {}}`+"\n")

	for _, args := range [][]string{{}, {"-tcp", "localhost:1", "-socket", "x"}, {"-since", "1m", s.Path()}, {"-nosuchflag"}} {
		r = runShell(t, "", nil, args...)
		if r.code != 2 || r.stderr == "" {
			t.Fatalf("%q: exit %d (want 2), stderr %q", args, r.code, r.stderr)
		}
	}
	if r := runShell(t, "", nil, "-h"); r.code != 0 || !strings.Contains(r.stderr, "usage: qmp-shell") {
		t.Fatalf("-h: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestVerboseAndLog(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	log := filepath.Join(t.TempDir(), "qmp.log")
	r := runShell(t, "stop\ndevice_del id=x\n", nil, "-v", "-k", "-l", log, s.Path())
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 1 || len(lines) != 5 || lines[0] != `{"execute": "stop"}` || lines[3] != `{"arguments": {"id": "x"}, "execute": "device_del"}` {
		t.Fatalf("exit %d, stdout:\n%s", r.code, r.stdout)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 || !json.Valid([]byte(f[2])) {
			t.Fatalf("log line %q: want TIME DIRECTION JSON", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		kinds = append(kinds, f[1]+" "+f[2])
	}
	want := []string{`-> {"execute":"stop"}`, `STOP`, `<- {"return":{}}`, `-> {"arguments":{"id":"x"},"execute":"device_del"}`, `<- {"error":{"class":"DeviceNotFound","desc":"Device 'x' not found"}}`}
	if len(kinds) == 5 && strings.HasPrefix(kinds[1], `event {"event":"STOP","timestamp":`) {
		kinds[1] = "STOP"
	}
	if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log:\n%s\nwant:\n%s", b, strings.Join(want, "\n"))
	}
}

func TestEventsBeforeReplies(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	s.Handle("device_del", func(s *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
		s.SendEventAt("DEVICE_DELETED", map[string]string{"path": "/machine/peripheral/d0", "device": "d0"}, 1700000000, 5)
		return qmptest.Reply{}
	})
	r := runShell(t, "device_del id=d0\n", nil, s.Path())
	r.expect(t, 0, `{"event": "DEVICE_DELETED", "data": {"device": "d0", "path": "/machine/peripheral/d0"}, "timestamp": {"seconds": 1700000000, "microseconds": 5}}
{"return": {}}
`)
	r = runShell(t, "device_del id=d0\n", nil, "-events=false", s.Path())
	r.expect(t, 0, `{"return": {}}`+"\n")
}

// runFollow starts -follow in-process and returns its output buffers and a
// function that interrupts it and returns its exit status.
func runFollow(t *testing.T, args ...string) (stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"-follow"}, args...), strings.NewReader(""), stdout, stderr, func(string) string { return "" })
	}()
	stopped := false
	var code int
	stop = func() int {
		t.Helper()
		if stopped {
			return code
		}
		stopped = true
		cancel()
		select {
		case code = <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Fatalf("-follow still running 10s after the interrupt; stderr:\n%s", stderr.String())
			return 0
		}
	}
	t.Cleanup(func() { stop() })
	return stdout, stderr, stop
}

func TestFollowSimulated(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	stdout, stderr, stop := runFollow(t, s.Path(), "STOP", "RESUME")
	stderr.waitFor(t, "qmp-shell: following STOP, RESUME on "+s.Path()+" (interrupt to stop)\n", 10*time.Second)

	// Commands from another client of the same server cannot be had
	// (one client per socket): the server emits the events itself.
	s.SendEventAt("STOP", nil, 100, 1)
	s.SendEventAt("POWERDOWN", nil, 100, 2) // not followed
	s.SendEventAt("RESUME", nil, 100, 3)
	stdout.waitFor(t, "RESUME", 5*time.Second)
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after the interrupt, want 0; stderr: %s", code, stderr.String())
	}
	want := `{"event":"STOP","timestamp":{"seconds":100,"microseconds":1}}
{"event":"RESUME","timestamp":{"seconds":100,"microseconds":3}}
`
	if stdout.String() != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", stdout.String(), want)
	}
}

func TestFollowSince(t *testing.T) {
	t.Parallel()
	// The server sends PRE_NEGOTIATION during the handshake: it is in the
	// new connection's history before -follow subscribes.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-since", "1h"}, "PRE_NEGOTIATION LIVE "},
		{nil, "LIVE "},
	} {
		s := newServer(t, qmptest.Config{EventBeforeNegotiationReply: true})
		stdout, stderr, stop := runFollow(t, append(tc.args, s.Path())...)
		stderr.waitFor(t, "following all events", 10*time.Second)
		s.SendEvent("LIVE", map[string]int{"n": 1})
		stdout.waitFor(t, `"LIVE"`, 5*time.Second)
		if code := stop(); code != 0 {
			t.Fatalf("exit %d", code)
		}
		var got string
		for _, l := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
			var ev qmp.Event
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			got += ev.Type + " "
		}
		if got != tc.want {
			t.Fatalf("%q: events %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestFollowConnectionEnds(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	stdout, stderr, stop := runFollow(t, s.Path())
	stderr.waitFor(t, "following all events", 10*time.Second)
	s.DropConnection()
	stderr.waitFor(t, "qmp-shell: connection ended:", 5*time.Second)
	if code := stop(); code != 1 {
		t.Fatalf("exit %d when QEMU went away without SHUTDOWN, want 1", code)
	}
	if stdout.String() != "" {
		t.Fatalf("stdout %q, want no events", stdout.String())
	}

	// After SHUTDOWN the end of the connection is the normal end.
	s2 := newServer(t, qmptest.Config{})
	stdout, stderr, stop = runFollow(t, s2.Path(), "RESUME")
	stderr.waitFor(t, "following RESUME", 10*time.Second)
	s2.SendEvent("SHUTDOWN", map[string]any{"guest": false, "reason": "host-qmp-quit"})
	s2.SendEvent("RESUME", nil) // a followed event after it: SHUTDOWN has been filed
	stdout.waitFor(t, "RESUME", 5*time.Second)
	s2.DropConnection()
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after SHUTDOWN, want 0; stderr %s", code, stderr.String())
	}
}

func TestWaitSocket(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	path := filepath.Join(t.TempDir(), "later.sock")
	done := make(chan shellRun, 1)
	go func() { done <- runShell(t, "", nil, "-wait-socket", "-timeout", "10s", path, "query-name") }()
	// Not synchronisation: whenever the link appears, the shell must
	// connect; the pause only makes it likely that it is still waiting.
	time.Sleep(50 * time.Millisecond)
	if err := os.Symlink(s.Path(), path); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		r.expect(t, 0, `{"return": {}}`+"\n")
	case <-time.After(15 * time.Second):
		t.Fatal("-wait-socket still waiting 15s after the socket appeared")
	}
}

// TestInteractiveSession drives the interactive loop in-process (the race
// detector sees the event goroutine and the editor) on a fake terminal.
func TestInteractiveSession(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	mon, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	f := newFakeTerm(t, 100)
	opt := &options{interactive: true, events: true}
	sess := &session{mon: mon, opt: opt, out: f.ed, errOut: f.ed}
	f.ed.complete = (&completer{commands: []string{"query-status", "stop"}, inTrans: func() bool { return sess.p.pending() >= 0 }}).complete
	hpath := filepath.Join(t.TempDir(), "hist")
	hist, _, err := openHistory(hpath)
	if err != nil {
		t.Fatal(err)
	}
	defer hist.close()
	interrupts := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() { done <- sess.interactive(context.Background(), f.ed, noTerm{}, interrupts, hist) }()

	f.scr.waitLine(t, "(QEMU) ", 7)
	f.typeKeys(t, "query-st\t\r")
	f.scr.waitFor(t, 5*time.Second, "the reply", func() bool {
		return f.scr.hasLine(`{"return": {"running": true, "singlestep": false, "status": "running"}}`)
	})
	// An event while a line is half typed: shown above it, the line intact.
	f.scr.waitLine(t, "(QEMU) ", 7)
	f.typeKeys(t, "sto")
	f.scr.waitLine(t, "(QEMU) sto", 10)
	s.SendEventAt("RESET", nil, 42, 0)
	f.scr.waitFor(t, 5*time.Second, "the event above the line", func() bool {
		l := f.scr.lines()
		line, col := f.scr.current()
		return len(l) >= 2 && l[len(l)-2] == `{"event": "RESET", "timestamp": {"seconds": 42, "microseconds": 0}}` && line == "(QEMU) sto" && col == 10
	})
	f.typeKeys(t, "p\r")
	f.scr.waitFor(t, 5*time.Second, "STOP and the reply", func() bool { return f.scr.hasLine(`{"return": {}}`) })
	// A transaction block changes the prompt; Ctrl-C abandons it.
	f.typeKeys(t, "transaction(\r")
	f.scr.waitLine(t, "(transaction 0) ", 16)
	f.typeKeys(t, "abort\r")
	f.scr.waitLine(t, "(transaction 1) ", 16)
	f.typeKeys(t, "\x03")
	f.scr.waitLine(t, "(QEMU) ", 7)
	if !f.scr.hasLine("transaction abandoned") {
		t.Fatalf("no notice:\n%s", f.scr)
	}
	f.typeKeys(t, "\x04")
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ctrl-D did not end the session")
	}
	b, _ := os.ReadFile(hpath)
	if string(b) != "query-status \nstop\ntransaction(\nabort\n" {
		t.Fatalf("history file %q", b)
	}
	if got := fmt.Sprint(sent(s)); got != "[query-status stop]" {
		t.Fatalf("sent %s", got)
	}
}

type noTerm struct{}

func (noTerm) raw() (func() error, error) { return func() error { return nil }, nil }

// TestTCP connects with -tcp through a TCP-to-unix relay in front of the
// simulated QEMU (which listens on a unix socket only).
func TestTCP(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no TCP on loopback: %v", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		u, err := net.Dial("unix", s.Path())
		if err != nil {
			return
		}
		defer u.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(u, c)
			u.(*net.UnixConn).CloseWrite()
		}()
		io.Copy(c, u)
	}()
	r := runShell(t, "", nil, "-tcp", ln.Addr().String(), "query-name")
	r.expect(t, 0, `{"return": {}}`+"\n")
}

// TestEventLoopStopsUnderFlood: while events arrive faster than the
// terminal shows them, the event loop still stops when its ctx ends (as on
// Ctrl-D): a wait whose ctx has ended returns at once, buffered events or
// not, and events evicted before their turn are counted, not waited for.
func TestEventLoopStopsUnderFlood(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	mon, err := qmp.Dial(context.Background(), "unix", s.Path(), &qmp.Options{EventHistory: 100000})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	var printed atomic.Int64
	sess := &session{mon: mon, opt: &options{events: true}, out: slowPrinter{&printed}, errOut: slowPrinter{&printed}}
	// 5,000 events a second, paced; the terminal shows 500.
	batch := []byte(strings.Repeat(`{"event": "RTC_CHANGE", "data": {"offset": 1}, "timestamp": {"seconds": 1, "microseconds": 0}}`+"\r\n", 100))
	stop, flooding := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flooding)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				s.SendRaw(batch)
			}
		}
	}()
	defer func() { close(stop); <-flooding }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sess.followEvents(ctx) }()
	// Cancel once the terminal is 3,000 lines behind: showing them takes
	// 6 s, longer than the loop may take to stop.
	for deadline := time.Now().Add(10 * time.Second); mon.EventCursor() < qmp.EventCursor(printed.Load())+3000; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal stayed within 3,000 lines of the events for 10 s (%d shown)", printed.Load())
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the event loop did not stop at its ctx under the flood (%d lines shown, cursor %d)", printed.Load(), mon.EventCursor())
	}
}

// slowPrinter is a terminal that takes 2 ms to show a line.
type slowPrinter struct{ n *atomic.Int64 }

func (p slowPrinter) Print(string) {
	time.Sleep(2 * time.Millisecond)
	p.n.Add(1)
}

// TestOddEscapesRefused: values QEMU's JSON parser refuses (a lone
// surrogate escape, a noncharacter) are refused before sending, and the
// connection lives on for the next command (-k).
func TestOddEscapesRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, qmptest.Config{})
	acceptAll(s, "device_del")
	r := runShell(t, "device_del id=\"\\ud800\"\ndevice_del id=\"a\\uffff\"\ndevice_del id=net0\n", nil, "-k", s.Path())
	if r.code != 1 || strings.Count(r.stderr, "command not sent") != 2 {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and two refusals", r.code, r.stderr)
	}
	expectSent(t, s, `device_del {"id":"net0"}`)
}
