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

func readmeTyped(mon *qmp.Monitor) error {
	ctx := context.Background()
	if err := mon.BlockdevAdd(ctx, qmp.BlockdevOptions{Driver: "file", NodeName: "disk0",
		Props: qmp.BlockdevOptionsFile{Filename: "/var/lib/vm/disk.raw", AIO: "io_uring"}}); err != nil {
		return err
	}
	if err := mon.DeviceAdd(ctx, qmp.DeviceAddArgs{Driver: "virtio-blk-pci", ID: "vd0",
		Props: map[string]any{"drive": "disk0"}}); err != nil {
		return err
	}

	cur := mon.EventCursor() // before the command whose outcome you wait for
	args := qmp.BlockdevMirrorArgs{JobID: "m0", Device: "disk0", Target: "copy0", Sync: "full"}
	if err := mon.BlockdevMirror(ctx, args); err != nil {
		return err
	}
	if _, err := mon.WaitBlockJobReady(ctx, "m0", cur); err != nil {
		return err // a *qmp.JobEndedError if it ended first
	}
	if err := mon.BlockJobComplete(ctx, "m0"); err != nil {
		return err
	}
	res, err := mon.WaitBlockJob(ctx, "m0", cur) // res.Status == "completed"
	if err != nil {
		return err
	}

	// Ask the running QEMU, not its version number (fetched once per connection).
	schema, err := mon.Schema(ctx)
	if err != nil {
		return err
	}
	uring := schema.Has("blockdev-add.driver=file.aio=io_uring")
	_, err = schema.Lookup("drive-backup#deprecated") // nil from QEMU 6.2 on, which deprecates it
	fmt.Println(res.Status, uring, err)
	return nil
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
	if !strings.Contains(string(self), "func readmeTyped(mon *qmp.Monitor) error {\n"+indented.String()+"}") {
		t.Errorf("README's typed snippet differs from readmeTyped:\n%s", snippet)
	}
	_ = readmeTyped
}
