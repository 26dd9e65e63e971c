package chunker

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/peer-project/peer/integrity"
)

// fuzzParams maps fuzz inputs to parameters small enough that a short input
// has many chunks: fixed sizes 1..2048, or FastCDC with Avg 128..4096, any
// Min in 1..Avg and Max in Avg..4*Avg.
func fuzzParams(cdc bool, a, b, c uint16) Params {
	if !cdc {
		return Params{Algorithm: Fixed, Size: 1 + int(a)%2048}
	}
	avg := 128 << (int(a) % 6)
	return Params{Algorithm: FastCDC, Min: 1 + int(b)%avg, Avg: avg, Max: avg + int(c)%(3*avg+1)}
}

// FuzzSplit cuts random data with random small parameters, slab sizes,
// worker counts and read sizes, and checks that the chunks tile the input,
// that their CIDs verify, that their sizes are in bounds and are those of
// the reference cut, and that short reads change nothing.
func FuzzSplit(f *testing.F) {
	f.Add([]byte{}, false, uint16(99), uint16(0), uint16(0), uint16(0), uint64(0))
	f.Add(bytes.Repeat([]byte("x"), 100), false, uint16(99), uint16(0), uint16(0), uint16(0), uint64(1))
	f.Add(make([]byte, 5000), true, uint16(0), uint16(31), uint16(0), uint16(0), uint64(2))
	f.Add(randData(1, 4096), true, uint16(1), uint16(0), uint16(100), uint16(0), uint64(3))
	f.Fuzz(checkSplit)
}

// checkSplit is the body of FuzzSplit.
func checkSplit(t *testing.T, data []byte, cdc bool, a, b, c, slabExtra uint16, seed uint64) {
	p := fuzzParams(cdc, a, b, c)
	slab := p.MaxChunk() + int(slabExtra)%(2*p.MaxChunk())
	workers := 1 + int(seed%3)
	rng := rand.New(rand.NewPCG(seed, 0))
	maxRead := 1 + int(seed>>8)%64
	var r io.Reader = bytes.NewReader(data)
	if seed&1 == 1 {
		r = &jerky{src: bytes.NewReader(data), rng: rng, max: maxRead}
	}
	var chunks []got
	err := run(context.Background(), r, p, workers, slab, func(ch Chunk) error {
		if err := integrity.Verify(ch.CID, ch.Data); err != nil {
			t.Errorf("chunk %d: %v", ch.Index, err)
		}
		chunks = append(chunks, got{ch.Index, ch.Offset, ch.Size, ch.CID.String(), bytes.Clone(ch.Data)})
		return nil
	})
	if err != nil {
		t.Fatalf("run(%s, slab %d, workers %d): %v", p, slab, workers, err)
	}
	var want []int
	if cdc {
		want = refCDC(data, p)
	} else {
		want = fixedSizes(len(data), p.Size)
	}
	checkChunks(t, data, chunks, want)
	for i, ch := range chunks {
		if ch.Size > p.MaxChunk() || ch.Size < 1 || (i < len(chunks)-1 && ch.Size < p.MinChunk()) {
			t.Fatalf("%s: chunk %d of %d has %d bytes", p, i, len(chunks), ch.Size)
		}
	}
}

// jerky returns 1 to max bytes per Read.
type jerky struct {
	src *bytes.Reader
	rng *rand.Rand
	max int
}

func (j *jerky) Read(b []byte) (int, error) {
	return j.src.Read(b[:min(len(b), 1+j.rng.IntN(j.max))])
}
