package swarm

import (
	"math/bits"
	"sync"
)

// Block buffers are shared by every session of every swarm in the process,
// by size class (powers of two from minPooled): a session holds one only
// while a block is being read, verified and written, not for its life, so
// a node with many quiet sessions holds few.
const minPooled = 16 << 10

var blockPools [24]sync.Pool // classes minPooled·2^k; larger sizes are not pooled

// sizeClass returns the pool index for n bytes, or -1 for a size too large.
func sizeClass(n int) int {
	if n <= minPooled {
		return 0
	}
	k := bits.Len(uint(n-1)) - bits.Len(uint(minPooled-1))
	if k >= len(blockPools) {
		return -1
	}
	return k
}

// getBuf returns a buffer of n bytes, from the pool when it can. It is
// safe for concurrent use.
func getBuf(n int) []byte {
	k := sizeClass(n)
	if k < 0 {
		return make([]byte, n)
	}
	if p, ok := blockPools[k].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, minPooled<<k)
}

// putBuf gives back a buffer from getBuf; nothing may use it afterwards. It
// is safe for concurrent use.
func putBuf(b []byte) {
	k := sizeClass(cap(b))
	if k < 0 || cap(b) != minPooled<<k {
		return
	}
	b = b[:0]
	blockPools[k].Put(&b)
}
