package qmp

// Typed commands: run state and identity. All methods are safe for
// concurrent use, as Run is.

import (
	"context"
	"fmt"
)

// StatusInfo is query-status's reply.
type StatusInfo struct {
	Running    bool   `json:"running"`
	Singlestep *bool  `json:"singlestep,omitempty"` // QEMU 8.2 and earlier (nil: this QEMU did not send it)
	Status     string `json:"status"`               // RunState: "running", "paused", "prelaunch", "postmigrate", ...
}

// NameInfo is query-name's reply.
type NameInfo struct {
	Name *string `json:"name,omitempty"` // nil: the guest has no name
}

// KVMInfo is query-kvm's reply.
type KVMInfo struct {
	Enabled bool `json:"enabled"`
	Present bool `json:"present"`
}

var (
	cmdQueryStatus     = defCommand[struct{}, StatusInfo]("query-status")
	cmdStop            = defCommand[struct{}, struct{}]("stop")
	cmdCont            = defCommand[struct{}, struct{}]("cont")
	cmdSystemReset     = defCommand[struct{}, struct{}]("system_reset")
	cmdSystemPowerdown = defCommand[struct{}, struct{}]("system_powerdown")
	cmdQuit            = defCommand[struct{}, struct{}]("quit")
	cmdQueryVersion    = defCommand[struct{}, Version]("query-version")
	cmdQueryName       = defCommand[struct{}, NameInfo]("query-name")
	cmdQueryKvm        = defCommand[struct{}, KVMInfo]("query-kvm")
)

// QueryStatus returns the run state (query-status).
func (m *Monitor) QueryStatus(ctx context.Context) (*StatusInfo, error) {
	return cmdQueryStatus.ptr(ctx, m, nil)
}

// Stop pauses the guest's vCPUs (stop); QEMU sends STOP.
func (m *Monitor) Stop(ctx context.Context) error { return cmdStop.do(ctx, m, nil) }

// Cont resumes the guest (cont); QEMU sends RESUME.
func (m *Monitor) Cont(ctx context.Context) error { return cmdCont.do(ctx, m, nil) }

// SystemReset resets the machine (system_reset); QEMU sends RESET.
func (m *Monitor) SystemReset(ctx context.Context) error { return cmdSystemReset.do(ctx, m, nil) }

// SystemPowerdown asks the guest to power down (system_powerdown); QEMU
// sends POWERDOWN, and SHUTDOWN once the guest has done so.
func (m *Monitor) SystemPowerdown(ctx context.Context) error {
	return cmdSystemPowerdown.do(ctx, m, nil)
}

// Quit makes QEMU exit at once (quit). QEMU sends SHUTDOWN, replies, and
// closes the connection; when the connection was open and ends before the
// reply is read, that counts as success.
func (m *Monitor) Quit(ctx context.Context) error {
	if err := m.Err(); err != nil {
		return fmt.Errorf("qmp: quit failed: %w", err)
	}
	err := cmdQuit.do(ctx, m, nil)
	if err != nil && IsSocketClosed(err) {
		return nil
	}
	return err
}

// QueryVersion returns QEMU's version (query-version).
func (m *Monitor) QueryVersion(ctx context.Context) (*Version, error) {
	return cmdQueryVersion.ptr(ctx, m, nil)
}

// QueryName returns the guest's name (-name), if any (query-name).
func (m *Monitor) QueryName(ctx context.Context) (*NameInfo, error) {
	return cmdQueryName.ptr(ctx, m, nil)
}

// QueryKVM says whether KVM is present and in use (query-kvm). QEMU 11.1
// deprecates query-kvm in favour of query-accelerators.
func (m *Monitor) QueryKVM(ctx context.Context) (*KVMInfo, error) {
	return cmdQueryKvm.ptr(ctx, m, nil)
}
