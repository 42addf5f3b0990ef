package qmp

import (
	"os"
	"runtime"
	"testing"
)

// BenchmarkParseSchema72 parses QEMU 7.2's 207 KB schema and reports the
// heap the parsed model keeps (model-B).
func BenchmarkParseSchema72(b *testing.B) {
	raw, err := os.ReadFile("testdata/qmp-schema-7.2.json")
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := ParseSchema(raw)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	model := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ParseSchema(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(model, "model-B")
}

// BenchmarkSchemaLookup answers a path query through a union branch.
func BenchmarkSchemaLookup(b *testing.B) {
	s := parseSchema72(b)
	for i := 0; i < b.N; i++ {
		if !s.Has("blockdev-add.driver=file.aio=io_uring") {
			b.Fatal("no io_uring")
		}
	}
}

// BenchmarkNoteDeprecatedOff is the hook's cost on every command while no
// schema has been fetched (or no logger is set).
func BenchmarkNoteDeprecatedOff(b *testing.B) {
	m := &Monitor{}
	msg := []byte(`{"execute":"query-status"}`)
	for i := 0; i < b.N; i++ {
		m.noteDeprecated(msg)
	}
}
