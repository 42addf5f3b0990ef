// Command demo walks through the qmp package live, against a real QEMU
// when one is installed and a simulated one otherwise:
//
//	go run ./examples/demo              # starts a throwaway guest-less QEMU, or the simulation
//	go run ./examples/demo -simulated   # the simulated QEMU of qmptest
//	go run ./examples/demo -socket /run/vm.qmp   # an already running QEMU
//
// Its first line says which QEMU it talks to. It shows the greeting
// (version, capabilities), a command, QEMU's error for an unknown command,
// events (stop/cont with a cursor, and a subscription), 16 commands from 16
// goroutines at once, a human monitor command, and finally quit, whose
// SHUTDOWN event is still found in the history after QEMU closed the
// connection.
//
// The QEMU it starts (see internal/qemutest: -machine none, no guest, no
// disk, no network) is stopped on every path, including errors and
// Ctrl-C. A QEMU given with -socket is left running, and left in the run
// state it had, unless -quit is given.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

func main() {
	simulated := flag.Bool("simulated", false, "use the simulated QEMU even when QEMU is installed")
	socket := flag.String("socket", "", "use the running QEMU with this QMP unix socket instead of starting one")
	quit := flag.Bool("quit", false, "with -socket: end with quit, which stops that QEMU")
	flag.Parse()
	if flag.NArg() > 0 || (*simulated && *socket != "") {
		flag.Usage()
		os.Exit(2)
	}

	// Ctrl-C or SIGTERM cancel ctx, which ends whatever step is running;
	// run's deferred clean-up then stops the QEMU it started. The overall
	// deadline turns a hang into an error.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := run(ctx, *simulated, *socket, *quit)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// target is the QEMU the demo talks to.
type target struct {
	socket string
	// intro is the first line, completed with the version once connected.
	intro func(v qmp.Version) string
	// quit: end the demo with quit (true for a QEMU the demo started).
	quit bool
	// exited is closed when a real QEMU started by the demo has exited.
	exited <-chan struct{}
}

func run(ctx context.Context, simulated bool, socket string, quit bool) error {
	var t target
	switch bin, found := qemutest.Binary(); {
	case socket != "":
		t = target{socket: socket, quit: quit, intro: func(v qmp.Version) string {
			return fmt.Sprintf("using the QEMU %s at %s", version(v), socket)
		}}
	case simulated || !found:
		why := "QEMU not found"
		if simulated {
			why = "-simulated"
		}
		s := qmptest.NewServer(qmptest.Config{})
		defer s.Close()
		t = target{socket: s.Path(), quit: true, intro: func(qmp.Version) string {
			return why + ": using the simulated QEMU from qmptest"
		}}
	default:
		q, err := qemutest.Start(qemutest.Config{})
		if err != nil {
			return err
		}
		defer q.Stop()
		t = target{socket: q.Sockets[0], quit: true, exited: q.Exited(), intro: func(v qmp.Version) string {
			return fmt.Sprintf("using real QEMU %s (%s)", version(v), filepath.Base(bin))
		}}
	}

	dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := qmp.Dial(dialCtx, "unix", t.socket, &qmp.Options{EnableOOB: true})
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Println(t.intro(m.Version()))

	v := m.Version()
	fmt.Printf("greeting: QEMU %s, package %q, capabilities %v, OOB negotiated: %t\n",
		version(v), v.Package, m.Capabilities(), m.OOBEnabled())

	// A command with a result.
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := m.RunContext(ctx, qmp.Command{Name: "query-status"}, &st); err != nil {
		return fmt.Errorf("query-status: %w", err)
	}
	fmt.Printf("query-status: status=%s running=%t\n", st.Status, st.Running)

	// QEMU's errors come back typed.
	err = m.RunContext(ctx, qmp.Command{Name: "no-such-command"}, nil)
	var notFound *qmp.CommandNotFound
	if !errors.As(err, &notFound) {
		return fmt.Errorf("no-such-command: got %v, want a *qmp.CommandNotFound", err)
	}
	fmt.Printf("no-such-command: %T: %s\n", err, notFound.Desc)

	if st.Running {
		if err := events(ctx, m); err != nil {
			return err
		}
	} else {
		fmt.Printf("events: skipping stop/cont, the VM is %s and stays so\n", st.Status)
	}

	if err := concurrent(ctx, m, 16); err != nil {
		return err
	}

	// Typed commands, and a question to the schema this QEMU reports.
	ts, err := m.QueryStatus(ctx)
	if err != nil {
		return err
	}
	qv, err := m.QueryVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("typed: QueryStatus %s, QueryVersion %d.%d.%d\n", ts.Status, qv.QEMU.Major, qv.QEMU.Minor, qv.QEMU.Micro)
	if schema, err := m.Schema(ctx); err != nil {
		fmt.Println("schema: not usable:", err)
	} else {
		fmt.Printf("schema: %d commands; blockdev-add.driver=file.aio=io_uring: %t\n",
			len(schema.Commands()), schema.Has("blockdev-add.driver=file.aio=io_uring"))
	}

	out, err := m.RunHumanContext(ctx, "info version")
	if err != nil {
		return fmt.Errorf("RunHuman: %w", err)
	}
	fmt.Printf("RunHuman(\"info version\"): %q\n", strings.TrimSpace(out))

	if !t.quit {
		fmt.Printf("leaving the QEMU at %s running (-quit would stop it)\n", t.socket)
		fmt.Println("done")
		return nil
	}
	if err := quitQEMU(ctx, m, t.exited); err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}

func version(v qmp.Version) string {
	return fmt.Sprintf("%d.%d.%d", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro)
}

// events shows the two ways to follow events: a cursor taken before acting
// and WaitEventAfter, which finds the event whether it came before or after
// the command's reply; and a Subscription, which delivers them live.
func events(ctx context.Context, m *qmp.Monitor) error {
	sub := m.Subscribe(ctx, qmp.EventFilter{Types: []string{"STOP", "RESUME"}}, 16)
	defer sub.Close()
	for _, step := range []struct{ cmd, event string }{{"stop", "STOP"}, {"cont", "RESUME"}} {
		cursor := m.EventCursor()
		if err := m.RunContext(ctx, qmp.Command{Name: step.cmd}, nil); err != nil {
			return fmt.Errorf("%s: %w", step.cmd, err)
		}
		ev, err := m.WaitEventAfter(ctx, cursor, qmp.EventFilter{Types: []string{step.event}})
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", step.event, err)
		}
		fmt.Printf("%s -> event %s (seq %d, after cursor %d)\n", step.cmd, ev.Type, ev.Seq, cursor)
	}
	var got []string
	for len(got) < 2 {
		ev, ok := <-sub.C
		if !ok {
			return fmt.Errorf("subscription ended early: %w", sub.Err())
		}
		got = append(got, ev.Type)
	}
	fmt.Printf("subscription received: %s\n", strings.Join(got, ", "))
	return nil
}

// concurrent runs n query-status commands one after another, then n from n
// goroutines at once, which the monitor pipelines on its one connection.
func concurrent(ctx context.Context, m *qmp.Monitor, n int) error {
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := m.RunContext(ctx, qmp.Command{Name: "query-status"}, nil); err != nil {
			return fmt.Errorf("query-status: %w", err)
		}
	}
	sequential := time.Since(start)

	errs := make([]error, n)
	var wg sync.WaitGroup
	start = time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var st struct {
				Status string `json:"status"`
			}
			errs[i] = m.RunContext(ctx, qmp.Command{Name: "query-status"}, &st)
			if errs[i] == nil && st.Status == "" {
				errs[i] = errors.New("query-status returned no status")
			}
		}(i)
	}
	wg.Wait()
	parallel := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("concurrent query-status: %w", err)
	}
	fmt.Printf("%d query-status one after another: %v; from %d goroutines at once: all %d answered in %v\n",
		n, sequential.Round(time.Microsecond), n, n, parallel.Round(time.Microsecond))
	return nil
}

// quitQEMU sends quit and shows that the SHUTDOWN event QEMU sends just
// before closing the socket is still in the history afterwards.
func quitQEMU(ctx context.Context, m *qmp.Monitor, exited <-chan struct{}) error {
	cursor := m.EventCursor()
	// QEMU may close the socket with the reply unread: a closed connection
	// is as good as the reply here.
	if err := m.RunContext(ctx, qmp.Command{Name: "quit"}, nil); err != nil && !qmp.IsSocketClosed(err) {
		return fmt.Errorf("quit: %w", err)
	}
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		return errors.New("QEMU did not close the connection within 5s of quit")
	}
	fmt.Println("quit: connection ended:", m.Err())
	found := m.EventsAfter(cursor, qmp.EventFilter{Types: []string{"SHUTDOWN"}})
	if len(found) == 0 {
		return errors.New("no SHUTDOWN in the history after quit")
	}
	var d struct {
		Reason string `json:"reason"`
	}
	json.Unmarshal(found[0].Data, &d)
	fmt.Printf("SHUTDOWN (reason %s) found in the history after the connection ended\n", d.Reason)
	if exited != nil {
		select {
		case <-exited:
			fmt.Println("QEMU exited")
		case <-time.After(5 * time.Second):
			return errors.New("QEMU still running 5s after quit")
		}
	}
	return nil
}
