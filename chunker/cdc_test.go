package chunker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// refGear computes the gear table by its rule, once.
var refGear = sync.OnceValue(func() (g [256]uint64) {
	for i := range g {
		sum := sha256.Sum256([]byte{byte(i)})
		g[i] = binary.BigEndian.Uint64(sum[:8])
	}
	return g
})

// refCDC cuts data as the description in cdc.go says, in the most direct
// way, and returns the chunk sizes. The pipeline must agree with it.
func refCDC(data []byte, p Params) []int {
	g := refGear()
	b := bits.Len(uint(p.Avg)) - 1
	maskS, maskL := masks[b+2], masks[b-2]
	sizes := []int{}
	for len(data) > 0 {
		limit := min(len(data), p.Max)
		cut := limit
		h := uint64(0)
		for i := p.Min; i < limit; i++ {
			h = h<<1 + g[data[i]]
			mask := maskL
			if i < p.Avg {
				mask = maskS
			}
			if h&mask == 0 {
				cut = i
				break
			}
		}
		sizes = append(sizes, cut)
		data = data[cut:]
	}
	return sizes
}

func TestGearTable(t *testing.T) {
	// From testdata/fastcdc_ref.py, which applies the rule with Python's hashlib.
	if gear[0] != 0x6e340b9cffb37a98 || gear[255] != 0xa8100ae6aa1940d0 {
		t.Fatalf("GEAR[0] = %#x, GEAR[255] = %#x", gear[0], gear[255])
	}
	if gearTable() != gear {
		t.Fatal("the gear table changed after init")
	}
	seen := map[uint64]bool{}
	for _, v := range gear {
		seen[v] = true
	}
	if len(seen) != 256 {
		t.Fatalf("gear table has %d distinct entries, want 256", len(seen))
	}
}

func TestMasks(t *testing.T) {
	for k := 5; k < len(masks); k++ {
		m := masks[k]
		if bits.OnesCount64(m) != k {
			t.Errorf("masks[%d] = %#x has %d one-bits", k, m, bits.OnesCount64(m))
		}
		if m>>63 != 0 {
			t.Errorf("masks[%d] = %#x has its top bit set: the two-byte step would lose it", k, m)
		}
	}
	// Every valid Avg has both masks in the table.
	for avg := MinSize; avg <= MaxSize; avg *= 2 {
		c := newCutter(CDCParams(avg))
		b := bits.Len(uint(avg)) - 1
		if bits.OnesCount64(c.maskS) != b+2 || bits.OnesCount64(c.maskL) != b-2 {
			t.Errorf("avg %d: masks with %d and %d bits, want %d and %d", avg,
				bits.OnesCount64(c.maskS), bits.OnesCount64(c.maskL), b+2, b-2)
		}
	}
}

// TestCDCVectors checks the cut against vectors computed independently by
// testdata/fastcdc_ref.py, a Python transcription of the description.
func TestCDCVectors(t *testing.T) {
	data := counterData(4 << 20)
	tests := []struct {
		name        string
		data        []byte
		p           Params
		sizes       []int
		first, last string
		allCIDs     string // sha256 of the CIDs joined by "\n"
	}{
		{
			name: "4MiB counter data, 16K/64K/256K", data: data, p: CDCParams(64 << 10),
			sizes: []int{72392, 18675, 88128, 41585, 93189, 65650, 79690, 93221, 75392, 87907, 20374, 32504,
				78427, 86881, 146773, 76360, 70934, 98028, 71581, 92750, 70316, 72502, 54361, 86060, 68057,
				87247, 66692, 65837, 34071, 85077, 83246, 88462, 83075, 79799, 78445, 72803, 68194, 108695,
				67203, 131534, 76852, 66413, 73174, 65730, 81909, 78577, 71686, 46589, 74572, 76932, 93812,
				65942, 70380, 67014, 82405, 60200},
			first:   "bafkreigausgyhgccjgw3fgtu6atgcjrlljlhyagbslgo36cbmknragjaoi",
			last:    "bafkreidyz2h4osbu6mx7hmbkkjoxxhpbqqpi7jduihhgvikkmjww4lmdbe",
			allCIDs: "5206c23f3f4af910904dfd408efcb3092eeead3fd9783f091c481c19e9affec2",
		},
		{
			name: "4MiB counter data, 256K/1M/4M", data: data, p: CDCParams(1 << 20),
			sizes:   []int{740467, 1355117, 1507463, 591257},
			first:   "bafkreiec7o5ot3qluk7q6qblqwsyqqoddbqkceg3rl6t6vwn7jwcuv4oha",
			last:    "bafkreiap3he3ppi3swvkxy2iyojbh2jqchdwb7q62pup6cq5jejvp4uqwq",
			allCIDs: "6c011ec2008558577203f2e4faee13ad2153835a991a0f7b33b94d3d8e22d5f9",
		},
		{
			name: "1MiB zeros: no cut, Max-sized chunks", data: make([]byte, 1<<20), p: CDCParams(64 << 10),
			sizes: []int{262144, 262144, 262144, 262144},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ref := refCDC(tt.data, tt.p); fmt.Sprint(ref) != fmt.Sprint(tt.sizes) {
				t.Fatalf("reference cut %v, want %v", ref, tt.sizes)
			}
			for _, workers := range []int{1, 2} {
				chunks := splitAll(t, bytes.NewReader(tt.data), tt.p, workers)
				checkChunks(t, tt.data, chunks, tt.sizes)
				if tt.first == "" {
					continue
				}
				cids := make([]string, len(chunks))
				for i, c := range chunks {
					cids[i] = c.CID
				}
				sum := sha256.Sum256([]byte(strings.Join(cids, "\n")))
				if cids[0] != tt.first || cids[len(cids)-1] != tt.last || hex.EncodeToString(sum[:]) != tt.allCIDs {
					t.Fatalf("CIDs first %s last %s all %x, want %s %s %s",
						cids[0], cids[len(cids)-1], sum, tt.first, tt.last, tt.allCIDs)
				}
			}
		})
	}
}

// TestCDCAgreesWithReference runs the pipeline over random data with many
// parameter sets and slab sizes (slab = Max makes the unfinished chunk move
// between slabs and the search resume all the time).
func TestCDCAgreesWithReference(t *testing.T) {
	data := randData(12, 200_000)
	tests := []Params{
		{Algorithm: FastCDC, Min: 1, Avg: 128, Max: 128},
		{Algorithm: FastCDC, Min: 64, Avg: 256, Max: 1024},
		{Algorithm: FastCDC, Min: 256, Avg: 256, Max: 300},
		{Algorithm: FastCDC, Min: 1000, Avg: 1024, Max: 1025},
		{Algorithm: FastCDC, Min: 512, Avg: 2048, Max: 8192},
		{Algorithm: FastCDC, Min: 4096, Avg: 4096, Max: 4096},
		{Algorithm: FastCDC, Min: 1, Avg: 8192, Max: 65536},
	}
	for _, p := range tests {
		want := refCDC(data, p)
		for _, slab := range []int{p.Max, p.Max + 1, 3*p.Max + 7, 1 << 20} {
			t.Run(fmt.Sprintf("%s slab %d", p, slab), func(t *testing.T) {
				chunks := runAll(t, bytes.NewReader(data), p, 2, slab)
				checkChunks(t, data, chunks, want)
			})
		}
	}
}

func TestCDCDeterministicAndBounded(t *testing.T) {
	data := randData(13, 8<<20)
	for _, p := range []Params{CDCParams(MinSize), CDCParams(64 << 10), CDCParams(256 << 10),
		{Algorithm: FastCDC, Min: MinSize, Avg: 32 << 10, Max: 40 << 10}} {
		a := splitAll(t, bytes.NewReader(data), p, 2)
		b := splitAll(t, bytes.NewReader(data), p, 3)
		if !same(a, b) {
			t.Fatalf("%s: two runs over the same input differ", p)
		}
		checkChunks(t, data, a, nil)
		for i, c := range a {
			last := i == len(a)-1
			if c.Size > p.Max || (!last && c.Size < p.Min) || c.Size < 1 {
				t.Fatalf("%s: chunk %d of %d has %d bytes", p, i, len(a), c.Size)
			}
		}
		t.Logf("%s: %d chunks over %d bytes, mean %d", p, len(a), len(data), len(data)/len(a))
	}
}

// TestCDCShiftResistance inserts one byte at the front of a 64 MiB file and
// counts the new version's chunks that the old one does not have.
func TestCDCShiftResistance(t *testing.T) {
	if testing.Short() {
		t.Skip("chunks 2 x 64 MiB per parameter set")
	}
	old := randData(14, 64<<20)
	edited := append([]byte{0x42}, old...)
	for _, p := range []Params{CDCParams(1 << 20), CDCParams(64 << 10)} {
		have := map[string]bool{}
		n := 0
		err := Split(context.Background(), bytes.NewReader(old), p, func(c Chunk) error {
			have[c.CID.String()] = true
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fresh, m := 0, 0
		err = Split(context.Background(), bytes.NewReader(edited), p, func(c Chunk) error {
			if !have[c.CID.String()] {
				fresh++
			}
			m++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: old %d chunks, edited %d chunks, %d of them new", p, n, m, fresh)
		if fresh > 3 {
			t.Errorf("%s: one byte inserted at the front changed %d chunks, want ≤ 3", p, fresh)
		}
	}
}

// TestScanLanes checks that the gear scan in lanes finds the same cut and
// hash as the serial one wherever the cut falls in a block: in each lane,
// at the edges between lanes, within the 63 bytes a lane hashes before it
// starts, and in no lane at all (the hash at the end must then agree).
func TestScanLanes(t *testing.T) {
	data := randData(21, 8*laneBlock+333)
	// A mask with 12 bits cuts about every 4 KiB (a lane's length), 14 bits
	// every 16 KiB (a block): sweeping the start moves the first cut over
	// the positions of a block. With 5 bits the first lane cuts at once;
	// with 25 there is rarely a cut, and the hash after the last byte is
	// compared.
	sweep := []int{}
	for i := 0; i < laneBlock+100; i += 7 + i%5 {
		sweep = append(sweep, i)
	}
	// edges(mask) are the starts that put a cut of the serial scan exactly
	// on the first or last index of a lane, or next to it.
	edges := func(mask uint64) []int {
		var starts []int
		for i := 0; ; {
			cut, _ := scanSerial(data, i, 0, mask)
			if cut < 0 {
				return starts
			}
			for j := 1; j < laneCount; j++ {
				for d := -2; d <= 2; d++ {
					if s := cut - j*laneLen + d; s >= 0 {
						starts = append(starts, s)
					}
				}
			}
			i = cut + 1
		}
	}
	// A mask with bit 62 (none of the table has it) tests the hash of
	// each of the 63 bytes a lane hashes before it starts.
	high := masks[12] | 1<<62
	for _, tc := range []struct {
		mask   uint64
		starts []int
	}{
		{masks[5], []int{0, 1, 2, 63, 64, laneLen - 1, laneBlock}},
		{masks[12], sweep},
		{masks[14], sweep},
		{masks[12], edges(masks[12])},
		{masks[14], edges(masks[14])},
		{high, edges(high)},
		{masks[25], []int{0, 1, 63, 64, laneLen - 1, laneBlock - 1, laneBlock + 1}},
	} {
		mask := tc.mask
		hits := 0
		for n, i := range tc.starts {
			h0 := uint64(0)
			if n%2 == 1 {
				h0 = 0x9e3779b97f4a7c15
			}
			for _, end := range []int{len(data), min(len(data), i+laneBlock+1)} {
				cut, h := scanSerial(data[:end], i, h0, mask)
				lcut, lh := scanLanes(data[:end], i, h0, mask)
				if cut != lcut || h != lh {
					t.Fatalf("mask %#x, from %d with h %#x to %d: lanes cut at %d (hash %#x), serial at %d (hash %#x)",
						mask, i, h0, end, lcut, lh, cut, h)
				}
				if cut >= 0 {
					hits++
					// Nobody resumes from a cut: no scan spends
					// time on the hash there.
					if h != 0 {
						t.Fatalf("mask %#x, from %d with h %#x: a cut at %d with hash %#x, not 0", mask, i, h0, cut, h)
					}
				}
			}
		}
		t.Logf("mask %#x: %d cuts in %d scans", mask, hits, 2*len(tc.starts))
	}
}

// FuzzScan compares the gear scan in lanes with the serial one over a
// stream of at least 3 blocks with the fuzzer's bytes laid over it, from
// any start and hash, with a mask of the table (5 to 25 bits, so that cuts
// are frequent or rare) and maybe one more bit from 48 to 62 (which no
// mask of the table has, so that a lane must hash all of its 63 bytes
// before it starts).
func FuzzScan(f *testing.F) {
	f.Add([]byte{}, uint32(0), uint64(0), uint16(17), uint16(0))
	f.Add([]byte("gear"), uint32(laneLen-1), uint64(1), uint16(7), uint16(7))
	f.Add(make([]byte, 300), uint32(laneBlock-40), uint64(0), uint16(9|0x100), uint16(999))
	f.Fuzz(func(t *testing.T, over []byte, at uint32, h uint64, m, extra uint16) {
		data := randData(uint64(at)^h, 3*laneBlock+int(extra)%laneBlock)
		copy(data[int(at)%len(data):], over)
		mask := masks[5+int(m)%21]
		if m&0x100 != 0 {
			mask |= 1 << (48 + int(m>>9)%15)
		}
		i := int(at>>16) % len(data)
		cut, hh := scanSerial(data, i, h, mask)
		lcut, lh := scanLanes(data, i, h, mask)
		if cut != lcut || hh != lh {
			t.Fatalf("mask %#x from %d, hash %#x: lanes cut at %d (hash %#x), serial at %d (hash %#x)",
				mask, i, h, lcut, lh, cut, hh)
		}
		gcut, gh := scanLanesGo(data, i, h, mask)
		if cut != gcut || hh != gh {
			t.Fatalf("mask %#x from %d, hash %#x: lanes in Go cut at %d (hash %#x), serial at %d (hash %#x)",
				mask, i, h, gcut, gh, cut, hh)
		}
		// The block at i alone, as scanLanes hands it to gearBlock and
		// to the vector filter.
		if len(data)-i >= laneBlock {
			checkGearBlock(t, data[i:i+laneBlock], h, mask)
			checkGearFilter(t, data, i, h, mask)
		}
	})
}

// scanLanesGo is scanLanes with gearBlockGo, the Go version of the block
// scan that other architectures use, and no vector filter, whatever this
// machine has.
func scanLanesGo(data []byte, i int, h, mask uint64) (int, uint64) {
	return scanLanesWith(data, i, h, mask, gearBlockGo)
}

// scanLanesBlock is scanLanes with gearBlock and no vector filter.
func scanLanesBlock(data []byte, i int, h, mask uint64) (int, uint64) {
	return scanLanesWith(data, i, h, mask, func(p *byte, h, mask uint64) (uint64, bool) {
		return gearBlock(p, h, mask, &gear)
	})
}

// scanLanesWith is scanLanes with block as the block scan, and no filter.
func scanLanesWith(data []byte, i int, h, mask uint64, block func(*byte, uint64, uint64) (uint64, bool)) (int, uint64) {
	for len(data)-i >= laneBlock {
		hl, hit := block(&data[i], h, mask)
		if hit {
			return scanSerial(data[:i+laneBlock], i, h, mask)
		}
		h = hl
		i += laneBlock
	}
	return scanSerial(data, i, h, mask)
}

// checkGearBlock checks gearBlock and gearBlockGo over one block against
// the serial scan: both report a hit exactly when the serial scan finds a
// cut in the block and, when none, the serial scan's hash after it.
func checkGearBlock(t *testing.T, block []byte, h, mask uint64) {
	t.Helper()
	cut, sh := scanSerial(block, 0, h, mask)
	for _, f := range []struct {
		name string
		scan func() (uint64, bool)
	}{
		{"gearBlock", func() (uint64, bool) { return gearBlock(&block[0], h, mask, &gear) }},
		{"gearBlockGo", func() (uint64, bool) { return gearBlockGo(&block[0], h, mask) }},
	} {
		bh, hit := f.scan()
		if hit != (cut >= 0) || (!hit && bh != sh) {
			t.Fatalf("%s with mask %#x, hash %#x: hit %v, hash %#x; the serial scan cuts at %d, hash %#x",
				f.name, mask, h, hit, bh, cut, sh)
		}
	}
}

// TestGearBlockAdversarial runs the block scans over inputs that random
// data does not give: every byte value repeated, periodic patterns of
// periods around the hash's 64-byte memory and a lane's length, and a
// single differing byte at each lane's edges, with every mask of the table
// and masks with a bit that no table entry reaches (so that no lane ever
// hits and the hash after the block is compared).
func TestGearBlockAdversarial(t *testing.T) {
	var blocks [][]byte
	for v := range 256 {
		blocks = append(blocks, bytes.Repeat([]byte{byte(v)}, laneBlock))
	}
	rnd := randData(31, 4*laneBlock)
	for _, period := range []int{2, 3, 63, 64, 65, 127, 128, laneLen - 1, laneLen, laneLen + 1} {
		b := make([]byte, laneBlock)
		for k := range b {
			b[k] = rnd[k%period]
		}
		blocks = append(blocks, b)
	}
	for l := range laneCount + 1 {
		for _, d := range []int{-64, -63, -62, -1, 0, 1, 62, 63} {
			if at := l*laneLen + d; at >= 0 && at < laneBlock {
				b := make([]byte, laneBlock)
				b[at] = 0xa5
				blocks = append(blocks, b)
			}
		}
	}
	for k := 0; k+laneBlock <= len(rnd); k += laneBlock / 3 {
		blocks = append(blocks, rnd[k:k+laneBlock])
	}
	var ms []uint64
	for b := 5; b < len(masks); b++ {
		ms = append(ms, masks[b], masks[b]|1<<62)
	}
	ms = append(ms, 1<<62, 1<<62|1<<4)
	for _, block := range blocks {
		for n, mask := range ms {
			h := uint64(0)
			if n%2 == 1 {
				h = 0x9e3779b97f4a7c15
			}
			checkGearBlock(t, block, h, mask)
		}
	}
}

// TestCDCLanesInPipeline cuts with parameters whose masks take the lanes
// (16 or more bits, Avg ≥ 256 KiB) through the whole pipeline, with slabs
// and reads that put the read-buffer edges and the resumption of a search
// anywhere, and compares with the reference cut. Tiny inputs and inputs
// just past Min, Avg and Max are included.
func TestCDCLanesInPipeline(t *testing.T) {
	p := Params{Algorithm: FastCDC, Min: 1000, Avg: 256 << 10, Max: 600 << 10}
	data := randData(22, 3<<20+12345)
	// 0x00 runs make hashes with many low zero bits; keep a cut-free run
	// longer than Max too, so that Max-sized chunks appear.
	copy(data[1<<20:], make([]byte, 700<<10))
	want := refCDC(data, p)
	sizes := map[int]bool{}
	for _, s := range want {
		sizes[s] = true
	}
	t.Logf("%d chunks; sizes include Max: %v", len(want), sizes[p.Max])
	type reader struct {
		name string
		r    func([]byte) io.Reader
	}
	rdrs := []reader{
		{"bytes", func(d []byte) io.Reader { return bytes.NewReader(d) }},
		{"half", func(d []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(d)) }},
		{"data+EOF", func(d []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(d)) }},
		{"1..4096 bytes", func(d []byte) io.Reader {
			return &jerky{src: bytes.NewReader(d), rng: rand.New(rand.NewPCG(3, 4)), max: 4096}
		}},
	}
	for _, slab := range []int{p.Max, p.Max + 1, p.Max + laneBlock - 1, p.Max + readPiece} {
		for _, workers := range []int{1, 2, 3} {
			for _, rd := range rdrs {
				chunks := runAll(t, rd.r(data), p, workers, slab)
				checkChunks(t, data, chunks, want)
			}
		}
	}
	// Short streams: every length around the bounds gives the reference.
	for _, n := range []int{0, 1, 2, 63, 64, 999, 1000, 1001, 1063, 1064, laneBlock + 1000, laneBlock + 1063,
		p.Avg - 1, p.Avg, p.Avg + 1, p.Max - 1, p.Max, p.Max + 1, p.Max + p.Min, 2*p.Max + 1} {
		d := data[:n]
		for _, workers := range []int{1, 2} {
			chunks := runAll(t, iotest.HalfReader(bytes.NewReader(d)), p, workers, p.Max+1)
			checkChunks(t, d, chunks, refCDC(d, p))
		}
	}
}
