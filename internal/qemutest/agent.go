package qemutest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// AgentBlocked are the guest agent commands that would act on the machine
// running the tests, blocked (-b) in every qemu-ga RequireAgent starts.
var AgentBlocked = []string{
	"guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid",
	"guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw", "guest-fstrim",
	"guest-set-time", "guest-set-user-password", "guest-set-vcpus", "guest-set-memory-blocks",
	"guest-ssh-add-authorized-keys", "guest-ssh-remove-authorized-keys",
}

// AgentBinary returns the path of qemu-ga: $QEMU_GA_BIN if set, else
// qemu-ga on PATH or in /usr/sbin. The boolean reports whether it was
// found.
func AgentBinary() (string, bool) {
	name := os.Getenv("QEMU_GA_BIN")
	if name == "" {
		name = "qemu-ga"
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	if p, err := exec.LookPath("/usr/sbin/" + name); err == nil {
		return p, true
	}
	return "", false
}

// RequireAgent starts qemu-ga on the host (no guest), listening on a unix
// socket in a temporary directory, with AgentBlocked blocked, and returns
// the socket's path; it is killed when the test ends. Without qemu-ga the
// test is skipped, or failed under QMP_TEST_QEMU=required.
func RequireAgent(tb testing.TB) string {
	tb.Helper()
	bin, ok := AgentBinary()
	if !ok {
		msg := "qemutest: qemu-ga not found (set QEMU_GA_BIN or install qemu-guest-agent)"
		if os.Getenv("QMP_TEST_QEMU") == "required" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	dir := tb.TempDir()
	sock := filepath.Join(dir, "qga.sock")
	cmd := exec.Command(bin, "-m", "unix-listen", "-p", sock, "-t", dir, "-f", filepath.Join(dir, "qga.pid"),
		"-b", strings.Join(AgentBlocked, ","))
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Ready once the socket is listening; no signal exists, so poll.
	for deadline := time.Now().Add(startTimeout); ; {
		if listening, err := listeningUnixSockets(); err == nil && listening[sock] || err != nil && canConnect(sock) {
			return sock
		}
		if time.Now().After(deadline) {
			tb.Fatalf("qemutest: qemu-ga did not listen on %s within %v; stderr: %s", sock, startTimeout, bytes.TrimSpace([]byte(stderr.String())))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func canConnect(sock string) bool {
	c, err := net.Dial("unix", sock)
	if err == nil {
		c.Close()
	}
	return err == nil
}
