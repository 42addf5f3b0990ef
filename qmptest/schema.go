package qmptest

import (
	_ "embed"
	"encoding/json"
)

// QEMU72Schema is query-qmp-schema's reply recorded from a real QEMU 7.2
// (Debian's 1:7.2+dfsg-7, qemu-system-x86_64), for Config.Schema: tests of
// code that reads the live schema see what that QEMU would answer. Treat
// it as read-only.
//
//go:embed schema-7.2.json
var QEMU72Schema json.RawMessage
