// Command powerdown asks a QEMU guest to power off, the way a host does on
// shutdown: it sends system_powerdown (an ACPI power-button press) and
// waits for the SHUTDOWN event that QEMU sends when the guest has turned
// itself off.
//
//	go run ./examples/powerdown -socket /run/vm.qmp -timeout 60s
//
// A guest that does not react to ACPI (no OS yet, a hung kernel, or a
// guest-less QEMU with -machine none, which only reports POWERDOWN) never
// sends SHUTDOWN: the program then says so and exits with status 1. With
// -force it pulls the plug instead: it sends quit, which makes QEMU send
// SHUTDOWN (reason "host-qmp-quit") and exit; that SHUTDOWN usually
// arrives just before QEMU closes the socket, so the program finds it in
// the monitor's event history after the connection has ended.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

func main() {
	socket := flag.String("socket", "", "path of QEMU's QMP unix socket (required)")
	timeout := flag.Duration("timeout", 30*time.Second, "how long to wait for the guest to shut down")
	force := flag.Bool("force", false, "send quit when no SHUTDOWN came within -timeout")
	flag.Parse()
	if *socket == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*socket, *timeout, *force); err != nil {
		fmt.Fprintln(os.Stderr, "powerdown:", err)
		os.Exit(1)
	}
}

func run(socket string, timeout time.Duration, force bool) error {
	m, err := qmp.NewMonitor(socket, 5*time.Second)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Printf("connected to %s\n", socket)

	// Events that arrive after this cursor are the consequences of what we
	// send next; QEMU sends POWERDOWN even before its reply.
	cursor := m.EventCursor()
	if err := m.Run(qmp.Command{Name: "system_powerdown"}, nil); err != nil {
		return fmt.Errorf("system_powerdown: %w", err)
	}
	fmt.Println("sent system_powerdown")

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := m.WaitEventAfter(ctx, cursor, qmp.EventFilter{Types: []string{"POWERDOWN"}}); err != nil {
		return fmt.Errorf("waiting for POWERDOWN: %w", err)
	}
	fmt.Println("POWERDOWN seen: the guest was asked to power off")

	ev, err := m.WaitShutdown(ctx, cursor)
	if err == nil {
		fmt.Println("SHUTDOWN:", reason(ev))
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("waiting for SHUTDOWN: %w", err)
	}
	fmt.Printf("no SHUTDOWN within %v: the guest ignored the power button\n", timeout)
	if !force {
		return errors.New("guest did not shut down (use -force to quit QEMU)")
	}

	fmt.Println("-force: sending quit")
	// QEMU closes the socket right after its reply, and may close it with
	// the reply still unread: an error for which IsSocketClosed holds is
	// as good as the reply.
	if err := m.Run(qmp.Command{Name: "quit"}, nil); err != nil && !qmp.IsSocketClosed(err) {
		return fmt.Errorf("quit: %w", err)
	}
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		return errors.New("QEMU did not close the connection within 5s of quit")
	}
	fmt.Println("connection ended:", m.Err())
	// The history outlives the connection.
	found := m.EventsAfter(cursor, qmp.EventFilter{Types: []string{"SHUTDOWN"}})
	if len(found) == 0 {
		return errors.New("no SHUTDOWN event in the history after quit")
	}
	fmt.Println("SHUTDOWN found after the connection ended:", reason(found[0]))
	return nil
}

// reason describes a SHUTDOWN event's data.
func reason(ev qmp.EventRecord) string {
	var d struct {
		Guest  bool   `json:"guest"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return fmt.Sprintf("undecodable data %s", ev.Data)
	}
	return fmt.Sprintf("reason=%s guest=%t", d.Reason, d.Guest)
}
