package main

// A small line editor for a terminal in raw mode: cursor movement, editing,
// history, tab completion, and output from other goroutines (events)
// printed above the line being typed without garbling it.
//
// It reads key bytes from one io.Reader and writes to one io.Writer, and
// knows nothing about file descriptors: the caller puts the terminal in raw
// mode around ReadLine (see term_linux.go). Tests drive it with a fake
// terminal.
//
// Keys: printable text inserts; Left/Right, Ctrl-B/Ctrl-F move; Home/End,
// Ctrl-A/Ctrl-E jump; Alt-B/Alt-F move by word; Backspace, Delete, Ctrl-D
// (on a non-empty line) delete; Ctrl-K, Ctrl-U, Ctrl-W kill; Up/Down,
// Ctrl-P/Ctrl-N walk the history; Tab completes (twice lists the choices);
// Ctrl-L redraws; Enter accepts; Ctrl-C abandons the line; Ctrl-D on an
// empty line is end of input.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// errInterrupt is returned by ReadLine when the user typed Ctrl-C.
var errInterrupt = errors.New("interrupted")

// completeFunc returns the candidates that could replace line[start:pos],
// the word being completed. A candidate that should be followed by a space
// ends in one.
type completeFunc func(line []rune, pos int) (start int, candidates []string)

// editor is the line editor.
type editor struct {
	in       *bufio.Reader
	complete completeFunc // nil: Tab inserts nothing
	width    func() int   // terminal columns; nil or <= 0 means 80

	mu      sync.Mutex // guards everything below and writes to out
	out     io.Writer
	active  bool // ReadLine is running: the prompt and line are on screen
	prompt  string
	buf     []rune
	pos     int
	history []string
	maxHist int
	hidx    int    // index into history while browsing; len(history) = the new line
	saved   []rune // the new line, kept while browsing the history
	lastTab bool   // the previous key was a Tab that could not complete further
}

// newEditor returns an editor reading keys from in and drawing on out.
func newEditor(in io.Reader, out io.Writer) *editor {
	return &editor{in: bufio.NewReader(in), out: out, maxHist: 1000}
}

// AddHistory appends a line to the history (not blank lines, nor a repeat
// of the last line).
func (e *editor) AddHistory(line string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if strings.TrimSpace(line) == "" || (len(e.history) > 0 && e.history[len(e.history)-1] == line) {
		return
	}
	e.history = append(e.history, line)
	if len(e.history) > e.maxHist {
		e.history = e.history[len(e.history)-e.maxHist:]
	}
}

// History returns a copy of the history, oldest first.
func (e *editor) History() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.history...)
}

// Print writes s (a line or lines) so that it appears above the prompt:
// while a line is being edited, the line is cleared, s is written, and the
// prompt and line are drawn again below it. Any goroutine may call it.
func (e *editor) Print(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active {
		io.WriteString(e.out, s)
		return
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	// Raw mode: the terminal does not turn \n into \r\n.
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	io.WriteString(e.out, "\r\x1b[K"+s)
	e.refresh()
}

// ReadLine shows prompt and returns the line the user entered, without its
// end of line. It returns io.EOF for Ctrl-D on an empty line or when input
// ends, and errInterrupt for Ctrl-C.
func (e *editor) ReadLine(prompt string) (string, error) {
	e.mu.Lock()
	e.prompt, e.buf, e.pos = prompt, nil, 0
	e.hidx, e.saved, e.lastTab = len(e.history), nil, false
	e.active = true
	e.refresh()
	e.mu.Unlock()

	for {
		r, _, err := e.in.ReadRune()
		if err != nil {
			e.mu.Lock()
			e.active = false
			line := string(e.buf)
			io.WriteString(e.out, "\r\n")
			e.mu.Unlock()
			if err == io.EOF && line != "" {
				return line, nil
			}
			return "", err
		}
		var seq string
		if r == 0x1b {
			seq = e.readEscape()
		}
		e.mu.Lock()
		line, done, err := e.key(r, seq)
		if done {
			e.active = false
		}
		e.mu.Unlock()
		if done {
			return line, err
		}
	}
}

// readEscape reads the rest of an escape sequence after ESC: "[A",
// "[3~", "OH", or "b" (Alt-b). Input ending inside one gives "".
func (e *editor) readEscape() string {
	c, err := e.in.ReadByte()
	if err != nil {
		return ""
	}
	if c != '[' && c != 'O' {
		return string(c)
	}
	seq := []byte{c}
	for len(seq) < 16 {
		b, err := e.in.ReadByte()
		if err != nil {
			return ""
		}
		seq = append(seq, b)
		if b >= 0x40 && b <= 0x7e {
			break
		}
	}
	return string(seq)
}

// key applies one key, with e.mu held. done reports that ReadLine returns
// line and err.
func (e *editor) key(r rune, seq string) (line string, done bool, err error) {
	tab := false
	defer func() { e.lastTab = tab }()
	switch r {
	case '\r', '\n':
		line = string(e.buf)
		e.pos = len(e.buf)
		e.refresh()
		io.WriteString(e.out, "\r\n")
		return line, true, nil
	case 0x03: // Ctrl-C
		e.pos = len(e.buf)
		e.refresh()
		io.WriteString(e.out, "^C\r\n")
		return "", true, errInterrupt
	case 0x04: // Ctrl-D
		if len(e.buf) == 0 {
			io.WriteString(e.out, "\r\n")
			return "", true, io.EOF
		}
		e.deleteAt(e.pos)
	case 0x01: // Ctrl-A
		e.pos = 0
	case 0x05: // Ctrl-E
		e.pos = len(e.buf)
	case 0x02: // Ctrl-B
		e.move(-1)
	case 0x06: // Ctrl-F
		e.move(1)
	case 0x7f, 0x08: // Backspace
		if e.pos > 0 {
			e.pos--
			e.deleteAt(e.pos)
		}
	case 0x0b: // Ctrl-K
		e.buf = e.buf[:e.pos]
	case 0x15: // Ctrl-U
		e.buf = append([]rune(nil), e.buf[e.pos:]...)
		e.pos = 0
	case 0x17: // Ctrl-W
		start := e.wordLeft()
		e.buf = append(e.buf[:start], e.buf[e.pos:]...)
		e.pos = start
	case 0x0c: // Ctrl-L
		io.WriteString(e.out, "\x1b[H\x1b[2J")
	case 0x10: // Ctrl-P
		e.historyMove(-1)
	case 0x0e: // Ctrl-N
		e.historyMove(1)
	case '\t':
		tab = e.tab()
	case 0x1b:
		e.escape(seq)
	default:
		if r == utf8.RuneError || unicode.IsControl(r) {
			return "", false, nil
		}
		e.buf = append(e.buf[:e.pos], append([]rune{r}, e.buf[e.pos:]...)...)
		e.pos++
	}
	e.refresh()
	return "", false, nil
}

func (e *editor) escape(seq string) {
	switch seq {
	case "[A", "OA":
		e.historyMove(-1)
	case "[B", "OB":
		e.historyMove(1)
	case "[C", "OC":
		e.move(1)
	case "[D", "OD":
		e.move(-1)
	case "[H", "OH", "[1~", "[7~":
		e.pos = 0
	case "[F", "OF", "[4~", "[8~":
		e.pos = len(e.buf)
	case "[3~":
		e.deleteAt(e.pos)
	case "b", "[1;5D", "[1;3D":
		e.pos = e.wordLeft()
	case "f", "[1;5C", "[1;3C":
		e.pos = e.wordRight()
	}
}

func (e *editor) move(d int) {
	e.pos = max(0, min(len(e.buf), e.pos+d))
}

func (e *editor) deleteAt(i int) {
	if i < len(e.buf) {
		e.buf = append(e.buf[:i], e.buf[i+1:]...)
	}
}

// wordLeft is where the word before the cursor starts.
func (e *editor) wordLeft() int {
	i := e.pos
	for i > 0 && e.buf[i-1] == ' ' {
		i--
	}
	for i > 0 && e.buf[i-1] != ' ' {
		i--
	}
	return i
}

// wordRight is where the word after the cursor ends.
func (e *editor) wordRight() int {
	i := e.pos
	for i < len(e.buf) && e.buf[i] == ' ' {
		i++
	}
	for i < len(e.buf) && e.buf[i] != ' ' {
		i++
	}
	return i
}

// historyMove shows the previous (d < 0) or next history line.
func (e *editor) historyMove(d int) {
	n := e.hidx + d
	if n < 0 || n > len(e.history) {
		io.WriteString(e.out, "\a")
		return
	}
	if e.hidx == len(e.history) {
		e.saved = append([]rune(nil), e.buf...)
	}
	e.hidx = n
	if n == len(e.history) {
		e.buf = append([]rune(nil), e.saved...)
	} else {
		e.buf = []rune(e.history[n])
	}
	e.pos = len(e.buf)
}

// tab completes the word before the cursor to the candidates' longest
// common prefix; when that adds nothing, a second Tab lists them. It
// reports whether the Tab added nothing.
func (e *editor) tab() bool {
	if e.complete == nil {
		return true
	}
	start, cands := e.complete(append([]rune(nil), e.buf...), e.pos)
	if len(cands) == 0 {
		io.WriteString(e.out, "\a")
		return true
	}
	word := string(e.buf[start:e.pos])
	common := cands[0]
	for _, c := range cands[1:] {
		common = commonPrefix(common, c)
	}
	if len(cands) == 1 || len(common) > len(word) {
		ins := []rune(common)
		rest := append([]rune(nil), e.buf[e.pos:]...)
		e.buf = append(append(e.buf[:start], ins...), rest...)
		e.pos = start + len(ins)
		return false
	}
	if !e.lastTab {
		io.WriteString(e.out, "\a")
		return true
	}
	e.pos = len(e.buf)
	e.refresh()
	io.WriteString(e.out, "\r\n"+columns(cands, e.cols()))
	return true
}

func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

// columns lays out words in columns across width, each row ending in \r\n.
func columns(words []string, width int) string {
	w := 0
	for _, s := range words {
		w = max(w, utf8.RuneCountInString(strings.TrimSuffix(s, " ")))
	}
	w += 2
	per := max(1, width/w)
	var b strings.Builder
	for i, s := range words {
		s = strings.TrimSuffix(s, " ")
		if (i+1)%per == 0 || i == len(words)-1 {
			b.WriteString(s + "\r\n")
		} else {
			b.WriteString(s + strings.Repeat(" ", w-utf8.RuneCountInString(s)))
		}
	}
	return b.String()
}

func (e *editor) cols() int {
	if e.width != nil {
		if w := e.width(); w > 0 {
			return w
		}
	}
	return 80
}

// refresh draws the prompt and the line on the current screen row and
// places the cursor. A line wider than the terminal scrolls horizontally
// so that the cursor stays visible.
func (e *editor) refresh() {
	avail := e.cols() - utf8.RuneCountInString(e.prompt) - 1
	if avail < 1 {
		avail = 1
	}
	start := 0
	if e.pos > avail {
		start = e.pos - avail
	}
	end := min(len(e.buf), start+avail)
	var b strings.Builder
	b.WriteString("\r" + e.prompt + string(e.buf[start:end]) + "\x1b[K")
	if back := end - e.pos; back > 0 {
		fmt.Fprintf(&b, "\x1b[%dD", back)
	}
	io.WriteString(e.out, b.String())
}
