package manifest_test

// Property tests of the walkers on trees that the fuzzer shapes, hostile
// ones among them: whatever a tree claims, a Walker visits, loads, makes
// and allocates no more than its Limits allow, in proportion to what it
// visited.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/manifest"
	"github.com/peer-project/peer/manifest/manifesttest"
)

// blocks is a Getter over blocks in memory that counts the blocks it
// hands out.
type blocks struct {
	mu    sync.Mutex
	m     map[cid.Cid][]byte
	loads int64
}

func (b *blocks) put(bl manifest.Block) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[bl.CID] = bl.Data
	return nil
}

func (b *blocks) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loads++
	d, ok := b.m[c]
	if !ok {
		return nil, fmt.Errorf("no block %s", c)
	}
	return d, nil
}

func fuzzTree(t *testing.T, data []byte) (*blocks, cid.Cid) {
	s := &blocks{m: map[cid.Cid][]byte{}}
	root, err := manifesttest.Tree(data, s.put)
	if err != nil {
		t.Skip(err) // nothing made
	}
	s.loads = 0
	return s, root
}

// fuzzLimits are small enough that the fuzzer reaches each of them.
var fuzzLimits = manifest.Limits{Nodes: 500, Chunks: 20000, Blocks: 600, Bytes: 512 << 10, PathBytes: 64 << 10}

func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocBound is what a walk that used u may allocate: decoding a block
// makes its entries and re-encodes it (a few times its bytes), a path is
// made once, and each block and node costs a little besides.
func allocBound(u manifest.Limits) uint64 {
	return uint64(6*u.Bytes + 2*u.PathBytes + 2048*u.Blocks + 256*u.Nodes + 64<<10)
}

// checkUsed checks the walker's counts against the limits and the getter.
func checkUsed(t *testing.T, w *manifest.Walker, s *blocks, lim manifest.Limits, alloc uint64) {
	t.Helper()
	u := w.Used()
	if u.Nodes > lim.Nodes || u.Chunks > lim.Chunks || u.Blocks > lim.Blocks || u.Bytes > lim.Bytes || u.PathBytes > lim.PathBytes {
		t.Fatalf("used %+v, past the limits %+v", u, lim)
	}
	if s.loads != u.Blocks {
		t.Fatalf("the getter handed out %d blocks, the walker counted %d", s.loads, u.Blocks)
	}
	if b := allocBound(u); alloc > b {
		t.Fatalf("allocated %d bytes, more than %d for %+v", alloc, b, u)
	}
}

// FuzzWalkInspect walks a tree as inspect does (Walk, and Chunks of every
// file, on one Walker) and checks the bounds.
func FuzzWalkInspect(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		s, root := fuzzTree(t, data)
		w := manifest.NewWalker(s, fuzzLimits)
		var nodes, chunks int64
		var err error
		alloc := allocated(func() {
			err = w.Walk(ctx, root, func(_ string, _ cid.Cid, n manifest.Node) error {
				nodes++
				if f, ok := n.(*manifest.File); ok {
					return w.Chunks(ctx, f, func(int64, int64, manifest.ChunkRef) error { chunks++; return nil })
				}
				return nil
			})
		})
		if err != nil && !errors.Is(err, manifest.ErrTooLarge) {
			t.Fatalf("walk of a valid tree: %v", err)
		}
		t.Logf("used %+v, %d bytes allocated: %v", w.Used(), alloc, err)
		checkUsed(t, w, s, fuzzLimits, alloc)
		if u := w.Used(); nodes != u.Nodes || chunks > u.Chunks {
			t.Fatalf("fn saw %d nodes and %d chunks, the walker counted %d and %d", nodes, chunks, u.Nodes, u.Chunks)
		}
	})
}

// FuzzResolve resolves a path that the input chooses below a tree it
// shapes and checks the bounds: one block per element and the root.
func FuzzResolve(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		s, root := fuzzTree(t, data)
		// The path: at each level the entry the input's bytes choose,
		// from the end of the input backwards.
		path := ""
		n, err := manifest.Load(ctx, s, root)
		if err != nil {
			t.Fatal(err)
		}
		for k := len(data) - 1; k >= 0; k-- {
			d, ok := n.(*manifest.Dir)
			if !ok || len(d.Entries) == 0 {
				break
			}
			e := d.Entries[int(data[k])%len(d.Entries)]
			if path != "" {
				path += "/"
			}
			path += e.Name
			if n, err = manifest.Load(ctx, s, e.CID); err != nil {
				t.Fatal(err)
			}
		}
		s.loads = 0
		w := manifest.NewWalker(s, fuzzLimits)
		alloc := allocated(func() { _, _, err = w.Resolve(ctx, root, path) })
		t.Logf("%d-byte path: used %+v, %d bytes allocated: %v", len(path), w.Used(), alloc, err)
		if err != nil && !errors.Is(err, manifest.ErrTooLarge) {
			t.Fatalf("resolve %q: %v", path, err)
		}
		checkUsed(t, w, s, fuzzLimits, alloc)
		if elems := int64(len(splitPath(path))); w.Used().Blocks > elems+1 {
			t.Fatalf("resolving %d elements loaded %d blocks", elems, w.Used().Blocks)
		}
	})
}

func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	var out []string
	start := 0
	for i := range len(p) {
		if p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// addSeeds adds inputs that reach each limit: a page repeated to claim
// many chunks, levels of reused directories of empty files, long names.
func addSeeds(f *testing.F) {
	f.Add([]byte{})
	// A page of 64 chunks, a depth-1 page of 256 of it, a file of 256 of
	// that: 4 Mi chunks in three blocks.
	f.Add([]byte{0, 63, 1, 0, 255, 0, 0, 2, 2, 255, 0, 0})
	// The same page 256 times in a file: 16 Ki chunks, 740 KiB of pages.
	f.Add([]byte{0, 63, 2, 1, 255, 0, 0, 0, 0})
	// A page of one chunk 256 times in each of three files: 771 blocks.
	f.Add([]byte{0, 0, 2, 1, 255, 0, 0, 0, 0, 2, 1, 255, 1, 0, 0, 0, 2, 1, 255, 2, 0, 0, 0})
	// An empty file and 12 levels of 4 directories: 4^12 nodes.
	f.Add(append([]byte{3, 0, 0}, repeat([]byte{4, 3, 0}, 12)...))
	// Long names: an empty file, and 20 levels of 2 directories with
	// names of 200 bytes.
	f.Add(append([]byte{3, 1, 200}, repeat([]byte{4, 1, 200}, 20)...))
	// A file of 64 chunks under levels of 3 directories.
	f.Add(append([]byte{2, 0, 63, 0, 0}, repeat([]byte{4, 2, 7}, 8)...))
}

func repeat(b []byte, n int) []byte {
	var out []byte
	for range n {
		out = append(out, b...)
	}
	return out
}
