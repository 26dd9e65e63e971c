package chunker

import (
	"math/bits"
	"sync"
)

// Parallel boundary finding: the same cuts as the sequential cutter, found on
// several cores at once.
//
// What our FastCDC (cdc.go) lets us rely on, and what not. The cut that ends
// a chunk depends only on where the chunk starts and on the bytes from there
// to at most Max bytes on (and on whether the stream ends there), so a
// boundary cannot be found without knowing where its chunk starts. But the
// hash itself forgets: at index i of a chunk it is the sum of GEAR[byte] <<
// (i-q) over the hashed indexes q, modulo 2^64, so a byte 64 or more indexes
// back adds nothing. Once a chunk has hashed 64 bytes (i ≥ Min+63), its hash
// at a position p is H(p), the hash of the 64 bytes that end at p, whatever
// the chunk's start. What still depends on the start is which mask applies
// (MaskS before Avg, MaskL after), the first 63 hashes after Min (fewer
// bytes than the window), and Min and Max themselves.
//
// So the buffer is cut into segments. Segment 0 is cut by the sequential
// cutter, resuming the search the last buffer left unfinished, as far as it
// can go without looking past its end. Meanwhile every other segment is
// scanned whole on a goroutine of its own, as if a chunk could start
// anywhere: it computes H(p) at every position and marks in two bitmaps the
// positions where H(p) & MaskS == 0 and where H(p) & MaskL == 0 (the scan
// stops at H(p) & MaskS & MaskL == 0, rare, and tells the two apart there).
// Then a sequential pass goes on with the true chain: for a chunk that
// starts at l, it hashes the 63 positions from l+Min on itself, and past
// them looks up the first marked position in the bitmap of the mask that
// applies (MaskS before l+Avg, MaskL after), up to l+Max. It rescans
// nothing but those 63 bytes per chunk, whatever the data (all zeros, where
// every chunk is Max bytes, included). The segments after the first cost a
// quarter more than the sequential cut, which skips the first Min bytes of
// every chunk and so hashes three quarters of them (Min = Avg/4): segment 0
// is made longer to even out the work.

// cutPar appends to ends the end of every chunk that data completes, as
// calling c.next over data would (data starts where c's current chunk
// starts, with c's unfinished search resumed), and leaves c's state as those
// calls would. eof says that data ends the stream. It cuts segs segments at
// once, segs-1 of them on goroutines that it starts and waits for; segs < 2
// cuts sequentially. c must be a FastCDC cutter.
func (c *cutter) cutPar(data []byte, eof bool, segs int, ends []int) []int {
	n := len(data)
	t := seams(n, segs)
	if len(t) < 3 {
		return c.cutSeq(data, 0, n, eof, ends)
	}
	words := (n + 63) / 64
	if cap(c.bitsS) < words {
		c.bitsS, c.bitsL = make([]uint64, words), make([]uint64, words)
	}
	bitsS, bitsL := c.bitsS[:words], c.bitsL[:words]
	var wg sync.WaitGroup
	for j := 1; j < len(t)-1; j++ {
		wg.Go(func() { c.mark(data, t[j], t[j+1], bitsS, bitsL) })
	}
	// The true chain through segment 0, meanwhile: every cut that the
	// bytes before t[1] decide; the search for the next one stops at t[1].
	// (A search resumed past t[1] goes on from the bitmaps.)
	l := 0
	for c.pos <= t[1]-l || c.pos == c.min {
		m := c.next(data[l:t[1]], false)
		if m == 0 {
			break
		}
		l += m
		ends = append(ends, l)
	}
	wg.Wait()
	// The true chain on through the other segments, from the bitmaps.
	for {
		m := c.nextMarked(data, l, eof, bitsS, bitsL)
		if m == 0 {
			return ends
		}
		l += m
		ends = append(ends, l)
	}
}

// seams returns where the segments of n bytes start, then n: segment j is
// [t[j], t[j+1]). Segment 0 weighs 4, the others 3 (see above). The starts
// after 0 are multiples of 64, so that the goroutines that mark them write
// distinct words of the bitmaps; segments that would be empty are left out.
func seams(n, segs int) []int {
	t := []int{0}
	for j := 1; j < segs; j++ {
		b := n * (4 + 3*(j-1)) / (4 + 3*(segs-1)) &^ 63
		if b > t[len(t)-1] && b < n {
			t = append(t, b)
		}
	}
	return append(t, n)
}

// mark scans data[from:to] as if a chunk could start anywhere and sets bit
// p of bitsS where H(p) & MaskS == 0 and of bitsL where H(p) & MaskL == 0,
// clearing the other bits of its words first. from and to are multiples of
// 64, but for to = len(data).
func (c *cutter) mark(data []byte, from, to int, bitsS, bitsL []uint64) {
	clear(bitsS[from/64 : (to+63)/64])
	clear(bitsL[from/64 : (to+63)/64])
	both := c.maskS & c.maskL
	i, h := from, windowHash(data[:from])
	for {
		p, _ := scan(data[:to], i, h, both)
		if p < 0 {
			return
		}
		h = windowHash(data[:p+1])
		if h&c.maskS == 0 {
			bitsS[p/64] |= 1 << (p % 64)
		}
		if h&c.maskL == 0 {
			bitsL[p/64] |= 1 << (p % 64)
		}
		i = p + 1
	}
}

// windowHash returns the gear hash of the last 64 bytes of data (of all of
// them if fewer): H(len(data)-1).
func windowHash(data []byte) uint64 {
	var h uint64
	for _, b := range data[max(0, len(data)-64):] {
		h = h<<1 + gear[b]
	}
	return h
}

// nextMarked is c.next(data[l:], eof) for a chunk whose positions from
// l+Min+63 on (or from where c's search stopped, if later) are marked in
// the bitmaps of mark.
func (c *cutter) nextMarked(data []byte, l int, eof bool, bitsS, bitsL []uint64) int {
	n := len(data) - l
	limit := min(n, c.max)
	final := eof || n >= c.max
	if limit <= c.min {
		if final {
			return limit
		}
		return 0
	}
	i, h := c.pos, c.h
	// The first 63 positions hash fewer bytes than the window: as next.
	for end := min(limit, c.min+63); i < end; i++ {
		h = h<<1 + gear[data[l+i]]
		mask := c.maskL
		if i < c.avg {
			mask = c.maskS
		}
		if h&mask == 0 {
			c.pos, c.h = c.min, 0
			return i
		}
	}
	if i < limit {
		if i < c.avg {
			if p := firstSet(bitsS, l+i, l+min(limit, c.avg)); p >= 0 {
				c.pos, c.h = c.min, 0
				return p - l
			}
		}
		if a := max(i, c.avg); a < limit {
			if p := firstSet(bitsL, l+a, l+limit); p >= 0 {
				c.pos, c.h = c.min, 0
				return p - l
			}
		}
		i, h = limit, windowHash(data[l+max(c.min, limit-64):l+limit])
	}
	if final {
		c.pos, c.h = c.min, 0
		return limit
	}
	c.pos, c.h = i, h
	return 0
}

// firstSet returns the first index in [from, to) whose bit is set, or -1.
func firstSet(set []uint64, from, to int) int {
	for p := from; p < to; {
		w := set[p/64] >> (p % 64)
		if w != 0 {
			if q := p + bits.TrailingZeros64(w); q < to {
				return q
			}
			return -1
		}
		p = (p/64 + 1) * 64
	}
	return -1
}

// cutSeq goes on with c's chain from data[from:], appending the end of every
// chunk it completes, until a chunk ends at or past to or the next chunk is
// undecided (c then keeps its search).
func (c *cutter) cutSeq(data []byte, from, to int, eof bool, ends []int) []int {
	for l := from; l < to; {
		m := c.next(data[l:], eof)
		if m == 0 {
			break
		}
		l += m
		ends = append(ends, l)
	}
	return ends
}
