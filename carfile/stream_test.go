package carfile

import (
	"context"
	"encoding/binary"
	"io"
	"runtime"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/unixfs"
)

// leafGetter makes the leaves of a file on demand (leaf i is 1 MiB of
// zeros with i in its first bytes) and keeps only the interior nodes, so
// that a large DAG costs no memory of its own.
type leafGetter struct {
	index    map[cid.Cid]uint64
	interior mapStore
}

func leafData(i uint64) []byte {
	b := make([]byte, unixfs.ChunkSize)
	binary.BigEndian.PutUint64(b, i)
	return b
}

func (g *leafGetter) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if i, ok := g.index[c]; ok {
		return leafData(i), nil
	}
	return g.interior.GetBlock(ctx, c)
}

// TestStreamMemory exports a 192 MiB file through a pipe into Import:
// neither side holds the CAR, and the heap stays a small fraction of it.
func TestStreamMemory(t *testing.T) {
	const leaves = 192
	g := &leafGetter{index: map[cid.Cid]uint64{}, interior: mapStore{}}
	fb := unixfs.NewFileBuilder(g.interior.put)
	for i := range uint64(leaves) {
		c := integrity.Chunk(leafData(i))
		g.index[c] = i
		if err := fb.Add(unixfs.Leaf(c, unixfs.ChunkSize)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := Export(context.Background(), g, root.CID, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	var peak uint64
	blocks := 0
	res, err := Import(context.Background(), pr, func(b unixfs.Block) error {
		blocks++
		if blocks%16 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
		return nil
	})
	pr.Close()
	if eerr := <-done; eerr != nil {
		t.Fatalf("export: %v", eerr)
	}
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if res.Blocks != leaves+1 || res.Bytes < leaves*unixfs.ChunkSize {
		t.Errorf("imported %+v, want %d blocks", res.Stats, leaves+1)
	}
	t.Logf("%d MiB through Export and Import: heap in use %d MiB before, at most %d MiB during",
		res.Bytes>>20, before.HeapInuse>>20, peak>>20)
	if limit := before.HeapInuse + 48<<20; peak > limit {
		t.Errorf("heap in use reached %d MiB moving %d MiB, limit %d MiB", peak>>20, res.Bytes>>20, limit>>20)
	}
}
