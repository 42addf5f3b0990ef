package qmp_test

// Tests of the runnable programs in examples/: each is built and run
// against the simulated QEMU of qmptest, and against a real one.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/0xef53/go-qmp/v2/internal/qemutest"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// The programs under examples/ are built and run as a user would run them,
// against the simulated QEMU (TestExamples) and a real one
// (TestQEMUExamples), and their output is checked line by line.

// buildExamples builds every program under examples/ into a fresh
// directory with one `go build` (compiling is cached between runs; linking
// the few binaries in parallel takes about a second) and returns it.
func buildExamples(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building the example programs")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// go test puts its own GOROOT/bin first in PATH, so this is the same go.
	out, err := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./examples/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", err, out)
	}
	return dir
}

// exampleRun is what one run of an example program did.
type exampleRun struct {
	stdout, stderr string
	code           int
}

// runExample runs program prog of dir with args, killing it after 20s (a
// hang detector, far above its normal run time).
func runExample(t *testing.T, dir, prog string, args ...string) exampleRun {
	t.Helper()
	return runExampleEnv(t, nil, dir, prog, args...)
}

// runExampleEnv is runExample with env added to the environment.
func runExampleEnv(t *testing.T, env []string, dir, prog string, args ...string) exampleRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, prog), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := exampleRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q still running after 20s; stdout:\n%s\nstderr:\n%s", prog, args, r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", prog, err)
	}
	return r
}

// expect fails the test unless the run exited with code and its stdout
// has, in this order, lines matching each pattern in want (regular
// expressions matched against whole lines; other lines may come between).
func (r exampleRun) expect(t *testing.T, code int, want ...string) {
	t.Helper()
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf(format+"\nexit code %d\nstdout:\n%s\nstderr:\n%s", append(a, r.code, r.stdout, r.stderr)...)
	}
	if r.code != code {
		fail("exit code %d, want %d", r.code, code)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	i := 0
	for _, w := range want {
		re := regexp.MustCompile("^(?:" + w + ")$")
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			fail("no line matching %q (in order)", w)
		}
		i++
	}
}

// expectStderr fails the test unless stderr contains each of want.
func (r exampleRun) expectStderr(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Fatalf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
}

// exampleServerCommands lists the commands s received, in order.
func exampleServerCommands(s *qmptest.Server) []string {
	var names []string
	for _, r := range s.Requests() {
		names = append(names, r.Name)
	}
	return names
}

// exampleRequireQEMUBinary skips the test when no QEMU binary is installed, or
// fails it when QMP_TEST_QEMU=required: qemutest.Require's rule, for tests
// whose program starts QEMU itself.
func exampleRequireQEMUBinary(t *testing.T) {
	t.Helper()
	if _, ok := qemutest.Binary(); ok {
		return
	}
	if os.Getenv("QMP_TEST_QEMU") == "required" {
		t.Fatal("QEMU not found (set QEMU_BIN or install qemu-system-x86_64) and QMP_TEST_QEMU=required")
	}
	t.Skip("QEMU not found (set QEMU_BIN or install qemu-system-x86_64)")
}

func TestExamples(t *testing.T) {
	bin := buildExamples(t)
	q := regexp.QuoteMeta

	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		// -socket is required: usage and exit status 2, without connecting.
		for _, prog := range []string{"powerdown", "human", "devicedel"} {
			r := runExample(t, bin, prog)
			r.expect(t, 2)
			r.expectStderr(t, "-socket")
		}
	})

	t.Run("powerdown/guest-shuts-down", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, qmptest.Config{})
		// A guest that reacts to the power button, as an OS with ACPI does.
		s.Handle("system_powerdown", func(s *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
			s.SendEvent("POWERDOWN", nil)
			s.SendEvent("SHUTDOWN", map[string]any{"guest": true, "reason": "guest-shutdown"})
			return qmptest.Reply{}
		})
		r := runExample(t, bin, "powerdown", "-socket", s.Path(), "-timeout", "5s")
		r.expect(t, 0,
			q("connected to "+s.Path()),
			q("sent system_powerdown"),
			q("POWERDOWN seen: the guest was asked to power off"),
			q("SHUTDOWN: reason=guest-shutdown guest=true"))
		if got := strings.Join(exampleServerCommands(s), " "); got != "qmp_capabilities system_powerdown" {
			t.Fatalf("commands sent: %s", got)
		}
	})

	t.Run("powerdown/ignored", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, qmptest.Config{}) // sends POWERDOWN only, like -machine none
		r := runExample(t, bin, "powerdown", "-socket", s.Path(), "-timeout", "100ms")
		r.expect(t, 1,
			q("POWERDOWN seen: the guest was asked to power off"),
			q("no SHUTDOWN within 100ms: the guest ignored the power button"))
		r.expectStderr(t, "powerdown: guest did not shut down (use -force to quit QEMU)")
		if got := strings.Join(exampleServerCommands(s), " "); got != "qmp_capabilities system_powerdown" {
			t.Fatalf("commands sent: %s (no quit without -force)", got)
		}
	})

	t.Run("powerdown/force", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, qmptest.Config{})
		r := runExample(t, bin, "powerdown", "-socket", s.Path(), "-timeout", "100ms", "-force")
		r.expect(t, 0,
			q("POWERDOWN seen: the guest was asked to power off"),
			q("no SHUTDOWN within 100ms: the guest ignored the power button"),
			q("-force: sending quit"),
			`connection ended: read unix \S+: qmp: connection to QEMU ended: EOF`,
			q("SHUTDOWN found after the connection ended: reason=host-qmp-quit guest=false"))
		if got := strings.Join(exampleServerCommands(s), " "); got != "qmp_capabilities system_powerdown quit" {
			t.Fatalf("commands sent: %s", got)
		}
	})

	t.Run("human", func(t *testing.T) {
		t.Parallel()
		// A version other than the default proves the output is QEMU's.
		s := newServer(t, qmptest.Config{Version: "9.1.3"})
		r := runExample(t, bin, "human", "-socket", s.Path(), "-cmd", "info version")
		r.expect(t, 0, q("(qemu) info version"), q("9.1.3 (qmptest)"))
		if strings.Contains(r.stdout, "\r") {
			t.Fatalf("output keeps HMP's \\r: %q", r.stdout)
		}
		// HMP errors are output, not failures.
		r = runExample(t, bin, "human", "-socket", s.Path(), "-cmd", "bogus")
		r.expect(t, 0, q("(qemu) bogus"), q("unknown command: 'bogus'"))
	})

	t.Run("devicedel/add", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, qmptest.Config{})
		r := runExample(t, bin, "devicedel", "-socket", s.Path(), "-add", "usb-tablet", "-bus", "xhci.0", "-id", "tab0", "-timeout", "5s")
		r.expect(t, 0,
			q(`device_add: added usb-tablet as "tab0"`),
			q(`device_del: removal of "tab0" requested; waiting up to 5s for DEVICE_DELETED`),
			q("DEVICE_DELETED device=tab0 path=/machine/peripheral/tab0"))
		reqs := s.Requests()
		if len(reqs) != 3 || reqs[1].Name != "device_add" || reqs[2].Name != "device_del" {
			t.Fatalf("commands sent: %v", exampleServerCommands(s))
		}
		if got, want := string(reqs[1].Arguments), `{"bus":"xhci.0","driver":"usb-tablet","id":"tab0"}`; got != want {
			t.Fatalf("device_add arguments = %s, want %s", got, want)
		}
	})

	t.Run("devicedel/not-found", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, qmptest.Config{})
		r := runExample(t, bin, "devicedel", "-socket", s.Path(), "-id", "nosuch")
		r.expect(t, 1)
		r.expectStderr(t, `devicedel: device_del: no device "nosuch": DeviceNotFound error: Device 'nosuch' not found`)
	})

	t.Run("devicedel/guest-refuses", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, qmptest.Config{})
		s.Handle("device_del", func(s *qmptest.Server, _ *qmptest.Request) qmptest.Reply {
			s.SendEvent("DEVICE_UNPLUG_GUEST_ERROR", map[string]string{"device": "nic0", "path": "/machine/peripheral/nic0"})
			return qmptest.Reply{}
		})
		r := runExample(t, bin, "devicedel", "-socket", s.Path(), "-id", "nic0", "-timeout", "5s")
		r.expect(t, 1, q(`device_del: removal of "nic0" requested; waiting up to 5s for DEVICE_DELETED`))
		r.expectStderr(t, `guest failed to unplug device "nic0" (DEVICE_UNPLUG_GUEST_ERROR)`)
	})

	t.Run("demo/simulated", func(t *testing.T) {
		t.Parallel()
		r := runExample(t, bin, "demo", "-simulated")
		first, _, _ := strings.Cut(r.stdout, "\n")
		if want := "-simulated: using the simulated QEMU from qmptest"; first != want {
			t.Fatalf("first line %q, want %q\nstdout:\n%s\nstderr:\n%s", first, want, r.stdout, r.stderr)
		}
		r.expect(t, 0,
			q(`greeting: QEMU 7.2.22, package "qmptest", capabilities [oob], OOB negotiated: true`),
			q("query-status: status=running running=true"),
			q("no-such-command: *qmp.CommandNotFound: The command no-such-command has not been found"),
			q("stop -> event STOP (seq 1, after cursor 0)"),
			q("cont -> event RESUME (seq 2, after cursor 1)"),
			q("subscription received: STOP, RESUME"),
			`16 query-status one after another: \S+; from 16 goroutines at once: all 16 answered in \S+`,
			q(`RunHuman("info version"): "7.2.22 (qmptest)"`),
			`quit: connection ended: read unix \S+: qmp: connection to QEMU ended: EOF`,
			q("SHUTDOWN (reason host-qmp-quit) found in the history after the connection ended"),
			"done")
		if !strings.HasSuffix(r.stdout, "\ndone\n") {
			t.Fatalf("stdout does not end with done:\n%s", r.stdout)
		}
	})

	t.Run("demo/no-qemu", func(t *testing.T) {
		t.Parallel()
		// Without a QEMU binary the demo falls back to the simulation.
		r := runExampleEnv(t, []string{"QEMU_BIN=" + filepath.Join(t.TempDir(), "no-such-qemu")}, bin, "demo")
		first, _, _ := strings.Cut(r.stdout, "\n")
		if want := "QEMU not found: using the simulated QEMU from qmptest"; first != want {
			t.Fatalf("first line %q, want %q\nstdout:\n%s\nstderr:\n%s", first, want, r.stdout, r.stderr)
		}
		r.expect(t, 0, q(`RunHuman("info version"): "7.2.22 (qmptest)"`), "done")
	})

	t.Run("demo/socket", func(t *testing.T) {
		t.Parallel()
		// A QEMU given with -socket is left running and as it was.
		s := newServer(t, qmptest.Config{Version: "8.0.1"})
		r := runExample(t, bin, "demo", "-socket", s.Path())
		r.expect(t, 0,
			q("using the QEMU 8.0.1 at "+s.Path()),
			q("subscription received: STOP, RESUME"),
			q("leaving the QEMU at "+s.Path()+" running (-quit would stop it)"),
			"done")
		// stop then cont: the VM is left running, as it was; and no quit.
		names := " " + strings.Join(exampleServerCommands(s), " ") + " "
		if !strings.Contains(names, " stop cont ") || strings.Contains(names, " quit ") {
			t.Fatalf("commands sent:%s", names)
		}
	})
}

func TestQEMUExamples(t *testing.T) {
	exampleRequireQEMUBinary(t)
	bin := buildExamples(t)
	q := regexp.QuoteMeta

	t.Run("powerdown/force", func(t *testing.T) {
		t.Parallel()
		vm := qemutest.Require(t, qemutest.Config{})
		// -machine none has no ACPI: QEMU sends POWERDOWN and nothing more.
		r := runExample(t, bin, "powerdown", "-socket", vm.Sockets[0], "-timeout", "200ms", "-force")
		r.expect(t, 0,
			q("POWERDOWN seen: the guest was asked to power off"),
			q("no SHUTDOWN within 200ms: the guest ignored the power button"),
			q("-force: sending quit"),
			`connection ended: read unix \S+: qmp: connection to QEMU ended: EOF`,
			q("SHUTDOWN found after the connection ended: reason=host-qmp-quit guest=false"))
		select {
		case <-vm.Exited():
		case <-time.After(5 * time.Second):
			t.Fatal("QEMU still running 5s after powerdown -force")
		}
	})

	t.Run("powerdown/ignored", func(t *testing.T) {
		t.Parallel()
		vm := qemutest.Require(t, qemutest.Config{})
		r := runExample(t, bin, "powerdown", "-socket", vm.Sockets[0], "-timeout", "200ms")
		r.expect(t, 1,
			q("POWERDOWN seen: the guest was asked to power off"),
			q("no SHUTDOWN within 200ms: the guest ignored the power button"))
		select {
		case <-vm.Exited():
			t.Fatalf("QEMU exited without -force; stderr: %s", vm.Stderr())
		default:
		}
	})

	t.Run("human", func(t *testing.T) {
		t.Parallel()
		vm := qemutest.Require(t, qemutest.Config{})
		r := runExample(t, bin, "human", "-socket", vm.Sockets[0], "-cmd", "info version")
		r.expect(t, 0, q("(qemu) info version"), `\d+\.\d+\.\d+.*`)
		r = runExample(t, bin, "human", "-socket", vm.Sockets[0], "-cmd", "info status")
		r.expect(t, 0, q("(qemu) info status"), q("VM status: running"))
	})

	t.Run("devicedel", func(t *testing.T) {
		t.Parallel()
		vm := qemutest.Require(t, qemutest.Config{
			Machine: "pc", Paused: true,
			ExtraArgs: []string{"-device", "qemu-xhci,id=xhci"},
		})
		r := runExample(t, bin, "devicedel", "-socket", vm.Sockets[0], "-add", "usb-tablet", "-bus", "xhci.0", "-id", "tab0", "-timeout", "5s")
		r.expect(t, 0,
			q(`device_add: added usb-tablet as "tab0"`),
			q(`device_del: removal of "tab0" requested; waiting up to 5s for DEVICE_DELETED`),
			q("DEVICE_DELETED device=tab0 path=/machine/peripheral/tab0"))
		// It is gone: a second removal is QEMU's DeviceNotFound.
		r = runExample(t, bin, "devicedel", "-socket", vm.Sockets[0], "-id", "tab0")
		r.expect(t, 1)
		r.expectStderr(t, `devicedel: device_del: no device "tab0": DeviceNotFound error: Device 'tab0' not found`)
	})

	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		r := runExample(t, bin, "demo")
		first, _, _ := strings.Cut(r.stdout, "\n")
		if !regexp.MustCompile(`^using real QEMU \d+\.\d+\.\d+ \(\S+\)$`).MatchString(first) {
			t.Fatalf("first line %q, want \"using real QEMU X.Y.Z (binary)\"\nstdout:\n%s\nstderr:\n%s", first, r.stdout, r.stderr)
		}
		r.expect(t, 0,
			q("query-status: status=running running=true"),
			q("no-such-command: *qmp.CommandNotFound: The command no-such-command has not been found"),
			q("subscription received: STOP, RESUME"),
			`16 query-status one after another: \S+; from 16 goroutines at once: all 16 answered in \S+`,
			q("SHUTDOWN (reason host-qmp-quit) found in the history after the connection ended"),
			q("QEMU exited"),
			"done")
	})

	t.Run("demo/socket", func(t *testing.T) {
		t.Parallel()
		vm := qemutest.Require(t, qemutest.Config{})
		r := runExample(t, bin, "demo", "-socket", vm.Sockets[0])
		r.expect(t, 0,
			`using the QEMU \d+\.\d+\.\d+ at `+q(vm.Sockets[0]),
			q("subscription received: STOP, RESUME"),
			q("leaving the QEMU at "+vm.Sockets[0]+" running (-quit would stop it)"),
			"done")
		select {
		case <-vm.Exited():
			t.Fatalf("QEMU exited after demo -socket; stderr: %s", vm.Stderr())
		default:
		}
	})
}
