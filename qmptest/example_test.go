package qmptest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

// A fake QEMU with a canned reply, an event on demand, and a look at what
// the client sent.
func Example() {
	srv := qmptest.NewServer(qmptest.Config{})
	defer srv.Close()
	srv.Handle("query-name", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{Return: map[string]string{"name": "vm1"}}
	})

	mon, err := qmp.NewMonitor(srv.Path(), 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mon.Close()
	var name struct{ Name string }
	err = mon.Run(qmp.Command{Name: "query-name"}, &name)
	fmt.Println(name.Name, err)

	cur := mon.EventCursor()
	srv.SendEvent("SHUTDOWN", map[string]any{"guest": true, "reason": "guest-shutdown"})
	ev, err := mon.WaitShutdown(context.Background(), cur)
	fmt.Println(ev.Type, string(ev.Data), err)

	for _, r := range srv.Requests() {
		fmt.Println("sent:", r.Name)
	}
	// Output:
	// vm1 <nil>
	// SHUTDOWN {"guest": true, "reason": "guest-shutdown"} <nil>
	// sent: qmp_capabilities
	// sent: query-name
}

// Faults: a QEMU that never answers a command, and one that goes away.
func Example_faults() {
	srv := qmptest.NewServer(qmptest.Config{})
	defer srv.Close()
	srv.Handle("stop", func(*qmptest.Server, *qmptest.Request) qmptest.Reply {
		return qmptest.Reply{NoReply: true} // a wedged QEMU
	})
	mon, err := qmp.NewMonitor(srv.Path(), 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mon.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = mon.RunContext(ctx, qmp.Command{Name: "stop"}, nil)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))

	srv.DropConnection()
	<-mon.Done()
	fmt.Println(qmp.IsSocketClosed(mon.Err()))
	// Output:
	// true
	// true
}

// A recorded QEMU 7.2 schema answers query-qmp-schema, so code that reads
// the live schema can be tested.
func ExampleConfig_schema() {
	srv := qmptest.NewServer(qmptest.Config{Schema: qmptest.QEMU72Schema})
	defer srv.Close()
	mon, err := qmp.NewMonitor(srv.Path(), 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mon.Close()
	s, err := mon.Schema(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Has("blockdev-add.driver=qcow2.file"), s.Has("device_del.nope"))
	// Output: true false
}
