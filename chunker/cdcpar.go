package chunker

import "sync"

// Parallel boundary finding: the same cuts as the sequential cutter, found on
// several cores at once.
//
// What our FastCDC (cdc.go) lets us rely on: the cut that ends a chunk
// depends only on where the chunk starts, on the bytes from there to at most
// Max bytes on, and on whether the stream ends there. It does not depend on
// anything before the chunk's start: the hash starts from 0 at start+Min,
// and the masks change at start+Avg. So a chain of cuts computed from any
// true cut is the true chain from there on, whoever computes it. The gear
// hash's 64-byte window does not help on its own: the first 63 positions
// after start+Min hash fewer bytes than the window, and which mask applies
// depends on the distance to the chunk's start, so a position's verdict is
// not the same for every chunk that could hold it.
//
// So: the buffer is cut into segments. The first is cut by the true chain
// (the caller's cutter, which resumes a search left unfinished by the
// previous buffer); every other segment j is cut on its own goroutine by a
// speculative chain that assumes a chunk starts at the segment's first byte
// t_j and goes on until a cut at or past the next segment's start. Then a
// sequential pass stitches: at seam j the true chain goes on, cutting by
// itself, until one of its cuts equals t_j or a cut of chain j; from there
// it takes chain j's cuts as they are. Content-defined chunking falls back
// into step after an edit, and a seam is one: two chains usually meet at the
// first or second cut past the seam, so the pass rescans about one chunk per
// seam. On data where they never meet (all zeros, where every chunk is Max
// bytes and chains that start at different offsets stay apart), the pass
// rescans the whole segment: as slow as the sequential cutter, never wrong.

// cutPar appends to ends the end of every chunk that data completes, as
// calling c.next over data would (data starts where c's current chunk
// starts, with c's unfinished search resumed), and leaves c's state as those
// calls would. eof says that data ends the stream. It cuts segs segments at
// once, segs-1 of them on goroutines that it starts and waits for; segs < 2
// cuts sequentially. c must be a FastCDC cutter.
func (c *cutter) cutPar(data []byte, eof bool, segs int, ends []int) []int {
	n := len(data)
	segs = min(segs, n)
	if segs < 2 {
		return c.cutSeq(data, 0, n, eof, ends)
	}
	// Segment j is data[t(j):t(j+1)].
	t := func(j int) int { return j * n / segs }
	chains := make([]chain, segs)
	var wg sync.WaitGroup
	for j := 1; j < segs; j++ {
		wg.Go(func() { chains[j] = c.chain(data, t(j), t(j+1), eof) })
	}
	// The true chain through the first segment, meanwhile.
	base := len(ends)
	ends = c.cutSeq(data, 0, t(1), eof, ends)
	wg.Wait()
	last := func() int {
		if len(ends) == base {
			return 0
		}
		return ends[len(ends)-1]
	}
	for j := 1; j < segs; j++ {
		ch := chains[j]
		l, k := last(), 0
		for {
			for k < len(ch.cuts) && ch.cuts[k] < l {
				k++
			}
			if k == len(ch.cuts) {
				break // the true chain went past chain j without meeting it
			}
			if ch.cuts[k] == l {
				// They met: chain j is the true chain from here, and
				// so is the search it left unfinished, if any.
				ends = append(ends, ch.cuts[k+1:]...)
				if ch.open {
					c.pos, c.h = ch.pos, ch.h
				}
				break
			}
			m := c.next(data[l:], eof)
			if m == 0 {
				return ends // the true chain ends undecided before meeting chain j
			}
			l += m
			ends = append(ends, l)
		}
	}
	// After the last chain: the stream's end, or the unfinished chunk,
	// whose search c keeps for the next buffer (resumed where the chain
	// that found it stopped, if the true chain took it).
	return c.cutSeq(data, last(), n, eof, ends)
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

// A chain is a speculative chain of cuts: where it starts, as if a chunk
// started there, then the end of every chunk cut from there on. If open,
// it stopped at a chunk that the bytes cannot decide, with its cutter's
// unfinished search (pos, h) for that chunk.
type chain struct {
	cuts []int
	open bool
	pos  int
	h    uint64
}

// chain cuts the speculative chain from data[from:] until a chunk ends at
// or past to or the next one is undecided. It uses a cutter of its own with
// c's parameters, so it is safe to run beside c.
func (c *cutter) chain(data []byte, from, to int, eof bool) chain {
	sc := &cutter{min: c.min, avg: c.avg, max: c.max, maskS: c.maskS, maskL: c.maskL, pos: c.min}
	ch := chain{cuts: []int{from}}
	for l := from; l < to; {
		m := sc.next(data[l:], eof)
		if m == 0 {
			ch.open, ch.pos, ch.h = true, sc.pos, sc.h
			break
		}
		l += m
		ch.cuts = append(ch.cuts, l)
	}
	return ch
}
