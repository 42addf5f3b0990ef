package qmp

import (
	"strconv"
	"strings"
	"testing"
)

// TestEventNamesBounded drives the reader's name table to its edges: a
// server inventing long names or many names never makes it hold more
// than maxEventNames names of maxEventNameLen bytes.
func TestEventNamesBounded(t *testing.T) {
	n := make(eventNames)
	long := strings.Repeat("X", 256<<10)
	for i := 0; i < 2*maxEventNames; i++ {
		name := long + strconv.Itoa(i)
		if got := n.intern([]byte(name)); got != name {
			t.Fatalf("intern returned %.20q, want the name", got)
		}
	}
	if len(n) != 0 {
		t.Fatalf("%d names over %d bytes were interned", len(n), maxEventNameLen)
	}
	edge := strings.Repeat("E", maxEventNameLen-4)
	for i := 0; i < 2*maxEventNames; i++ {
		n.intern([]byte(edge + strconv.Itoa(1000+i)))
	}
	total := 0
	for k := range n {
		total += len(k)
	}
	if len(n) != maxEventNames || total > maxEventNames*maxEventNameLen {
		t.Fatalf("the table holds %d names, %d bytes; want %d names, at most %d bytes", len(n), total, maxEventNames, maxEventNames*maxEventNameLen)
	}
}
