package qmp

// The framer's read buffers
//
// A monitor owns only a small one (smallBuf), which holds the typical
// reply or event whole, so the common read touches no pool. Bigger reads
// (a flood of events, a message that outgrows it) borrow from a pool
// shared by all monitors and give it back once it holds no partial message.
// A message too big for its buffer moves to a larger pooled one, sized at
// once from the largest message seen recently, so a caller that keeps asking
// for query-qmp-schema does not regrow a buffer from scratch each time
// (framer.room and framer.adapt).

import (
	"math/bits"
	"sync"
)

const (
	smallBuf    = 512 // the buffer each monitor owns
	minBufShift = 12  // 4 KiB: the smallest pooled buffer
	maxReadSize = 64 << 10
)

// bufPools holds read buffers by size class (1<<class bytes), shared by all
// monitors.
var bufPools [40]sync.Pool

// getBuf returns a pooled buffer of 1<<class bytes. Buffers travel as
// *[]byte so that giving one back allocates nothing.
func getBuf(class int) *[]byte {
	if b, ok := bufPools[class].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<class)
	return &b
}

func putBuf(b *[]byte) {
	class := bits.Len(uint(cap(*b))) - 1
	if cap(*b) != 1<<class || class < minBufShift || class >= len(bufPools) {
		return
	}
	*b = (*b)[:cap(*b)]
	bufPools[class].Put(b)
}
