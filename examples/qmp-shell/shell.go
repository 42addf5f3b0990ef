package main

// A session: running what the user typed, printing replies and events,
// logging, and the interactive and scripted loops around it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// printer shows output: the line editor while interactive (so that events
// do not garble the line being typed), a plain writer otherwise.
type printer interface{ Print(s string) }

// plainPrinter writes to w, one Print at a time.
type plainPrinter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plainPrinter) Print(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, s)
}

// conn is what a session sends commands over: a *qmp.Monitor, or a
// *qmp.Agent with -N.
type conn interface {
	RunContext(ctx context.Context, cmd interface{}, res interface{}) error
	Done() <-chan struct{}
	Err() error
}

// session runs commands on one monitor, or one guest agent.
type session struct {
	c      conn
	mon    *qmp.Monitor // nil for a guest agent: no events, no HMP
	opt    *options
	out    printer // replies, events, -v echo
	errOut printer // local errors (bad syntax, connection trouble)
	logW   io.Writer
	logMu  sync.Mutex
	p      parser

	lastSeq qmp.EventCursor // events up to this one have been shown (scripted mode)

	// quitting is set while quit is being sent and after it succeeded, so
	// that the connection ending then is not reported as trouble.
	quitting atomic.Bool
	quitOK   bool // the last command was a successful quit
	endShown atomic.Bool
}

// conn returns what commands go over: c, or the monitor when only that
// is set.
func (s *session) conn() conn {
	if s.c == nil {
		return s.mon
	}
	return s.c
}

// errConnection marks a failure of the connection (as opposed to QEMU
// refusing a command): nothing more can be sent.
type errConnection struct{ err error }

func (e errConnection) Error() string { return e.err.Error() }
func (e errConnection) Unwrap() error { return e.err }

// logLine writes one JSON value to the -l log.
func (s *session) logLine(dir string, v any) {
	if s.logW == nil {
		return
	}
	b, err := marshal(v, false)
	if err != nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.logW, "%s %s %s\n", time.Now().Format("2006-01-02T15:04:05.000000Z07:00"), dir, b)
}

// marshal encodes v as JSON with object keys sorted (numbers kept as
// QEMU wrote them), indented when pretty, without HTML escaping.
func marshal(v any, pretty bool) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var norm any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&norm); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if pretty {
		enc.SetIndent("", "    ")
	}
	if err := enc.Encode(norm); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// spaced puts a space after each ':' and ',' of compact JSON outside
// strings, as QEMU writes it: easier to read than -json's compact form.
func spaced(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	inStr, esc := false, false
	for _, c := range b {
		out = append(out, c)
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out
}

// eventJSON is an event in QEMU's wire form, members in QEMU's order.
type eventJSON struct {
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data,omitempty"`
	Timestamp struct {
		Seconds      uint64 `json:"seconds"`
		Microseconds uint64 `json:"microseconds"`
	} `json:"timestamp"`
}

// formatEvent renders an event as one JSON line (indented with -p unless
// -json), keys of its data sorted.
func formatEvent(ev qmp.Event, pretty bool) string {
	j := eventJSON{Event: ev.Type, Timestamp: ev.Timestamp}
	if len(ev.Data) > 0 && string(ev.Data) != "null" {
		if d, err := marshal(ev.Data, false); err == nil {
			j.Data = d
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if pretty {
		enc.SetIndent("", "    ")
	}
	enc.Encode(j)
	return out.String()
}

// eventLine is an event as the shell shows it between replies.
func (s *session) eventLine(ev qmp.Event) string {
	line := formatEvent(ev, s.pretty())
	if !s.pretty() && !s.opt.json {
		line = string(spaced([]byte(line)))
	}
	return line
}

func (s *session) pretty() bool { return s.opt.pretty && !s.opt.json }

// format renders a reply: indented with -p, compact with -json, else on
// one line spaced like QEMU's own output.
func (s *session) format(v any) ([]byte, error) {
	b, err := marshal(v, s.pretty())
	if err == nil && !s.pretty() && !s.opt.json {
		b = spaced(b)
	}
	return b, err
}

// showEvent prints one event and logs it.
func (s *session) showEvent(rec qmp.EventRecord) {
	s.logLine("event", eventJSON{Event: rec.Type, Data: rec.Data, Timestamp: rec.Timestamp})
	if s.opt.events {
		s.out.Print(s.eventLine(rec.Event))
	}
}

// showPendingEvents prints the events that arrived since the last call
// (scripted mode: events QEMU sent before a reply come before it).
func (s *session) showPendingEvents() {
	if s.mon == nil {
		return
	}
	for _, rec := range s.mon.EventsAfter(s.lastSeq, qmp.EventFilter{}) {
		s.showEvent(rec)
		s.lastSeq = rec.Seq
	}
}

// do runs one input line. It returns nil when the line was fine (including
// a line that sent nothing), the error QEMU or the parser reported, or an
// errConnection when the connection failed.
func (s *session) do(ctx context.Context, line string) error {
	if s.opt.hmp {
		return s.doHMP(ctx, line)
	}
	cmd, err := s.p.feed(line)
	if err != nil {
		s.errOut.Print(fmt.Sprintf("error: %v\n", err))
		return err
	}
	if cmd == nil {
		return nil
	}
	return s.send(ctx, *cmd)
}

// reply is what QEMU answered, in its wire form.
type reply struct {
	Return json.RawMessage `json:"return,omitempty"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error,omitempty"`
}

func (s *session) send(ctx context.Context, cmd command) error {
	s.quitOK = false
	s.quitting.Store(cmd.Name == "quit")
	if s.opt.verbose {
		if b, err := s.format(cmd); err == nil {
			s.out.Print(string(b) + "\n")
		}
	}
	s.logLine("->", cmd)
	if s.opt.cmdTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opt.cmdTimeout)
		defer cancel()
	}
	var ret json.RawMessage
	err := s.conn().RunContext(ctx, cmd, &ret)
	if !s.opt.interactive {
		s.showPendingEvents()
	}
	var r reply
	var ge *qmp.GenericError
	switch {
	case err == nil:
		r.Return = ret
		if len(ret) == 0 || string(ret) == "null" {
			r.Return = json.RawMessage("{}")
		}
	case errors.As(err, &ge):
		r.Error = &struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		}{ge.Class, ge.Desc}
	case qmp.IsSocketClosed(err):
		s.errOut.Print(fmt.Sprintf("error: %s: %v\n", cmd.Name, err))
		return errConnection{err}
	case errors.Is(err, context.Canceled):
		// After the terminal's own echo of ^C.
		s.errOut.Print(fmt.Sprintf("\nerror: %s: interrupted: no longer waiting for the reply (QEMU may still run it)\n", cmd.Name))
		return err
	default:
		s.errOut.Print(fmt.Sprintf("error: %s: %v\n", cmd.Name, err))
		return err
	}
	s.logLine("<-", r)
	b, merr := s.format(r)
	if merr != nil {
		b = []byte(fmt.Sprintf("(reply not printable: %v)", merr))
	}
	s.out.Print(string(b) + "\n")
	if err == nil && cmd.Name == "quit" {
		s.quitOK = true
	} else {
		s.quitting.Store(false)
	}
	return err
}

func (s *session) doHMP(ctx context.Context, line string) error {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	if s.opt.verbose {
		s.out.Print(fmt.Sprintf("(hmp) %s\n", line))
	}
	s.logLine("->", command{Name: "human-monitor-command", Arguments: map[string]any{"command-line": line}})
	if s.opt.cmdTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opt.cmdTimeout)
		defer cancel()
	}
	out, err := s.mon.RunHumanContext(ctx, line)
	if !s.opt.interactive {
		s.showPendingEvents()
	}
	if err != nil {
		var ge *qmp.GenericError
		if errors.As(err, &ge) {
			s.logLine("<-", map[string]any{"error": map[string]string{"class": ge.Class, "desc": ge.Desc}})
			s.out.Print(fmt.Sprintf("error: %s: %s\n", ge.Class, ge.Desc))
			return err
		}
		s.errOut.Print(fmt.Sprintf("error: %v\n", err))
		if qmp.IsSocketClosed(err) {
			return errConnection{err}
		}
		return err
	}
	s.logLine("<-", map[string]any{"return": out})
	if s.opt.json {
		b, _ := marshal(map[string]any{"return": out}, false)
		s.out.Print(string(b) + "\n")
		return nil
	}
	// HMP ends lines with \r\n.
	s.out.Print(strings.ReplaceAll(out, "\r\n", "\n"))
	return nil
}

// script runs the lines of r (or of lines when r is nil) one after another,
// as for piped input and commands given as arguments. It stops at the
// first error unless -k, and returns the exit status.
func (s *session) script(ctx context.Context, r io.Reader, lines []string) int {
	next := func() (string, bool) {
		if len(lines) == 0 {
			return "", false
		}
		l := lines[0]
		lines = lines[1:]
		return l, true
	}
	var readErr error
	if r != nil {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64*1024), 64<<20)
		next = func() (string, bool) {
			if sc.Scan() {
				return sc.Text(), true
			}
			readErr = sc.Err()
			return "", false
		}
	}
	failed := false
	for {
		line, ok := next()
		if !ok {
			break
		}
		err := s.do(ctx, line)
		if err == nil {
			continue
		}
		failed = true
		var ce errConnection
		if errors.As(err, &ce) || ctx.Err() != nil || !s.opt.keepGoing {
			s.showPendingEvents()
			return 1
		}
	}
	if readErr != nil {
		s.errOut.Print(fmt.Sprintf("error: reading input: %v\n", readErr))
		failed = true
	}
	if s.p.pending() >= 0 {
		s.errOut.Print(fmt.Sprintf("error: %v\n", errTransactionOpen))
		failed = true
	}
	s.showPendingEvents()
	if failed {
		return 1
	}
	return 0
}

// terminal is what the interactive loop needs from the terminal: raw mode
// around each ReadLine. Tests use a no-op.
type terminal interface {
	raw() (restore func() error, err error)
}

type ttyTerminal struct{ fd int }

func (t ttyTerminal) raw() (func() error, error) { return makeRaw(t.fd) }

// interactive reads lines with the line editor until Ctrl-D, showing
// events as they arrive. interrupts delivers SIGINT while a command runs
// (the terminal is in cooked mode then); it cancels that command only.
func (s *session) interactive(ctx context.Context, ed *editor, term terminal, interrupts <-chan os.Signal, hist *historyFile) int {
	evCtx, stopEvents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.followEvents(evCtx)
	}()
	defer func() {
		stopEvents()
		wg.Wait()
	}()

	for {
		prompt := "(QEMU) "
		switch {
		case s.opt.hmp:
			prompt = "(HMP) "
		case s.p.pending() >= 0:
			prompt = fmt.Sprintf("(transaction %d) ", s.p.pending())
		}
		restore, err := term.raw()
		if err != nil {
			s.errOut.Print(fmt.Sprintf("error: terminal: %v\n", err))
			return 1
		}
		line, err := ed.ReadLine(prompt)
		if rerr := restore(); rerr != nil {
			s.errOut.Print(fmt.Sprintf("error: terminal: %v\n", rerr))
		}
		switch {
		case errors.Is(err, errInterrupt):
			if s.p.pending() >= 0 {
				s.p.reset()
				s.errOut.Print("transaction abandoned\n")
			}
			continue
		case err == io.EOF:
			if s.p.pending() >= 0 {
				s.errOut.Print(fmt.Sprintf("error: %v\n", errTransactionOpen))
			}
			return 0
		case err != nil:
			s.errOut.Print(fmt.Sprintf("error: reading the terminal: %v\n", err))
			return 1
		}
		ed.AddHistory(line)
		hist.add(line)

		cmdCtx, cancel := context.WithCancel(ctx)
		stopWatch := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-interrupts:
				cancel()
			case <-stopWatch:
			}
		}()
		err = s.do(cmdCtx, line)
		close(stopWatch)
		<-watched
		cancel()

		var ce errConnection
		if errors.As(err, &ce) {
			return 1
		}
		select {
		case <-s.conn().Done():
			if s.quitOK {
				return 0
			}
			if !s.endShown.Swap(true) {
				s.errOut.Print(fmt.Sprintf("connection ended: %v\n", s.conn().Err()))
			}
			return 1
		default:
		}
	}
}

// followEvents shows events as they arrive until ctx ends or the
// connection does, saying so when the connection ends.
func (s *session) followEvents(ctx context.Context) {
	if s.mon == nil {
		return // a guest agent sends no events
	}
	cur := s.mon.EventCursor()
	for ctx.Err() == nil {
		rec, err := s.mon.WaitEventAfter(ctx, cur, qmp.EventFilter{})
		var missed *qmp.OverflowError
		if errors.As(err, &missed) {
			// Events came faster than they were shown, and the oldest were
			// evicted before their turn: say so and go on from the oldest
			// still held.
			s.errOut.Print(fmt.Sprintf("(%d events not shown: they came faster than they could be printed)\n", missed.Oldest-missed.Seq))
			cur = missed.Oldest - 1
			continue
		}
		if err != nil {
			if ctx.Err() == nil && qmp.IsSocketClosed(err) && !s.quitting.Load() && !s.endShown.Swap(true) {
				s.errOut.Print(fmt.Sprintf("connection ended: %v (Enter exits)\n", s.mon.Err()))
			}
			return
		}
		cur = rec.Seq
		s.showEvent(rec)
	}
}
