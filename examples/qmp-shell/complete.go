package main

// Tab completion: command names, argument names (dotted keys included)
// and enum values in QMP mode; command names and "info" topics in HMP mode.

import (
	"sort"
	"strings"

	qmp "github.com/0xef53/go-qmp/v2"
)

// completer holds what completion draws on, loaded once at start.
type completer struct {
	hmp         bool
	commands    []string   // QMP command names (query-commands)
	schema      *argSchema // nil when query-qmp-schema failed
	hmpCommands []string   // HMP command names and aliases (help)
	hmpInfo     []string   // HMP info topics (help info)
	inTrans     func() bool
}

// complete is a completeFunc.
func (c *completer) complete(line []rune, pos int) (int, []string) {
	text := string(line[:pos])
	start := strings.LastIndexAny(text, " \t") + 1
	word := text[start:]
	before := strings.Fields(text[:start])
	runeStart := len([]rune(text[:start]))
	if c.hmp {
		return runeStart, c.completeHMP(before, word)
	}
	return runeStart, c.completeQMP(before, word)
}

func (c *completer) completeHMP(before []string, word string) []string {
	switch {
	case len(before) == 0:
		return withPrefix(c.hmpCommands, word, " ")
	case len(before) == 1 && before[0] == "info":
		return withPrefix(c.hmpInfo, word, " ")
	}
	return nil
}

func (c *completer) completeQMP(before []string, word string) []string {
	trans := c.inTrans != nil && c.inTrans()
	if len(before) == 0 {
		if trans {
			acts := c.schema.transactionActions()
			if acts == nil {
				acts = sortedKeys(qmp.AllowedTransactionActions)
			}
			return append(withPrefix(acts, word, " "), withPrefix([]string{")"}, word, "")...)
		}
		return append(withPrefix(c.commands, word, " "), withPrefix([]string{"transaction("}, word, " ")...)
	}
	cmd := before[0]
	given := map[string]string{}
	for _, t := range before[1:] {
		if k, v, ok := strings.Cut(t, "="); ok {
			given[k] = strings.Trim(v, `"'`)
		}
	}
	if trans && cmd != "transaction(" {
		if cmd = c.schema.actionCommand(cmd); cmd == "" {
			return nil
		}
	}
	if key, val, ok := strings.Cut(word, "="); ok {
		var out []string
		for _, v := range withPrefix(c.schema.values(cmd, key, given), val, " ") {
			out = append(out, key+"="+v)
		}
		return out
	}
	path := strings.Split(word, ".")
	prefix := strings.Join(path[:len(path)-1], ".")
	if prefix != "" {
		prefix += "."
	}
	var out []string
	for _, n := range c.schema.argNames(cmd, path[:len(path)-1], given) {
		if strings.HasPrefix(n, path[len(path)-1]) {
			out = append(out, prefix+n)
		}
	}
	return out
}

// withPrefix returns the words starting with prefix, each followed by
// suffix, sorted.
func withPrefix(words []string, prefix, suffix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w+suffix)
		}
	}
	sort.Strings(out)
	return out
}

// parseHMPHelp extracts command names (and their aliases, "cont|c") from
// the output of HMP's help: one command per line, continuation lines
// indented. With info set it reads "help info" ("info block ... -- ...").
func parseHMPHelp(out string, info bool) []string {
	var names []string
	for _, l := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		f := strings.Fields(l)
		if info {
			if len(f) < 2 || f[0] != "info" {
				continue
			}
			f = f[1:]
		}
		for _, n := range strings.Split(f[0], "|") {
			if n != "" {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names
}
