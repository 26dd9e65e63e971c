package chunker

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
)

// seqCut is the sequential cut that cutPar must reproduce: c.next over data
// from its start, chunk after chunk, until the next chunk is undecided.
func seqCut(c *cutter, data []byte, eof bool) []int {
	ends := []int{}
	for l := 0; ; {
		m := c.next(data[l:], eof)
		if m == 0 {
			return ends
		}
		l += m
		ends = append(ends, l)
	}
}

// checkCutPar cuts data with p sequentially and with cutPar in segs
// segments, from the same state (resumed after a sequential look at the
// first pre bytes when pre > 0), and fails if the cuts or the state left for
// the next buffer differ. Up to 256 KiB, it does it again with the smallest
// granule (64 bytes, so that the chain and the markers claim many times).
// It returns the sequential cuts.
func checkCutPar(t testing.TB, data []byte, p Params, eof bool, segs, pre int) []int {
	t.Helper()
	if len(data) <= 256<<10 {
		checkCut(t, data, p, eof, pre, fmt.Sprintf("%d segments, granule 64", segs), func(c *cutter, data []byte, eof bool, ends []int) []int {
			return c.cutParGranule(data, eof, segs, 64, ends)
		})
	}
	return checkCut(t, data, p, eof, pre, fmt.Sprintf("%d segments", segs), func(c *cutter, data []byte, eof bool, ends []int) []int {
		return c.cutPar(data, eof, segs, ends)
	})
}

// checkCut is checkCutPar for any cut that must give the sequential one.
func checkCut(t testing.TB, data []byte, p Params, eof bool, pre int, how string, cut func(c *cutter, data []byte, eof bool, ends []int) []int) []int {
	t.Helper()
	seq, par := newCutter(p), newCutter(p)
	if pre > 0 {
		pre = min(pre, len(data))
		seq.next(data[:pre], false)
		par.next(data[:pre], false)
	}
	// Bitmaps full of marks that no cut wrote, as a buffer's cut leaves
	// them for the next: a cut must read only the bits it wrote.
	par.parStart(2*len(data) + 64)
	for i := range par.bitsS {
		par.bitsS[i], par.bitsL[i] = ^uint64(0), ^uint64(0)
	}
	want := seqCut(seq, data, eof)
	got := cut(par, data, eof, []int{})
	if !slices.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s, %d bytes, eof %v, %s, resumed after %d: %d cuts, sequential %d; from cut %d on cutPar cuts at %v, sequential at %v",
			p, len(data), eof, how, pre, len(got), len(want), i, got[i:min(i+4, len(got))], want[i:min(i+4, len(want))])
	}
	if par.pos != seq.pos || par.h != seq.h {
		t.Fatalf("%s, %d bytes, eof %v, %s, resumed after %d: cutPar left the search at %d (hash %#x), sequential at %d (hash %#x)",
			p, len(data), eof, how, pre, par.pos, par.h, seq.pos, seq.h)
	}
	// The next buffer, holding the unfinished chunk and more, cuts the same.
	if !eof && len(data) > 0 {
		last := 0
		if len(want) > 0 {
			last = want[len(want)-1]
		}
		more := append(slices.Clone(data[last:]), data...)
		w2 := seqCut(seq, more, true)
		g2 := cut(par, more, true, nil)
		if !slices.Equal(g2, w2) {
			t.Fatalf("%s, %s: the buffer after a cutPar cuts %d chunks, after a sequential cut %d", p, how, len(g2), len(w2))
		}
	}
	return want
}

// cutMeet is cutPar with the chain and the markers meeting at a place the
// caller chooses, on one goroutine: the markers first claim most granules
// of granule bytes from the top, then the chain claims the rest.
func cutMeet(c *cutter, data []byte, eof bool, granule, most int, ends []int) []int {
	sp := c.parStart(len(data))
	c.markHigh(data, sp, granule, most)
	l, ends := c.cutLow(data, eof, sp, granule, ends)
	return c.cutMarked(data, l, eof, ends)
}

// meetFor returns how many granules the markers of cutMeet must claim so
// that their part of n bytes starts at at (a multiple of 64 below n).
func meetFor(n, granule, at int) int {
	top := (n - granule) &^ 63
	if at >= top {
		return 1
	}
	return 1 + (top-at+granule-1)/granule
}

// parParams are FastCDC parameters small enough for many chunks in a short
// input, including Max = Min = Avg (every chunk Max bytes), the lane scan
// (Avg ≥ 256 KiB has masks of 16 bits or more) and Min below the gear
// window.
var parParams = []Params{
	{Algorithm: FastCDC, Min: 1, Avg: 128, Max: 128},
	{Algorithm: FastCDC, Min: 32, Avg: 128, Max: 130},
	{Algorithm: FastCDC, Min: 64, Avg: 256, Max: 1024},
	{Algorithm: FastCDC, Min: 256, Avg: 1024, Max: 4096},
	{Algorithm: FastCDC, Min: 4096, Avg: 4096, Max: 4096},
	{Algorithm: FastCDC, Min: 512, Avg: 2048, Max: 8192},
	{Algorithm: FastCDC, Min: 1000, Avg: 256 << 10, Max: 600 << 10},
}

// TestCutParRandom compares cutPar with the sequential cutter on random
// data, for every parameter set, 2 to 9 segments (from much longer than Max
// to much shorter), at and before the end of the stream, from a fresh
// search and from one resumed.
func TestCutParRandom(t *testing.T) {
	data := randData(31, 3<<20+4321)
	for _, p := range parParams {
		// Some 200 chunks of the small parameters, a dozen of the large.
		long := min(len(data), 200*p.Avg)
		for _, n := range []int{0, 1, p.Min, p.Max - 1, p.Max + 1, 3*p.Max + 17, 40_000, long} {
			n = min(n, long)
			for _, segs := range []int{2, 3, 4, 9} {
				for _, eof := range []bool{true, false} {
					for _, pre := range []int{0, p.Min + 5, p.Avg + 70} {
						checkCutPar(t, data[:n], p, eof, segs, pre)
					}
				}
			}
		}
	}
}

// TestCutParAdversarial compares cutPar with the sequential cutter on data
// built to defeat it: all zeros and all ones (no cut, so every chunk is Max
// bytes, or a mark at every position), runs repeating with the gear hash's
// window of 64 bytes and near it, and mixtures with random data.
func TestCutParAdversarial(t *testing.T) {
	rnd := randData(32, 1<<20)
	repeat := func(period, n int) []byte {
		unit := rnd[:period]
		return bytes.Repeat(unit, n/period+1)[:n]
	}
	inputs := map[string][]byte{
		"zeros":        make([]byte, 200_000),
		"ones":         bytes.Repeat([]byte{0xff}, 200_000),
		"period 1":     repeat(1, 150_000),
		"period 2":     repeat(2, 150_000),
		"period 63":    repeat(63, 150_000),
		"period 64":    repeat(64, 150_000),
		"period 65":    repeat(65, 150_000),
		"period 128":   repeat(128, 150_000),
		"period 4096":  repeat(4096, 150_000),
		"zeros+random": append(make([]byte, 70_000), rnd[:70_000]...),
		"random+zeros": append(slices.Clone(rnd[:70_000]), make([]byte, 70_000)...),
		"striped": func() []byte {
			var b []byte
			for i := range 20 {
				b = append(b, rnd[i*1000:i*1000+3000]...)
				b = append(b, make([]byte, 1000*(i%7))...)
			}
			return b
		}(),
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range inputs {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		data := inputs[name]
		for _, p := range parParams[:6] {
			for _, segs := range []int{2, 3, 7} {
				for _, eof := range []bool{true, false} {
					checkCutPar(t, data, p, eof, segs, 0)
				}
			}
		}
	}
}

// TestCutParMeet has the chain and the markers meet at every multiple of
// 64 bytes of short inputs (random, all zeros, mixed), and exactly on a
// true cut and one byte before and after it in a longer one, for every
// small parameter set, with granules from 64 bytes to more than a lane
// block.
func TestCutParMeet(t *testing.T) {
	short := map[string][]byte{
		"random":       randData(34, 9000),
		"zeros":        make([]byte, 9000),
		"zeros+random": append(make([]byte, 4500), randData(34, 4500)...),
	}
	for _, name := range []string{"random", "zeros", "zeros+random"} {
		data := short[name]
		for _, p := range parParams[:6] {
			pres := []int{0}
			if name == "random" {
				pres = append(pres, p.Min+5)
			}
			for _, granule := range []int{64, 1024} {
				for at := 0; at < len(data)-granule; at += 64 {
					most := meetFor(len(data), granule, at)
					for _, eof := range []bool{true, false} {
						for _, pre := range pres {
							checkCut(t, data, p, eof, pre, fmt.Sprintf("%s, granule %d, meeting at %d", name, granule, at),
								func(c *cutter, data []byte, eof bool, ends []int) []int {
									return cutMeet(c, data, eof, granule, most, ends)
								})
						}
					}
				}
			}
		}
	}
	data := randData(33, 400_000)
	near := map[int]int{}
	for _, p := range parParams[:6] {
		for _, granule := range []int{64, laneBlock} {
			seen := map[int]int{}
			for _, c := range seqCut(newCutter(p), data, true) {
				for _, d := range []int{-1, 0, 1} {
					at := c + d
					if at%64 != 0 || at >= len(data)-granule || seen[d] >= 2 {
						continue
					}
					seen[d]++
					near[d]++
					most := meetFor(len(data), granule, at)
					for _, eof := range []bool{true, false} {
						checkCut(t, data, p, eof, 0, fmt.Sprintf("granule %d, meeting at %d", granule, at),
							func(c *cutter, data []byte, eof bool, ends []int) []int {
								return cutMeet(c, data, eof, granule, most, ends)
							})
					}
				}
			}
		}
	}
	if near[-1] == 0 || near[0] == 0 || near[1] == 0 {
		t.Fatalf("met one byte before a cut %d times, on it %d times, one byte after %d times; want all three", near[1], near[0], near[-1])
	}
}

// TestCutParLarge compares cutPar with the sequential cutter around a 1 MiB
// average, whose masks take the vector filter where the CPU has one (the
// markers then check every candidate it passes), over random data with a
// run of zeros and a stretch that repeats with the window's period, with
// the chain and markers meeting where the run decides and at chosen places.
func TestCutParLarge(t *testing.T) {
	p := Params{Algorithm: FastCDC, Min: 4096, Avg: 1 << 20, Max: 2 << 20}
	data := randData(38, 9<<20+77)
	copy(data[3<<20:], make([]byte, 2<<20+5))
	for k := 6 << 20; k < 7<<20; k++ {
		data[k] = data[k-64]
	}
	for _, eof := range []bool{true, false} {
		for _, segs := range []int{2, 3} {
			checkCutPar(t, data, p, eof, segs, 0)
		}
		checkCutPar(t, data, p, eof, 2, p.Avg+100)
		for at := 0; at < len(data)-laneBlock; at += 640_000 &^ 63 {
			most := meetFor(len(data), laneBlock, at)
			checkCut(t, data, p, eof, 0, fmt.Sprintf("meeting at %d", at), func(c *cutter, data []byte, eof bool, ends []int) []int {
				return cutMeet(c, data, eof, laneBlock, most, ends)
			})
		}
	}
}

// FuzzCutPar compares cutPar with the sequential cutter on the fuzzer's
// bytes (repeated to a length it picks, so that short inputs make long
// periodic ones too), with small parameters, 2 to 17 segments, at or before
// the end of the stream, and from a fresh or resumed search.
func FuzzCutPar(f *testing.F) {
	f.Add([]byte{}, uint16(0), uint16(0), uint16(0), uint8(0), uint32(0), uint16(0))
	f.Add([]byte{0}, uint16(1), uint16(31), uint16(0), uint8(3), uint32(60_000), uint16(0))
	f.Add(randData(35, 5000), uint16(2), uint16(200), uint16(700), uint8(1), uint32(0), uint16(300))
	f.Add(bytes.Repeat([]byte("gear hash period"), 4), uint16(0), uint16(0), uint16(9), uint8(6), uint32(50_000), uint16(1))
	f.Fuzz(func(t *testing.T, seed []byte, a, b, c uint16, s uint8, length uint32, pre uint16) {
		p := fuzzParams(true, a, b, c)
		data := seed
		if n := int(length % (1 << 16)); len(seed) > 0 && n > len(seed) {
			data = bytes.Repeat(seed, n/len(seed)+1)[:n]
		}
		segs := 2 + int(s)%16
		eof := s&0x80 != 0
		checkCutPar(t, data, p, eof, segs, int(pre)%(2*p.Max+1))
	})
}

// TestCutParPipeline runs the whole Split pipeline with several workers,
// which cuts slabs with cutPar, over inputs of the kinds above, and
// compares with the reference cut.
func TestCutParPipeline(t *testing.T) {
	data := randData(36, 1<<20)
	copy(data[300_000:], make([]byte, 100_000))
	for _, p := range parParams {
		want := refCDC(data, p)
		for _, workers := range []int{2, 3, 5} {
			for _, slab := range []int{p.Max, p.Max + 1, 4*p.Max + 999, 1 << 20} {
				t.Run(fmt.Sprintf("%s workers %d slab %d", p, workers, slab), func(t *testing.T) {
					checkChunks(t, data, runAll(t, bytes.NewReader(data), p, workers, slab), want)
				})
			}
		}
	}
}

// TestFillMixesModes reads a stream slab by slab as Split's reader does,
// with a spare worker for some slabs and none for others (so that the cut
// goes from cutting as the bytes arrive to cutting in segments and back,
// the search of an unfinished chunk handed from one to the other), and
// compares the chunks with the reference cut.
func TestFillMixesModes(t *testing.T) {
	p := Params{Algorithm: FastCDC, Min: 1000, Avg: 256 << 10, Max: 600 << 10}
	data := randData(37, 6<<20+999)
	copy(data[2<<20:], make([]byte, 700<<10)) // a run of Max-sized chunks
	want := refCDC(data, p)
	for _, pattern := range [][]int{{0}, {1}, {0, 1}, {1, 0, 0}, {3, 0, 1, 2}} {
		stop := make(chan struct{})
		rd := reader{ctx: context.Background(), r: bytes.NewReader(data), cut: newCutter(p), stop: stop, segs: 4}
		s := newSlab(p.Max + parMinSeg*3)
		var sizes []int
		for k := 0; ; k++ {
			queue, last := rd.fill(s, pattern[k%len(pattern)])
			if !queue || s.err != nil {
				t.Fatalf("pattern %v, slab %d: queue %v, err %v", pattern, k, queue, s.err)
			}
			start := 0
			for _, e := range s.ends {
				sizes = append(sizes, e-start)
				start = e
			}
			// The next fill copies the unfinished chunk from this
			// buffer: give it another, as the pipeline does.
			s = newSlab(len(s.buf))
			if last {
				break
			}
		}
		close(stop)
		if !slices.Equal(sizes, want) {
			t.Fatalf("pattern %v: %d chunks, want %d", pattern, len(sizes), len(want))
		}
	}
}

// TestMaskedHash checks that maskedHash gives the low 48 bits of the gear
// hash at every position of random and constant data, from a scan started
// at several places, and that no mask has a bit it does not give.
func TestMaskedHash(t *testing.T) {
	for b, m := range masks {
		if m&^hashBits48 != 0 {
			t.Fatalf("masks[%d] = %#x has bits above 47", b, m)
		}
	}
	for _, data := range [][]byte{randData(39, 3000), bytes.Repeat([]byte{0xff}, 300)} {
		for _, i := range []int{0, 1, 47, 64, 100} {
			h := uint64(0x9e3779b97f4a7c15)
			if i == 0 {
				h = 0
			}
			for p := i; p < len(data); p++ {
				want, got := exactHash(data, i, h, p)&hashBits48, maskedHash(data, i, h, p)
				if got != want {
					t.Fatalf("scan from %d, hash at %d: maskedHash %#x, want %#x", i, p, got, want)
				}
			}
		}
	}
}
