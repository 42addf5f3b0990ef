package qmp

import "sync/atomic"

// testHook, when a test sets it, is told each time a call is about to
// block where nothing else signals it (waiting to retry a dial, for the fd
// slot, for an event): tests wait for that instead of polling stacks.
var testHook atomic.Pointer[func(blocking string)]

// blocking tells testHook that the caller is about to wait at where.
func blocking(where string) {
	if h := testHook.Load(); h != nil {
		(*h)(where)
	}
}
