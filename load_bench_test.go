package qmp_test

// Load benchmarks: how a monitor's latency depends on the rest of the
// process (a CPU-bound goroutine, a thousand other busy monitors, an event
// flood on its own connection). Each reports its figure beside a baseline
// measured in the same run:
//
//	taskset -c 0 go test -run XXX -bench 'BusyProcess|BusyMonitors|FloodLatency|HandoffFloor' -count 5 .

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// timeSlice is how long the Go scheduler lets a goroutine run before
// preempting it for others (runtime's forcePreemptNS).
const timeSlice = 10 * time.Millisecond

// BenchmarkBusyProcess runs sequential commands with GOMAXPROCS=1, with and
// without one CPU-bound goroutine in the process. With it, every hand-off
// to a goroutine that is not runnable at once (the server, the reader, the
// caller) waits for the busy goroutine's time slice, so slices/op counts
// those hand-offs: the library's must be the raw client's.
func BenchmarkBusyProcess(b *testing.B) {
	for _, busy := range []bool{false, true} {
		name := map[bool]string{false: "idle", true: "busy"}[busy]
		b.Run("qmp/"+name, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			m := benchMonitor(b, smallReply)
			defer spin(busy)()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.Run(queryName, nil); err != nil {
					b.Fatal(err)
				}
			}
			reportSlices(b)
		})
		b.Run("raw/"+name, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			c := newRawClient(b, smallReply)
			msg := []byte(`{"execute":"query-name"}`)
			defer spin(busy)()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.write(b, msg)
				c.readLine(b)
			}
			reportSlices(b)
		})
	}
}

// spin starts a CPU-bound goroutine when on, and returns its stop.
func spin(on bool) (stop func()) {
	if !on {
		return func() {}
	}
	var halt atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; !halt.Load(); n++ {
		}
	}()
	return func() { halt.Store(true); <-done }
}

func reportSlices(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(timeSlice), "slices/op")
}

// multiServer is benchServer for any number of connections.
func multiServer(b *testing.B, reply []byte) string {
	path := b.TempDir() + "/m.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	serveEach(b, ln, func(c net.Conn, _ func(net.Conn), _ func(func())) { serveBench(c, reply) })
	return path
}

// BenchmarkBusyMonitors holds 1,000 monitors with 4 goroutines each, all
// issuing commands at a fixed total rate, and reports their median and
// 99th-percentile latency beside one monitor with 4 goroutines carrying the
// same total rate alone, and beside one monitor carrying the same 4,000
// goroutines (the same arrivals, on one connection). The raw/ runs are the
// baseline for what the load itself does to latency: one raw connection
// per goroutine (4, then 4,000), paced the same way. b.N is the number of
// commands of each run.
func BenchmarkBusyMonitors(b *testing.B) {
	for _, monitors := range []int{1, 1000} {
		b.Run(fmt.Sprintf("qmp/monitors=%d", monitors), func(b *testing.B) {
			path := multiServer(b, smallReply)
			mons := make([]*qmp.Monitor, monitors)
			for i := range mons {
				m, err := qmp.Dial(context.Background(), "unix", path, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				mons[i] = m
			}
			paced(b, 4*monitors, func(w int) error { return mons[w%monitors].Run(queryName, nil) })
		})
		b.Run(fmt.Sprintf("qmp/one-monitor-workers=%d", 4*monitors), func(b *testing.B) {
			path := multiServer(b, smallReply)
			m, err := qmp.Dial(context.Background(), "unix", path, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			paced(b, 4*monitors, func(w int) error { return m.Run(queryName, nil) })
		})
		b.Run(fmt.Sprintf("raw/conns=%d", 4*monitors), func(b *testing.B) {
			path := multiServer(b, smallReply)
			cs := make([]*rawClient, 4*monitors)
			for i := range cs {
				conn, err := net.Dial("unix", path)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				cs[i] = &rawClient{conn: conn, r: bufio.NewReader(conn)}
				cs[i].readLine(b)
			}
			msg := []byte(`{"execute":"query-name"}`)
			paced(b, len(cs), func(w int) error {
				if _, err := cs[w].conn.Write(msg); err != nil {
					return err
				}
				_, err := cs[w].r.ReadSlice('\n')
				return err
			})
		})
	}
}

// paced runs b.N calls of op, shared among workers goroutines that together
// start one every 50 µs (20,000 a second), and reports their latency.
func paced(b *testing.B, workers int, op func(worker int) error) {
	const rate = 20000
	per := (b.N + workers - 1) / workers
	interval := time.Duration(workers) * time.Second / rate
	lat := make([][]time.Duration, workers)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := interval * time.Duration(w) / time.Duration(workers)
			for k := 0; k < per; k++ {
				time.Sleep(time.Until(start.Add(offset + interval*time.Duration(k)))) // pacing, not synchronisation
				t0 := time.Now()
				if err := op(w); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportLatency(b, lat, "")
}

// reportLatency reports the median and 99th percentile of all samples.
func reportLatency(b *testing.B, lat [][]time.Duration, prefix string) time.Duration {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		b.Fatal("no latency samples")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	p50, p99 := all[len(all)/2], all[len(all)*99/100]
	b.ReportMetric(float64(p50.Nanoseconds()), prefix+"p50-ns")
	b.ReportMetric(float64(p99.Nanoseconds()), prefix+"p99-ns")
	return p50
}

// BenchmarkFloodLatency runs commands on 64 goroutines, first on a quiet
// connection, then while the server sends 1,000,000 events on the same
// connection, and reports both median latencies and their ratio. The
// server (floodServer) writes replies before events whenever both are due,
// so what a reply waits behind is only what is already in the socket. It
// runs one experiment per iteration: use -benchtime 1x.
func BenchmarkFloodLatency(b *testing.B) {
	const total = 1_000_000
	for i := 0; i < b.N; i++ {
		path, flood := floodServer(b, total)
		m, err := qmp.Dial(context.Background(), "unix", path, &qmp.Options{EventHistory: 5000})
		if err != nil {
			b.Fatal(err)
		}
		run := func(stop <-chan struct{}) [][]time.Duration {
			lat := make([][]time.Duration, 64)
			var wg sync.WaitGroup
			for w := range lat {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						t0 := time.Now()
						if err := m.Run(queryName, nil); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			return lat
		}
		quiet := make(chan struct{})
		time.AfterFunc(500*time.Millisecond, func() { close(quiet) })
		q := reportLatency(b, run(quiet), "quiet-")

		cur := m.EventCursor()
		flooded := make(chan struct{})
		go func() {
			defer close(flooded)
			if _, err := m.WaitEventAfter(ctxT(b, time.Minute), cur+total-1, qmp.EventFilter{}); err != nil {
				b.Error(err)
			}
		}()
		close(flood)
		f := reportLatency(b, run(flooded), "flood-")
		b.ReportMetric(float64(f)/float64(q), "flood/quiet")
		m.Close()
	}
}

// floodServer answers every command with smallReply and, once the returned
// channel is closed, sends total events in writes of 100 events, giving
// replies precedence: one goroutine writes, and it writes every reply due
// before the next 100 events.
func floodServer(b *testing.B, total int) (string, chan struct{}) {
	path := b.TempDir() + "/f.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	start := make(chan struct{})
	done := make(chan struct{})
	b.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		ev := `{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "FLOOD", "data": {"i": 1}}` + "\r\n"
		events := []byte(strings.Repeat(ev, 100))
		replies := make(chan int, 1024)
		go func() { // the reader: counts the commands in what it reads
			defer close(replies)
			buf := make([]byte, 1<<16)
			var ends commandEnds
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				due := ends.count(buf[:n])
				replies <- due
			}
		}()
		conn.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\r\n"))
		out := make([]byte, 0, 1<<16)
		startC, on, sent := start, false, 0
		for {
			var due int
			var ok bool
			if on && sent < total {
				select {
				case due, ok = <-replies:
				default:
					if _, err := conn.Write(events); err != nil {
						return
					}
					sent += 100
					continue
				}
			} else {
				select {
				case due, ok = <-replies:
				case <-startC:
					startC, on = nil, true
					continue
				}
			}
			if !ok {
				return
			}
			out = out[:0]
			for ; due > 0; due-- {
				out = append(out, smallReply...)
			}
			if _, err := conn.Write(out); err != nil {
				return
			}
		}
	}()
	return path, start
}

// BenchmarkHandoffFloor is the least a goroutine-per-caller client pays per
// reply beyond the socket: one goroutine wakes another through a channel,
// as the reader wakes a caller. It bounds what pipelining on one CPU can
// reach (compare RunConcurrent/G=64 with it, not with RawPipelined, whose
// one goroutine reads every reply itself).
func BenchmarkHandoffFloor(b *testing.B) {
	req := make(chan chan struct{})
	go func() {
		for done := range req {
			close(done)
		}
	}()
	defer close(req)
	for i := 0; i < b.N; i++ {
		done := make(chan struct{})
		req <- done
		<-done
	}
}
