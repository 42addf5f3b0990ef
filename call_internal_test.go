package qmp

import "testing"

// The in-band FIFO stays as large as what is pending, also when it never
// empties: a million push/pop pairs with one call always pending.
func TestCallQueueCompacts(t *testing.T) {
	var q callQueue
	q.push(newCall())
	for i := 0; i < 1_000_000; i++ {
		q.push(newCall())
		if q.pop() == nil {
			t.Fatal("pop of a non-empty queue returned nil")
		}
	}
	if n := len(q.q) - q.head; n != 1 {
		t.Fatalf("%d calls pending, want 1", n)
	}
	if cap(q.q) > 256 {
		t.Fatalf("the queue's slice has room for %d calls with 1 pending", cap(q.q))
	}
}

// A second completion is a bug, and says so instead of going unnoticed.
func TestSecondCompletionPanics(t *testing.T) {
	c := newCall()
	c.complete(nil, false, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("a second complete did not panic")
		}
	}()
	c.complete(nil, false, nil)
}
