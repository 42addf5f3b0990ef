package qmp

import (
	"context"
	"strings"
)

// HMPError is RunHumanChecked's error for a human monitor command that
// failed. QEMU returns HMP errors as a successful reply whose text is the
// message, so RunHuman cannot tell them from output; RunHumanChecked
// recognises the two forms QEMU's HMP core uses: a line starting "Error: "
// (every command that reports an error the standard way) and "unknown
// command: ..." (a command that does not exist). A few commands print
// other free-form messages on failure (e.g. drive_del's "Device 'x' not
// found"); those come back as output.
type HMPError struct {
	Command string // the command line sent
	Message string // QEMU's text, without the trailing CRLF
}

func (e *HMPError) Error() string {
	return "qmp: human monitor command " + quoteCmd(e.Command) + " failed: " + e.Message
}

func quoteCmd(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// RunHumanChecked runs a human monitor command like RunHumanContext and
// returns an *HMPError when QEMU's reply is an error message (see
// HMPError); the output is returned either way. RunHuman and
// RunHumanContext keep v2.0.4's behaviour: HMP errors are output.
func (m *Monitor) RunHumanChecked(ctx context.Context, cmdline string) (string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	out, err := m.RunHumanContext(ctx, cmdline)
	if err != nil {
		return out, err
	}
	if herr := hmpError(cmdline, out); herr != nil {
		return out, herr
	}
	return out, nil
}

// hmpError returns the *HMPError that out, an HMP command's text, reports,
// or nil when it reports none. Only the first and the last line are looked
// at (warnings may precede the error), so output that merely contains such
// a line further down is not mistaken for an error.
func hmpError(cmdline, out string) *HMPError {
	text := strings.TrimRight(out, "\r\n")
	lines := strings.Split(text, "\n")
	for _, line := range []string{lines[0], lines[len(lines)-1]} {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "Error: ") || strings.HasPrefix(line, "unknown command: ") {
			return &HMPError{Command: cmdline, Message: text}
		}
	}
	return nil
}
