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
// So the buffer is shared out at run time between the true chain and
// markers. The chain (the sequential cutter, resuming the search the last
// buffer left unfinished) claims the buffer from its start, a piece at a
// time, just ahead of where its search stands; each of segs-1 goroutines
// claims granules from the end down and scans each whole, as if a chunk
// could start anywhere: it computes H(p) at every position and marks in two
// bitmaps the positions where H(p) & MaskS == 0 and where H(p) & MaskL == 0
// (only positions where H(p) & MaskS & MaskL == 0, rare, are looked at).
// When the two meet, the chain goes on from where its search stands, past
// which everything is marked: for a chunk that starts at l, it hashes the
// 63 positions from l+Min on itself, and past them looks up the first
// marked position in the bitmap of the mask that applies (MaskS before
// l+Avg, MaskL after), up to l+Max. It rescans nothing but those 63 bytes
// per chunk, whatever the data (all zeros, where every chunk is Max bytes,
// included).
//
// Where they meet is decided by who is faster, not fixed in advance: a
// marker scans every byte of its granules, the chain only three quarters
// of its part (it skips the first Min bytes of every chunk, Min = Avg/4),
// and a marker may get its core late or not at all on a loaded machine
// (then the chain claims the whole buffer and cuts it alone, as fast as
// the sequential cutter). Fixed segments, as an earlier version had, left
// one core idle for a third of the time and made two segments slower than
// one. The claims are of whole lane blocks (laneBlock) ahead of the
// search, and the granules multiples of it, so that the scans rarely end
// in a partial block (which the lane scans take serially, at a third of
// their speed).

// cutPar appends to ends the end of every chunk that data completes, as
// calling c.next over data would (data starts where c's current chunk
// starts, with c's unfinished search resumed), and leaves c's state as those
// calls would. eof says that data ends the stream. It shares the work with
// segs-1 goroutines that it starts and waits for; segs < 2 cuts
// sequentially. c must be a FastCDC cutter.
func (c *cutter) cutPar(data []byte, eof bool, segs int, ends []int) []int {
	return c.cutParGranule(data, eof, segs, parGranule(len(data), segs), ends)
}

// parGranuleMax is the largest granule a marker claims at a time: four
// lane blocks, some 20 µs of scanning, so that the chain and the markers
// meet within that of each other.
const parGranuleMax = 4 * laneBlock

// parGranule returns the granule of cutPar for n bytes and segs segments:
// parGranuleMax, or for a short buffer a sixteenth of each segment's
// share, a multiple of 64 bytes.
func parGranule(n, segs int) int {
	g := n / (16 * max(segs, 1))
	if g >= laneBlock {
		return min(parGranuleMax, g/laneBlock*laneBlock)
	}
	return max(64, g&^63)
}

// cutParGranule is cutPar with markers that claim granule bytes at a time
// (a multiple of 64).
func (c *cutter) cutParGranule(data []byte, eof bool, segs, granule int, ends []int) []int {
	n := len(data)
	if segs < 2 || n <= granule {
		return c.cutSeq(data, 0, n, eof, ends)
	}
	sp := c.parStart(n)
	var wg sync.WaitGroup
	for range segs - 1 {
		wg.Go(func() { c.markHigh(data, sp, granule, -1) })
	}
	l, ends := c.cutLow(data, eof, sp, granule, ends)
	wg.Wait()
	return c.cutMarked(data, l, eof, ends)
}

// parSpan is the part [lo, hi) of a buffer that neither the chain nor a
// marker has claimed yet. lo and hi are multiples of 64 or the buffer's
// length, so that markers write distinct words of the bitmaps.
type parSpan struct {
	mu     sync.Mutex
	lo, hi int
}

// parStart makes the bitmaps ready for n bytes and returns the span of a
// buffer of n bytes, all unclaimed.
func (c *cutter) parStart(n int) *parSpan {
	words := (n + 63) / 64
	if cap(c.bitsS) < words {
		c.bitsS, c.bitsL = make([]uint64, words), make([]uint64, words)
	}
	c.bitsS, c.bitsL = c.bitsS[:words], c.bitsL[:words]
	return &parSpan{hi: n}
}

// takeLow claims for the chain what is unclaimed below to (rounded up to a
// multiple of 64) and returns where its claim now ends.
func (s *parSpan) takeLow(to int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if to = min(s.hi, (to+63)&^63); to > s.lo {
		s.lo = to
	}
	return s.lo
}

// takeHigh claims for a marker the top granule bytes of what is unclaimed
// (fewer where that meets the chain's claim, and from a multiple of 64):
// [from, to), or ok false when nothing is left.
func (s *parSpan) takeHigh(granule int) (from, to int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hi <= s.lo {
		return 0, 0, false
	}
	from, to = max(s.lo, (s.hi-granule)&^63), s.hi
	s.hi = from
	return from, to, true
}

// markHigh is a marker: it claims granules from the top of sp and marks
// them, until nothing is left or it has marked most (most < 0: no limit).
func (c *cutter) markHigh(data []byte, sp *parSpan, granule, most int) {
	for k := 0; k != most; k++ {
		from, to, ok := sp.takeHigh(granule)
		if !ok {
			return
		}
		c.mark(data, from, to, c.bitsS, c.bitsL)
	}
}

// cutLow is the chain: it goes on with c's chain from data[0], claiming
// the bytes a little ahead of its search (see above), appending the end of
// every chunk it completes, until it finds nothing more to claim. It
// returns where its current chunk starts. From there on, every position
// past where its search stands (and past Min+63 into the chunk) is marked
// or its own.
func (c *cutter) cutLow(data []byte, eof bool, sp *parSpan, granule int, ends []int) (int, []int) {
	n := len(data)
	align := 64
	if granule%laneBlock == 0 {
		align = laneBlock
	}
	l, got := 0, 0
	for {
		// The search hashes from l+c.pos on, with MaskS up to l+Avg and
		// MaskL after, in lane blocks from where each mask starts: claim
		// up to a whole number of blocks past one of those.
		want := l + c.pos + granule
		if a := l + c.avg; c.pos < c.avg && a < want {
			want = a + (want-a+align-1)/align*align
		}
		end := sp.takeLow(min(n, want))
		if end <= got {
			return l, ends
		}
		got = end
		// A search resumed from the last buffer may stand past the
		// claim already.
		for got-l >= c.pos || got == n {
			m := c.next(data[l:got], eof && got == n)
			if m == 0 {
				break
			}
			l += m
			ends = append(ends, l)
		}
	}
}

// cutMarked goes on with c's chain from l to the end of data, from the
// bitmaps, appending the end of every chunk it completes.
func (c *cutter) cutMarked(data []byte, l int, eof bool, ends []int) []int {
	for {
		m := c.nextMarked(data, l, eof, c.bitsS, c.bitsL)
		if m == 0 {
			return ends
		}
		l += m
		ends = append(ends, l)
	}
}

// mark scans data[from:to] as if a chunk could start anywhere and sets bit
// p of bitsS where H(p) & MaskS == 0 and of bitsL where H(p) & MaskL == 0,
// clearing the other bits of its words first. from is a multiple of 64, to
// too or len(data). It takes the lane blocks from from through the vector
// filter where it can (every candidate checked against the full hash), in
// lanes otherwise (a block where some lane finds a position is scanned
// again serially), and the rest serially.
func (c *cutter) mark(data []byte, from, to int, bitsS, bitsL []uint64) {
	clear(bitsS[from/64 : (to+63)/64])
	clear(bitsL[from/64 : (to+63)/64])
	both := c.maskS & c.maskL
	filter := useFilter(both)
	var (
		cand [filterCap]uint32
		pos  [filterMaxPos]int
	)
	i, h := from, windowHash(data[:from])
	for ; to-i >= laneBlock; i += laneBlock {
		if filter {
			if ps, ok := filterPositions(data, i, h, both, &cand, &pos); ok {
				for _, q := range ps {
					p := i + q
					c.markAt(p, maskedHash(data, i, h, p), bitsS, bitsL)
				}
				h = exactHash(data, i, h, i+laneBlock-1)
				continue
			}
		}
		if hl, hit := gearBlock(&data[i], h, both, &gear); !hit {
			h = hl
			continue
		}
		h = c.markSerial(data, i, i+laneBlock, h, bitsS, bitsL)
	}
	c.markSerial(data, i, to, h, bitsS, bitsL)
}

// markSerial is mark over data[i:to], one hash at a time, going on from h,
// the hash after i-1. It returns the hash after to-1.
func (c *cutter) markSerial(data []byte, i, to int, h uint64, bitsS, bitsL []uint64) uint64 {
	both := c.maskS & c.maskL
	for p := i; p < to; p++ {
		h = h<<1 + gear[data[p]]
		if h&both == 0 {
			c.markAt(p, h, bitsS, bitsL)
		}
	}
	return h
}

// markAt sets bit p of bitsS if h, the hash at p (or its low 48 bits:
// maskedHash), has no bit of MaskS set, and of bitsL if it has none of
// MaskL.
func (c *cutter) markAt(p int, h uint64, bitsS, bitsL []uint64) {
	if h&c.maskS == 0 {
		bitsS[p/64] |= 1 << (p % 64)
	}
	if h&c.maskL == 0 {
		bitsL[p/64] |= 1 << (p % 64)
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

// exactHash returns the gear hash after index p of a scan that was at index
// i with hash h (p ≥ i-1): rolled on from h over data[i:p+1] when that is
// short, else the hash of the 64 bytes that end at p, which is the same.
func exactHash(data []byte, i int, h uint64, p int) uint64 {
	if p-i+1 >= 64 {
		return windowHash(data[p-63 : p+1])
	}
	for _, b := range data[i : p+1] {
		h = h<<1 + gear[b]
	}
	return h
}

// maskedHash returns exactHash(data, i, h, p) & hashBits48, which is all
// that a test against a mask of the table looks at (masks have bits 4 to
// 47 only). A term GEAR[b] << k adds nothing below bit k, so from p-i+1 ≥
// 48 on only the 48 bytes that end at p count: they are hashed as three
// runs of 16, side by side, so that the CPU overlaps their chains (a third
// of the latency of exactHash, which checks a candidate of the vector
// filter with 64 dependent steps).
func maskedHash(data []byte, i int, h uint64, p int) uint64 {
	if p-i+1 < 48 {
		return exactHash(data, i, h, p) & hashBits48
	}
	d := data[p-47 : p+1 : p+1]
	var h0, h1, h2 uint64
	for k := range 16 {
		h2 = h2<<1 + gear[d[k]]
		h1 = h1<<1 + gear[d[16+k]]
		h0 = h0<<1 + gear[d[32+k]]
	}
	return (h0 + h1<<16 + h2<<32) & hashBits48
}

// hashBits48 keeps the bits of a gear hash that the masks test.
const hashBits48 = 1<<48 - 1

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
