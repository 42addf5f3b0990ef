//go:build unix

package qmp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
)

// socketPair returns the two ends of a connected unix stream socket.
func socketPair(t testing.TB) (net.Conn, net.Conn) {
	syscall.ForkLock.RLock() // close-on-exec before any fork can see them (no SOCK_CLOEXEC on darwin)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// scriptedServer plays QMP on conn, taking one byte of script per command
// to decide how to answer it, and closes conn when the script runs out.
func scriptedServer(conn net.Conn, script []byte) {
	defer conn.Close()
	conn.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\r\n"))
	dec := json.NewDecoder(conn)
	var first struct{}
	if dec.Decode(&first) != nil {
		return
	}
	conn.Write([]byte(`{"return": {}}` + "\r\n"))
	for _, op := range script {
		var cmd struct {
			Arguments struct {
				N int `json:"n"`
			} `json:"arguments"`
		}
		if dec.Decode(&cmd) != nil {
			return
		}
		n := cmd.Arguments.N
		reply := fmt.Sprintf(`{"return": {"n": %d}}`+"\r\n", n)
		switch op % 10 {
		case 3: // a reply no command can own (a forged or late OOB reply): dropped
			reply = fmt.Sprintf(`{"return": {"n": -%d}, "id": "oob-%d"}`+"\r\n", n, n) + reply
		case 4:
			reply = fmt.Sprintf(`{"timestamp": {"seconds": %d, "microseconds": 0}, "event": "E", "data": {"n": %d}}`+"\r\n", n, n) + reply
		case 5:
			reply = fmt.Sprintf(`{"error": {"class": "GenericError", "desc": "failed %d"}}`+"\r\n", n)
		case 6:
			reply = `{"return": {"n": ` + string(rune('a'+op%26)) + "}}\r\n" + reply // garbage: ends the connection
		case 7:
			return // QEMU went away
		case 8:
			reply = `{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}` + "\r\n" + reply
		case 9:
			// split the reply at a byte the script picks
			k := int(op) % len(reply)
			conn.Write([]byte(reply[:k]))
			reply = reply[k:]
		}
		if _, err := conn.Write([]byte(reply)); err != nil {
			return
		}
	}
}

// FuzzConnection drives a whole monitor against a server whose answers
// the fuzzer scripts (replies, events, errors, replies with ids no
// command carried, garbage, id-less parse errors, split writes,
// disconnects), with concurrent callers: no panic,
// every call returns, none gets another caller's reply, and nothing is
// left running (TestMain's leak check).
func FuzzConnection(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 9, 19, 29})
	f.Add([]byte{0, 4, 4, 6, 0})
	f.Add([]byte{0, 8, 0, 0})
	f.Add([]byte{1, 2, 7})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 64 {
			script = script[:64]
		}
		client, server := socketPair(t)
		served := make(chan struct{})
		go func() { defer close(served); scriptedServer(server, script) }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, err := qmp.NewMonitorConn(ctx, client, nil)
		if err != nil {
			<-served
			return
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					n := g*100 + i + 1
					var got struct{ N int }
					err := m.RunContext(ctx, qmp.Command{Name: "echo", Arguments: map[string]int{"n": n}}, &got)
					var ge *qmp.GenericError
					switch {
					case err == nil:
						if got.N != n {
							t.Errorf("echo n=%d got the reply for n=%d", n, got.N)
						}
					case errors.As(err, &ge):
						if ge.Desc != fmt.Sprintf("failed %d", n) {
							t.Errorf("echo n=%d got error %q", n, ge.Desc)
						}
					case qmp.IsSocketClosed(err):
						return
					default:
						t.Errorf("echo n=%d: %v", n, err)
						return
					}
				}
			}(g)
		}
		waitAll(t, &wg, 10*time.Second) // on a hang, the fuzzer keeps the script as the failing input
		m.Close()
		<-served
		if err := m.Err(); err != nil && !qmp.IsSocketClosed(err) {
			t.Fatalf("Err() = %v", err)
		}
	})
}
