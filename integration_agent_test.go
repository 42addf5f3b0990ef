//go:build unix

package qmp_test

// The guest agent against a real qemu-ga run on the host (no guest): it
// acts on this machine, so every command that could harm it is blocked
// (qemutest.RequireAgent).

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

func TestQEMUAgent(t *testing.T) {
	t.Parallel()
	sock := qemutest.RequireAgent(t)
	ctx := ctxT(t, 30*time.Second)
	a, err := qmp.DialAgent(ctx, "unix", sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	if err := a.GuestPing(ctx); err != nil {
		t.Fatalf("GuestPing: %v", err)
	}
	info, err := a.GuestInfo(ctx)
	if err != nil {
		t.Fatalf("GuestInfo: %v", err)
	}
	if !info.Enabled("guest-ping") || info.Enabled("guest-shutdown") || info.Version == "" {
		t.Errorf("GuestInfo = version %q, ping enabled %v, shutdown enabled %v; want ping on, shutdown blocked",
			info.Version, info.Enabled("guest-ping"), info.Enabled("guest-shutdown"))
	}
	t.Logf("qemu-ga %s: %d commands", info.Version, len(info.SupportedCommands))

	host, _ := os.Hostname()
	if name, err := a.GuestGetHostName(ctx); err != nil || name != host {
		t.Errorf("GuestGetHostName = %q, %v; want this host's %q", name, err, host)
	}
	if os, err := a.GuestGetOSInfo(ctx); err != nil || os.KernelRelease == "" {
		t.Errorf("GuestGetOSInfo = %+v, %v; want the kernel release", os, err)
	}
	if now, err := a.GuestGetTime(ctx); err != nil || time.Since(now).Abs() > time.Minute {
		t.Errorf("GuestGetTime = %v, %v; want about now", now, err)
	}
	if _, err := a.GuestGetTimezone(ctx); err != nil {
		t.Errorf("GuestGetTimezone: %v", err)
	}
	ifs, err := a.GuestNetworkGetInterfaces(ctx)
	lo := false
	for _, i := range ifs {
		lo = lo || i.Name == "lo"
	}
	if err != nil || !lo {
		t.Errorf("GuestNetworkGetInterfaces = %+v, %v; want lo among them", ifs, err)
	}
	if _, err := a.GuestGetFSInfo(ctx); err != nil {
		t.Errorf("GuestGetFSInfo: %v", err)
	}
	if st, err := a.GuestFSFreezeStatus(ctx); err != nil || st != "thawed" {
		t.Errorf("GuestFSFreezeStatus = %q, %v; want thawed", st, err)
	}

	// A harmless program, its output and exit code.
	st, err := a.ExecWait(ctx, qmp.GuestExecArgs{Path: "/bin/sh", Arg: []string{"-c", "echo out; echo err >&2; exit 3"}})
	if err != nil || !st.Exited || st.ExitCode == nil || *st.ExitCode != 3 || string(st.OutData) != "out\n" || string(st.ErrData) != "err\n" {
		t.Errorf("ExecWait = %+v, %v; want exit 3 with out and err", st, err)
	}
	st, err = a.ExecWait(ctx, qmp.GuestExecArgs{Path: "/bin/cat", InputData: []byte("in")})
	if err != nil || string(st.OutData) != "in" {
		t.Errorf("ExecWait(cat) with input = %+v, %v; want its input back", st, err)
	}

	// A file written, then read back, larger than one chunk.
	file := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000) // 1.6 MB
	if err := a.WriteFile(ctx, file, data); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got, err := a.ReadFile(ctx, file, 0); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadFile = %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	if _, err := a.ReadFile(ctx, file, 1000); err == nil {
		t.Error("ReadFile past its bound succeeded")
	}

	if info.Enabled("guest-get-vcpus") {
		if cpus, err := a.GuestGetVCPUs(ctx); err != nil || len(cpus) == 0 {
			t.Errorf("GuestGetVCPUs = %+v, %v; want this host's CPUs", cpus, err)
		}
	}
	if info.Enabled("guest-get-disks") {
		if _, err := a.GuestGetDisks(ctx); err != nil {
			t.Errorf("GuestGetDisks: %v", err)
		}
	}
	// Freezing is blocked here: WithFrozenFS does not run fn, tries the
	// thaw anyway, and reports both refusals.
	ran := false
	err = a.WithFrozenFS(ctx, nil, func(context.Context) error { ran = true; return nil })
	var cnf *qmp.CommandNotFound
	if ran || !errors.As(err, &cnf) || !strings.Contains(err.Error(), "may still be frozen") {
		t.Errorf("WithFrozenFS with freezing blocked: ran %v, %v", ran, err)
	}

	// A blocked command is the agent's refusal, and the connection goes on.
	var ge *qmp.GenericError
	if err := a.GuestShutdown(ctx, "powerdown"); !errors.As(err, &ge) {
		t.Errorf("GuestShutdown blocked = %v, want the agent's error", err)
	}
	if err := a.GuestPing(ctx); err != nil {
		t.Errorf("GuestPing after a refusal: %v", err)
	}
}

// A client that wrote commands and left without reading their replies
// leaves them in qemu-ga's output; the next client discards them.
func TestQEMUAgentStaleOutput(t *testing.T) {
	t.Parallel()
	sock := qemutest.RequireAgent(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(`{"execute":"guest-info"}{"execute":"guest-get-osinfo"}{"execute":"guest-get-host-name"}`))
	c.Close()
	ctx := ctxT(t, 30*time.Second)
	a, err := qmp.DialAgent(ctx, "unix", sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	host, _ := os.Hostname()
	for i := 0; i < 3; i++ {
		if name, err := a.GuestGetHostName(ctx); err != nil || name != host {
			t.Fatalf("GuestGetHostName = %q, %v; want %q", name, err, host)
		}
	}
}

// A real QEMU's agent channel with no guest behind it accepts the
// connection and never answers: the connect ends with
// ErrAgentUnresponsive within its bound, and leaves nothing running.
func TestQEMUAgentAbsent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "qga.sock")
	qemutest.Require(t, qemutest.Config{Machine: "pc", Paused: true, ExtraArgs: []string{
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,path=" + sock + ",server=on,wait=off,id=qga0",
		"-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
	}})
	ctx := ctxT(t, 30*time.Second)
	start := time.Now()
	_, err := qmp.DialAgent(ctx, "unix", sock, &qmp.AgentOptions{SyncTimeout: 500 * time.Millisecond})
	if !errors.Is(err, qmp.ErrAgentUnresponsive) {
		t.Fatalf("DialAgent to a channel without an agent = %v, want ErrAgentUnresponsive", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("DialAgent took %v, want about its 500ms bound", took)
	}
}
