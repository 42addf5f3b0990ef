package qmp_test

import (
	"errors"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

func TestRunHumanChecked(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	s.Handle("human-monitor-command", func(_ *qmptest.Server, r *qmptest.Request) qmptest.Reply {
		switch string(r.Arguments) {
		case `{"command-line":"device_del nope"}`:
			return qmptest.Reply{Return: "Error: Device 'nope' not found\r\n"}
		case `{"command-line":"bogus"}`:
			return qmptest.Reply{Return: "unknown command: 'bogus'\r\n"}
		case `{"command-line":"warned"}`:
			return qmptest.Reply{Return: "warning: something odd\r\nError: it failed\r\n"}
		case `{"command-line":"info log"}`:
			return qmptest.Reply{Return: "line one\r\nline two: Error: quoted\r\nError: inside the output\r\nlast line\r\n"}
		}
		return qmptest.Reply{Return: "VM status: running\r\n"}
	})
	m := dial(t, s, nil)
	ctx := ctxT(t, 5*time.Second)
	for _, c := range []struct {
		cmd, msg string
	}{
		{"device_del nope", "Error: Device 'nope' not found"},
		{"bogus", "unknown command: 'bogus'"},
		{"warned", "warning: something odd\r\nError: it failed"},
	} {
		out, err := m.RunHumanChecked(ctx, c.cmd)
		var he *qmp.HMPError
		if !errors.As(err, &he) || he.Command != c.cmd || he.Message != c.msg {
			t.Errorf("RunHumanChecked(%q) = %q, %v; want an *HMPError with message %q", c.cmd, out, err, c.msg)
		}
		if out == "" {
			t.Errorf("RunHumanChecked(%q) returned no output with its error", c.cmd)
		}
		// RunHuman keeps v2.0.4's behaviour: the text is output.
		if out2, err := m.RunHuman(c.cmd); err != nil || out2 != out {
			t.Errorf("RunHuman(%q) = %q, %v; want the same text and no error", c.cmd, out2, err)
		}
	}
	for _, cmd := range []string{"info status", "info log"} {
		if out, err := m.RunHumanChecked(ctx, cmd); err != nil || out == "" {
			t.Errorf("RunHumanChecked(%q) = %q, %v; want output and no error", cmd, out, err)
		}
	}
}

func TestVersionString(t *testing.T) {
	s := newServer(t, qmptest.Config{Version: "7.2.22"})
	m := dial(t, s, nil)
	if got := m.Version().String(); got != "7.2.22" {
		t.Errorf("Version().String() = %q, want 7.2.22", got)
	}
	var v qmp.Version
	v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro = 10, 0, 3
	if got := v.String(); got != "10.0.3" {
		t.Errorf("Version{10,0,3}.String() = %q", got)
	}
}
