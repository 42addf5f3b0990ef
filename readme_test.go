package qmp_test

// The Go snippets of README.md, compiled: each README snippet is the body
// of a function here, verbatim (one tab deeper), and TestReadmeSnippets
// checks that they have not drifted apart.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// readmeAgent is README's "The guest agent".
func readmeAgent() error {
	ctx := context.Background()
	agent, err := qmp.DialAgent(ctx, "unix", "/run/vm1/qga.sock", nil)
	if err != nil {
		return err // errors.Is(err, qmp.ErrAgentUnresponsive): no agent answers in the guest
	}
	defer agent.Close()
	st, err := agent.ExecWait(ctx, qmp.GuestExecArgs{Path: "/bin/uname", Arg: []string{"-r"}})
	if err != nil {
		return err
	}
	fmt.Printf("exit %d: %s", *st.ExitCode, st.OutData)
	return nil
}

var _ = readmeAgent

// readmeTour is README's "A short tour".
func readmeTour() error {
	mon, err := qmp.NewMonitor("/run/vm/qmp.sock", 5*time.Second)
	if qmp.IsSocketNotAvailable(err) || qmp.IsSocketBusy(err) {
		return err // the VM is not running, or another client holds the socket
	} else if err != nil {
		return err
	}
	defer mon.Close()
	fmt.Println("QEMU", mon.Version()) // QEMU 7.2.22

	// Commands: any JSON-marshalable value, usually qmp.Command.
	var st struct {
		Status string `json:"status"`
	}
	if err := mon.Run(qmp.Command{Name: "query-status"}, &st); err != nil {
		return err
	}

	// QEMU's errors come back typed.
	err = mon.Run(qmp.Command{Name: "device_del", Arguments: map[string]string{"id": "x"}}, nil)
	var notFound *qmp.DeviceNotFound
	fmt.Println(errors.As(err, &notFound))

	// Bound one caller's wait; the connection and other callers are unaffected.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := mon.RunHumanChecked(ctx, "info version") // *qmp.HMPError for HMP's error text
	fmt.Println(out, err)

	// Wait for what a command causes: take a cursor first, so that no earlier
	// event (even in the same second) is mistaken for the answer, and none is missed.
	cur := mon.EventCursor()
	if err := mon.Run(qmp.Command{Name: "device_del", Arguments: map[string]string{"id": "net0"}}, nil); err != nil {
		return err
	}
	ev, err := mon.WaitDeviceDeleted(ctx, "net0", cur) // *qmp.DeviceUnplugError if the guest refuses
	fmt.Println(ev.Seq, err)
	// Any event: mon.WaitEventAfter(ctx, cur, qmp.EventFilter{Types: []string{"DEVICE_DELETED"}})

	// The v2.0.4 form (Unix seconds) still works, with its caveat: an earlier
	// deletion of net0 within the same second is returned instead.
	ev2, err := mon.WaitDeviceDeletedEvent(ctx, "net0", uint64(time.Now().Unix()))
	fmt.Println(ev2, err)

	// Follow events live.
	sub := mon.Subscribe(ctx, qmp.EventFilter{Types: []string{"BLOCK_JOB_COMPLETED"}}, 64)
	for rec := range sub.C {
		fmt.Println(rec.Seq, rec.Type)
	}
	fmt.Println(sub.Err()) // why it ended: ctx, Close, overflow, or the connection

	// When QEMU goes away every pending call and wait returns at once.
	<-mon.Done()
	fmt.Println(qmp.IsSocketClosed(mon.Err()))
	return nil
}

var _ = readmeTour

// TestReadmeSnippets fails when a Go snippet of README's own sections is
// not, verbatim, the body of a function in this file.
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, section := range []string{"## A short tour", "## The guest agent"} {
		i := strings.Index(text, section+"\n")
		if i < 0 {
			t.Fatalf("README has no section %q", section)
		}
		rest := text[i:]
		if j := strings.Index(rest[len(section):], "\n## "); j >= 0 {
			rest = rest[:len(section)+j]
		}
		blocks := strings.Split(rest, "```go\n")[1:]
		if len(blocks) == 0 {
			t.Fatalf("README section %q has no Go snippet", section)
		}
		for _, b := range blocks {
			snippet := b[:strings.Index(b, "```")]
			var indented strings.Builder
			for _, line := range strings.SplitAfter(snippet, "\n") {
				if strings.TrimSpace(line) != "" {
					indented.WriteString("\t")
				}
				indented.WriteString(line)
			}
			if !strings.Contains(string(self), indented.String()) {
				t.Errorf("README section %q has a Go snippet that readme_test.go does not compile:\n%s", section, snippet)
			}
		}
	}
}
