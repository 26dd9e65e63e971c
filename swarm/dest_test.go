package swarm

// Where a fetch writes, against a hostile sharer (issue 15): a chunk whose
// bytes are longer or shorter than the manifest declares.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/manifest"
	"github.com/peer-project/peer/swarm/wire"
)

// buildDeclared makes a file manifest whose chunk i is the CID of pieces[i]
// but declares the size sizes[i], as a hostile sharer can: the manifest is
// valid (sizes add up), yet the bytes that hash to a chunk's CID are not
// as long as the manifest says.
func buildDeclared(t *testing.T, blocks *memBlocks, name string, pieces [][]byte, sizes []uint32, chunk int) cid.Cid {
	t.Helper()
	b, err := manifest.NewFileBuilder(name, chunker.FixedParams(chunk), func(bl manifest.Block) error {
		return blocks.PutBlock(bl.CID, bl.Data)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pieces {
		if err := b.Add(manifest.ChunkRef{CID: integrity.Chunk(p), Size: sizes[i]}); err != nil {
			t.Fatal(err)
		}
	}
	root, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return root.CID
}

// TestChunkOfWrongDeclaredSize: a sharer whose manifest declares a chunk
// shorter or longer than the bytes that hash to its CID, and who sends
// those bytes. The block verifies against its CID, but its length is not
// the one declared: it must be refused before it is written and its sender
// struck (banned), so that the fetch fails rather than write a file of
// another size or with a neighbour overwritten; a 10-byte file must never
// arrive as 102,400 bytes.
func TestChunkOfWrongDeclaredSize(t *testing.T) {
	const chunk = 64 << 10
	piece := func(n int, seed uint64) []byte { return randomData(n, seed) }
	tests := []struct {
		name   string
		pieces [][]byte
		sizes  []uint32
	}{
		{"a 10-byte file that is 102,400 bytes", [][]byte{piece(102400, 1)}, []uint32{10}},
		{"first chunk longer than declared", [][]byte{piece(chunk+4096, 2), piece(chunk, 3), piece(chunk, 4)}, []uint32{chunk, chunk, chunk}},
		{"first chunk shorter than declared", [][]byte{piece(1000, 5), piece(chunk, 6), piece(100, 7)}, []uint32{chunk, chunk, 100}},
		{"last chunk longer than declared", [][]byte{piece(chunk, 8), piece(chunk, 9)}, []uint32{chunk, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			blocks := &memBlocks{m: map[cid.Cid][]byte{}}
			root := buildDeclared(t, blocks, "f.bin", tc.pieces, tc.sizes, chunk)
			var declared int64
			for _, s := range tc.sizes {
				declared += int64(s)
			}
			mn, err := mocknet.FullMeshConnected(2)
			if err != nil {
				t.Fatal(err)
			}
			defer mn.Close()
			hosts := mn.Hosts()
			// The seeder answers every WANT with the bytes of the CID.
			hostileSeeder(t, hosts[0], blocks, &wire.HaveAll{}, func(m wire.Msg) []byte {
				w, ok := m.(*wire.Want)
				if !ok {
					return nil
				}
				var out []byte
				for _, i := range w.Indices {
					out = append(out, encode(t, &wire.Block{Index: i, Data: tc.pieces[i]})...)
				}
				return out
			})
			fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
			defer fetcher.Close()
			dest := filepath.Join(t.TempDir(), "f.bin")
			_, err = fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true, FindTimeout: time.Second})
			st := fetcher.Stats()
			fi, serr := os.Stat(dest)
			t.Logf("fetch: %v; banned %v; stats %+v; dest %v", err, fetcher.Banned(hosts[0].ID()), st, serr)
			if err == nil {
				t.Fatalf("the fetch completed: %s is %d bytes, the root declares %d", dest, fi.Size(), declared)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the fetch hung until the deadline")
			}
			if serr == nil {
				t.Errorf("%s exists (%d bytes) after the fetch failed", dest, fi.Size())
			}
			if !fetcher.Banned(hosts[0].ID()) {
				t.Error("the seeder of a chunk of the wrong length was not banned")
			}
			if st.ChunksRejected == 0 {
				t.Error("no chunk was counted as rejected")
			}
			// Nothing of the wrong length reached the staging file: it is
			// never longer than declared.
			matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".f.bin*"))
			for _, p := range matches {
				if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Size() != declared {
					t.Errorf("staging file %s is %d bytes, the root declares %d", p, fi.Size(), declared)
				}
			}
		})
	}
}
