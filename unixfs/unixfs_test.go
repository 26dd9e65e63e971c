package unixfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	bchunker "github.com/ipfs/boxo/chunker"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/kubovec"
)

// seeded is kubovec.Seeded, with the signature the tests were written for.
func seeded(_ testing.TB, seed string, n int64) io.Reader { return kubovec.Seeded(seed, n) }

// blocks collects what a builder puts.
type blocks struct{ got map[cid.Cid][]byte }

func newBlocks() *blocks { return &blocks{got: map[cid.Cid][]byte{}} }

func (b *blocks) put(bl Block) error {
	if c, err := bl.CID.Prefix().Sum(bl.Data); err != nil || c != bl.CID {
		return fmt.Errorf("block %s hashes to %s (%v)", bl.CID, c, err)
	}
	b.got[bl.CID] = bytes.Clone(bl.Data)
	return nil
}

// buildFile cuts r into chunks with peer's chunker and builds the file's
// DAG with maxLinks; stopAt, when > 0, also returns the root of the
// first stopAt leaves alone (a prefix of the stream is a file of its own).
func buildFile(t testing.TB, r io.Reader, chunkSize, maxLinks int, stopAt int64) (root, prefix Link) {
	t.Helper()
	fb := newFileBuilder(maxLinks, newBlocks().put)
	pb := newFileBuilder(maxLinks, newBlocks().put)
	p := chunker.DefaultParams()
	p.Size = chunkSize
	err := chunker.Splitter{Params: p}.Split(context.Background(), r, func(c chunker.Chunk) error {
		if c.Index < stopAt {
			if err := pb.Add(Leaf(c.CID, c.Size)); err != nil {
				return err
			}
		}
		return fb.Add(Leaf(c.CID, c.Size))
	})
	if err != nil {
		t.Fatal(err)
	}
	if root, err = fb.Finish(); err != nil {
		t.Fatal(err)
	}
	if stopAt > 0 {
		if prefix, err = pb.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	return root, prefix
}

func TestKuboFileVectors(t *testing.T) {
	root, _ := buildFile(t, strings.NewReader("hello world"), ChunkSize, MaxLinks, 0)
	if root.CID.String() != kubovec.HelloWorld {
		t.Errorf("hello world: %s, Kubo %s", root.CID, kubovec.HelloWorld)
	}
	if testing.Short() || raceEnabled {
		t.Skip("hashes 1025 MiB (skipped under -short and -race)")
	}
	// One pass over 1025 MiB gives both roots: the 1024 MiB file is the
	// stream's first 1024 chunks.
	root, prefix := buildFile(t, seeded(t, "v1-2025-seed", 1025<<20), ChunkSize, MaxLinks, 1024)
	if prefix.CID.String() != kubovec.AtMaxLinks {
		t.Errorf("1024 MiB: %s, Kubo %s", prefix.CID, kubovec.AtMaxLinks)
	}
	if prefix.FileSize != 1024<<20 {
		t.Errorf("1024 MiB: file size %d", prefix.FileSize)
	}
	if root.CID.String() != kubovec.OverMax {
		t.Errorf("1025 MiB: %s, Kubo %s", root.CID, kubovec.OverMax)
	}
}

// kuboDir builds the folder of Kubo's HAMT threshold vectors: n files
// holding "x", named with lengths nameLen (the last lastLen) from a
// deterministic stream mapped onto an easy alphabet.
func kuboDir(t *testing.T, n, nameLen, lastLen int) (Link, *blocks) {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz01234567890-_"
	names := seeded(t, "hamt-unixfs-v1-2025", 1<<20)
	x := Leaf(integrity.Chunk([]byte("x")), 1)
	bl := newBlocks()
	d, err := NewDirBuilder(bl.put)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		l := nameLen
		if i == n-1 {
			l = lastLen
		}
		buf := make([]byte, l)
		if _, err := io.ReadFull(names, buf); err != nil {
			t.Fatal(err)
		}
		for j, b := range buf {
			buf[j] = alphabet[int(b)%len(alphabet)]
		}
		if err := d.Add(ctx, string(buf), x); err != nil {
			t.Fatal(err)
		}
	}
	root, err := d.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return root, bl
}

func TestKuboDirVectors(t *testing.T) {
	basic, bl := kuboDir(t, 4766, 11, 21)
	if basic.CID.String() != kubovec.DirBasic {
		t.Errorf("folder at the threshold: %s, Kubo %s", basic.CID, kubovec.DirBasic)
	}
	if n := len(bl.got[basic.CID]); n != HAMTThreshold {
		t.Errorf("folder at the threshold: block of %d bytes, want %d", n, HAMTThreshold)
	}
	hamt, bl := kuboDir(t, 4766, 11, 22)
	if hamt.CID.String() != kubovec.DirHAMT {
		t.Errorf("folder over the threshold: %s, Kubo %s", hamt.CID, kubovec.DirHAMT)
	}
	fsn, err := ft.FSNodeFromBytes(mustProto(t, bl.got[hamt.CID]).Data())
	if err != nil || fsn.Type() != ft.THAMTShard {
		t.Errorf("folder over the threshold: root is not a HAMT shard (%v)", err)
	}
	if len(bl.got) < 2 {
		t.Errorf("folder over the threshold: %d blocks put, want the root and its shards", len(bl.got))
	}
}

func mustProto(t *testing.T, data []byte) *dag.ProtoNode {
	t.Helper()
	pn, err := dag.DecodeProtobuf(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := pn.SetCidBuilder(cidBuilder); err != nil { // a decoded node defaults to CIDv0
		t.Fatal(err)
	}
	return pn
}

func TestEmptyAndNestedDirs(t *testing.T) {
	ctx := context.Background()
	bl := newBlocks()
	empty, err := NewDirBuilder(bl.put)
	if err != nil {
		t.Fatal(err)
	}
	e, err := empty.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e.CID.String() != kubovec.EmptyDir {
		t.Errorf("empty folder: %s, want %s", e.CID, kubovec.EmptyDir)
	}
	// A folder holding the empty folder, an empty file and a file with a
	// unicode name, against boxo's folder built from whole nodes.
	d, err := NewDirBuilder(bl.put)
	if err != nil {
		t.Fatal(err)
	}
	emptyFile := Leaf(integrity.Chunk(nil), 0)
	hi := Leaf(integrity.Chunk([]byte("héllo")), len("héllo"))
	for name, l := range map[string]Link{"sub": e, "empty": emptyFile, "ünïcødé 🌍.txt": hi} {
		if err := d.Add(ctx, name, l); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ft.EmptyDirNode()
	want.SetCidBuilder(cidBuilder)
	for name, n := range map[string]ipld.Node{
		"sub":           mustProto(t, bl.got[e.CID]),
		"empty":         mustRaw(t, nil),
		"ünïcødé 🌍.txt": mustRaw(t, []byte("héllo")),
	} {
		if err := want.AddNodeLink(name, n); err != nil {
			t.Fatal(err)
		}
	}
	if got.CID != want.Cid() {
		t.Errorf("nested folder: %s, boxo %s", got.CID, want.Cid())
	}
	if err := d.Add(ctx, "late", hi); err != ErrFinished {
		t.Errorf("Add after Finish = %v, want ErrFinished", err)
	}
}

func mustRaw(t *testing.T, data []byte) ipld.Node {
	t.Helper()
	n, err := dag.NewRawNodeWPrefix(data, cid.V1Builder{Codec: cid.Raw, MhType: cidBuilder.MhType})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDirNames(t *testing.T) {
	d, err := NewDirBuilder(newBlocks().put)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	x := Leaf(integrity.Chunk([]byte("x")), 1)
	for _, name := range []string{"", ".", "..", "a/b", "/", "nul\x00", "\xff\xfe"} {
		if err := d.Add(ctx, name, x); err == nil {
			t.Errorf("Add(%q) accepted", name)
		}
	}
	if err := d.Add(ctx, "a", x); err != nil {
		t.Fatal(err)
	}
	if err := d.Add(ctx, "a", x); err == nil {
		t.Errorf("a second entry named a was accepted")
	}
}

// TestBalancedLikeBoxo checks the streaming layout against boxo's own
// balanced importer (the code Kubo runs), with narrow nodes and tiny
// chunks so that every shape shows up with few bytes: a file of no chunk,
// one, a full node, one past it, a full tree of every depth and one past.
func TestBalancedLikeBoxo(t *testing.T) {
	const chunk = 16
	for _, maxLinks := range []int{2, 3, 1024} {
		for _, leaves := range []int{0, 1, 2, 3, 4, 5, 8, 9, 10, 26, 27, 28, 81, 82, 100, 1024, 1025, 2049} {
			for _, tail := range []int{0, 1, chunk - 1} {
				size := leaves*chunk + tail
				if leaves == 0 && tail > 0 {
					continue
				}
				t.Run(fmt.Sprintf("links=%d/size=%d", maxLinks, size), func(t *testing.T) {
					data := make([]byte, size)
					for i := range data {
						data[i] = byte(i*7 + i>>8)
					}
					want := boxoRoot(t, data, chunk, maxLinks)
					fb := newFileBuilder(maxLinks, newBlocks().put)
					for off := 0; off < size; off += chunk {
						c := data[off:min(off+chunk, size)]
						if err := fb.Add(Leaf(integrity.Chunk(c), len(c))); err != nil {
							t.Fatal(err)
						}
					}
					got, err := fb.Finish()
					if err != nil {
						t.Fatal(err)
					}
					if got.CID != want.Cid() {
						t.Fatalf("root %s, boxo %s", got.CID, want.Cid())
					}
					if wantSize, _ := want.Size(); got.Size != wantSize {
						t.Fatalf("Tsize %d, boxo %d", got.Size, wantSize)
					}
					if got.FileSize != uint64(size) {
						t.Fatalf("file size %d, want %d", got.FileSize, size)
					}
				})
			}
		}
	}
}

// boxoRoot imports data with boxo's balanced layout.
func boxoRoot(t *testing.T, data []byte, chunk, maxLinks int) ipld.Node {
	t.Helper()
	params := helpers.DagBuilderParams{
		Maxlinks:   maxLinks,
		RawLeaves:  true,
		CidBuilder: cidBuilder,
		Dagserv:    &nodeSink{put: func(Block) error { return nil }, nodes: map[cid.Cid]ipld.Node{}},
	}
	db, err := params.New(bchunker.NewSizeSplitter(bytes.NewReader(data), int64(chunk)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestFileBuilderMemory checks that a builder keeps at most maxLinks links
// per level and puts every interior node once, children first.
func TestFileBuilderMemory(t *testing.T) {
	var order []cid.Cid
	seen := map[cid.Cid]bool{}
	fb := newFileBuilder(4, func(b Block) error {
		pn, err := dag.DecodeProtobuf(b.Data)
		if err != nil {
			return err
		}
		for _, l := range pn.Links() {
			if l.Cid.Prefix().Codec == cid.DagProtobuf && !seen[l.Cid] {
				return fmt.Errorf("node %s put before its child %s", b.CID, l.Cid)
			}
		}
		seen[b.CID] = true
		order = append(order, b.CID)
		return nil
	})
	for i := range 1000 {
		if err := fb.Add(Leaf(integrity.Chunk([]byte{byte(i), byte(i >> 8)}), 2)); err != nil {
			t.Fatal(err)
		}
		for k, lv := range fb.levels {
			if len(lv) >= 4 {
				t.Fatalf("after leaf %d, level %d holds %d links", i, k, len(lv))
			}
		}
	}
	root, err := fb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if order[len(order)-1] != root.CID {
		t.Errorf("the root was not put last")
	}
	if err := fb.Add(Leaf(integrity.Chunk(nil), 0)); err != ErrFinished {
		t.Errorf("Add after Finish = %v", err)
	}
}

// TestSmallFileBuilderAllocates builds many one-leaf files, as a folder of
// small files does: each must cost its builder a few hundred bytes, not a
// level of MaxLinks links made in advance (32 KiB a file, 3 GiB of garbage
// for a folder of 100,000 files).
func TestSmallFileBuilderAllocates(t *testing.T) {
	const files = 1000
	sum, err := mh.Sum([]byte("leaf"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	leaf := Leaf(cid.NewCidV1(cid.Raw, sum), 4)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range files {
		b := NewFileBuilder(func(Block) error { return nil })
		if err := b.Add(leaf); err != nil {
			t.Fatal(err)
		}
		if root, err := b.Finish(); err != nil || root.CID != leaf.CID {
			t.Fatalf("Finish = %v, %v; want the leaf", root.CID, err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / files; per > 1<<10 {
		t.Errorf("a one-leaf file allocated %d bytes in its builder, want at most 1 KiB", per)
	}
}
