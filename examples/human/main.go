// Command human runs a human monitor (HMP) command through QMP's
// human-monitor-command and prints its output.
//
//	go run ./examples/human -socket /run/vm.qmp -cmd "info version"
//
// HMP reports its own errors ("unknown command: ...") as output, not as a
// QMP error, so they are printed like any other output.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

func main() {
	socket := flag.String("socket", "", "path of QEMU's QMP unix socket (required)")
	cmd := flag.String("cmd", "info version", "HMP command line to run")
	timeout := flag.Duration("timeout", 10*time.Second, "how long to wait for the command")
	flag.Parse()
	if *socket == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*socket, *cmd, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "human:", err)
		os.Exit(1)
	}
}

func run(socket, cmdline string, timeout time.Duration) error {
	m, err := qmp.NewMonitor(socket, 5*time.Second)
	if err != nil {
		return err
	}
	defer m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	fmt.Printf("(qemu) %s\n", cmdline)
	out, err := m.RunHumanContext(ctx, cmdline)
	if err != nil {
		return fmt.Errorf("%q: %w", cmdline, err)
	}
	// HMP ends lines with \r\n.
	fmt.Print(strings.ReplaceAll(out, "\r\n", "\n"))
	return nil
}
