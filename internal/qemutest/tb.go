package qemutest

import (
	"os"
	"path/filepath"
	"testing"
)

// Require starts QEMU for one test, or skips the test when the QEMU binary
// (see Binary) is missing — unless the environment variable
// QMP_TEST_QEMU=required is set, in which case it fails the test. A failure
// to start an available QEMU always fails the test. The QEMU is stopped,
// and its directory removed, by tb.Cleanup.
//
// When cfg.Dir is empty, the sockets go into tb.TempDir(), or into a fresh
// os.MkdirTemp directory when that path is too long for a unix socket.
func Require(tb testing.TB, cfg Config) *QEMU {
	tb.Helper()
	if _, ok := Binary(); !ok {
		msg := "qemutest: QEMU not found (set QEMU_BIN or install qemu-system-x86_64)"
		if os.Getenv("QMP_TEST_QEMU") == "required" {
			tb.Fatal(msg + " and QMP_TEST_QEMU=required")
		}
		tb.Skip(msg)
	}
	if cfg.Dir == "" {
		dir := tb.TempDir()
		// The longest name Start uses is "q1.sock".
		if len(filepath.Join(dir, "q1.sock")) < maxSocketPath {
			cfg.Dir = dir
		} // else Start makes (and Stop removes) a short os.MkdirTemp dir.
	}
	q, err := Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	// Registered after tb.TempDir, so it runs before the directory's removal.
	tb.Cleanup(q.Stop)
	return q
}
