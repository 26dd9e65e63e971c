//go:build !purego

package chunker

import (
	"bytes"
	"slices"
	"testing"
)

// checkGearFilter checks gearFilterScan over the block data[i:i+laneBlock]
// against the serial scan of the same bytes from i with h: the same cut
// and hash when it cuts, the same hash after the block when it does not.
// The filter may give up (too many candidates); then nothing is compared.
// It does nothing where the CPU has no filter.
func checkGearFilter(t *testing.T, data []byte, i int, h, mask uint64) {
	t.Helper()
	if !useFilter(masks[25]) { // no filter on this machine
		return
	}
	var cand [filterCap]uint32
	cut, hh, ok := gearFilterScan(data, i, h, mask, &cand)
	if !ok {
		return
	}
	scut, sh := scanSerial(data[:i+laneBlock], i, h, mask)
	if cut != scut || hh != sh {
		t.Fatalf("gear filter with mask %#x from %d, hash %#x: cut at %d (hash %#x); the serial scan at %d (hash %#x)",
			mask, i, h, cut, hh, scut, sh)
	}
}

// TestGearFilter runs the vector filter of the gear scan over the inputs of
// TestGearBlockAdversarial and random ones, at offsets 0 to 70 into the
// buffer (so that the first run's first 64 hashes, which go on from the
// hash given, are tested), with every mask of the table that has bits in
// the low 32, and checks it against the serial scan. It also checks that
// the masks Split uses take the filter on this machine when it has one.
func TestGearFilter(t *testing.T) {
	if !useFilter(masks[25]) {
		t.Skip("no AVX-512 VBMI gear filter on this machine")
	}
	p := CDCParams(1 << 20)
	c := newCutter(p)
	if !useFilter(c.maskS) || !useFilter(c.maskL) || !useFilter(c.maskS&c.maskL) {
		t.Errorf("the masks of %s do not take the filter", p)
	}
	rnd := randData(41, 8*laneBlock)
	var blocks [][]byte
	for v := 0; v < 256; v += 5 {
		blocks = append(blocks, bytes.Repeat([]byte{byte(v)}, laneBlock+70))
	}
	for _, period := range []int{2, 3, 31, 32, 33, 63, 64, 65, filterRun - 1, filterRun, filterRun + 1} {
		b := make([]byte, laneBlock+70)
		for k := range b {
			b[k] = rnd[k%period]
		}
		blocks = append(blocks, b)
	}
	for r := range filterRuns + 1 {
		for _, d := range []int{-33, -32, -31, -1, 0, 1, 15, 16, 31} {
			if at := r*filterRun + d; at >= 0 && at < laneBlock {
				b := make([]byte, laneBlock+70)
				copy(b, rnd)
				b[at+35] ^= 0xa5
				blocks = append(blocks, b)
			}
		}
	}
	for k := 0; k+laneBlock+70 <= len(rnd); k += laneBlock / 5 {
		blocks = append(blocks, rnd[k:k+laneBlock+70])
	}
	var ms []uint64
	for b := 5; b < len(masks); b++ {
		ms = append(ms, masks[b])
	}
	hs := []uint64{0, 0x9e3779b97f4a7c15, 1 << 63, 0xffff_ffff_0000_0000}
	for n, block := range blocks {
		for m, mask := range ms {
			for _, i := range []int{0, 1, 35, 70} {
				checkGearFilter(t, block, i, hs[(n+m+i)%len(hs)], mask)
			}
		}
	}
	// Cuts planted where a run starts and within its first 32 positions,
	// whose hashes the filter gets from the run's warm-up: 64-byte windows
	// whose hash has no bit of masks[18] set, found in random data, laid
	// so that they end at those positions.
	mask := masks[18]
	var windows [][]byte
	src := randData(42, 16<<20)
	for i := 64; len(windows) < 24; {
		cut, _ := scanSerial(src, i, windowHash(src[i-64:i]), mask)
		if cut < 0 {
			t.Fatalf("only %d windows that cut in %d bytes", len(windows), len(src))
		}
		windows = append(windows, src[cut-63:cut+1])
		i = cut + 64
	}
	cuts := 0
	for r := 1; r < filterRuns; r++ {
		for n, d := range []int{0, 1, 2, 15, 16, 17, 30, 31, 32, 33, 64} {
			b := slices.Clone(rnd[:laneBlock])
			copy(b[r*filterRun+d-63:], windows[(r+n)%len(windows)])
			if cut, _ := scanSerial(b, 0, 0, mask); cut == r*filterRun+d {
				cuts++
			}
			checkGearFilter(t, b, 0, 0, mask)
		}
	}
	// And in run 0, hashed on from the h given: choose the h that makes
	// position q cut, for each q < 64.
	block := rnd[:laneBlock]
	for q := 0; q < 64; q++ {
		// The hash after q+1 bytes is h<<(q+1) + rest: with h = -rest >>
		// (q+1) the bits of it above q are zero, and the mask's bits
		// below q+1 must be zero in rest.
		rest := exactHash(block, 0, 0, q)
		h := -rest >> (q + 1)
		if (h<<(q+1)+rest)&mask != 0 {
			continue
		}
		if cut, _ := scanSerial(block, 0, h, mask); cut == q {
			cuts++
		}
		checkGearFilter(t, block, 0, h, mask)
	}
	t.Logf("%d planted cuts", cuts)
	if cuts < 100 {
		t.Errorf("only %d planted cuts", cuts)
	}
}

// TestGearFilterGivesUp checks that gearFilterScan hands a block on to
// gearBlock when too many positions pass the filter: with a mask of 6 bits
// in its low 32 on random data (the candidate list fills), and with a
// 64-byte pattern repeated, one of whose positions passes masks[18], so
// that every run passes at the same steps (512 positions in few entries).
// A random block with masks[18] is kept.
func TestGearFilterGivesUp(t *testing.T) {
	if !useFilter(masks[25]) {
		t.Skip("no AVX-512 VBMI gear filter on this machine")
	}
	var cand [filterCap]uint32
	data := randData(43, laneBlock)
	if _, _, ok := gearFilterScan(data, 0, 0, masks[8], &cand); ok {
		t.Errorf("mask %#x: the filter kept a block where some 512 positions pass", masks[8])
	}
	mask := masks[18]
	if _, _, ok := gearFilterScan(data, 0, 0, mask, &cand); !ok {
		t.Errorf("mask %#x: the filter gave up a random block", mask)
	}
	for seed := uint64(0); ; seed++ {
		if seed == 1000 {
			t.Fatal("no 64-byte pattern with a position that passes the filter")
		}
		pattern := randData(seed, 64)
		block := bytes.Repeat(pattern, laneBlock/64)
		passes := 0
		for p := 64; p < 128; p++ {
			if uint32(windowHash(block[p-63:p+1]))&uint32(mask) == 0 {
				passes++
			}
		}
		if passes == 0 {
			continue
		}
		if _, _, ok := gearFilterScan(block, 0, 0, mask, &cand); ok {
			t.Errorf("a 64-byte pattern with %d passing positions of 64, repeated: the filter kept the block", passes)
		}
		return
	}
}
