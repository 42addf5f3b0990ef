package main

// A fake terminal screen for tests: it interprets the bytes the line
// editor (or the real binary, through a pseudo-terminal) writes, so that
// tests check what a user would see rather than exact escape sequences.

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// screen is a minimal VT100: printable text, \r, \n, \b, BEL, ESC[K (erase
// to end of line), ESC[nC / ESC[nD (cursor right/left), ESC[H and ESC[2J.
type screen struct {
	mu      sync.Mutex
	width   int
	rows    [][]rune
	row     int
	col     int
	bells   int
	raw     strings.Builder // everything written
	changed chan struct{}   // closed and replaced on every Write
	pending []byte          // an incomplete escape sequence or UTF-8 rune
}

func newScreen(width int) *screen {
	return &screen{width: width, rows: [][]rune{nil}, changed: make(chan struct{})}
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw.Write(p)
	data := append(s.pending, p...)
	s.pending = nil
	for i := 0; i < len(data); {
		n := s.step(data[i:])
		if n == 0 { // incomplete: keep for the next Write
			s.pending = append([]byte(nil), data[i:]...)
			break
		}
		i += n
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// step interprets one character or sequence at the start of b and returns
// its length, or 0 if b holds only part of it.
func (s *screen) step(b []byte) int {
	switch c := b[0]; {
	case c == '\r':
		s.col = 0
	case c == '\n':
		s.newline()
	case c == '\b':
		s.col = max(0, s.col-1)
	case c == '\a':
		s.bells++
	case c == 0x1b:
		if len(b) < 2 {
			return 0
		}
		if b[1] != '[' {
			return 2
		}
		j := 2
		for j < len(b) && (b[j] < 0x40 || b[j] > 0x7e) {
			j++
		}
		if j == len(b) {
			return 0
		}
		s.csi(string(b[2:j]), b[j])
		return j + 1
	case c < 0x20:
	default:
		if !utf8.FullRune(b) {
			return 0 // a rune split across writes
		}
		r, n := utf8.DecodeRune(b)
		if s.col >= s.width {
			s.newline()
		}
		line := s.rows[s.row]
		for len(line) <= s.col {
			line = append(line, ' ')
		}
		line[s.col] = r
		s.rows[s.row] = line
		s.col++
		return n
	}
	return 1
}

func (s *screen) newline() {
	s.row++
	s.col = 0
	if s.row == len(s.rows) {
		s.rows = append(s.rows, nil)
	}
}

func (s *screen) csi(param string, final byte) {
	n := 1
	if v, err := strconv.Atoi(param); err == nil {
		n = v
	}
	switch final {
	case 'K':
		if s.col < len(s.rows[s.row]) {
			s.rows[s.row] = s.rows[s.row][:s.col]
		}
	case 'C':
		s.col = min(s.width, s.col+n)
	case 'D':
		s.col = max(0, s.col-n)
	case 'H':
		s.row, s.col = 0, 0
	case 'J':
		if param == "2" {
			s.rows, s.row, s.col = [][]rune{nil}, 0, 0
		}
	}
}

// lines returns the screen's rows, trailing spaces trimmed.
func (s *screen) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.rows))
	for i, r := range s.rows {
		out[i] = strings.TrimRight(string(r), " ")
	}
	return out
}

// current returns the row the cursor is on (trailing spaces kept) and the
// cursor's column.
func (s *screen) current() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.rows[s.row]), s.col
}

func (s *screen) String() string {
	line, col := s.current()
	return fmt.Sprintf("%s\n(cursor row %q, column %d)", strings.Join(s.lines(), "\n"), line, col)
}

// waitFor waits until cond holds for the screen, re-checking after every
// write, and fails the test with the screen after timeout.
func (s *screen) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("after %v still waiting for %s; screen:\n%s\nraw output: %q", timeout, what, s, s.rawString())
		}
	}
}

func (s *screen) rawString() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

// waitLine waits until the cursor's row reads want with the cursor at col
// (col < 0: anywhere).
func (s *screen) waitLine(t *testing.T, want string, col int) {
	t.Helper()
	s.waitFor(t, 5*time.Second, fmt.Sprintf("cursor row %q at column %d", want, col), func() bool {
		line, c := s.current()
		return line == want && (col < 0 || c == col)
	})
}

// hasLine reports whether some row reads want.
func (s *screen) hasLine(want string) bool {
	for _, l := range s.lines() {
		if l == want {
			return true
		}
	}
	return false
}

func TestScreen(t *testing.T) {
	s := newScreen(20)
	s.Write([]byte("abc\x1b[2Dx\r\nline2"))
	s.Write([]byte("\x1b"))
	s.Write([]byte("[K\rZ\x1b[K"))
	if got := strings.Join(s.lines(), "|"); got != "axc|Z" {
		t.Fatalf("screen %q, want %q", got, "axc|Z")
	}
}
