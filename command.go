package qmp

// Matching replies to commands
//
// QEMU executes in-band commands one at a time, in the order it read them,
// and answers each exactly once, in that order; only out-of-band (exec-oob)
// replies may overtake. So in-band commands carry no "id": the router hands
// each in-band reply to the oldest in-band command still waiting (a FIFO
// filled in exactly the order the bytes go out, writer.go). QEMU 7.2 reads
// its input one byte per syscall (~2.7 µs a byte), so the ~8 bytes of
// `,"id":17` would add ~15% to every round trip.
//
// "Exactly once" is QEMU's promise only for input it takes as one message
// per command, so the library makes sure of that before anything is sent
// (check.go): a command that is not one JSON object, nests deeper, or has
// more or bigger tokens than QEMU's JSON streamer takes, or holds bytes its
// lexer rejects, is refused with a *CommandError (ErrInvalidCommand) and
// nothing is sent. Given that, QEMU never has reason to complain about its
// JSON input; if it does anyway (an id-less "JSON parse error ...", a
// "JSON ... limit exceeded", "QMP input must be a JSON object"), the two
// sides disagree on where messages end and every later reply could be
// somebody else's, so the monitor ends the connection with a protocol
// error, which every pending and later call receives, rather than hand
// replies to the wrong callers.
//
// Out-of-band commands always carry an id ("oob-N") and are matched by it;
// their map entry lives until the reply arrives (even if the caller gave
// up), so a reply whose id names no OOB call is an in-band reply that
// echoes a caller's own id, and goes to the FIFO like any other. An in-band
// command may not carry "exec-oob" (its reply could overtake): RunOOB
// sends those.
//
// A caller whose ctx ends gives up its wait only: a command still queued is
// withdrawn unsent; one already handed to the writer stays in the FIFO, so
// that its reply, when it comes, is matched and dropped rather than given
// to somebody else. Its in-flight slot is freed by that reply, so commands
// abandoned while QEMU is stalled cannot pile up past Options.MaxInFlight.

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
)

// Run executes the given QAPI command and decodes its "return" value into
// res (which may be nil). cmd is any JSON-marshalable value, usually a
// Command. An error reply comes back as NewQMPError's type for its class.
// It waits as long as QEMU takes; use RunContext to bound the wait.
func (m *Monitor) Run(cmd interface{}, res interface{}) error {
	return m.RunContext(context.Background(), cmd, res)
}

// RunContext is Run with ctx bounding this caller's wait, writing
// included: when ctx ends first it returns ctx.Err() at once. A command not
// yet written is then withdrawn unsent; one already written still runs in
// QEMU, its late reply is dropped, and the connection and other callers are
// unaffected. A nil ctx means context.Background().
//
// A command QEMU could not take as exactly one message, or whose reply
// could not be matched, is refused before sending with a *CommandError
// (errors.Is(err, ErrInvalidCommand) lists the rules).
func (m *Monitor) RunContext(ctx context.Context, cmd interface{}, res interface{}) error {
	c := newCall()
	if err := c.prepare(cmd); err != nil {
		return err
	}
	m.noteDeprecated(c.msg)
	return m.roundTrip(ctx, c, res)
}

// RunHuman executes a command using "human-monitor-command".
func (m *Monitor) RunHuman(cmdline string) (string, error) {
	return m.RunHumanContext(context.Background(), cmdline)
}

// RunHumanContext is RunHuman bounded by ctx, as RunContext.
func (m *Monitor) RunHumanContext(ctx context.Context, cmdline string) (string, error) {
	var out string
	if err := m.RunContext(ctx, Command{"human-monitor-command", &HumanCommand{Cmd: cmdline}}, &out); err != nil {
		return "", err
	}
	return out, nil
}

// RunTransaction executes a number of transactionable QAPI commands
// atomically. Every command must be in AllowedTransactionActions;
// otherwise nothing is sent.
func (m *Monitor) RunTransaction(cmds []Command, res interface{}, properties *TransactionProperties) error {
	return m.RunTransactionContext(context.Background(), cmds, res, properties)
}

// RunTransactionContext is RunTransaction bounded by ctx, as RunContext.
func (m *Monitor) RunTransactionContext(ctx context.Context, cmds []Command, res interface{}, properties *TransactionProperties) error {
	args := struct {
		Actions    []TransactionAction    `json:"actions"`
		Properties *TransactionProperties `json:"properties,omitempty"`
	}{
		Actions:    make([]TransactionAction, 0, len(cmds)),
		Properties: properties,
	}
	for i, cmd := range cmds {
		if _, ok := AllowedTransactionActions[cmd.Name]; !ok {
			return &CommandError{Member: fmt.Sprintf("arguments.actions[%d].type", i), Reason: fmt.Sprintf("%q is not a transaction action (AllowedTransactionActions lists them)", cmd.Name)}
		}
		args.Actions = append(args.Actions, TransactionAction{Type: cmd.Name, Data: cmd.Arguments})
	}
	if res != nil && reflect.ValueOf(res).Kind() != reflect.Pointer {
		res = &res // v2.0.4 decoded into &res, so a non-pointer res was accepted (and left unchanged)
	}
	return m.RunContext(ctx, Command{"transaction", &args}, res)
}

var oobSeq atomic.Uint64

// RunOOB executes cmd out-of-band ("exec-oob"): QEMU runs it at once, even
// while in-band commands are queued or running, and its reply may overtake
// theirs. It needs Options.EnableOOB and a QEMU that offers "oob";
// otherwise it returns ErrOOBNotEnabled and sends nothing. Commands that do
// not allow OOB execution come back as QEMU's *GenericError.
func (m *Monitor) RunOOB(ctx context.Context, cmd interface{}, res interface{}) error {
	if m.done == nil {
		return closedError(nil, errNeverConnected) // the zero Monitor
	}
	if !m.oob {
		return ErrOOBNotEnabled
	}
	name, args, err := commandParts(cmd)
	if err != nil {
		return err
	}
	c := newCall()
	c.oob = true
	c.id = oobIDPrefix + strconv.FormatUint(oobSeq.Add(1), 10) + `"`
	c.msg = append(c.msg[:0], `{"exec-oob":`...)
	c.msg = appendString(c.msg, name)
	if len(args) > 0 {
		c.msg = append(c.msg, `,"arguments":`...)
		c.msg = append(c.msg, args...)
	}
	c.msg = append(c.msg, `,"id":`...)
	c.msg = append(c.msg, c.id...)
	c.msg = append(c.msg, '}')
	if _, err := checkCommand(c.msg, true); err != nil {
		return err
	}
	return m.roundTrip(ctx, c, res)
}

// checkResult refuses, before anything is sent, a result argument that no
// reply could be decoded into: the command would run in QEMU (pausing the
// VM, deleting a device) and only its result be lost.
func checkResult(res interface{}) error {
	switch res.(type) {
	case nil, *json.RawMessage:
		return nil
	}
	if v := reflect.ValueOf(res); v.Kind() != reflect.Pointer || v.IsNil() {
		return &CommandError{Reason: fmt.Sprintf("the result argument is a %T, not a non-nil pointer, so the reply could not be stored in it", res)}
	}
	return nil
}

// roundTrip sends c and waits for its reply, ctx, or the end of the
// connection.
func (m *Monitor) roundTrip(ctx context.Context, c *call, res interface{}) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		c.complete(nil, false, err) // a caller that has already given up sends nothing
		return err
	}
	if err := checkResult(res); err != nil {
		c.complete(nil, false, err)
		return err
	}
	c.discard = res == nil
	if err := m.send(ctx, c); err != nil {
		return err
	}
	blocking("reply wait")
	select {
	case <-c.done:
	case <-ctx.Done():
		if m.withdraw(c) {
			c.complete(nil, false, ctx.Err())
		}
		return ctx.Err()
	}
	if c.err != nil {
		return c.err
	}
	if c.isErr {
		return qmpError(c.ret)
	}
	switch r := res.(type) {
	case nil:
		return nil
	case *json.RawMessage:
		// The framer has already checked the value's structure; a full
		// decode would only validate it again (3 ms for a 1 MiB schema).
		*r = c.ret
		return nil
	}
	if err := json.Unmarshal(c.ret, res); err != nil {
		return fmt.Errorf("qmp: decoding the reply into %T: %w", res, err)
	}
	return nil
}
