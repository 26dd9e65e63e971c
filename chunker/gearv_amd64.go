//go:build !purego

package chunker

import (
	"math/bits"
	"slices"

	"golang.org/x/sys/cpu"
)

// The vector filter of the gear scan (gearFilter, gearv_amd64.s): it scans
// a block of laneBlock bytes as filterRuns runs of filterRun bytes, all at
// once in the lanes of AVX-512 registers, keeping only the low 32 bits of
// each hash. Those bits are exact (h*2 + GEAR[b] modulo 2^32 needs only the
// low bits of h and of the table), so a position whose hash has no bit of
// the mask set always passes the test of the mask's low 32 bits; a few
// other positions pass too. gearFilterScan checks each candidate against
// the full 64-bit hash, so the result is the serial scan's, exactly.
const (
	filterRuns = 16
	filterRun  = laneBlock / filterRuns
	// filterCap bounds the candidate steps gearFilter records per block;
	// past it the block is scanned by gearBlock instead. Each step where
	// some run passes takes four entries (its group of four steps).
	filterCap = 512
	// filterMaxPos bounds the candidate positions gearFilterScan checks
	// against the full hash (some 25 ns each) per block; past it the block
	// is scanned by gearBlock instead (some 9 µs), so that data made to
	// pass the filter everywhere costs little more than any other.
	filterMaxPos = 256
	// filterMinBits is the fewest bits in the mask's low 32 for which the
	// filter is used: with fewer, too many positions pass. The masks of
	// Avg ≥ 64 KiB have 10 or more (MaskL of a 1 MiB Avg: 10; MaskS: 12).
	filterMinBits = 10
)

// The assembly is written for these: a change must change it too.
var (
	_ = [1]struct{}{}[filterRuns-16]
	_ = [1]struct{}{}[filterRun-2048]
)

// hasFilter reports whether this CPU and OS run gearFilter. Set at package
// initialization, never written afterwards.
var hasFilter = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VBMI

// gearPlanes holds the low 32 bits of the gear table as four byte planes:
// gearPlanes[j][b] is byte j of uint32(GEAR[b]). Computed at package
// initialization, never written afterwards.
var gearPlanes = func() (p [4][256]byte) {
	for b, g := range gear {
		for j := range p {
			p[j][b] = byte(g >> (8 * j))
		}
	}
	return p
}()

//go:noescape
func gearFilter(p *byte, h32, m32 uint32, planes *[4][256]byte, out *[filterCap]uint32) int

// useFilter reports whether scanLanes takes gearFilterScan for mask.
func useFilter(mask uint64) bool {
	return hasFilter && bits.OnesCount32(uint32(mask)) >= filterMinBits
}

// gearFilterScan is scanLanes' step for the block data[i:i+laneBlock]
// with gearFilter: the first cut in the block and 0, or -1 and the hash
// after the block. ok is false when the filter passed too many positions:
// scan the block otherwise.
func gearFilterScan(data []byte, i int, h, mask uint64, cand *[filterCap]uint32) (cut int, hh uint64, ok bool) {
	var buf [filterMaxPos]int
	pos, ok := filterPositions(data, i, h, mask, cand, &buf)
	if !ok {
		return 0, 0, false
	}
	slices.Sort(pos)
	for _, q := range pos {
		// The first candidate whose full hash passes is the first cut:
		// no position before it passed the filter.
		if p := i + q; maskedHash(data, i, h, p)&mask == 0 {
			return p, 0, true
		}
	}
	return -1, exactHash(data, i, h, i+laneBlock-1), true
}

// filterPositions runs gearFilter over the block data[i:i+laneBlock],
// going on from h, the hash after i-1, and returns the candidate positions
// it passes, relative to i, in no order, in buf: every position of the
// block whose hash has no bit of mask set is among them. ok is false when
// the filter passed too many (more than filterMaxPos).
func filterPositions(data []byte, i int, h, mask uint64, cand *[filterCap]uint32, buf *[filterMaxPos]int) (pos []int, ok bool) {
	n := gearFilter(&data[i], uint32(h), uint32(mask), &gearPlanes, cand)
	if n < 0 {
		return nil, false
	}
	pos = buf[:0]
	for _, e := range cand[:n] {
		step := int(e >> 16)
		for runs := uint16(e); runs != 0; runs &= runs - 1 {
			if len(pos) == filterMaxPos {
				return nil, false
			}
			pos = append(pos, bits.TrailingZeros16(runs)*filterRun+step)
		}
	}
	return pos, true
}
