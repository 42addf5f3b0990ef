package qmp_test

// Command benchmarks. Each runs the library and a library-free raw-socket
// client against the same server in the same run, so the figures to quote
// are the ratios (library ns/op ÷ raw ns/op), not the absolute times. The
// server is benchServer, which allocates nothing per command, so allocs/op
// are the client's own. Pin to one CPU for repeatable ratios:
//
//	taskset -c 0 go test -run XXX -bench 'Run|Raw' -benchmem .

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	qmp "github.com/0xef53/go-qmp/v2"
)

// benchServer is a minimal QMP responder: it greets, then answers every
// top-level JSON object it reads with reply. Replies to commands read
// together go out in one write, as a pipelining server's would.
func benchServer(b *testing.B, reply []byte) string {
	path := b.TempDir() + "/b.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	conns := make(chan net.Conn, 1)
	done := make(chan struct{})
	b.Cleanup(func() {
		ln.Close()
		select {
		case c := <-conns:
			c.Close()
		default:
		}
		<-done
	})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		conns <- conn
		serveBench(conn, reply)
	}()
	return path
}

func serveBench(conn net.Conn, reply []byte) {
	w := bufio.NewWriterSize(conn, 1<<16)
	w.WriteString(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}` + "\r\n")
	w.Flush()
	buf := make([]byte, 1<<16)
	var ends commandEnds
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		for due := ends.count(buf[:n]); due > 0; due-- {
			w.Write(reply)
		}
		if w.Flush() != nil {
			return
		}
	}
}

// commandEnds counts the top-level JSON objects that end in a stream read
// piece by piece.
type commandEnds struct {
	depth      int
	inStr, esc bool
}

func (e *commandEnds) count(b []byte) (ends int) {
	for _, c := range b {
		switch {
		case e.esc:
			e.esc = false
		case e.inStr && c == '\\':
			e.esc = true
		case c == '"':
			e.inStr = !e.inStr
		case e.inStr:
		case c == '{':
			e.depth++
		case c == '}':
			if e.depth--; e.depth == 0 {
				ends++
			}
		}
	}
	return ends
}

var smallReply = []byte(`{"return": {"name": "bench"}}` + "\r\n")

func benchMonitor(b *testing.B, reply []byte) *qmp.Monitor {
	m, err := qmp.Dial(context.Background(), "unix", benchServer(b, reply), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// rawClient is the baseline: the least a client can do per command (write
// the bytes, read one line), with no routing or decoding.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func newRawClient(b *testing.B, reply []byte) *rawClient {
	conn, err := net.Dial("unix", benchServer(b, reply))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
	c.readLine(b) // greeting
	c.write(b, []byte(`{"execute":"qmp_capabilities"}`))
	c.readLine(b)
	return c
}

func (c *rawClient) write(b *testing.B, msg []byte) {
	if _, err := c.conn.Write(msg); err != nil {
		b.Fatal(err)
	}
}

func (c *rawClient) readLine(b *testing.B) {
	for {
		_, err := c.r.ReadSlice('\n')
		if err == nil {
			return
		}
		if err != bufio.ErrBufferFull {
			b.Fatal(err)
		}
	}
}

// queryName is boxed once, so that allocs/op counts the library's own
// allocations and not the conversion of a Command to interface{}.
var queryName interface{} = qmp.Command{Name: "query-name"}

func BenchmarkRunSequential(b *testing.B) {
	m := benchMonitor(b, smallReply)
	var res struct {
		Name string `json:"name"`
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Run(queryName, &res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawSequential(b *testing.B) {
	c := newRawClient(b, smallReply)
	msg := []byte(`{"execute":"query-name"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.write(b, msg)
		c.readLine(b)
	}
}

// BenchmarkRawReaderGoroutine is the raw client in the shape every
// goroutine-per-caller client has: one goroutine reads each line and hands
// it to the waiting caller through a channel. It is the floor for Run.
func BenchmarkRawReaderGoroutine(b *testing.B) {
	c := newRawClient(b, smallReply)
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		for {
			if _, err := c.r.ReadSlice('\n'); err != nil {
				return
			}
			lines <- struct{}{}
		}
	}()
	msg := []byte(`{"execute":"query-name"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.write(b, msg)
		<-lines
	}
	b.StopTimer()
	c.conn.Close()
	for range lines {
	}
}

// BenchmarkRunConcurrent shares b.N commands among G goroutines.
func BenchmarkRunConcurrent(b *testing.B) {
	for _, g := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("G=%d", g), func(b *testing.B) {
			m := benchMonitor(b, smallReply)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < g; w++ {
				n := b.N / g
				if w < b.N%g {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n; i++ {
						if err := m.Run(queryName, nil); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkRawPipelined keeps W commands in flight on a raw socket: the
// best pipelining the server allows.
func BenchmarkRawPipelined(b *testing.B) {
	for _, w := range []int{8, 64} {
		b.Run(fmt.Sprintf("W=%d", w), func(b *testing.B) {
			c := newRawClient(b, smallReply)
			batch := bytes.Repeat([]byte(`{"execute":"query-name"}`), w)
			b.ResetTimer()
			for i := 0; i < b.N; i += w {
				c.write(b, batch)
				for j := 0; j < w; j++ {
					c.readLine(b)
				}
			}
		})
	}
}

// largeReply is a 1 MiB reply, mostly one long string as in query-qmp-schema.
var largeReply = []byte(`{"return": "` + strings.Repeat("x", 1<<20) + `"}` + "\r\n")

func BenchmarkRunLargeReply(b *testing.B) {
	m := benchMonitor(b, largeReply)
	var res json.RawMessage
	b.SetBytes(int64(len(largeReply)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Run(queryName, &res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawLargeReply(b *testing.B) {
	c := newRawClient(b, largeReply)
	msg := []byte(`{"execute":"query-name"}`)
	b.SetBytes(int64(len(largeReply)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.write(b, msg)
		c.readLine(b)
	}
}
