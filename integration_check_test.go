package qmp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	qmp "github.com/0xef53/go-qmp/v2"
	"github.com/0xef53/go-qmp/v2/internal/qemutest"
)

// The differential test of the pre-send check (check.go) against a real
// QEMU: commands built to hit QEMU parser's refusals (escapes of
// surrogates and noncharacters, raw UTF-8 of every kind, members named
// twice in several spellings, ids QEMU rewrites) go through the library.
// Every one the check accepts must be answered by QEMU on a live
// connection: a JSON complaint would end the monitor with ErrProtocol, and
// an id echoed in a form the library does not expect would leave the call
// waiting. Every one it refuses for its strings or names is sent as is on
// a second monitor, where QEMU must answer with a JSON parse error: the
// check refuses nothing QEMU takes. QMP_CHECK_TIME bounds the run (default
// 3s); the fuzz corpus of FuzzCommandCheck is replayed too.

// diffGen builds JSON texts from pieces chosen to sit on QEMU's edges.
type diffGen struct{ r *rand.Rand }

var diffRunes = []rune{'a', 0x7F, 0xE9, 0xFFFD, 0xFDCF, 0xFDD0, 0xFDEF, 0xFDF0, 0xFFFE, 0xFFFF, 0x10000, 0x1FFFE, 0x1FFFF, 0x10FFFF, 0x10FFFD, 0x2028}

func (g diffGen) str() string {
	var b strings.Builder
	b.WriteByte('"')
	for n := g.r.IntN(4); n > 0; n-- {
		switch g.r.IntN(6) {
		case 0:
			b.WriteString("plain")
		case 1: // raw UTF-8 of a chosen code point
			b.WriteRune(diffRunes[g.r.IntN(len(diffRunes))])
		case 2: // an escape, surrogates as pairs or alone
			switch r := diffRunes[g.r.IntN(len(diffRunes))]; {
			case r > 0xFFFF:
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04X\u%04x`, 0xD800+r>>10, 0xDC00+r&0x3FF)
			default:
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		case 3:
			b.WriteString([]string{`\ud800`, `\udc00`, `\ud800\u0041`, `\udbff\udfff`, `\ud83d\ude00`, `\u0000`, `\\u0041`, `\"`}[g.r.IntN(8)])
		case 4: // raw bytes that are not UTF-8, or UTF-8 of surrogates, or overlong
			b.WriteString([]string{"\x80", "\xc0\x80", "\xc1\xbf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe0\x80\xaf", "\xf0\x9f\x98"}[g.r.IntN(7)])
		default:
			b.WriteString(" ")
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (g diffGen) value(depth int) string {
	switch k := g.r.IntN(6); {
	case depth > 3 || k < 2:
		return g.str()
	case k == 2:
		return []string{"1", "-0", "1.5", "18446744073709551615", "null", "true"}[g.r.IntN(6)]
	case k == 3:
		return "[" + g.value(depth+1) + "," + g.value(depth+1) + "]"
	default:
		var m []string
		for n := g.r.IntN(4); n > 0; n-- {
			name := []string{`"a"`, `"\u0061"`, `"b"`, `"a\u0000"`, "\"a\xc0\x80\"", `"é"`, `"\u00e9"`, g.str()}[g.r.IntN(8)]
			m = append(m, name+":"+g.value(depth+1))
		}
		return "{" + strings.Join(m, ",") + "}"
	}
}

// command wraps a generated value where QEMU parses it and then refuses
// the command harmlessly: as the arguments or the id of a command that
// does not exist.
func (g diffGen) command() string {
	if g.r.IntN(2) == 0 {
		return `{"execute":"x-go-qmp-no-such","id":` + g.value(1) + `}`
	}
	return `{"execute":"x-go-qmp-no-such","arguments":` + g.value(0) + `}`
}

// rawMonitor is a QMP connection without the library, for sending what the
// library refuses.
type rawMonitor struct {
	c  net.Conn
	rd *bufio.Reader
	n  int
}

func newRawMonitor(t *testing.T, path string) *rawMonitor {
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawMonitor{c: c, rd: bufio.NewReader(c)}
	r.exchange(t, nil) // the greeting, then capabilities
	if _, err := c.Write([]byte(`{"execute":"qmp_capabilities"}`)); err != nil {
		t.Fatal(err)
	}
	r.readMsg(t)
	return r
}

func (r *rawMonitor) readMsg(t *testing.T) map[string]json.RawMessage {
	r.c.SetReadDeadline(time.Now().Add(qemuWait))
	line, err := r.rd.ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading from QEMU: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("QEMU sent %q: %v", line, err)
	}
	return m
}

// exchange sends b and then a marked query-name, and returns the
// messages QEMU sent before the marked reply.
func (r *rawMonitor) exchange(t *testing.T, b []byte) []map[string]json.RawMessage {
	if b == nil {
		r.readMsg(t)
		return nil
	}
	r.n++
	mark := fmt.Sprintf(`"mark-%d"`, r.n)
	if _, err := r.c.Write(append(b, `{"execute":"query-name","id":`+mark+`}`...)); err != nil {
		t.Fatal(err)
	}
	var out []map[string]json.RawMessage
	for {
		m := r.readMsg(t)
		if string(m["id"]) == mark {
			return out
		}
		out = append(out, m)
	}
}

func TestCheckAgainstRealQEMU(t *testing.T) {
	q, m := qemuMonitor(t, qemutest.Config{Sockets: 2})
	raw := newRawMonitor(t, q.Sockets[1])
	budget := 3 * time.Second
	if s := os.Getenv("QMP_CHECK_TIME"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("QMP_CHECK_TIME=%q: %v", s, err)
		}
		budget = d
	}
	var inputs []string
	files, _ := filepath.Glob("testdata/fuzz/FuzzCommandCheck/*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		// go test fuzz v1 / []byte("...") / bool(...)
		if lines := strings.Split(string(b), "\n"); len(lines) > 1 {
			var s string
			if _, err := fmt.Sscanf(strings.TrimPrefix(lines[1], "[]byte("), "%q", &s); err == nil && json.Valid([]byte(s)) {
				inputs = append(inputs, s)
			}
		}
	}
	g := diffGen{rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
	accepted, refused := 0, 0
	deadline := time.Now().Add(budget)
	for i := 0; i < len(inputs) || time.Now().Before(deadline); i++ {
		cmd := ""
		if i < len(inputs) {
			cmd = inputs[i]
			if strings.Contains(cmd, `"execute"`) || strings.Contains(cmd, `"exec-oob"`) {
				continue // it could name a real command
			}
		} else {
			cmd = g.command()
		}
		ctx, cancel := context.WithTimeout(context.Background(), qemuWait)
		err := m.RunContext(ctx, json.RawMessage(cmd), nil)
		cancel()
		var ce *qmp.CommandError
		switch {
		case errors.As(err, &ce):
			if ce.Limit != "" || ce.Member == "id" && !strings.Contains(ce.Reason, "parser") || !strings.Contains(ce.Reason, "parser") {
				continue // refused for a reason of the library's own (ids it could not match, shape)
			}
			refused++
			got := raw.exchange(t, []byte(cmd))
			if len(got) == 0 || !strings.Contains(string(got[0]["error"]), "JSON parse error") || got[0]["id"] != nil {
				t.Fatalf("the check refused %q (%v), but QEMU answered %s", cmd, err, got)
			}
		case errors.Is(err, qmp.ErrInvalidCommand):
			t.Fatalf("%q: %v is not a *CommandError", cmd, err)
		case err == nil || qmp.IsSocketClosed(err) || errors.Is(err, context.DeadlineExceeded):
			if err == nil && strings.HasPrefix(cmd, `{"execute":"x-go-qmp-no-such"`) {
				t.Fatalf("%q: QEMU ran a command that does not exist", cmd)
			}
			if err != nil {
				t.Fatalf("the check accepted %q, but then: %v (QEMU's answer did not come back as its reply)", cmd, err)
			}
		default:
			accepted++ // QEMU's own error reply (CommandNotFound, ...): one reply, matched
		}
	}
	if m.Err() != nil {
		t.Fatalf("the monitor ended: %v", m.Err())
	}
	t.Logf("%d commands accepted and answered, %d refused and refused by QEMU too", accepted, refused)
	if accepted == 0 || refused == 0 {
		t.Fatalf("accepted %d, refused %d: the generator no longer reaches both sides", accepted, refused)
	}
}
