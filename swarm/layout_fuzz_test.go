package swarm

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/unixfs"
)

// fuzzTree builds a UnixFS DAG that data shapes, each byte an operation on
// a stack of open folders: a file of a few leaves (leaf CIDs repeat across
// files), a new folder, closing the top folder into its parent, or one more
// name for the entry added last (reuse: a tree whose nodes are named many
// times over).
func fuzzTree(data []byte, put func(unixfs.Block) error) (cid.Cid, error) {
	ctx := context.Background()
	newDir := func() (*unixfs.DirBuilder, error) { return unixfs.NewDirBuilder(put) }
	top, err := newDir()
	if err != nil {
		return cid.Undef, err
	}
	stack := []*unixfs.DirBuilder{top}
	var last unixfs.Link
	n := 0
	name := func() string { n++; return fmt.Sprintf("e%d", n) }
	for i := 0; i < len(data); i++ {
		op, arg := data[i]%4, int(data[i]/4)
		d := stack[len(stack)-1]
		switch op {
		case 0: // a file of arg leaves
			fb := unixfs.NewFileBuilder(put)
			for j := range arg {
				piece := []byte{byte(j), byte(arg)}
				if err := fb.Add(unixfs.Leaf(integrity.Chunk(piece), len(piece))); err != nil {
					return cid.Undef, err
				}
			}
			if last, err = fb.Finish(); err != nil {
				return cid.Undef, err
			}
			if err := d.Add(ctx, name(), last); err != nil {
				return cid.Undef, err
			}
		case 1:
			sub, err := newDir()
			if err != nil {
				return cid.Undef, err
			}
			stack = append(stack, sub)
		case 2:
			if len(stack) == 1 {
				continue
			}
			stack = stack[:len(stack)-1]
			if last, err = d.Finish(ctx); err != nil {
				return cid.Undef, err
			}
			if err := stack[len(stack)-1].Add(ctx, name(), last); err != nil {
				return cid.Undef, err
			}
		case 3:
			if !last.CID.Defined() {
				continue
			}
			for range arg%8 + 1 {
				if err := d.Add(ctx, name(), last); err != nil {
					return cid.Undef, err
				}
			}
		}
	}
	for len(stack) > 1 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if last, err = d.Finish(ctx); err != nil {
			return cid.Undef, err
		}
		if err := stack[len(stack)-1].Add(ctx, name(), last); err != nil {
			return cid.Undef, err
		}
	}
	root, err := top.Finish(ctx)
	return root.CID, err
}

// FuzzBuildLayout builds the layout of trees that the fuzzer shapes (see
// fuzzTree): it succeeds or stops at a limit (unixfs.ErrLimit), and
// allocates no more than a linear bound of what it loaded and kept.
func FuzzBuildLayout(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{4, 1, 8, 2, 3 + 4*7, 1, 1, 12, 2, 2, 3 + 4*7})
	f.Add(append([]byte{1, 0 + 4*63}, bytesRepeat([]byte{2, 3 + 4*7, 1}, 12)...))
	f.Add(append([]byte{1, 1, 4 * 60}, bytesRepeat([]byte{3 + 4*7, 2}, 20)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root, err := fuzzTree(data, func(b unixfs.Block) error { return blocks.PutBlock(b.CID, b.Data) })
		if err != nil {
			t.Skip(err)
		}
		g := &countBlocks{memBlocks: blocks}
		var l *Layout
		n := allocated(func() { l, err = buildLayout(context.Background(), g, root, fuzzLayoutLimits) })
		if err != nil {
			if !errors.Is(err, unixfs.ErrLimit) {
				t.Fatalf("layout of a valid tree: %v", err)
			}
			return
		}
		if g.loads > fuzzLayoutLimits.Visits || l.NumChunks() > fuzzLayoutLimits.Leaves {
			t.Fatalf("layout of %d dirs, %d files, %d chunks from %d blocks: past %+v",
				len(l.Dirs), len(l.Files), l.NumChunks(), g.loads, fuzzLayoutLimits)
		}
		if b := layoutBound(l, g); n > b {
			t.Fatalf("allocated %d bytes, more than the linear bound %d", n, b)
		}
	})
}

var fuzzLayoutLimits = unixfs.Limits{Visits: 600, Bytes: 512 << 10, Depth: 64, Leaves: 20000}

func bytesRepeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}
