package qmp_test

// Scale benchmarks (issue: thousands of idle monitors, big structured
// replies). Figures are ratios against a baseline in the same run.
//
//	taskset -c 0 go test -run XXX -bench 'IdleMonitors|SchemaReply' -benchmem -count 5 .

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"

	qmp "github.com/0xef53/go-qmp/v2"
)

// idleServer accepts connections, greets each and answers every command
// with {"return": {}}, one goroutine per connection, holding as little as
// it can: its cost is what the raw baseline measures and subtracts. live
// counts the connections' goroutines.
func idleServer(b *testing.B) (path string, live *sync.WaitGroup) {
	live = new(sync.WaitGroup)
	path = b.TempDir() + "/idle.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	var mu sync.Mutex
	conns := map[net.Conn]bool{} // open ones only, closed at the end
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				mu.Lock()
				for c := range conns {
					c.Close()
				}
				mu.Unlock()
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			live.Add(1)
			go func() {
				defer live.Done()
				defer func() { mu.Lock(); delete(conns, c); mu.Unlock(); c.Close() }()
				c.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\r\n"))
				var buf [512]byte
				for {
					n, err := c.Read(buf[:])
					if err != nil {
						return
					}
					for _, ch := range buf[:n] {
						if ch == '}' { // every command here ends with one closing brace at its end
							if _, err := c.Write([]byte(`{"return": {}}` + "\r\n")); err != nil {
								return
							}
							break
						}
					}
				}
			}()
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return path, live
}

// inUse is the heap and stack in use after the garbage collector has run.
func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleMonitors opens 1,000 monitors on one server, runs a few small
// commands on each, and reports heap+stack per idle monitor (bytes/monitor),
// after subtracting the same figure for 1,000 raw connections to the same
// server (bytes/raw-conn, the server's and the socket's own cost).
func BenchmarkIdleMonitors(b *testing.B) {
	const n = 1000
	path, live := idleServer(b)
	for i := 0; i < b.N; i++ {
		base := inUse()
		raws := make([]net.Conn, n)
		for j := range raws {
			c, err := net.Dial("unix", path)
			if err != nil {
				b.Fatal(err)
			}
			br := bufio.NewReader(c)
			br.ReadSlice('\n')
			raws[j] = c
		}
		rawCost := float64(inUse()-base) / n
		for _, c := range raws {
			c.Close()
		}
		raws = nil
		live.Wait() // the server's goroutines for the raw connections have exited
		base = inUse()
		mons := make([]*qmp.Monitor, n)
		for j := range mons {
			m, err := qmp.Dial(context.Background(), "unix", path, nil)
			if err != nil {
				b.Fatal(err)
			}
			for k := 0; k < 3; k++ {
				if err := m.Run(qmp.Command{Name: "query-status"}, nil); err != nil {
					b.Fatal(err)
				}
			}
			mons[j] = m
		}
		monCost := float64(inUse()-base) / n
		b.ReportMetric(rawCost, "bytes/raw-conn")
		b.ReportMetric(monCost-rawCost, "bytes/monitor")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		for _, m := range mons {
			m.Close()
		}
	}
}

// schemaReply is query-qmp-schema's real 207 KB reply (QEMU 7.2) repeated
// to size: many small objects and short strings, the structure-heavy shape.
func schemaReply(b *testing.B, size int) []byte {
	schema, err := os.ReadFile("testdata/qmp-schema-7.2.json")
	if err != nil {
		b.Fatal(err)
	}
	schema = bytes.TrimSpace(schema)
	items := schema[1 : len(schema)-1] // the array's elements
	var out bytes.Buffer
	out.WriteString(`{"return": [`)
	for out.Len() < size {
		if out.Len() > len(`{"return": [`) {
			out.WriteString(", ")
		}
		out.Write(items)
	}
	out.WriteString("]}\r\n")
	if !json.Valid(bytes.TrimSpace(out.Bytes())) {
		b.Fatal("built an invalid reply")
	}
	return out.Bytes()
}

func BenchmarkSchemaReply(b *testing.B) {
	for _, size := range []int{1 << 20, 16 << 20} {
		reply := schemaReply(b, size)
		name := map[int]string{1 << 20: "1MiB", 16 << 20: "16MiB"}[size]
		b.Run("qmp/"+name, func(b *testing.B) {
			m := benchMonitor(b, reply)
			var res json.RawMessage
			b.SetBytes(int64(len(reply)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.Run(queryName, &res); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/"+name, func(b *testing.B) {
			c := newRawClient(b, reply)
			msg := []byte(`{"execute":"query-name"}`)
			b.SetBytes(int64(len(reply)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.write(b, msg)
				c.readLine(b)
			}
		})
	}
}
