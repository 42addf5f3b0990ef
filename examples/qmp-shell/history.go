package main

// The history file: the lines entered in earlier sessions, one per line,
// appended to as lines are entered (so that concurrent sessions do not
// overwrite each other's lines).

import (
	"bufio"
	"os"
	"strings"
)

// maxHistory is how many lines are kept.
const maxHistory = 1000

// historyFile appends entered lines to a file; a nil *historyFile does
// nothing.
type historyFile struct {
	path string
	f    *os.File
}

// openHistory reads the last maxHistory lines of path and opens it for
// appending. A file grown past twice maxHistory is rewritten with its last
// maxHistory lines. A missing file is created.
func openHistory(path string) (*historyFile, []string, error) {
	var lines []string
	if b, err := os.ReadFile(path); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
	} else if !os.IsNotExist(err) {
		return nil, nil, err
	}
	if len(lines) > 2*maxHistory {
		lines = lines[len(lines)-maxHistory:]
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return nil, nil, err
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, nil, err
		}
	} else if len(lines) > maxHistory {
		lines = lines[len(lines)-maxHistory:]
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return &historyFile{path: path, f: f}, lines, nil
}

// add appends one line.
func (h *historyFile) add(line string) {
	if h == nil || strings.TrimSpace(line) == "" || strings.ContainsAny(line, "\r\n") {
		return
	}
	w := bufio.NewWriter(h.f)
	w.WriteString(line + "\n")
	w.Flush()
}

func (h *historyFile) close() {
	if h != nil {
		h.f.Close()
	}
}
