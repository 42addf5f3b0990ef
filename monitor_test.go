package qmp_test

import (
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qmptest"
)

func TestNewMonitorAndRun(t *testing.T) {
	s := newServer(t, qmptest.Config{})
	m, err := qmp.NewMonitor(s.Path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := m.Run(qmp.Command{"query-status", nil}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "running" || !st.Running {
		t.Fatalf("query-status = %+v", st)
	}
	if v := m.Version(); v.QEMU.Major != 7 || v.QEMU.Minor != 2 || v.QEMU.Micro != 22 {
		t.Fatalf("Version() = %+v", v)
	}
}
