package swarm

import (
	"context"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/manifest"
	"github.com/peer-project/peer/manifest/manifesttest"
)

// FuzzBuildLayout builds the layout of trees that the fuzzer shapes (see
// manifesttest.Tree): it succeeds or stops at a limit (ErrTooLarge), and
// allocates no more than a linear bound of what it loaded and kept.
func FuzzBuildLayout(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 63, 1, 0, 255, 0, 0, 2, 2, 255, 0, 0})
	f.Add([]byte{0, 63, 2, 1, 255, 0, 0, 0, 0})
	f.Add(append([]byte{3, 0, 0}, bytesRepeat([]byte{4, 3, 0}, 12)...))
	f.Add(append([]byte{3, 1, 200}, bytesRepeat([]byte{4, 1, 200}, 20)...))
	f.Add(append([]byte{2, 0, 63, 0, 0}, bytesRepeat([]byte{4, 2, 7}, 8)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root, err := manifesttest.Tree(data, func(b manifest.Block) error { return blocks.PutBlock(b.CID, b.Data) })
		if err != nil {
			t.Skip(err)
		}
		g := &countBlocks{memBlocks: blocks}
		var l *Layout
		n := allocated(func() { l, err = buildLayout(context.Background(), g, root, fuzzLayoutLimits) })
		if err != nil {
			if !errors.Is(err, manifest.ErrTooLarge) {
				t.Fatalf("layout of a valid tree: %v", err)
			}
			return
		}
		if g.loads > fuzzLayoutLimits.Blocks || l.NumChunks() > fuzzLayoutLimits.Chunks ||
			int64(len(l.Dirs)+len(l.Files)) > fuzzLayoutLimits.Nodes {
			t.Fatalf("layout of %d dirs, %d files, %d chunks from %d blocks: past %+v",
				len(l.Dirs), len(l.Files), l.NumChunks(), g.loads, fuzzLayoutLimits)
		}
		if b := layoutBound(l, g); n > b {
			t.Fatalf("allocated %d bytes, more than the linear bound %d", n, b)
		}
	})
}

var fuzzLayoutLimits = manifest.Limits{Nodes: 500, Chunks: 20000, Blocks: 600, Bytes: 512 << 10, PathBytes: 64 << 10}

func bytesRepeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}
