package manifest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// TestBuilderTrees builds files of many chunk counts with a fan-out of 4,
// so depths 0 to 3 appear, and checks that Chunks, ChunkAt and Locate give
// back exactly the chunks that were added, that the tree has the canonical
// shape, and that ChunkAt touches only the pages on its path.
func TestBuilderTrees(t *testing.T) {
	const fanout = 4
	p := chunker.FixedParams(16 << 10)
	tests := []struct {
		chunks, depth, pages int
	}{
		{0, 0, 0}, {1, 0, 0}, {4, 0, 0},
		{5, 1, 2}, {16, 1, 4},
		{17, 2, 5 + 2}, {64, 2, 16 + 4},
		{65, 3, 17 + 5 + 2}, {200, 3, 50 + 13 + 4 + 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.chunks), func(t *testing.T) {
			s := newMemStore()
			refs := fakeRefs(tc.chunks, uint32(p.Size), 100)
			root, f := buildFile(t, s, "f", p, refs, fanout)
			if f.Depth != tc.depth {
				t.Errorf("depth %d, want %d", f.Depth, tc.depth)
			}
			if pages := len(s.blocks) - 1; pages != tc.pages {
				t.Errorf("%d pages emitted, want %d", pages, tc.pages)
			}
			if got := s.blocks[root.CID.KeyString()]; got == nil {
				t.Error("root was not emitted")
			}
			var want uint64
			if tc.chunks > 0 {
				want = uint64(tc.chunks-1)*uint64(p.Size) + 100
			}
			if f.Size != want || f.Count != uint64(tc.chunks) {
				t.Errorf("size %d count %d, want %d %d", f.Size, f.Count, want, tc.chunks)
			}
			checkChunks(t, s, f, refs)
		})
	}
}

// checkChunks checks Chunks, ChunkAt and Locate against refs.
func checkChunks(t *testing.T, s *memStore, f *File, refs []ChunkRef) {
	t.Helper()
	ctx := context.Background()
	var offsets []int64
	var off int64
	err := Chunks(ctx, s, f, func(i, o int64, ref ChunkRef) error {
		if i != int64(len(offsets)) || o != off {
			return fmt.Errorf("chunk %d at %d, want %d at %d", i, o, len(offsets), off)
		}
		if int(i) >= len(refs) || ref != refs[i] {
			return fmt.Errorf("chunk %d is %v, want %v", i, ref, refs[min(int(i), len(refs)-1)])
		}
		offsets = append(offsets, o)
		off += int64(ref.Size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(offsets) != len(refs) {
		t.Fatalf("Chunks gave %d chunks, want %d", len(offsets), len(refs))
	}
	for i, want := range refs {
		before := s.fetches()
		ref, o, err := ChunkAt(ctx, s, f, int64(i))
		if err != nil || ref != want || o != offsets[i] {
			t.Fatalf("ChunkAt(%d) = %v, %d, %v; want %v, %d", i, ref, o, err, want, offsets[i])
		}
		if n := s.fetches() - before; n != f.Depth {
			t.Fatalf("ChunkAt(%d) fetched %d blocks, want depth %d", i, n, f.Depth)
		}
		for _, at := range []int64{offsets[i], offsets[i] + int64(want.Size) - 1} {
			idx, ref, start, err := Locate(ctx, s, f, at)
			if err != nil || idx != int64(i) || ref != want || start != offsets[i] {
				t.Fatalf("Locate(%d) = %d, %v, %d, %v; want chunk %d at %d", at, idx, ref, start, err, i, offsets[i])
			}
		}
	}
	if _, _, err := ChunkAt(ctx, s, f, int64(len(refs))); !errors.Is(err, ErrNotFound) {
		t.Errorf("ChunkAt past the end: %v, want ErrNotFound", err)
	}
	if _, _, err := ChunkAt(ctx, s, f, -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("ChunkAt(-1): %v, want ErrNotFound", err)
	}
	if _, _, _, err := Locate(ctx, s, f, int64(f.Size)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Locate past the end: %v, want ErrNotFound", err)
	}
}

func TestBuilderCDC(t *testing.T) {
	p := chunker.CDCParams(64 << 10) // 16 KiB .. 256 KiB
	sizes := []uint32{16 << 10, 256 << 10, 70000, 99999, 16 << 10, 1}
	var refs []ChunkRef
	for i, sz := range sizes {
		refs = append(refs, fakeRef(uint64(i), sz))
	}
	s := newMemStore()
	_, f := buildFile(t, s, "cdc", p, refs, 2)
	if f.Depth != 2 {
		t.Fatalf("depth %d, want 2", f.Depth)
	}
	checkChunks(t, s, f, refs)
}

func TestBuilderRejects(t *testing.T) {
	fixed := chunker.FixedParams(16 << 10)
	cdc := chunker.CDCParams(64 << 10)
	tests := []struct {
		name string
		p    chunker.Params
		refs []ChunkRef
		want []error
		msg  string
	}{
		{"short then more (fixed)", fixed, []ChunkRef{fakeRef(0, 100), fakeRef(1, 16<<10)}, []error{ErrInvalid}, "only the last chunk"},
		{"short then more (cdc)", cdc, []ChunkRef{fakeRef(0, 100), fakeRef(1, 100)}, []error{ErrInvalid}, "only the last chunk"},
		{"too long (fixed)", fixed, []ChunkRef{fakeRef(0, 16<<10+1)}, []error{ErrInvalid}, "at most 16384"},
		{"too long (cdc)", cdc, []ChunkRef{fakeRef(0, 256<<10+1)}, []error{ErrInvalid}, "at most 262144"},
		{"empty chunk", fixed, []ChunkRef{fakeRef(0, 0)}, []error{ErrInvalid}, "empty"},
		{"dag-cbor chunk", fixed, []ChunkRef{{CID: integrity.Block(nil), Size: 1}}, []error{ErrInvalid, integrity.ErrUnsupported}, "codec"},
		{"undefined CID", fixed, []ChunkRef{{Size: 1}}, []error{ErrInvalid, integrity.ErrUnsupported}, "undefined"},
		// With fan-out 2, depth 4 holds 2^5 chunks.
		{"too deep", fixed, fakeRefs(33, 16<<10, 16<<10), []error{ErrTooLarge}, "deeper than 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := newFileBuilder("f", tc.p, func(Block) error { return nil }, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.refs {
				if err = b.Add(r); err != nil {
					break
				}
			}
			checkErr(t, err, tc.want, tc.msg)
			if err2 := b.Add(fakeRef(99, 1)); err2 != err {
				t.Errorf("Add after an error: %v, want the same error", err2)
			}
			if _, err2 := b.Finish(); err2 != err {
				t.Errorf("Finish after an error: %v, want the same error", err2)
			}
			if _, err2 := b.Finish(); !errors.Is(err2, ErrFinished) {
				t.Errorf("second Finish: %v, want ErrFinished", err2)
			}
		})
	}

	// 32 chunks fit depth 4 with fan-out 2.
	s := newMemStore()
	refs := fakeRefs(32, 16<<10, 1)
	_, f := buildFile(t, s, "f", fixed, refs, 2)
	if f.Depth != MaxDepth {
		t.Fatalf("depth %d, want %d", f.Depth, MaxDepth)
	}
	checkChunks(t, s, f, refs)

	if _, err := NewFileBuilder("../x", fixed, func(Block) error { return nil }); !errors.Is(err, ErrName) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := NewFileBuilder("x", chunker.Params{}, func(Block) error { return nil }); !errors.Is(err, chunker.ErrParams) {
		t.Errorf("bad params: %v", err)
	}
	if _, err := NewFileBuilder("x", fixed, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil emit: %v", err)
	}
}

func TestBuilderEmitError(t *testing.T) {
	boom := errors.New("disk full")
	b, err := newFileBuilder("f", chunker.FixedParams(16<<10), func(Block) error { return boom }, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := b.Add(fakeRef(uint64(i), 16<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Add(fakeRef(2, 16<<10)); !errors.Is(err, boom) { // the first page goes out
		t.Fatalf("Add: %v, want the emit error", err)
	}
}

func TestBuilderFileTooLarge(t *testing.T) {
	b, err := NewFileBuilder("f", chunker.FixedParams(4<<20), func(Block) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	b.size = MaxFileSize - 1 // as if 1 PiB had been added
	if err := b.Add(fakeRef(0, 4<<20)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add beyond 1 PiB: %v, want ErrTooLarge", err)
	}
}

// TestOneTiB builds the manifest of a 1 TiB file of 1 MiB chunks (fake
// chunk CIDs): a root of depth 1 over 128 full pages, every block within
// the limit, built in bounded time and memory.
func TestOneTiB(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 2^20 chunk entries")
	}
	const n = 1 << 20
	s := newMemStore()
	largest := 0
	emit := func(b Block) error {
		largest = max(largest, len(b.Data))
		if len(b.Data) > MaxBlockSize {
			return fmt.Errorf("block of %d bytes", len(b.Data))
		}
		return s.put(b)
	}
	start := time.Now()
	b, err := NewFileBuilder("one.tib", chunker.DefaultParams(), emit)
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(n) {
		if err := b.Add(fakeRef(i, 1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	nd, err := Decode(root.CID, root.Data)
	if err != nil {
		t.Fatal(err)
	}
	f := nd.(*File)
	if f.Size != 1<<40 || f.Count != n || f.Depth != 1 || len(f.Entries) != 128 || len(s.blocks) != 129 {
		t.Fatalf("size %d count %d depth %d entries %d blocks %d", f.Size, f.Count, f.Depth, len(f.Entries), len(s.blocks))
	}
	t.Logf("1 TiB of 1 MiB chunks: built in %v; root %d bytes, largest block %d bytes (limit %d)",
		took, len(root.Data), largest, MaxBlockSize)
	ctx := context.Background()
	for _, i := range []int64{0, 8191, 8192, n/2 + 3, n - 1} {
		ref, off, err := ChunkAt(ctx, s, f, i)
		if err != nil || ref != fakeRef(uint64(i), 1<<20) || off != i<<20 {
			t.Fatalf("ChunkAt(%d) = %v, %d, %v", i, ref, off, err)
		}
	}
	var count int64
	if err := Chunks(ctx, s, f, func(i, off int64, ref ChunkRef) error { count++; return nil }); err != nil || count != n {
		t.Fatalf("Chunks: %d chunks, %v", count, err)
	}
}
