package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// The examples talk to the simulated QEMU of qmptest, so that
// `go test` runs them and checks their output; with a real QEMU, pass the
// path of its QMP socket (-qmp unix:/run/vm.qmp,server=on,wait=off)
// instead of s.Path().

func ExampleNewMonitor() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()

	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := m.Run(qmp.Command{Name: "query-status"}, &st); err != nil {
		log.Fatal(err)
	}
	v := m.Version().QEMU
	fmt.Printf("QEMU %d.%d.%d\n", v.Major, v.Minor, v.Micro)
	fmt.Println("status:", st.Status, "running:", st.Running)
	// Output:
	// QEMU 7.2.22
	// status: running running: true
}

func ExampleDial() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()

	// ctx bounds connecting and negotiating only, not the monitor's life.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := qmp.Dial(ctx, "unix", s.Path(), &qmp.Options{
		WaitForSocket: true, // QEMU may still be starting: retry until ctx ends
		EnableOOB:     true, // negotiate "oob" when QEMU offers it
		EventHistory:  1000, // keep the last 1000 events
		MaxInFlight:   4,    // at most 4 in-band commands awaiting replies
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	fmt.Println("capabilities:", m.Capabilities())
	fmt.Println("OOB enabled:", m.OOBEnabled())
	// Output:
	// capabilities: [oob]
	// OOB enabled: true
}

func ExampleMonitor_RunContext() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// The simulated QEMU now takes 100ms to answer: more than we wait.
	s.SetReplyDelay(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err = m.RunContext(ctx, qmp.Command{Name: "query-status"}, nil)
	fmt.Println("deadline exceeded:", errors.Is(err, context.DeadlineExceeded))

	// Only that caller gave up: the connection is intact, and the late
	// reply is matched to the abandoned command and dropped.
	s.SetReplyDelay(0)
	var st struct {
		Status string `json:"status"`
	}
	if err := m.Run(qmp.Command{Name: "query-status"}, &st); err != nil {
		log.Fatal(err)
	}
	fmt.Println("next command:", st.Status)
	// Output:
	// deadline exceeded: true
	// next command: running
}

func ExampleMonitor_RunHuman() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	out, err := m.RunHuman("info status")
	if err != nil {
		log.Fatal(err)
	}
	// HMP output is text with QEMU's \r\n line ends.
	fmt.Printf("%q\n", out)

	// HMP reports its errors as output, not as a QMP error.
	out, err = m.RunHuman("bogus")
	fmt.Printf("%q %v\n", strings.TrimSpace(out), err)
	// Output:
	// "VM status: running\r\n"
	// "unknown command: 'bogus'" <nil>
}

func ExampleMonitor_RunTransaction() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	type snapshot struct {
		Device string `json:"device"`
		Name   string `json:"name"`
	}
	err = m.RunTransaction([]qmp.Command{
		{Name: "blockdev-snapshot-internal-sync", Arguments: snapshot{"disk0", "before-upgrade"}},
		{Name: "blockdev-snapshot-internal-sync", Arguments: snapshot{"disk1", "before-upgrade"}},
	}, nil, &qmp.TransactionProperties{CompletionMode: "grouped"})
	fmt.Println("transaction:", err)

	// A command that is not a transaction action is refused before
	// anything is sent.
	err = m.RunTransaction([]qmp.Command{{Name: "device_del"}}, nil, nil)
	fmt.Println("transaction:", err)
	// Output:
	// transaction: <nil>
	// transaction: qmp: command not sent: member arguments.actions[0].type: "device_del" is not a transaction action (AllowedTransactionActions lists them)
}

// QEMU's errors come back as the concrete type of their class, which
// errors.As also unwraps to *qmp.GenericError.
func ExampleCommandNotFound() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	err = m.Run(qmp.Command{Name: "no-such-command"}, nil)

	var notFound *qmp.CommandNotFound
	if errors.As(err, &notFound) {
		fmt.Println("not found:", notFound.Desc)
	}
	var generic *qmp.GenericError
	if errors.As(err, &generic) {
		fmt.Println("class:", generic.Class)
	}
	// A plain type switch works too.
	switch err.(type) {
	case *qmp.CommandNotFound:
		fmt.Println("type switch: *qmp.CommandNotFound")
	case *qmp.GenericError:
		fmt.Println("type switch: *qmp.GenericError")
	}
	// The connection ending is not QEMU's error: see IsSocketClosed.
	fmt.Println("socket closed:", qmp.IsSocketClosed(err))
	// Output:
	// not found: The command no-such-command has not been found
	// class: CommandNotFound
	// type switch: *qmp.CommandNotFound
	// socket closed: false
}

func ExampleMonitor_WaitDeviceDeletedEvent() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	dev := map[string]string{"driver": "usb-tablet", "id": "tablet0", "bus": "xhci.0"}
	if err := m.Run(qmp.Command{Name: "device_add", Arguments: dev}, nil); err != nil {
		log.Fatal(err)
	}

	// `after` is in Unix seconds (QEMU's event timestamps): take it before
	// sending device_del so that the event cannot be missed. This is the
	// v2.0.4 form: an earlier deletion of tablet0 within the same second
	// would be returned instead (see ExampleMonitor_WaitDeviceDeleted for
	// the cursor form, which has no such caveat).
	after := uint64(time.Now().Unix())
	if err := m.Run(qmp.Command{Name: "device_del", Arguments: map[string]string{"id": "tablet0"}}, nil); err != nil {
		log.Fatal(err)
	}
	// device_del only asks for the removal; DEVICE_DELETED says it is done
	// (for USB at once, for PCI when the guest agrees).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := m.WaitDeviceDeletedEvent(ctx, "tablet0", after)
	if err != nil {
		log.Fatal(err)
	}
	var d qmp.DeviceDeletedEventData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Type, d.Device, d.Path)
	// Output:
	// DEVICE_DELETED tablet0 /machine/peripheral/tablet0
}

func ExampleMonitor_WaitDeviceDeleted() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	dev := map[string]string{"driver": "usb-tablet", "id": "tablet0", "bus": "xhci.0"}
	if err := m.Run(qmp.Command{Name: "device_add", Arguments: dev}, nil); err != nil {
		log.Fatal(err)
	}
	// The cursor, taken before device_del, marks the events seen so far:
	// the wait considers only later ones.
	cur := m.EventCursor()
	if err := m.Run(qmp.Command{Name: "device_del", Arguments: map[string]string{"id": "tablet0"}}, nil); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := m.WaitDeviceDeleted(ctx, "tablet0", cur)
	if err != nil {
		log.Fatal(err) // a *qmp.DeviceUnplugError when the guest refuses
	}
	fmt.Println(ev.Type, ev.Seq > cur)
	// Output:
	// DEVICE_DELETED true
}

func ExampleMonitor_WaitEventAfter() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// The cursor pattern: note the newest event seen, act, then wait for
	// what arrives after it. QEMU sends STOP and RESUME before the replies
	// of stop and cont, so waiting only after Run returns would miss them
	// without a cursor; and an older RESUME can never be taken for this one.
	cursor := m.EventCursor()
	for _, cmd := range []string{"stop", "cont"} {
		if err := m.Run(qmp.Command{Name: cmd}, nil); err != nil {
			log.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := m.WaitEventAfter(ctx, cursor, qmp.EventFilter{Types: []string{"RESUME"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Type, "after the cursor:", ev.Seq > cursor)

	for _, r := range m.EventsAfter(cursor, qmp.EventFilter{}) {
		fmt.Println("seen:", r.Type)
	}
	// Output:
	// RESUME after the cursor: true
	// seen: STOP
	// seen: RESUME
}

func ExampleMonitor_Subscribe() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// The subscription ends (C is closed) when ctx ends, on Close, or when
	// the connection ends, so the loop below cannot hang.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub := m.Subscribe(ctx, qmp.EventFilter{Types: []string{"STOP", "RESUME"}}, 16)
	defer sub.Close()

	for _, cmd := range []string{"stop", "cont"} {
		if err := m.Run(qmp.Command{Name: cmd}, nil); err != nil {
			log.Fatal(err)
		}
	}
	for ev := range sub.C {
		fmt.Println("event:", ev.Type)
		if ev.Type == "RESUME" {
			break
		}
	}
	fmt.Println("subscription error while open:", sub.Err())
	sub.Close()
	fmt.Println("after Close:", sub.Err())
	// Output:
	// event: STOP
	// event: RESUME
	// subscription error while open: <nil>
	// after Close: qmp: subscription closed
}
