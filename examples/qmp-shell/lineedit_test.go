package main

// The line editor on a fake terminal: key sequences in, screen out.

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// fakeTerm runs an editor whose keys come from a pipe and whose output
// goes to a screen.
type fakeTerm struct {
	ed   *editor
	keys *io.PipeWriter
	scr  *screen
}

func newFakeTerm(t *testing.T, width int) *fakeTerm {
	t.Helper()
	r, w := io.Pipe()
	scr := newScreen(width)
	ed := newEditor(r, scr)
	ed.width = func() int { return width }
	t.Cleanup(func() { w.Close(); r.Close() })
	return &fakeTerm{ed: ed, keys: w, scr: scr}
}

// readLine starts ReadLine and returns a function that waits for its
// result.
func (f *fakeTerm) readLine(t *testing.T, prompt string) func() (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		l, err := f.ed.ReadLine(prompt)
		ch <- result{l, err}
	}()
	t.Cleanup(func() {
		// A test that failed before the line was done: end ReadLine so
		// that its goroutine does not outlive the test.
		f.keys.CloseWithError(io.EOF)
		<-ch
	})
	return func() (string, error) {
		t.Helper()
		select {
		case r := <-ch:
			ch <- r // for the cleanup
			return r.line, r.err
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadLine did not return within 5s; screen:\n%s", f.scr)
			return "", nil
		}
	}
}

func (f *fakeTerm) typeKeys(t *testing.T, keys string) {
	t.Helper()
	if _, err := io.WriteString(f.keys, keys); err != nil {
		t.Fatalf("typing %q: %v", keys, err)
	}
}

const (
	keyLeft  = "\x1b[D"
	keyRight = "\x1b[C"
	keyUp    = "\x1b[A"
	keyDown  = "\x1b[B"
	keyHome  = "\x1b[H"
	keyEnd   = "\x1b[F"
	keyDel   = "\x1b[3~"
	keyBS    = "\x7f"
)

func TestEditorEditing(t *testing.T) {
	for _, tc := range []struct {
		name, keys, want string
		col              int // cursor column before Enter (prompt "> " is 2)
	}{
		{"type", "query-status", "query-status", 14},
		{"backspace", "query-statux" + keyBS + "s", "query-status", 14},
		{"left-insert", "qery" + keyLeft + keyLeft + keyLeft + "u", "query", 4},
		{"home-end", "status" + keyHome + "query-" + keyEnd + "!", "query-status!", 15},
		{"ctrl-a-e", "b\x01a\x05c", "abc", 5},
		{"delete", "abxc" + keyLeft + keyLeft + keyDel, "abc", 4},
		{"ctrl-d-deletes", "abxc" + keyLeft + keyLeft + "\x04", "abc", 4},
		{"right-stops-at-end", "ab" + keyRight + keyRight + "c", "abc", 5},
		{"left-stops-at-start", "b" + keyLeft + keyLeft + keyLeft + "a", "ab", 3},
		{"ctrl-k", "abcdef" + keyLeft + keyLeft + keyLeft + "\x0b", "abc", 5},
		{"ctrl-u", "junk abc" + keyLeft + keyLeft + keyLeft + "\x15", "abc", 2},
		{"ctrl-w", "device_del id=x" + "\x17" + "id=y", "device_del id=y", 17},
		{"alt-b-f", "aa bb cc" + "\x1bb\x1bb" + "X" + "\x1bf" + "Y", "aa XbbY cc", 9},
		{"ss3-keys", "bc\x1bOHa\x1bOF!", "abc!", 6},
		{"utf8", "h\u00e9llo", "h\u00e9llo", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTerm(t, 80)
			wait := f.readLine(t, "> ")
			f.scr.waitLine(t, "> ", 2)
			f.typeKeys(t, tc.keys)
			f.scr.waitLine(t, "> "+tc.want, tc.col)
			f.typeKeys(t, "\r")
			line, err := wait()
			if err != nil || line != tc.want {
				t.Fatalf("ReadLine = %q, %v; want %q", line, err, tc.want)
			}
		})
	}
}

func TestEditorEndings(t *testing.T) {
	t.Run("ctrl-c", func(t *testing.T) {
		f := newFakeTerm(t, 80)
		wait := f.readLine(t, "> ")
		f.typeKeys(t, "half a line\x03")
		if line, err := wait(); !errors.Is(err, errInterrupt) || line != "" {
			t.Fatalf("ReadLine = %q, %v; want errInterrupt", line, err)
		}
		if !f.scr.hasLine("> half a line^C") {
			t.Fatalf("no ^C shown:\n%s", f.scr)
		}
	})
	t.Run("ctrl-d-empty", func(t *testing.T) {
		f := newFakeTerm(t, 80)
		wait := f.readLine(t, "> ")
		f.typeKeys(t, "\x04")
		if _, err := wait(); err != io.EOF {
			t.Fatalf("err %v, want io.EOF", err)
		}
	})
	t.Run("input-ends-mid-line", func(t *testing.T) {
		f := newFakeTerm(t, 80)
		wait := f.readLine(t, "> ")
		f.typeKeys(t, "stop")
		f.scr.waitLine(t, "> stop", 6)
		f.keys.Close()
		if line, err := wait(); err != nil || line != "stop" {
			t.Fatalf("ReadLine = %q, %v; want the partial line", line, err)
		}
	})
	t.Run("newline-accepts", func(t *testing.T) {
		f := newFakeTerm(t, 80)
		wait := f.readLine(t, "> ")
		f.typeKeys(t, "cont\n")
		if line, err := wait(); err != nil || line != "cont" {
			t.Fatalf("ReadLine = %q, %v", line, err)
		}
	})
}

func TestEditorHistory(t *testing.T) {
	f := newFakeTerm(t, 80)
	for _, l := range []string{"query-status", "stop", "stop", "", "cont"} {
		f.ed.AddHistory(l)
	}
	if got := strings.Join(f.ed.History(), ","); got != "query-status,stop,cont" {
		t.Fatalf("history %q: want repeats and blank lines dropped", got)
	}
	wait := f.readLine(t, "> ")
	f.typeKeys(t, "new")
	f.scr.waitLine(t, "> new", 5)
	f.typeKeys(t, keyUp)
	f.scr.waitLine(t, "> cont", 6)
	f.typeKeys(t, keyUp+keyUp)
	f.scr.waitLine(t, "> query-status", 14)
	f.typeKeys(t, keyUp) // at the oldest: a bell, nothing changes
	f.scr.waitFor(t, 5*time.Second, "a bell", func() bool {
		f.scr.mu.Lock()
		defer f.scr.mu.Unlock()
		return f.scr.bells == 1
	})
	f.scr.waitLine(t, "> query-status", 14)
	f.typeKeys(t, keyDown)
	f.scr.waitLine(t, "> stop", 6)
	f.typeKeys(t, "\x0e\x0e") // Ctrl-N twice: back to the line being typed
	f.scr.waitLine(t, "> new", 5)
	f.typeKeys(t, "\x10"+" x=1\r") // Ctrl-P, edit the recalled line
	if line, err := wait(); err != nil || line != "cont x=1" {
		t.Fatalf("ReadLine = %q, %v", line, err)
	}
}

func TestEditorCompletion(t *testing.T) {
	words := []string{"query-status ", "query-version ", "quit ", "stop "}
	complete := func(line []rune, pos int) (int, []string) {
		text := string(line[:pos])
		start := strings.LastIndex(text, " ") + 1
		return start, withPrefix(trimAll(words), text[start:], " ")
	}
	f := newFakeTerm(t, 40)
	f.ed.complete = complete
	wait := f.readLine(t, "> ")

	f.typeKeys(t, "st\t") // one candidate: completed, with its space
	f.scr.waitLine(t, "> stop ", 7)
	f.typeKeys(t, "\x15q\t") // query-status, query-version, quit: "q" completes to "qu"
	f.scr.waitLine(t, "> qu", 4)
	f.typeKeys(t, "\t") // nothing in common past "qu": a bell
	f.scr.waitFor(t, 5*time.Second, "a bell", func() bool {
		f.scr.mu.Lock()
		defer f.scr.mu.Unlock()
		return f.scr.bells == 1
	})
	f.typeKeys(t, "\t") // second Tab lists them below, then the line again
	f.scr.waitFor(t, 5*time.Second, "the candidates listed, then the line", func() bool {
		line, col := f.scr.current()
		return line == "> qu" && col == 4 && f.scr.hasLine("query-status   query-version") && f.scr.hasLine("quit")
	})
	f.typeKeys(t, "e\t") // "que" -> "query-"
	f.scr.waitLine(t, "> query-", 8)
	f.typeKeys(t, "v\t\r")
	if line, err := wait(); err != nil || line != "query-version " {
		t.Fatalf("ReadLine = %q, %v", line, err)
	}
}

func trimAll(ws []string) []string {
	var out []string
	for _, w := range ws {
		out = append(out, strings.TrimSpace(w))
	}
	return out
}

func TestEditorCompletionMidLine(t *testing.T) {
	f := newFakeTerm(t, 80)
	f.ed.complete = func(line []rune, pos int) (int, []string) {
		return 0, []string{"device_del "}
	}
	wait := f.readLine(t, "> ")
	f.typeKeys(t, "dev id=x"+keyHome+keyRight+keyRight+keyRight+"\t")
	// The word before the cursor is replaced; the rest of the line stays.
	f.scr.waitLine(t, "> device_del  id=x", 13)
	f.typeKeys(t, "\r")
	if line, _ := wait(); line != "device_del  id=x" {
		t.Fatalf("line %q", line)
	}
}

func TestEditorPrintKeepsLine(t *testing.T) {
	f := newFakeTerm(t, 80)
	wait := f.readLine(t, "(QEMU) ")
	f.typeKeys(t, "device_del id=usb0"+keyLeft+keyLeft)
	f.scr.waitLine(t, "(QEMU) device_del id=usb0", 23)
	// An event arrives while the user is typing.
	f.ed.Print(`{"event": "STOP"}` + "\n")
	f.ed.Print("two\nlines")
	f.scr.waitLine(t, "(QEMU) device_del id=usb0", 23)
	got := strings.Join(f.scr.lines(), "\n")
	want := "{\"event\": \"STOP\"}\ntwo\nlines\n(QEMU) device_del id=usb0"
	if got != want {
		t.Fatalf("screen:\n%s\nwant:\n%s", got, want)
	}
	f.typeKeys(t, "\r")
	if line, _ := wait(); line != "device_del id=usb0" {
		t.Fatalf("line %q", line)
	}
	// Not reading: Print writes as is.
	f.ed.Print("after\n")
	if !strings.HasSuffix(f.scr.rawString(), "\r\nafter\n") {
		t.Fatalf("raw output ends %q", f.scr.rawString())
	}
}

func TestEditorLongLineScrolls(t *testing.T) {
	f := newFakeTerm(t, 20) // prompt "> " leaves 17 columns
	wait := f.readLine(t, "> ")
	long := "blockdev-add driver=null-co"
	f.typeKeys(t, long)
	// The end of the line is shown, the cursor stays on the screen.
	f.scr.waitLine(t, "> "+long[len(long)-17:], 19)
	f.typeKeys(t, keyHome)
	f.scr.waitLine(t, "> "+long[:17], 2)
	f.typeKeys(t, "\r")
	if line, _ := wait(); line != long {
		t.Fatalf("line %q", line)
	}
	for _, l := range f.scr.lines() {
		if len([]rune(l)) > 20 {
			t.Fatalf("row wider than the terminal: %q", l)
		}
	}
}

// The exact bytes of a simple edit: a redraw is \r, the prompt, the line,
// erase to end of line, then the cursor moved back.
func TestEditorBytes(t *testing.T) {
	f := newFakeTerm(t, 80)
	wait := f.readLine(t, "> ")
	f.typeKeys(t, "ab"+keyLeft+"\r")
	wait()
	want := "\r> \x1b[K" + "\r> a\x1b[K" + "\r> ab\x1b[K" + "\r> ab\x1b[K\x1b[1D" + "\r> ab\x1b[K\r\n"
	if got := f.scr.rawString(); got != want {
		t.Fatalf("bytes\n%q\nwant\n%q", got, want)
	}
}
