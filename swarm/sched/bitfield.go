package sched

import (
	"fmt"
	"math/bits"

	wirebits "github.com/peer-project/peer/bitfield"
)

// bitfield is a set of chunk indices, one bit each, 64 to a word. It is the
// scheduler's own: the wire form (see parseWire) is converted at the edge.
type bitfield []uint64

func newBitfield(n int32) bitfield { return make(bitfield, (int(n)+63)/64) }

func (b bitfield) get(i int32) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b bitfield) set(i int32)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitfield) clear(i int32)    { b[i>>6] &^= 1 << (uint(i) & 63) }

// fill sets bits [0, n).
func (b bitfield) fill(n int32) {
	for w := range b {
		b[w] = ^uint64(0)
	}
	if r := uint(n) & 63; r != 0 {
		b[len(b)-1] = 1<<r - 1
	}
}

// count returns the number of set bits.
func (b bitfield) count() int64 {
	var c int
	for _, w := range b {
		c += bits.OnesCount64(w)
	}
	return int64(c)
}

// each calls f for every set bit in increasing order.
func (b bitfield) each(f func(i int32)) {
	for w, word := range b {
		for word != 0 {
			t := bits.TrailingZeros64(word)
			f(int32(w*64 + t))
			word &= word - 1
		}
	}
}

// nextAnd returns the lowest i in [from, to) set in both a and b (b nil
// means all set), scanning at most budget words. ok is false when there is
// none; exhausted is true when the budget ran out before to was reached.
func nextAnd(a, b bitfield, from, to int32, budget int) (i int32, ok, exhausted bool) {
	if from >= to {
		return 0, false, false
	}
	w := int(from >> 6)
	last := int((to - 1) >> 6)
	mask := ^uint64(0) << (uint(from) & 63)
	for n := 0; w <= last; w, n = w+1, n+1 {
		if n == budget {
			return 0, false, true
		}
		word := a[w] & mask
		if b != nil {
			word &= b[w]
		}
		mask = ^uint64(0)
		if word != 0 {
			i = int32(w*64 + bits.TrailingZeros64(word))
			if i >= to {
				return 0, false, false
			}
			return i, true, false
		}
	}
	return 0, false, false
}

// parseWire decodes the wire form of a set of n chunks (HAVE_BITFIELD),
// which package bitfield defines: ⌈n/8⌉ bytes, chunk i under mask
// 0x80>>(i%8) of byte i/8, the spare bits zero. The length is checked
// before anything is allocated.
func parseWire(n int32, wire []byte) (bitfield, error) {
	w, err := wirebits.Words(nil, int64(n), wire)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBitfield, err)
	}
	return bitfield(w), nil
}

// wire encodes the first n bits of b in the form parseWire reads.
func (b bitfield) wire(n int32) []byte { return wirebits.FromWords(int64(n), b) }
