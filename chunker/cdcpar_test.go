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
// the next buffer differ. It returns the sequential cuts.
func checkCutPar(t testing.TB, data []byte, p Params, eof bool, segs, pre int) []int {
	t.Helper()
	seq, par := newCutter(p), newCutter(p)
	if pre > 0 {
		pre = min(pre, len(data))
		seq.next(data[:pre], false)
		par.next(data[:pre], false)
	}
	want := seqCut(seq, data, eof)
	got := par.cutPar(data, eof, segs, []int{})
	if !slices.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s, %d bytes, eof %v, %d segments, resumed after %d: %d cuts, sequential %d; from cut %d on cutPar cuts at %v, sequential at %v",
			p, len(data), eof, segs, pre, len(got), len(want), i, got[i:min(i+4, len(got))], want[i:min(i+4, len(want))])
	}
	if par.pos != seq.pos || par.h != seq.h {
		t.Fatalf("%s, %d bytes, eof %v, %d segments, resumed after %d: cutPar left the search at %d (hash %#x), sequential at %d (hash %#x)",
			p, len(data), eof, segs, pre, par.pos, par.h, seq.pos, seq.h)
	}
	// The next buffer, holding the unfinished chunk and more, cuts the same.
	if !eof && len(data) > 0 {
		last := 0
		if len(want) > 0 {
			last = want[len(want)-1]
		}
		more := append(slices.Clone(data[last:]), data...)
		w2 := seqCut(seq, more, true)
		g2 := par.cutPar(more, true, segs, nil)
		if !slices.Equal(g2, w2) {
			t.Fatalf("%s: the buffer after a cutPar cuts %d chunks, after a sequential cut %d", p, len(g2), len(w2))
		}
	}
	return want
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

// TestCutParSeams puts a seam exactly on a true cut, and one byte before
// and after it, for 2 to 5 segments: it tries the lengths that put a seam
// there.
func TestCutParSeams(t *testing.T) {
	data := randData(33, 400_000)
	near := map[int]int{}
	for _, p := range parParams[:6] {
		cuts := map[int]bool{}
		for _, c := range seqCut(newCutter(p), data, true) {
			cuts[c] = true
		}
		tried := map[int]int{}
		for n := 1000; n <= len(data) && (tried[-1] < 3 || tried[0] < 3 || tried[1] < 3); n += 7 {
			for segs := 2; segs <= 5; segs++ {
				ts := seams(n, segs)
				for _, s := range ts[1 : len(ts)-1] {
					for _, d := range []int{-1, 0, 1} {
						if s+d < n-p.Max && cuts[s+d] && tried[d] < 3 {
							tried[d]++
							for _, eof := range []bool{true, false} {
								checkCutPar(t, data[:n], p, eof, segs, 0)
							}
						}
					}
				}
			}
		}
		if tried[0] == 0 {
			t.Fatalf("%s: no seam put on a cut", p)
		}
		for d, k := range tried {
			near[d] += k
		}
	}
	if near[-1] == 0 || near[1] == 0 {
		t.Fatalf("seams put one byte after a cut %d times, one byte before %d times; want both", near[-1], near[1])
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
		s := &slab{buf: make([]byte, p.Max+parMinSeg*3)}
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
			s = &slab{buf: make([]byte, len(s.buf))}
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
