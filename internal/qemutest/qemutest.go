// Package qemutest starts throwaway, guest-less QEMU processes whose only
// interface is QMP on unix sockets, for tests and demos of the qmp package.
//
// The QEMU is started with TCG only, no NIC, no display, no default devices,
// no user config and a seccomp sandbox; with the default machine "none" it
// needs no kernel, disk or firmware and is ready in about 50 ms.
//
// QEMU is kept as a direct child process (no -daemonize): Stop can then
// reap it with cmd.Wait, so there is no zombie and no polling for a pid
// that is not ours, and Exited reports its end as a channel.
package qemutest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Limits used by Start and Stop.
const (
	// startTimeout is generous: a QEMU that dies ends the wait at once,
	// and on a loaded 2-core CI machine (the race-enabled tests starting
	// QEMUs in parallel) one QEMU took over 10 s to answer its probe.
	startTimeout = 30 * time.Second
	stopTimeout  = 5 * time.Second
	pollInterval = 2 * time.Millisecond

	// maxSocketPath is the size of sockaddr_un.sun_path on Linux, including
	// the terminating NUL: a usable path is at most maxSocketPath-1 bytes.
	maxSocketPath = 108
)

// Config for one throwaway QEMU.
type Config struct {
	Machine   string   // "none" (default) or "pc"/"q35" for PCI/USB hot-plug
	Paused    bool     // -S: vCPUs stopped, run state "prelaunch"
	Sockets   int      // number of independent QMP monitors (default 1, max 2)
	ExtraArgs []string // appended, e.g. []string{"-device", "qemu-xhci,id=xhci"}
	Dir       string   // where sockets go; "" = a fresh os.MkdirTemp dir removed by Stop
	MemMiB    int      // guest memory in MiB, default 64
}

// QEMU is one running throwaway QEMU process.
type QEMU struct {
	Sockets []string // QMP unix socket paths, one per monitor
	Pid     int      // process id of QEMU

	cmd     *exec.Cmd
	stderr  *lockedBuffer
	exited  chan struct{} // closed once cmd.Wait has returned
	waitErr error         // result of cmd.Wait, valid after exited is closed
	tempDir string        // removed by Stop when non-empty

	stopOnce sync.Once
}

// Binary returns the path of the QEMU binary: $QEMU_BIN if set, else
// qemu-system-x86_64, looked up with exec.LookPath. The boolean reports
// whether it was found.
func Binary() (string, bool) {
	name := os.Getenv("QEMU_BIN")
	if name == "" {
		name = "qemu-system-x86_64"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", false
	}
	return path, true
}

// Version returns the version the QEMU binary reports with --version
// ("7.2.22"): what a test compares the version QEMU sends over QMP with,
// rather than a number of its own.
func Version() (string, error) {
	bin, ok := Binary()
	if !ok {
		return "", errors.New("qemutest: QEMU binary not found (set QEMU_BIN or install qemu-system-x86_64)")
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("qemutest: %s --version: %w", bin, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	rest, ok := strings.CutPrefix(line, "QEMU emulator version ")
	if !ok {
		return "", fmt.Errorf("qemutest: %s --version printed %q, not \"QEMU emulator version X.Y.Z\"", bin, line)
	}
	v, _, _ := strings.Cut(rest, " ")
	return v, nil
}

// Start starts a QEMU as described by cfg and returns once QEMU has
// initialised and every QMP monitor has answered a probe (bounded by 30 s;
// see waitReady). No connection is left open: each QMP monitor serves one
// client at a time, and that slot is the caller's. If QEMU fails to start,
// it is reaped, a directory made by Start is removed, and the error
// includes QEMU's stderr.
func Start(cfg Config) (*QEMU, error) {
	bin, ok := Binary()
	if !ok {
		return nil, errors.New("qemutest: QEMU binary not found (set QEMU_BIN or install qemu-system-x86_64)")
	}
	if cfg.Machine == "" {
		cfg.Machine = "none"
	}
	if cfg.MemMiB == 0 {
		cfg.MemMiB = 64
	}
	if cfg.Sockets == 0 {
		cfg.Sockets = 1
	}
	if cfg.Sockets < 0 || cfg.Sockets > 2 {
		return nil, fmt.Errorf("qemutest: Sockets = %d, want 1 or 2", cfg.Sockets)
	}
	if cfg.MemMiB < 0 {
		return nil, fmt.Errorf("qemutest: MemMiB = %d, want > 0", cfg.MemMiB)
	}
	if strings.Contains(cfg.Machine, ",") {
		return nil, fmt.Errorf("qemutest: machine %q contains a comma", cfg.Machine)
	}

	q := &QEMU{
		stderr: new(lockedBuffer),
		exited: make(chan struct{}),
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "qmp")
		if err != nil {
			return nil, fmt.Errorf("qemutest: %w", err)
		}
		dir, q.tempDir = d, d
	}
	fail := func(err error) (*QEMU, error) {
		if q.tempDir != "" {
			os.RemoveAll(q.tempDir)
		}
		return nil, err
	}

	for i := 0; i < cfg.Sockets; i++ {
		p := filepath.Join(dir, "q"+strconv.Itoa(i)+".sock")
		if len(p) >= maxSocketPath {
			return fail(fmt.Errorf("qemutest: socket path %q is %d bytes, must be < %d", p, len(p), maxSocketPath))
		}
		if strings.Contains(p, ",") {
			return fail(fmt.Errorf("qemutest: socket path %q contains a comma, which breaks -chardev parsing", p))
		}
		// Never clobber anything but a stale socket.
		if fi, err := os.Lstat(p); err == nil {
			if fi.Mode().Type() != os.ModeSocket {
				return fail(fmt.Errorf("qemutest: %s exists and is not a socket", p))
			}
			if err := os.Remove(p); err != nil {
				return fail(fmt.Errorf("qemutest: %w", err))
			}
		}
		q.Sockets = append(q.Sockets, p)
	}

	args := []string{
		"-machine", cfg.Machine,
		"-accel", "tcg",
		"-m", strconv.Itoa(cfg.MemMiB),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-nic", "none",
		// Not elevateprivileges=deny|children: migrate exec:... must spawn.
		"-sandbox", "on,obsolete=deny,resourcecontrol=deny",
	}
	for i, p := range q.Sockets {
		id := "qmp" + strconv.Itoa(i)
		args = append(args,
			"-chardev", "socket,id="+id+",path="+p+",server=on,wait=off",
			"-mon", "chardev="+id+",mode=control",
		)
	}
	if cfg.Paused {
		args = append(args, "-S")
	}
	args = append(args, cfg.ExtraArgs...)

	cmd := exec.Command(bin, args...)
	cmd.Stderr = q.stderr // stdin and stdout stay /dev/null
	// Children of QEMU (migrate uri=exec:...) may inherit the stderr pipe
	// and keep it open: do not let cmd.Wait block on them for long.
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("qemutest: start %s: %w", bin, err))
	}
	q.cmd = cmd
	q.Pid = cmd.Process.Pid
	go func() {
		q.waitErr = cmd.Wait()
		close(q.exited)
	}()

	if err := q.waitReady(); err != nil {
		q.Stop()
		return nil, err
	}
	return q, nil
}

// waitReady returns once QEMU has finished initialising and every QMP
// monitor answers, or with an error (including QEMU's stderr) when QEMU
// exits first or startTimeout passes.
//
// A listening socket is not enough: QEMU 7.2 creates the sockets, and its
// monitor I/O thread even sends greetings, before it creates the -device
// devices, so a bad ExtraArgs device makes QEMU exit only after that.
// Without -daemonize there is no "initialised" signal, so waitReady
//  1. polls (every pollInterval) until each socket file exists and
//     /proc/net/unix shows it listening: connecting earlier would be
//     refused, and connecting at all is only done once it will succeed;
//  2. then, on each socket, connects, reads the greeting, negotiates with
//     qmp_capabilities and disconnects. The reply is sent by the main loop,
//     which runs only after initialisation. The monitor is free again
//     once the probe has disconnected, and the next client gets its own
//     greeting and must negotiate again, as always.
func (q *QEMU) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	timeout := time.NewTimer(startTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !q.allListening() {
		select {
		case <-q.exited:
			return q.exitedErr()
		case <-timeout.C:
			return fmt.Errorf("qemutest: QMP sockets %v not listening after %v; QEMU stderr: %q", q.Sockets, startTimeout, q.Stderr())
		case <-tick.C:
		}
	}
	for _, p := range q.Sockets {
		if err := probe(p, deadline); err != nil {
			// The probe fails fast (EOF, ECONNRESET) when QEMU dies;
			// give the reaper a moment so that the error carries stderr.
			select {
			case <-q.exited:
				return q.exitedErr()
			case <-time.After(time.Second):
			}
			return fmt.Errorf("qemutest: QMP monitor %s not ready: %w; QEMU stderr: %q", p, err, q.Stderr())
		}
	}
	// QEMU handles the probe's hang-up in its main loop; until then it
	// refuses (accepts and closes) the next client. Its end of the probe's
	// connection leaves /proc/net/unix once handled.
	for q.probesOpen() {
		select {
		case <-q.exited:
			return q.exitedErr()
		case <-timeout.C:
			return fmt.Errorf("qemutest: QEMU did not close its end of the readiness probe after %v; QEMU stderr: %q", startTimeout, q.Stderr())
		case <-tick.C:
		}
	}
	return nil
}

// probesOpen reports whether QEMU still holds a connection accepted on one
// of its QMP sockets (false when /proc/net/unix is not readable).
func (q *QEMU) probesOpen() bool {
	accepted, err := acceptedUnixSockets()
	if err != nil {
		return false
	}
	for _, p := range q.Sockets {
		if accepted[p] {
			return true
		}
	}
	return false
}

func (q *QEMU) exitedErr() error {
	return fmt.Errorf("qemutest: QEMU exited during start-up (%v); stderr: %q", q.waitErr, strings.TrimSpace(q.Stderr()))
}

// probe connects to a QMP socket, reads the greeting, negotiates
// capabilities and disconnects.
func probe(path string, deadline time.Time) error {
	conn, err := net.DialTimeout("unix", path, time.Until(deadline))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading greeting: %w", err)
		}
		if strings.HasPrefix(line, `{"QMP"`) {
			break
		}
		// Connected while QEMU is still initialising, the probe can get
		// an event (seen: RESUME) even before the greeting.
		if !strings.Contains(line, `"event"`) {
			return fmt.Errorf("unexpected greeting %q", line)
		}
	}
	if _, err := io.WriteString(conn, `{"execute":"qmp_capabilities"}`+"\n"); err != nil {
		return err
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading qmp_capabilities reply: %w", err)
		}
		if strings.HasPrefix(line, `{"return"`) {
			return nil
		}
		if strings.HasPrefix(line, `{"error"`) {
			return fmt.Errorf("qmp_capabilities: %s", strings.TrimSpace(line))
		}
		// Skip events.
	}
}

// allListening reports whether every socket file exists and, when
// /proc/net/unix is readable, whether a listening socket is bound to it
// (QEMU binds before it listens; a connect in between would be refused).
func (q *QEMU) allListening() bool {
	for _, p := range q.Sockets {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Type() != os.ModeSocket {
			return false
		}
	}
	listening, err := listeningUnixSockets()
	if err != nil {
		return true // no /proc: the socket files will have to do
	}
	for _, p := range q.Sockets {
		if !listening[p] {
			return false
		}
	}
	return true
}

// listeningUnixSockets returns the paths of listening unix sockets in this
// network namespace, from /proc/net/unix.
func listeningUnixSockets() (map[string]bool, error) {
	return unixSockets(true)
}

// acceptedUnixSockets returns the paths that connected sockets accepted
// by a listener hold (an accepted socket carries its listener's path).
func acceptedUnixSockets() (map[string]bool, error) {
	return unixSockets(false)
}

// unixSockets returns the paths of the listening sockets (listening true)
// or of the others bound to a path, from /proc/net/unix.
func unixSockets(listening bool) (map[string]bool, error) {
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	const soAcceptCon = 1 << 16 // __SO_ACCEPTCON: the socket is listening
	m := make(map[string]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path; the path may
		// contain spaces, so take the rest of the line after the inode.
		rest := sc.Text()
		var f [7]string
		for i := range f {
			rest = strings.TrimLeft(rest, " ")
			f[i], rest, _ = strings.Cut(rest, " ")
		}
		if rest == "" {
			continue // unbound or unnamed socket
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || (flags&soAcceptCon != 0) != listening {
			continue
		}
		m[rest] = true
	}
	return m, sc.Err()
}

// Kill sends SIGKILL to QEMU without waiting for it to exit or cleaning up
// (for tests that kill QEMU under a client); call Stop afterwards. Killing
// a QEMU that has already exited is not an error.
func (q *QEMU) Kill() error {
	select {
	case <-q.exited:
		return nil
	default:
	}
	err := q.cmd.Process.Signal(syscall.SIGKILL)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// Stop kills QEMU if it is still running, waits (up to 5 s) until it has
// been reaped, and removes the socket directory if Start created it.
// Stop is idempotent and safe to call from several goroutines: later
// calls return once the first has finished.
func (q *QEMU) Stop() {
	q.stopOnce.Do(func() {
		_ = q.Kill()
		select {
		case <-q.exited:
		case <-time.After(stopTimeout):
		}
		if q.tempDir != "" {
			os.RemoveAll(q.tempDir)
		}
	})
}

// Exited returns a channel that is closed once QEMU has exited and been
// reaped, whatever the reason (quit, Kill, Stop, a crash).
func (q *QEMU) Exited() <-chan struct{} { return q.exited }

// Stderr returns what QEMU has written to its standard error so far.
func (q *QEMU) Stderr() string { return q.stderr.String() }

// lockedBuffer is a bytes.Buffer safe for os/exec's copying goroutine
// writing while another goroutine reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
