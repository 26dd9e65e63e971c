package chunker

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// FastCDC, exactly as peer cuts, so that any implementation can reproduce
// the chunk boundaries (and so the CIDs) of a root from Min, Avg and Max.
//
// It is FastCDC (Xia et al., "FastCDC: a Fast and Efficient Content-Defined
// Chunking Approach for Data Deduplication", USENIX ATC 2016, and its 2020
// journal version in IEEE TPDS), Algorithm 1 with normalized chunking at
// level 2, the masks of the 2020 version as published by nlfiedler/fastcdc-rs
// (module v2020), and our own gear table.
//
// Gear table (the one-line rule):
//
//	GEAR[i] = big-endian uint64 of the first 8 bytes of SHA-256([]byte{byte(i)}), i = 0..255
//
// so GEAR[0] = 0x6e340b9cffb37a98 (SHA-256 of the byte 0x00 starts 6e340b9c).
//
// Masks: with Avg = 2^b (b = log2 Avg), MaskS = MASKS[b+2] and MaskL =
// MASKS[b-2], where MASKS is the table masks below; MASKS[k] has exactly k
// one-bits spread over bits 4..47. MaskS (more bits, so a cut is less likely)
// applies before the chunk reaches Avg bytes, MaskL (fewer bits) after, which
// pulls chunk sizes towards Avg.
//
// Cutting: a stream is cut into consecutive chunks, the first starting at
// offset 0 and each following one where the previous ended. For a chunk
// starting at data[0], with n bytes left in the stream and limit = min(n, Max):
//
//	h := uint64(0)
//	for i := Min; i < limit; i++ {
//		h = h<<1 + GEAR[data[i]]          // modulo 2^64
//		mask := MaskL
//		if i < Avg {
//			mask = MaskS
//		}
//		if h&mask == 0 {
//			return i                      // the chunk is data[:i]; byte i starts the next one
//		}
//	}
//	return limit                          // the chunk is data[:limit]
//
// The first Min bytes of a chunk are never hashed (cut-point skipping), so
// every chunk is at least Min bytes long and at most Max, except the last of
// a stream, which holds whatever is left (1 to Max bytes). An empty stream
// has no chunks. Because a 64-bit gear hash shifted left once per byte
// forgets a byte after 64 steps, a boundary depends only on the 64 bytes
// before it and on where the chunk began: an edit moves only the boundaries
// near it, and the chunking falls back into step after it.
//
// Implementation notes (they do not change the result): the search can stop
// at the end of the bytes read so far and resume when more arrive, since a
// cut found before limit does not depend on later bytes; and the inner loop
// takes two bytes per step as in fastcdc-rs v2020, comparing the first
// byte's hash shifted left once against the mask shifted left once (the
// masks' top bit is zero, so nothing is lost).

// masks are the normalized-chunking masks of FastCDC 2020, indexed by their
// number of one-bits (entries below 5 are unused).
var masks = [26]uint64{
	5:  0x0000000001804110,
	6:  0x0000000001803110,
	7:  0x0000000018035100,
	8:  0x0000001800035300,
	9:  0x0000019000353000,
	10: 0x0000590003530000,
	11: 0x0000d90003530000,
	12: 0x0000d90103530000,
	13: 0x0000d90303530000,
	14: 0x0000d90313530000,
	15: 0x0000d90f03530000,
	16: 0x0000d90303537000,
	17: 0x0000d90703537000,
	18: 0x0000d90707537000,
	19: 0x0000d91707537000,
	20: 0x0000d91747537000,
	21: 0x0000d91767537000,
	22: 0x0000d93767537000,
	23: 0x0000d93777537000,
	24: 0x0000d93777577000,
	25: 0x0000db3777577000,
}

// normLevel is FastCDC's normalization level: MaskS has log2(Avg)+normLevel
// bits and MaskL log2(Avg)-normLevel.
const normLevel = 2

// gear is the gear table, GEAR in the description above. It is computed once
// at package initialization and never written afterwards.
var gear = gearTable()

// gearTable computes GEAR by its one-line rule.
func gearTable() [256]uint64 {
	var g [256]uint64
	for i := range g {
		sum := sha256.Sum256([]byte{byte(i)})
		g[i] = binary.BigEndian.Uint64(sum[:8])
	}
	return g
}

// cutter finds chunk boundaries in a stream, one chunk at a time, and keeps
// the state of an unfinished search so that it can resume when more bytes
// arrive. Not safe for concurrent use.
type cutter struct {
	fixed         bool
	min, avg, max int
	maskS, maskL  uint64
	// pos and h are the resumable search state of the current chunk: the
	// next index to hash and the gear hash so far.
	pos int
	h   uint64
	// bitsS and bitsL are cutPar's bitmaps, kept for the next buffer.
	bitsS, bitsL []uint64
}

// newCutter returns a cutter for p. p must be valid for its algorithm, with
// sizes that may be below MinSize (tests use small ones): Size ≥ 1 for
// Fixed; 1 ≤ Min ≤ Avg ≤ Max with Avg a power of two from 128 to 8 MiB for
// FastCDC.
func newCutter(p Params) *cutter {
	if p.Algorithm == Fixed {
		return &cutter{fixed: true, max: p.Size}
	}
	b := bits.TrailingZeros(uint(p.Avg))
	return &cutter{
		min: p.Min, avg: p.Avg, max: p.Max,
		maskS: masks[b+normLevel], maskL: masks[b-normLevel],
		pos: p.Min,
	}
}

// next returns the length of the chunk that starts at data[0], or 0 when it
// cannot tell yet. data holds the bytes read so far from the chunk's start;
// eof says that they are all the stream has left. With eof, 0 means data is
// empty. The state of an unfinished search is kept for the next call, which
// must pass the same bytes again, followed by more.
func (c *cutter) next(data []byte, eof bool) int {
	n := len(data)
	if c.fixed {
		switch {
		case n >= c.max:
			return c.max
		case eof:
			return n
		}
		return 0
	}
	limit := min(n, c.max)
	final := eof || n >= c.max // limit is where the search must end
	if limit <= c.min {
		if final {
			return limit
		}
		return 0
	}
	i, h := c.pos, c.h
	if i < c.avg {
		end := min(limit, c.avg)
		cut, hh := scan(data[:end], i, h, c.maskS)
		if cut >= 0 {
			c.pos, c.h = c.min, 0
			return cut
		}
		i, h = end, hh
	}
	if i < limit {
		cut, hh := scan(data[:limit], i, h, c.maskL)
		if cut >= 0 {
			c.pos, c.h = c.min, 0
			return cut
		}
		i, h = limit, hh
	}
	if final {
		c.pos, c.h = c.min, 0
		return limit
	}
	c.pos, c.h = i, h
	return 0
}

// scan rolls the gear hash h over data[i:] and returns the first index whose
// hash has no bit of mask set and 0 (nobody resumes a search from a cut), or
// -1 and the hash after the last byte. It
// takes scanLanes where the mask makes a cut rare enough to pay, scanSerial
// elsewhere; both give the same result.
func scan(data []byte, i int, h, mask uint64) (int, uint64) {
	if bits.OnesCount64(mask) >= laneMinBits {
		return scanLanes(data, i, h, mask)
	}
	return scanSerial(data, i, h, mask)
}

// scanSerial is scan, one hash at a time, two bytes a step.
func scanSerial(data []byte, i int, h, mask uint64) (int, uint64) {
	g := &gear
	maskLS := mask << 1
	d := data[i:]
	j := 0
	// Two bytes a step: h<<2 + GEAR[b0]<<1 is the hash after b0 shifted
	// left once, tested against the mask shifted left once.
	for ; j+1 < len(d); j += 2 {
		h = h<<2 + g[d[j]]<<1
		if h&maskLS == 0 {
			return i + j, 0
		}
		h += g[d[j+1]]
		if h&mask == 0 {
			return i + j + 1, 0
		}
	}
	if j < len(d) {
		h = h<<1 + g[d[j]]
		if h&mask == 0 {
			return i + j, 0
		}
	}
	return -1, h
}

// Lanes of scanLanes: a block of laneBlock bytes is scanned as laneCount
// runs of laneLen bytes side by side, so that the CPU overlaps their
// independent shift-and-add chains (one chain runs at about one byte per
// cycle, bound by its latency; several run at the rate the CPU can issue
// their loads, adds and tests, some four instructions a byte).
const (
	laneCount = 8
	laneLen   = 4 << 10
	laneBlock = laneCount * laneLen
	// laneMinBits is the fewest mask bits for which scan takes lanes: a cut
	// is then expected every 64 KiB or more, two blocks, so the block that
	// holds it and is scanned twice costs little. With fewer bits the
	// serial scan is as fast.
	laneMinBits = 16
)

// scanLanes is scan over whole blocks of laneBlock bytes, with the vector
// filter where the CPU has one and the mask suits it (gearFilterScan), else
// in laneCount lanes side by side (gearBlock); and scanSerial over the rest.
//
// Why a lane gives the hash scan would: the gear hash at index p is
// h(p) = sum of GEAR[data[q]] << (p-q) over the hashed indexes q ≤ p, modulo
// 2^64, so a byte 64 or more indexes back adds nothing. A lane that starts
// at index s > i+63 starts from 0 and first hashes data[s-63:s] without
// testing them; from s on its hash is h(p) exactly. The first lane goes on
// from i and h. When a lane finds a cut, the block is scanned again
// serially from its start, which returns the first cut (the lanes' cuts are
// true cuts, but a lane before the one that found it may hold an earlier
// one further on).
func scanLanes(data []byte, i int, h, mask uint64) (int, uint64) {
	filter := useFilter(mask)
	var cand [filterCap]uint32
	for len(data)-i >= laneBlock {
		if filter {
			if cut, hh, ok := gearFilterScan(data, i, h, mask, &cand); ok {
				if cut >= 0 {
					return cut, hh
				}
				h = hh
				i += laneBlock
				continue
			}
		}
		hl, hit := gearBlock(&data[i], h, mask, &gear)
		if hit {
			if cut, hh := scanSerial(data[:i+laneBlock], i, h, mask); cut >= 0 {
				return cut, hh
			}
			panic("chunker: a lane of the gear scan found a cut that the serial scan does not")
		}
		h = hl // the last lane ends where the block does
		i += laneBlock
	}
	return scanSerial(data, i, h, mask)
}

// gearBlockGo is gearBlock in Go, for every architecture: the gear scan of
// the laneBlock bytes at p, laneCount lanes of laneLen bytes, the first
// going on from h. It reports whether a lane found a position whose hash
// has no bit of mask set, or else returns the hash after the block's last
// byte. It takes the lanes four at a time (more would not fit in the
// registers that the compiler gives a Go loop).
func gearBlockGo(p *byte, h, mask uint64) (uint64, bool) {
	const half = laneBlock / 2
	for j := range 2 {
		b := (*[half]byte)(unsafe.Add(unsafe.Pointer(p), j*half))
		var hit bool
		if h, hit = gearLanes4(b, h, mask); hit {
			return 0, true
		}
	}
	return h, false
}

// gearLanes4 is gearBlockGo over four lanes of laneLen bytes.
func gearLanes4(b *[laneBlock / 2]byte, h, mask uint64) (uint64, bool) {
	g := &gear
	maskLS := mask << 1
	var h1, h2, h3 uint64
	for k := laneLen - 63; k < laneLen; k++ {
		h1 = h1<<1 + g[b[k]]
		h2 = h2<<1 + g[b[k+laneLen]]
		h3 = h3<<1 + g[b[k+2*laneLen]]
	}
	h0 := h
	// Two bytes a step, as in scanSerial.
	for k := 0; k < laneLen; k += 2 {
		h0 = h0<<2 + g[b[k]]<<1
		h1 = h1<<2 + g[b[k+laneLen]]<<1
		h2 = h2<<2 + g[b[k+2*laneLen]]<<1
		h3 = h3<<2 + g[b[k+3*laneLen]]<<1
		if h0&maskLS == 0 || h1&maskLS == 0 || h2&maskLS == 0 || h3&maskLS == 0 {
			return 0, true
		}
		h0 += g[b[k+1]]
		h1 += g[b[k+1+laneLen]]
		h2 += g[b[k+1+2*laneLen]]
		h3 += g[b[k+1+3*laneLen]]
		if h0&mask == 0 || h1&mask == 0 || h2&mask == 0 || h3&mask == 0 {
			return 0, true
		}
	}
	return h3, false
}
