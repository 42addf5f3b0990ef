package main

// The real binary on a pseudo-terminal: the interactive shell as a user
// sees it, with completion from the schema and history across sessions.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/0xef53/go-qmp/v2/qmptest"
)

// openPTY opens a pseudo-terminal pair with the syscall package: /dev/ptmx,
// unlocked (TIOCSPTLCK), its slave found by number (TIOCGPTN), and a
// window size set.
func openPTY(t *testing.T, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	ctl := func(f *os.File, req uintptr, arg unsafe.Pointer) error {
		rc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		var ierr error
		if err := rc.Control(func(fd uintptr) { ierr = ioctl(int(fd), req, arg) }); err != nil {
			return err
		}
		return ierr
	}
	var unlock int32
	if err := ctl(m, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		m.Close()
		t.Fatalf("TIOCSPTLCK: %v", err)
	}
	var n uint32
	if err := ctl(m, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		m.Close()
		t.Fatalf("TIOCGPTN: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		t.Fatalf("opening the slave: %v", err)
	}
	ws := winsize{Row: 24, Col: cols}
	if err := ctl(s, syscall.TIOCSWINSZ, unsafe.Pointer(&ws)); err != nil {
		m.Close()
		s.Close()
		t.Fatalf("TIOCSWINSZ: %v", err)
	}
	return m, s
}

// ptySession is the binary running on a pseudo-terminal.
type ptySession struct {
	t      *testing.T
	master *os.File
	slave  *os.File
	cmd    *exec.Cmd
	scr    *screen
	copied chan struct{} // closed when the master's reader has stopped
	exited chan error
}

func startPTY(t *testing.T, home string, args ...string) *ptySession {
	t.Helper()
	bin := shellBinary(t)
	master, slave := openPTY(t, 100)
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=xterm", "QMP_SOCKET=")
	// Its own session with the terminal as controlling terminal, as a
	// login shell would give it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		t.Fatal(err)
	}
	p := &ptySession{t: t, master: master, slave: slave, cmd: cmd, scr: newScreen(100), copied: make(chan struct{}), exited: make(chan error, 1)}
	go func() {
		defer close(p.copied)
		io.Copy(p.scr, master) // ends with EIO or when master is closed
	}()
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(p.stop)
	return p
}

// stop kills the shell if it is still running and releases the terminal.
func (p *ptySession) stop() {
	select {
	case err := <-p.exited:
		p.exited <- err
	default:
		p.cmd.Process.Kill()
		p.exited <- <-p.exited
	}
	p.slave.Close()
	p.master.Close()
	<-p.copied
}

func (p *ptySession) typeKeys(keys string) {
	p.t.Helper()
	if _, err := p.master.WriteString(keys); err != nil {
		p.t.Fatalf("typing %q: %v", keys, err)
	}
}

// wait waits for the shell to exit and returns its exit status.
func (p *ptySession) wait() int {
	p.t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		p.t.Fatalf("qmp-shell still running 10s after Ctrl-D; screen:\n%s", p.scr)
		return -1
	}
}

// cooked reports whether the terminal is back in its normal mode (echo and
// line editing on), as the shell must leave it.
func (p *ptySession) cooked() bool {
	var tio syscall.Termios
	rc, err := p.slave.SyscallConn()
	if err != nil {
		return false
	}
	var ierr error
	rc.Control(func(fd uintptr) { ierr = ioctl(int(fd), syscall.TCGETS, unsafe.Pointer(&tio)) })
	return ierr == nil && tio.Lflag&syscall.ECHO != 0 && tio.Lflag&syscall.ICANON != 0
}

func TestPTYCompletionAndHistory(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("query-name", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{Delay: time.Minute} // wedged: only Ctrl-C ends the wait
	})
	s.Handle("query-qmp-schema", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{RawReturn: json.RawMessage(testSchema)}
	})
	home := t.TempDir()

	// Session 1: complete a command name and its argument name, run it.
	p := startPTY(t, home, s.Path())
	p.scr.waitFor(t, 10*time.Second, "the banner and prompt", func() bool {
		line, _ := p.scr.current()
		return line == "(QEMU) " && p.scr.hasLine("Tab completes, Up/Down recall history, Ctrl-C abandons a line or a running command, Ctrl-D exits.")
	})
	if !p.scr.hasLine("Connected to QEMU 7.2.22 (qmptest) at " + s.Path() + ", QMP mode.") {
		t.Fatalf("banner:\n%s", p.scr)
	}
	p.typeKeys("device_d\t")
	p.scr.waitLine(t, "(QEMU) device_del ", 18)
	p.typeKeys("\t") // the only argument: id=
	p.scr.waitLine(t, "(QEMU) device_del id=", 21)
	p.typeKeys("usb0\r")
	p.scr.waitFor(t, 5*time.Second, "the error reply", func() bool {
		return p.scr.hasLine(`{"error": {"class": "DeviceNotFound", "desc": "Device 'usb0' not found"}}`)
	})
	p.scr.waitLine(t, "(QEMU) ", 7)
	// Enum values: blockdev-add's driver; then abandon the line.
	p.typeKeys("blockdev-add driver=nu\t")
	p.scr.waitLine(t, "(QEMU) blockdev-add driver=null-co ", 35)
	p.typeKeys("\x15") // Ctrl-U
	p.scr.waitLine(t, "(QEMU) ", 7)
	p.typeKeys("\x04") // Ctrl-D
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d; screen:\n%s", code, p.scr)
	}
	if !p.cooked() {
		t.Fatal("the terminal was left in raw mode")
	}
	if b, err := os.ReadFile(filepath.Join(home, ".qmp-shell_history")); err != nil || string(b) != "device_del id=usb0\n" {
		t.Fatalf("history file %q, %v", b, err)
	}

	// Session 2: Up recalls the line of session 1.
	p = startPTY(t, home, s.Path())
	p.scr.waitLine(t, "(QEMU) ", 7)
	p.typeKeys("\x1b[A")
	p.scr.waitLine(t, "(QEMU) device_del id=usb0", 25)
	p.typeKeys("\r")
	p.scr.waitFor(t, 5*time.Second, "the error reply", func() bool {
		return p.scr.hasLine(`{"error": {"class": "DeviceNotFound", "desc": "Device 'usb0' not found"}}`)
	})
	p.scr.waitLine(t, "(QEMU) ", 7)

	// Ctrl-C while a command runs (the terminal is in its normal mode
	// then, so it is SIGINT): the shell stops waiting and prompts again.
	n := len(s.Requests())
	p.typeKeys("query-name\r")
	if _, err := s.WaitRequests(n+1, 5*time.Second); err != nil {
		t.Fatalf("query-name not sent: %v", err)
	}
	p.typeKeys("\x03")
	p.scr.waitFor(t, 5*time.Second, "the interruption notice and a new prompt", func() bool {
		line, col := p.scr.current()
		return line == "(QEMU) " && col == 7 &&
			p.scr.hasLine("error: query-name: interrupted: no longer waiting for the reply (QEMU may still run it)")
	})
	p.typeKeys("\x04")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var dels int
	for _, c := range sent(s) {
		if strings.HasPrefix(c, "device_del ") {
			dels++
		}
	}
	if dels != 2 {
		t.Fatalf("device_del sent %d times, want 2: %q", dels, sent(s))
	}
}
