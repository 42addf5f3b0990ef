package main

// run, the program's whole job, tested against the fake QEMU of package
// qmptest: how a VM manager can test its own QEMU-driving code without a
// QEMU.

import (
	"errors"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/qmptest"
)

func TestRunUnplugs(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Config{})
	defer srv.Close()
	if err := run(srv.Path(), "tablet0", "usb-tablet", "xhci.0", 5*time.Second); err != nil {
		t.Fatalf("run: %v", err)
	}
	var sent []string
	for _, r := range srv.Requests() {
		sent = append(sent, r.Name)
	}
	if got := strings.Join(sent, " "); got != "qmp_capabilities device_add device_del" {
		t.Fatalf("sent %s", got)
	}
}

func TestRunNoSuchDevice(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Config{})
	defer srv.Close()
	err := run(srv.Path(), "nope", "", "", 5*time.Second)
	var nf *qmp.DeviceNotFound
	if !errors.As(err, &nf) {
		t.Fatalf("run = %v, want a *qmp.DeviceNotFound", err)
	}
}

// A guest that refuses the unplug: QEMU answers device_del, then sends
// DEVICE_UNPLUG_GUEST_ERROR instead of DEVICE_DELETED.
func TestRunGuestRefuses(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Config{})
	defer srv.Close()
	srv.Handle("device_del", func(s *qmptest.Server, r *qmptest.Request) qmptest.Reply {
		s.SendEvent("DEVICE_UNPLUG_GUEST_ERROR", map[string]string{"device": "net0", "path": "/machine/peripheral/net0"})
		return qmptest.Reply{}
	})
	err := run(srv.Path(), "net0", "", "", 5*time.Second)
	var ue *qmp.DeviceUnplugError
	if !errors.As(err, &ue) || ue.Device != "net0" {
		t.Fatalf("run = %v, want a *qmp.DeviceUnplugError for net0", err)
	}
}
