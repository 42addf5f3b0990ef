// Command devicedel hot-unplugs a device and waits until QEMU reports it
// gone with DEVICE_DELETED.
//
//	go run ./examples/devicedel -socket /run/vm.qmp -id tablet0
//
// device_del only starts the removal: a USB device goes at once, a PCI
// device only when the guest OS agrees (a guest that refuses makes QEMU
// send DEVICE_UNPLUG_GUEST_ERROR, reported as an error). On a fresh VM
// without the device, -add plugs it in first, e.g. on a pc machine started
// with -device qemu-xhci,id=xhci:
//
//	go run ./examples/devicedel -socket /run/vm.qmp -add usb-tablet -bus xhci.0 -id tablet0
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
	id := flag.String("id", "", "id of the device to remove (required)")
	add := flag.String("add", "", "first device_add a device of this driver with -id (e.g. usb-tablet)")
	bus := flag.String("bus", "", "bus for -add (e.g. xhci.0)")
	timeout := flag.Duration("timeout", 30*time.Second, "how long to wait for DEVICE_DELETED")
	flag.Parse()
	if *socket == "" || *id == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*socket, *id, *add, *bus, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "devicedel:", err)
		os.Exit(1)
	}
}

func run(socket, id, driver, bus string, timeout time.Duration) error {
	m, err := qmp.NewMonitor(socket, 5*time.Second)
	if err != nil {
		return err
	}
	defer m.Close()

	if driver != "" {
		args := map[string]string{"driver": driver, "id": id}
		if bus != "" {
			args["bus"] = bus
		}
		if err := m.Run(qmp.Command{Name: "device_add", Arguments: args}, nil); err != nil {
			return fmt.Errorf("device_add %s: %w", driver, err)
		}
		fmt.Printf("device_add: added %s as %q\n", driver, id)
	}

	// Take an event cursor before device_del, whose event may come before
	// or after its reply: the wait then sees exactly the events that
	// arrive later, never an earlier deletion of the same id.
	cur := m.EventCursor()
	err = m.Run(qmp.Command{Name: "device_del", Arguments: map[string]string{"id": id}}, nil)
	var notFound *qmp.DeviceNotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("device_del: no device %q: %w", id, err)
	}
	if err != nil {
		return fmt.Errorf("device_del: %w", err)
	}
	fmt.Printf("device_del: removal of %q requested; waiting up to %v for DEVICE_DELETED\n", id, timeout)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ev, err := m.WaitDeviceDeleted(ctx, id, cur)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no DEVICE_DELETED for %q within %v (a PCI device needs the guest's cooperation)", id, timeout)
	}
	if err != nil {
		return err // including *qmp.DeviceUnplugError: the guest refused
	}
	var d qmp.DeviceDeletedEventData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return fmt.Errorf("decoding DEVICE_DELETED data %s: %w", ev.Data, err)
	}
	fmt.Printf("DEVICE_DELETED device=%s path=%s\n", d.Device, d.Path)
	return nil
}
