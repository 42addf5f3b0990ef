package qmp_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// Typed hot-plug and unplug: DeviceAdd, then DeviceDel and the wait for
// DEVICE_DELETED from a cursor taken before it.
func ExampleMonitor_DeviceAdd() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()

	id := "tablet0"
	if err := m.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "usb-tablet", ID: id}); err != nil {
		log.Fatal(err)
	}
	cur := m.EventCursor()
	if err := m.DeviceDel(ctx, id); err != nil {
		log.Fatal(err)
	}
	ev, err := m.WaitDeviceDeleted(ctx, id, cur)
	if err != nil {
		log.Fatal(err) // a *DeviceUnplugError when the guest refuses
	}
	d, _ := qmp.DecodeEventData[qmp.DeviceDeletedEventData](&ev.Event)
	fmt.Println(ev.Type, d.Device, d.Path)

	err = m.DeviceDel(ctx, "nope")
	var nf *qmp.DeviceNotFound
	fmt.Println(errors.As(err, &nf))
	// Output:
	// DEVICE_DELETED tablet0 /machine/peripheral/tablet0
	// true
}

// Decoding an event's data into the package's type for it, or any type
// of the caller's.
func ExampleDecodeEventData() {
	e := qmp.Event{Type: "SHUTDOWN", Data: []byte(`{"guest": true, "reason": "guest-shutdown"}`)}
	d, err := qmp.DecodeEventData[qmp.ShutdownEventData](&e)
	fmt.Println(d.Guest, d.Reason, err)
	own, err := qmp.DecodeEventData[map[string]any](&e)
	fmt.Println((*own)["reason"], err)
	// Output:
	// true guest-shutdown <nil>
	// guest-shutdown <nil>
}

// Asking the live schema what this QEMU accepts, before sending.
func ExampleSchema_Lookup() {
	s := qmptest.NewServer(qmptest.Config{Schema: qmptest.QEMU72Schema})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	schema, err := m.Schema(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	match, err := schema.Lookup("blockdev-add.driver=qcow2.file")
	fmt.Println(match.Type.MetaType, err)
	_, err = schema.Lookup("blockdev-add.driver=qcow3")
	fmt.Println(err != nil)
	// Output:
	// alternate <nil>
	// true
}

// Passing a file descriptor with getfd: QEMU keeps its own copy under a
// name, and the caller's file stays open.
func ExampleMonitor_GetFD() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	r, w, err := os.Pipe()
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := m.GetFD(context.Background(), "log-w", w); err != nil {
		log.Fatal(err)
	}
	// The fake QEMU writes into its copy; the caller reads it from the pipe.
	s.FD("log-w").Write([]byte("hello"))
	buf := make([]byte, 5)
	n, _ := r.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output: hello
}

// An out-of-band command runs at once, even behind in-band commands that
// QEMU has not answered.
func ExampleMonitor_RunOOB() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	s.Handle("stop", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{Delay: time.Second}
	})
	m, err := qmp.Dial(context.Background(), "unix", s.Path(), &qmp.Options{EnableOOB: true})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	go m.Run(qmp.Command{Name: "stop"}, nil) // answered in a second
	var yank []struct{ Type string }
	err = m.RunOOB(context.Background(), qmp.Command{Name: "query-yank"}, &yank)
	fmt.Println(len(yank) > 0, err)
	// Output: true <nil>
}

// The end of the connection: every pending call and wait returns, Done is
// closed, Err says why, and the history stays readable.
func ExampleMonitor_Done() {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cur := m.EventCursor()
	s.SendEvent("SHUTDOWN", map[string]any{"guest": false, "reason": "host-qmp-quit"})
	if _, err := m.WaitShutdown(context.Background(), cur); err != nil {
		log.Fatal(err)
	}
	s.DropConnection() // QEMU exits
	<-m.Done()
	fmt.Println(qmp.IsSocketClosed(m.Err()), errors.Is(m.Err(), qmp.ErrClosed))
	fmt.Println(len(m.EventsAfter(cur, qmp.EventFilter{Types: []string{"SHUTDOWN"}})))
	// Output:
	// true true
	// 1
}

// A typed call that uses what the connected QEMU does not have fails with
// an *UnsupportedError naming it, and what the package knows of the
// versions that have it. Here the QEMU is 10.0, which no longer has the
// compress parameters, and says so itself (with the schema fetched, the
// call would be refused before sending).
func ExampleUnsupportedError() {
	s := qmptest.NewServer(qmptest.Config{Version: "10.0.2"})
	defer s.Close()
	s.Handle("migrate-set-parameters", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{ErrClass: "GenericError", ErrDesc: "Parameter 'compress-level' is unexpected"}
	})
	m, err := qmp.NewMonitor(s.Path(), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	level := int64(9)
	err = m.MigrateSetParameters(context.Background(), qmp.MigrationParameters{CompressLevel: &level})
	var ue *qmp.UnsupportedError
	if errors.As(err, &ue) {
		fmt.Printf("%s: QEMU %v lacks it; QEMU %s was the last to have it\n", ue.Path, ue.Version, ue.Until)
	}
	fmt.Println("errors.ErrUnsupported:", errors.Is(err, errors.ErrUnsupported))
	// Output:
	// migrate-set-parameters.compress-level: QEMU 10.0.2 lacks it; QEMU 9.0 was the last to have it
	// errors.ErrUnsupported: true
}
