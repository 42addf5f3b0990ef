package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// testSchema has the shapes of QEMU 7.2's query-qmp-schema (numbered type
// names, a flat union for blockdev-add, the BlockdevRef alternate, enums
// with "values" and "members", transaction's union of action wrappers).
const testSchema = `[
{"name": "device_del", "meta-type": "command", "arg-type": "1", "ret-type": "0"},
{"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "2"},
{"name": "blockdev-add", "meta-type": "command", "arg-type": "10", "ret-type": "0"},
{"name": "transaction", "meta-type": "command", "arg-type": "20", "ret-type": "0"},
{"name": "migrate-set-capabilities", "meta-type": "command", "arg-type": "30", "ret-type": "0"},
{"name": "STOP", "meta-type": "event", "arg-type": "0"},
{"name": "0", "meta-type": "object", "members": []},
{"name": "1", "meta-type": "object", "members": [{"name": "id", "type": "str"}]},
{"name": "2", "meta-type": "object", "members": [{"name": "status", "type": "str"}]},
{"name": "str", "meta-type": "builtin", "json-type": "string"},
{"name": "int", "meta-type": "builtin", "json-type": "int"},
{"name": "bool", "meta-type": "builtin", "json-type": "boolean"},
{"name": "10", "meta-type": "object", "tag": "driver",
 "members": [{"name": "driver", "type": "11"}, {"name": "node-name", "default": null, "type": "str"}, {"name": "discard", "default": null, "type": "12"}],
 "variants": [{"case": "qcow2", "type": "13"}, {"case": "null-co", "type": "14"}, {"case": "file", "type": "15"}]},
{"name": "11", "meta-type": "enum", "values": ["file", "null-co", "qcow2"], "members": [{"name": "file"}, {"name": "null-co"}, {"name": "qcow2"}]},
{"name": "12", "meta-type": "enum", "values": ["ignore", "unmap"]},
{"name": "13", "meta-type": "object", "members": [{"name": "file", "type": "16"}, {"name": "lazy-refcounts", "default": null, "type": "bool"}]},
{"name": "14", "meta-type": "object", "members": [{"name": "size", "default": null, "type": "int"}, {"name": "read-zeroes", "default": null, "type": "bool"}]},
{"name": "15", "meta-type": "object", "members": [{"name": "filename", "type": "str"}, {"name": "aio", "default": null, "type": "17"}]},
{"name": "16", "meta-type": "alternate", "members": [{"type": "10"}, {"type": "str"}]},
{"name": "17", "meta-type": "enum", "values": ["threads", "native", "io_uring"]},
{"name": "20", "meta-type": "object", "members": [{"name": "actions", "type": "[21]"}, {"name": "properties", "default": null, "type": "22"}]},
{"name": "[21]", "meta-type": "array", "element-type": "21"},
{"name": "21", "meta-type": "object", "tag": "type", "members": [{"name": "type", "type": "23"}],
 "variants": [{"case": "abort", "type": "24"}, {"case": "block-dirty-bitmap-add", "type": "25"}]},
{"name": "22", "meta-type": "object", "members": [{"name": "completion-mode", "default": null, "type": "26"}]},
{"name": "23", "meta-type": "enum", "values": ["abort", "block-dirty-bitmap-add"]},
{"name": "24", "meta-type": "object", "members": [{"name": "data", "type": "0"}]},
{"name": "25", "meta-type": "object", "members": [{"name": "data", "type": "27"}]},
{"name": "26", "meta-type": "enum", "values": ["individual", "grouped"]},
{"name": "27", "meta-type": "object", "members": [{"name": "node", "type": "str"}, {"name": "name", "type": "str"}, {"name": "persistent", "default": null, "type": "bool"}]},
{"name": "30", "meta-type": "object", "members": [{"name": "capabilities", "type": "[31]"}]},
{"name": "[31]", "meta-type": "array", "element-type": "31"},
{"name": "31", "meta-type": "object", "members": [{"name": "capability", "type": "str"}, {"name": "state", "type": "bool"}]}
]`

func testCompleter(t *testing.T) *completer {
	t.Helper()
	s, err := qmp.ParseSchema([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	return &completer{commands: []string{"blockdev-add", "device_del", "query-status", "quit", "transaction"}, schema: newArgSchema(s)}
}

// completeAt completes at the end of line.
func completeAt(c *completer, line string) (string, []string) {
	r := []rune(line)
	start, cands := c.complete(r, len(r))
	return string(r[:start]), cands
}

func TestCompleteQMP(t *testing.T) {
	c := testCompleter(t)
	trans := false
	c.inTrans = func() bool { return trans }
	for _, tc := range []struct {
		line, want string // want: the candidates joined by |
	}{
		{"", "blockdev-add |device_del |query-status |quit |transaction |transaction( "},
		{"qu", "query-status |quit "},
		{"device_del ", "id="},
		{"device_del id=x ", ""}, // given already
		{"nosuch ", ""},
		// All branches of the union until the discriminator is given.
		{"blockdev-add ", "discard=|driver=|file.|file=|filename=|aio=|lazy-refcounts=|node-name=|read-zeroes=|size="},
		{"blockdev-add driver=", "driver=file |driver=null-co |driver=qcow2 "},
		{"blockdev-add driver=q", "driver=qcow2 "},
		{"blockdev-add driver=null-co ", "discard=|node-name=|read-zeroes=|size="},
		{"blockdev-add driver=null-co read-zeroes=", "read-zeroes=false |read-zeroes=true "},
		{"blockdev-add driver=null-co discard=", "discard=ignore |discard=unmap "},
		{"blockdev-add driver=qcow2 ", "discard=|file.|file=|lazy-refcounts=|node-name="},
		// Dotted keys: into the alternate's object branch, narrowed by its own driver.
		{"blockdev-add driver=qcow2 file.", "file.discard=|file.driver=|file.file.|file.file=|file.filename=|file.aio=|file.lazy-refcounts=|file.node-name=|file.read-zeroes=|file.size="},
		{"blockdev-add driver=qcow2 file.driver=file file.", "file.aio=|file.discard=|file.filename=|file.node-name="},
		{"blockdev-add driver=qcow2 file.driver=file file.aio=", "file.aio=io_uring |file.aio=native |file.aio=threads "},
		{"blockdev-add driver=qcow2 file.driver=file file.f", "file.filename="},
		// An array of objects: no dotted keys into it.
		{"migrate-set-capabilities ", "capabilities="},
		{"transaction ", "actions=|properties."},
		{"transaction properties.completion-mode=", "properties.completion-mode=grouped |properties.completion-mode=individual "},
	} {
		_, cands := completeAt(c, tc.line)
		if got, want := sortJoined(strings.Join(cands, "|")), sortJoined(tc.want); got != want {
			t.Errorf("%q: candidates\n %q\nwant\n %q", tc.line, got, want)
		}
	}

	trans = true
	for line, want := range map[string]string{
		"":                                   "abort |block-dirty-bitmap-add |)",
		"block-dirty-bitmap-add ":            "name=|node=|persistent=",
		"block-dirty-bitmap-add node=":       "",
		"block-dirty-bitmap-add persistent=": "persistent=false |persistent=true ",
		"abort ":                             "",
	} {
		_, cands := completeAt(c, line)
		if got := strings.Join(cands, "|"); sortJoined(got) != sortJoined(want) {
			t.Errorf("in a transaction, %q: candidates %q, want %q", line, got, want)
		}
	}
}

// sortJoined sorts the |-separated words of s.
func sortJoined(s string) string {
	parts := strings.Split(s, "|")
	sort.Strings(parts)
	return strings.Join(parts, "|")
}

func TestCompleteStart(t *testing.T) {
	c := testCompleter(t)
	// The word replaced starts after the last space before the cursor.
	r := []rune("device_del id")
	start, cands := c.complete(r, 8) // cursor after "device_d"
	if start != 0 || strings.Join(cands, "|") != "device_del " {
		t.Fatalf("start %d, candidates %q", start, cands)
	}
	prefix, _ := completeAt(c, "blockdev-add driver=null-co si")
	if prefix != "blockdev-add driver=null-co " {
		t.Fatalf("prefix %q", prefix)
	}
}

func TestCompleteWithoutSchema(t *testing.T) {
	c := &completer{commands: []string{"stop", "cont"}}
	if _, cands := completeAt(c, "s"); strings.Join(cands, "|") != "stop " {
		t.Fatalf("command names: %q", cands)
	}
	if _, cands := completeAt(c, "device_del "); cands != nil {
		t.Fatalf("argument names without a schema: %q", cands)
	}
	c.inTrans = func() bool { return true }
	if _, cands := completeAt(c, "ab"); strings.Join(cands, "|") != "abort " {
		t.Fatalf("transaction actions without a schema (AllowedTransactionActions): %q", cands)
	}
}

func TestCompleteHMP(t *testing.T) {
	help := "announce_self [interfaces] [id] -- Trigger GARP/RARP announcements\r\n" +
		"block_job_cancel [-f] device -- stop an active background block operation (use -f\r\n" +
		"\t\t\t if you want to abort the operation immediately\r\n" +
		"cont|c  -- resume emulation\r\n" +
		"info [subcommand] -- show various information about the system state\r\n"
	helpInfo := "info balloon  -- show balloon information\r\n" +
		"info block [-n] [-v] [device] -- show info of one block device\r\n" +
		"info block-jobs  -- show progress of ongoing block device operations\r\n"
	c := &completer{hmp: true, hmpCommands: parseHMPHelp(help, false), hmpInfo: parseHMPHelp(helpInfo, true)}
	if got := strings.Join(c.hmpCommands, " "); got != "announce_self block_job_cancel c cont info" {
		t.Fatalf("HMP commands %q", got)
	}
	for line, want := range map[string]string{
		"co":         "cont ",
		"":           "announce_self |block_job_cancel |c |cont |info ",
		"info bl":    "block |block-jobs ",
		"info ":      "balloon |block |block-jobs ",
		"cont x":     "",
		"info block": "block |block-jobs ",
	} {
		if _, cands := completeAt(c, line); strings.Join(cands, "|") != want {
			t.Errorf("HMP %q: %q, want %q", line, strings.Join(cands, "|"), want)
		}
	}
}

// TestArgSchemaFanOut: a hostile schema whose union branches all lead to
// the same union, nine levels deep and sixteen wide (16^9 paths), is
// walked once per type: completion answers at once instead of for ever.
func TestArgSchemaFanOut(t *testing.T) {
	var es []map[string]any
	es = append(es, map[string]any{"name": "c", "meta-type": "command", "arg-type": "u0", "ret-type": "u0"},
		map[string]any{"name": "e", "meta-type": "enum", "values": []string{"a", "b"}},
		map[string]any{"name": "alt", "meta-type": "alternate", "members": []map[string]any{{"type": "e"}, {"type": "alt"}}})
	for i := 0; i < 9; i++ {
		var vs []map[string]any
		for k := 0; k < 16; k++ {
			vs = append(vs, map[string]any{"case": fmt.Sprintf("v%d", k), "type": fmt.Sprintf("u%d", i+1)})
		}
		es = append(es, map[string]any{"name": fmt.Sprintf("u%d", i), "meta-type": "object", "tag": "kind", "variants": vs,
			"members": []map[string]any{{"name": "kind", "type": "e"}, {"name": fmt.Sprintf("m%d", i), "type": "alt"}}})
	}
	es = append(es, map[string]any{"name": "u9", "meta-type": "object", "members": []map[string]any{{"name": "last", "type": "alt"}}})
	raw, _ := json.Marshal(es)
	s, err := qmp.ParseSchema(raw)
	if err != nil {
		t.Fatal(err)
	}
	a := &argSchema{s: s}
	done := make(chan []string, 1)
	go func() {
		done <- append(a.argNames("c", nil, map[string]string{}), a.values("c", "m0", map[string]string{})...)
	}()
	select {
	case got := <-done:
		if !slices.Contains(got, "last=") || !slices.Contains(got, "m8=") || !slices.Contains(got, "a") {
			t.Fatalf("completions = %q, want every level's member and the enum's values", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("completion on a fan-out schema did not finish in 10 s")
	}
}
