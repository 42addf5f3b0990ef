package qmp_test

// README's "Typed commands and the live schema" snippet, compiled: the
// body of readmeTyped is the snippet verbatim (one tab deeper).

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	qmp "github.com/0xef53/go-qmp/v2"
)

func readmeTyped(mon *qmp.Monitor) {
	ctx := context.Background()
	err := mon.BlockdevAdd(ctx, qmp.BlockdevOptions{Driver: "file", NodeName: "disk0",
		Options: qmp.BlockdevOptionsFile{Filename: "/var/lib/vm/disk.raw", AIO: "io_uring"}})
	id := "vd0"
	err = mon.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "virtio-blk-pci", ID: &id,
		Props: map[string]any{"drive": "disk0"}})

	cur := mon.EventCursor() // before the command whose outcome you wait for
	err = mon.BlockdevMirror(ctx, qmp.BlockdevMirrorArgs{JobID: "m0", Device: "disk0", Target: "copy0", Sync: "full"})
	_, err = mon.WaitBlockJobReady(ctx, "m0", cur)
	err = mon.BlockJobComplete(ctx, "m0")
	res, err := mon.WaitBlockJob(ctx, "m0", cur) // res.Status == "completed"

	// Ask the running QEMU, not its version number (fetched once per connection).
	schema, err := mon.Schema(ctx)
	uring := schema.Has("blockdev-add.driver=file.aio=io_uring")
	_, err = schema.Lookup("drive-backup#deprecated") // nil: 7.2 deprecates it
	fmt.Println(res.Status, uring, err)
}

func TestReadmeTypedSnippet(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("readme_typed_test.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	const section = "## Typed commands and the live schema\n"
	i := strings.Index(text, section)
	if i < 0 {
		t.Fatal("README has no typed-commands section")
	}
	rest := text[i+len(section):]
	rest = rest[:strings.Index(rest, "\n## ")]
	b := strings.Split(rest, "```go\n")
	if len(b) != 2 {
		t.Fatalf("the section has %d Go snippets, want 1", len(b)-1)
	}
	snippet := b[1][:strings.Index(b[1], "```")]
	var indented strings.Builder
	for _, line := range strings.SplitAfter(snippet, "\n") {
		if strings.TrimSpace(line) != "" {
			indented.WriteString("\t")
		}
		indented.WriteString(line)
	}
	if !strings.Contains(string(self), "func readmeTyped(mon *qmp.Monitor) {\n"+indented.String()+"}") {
		t.Errorf("README's typed snippet differs from readmeTyped:\n%s", snippet)
	}
	_ = readmeTyped
}
