// Command qmp-shell is an interactive shell and scripting tool for QEMU's
// QMP monitor: QEMU's Python qmp-shell as one static binary, built on
// go-qmp.
//
//	qmp-shell [flags] SOCKET [COMMAND ...]
//	qmp-shell [flags] -tcp HOST:PORT [COMMAND ...]
//	qmp-shell -follow [-since 10m] SOCKET [EVENT ...]
//
// SOCKET may also come from -socket or, when there are no arguments, from
// the QMP_SOCKET environment variable.
//
// Commands are written in qmp-shell's short form, a command name and
// key=value arguments:
//
//	query-status
//	device_del id=usb0
//	blockdev-add driver=null-co node-name=n0 size=4194304
//	blockdev-add driver=qcow2 node-name=q0 file.driver=file file.filename=/tmp/a.qcow2
//
// A value that is valid JSON (a number, true, false, null, "a string",
// [...], {...}) is taken as that JSON, a value in single quotes as the text
// between them, anything else as a string; dotted keys build nested
// objects. A line may also be a whole QMP command as a JSON object. A
// transaction is written one action per line:
//
//	transaction(
//	  block-dirty-bitmap-add node=n0 name=b0
//	  abort
//	)
//
// With a terminal on stdin and stdout the shell is interactive: line
// editing, history (kept in -histfile), Tab completion of command names,
// argument names and enum values (from query-commands and
// query-qmp-schema; in HMP mode from help), and events shown as they
// arrive. Otherwise, or when commands are given as arguments, it runs them
// one after another and exits with status 1 at the first error (-k: after
// all of them); arguments whose first word is key=value continue the
// previous command, so `qmp-shell SOCK device_del id=usb0` is one command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// options are the command-line flags.
type options struct {
	socket, tcp string
	hmp         bool
	pretty      bool
	verbose     bool
	logFile     string
	json        bool
	keepGoing   bool
	follow      bool
	since       time.Duration
	waitSocket  bool
	timeout     time.Duration
	cmdTimeout  time.Duration
	histFile    string
	events      bool
	agent       bool

	interactive bool // set by run, not a flag
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run is the whole program; it returns the exit status: 0 success, 1 an
// error (QEMU's or the connection's), 2 bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	var opt options
	fs := flag.NewFlagSet("qmp-shell", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opt.socket, "socket", "", "`path` of QEMU's QMP unix socket (or the first argument, or $QMP_SOCKET)")
	fs.StringVar(&opt.tcp, "tcp", "", "connect to QMP on TCP `host:port` instead of a unix socket")
	fs.BoolVar(&opt.hmp, "H", false, "HMP mode: send each line to the human monitor (human-monitor-command)")
	fs.BoolVar(&opt.pretty, "p", false, "pretty-print replies and events (indented, keys sorted)")
	fs.BoolVar(&opt.verbose, "v", false, "echo each command as sent")
	fs.StringVar(&opt.logFile, "l", "", "append every command, reply and event to `file`")
	fs.BoolVar(&opt.json, "json", false, "print one compact JSON line per reply and event (HMP output too), for scripts")
	fs.BoolVar(&opt.keepGoing, "k", false, "keep going after a failed command (the exit status is still 1)")
	fs.BoolVar(&opt.follow, "follow", false, "print events as JSON lines until interrupted; arguments after SOCKET name the events")
	fs.DurationVar(&opt.since, "since", 0, "with -follow: first print the buffered events received within `duration`")
	fs.BoolVar(&opt.waitSocket, "wait-socket", false, "wait (up to -timeout) for the socket to appear: QEMU still starting")
	fs.DurationVar(&opt.timeout, "timeout", 5*time.Second, "how long connecting may take")
	fs.DurationVar(&opt.cmdTimeout, "cmd-timeout", 0, "how long one command may take (0: no limit)")
	fs.StringVar(&opt.histFile, "histfile", defaultHistFile(getenv), "history `file` of the interactive shell (\"\" for none)")
	fs.BoolVar(&opt.agent, "N", false, "the socket is a guest agent's (qemu-ga): no negotiation, no events; synchronises on connect")
	fs.BoolVar(&opt.events, "events", true, "show events as they arrive (interactive) or before each reply (scripts)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: qmp-shell [flags] SOCKET [COMMAND ...]\n"+
			"       qmp-shell [flags] -tcp HOST:PORT [COMMAND ...]\n"+
			"       qmp-shell -follow [-since DURATION] SOCKET [EVENT ...]\n"+
			"Without COMMANDs, commands are read from stdin: interactively from a terminal, else one per line.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := fs.Args()
	network, addr := "unix", opt.socket
	switch {
	case opt.tcp != "" && opt.socket != "":
		fmt.Fprintln(stderr, "qmp-shell: -socket and -tcp exclude each other")
		return 2
	case opt.tcp != "":
		network, addr = "tcp", opt.tcp
	case addr != "":
	case len(rest) > 0:
		addr, rest = rest[0], rest[1:]
	default:
		addr = getenv("QMP_SOCKET")
	}
	if addr == "" {
		fmt.Fprintln(stderr, "qmp-shell: no socket: give SOCKET, -socket, -tcp or $QMP_SOCKET")
		fs.Usage()
		return 2
	}
	if opt.since != 0 && !opt.follow {
		fmt.Fprintln(stderr, "qmp-shell: -since needs -follow")
		return 2
	}
	if opt.agent && (opt.hmp || opt.follow) {
		fmt.Fprintln(stderr, "qmp-shell: a guest agent (-N) has no human monitor (-H) and no events (-follow)")
		return 2
	}

	// Scripts and -follow end on SIGINT and SIGTERM; the interactive shell
	// handles SIGINT itself (it cancels the command running).
	in, isFile := stdin.(*os.File)
	out, outFile := stdout.(*os.File)
	opt.interactive = !opt.follow && len(rest) == 0 && isFile && outFile &&
		isTerminal(int(in.Fd())) && isTerminal(int(out.Fd()))
	if !opt.interactive {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}

	s := &session{opt: &opt}
	if opt.agent {
		agent, err := connectAgent(ctx, network, addr, &opt)
		if err != nil {
			fmt.Fprintf(stderr, "qmp-shell: %v\n", err)
			return 1
		}
		defer agent.Close()
		s.c = agent
	} else {
		mon, err := connect(ctx, network, addr, &opt)
		if err != nil {
			fmt.Fprintf(stderr, "qmp-shell: %v\n", err)
			return 1
		}
		defer mon.Close()
		s.c, s.mon = mon, mon
	}
	mon := s.mon

	if opt.follow {
		ready := func() {
			fmt.Fprintf(stderr, "qmp-shell: following %s on %s (interrupt to stop)\n", followDescription(rest), addr)
		}
		err := follow(ctx, mon, rest, opt.since, opt.pretty && !opt.json, stdout, ready)
		if err != nil {
			fmt.Fprintf(stderr, "qmp-shell: %v\n", err)
			return 1
		}
		return 0
	}

	if opt.logFile != "" {
		f, err := os.OpenFile(opt.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "qmp-shell: %v\n", err)
			return 1
		}
		defer f.Close()
		s.logW = f
	}
	if !opt.interactive {
		s.out = &plainPrinter{w: stdout}
		s.errOut = &plainPrinter{w: stderr}
		if len(rest) > 0 {
			return s.script(ctx, nil, argLines(rest))
		}
		return s.script(ctx, stdin, nil)
	}
	return interactiveMain(ctx, s, in, out, addr)
}

// interactiveMain sets up the terminal, completion and history for the
// interactive shell.
func interactiveMain(ctx context.Context, s *session, in, out *os.File, addr string) int {
	ed := newEditor(in, out)
	ed.width = func() int { return termWidth(int(out.Fd())) }
	s.out, s.errOut = ed, ed
	var comp *completer
	if agent, ok := s.c.(*qmp.Agent); ok {
		comp = loadAgentCompletion(ctx, agent)
	} else {
		comp = loadCompletion(ctx, s.mon, s.opt.hmp)
	}
	comp.inTrans = func() bool { return s.p.pending() >= 0 }
	ed.complete = comp.complete

	var hist *historyFile
	if s.opt.histFile != "" {
		h, lines, err := openHistory(s.opt.histFile)
		if err != nil {
			fmt.Fprintf(out, "qmp-shell: history: %v\n", err)
		} else {
			hist = h
			defer hist.close()
			for _, l := range lines {
				ed.AddHistory(l)
			}
		}
	}

	if s.mon != nil {
		v := s.mon.Version()
		mode := "QMP"
		if s.opt.hmp {
			mode = "HMP"
		}
		fmt.Fprintf(out, "Connected to QEMU %d.%d.%d (%s) at %s, %s mode.\n", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro, v.Package, addr, mode)
	} else {
		fmt.Fprintf(out, "Connected to the guest agent at %s.\n", addr)
	}
	fmt.Fprintf(out, "Tab completes, Up/Down recall history, Ctrl-C abandons a line or a running command, Ctrl-D exits.\n")

	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	return s.interactive(ctx, ed, ttyTerminal{int(in.Fd())}, interrupts, hist)
}

// connect dials and negotiates, bounded by -timeout, waiting for the
// socket to appear with -wait-socket.
func connect(ctx context.Context, network, addr string, opt *options) (*qmp.Monitor, error) {
	ctx, cancel := context.WithTimeout(ctx, opt.timeout)
	defer cancel()
	mon, err := qmp.Dial(ctx, network, addr, &qmp.Options{WaitForSocket: opt.waitSocket})
	if err != nil {
		if qmp.IsSocketNotAvailable(err) && !opt.waitSocket {
			return nil, fmt.Errorf("%v (is QEMU running? -wait-socket waits for it)", err)
		}
		return nil, err
	}
	return mon, nil
}

// connectAgent dials a guest agent and synchronises with it, bounded by
// -timeout.
func connectAgent(ctx context.Context, network, addr string, opt *options) (*qmp.Agent, error) {
	ctx, cancel := context.WithTimeout(ctx, opt.timeout)
	defer cancel()
	return qmp.DialAgent(ctx, network, addr, &qmp.AgentOptions{SyncTimeout: opt.timeout})
}

// loadAgentCompletion completes the agent's enabled commands (guest-info).
func loadAgentCompletion(ctx context.Context, agent *qmp.Agent) *completer {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &completer{}
	if info, err := agent.GuestInfo(ctx); err == nil {
		for _, x := range info.SupportedCommands {
			if x.Enabled {
				c.commands = append(c.commands, x.Name)
			}
		}
	}
	return c
}

// loadCompletion fetches what completion needs; failures leave it empty.
func loadCompletion(ctx context.Context, mon *qmp.Monitor, hmp bool) *completer {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &completer{hmp: hmp}
	if hmp {
		if out, err := mon.RunHumanContext(ctx, "help"); err == nil {
			c.hmpCommands = parseHMPHelp(out, false)
		}
		if out, err := mon.RunHumanContext(ctx, "help info"); err == nil {
			c.hmpInfo = parseHMPHelp(out, true)
		}
		return c
	}
	var cmds []struct {
		Name string `json:"name"`
	}
	if err := mon.RunContext(ctx, qmp.Command{Name: "query-commands"}, &cmds); err == nil {
		for _, x := range cmds {
			c.commands = append(c.commands, x.Name)
		}
	}
	c.schema = fetchSchema(ctx, mon)
	return c
}

// argLines groups command-line arguments into command lines: an argument
// whose first word is key=value continues the previous command.
func argLines(args []string) []string {
	var lines []string
	for _, a := range args {
		f := strings.Fields(a)
		if len(lines) > 0 && len(f) > 0 && !strings.HasPrefix(a, "{") && strings.Contains(f[0], "=") {
			lines[len(lines)-1] += " " + quoteArg(a)
			continue
		}
		lines = append(lines, a)
	}
	return lines
}

// quoteArg keeps one shell argument key=some text with spaces one token.
func quoteArg(a string) string {
	k, v, _ := strings.Cut(a, "=")
	if !strings.ContainsAny(v, " \t") {
		return a
	}
	if toks, err := tokenize(v); err == nil && len(toks) == 1 {
		return a // already quoted or JSON
	}
	b, _ := marshal(v, false)
	return k + "=" + string(b)
}

func defaultHistFile(getenv func(string) string) string {
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".qmp-shell_history")
	}
	return ""
}
