package qmp

// Typed guest agent commands (qga/qapi-schema.json). All methods are safe
// for concurrent use, as RunContext is.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// agentCall runs command name with args (nil: none) and decodes its return
// into an R; errors name the command, as the typed Monitor methods do.
func agentCall[R any](ctx context.Context, a *Agent, name string, args interface{}) (R, error) {
	var r R
	if err := a.run(ctx, Command{Name: name, Arguments: args}, &r, false); err != nil {
		var zero R
		return zero, fmt.Errorf("qmp: %s failed: %w", name, err)
	}
	return r, nil
}

func agentDo(ctx context.Context, a *Agent, name string, args interface{}) error {
	if err := a.run(ctx, Command{Name: name, Arguments: args}, nil, false); err != nil {
		return fmt.Errorf("qmp: %s failed: %w", name, err)
	}
	return nil
}

func agentPtr[R any](ctx context.Context, a *Agent, name string, args interface{}) (*R, error) {
	return pointerTo(agentCall[R](ctx, a, name, args))
}

// GuestPing checks that the agent answers (guest-ping).
func (a *Agent) GuestPing(ctx context.Context) error {
	return agentDo(ctx, a, "guest-ping", nil)
}

// GuestAgentCommandInfo is one command in guest-info's reply.
type GuestAgentCommandInfo struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"` // false: disabled in this agent (-b, or frozen file systems)
	// SuccessResponse is false for the commands that do not reply on
	// success (guest-shutdown, guest-suspend-*).
	SuccessResponse bool `json:"success-response"`
}

// GuestAgentInfo is guest-info's reply.
type GuestAgentInfo struct {
	Version           string                  `json:"version"`
	SupportedCommands []GuestAgentCommandInfo `json:"supported_commands"`
}

// Enabled reports whether the agent has command name and it is enabled.
func (i *GuestAgentInfo) Enabled(name string) bool {
	for _, c := range i.SupportedCommands {
		if c.Name == name {
			return c.Enabled
		}
	}
	return false
}

// GuestInfo returns the agent's version and which commands it has and
// has enabled (guest-info).
func (a *Agent) GuestInfo(ctx context.Context) (*GuestAgentInfo, error) {
	return agentPtr[GuestAgentInfo](ctx, a, "guest-info", nil)
}

// GuestOSInfo is guest-get-osinfo's reply; every member is optional
// ("" when the guest did not say).
type GuestOSInfo struct {
	KernelRelease string `json:"kernel-release,omitempty"`
	KernelVersion string `json:"kernel-version,omitempty"`
	Machine       string `json:"machine,omitempty"`
	ID            string `json:"id,omitempty"`
	Name          string `json:"name,omitempty"`
	PrettyName    string `json:"pretty-name,omitempty"`
	Version       string `json:"version,omitempty"`
	VersionID     string `json:"version-id,omitempty"`
	Variant       string `json:"variant,omitempty"`
	VariantID     string `json:"variant-id,omitempty"`
}

// GuestGetOSInfo describes the guest's operating system (guest-get-osinfo).
func (a *Agent) GuestGetOSInfo(ctx context.Context) (*GuestOSInfo, error) {
	return agentPtr[GuestOSInfo](ctx, a, "guest-get-osinfo", nil)
}

// GuestGetHostName returns the guest's host name (guest-get-host-name).
func (a *Agent) GuestGetHostName(ctx context.Context) (string, error) {
	r, err := agentCall[struct {
		HostName string `json:"host-name"`
	}](ctx, a, "guest-get-host-name", nil)
	return r.HostName, err
}

// GuestGetTime returns the guest's clock (guest-get-time).
func (a *Agent) GuestGetTime(ctx context.Context) (time.Time, error) {
	ns, err := agentCall[int64](ctx, a, "guest-get-time", nil)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, ns), nil
}

// GuestTimezone is guest-get-timezone's reply.
type GuestTimezone struct {
	Zone   string `json:"zone,omitempty"`
	Offset int64  `json:"offset"` // seconds east of UTC
}

// GuestGetTimezone returns the guest's time zone (guest-get-timezone).
func (a *Agent) GuestGetTimezone(ctx context.Context) (*GuestTimezone, error) {
	return agentPtr[GuestTimezone](ctx, a, "guest-get-timezone", nil)
}

// GuestUser is one logged-in user in guest-get-users' reply.
type GuestUser struct {
	User      string  `json:"user"`
	Domain    string  `json:"domain,omitempty"` // Windows guests
	LoginTime float64 `json:"login-time"`       // seconds since the epoch
}

// GuestGetUsers lists the users logged in to the guest (guest-get-users).
func (a *Agent) GuestGetUsers(ctx context.Context) ([]GuestUser, error) {
	return agentCall[[]GuestUser](ctx, a, "guest-get-users", nil)
}

// GuestIPAddress is one address of a guest network interface.
type GuestIPAddress struct {
	Address string `json:"ip-address"`
	Type    string `json:"ip-address-type"` // "ipv4" or "ipv6"
	Prefix  int64  `json:"prefix"`
}

// GuestNetworkInterface is one interface in
// guest-network-get-interfaces' reply.
type GuestNetworkInterface struct {
	Name            string           `json:"name"`
	HardwareAddress string           `json:"hardware-address,omitempty"`
	IPAddresses     []GuestIPAddress `json:"ip-addresses,omitempty"`
}

// GuestNetworkGetInterfaces lists the guest's network interfaces and
// their addresses (guest-network-get-interfaces).
func (a *Agent) GuestNetworkGetInterfaces(ctx context.Context) ([]GuestNetworkInterface, error) {
	return agentCall[[]GuestNetworkInterface](ctx, a, "guest-network-get-interfaces", nil)
}

// GuestFilesystemInfo is one mounted file system in guest-get-fsinfo's
// reply. The disks behind it are left undecoded in Disk.
type GuestFilesystemInfo struct {
	Name       string  `json:"name"`
	Mountpoint string  `json:"mountpoint"`
	Type       string  `json:"type"`
	UsedBytes  *uint64 `json:"used-bytes,omitempty"`
	TotalBytes *uint64 `json:"total-bytes,omitempty"`
}

// GuestGetFSInfo lists the guest's mounted file systems (guest-get-fsinfo).
func (a *Agent) GuestGetFSInfo(ctx context.Context) ([]GuestFilesystemInfo, error) {
	return agentCall[[]GuestFilesystemInfo](ctx, a, "guest-get-fsinfo", nil)
}

// GuestFSFreezeStatus returns "thawed" or "frozen"
// (guest-fsfreeze-status).
func (a *Agent) GuestFSFreezeStatus(ctx context.Context) (string, error) {
	return agentCall[string](ctx, a, "guest-fsfreeze-status", nil)
}

// GuestExecArgs are guest-exec's arguments.
type GuestExecArgs struct {
	Path          string   `json:"path"` // the program, searched in the guest's PATH
	Arg           []string `json:"arg,omitempty"`
	Env           []string `json:"env,omitempty"`        // "NAME=value"
	InputData     []byte   `json:"input-data,omitempty"` // its stdin (sent base64-encoded)
	CaptureOutput bool     `json:"capture-output,omitempty"`
}

// GuestExec starts a program in the guest and returns its pid
// (guest-exec); GuestExecStatus, or ExecWait, follow it.
func (a *Agent) GuestExec(ctx context.Context, args GuestExecArgs) (int64, error) {
	r, err := agentCall[struct {
		PID int64 `json:"pid"`
	}](ctx, a, "guest-exec", &args)
	return r.PID, err
}

// GuestExecStatus is guest-exec-status's reply. Out and Err are decoded
// from base64.
type GuestExecStatus struct {
	Exited       bool   `json:"exited"`
	ExitCode     *int64 `json:"exitcode,omitempty"` // nil until exited, or when killed by a signal
	Signal       *int64 `json:"signal,omitempty"`
	OutData      []byte `json:"out-data,omitempty"`
	ErrData      []byte `json:"err-data,omitempty"`
	OutTruncated bool   `json:"out-truncated,omitempty"`
	ErrTruncated bool   `json:"err-truncated,omitempty"`
}

// GuestExecStatus returns the state of a program GuestExec started
// (guest-exec-status). Once it reports Exited, the agent forgets pid.
func (a *Agent) GuestExecStatus(ctx context.Context, pid int64) (*GuestExecStatus, error) {
	return agentPtr[GuestExecStatus](ctx, a, "guest-exec-status", map[string]int64{"pid": pid})
}

// ExecWait runs a program in the guest with its output captured, waits
// for it to exit (polling guest-exec-status, from every 10 ms up to every
// second), and returns its status. ctx bounds the wait; the program keeps
// running in the guest when ctx ends first.
func (a *Agent) ExecWait(ctx context.Context, args GuestExecArgs) (*GuestExecStatus, error) {
	args.CaptureOutput = true
	pid, err := a.GuestExec(ctx, args)
	if err != nil {
		return nil, err
	}
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		st, err := a.GuestExecStatus(ctx, pid)
		if err != nil || st.Exited {
			return st, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("qmp: waiting for guest process %d: %w", pid, ctx.Err())
		case <-t.C:
		}
	}
}

// GuestFileOpen opens a file in the guest and returns its handle
// (guest-file-open). mode is fopen's ("r", "w", "a", "r+", ...; "" for
// "r").
func (a *Agent) GuestFileOpen(ctx context.Context, path, mode string) (int64, error) {
	args := struct {
		Path string `json:"path"`
		Mode string `json:"mode,omitempty"`
	}{path, mode}
	return agentCall[int64](ctx, a, "guest-file-open", &args)
}

// GuestFileRead reads up to count bytes (0: the agent's default, 4 KiB)
// from an open file (guest-file-read); eof reports the end of the file.
func (a *Agent) GuestFileRead(ctx context.Context, handle int64, count int64) (data []byte, eof bool, err error) {
	args := struct {
		Handle int64 `json:"handle"`
		Count  int64 `json:"count,omitempty"`
	}{handle, count}
	r, err := agentCall[struct {
		Buf []byte `json:"buf-b64"`
		EOF bool   `json:"eof"`
	}](ctx, a, "guest-file-read", &args)
	return r.Buf, r.EOF, err
}

// GuestFileWrite writes data to an open file (guest-file-write) and
// returns how many bytes the agent wrote.
func (a *Agent) GuestFileWrite(ctx context.Context, handle int64, data []byte) (int64, error) {
	args := struct {
		Handle int64  `json:"handle"`
		Buf    string `json:"buf-b64"`
	}{handle, base64.StdEncoding.EncodeToString(data)}
	r, err := agentCall[struct {
		Count int64 `json:"count"`
	}](ctx, a, "guest-file-write", &args)
	return r.Count, err
}

// GuestFileClose closes an open file (guest-file-close).
func (a *Agent) GuestFileClose(ctx context.Context, handle int64) error {
	return agentDo(ctx, a, "guest-file-close", map[string]int64{"handle": handle})
}

// agentFileChunk is how much ReadFile and WriteFile move per command:
// well under what one reply may hold.
const agentFileChunk = 1 << 20

// ReadFile reads a whole file from the guest, in chunks, and closes it.
// max bounds what it reads (0: no bound); a longer file is an error.
func (a *Agent) ReadFile(ctx context.Context, path string, max int64) ([]byte, error) {
	h, err := a.GuestFileOpen(ctx, path, "r")
	if err != nil {
		return nil, err
	}
	var out []byte
	for {
		data, eof, err := a.GuestFileRead(ctx, h, agentFileChunk)
		if err != nil {
			a.GuestFileClose(context.WithoutCancel(ctx), h)
			return nil, err
		}
		out = append(out, data...)
		if max > 0 && int64(len(out)) > max {
			a.GuestFileClose(context.WithoutCancel(ctx), h)
			return nil, fmt.Errorf("qmp: guest file %s is larger than %d bytes", path, max)
		}
		if eof || len(data) == 0 {
			return out, a.GuestFileClose(ctx, h)
		}
	}
}

// WriteFile writes data to a file in the guest (created or truncated), in
// chunks, and closes it.
func (a *Agent) WriteFile(ctx context.Context, path string, data []byte) error {
	h, err := a.GuestFileOpen(ctx, path, "w")
	if err != nil {
		return err
	}
	for len(data) > 0 {
		n, err := a.GuestFileWrite(ctx, h, data[:min(len(data), agentFileChunk)])
		if err == nil && (n <= 0 || n > int64(min(len(data), agentFileChunk))) {
			err = fmt.Errorf("qmp: guest-file-write of %s reported %d bytes written of %d sent: %w", path, n, min(len(data), agentFileChunk), io.ErrShortWrite)
		}
		if err != nil {
			a.GuestFileClose(context.WithoutCancel(ctx), h)
			return err
		}
		data = data[n:]
	}
	return a.GuestFileClose(ctx, h)
}

// GuestShutdown asks the guest to shut down (guest-shutdown); mode is
// "powerdown" (""), "halt" or "reboot". The agent does not answer when it
// succeeds (the guest goes away): GuestShutdown returns nil once
// AgentOptions.NoReplyWait has passed without an error reply, and the
// next command synchronises first.
func (a *Agent) GuestShutdown(ctx context.Context, mode string) error {
	args := struct {
		Mode string `json:"mode,omitempty"`
	}{mode}
	if err := a.run(ctx, Command{Name: "guest-shutdown", Arguments: &args}, nil, true); err != nil {
		return fmt.Errorf("qmp: guest-shutdown failed: %w", err)
	}
	return nil
}

// GuestFSTrim discards unused blocks of the guest's file systems
// (guest-fstrim); minimum is the smallest free range to discard, in bytes
// (0: every range). The agent's per-path result is returned undecoded.
func (a *Agent) GuestFSTrim(ctx context.Context, minimum int64) (json.RawMessage, error) {
	args := struct {
		Minimum int64 `json:"minimum,omitempty"`
	}{minimum}
	return agentCall[json.RawMessage](ctx, a, "guest-fstrim", &args)
}

// GuestSetUserPassword sets a guest user's password
// (guest-set-user-password); crypted says password is already crypt(3)
// encrypted. The password is sent base64-encoded, as the agent wants, and
// never logged.
func (a *Agent) GuestSetUserPassword(ctx context.Context, user, password string, crypted bool) error {
	args := struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Crypted  bool   `json:"crypted"`
	}{user, base64.StdEncoding.EncodeToString([]byte(password)), crypted}
	return agentDo(ctx, a, "guest-set-user-password", &args)
}

// GuestSuspend suspends the guest (guest-suspend-disk, -ram or -hybrid,
// by mode "disk", "ram" or "hybrid"). As with GuestShutdown, the agent
// does not answer on success: it returns nil once NoReplyWait has passed
// without a refusal.
func (a *Agent) GuestSuspend(ctx context.Context, mode string) error {
	switch mode {
	case "disk", "ram", "hybrid":
	default:
		return &CommandError{Reason: fmt.Sprintf("suspend mode %q is not disk, ram or hybrid", mode)}
	}
	name := "guest-suspend-" + mode
	if err := a.run(ctx, Command{Name: name}, nil, true); err != nil {
		return fmt.Errorf("qmp: %s failed: %w", name, err)
	}
	return nil
}

// GuestLogicalProcessor is one vCPU in guest-get-vcpus' reply.
type GuestLogicalProcessor struct {
	LogicalID  int64 `json:"logical-id"`
	Online     bool  `json:"online"`
	CanOffline *bool `json:"can-offline,omitempty"`
}

// GuestGetVCPUs lists the guest's vCPUs and whether they are online
// (guest-get-vcpus).
func (a *Agent) GuestGetVCPUs(ctx context.Context) ([]GuestLogicalProcessor, error) {
	return agentCall[[]GuestLogicalProcessor](ctx, a, "guest-get-vcpus", nil)
}

// GuestMemoryBlock is one memory block in guest-get-memory-blocks' reply.
type GuestMemoryBlock struct {
	PhysIndex  uint64 `json:"phys-index"`
	Online     bool   `json:"online"`
	CanOffline *bool  `json:"can-offline,omitempty"`
}

// GuestGetMemoryBlocks lists the guest's memory blocks
// (guest-get-memory-blocks).
func (a *Agent) GuestGetMemoryBlocks(ctx context.Context) ([]GuestMemoryBlock, error) {
	return agentCall[[]GuestMemoryBlock](ctx, a, "guest-get-memory-blocks", nil)
}

// GuestDiskInfo is one disk in guest-get-disks' reply (QEMU 5.2 and
// later); the bus address and SMART data are left undecoded in Address.
type GuestDiskInfo struct {
	Name         string          `json:"name"`
	Partition    bool            `json:"partition"`
	Dependencies []string        `json:"dependencies,omitempty"`
	Alias        string          `json:"alias,omitempty"`
	Address      json.RawMessage `json:"address,omitempty"`
}

// GuestGetDisks lists the guest's disks and partitions (guest-get-disks).
func (a *Agent) GuestGetDisks(ctx context.Context) ([]GuestDiskInfo, error) {
	return agentCall[[]GuestDiskInfo](ctx, a, "guest-get-disks", nil)
}

// GuestSSHGetAuthorizedKeys returns a guest user's authorized SSH keys
// (guest-ssh-get-authorized-keys, QEMU 5.2 and later).
func (a *Agent) GuestSSHGetAuthorizedKeys(ctx context.Context, user string) ([]string, error) {
	r, err := agentCall[struct {
		Keys []string `json:"keys"`
	}](ctx, a, "guest-ssh-get-authorized-keys", map[string]string{"username": user})
	return r.Keys, err
}

// GuestSSHAddAuthorizedKeys adds SSH keys to a guest user's authorized
// keys, replacing them all when reset is set
// (guest-ssh-add-authorized-keys).
func (a *Agent) GuestSSHAddAuthorizedKeys(ctx context.Context, user string, keys []string, reset bool) error {
	args := struct {
		Username string   `json:"username"`
		Keys     []string `json:"keys"`
		Reset    bool     `json:"reset,omitempty"`
	}{user, keys, reset}
	return agentDo(ctx, a, "guest-ssh-add-authorized-keys", &args)
}

// GuestSSHRemoveAuthorizedKeys removes SSH keys from a guest user's
// authorized keys (guest-ssh-remove-authorized-keys).
func (a *Agent) GuestSSHRemoveAuthorizedKeys(ctx context.Context, user string, keys []string) error {
	args := struct {
		Username string   `json:"username"`
		Keys     []string `json:"keys"`
	}{user, keys}
	return agentDo(ctx, a, "guest-ssh-remove-authorized-keys", &args)
}
