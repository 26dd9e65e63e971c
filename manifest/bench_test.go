package manifest

import (
	"testing"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// BenchmarkDecodeFullPage decodes a full page (FanOut page entries, the
// largest block a builder writes) including its hash check.
func BenchmarkDecodeFullPage(b *testing.B) {
	p := &Page{Depth: 1}
	for i := range FanOut {
		p.Entries = append(p.Entries, Entry{CID: integrity.Block([]byte{byte(i), byte(i >> 8)}), Size: 8192 << 20, Count: 8192})
	}
	blk, err := Encode(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(blk.Data)))
	for b.Loop() {
		if _, err := Decode(blk.CID, blk.Data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(blk.Data)), "block-bytes")
	b.ReportMetric(MaxBlockSize, "limit-bytes")
}

// BenchmarkBuilder measures the builder per chunk (1 MiB fixed chunks,
// CIDs precomputed).
func BenchmarkBuilder(b *testing.B) {
	refs := fakeRefs(1<<16, 1<<20, 1<<20)
	b.ResetTimer()
	var chunks int
	for b.Loop() {
		fb, err := NewFileBuilder("f", chunker.DefaultParams(), func(Block) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range refs {
			if err := fb.Add(r); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := fb.Finish(); err != nil {
			b.Fatal(err)
		}
		chunks += len(refs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(chunks), "ns/chunk")
}
