package qmp

// Typed commands: display. All methods are safe for concurrent use, as
// Run is.

import "context"

// VNCInfo is query-vnc's reply.
type VNCInfo struct {
	Enabled bool            `json:"enabled"`
	Host    *string         `json:"host,omitempty"`
	Family  *string         `json:"family,omitempty"` // "ipv4", "ipv6", "unix", ...
	Service *string         `json:"service,omitempty"`
	Auth    *string         `json:"auth,omitempty"`
	Clients []VNCClientInfo `json:"clients,omitempty"`
}

// VNCClientInfo is one connected VNC client.
type VNCClientInfo struct {
	Host         string  `json:"host"`
	Service      string  `json:"service"`
	Family       string  `json:"family"`
	Websocket    bool    `json:"websocket"`
	X509DName    *string `json:"x509_dname,omitempty"`
	SASLUsername *string `json:"sasl_username,omitempty"`
}

// ScreendumpArgs are screendump's arguments.
type ScreendumpArgs struct {
	Filename string `json:"filename"`
	Device   string `json:"device,omitempty"` // a display device's qdev id; default the primary console
	Head     *int64 `json:"head,omitempty"`
	Format   string `json:"format,omitempty"` // "ppm" (default) or "png"; QEMU 7.1 and later
}

type passwordArgs struct {
	Password string `json:"password"`
}

var (
	cmdQueryVnc          = defCommand[struct{}, VNCInfo]("query-vnc")
	cmdChangeVncPassword = defCommand[passwordArgs, struct{}]("change-vnc-password")
	cmdScreendump        = defCommand[ScreendumpArgs, struct{}]("screendump")
)

// QueryVNC describes the VNC server (query-vnc).
func (m *Monitor) QueryVNC(ctx context.Context) (*VNCInfo, error) {
	return cmdQueryVnc.ptr(ctx, m, nil)
}

// ChangeVNCPassword sets the VNC password (change-vnc-password).
func (m *Monitor) ChangeVNCPassword(ctx context.Context, password string) error {
	return cmdChangeVncPassword.do(ctx, m, &passwordArgs{Password: password})
}

// Screendump writes the screen to a file on QEMU's host (screendump).
func (m *Monitor) Screendump(ctx context.Context, args ScreendumpArgs) error {
	return cmdScreendump.do(ctx, m, &args)
}
