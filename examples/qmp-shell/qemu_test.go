package main

// Against a real QEMU (skipped when qemu-system-x86_64 is missing, failed
// then under QMP_TEST_QEMU=required; see internal/qemutest).

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

// expectLines fails unless the run exited with code and its stdout has, in
// this order, lines matching each pattern (whole-line regular expressions;
// other lines may come between).
func (r shellRun) expectLines(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	i := 0
	for _, w := range want {
		re := regexp.MustCompile("^(?:" + w + ")$")
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("no line matching %q (in order)\nstdout:\n%s\nstderr:\n%s", w, r.stdout, r.stderr)
		}
		i++
	}
}

func TestQEMUScriptedSession(t *testing.T) {
	vm := qemutest.Require(t, qemutest.Config{})
	q := regexp.QuoteMeta
	ts := `"timestamp": \{"seconds": \d+, "microseconds": \d+\}`
	in := `query-status
stop
query-status
cont
blockdev-add driver=null-co node-name=n0 size=4194304
transaction(
  block-dirty-bitmap-add node=n0 name=b0 persistent=false
  block-dirty-bitmap-add node=n0 name=b1 granularity=131072
)
query-named-block-nodes flat=true
{"execute": "query-version"}
device_del id=nosuch
query-status
`
	r := runBinary(t, in, vm.Sockets[0])
	// QEMU 9.0 dropped query-status's "singlestep".
	single, singleJSON := `"singlestep": false, `, `"singlestep":false,`
	if v, err := qemutest.Version(); err != nil {
		t.Fatal(err)
	} else if major, _, _ := strings.Cut(v, "."); len(major) > 1 || major >= "9" {
		single, singleJSON = "", ""
	}
	r.expectLines(t, 1,
		q(`{"return": {"running": true, `+single+`"status": "running"}}`),
		`\{"event": "STOP", `+ts+`\}`,
		q(`{"return": {}}`),
		q(`{"return": {"running": false, `+single+`"status": "paused"}}`),
		`\{"event": "RESUME", `+ts+`\}`,
		q(`{"return": {}}`), // cont
		q(`{"return": {}}`), // blockdev-add
		q(`{"return": {}}`), // transaction
		`\{"return": \[.*"dirty-bitmaps": \[\{.*"granularity": 131072, "name": "b1".*"name": "b0".*"node-name": "n0".*\]\}`,
		`\{"return": \{"package": ".*", "qemu": \{"major": \d+, "micro": \d+, "minor": \d+\}\}\}`,
		q(`{"error": {"class": "DeviceNotFound", "desc": "Device 'nosuch' not found"}}`))
	if !strings.HasSuffix(r.stdout, "not found\"}}\n") {
		t.Fatalf("something ran after the failed command:\n%s", r.stdout)
	}

	r = runBinary(t, "info status\nstop\ninfo status\ncont\n", "-H", "-events=false", vm.Sockets[0])
	r.expect(t, 0, "VM status: running\nVM status: paused\n")

	r = runBinary(t, "", "-json", vm.Sockets[0], "query-status", "query-name")
	r.expectLines(t, 0, q(`{"return":{"running":true,`+singleJSON+`"status":"running"}}`), q(`{"return":{}}`))
	if n := strings.Count(r.stdout, "\n"); n != 2 {
		t.Errorf("-json printed %d lines, want 2:\n%s", n, r.stdout)
	}
}

func TestQEMUCompletion(t *testing.T) {
	vm := qemutest.Require(t, qemutest.Config{})
	mon, err := qmp.NewMonitor(vm.Sockets[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	ctx := context.Background()
	c := loadCompletion(ctx, mon, false)
	if c.schema == nil || len(c.commands) < 100 {
		t.Fatalf("%d commands, schema %v", len(c.commands), c.schema != nil)
	}
	c.inTrans = func() bool { return false }
	for line, want := range map[string]string{
		"device_de":                 "device_del ",
		"device_del ":               "id=",
		"blockdev-add driver=qcow2": "driver=qcow2 ",
		"blockdev-add driver=qcow2 file.driver=file file.filen": "file.filename=",
		"blockdev-add driver=null-co read-z":                    "read-zeroes=",
		"blockdev-add driver=null-co read-zeroes=t":             "read-zeroes=true ",
		"migrate-set-capabilities ":                             "capabilities=",
		"block-job-cancel f":                                    "force=",
	} {
		if _, cands := completeAt(c, line); strings.Join(cands, "|") != want {
			t.Errorf("%q: %q, want %q", line, cands, want)
		}
	}
	c.inTrans = func() bool { return true }
	if _, cands := completeAt(c, "block-dirty-bitmap-a"); strings.Join(cands, "|") != "block-dirty-bitmap-add " {
		t.Errorf("transaction action: %q", cands)
	}
	if _, cands := completeAt(c, "block-dirty-bitmap-add gr"); strings.Join(cands, "|") != "granularity=" {
		t.Errorf("transaction action argument: %q", cands)
	}

	h := loadCompletion(ctx, mon, true)
	for line, want := range map[string]string{"info block-": "block-jobs ", "con": "cont ", "device_d": "device_del "} {
		if _, cands := completeAt(h, line); strings.Join(cands, "|") != want {
			t.Errorf("HMP %q: %q, want %q", line, cands, want)
		}
	}
}

// TestQEMUFollow: -follow prints STOP and RESUME caused by stop and cont
// sent on the QEMU's second monitor (a QMP socket serves one client).
func TestQEMUFollow(t *testing.T) {
	vm := qemutest.Require(t, qemutest.Config{Sockets: 2})
	bin := shellBinary(t)
	cmd := exec.Command(bin, "-follow", vm.Sockets[0], "STOP", "RESUME")
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "QMP_SOCKET=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	stderr.waitFor(t, "qmp-shell: following STOP, RESUME on "+vm.Sockets[0]+" (interrupt to stop)", 10*time.Second)

	mon, err := qmp.NewMonitor(vm.Sockets[1], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	for _, c := range []string{"stop", "query-status", "cont"} {
		if err := mon.Run(qmp.Command{Name: c}, nil); err != nil {
			t.Fatalf("%s on the second monitor: %v", c, err)
		}
	}
	stdout.waitFor(t, `"RESUME"`, 5*time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("after SIGINT: %v (want exit 0); stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("-follow still running 10s after SIGINT")
	}
	var types []string
	for _, l := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		var ev struct {
			Event     string `json:"event"`
			Timestamp struct{ Seconds, Microseconds int64 }
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Timestamp.Seconds == 0 {
			t.Fatalf("line %q is not an event as JSON (%v)", l, err)
		}
		types = append(types, ev.Event)
	}
	if strings.Join(types, " ") != "STOP RESUME" {
		t.Fatalf("events %q, want STOP RESUME\nstdout:\n%s", types, stdout.String())
	}
}

// -N talks to a guest agent: synchronised on connect, commands and their
// replies as with QMP, the agent's refusal an error line and exit 1.
func TestQEMUAgentShell(t *testing.T) {
	sock := qemutest.RequireAgent(t)
	host, _ := os.Hostname()
	q := regexp.QuoteMeta
	r := runBinary(t, "", "-N", "-json", sock, "guest-ping", "guest-get-host-name")
	r.expectLines(t, 0, q(`{"return":{}}`), q(`{"return":{"host-name":"`+host+`"}}`))
	r = runBinary(t, "", "-N", sock, "guest-shutdown")
	r.expectLines(t, 1, `\{"error": \{"class": "CommandNotFound", "desc": ".*guest-shutdown.*"\}\}`)
	r = runBinary(t, "", "-N", "-H", sock)
	if r.code != 2 || !strings.Contains(r.stderr, "no human monitor") {
		t.Errorf("-N -H: exit %d, stderr %q; want a usage error", r.code, r.stderr)
	}
}
