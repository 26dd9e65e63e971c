package manifest

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

func mustEncode(t *testing.T, s *memStore, n Node) Block {
	t.Helper()
	b, err := Encode(n)
	if err != nil {
		t.Fatal(err)
	}
	s.put(b)
	return b
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	file, dir := goldenTree(t, s)
	tests := []struct {
		path string
		want string // kind and name of the node found
		err  error
	}{
		{"", "dir golden", nil},
		{"small.bin", "file small.bin", nil},
		{"sub", "dir sub", nil},
		{"sub/small.bin", "file small.bin", nil},
		{"empty", "file empty", nil},
		{"nope", "", ErrNotFound},
		{"sub/nope", "", ErrNotFound},
		{"small.bin/x", "", ErrNotDir},
		{"sub/../small.bin", "", ErrName},
		{"sub//small.bin", "", ErrName},
		{"/sub", "", ErrName},
		{"sub/", "", ErrName},
		{"./sub", "", ErrName},
		{"C:", "", ErrName},
		{strings.Repeat("a/", MaxPathDepth) + "a", "", ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			c, n, err := Resolve(ctx, s, dir.CID, tc.path)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			switch n := n.(type) {
			case *File:
				got = "file " + n.Name
			case *Dir:
				got = "dir " + n.Name
			}
			if got != tc.want {
				t.Fatalf("found %s, want %s", got, tc.want)
			}
			back, err := Load(ctx, s, c)
			if err != nil || kindOf(back) != kindOf(n) {
				t.Fatalf("CID %s does not load the node (%v)", c, err)
			}
		})
	}
	c, _, err := Resolve(ctx, s, dir.CID, "small.bin")
	if err != nil || !c.Equals(file.CID) {
		t.Fatalf("small.bin resolves to %s, %v; want %s", c, err, file.CID)
	}
	// A file root resolves only the empty path.
	if _, _, err := Resolve(ctx, s, file.CID, "x"); !errors.Is(err, ErrNotDir) {
		t.Fatalf("path below a file root: %v", err)
	}
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	_, dir := goldenTree(t, s)
	var seen []string
	err := Walk(ctx, s, dir.CID, func(path string, c cid.Cid, n Node) error {
		seen = append(seen, path+":"+kindOf(n))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ":directory empty:file small.bin:file sub:directory sub/small.bin:file"
	if got := strings.Join(seen, " "); got != want {
		t.Fatalf("walked %q, want %q", got, want)
	}
	seen = nil
	err = Walk(ctx, s, dir.CID, func(path string, c cid.Cid, n Node) error {
		seen = append(seen, path)
		if path == "sub" {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil || strings.Join(seen, ",") != ",empty,small.bin,sub" {
		t.Fatalf("with SkipDir: walked %q, %v", seen, err)
	}
	stop := errors.New("stop")
	err = Walk(ctx, s, dir.CID, func(path string, c cid.Cid, n Node) error {
		if path == "small.bin" {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("Walk returned %v, want fn's error", err)
	}
}

// TestHostileTrees checks that a tree whose blocks are each valid but
// which lies about its shape is refused by the walkers.
func TestHostileTrees(t *testing.T) {
	ctx := context.Background()
	fixed := chunker.DefaultParams()
	ch := func(i uint64, size uint64) Entry { return Entry{CID: fakeRef(i, 1).CID, Size: size, Count: 1} }

	depth1 := func(s *memStore, pages ...*Page) *File {
		f := &File{Name: "f", Chunking: fixed, Depth: 1}
		for _, p := range pages {
			b := mustEncode(t, s, p)
			size, count := p.Totals()
			f.Entries = append(f.Entries, Entry{CID: b.CID, Size: size, Count: count})
			f.Size += size
			f.Count += count
		}
		return f
	}
	tests := []struct {
		name  string
		build func(s *memStore) *File
		want  []error
		msg   string
	}{
		{"depth does not decrease", func(s *memStore) *File {
			inner := mustEncode(t, s, &Page{Depth: 0, Entries: []Entry{ch(0, 1<<20), ch(1, 1<<20)}})
			return depth1(s, &Page{Depth: 1, Entries: []Entry{{CID: inner.CID, Size: 2 << 20, Count: 2}}})
		}, []error{ErrInvalid}, "has depth 1, its parent wants depth 0"},
		{"page covers less than claimed", func(s *memStore) *File {
			f := depth1(s, &Page{Depth: 0, Entries: []Entry{ch(0, 1<<20)}}, &Page{Depth: 0, Entries: []Entry{ch(1, 5)}})
			f.Entries[0].Count, f.Entries[0].Size = 2, 2<<20
			f.Count, f.Size = 3, 2<<20+5
			return f
		}, []error{ErrInvalid}, "covers 1048576 bytes in 1 chunks, its parent claims 2097152 bytes in 2 chunks"},
		{"page link to a file", func(s *memStore) *File {
			other := mustEncode(t, s, &File{Name: "x", Size: 5, Chunking: fixed, Count: 1, Entries: []Entry{ch(0, 5)}})
			return &File{Name: "f", Size: 5, Chunking: fixed, Count: 1, Depth: 1, Entries: []Entry{{CID: other.CID, Size: 5, Count: 1}}}
		}, []error{ErrInvalid}, "is a file where a page belongs"},
		{"short CDC chunk hidden in a page", func(s *memStore) *File {
			f := depth1(s, &Page{Depth: 0, Entries: []Entry{ch(0, 100), ch(1, 40000)}}, &Page{Depth: 0, Entries: []Entry{ch(2, 5)}})
			f.Chunking = chunker.CDCParams(16 << 10)
			return f
		}, []error{ErrInvalid}, "100 bytes are too few for 1 chunks of at least 16384 bytes"},
		{"missing page", func(s *memStore) *File {
			return &File{Name: "f", Size: 5, Chunking: fixed, Count: 1, Depth: 1,
				Entries: []Entry{{CID: integrity.Block([]byte("gone")), Size: 5, Count: 1}}}
		}, nil, "memstore: no block"},
		{"invalid root", func(s *memStore) *File {
			return &File{Name: "f", Size: 5, Chunking: fixed, Count: 2, Entries: []Entry{ch(0, 5)}}
		}, []error{ErrInvalid}, "5 bytes are too few for 2 chunks: all but the last hold at least 1048576"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore()
			f := tc.build(s)
			err := Chunks(ctx, s, f, func(int64, int64, ChunkRef) error { return nil })
			checkErr(t, err, tc.want, tc.msg)
			// ChunkAt reaches the lie on one path or another.
			var atErr error
			for i := int64(0); i < int64(f.Count) && atErr == nil; i++ {
				_, _, atErr = ChunkAt(ctx, s, f, i)
			}
			if f.Count == 0 {
				_, _, atErr = ChunkAt(ctx, s, f, 0)
			}
			checkErr(t, atErr, tc.want, tc.msg)
		})
	}
}

func TestWalkersRefuseBadBytes(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	refs := fakeRefs(10, 16<<10, 1)
	_, f := buildFile(t, s, "f", chunker.FixedParams(16<<10), refs, 4)
	// A peer serves other bytes for the first page.
	tampered := GetterFunc(func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if c.Equals(f.Entries[0].CID) {
			return s.blocks[f.Entries[1].CID.KeyString()], nil
		}
		return s.GetBlock(ctx, c)
	})
	err := Chunks(ctx, tampered, f, func(int64, int64, ChunkRef) error { return nil })
	var mm *integrity.MismatchError
	if !errors.As(err, &mm) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered page: %v, want a MismatchError", err)
	}
	// fn's error comes back as is.
	stop := errors.New("stop")
	if err := Chunks(ctx, s, f, func(i int64, _ int64, _ ChunkRef) error {
		if i == 5 {
			return stop
		}
		return nil
	}); err != stop {
		t.Fatalf("Chunks returned %v, want fn's error", err)
	}
	// A cancelled context stops before the next fetch.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Chunks(cctx, s, f, func(int64, int64, ChunkRef) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Chunks: %v", err)
	}
	if _, err := Load(cctx, s, f.Entries[0].CID); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Load: %v", err)
	}
}

func TestResolveRefusesInconsistentDirs(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	file := mustEncode(t, s, &File{Name: "a", Size: 5, Chunking: chunker.DefaultParams(), Count: 1,
		Entries: []Entry{{CID: fakeRef(0, 1).CID, Size: 5, Count: 1}}})
	sub := mustEncode(t, s, &Dir{Name: "a"})
	page := mustEncode(t, s, &Page{Entries: []Entry{{CID: fakeRef(0, 1).CID, Size: 5, Count: 1}}})
	tests := []struct {
		name  string
		entry DirEntry
		msg   string
	}{
		{"file marked dir", DirEntry{Name: "a", CID: file.CID, Size: 5, Dir: true}, "says directory"},
		{"dir marked file", DirEntry{Name: "a", CID: sub.CID}, "says file"},
		{"name differs", DirEntry{Name: "b", CID: file.CID, Size: 5}, `links to a manifest named "a"`},
		{"size differs", DirEntry{Name: "a", CID: file.CID, Size: 6}, "says 6 bytes, its manifest 5"},
		{"links to a page", DirEntry{Name: "a", CID: page.CID, Size: 5}, "links to a page"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := mustEncode(t, s, &Dir{Name: "root", Size: tc.entry.Size, Entries: []DirEntry{tc.entry}})
			_, _, err := Resolve(ctx, s, root.CID, tc.entry.Name)
			checkErr(t, err, []error{ErrInvalid}, tc.msg)
			err = Walk(ctx, s, root.CID, func(string, cid.Cid, Node) error { return nil })
			checkErr(t, err, []error{ErrInvalid}, tc.msg)
		})
	}
}

func TestWalkDepthLimit(t *testing.T) {
	s := newMemStore()
	child := mustEncode(t, s, &Dir{Name: "d"})
	for range MaxPathDepth + 1 {
		child = mustEncode(t, s, &Dir{Name: "d", Entries: []DirEntry{{Name: "d", CID: child.CID, Dir: true}}})
	}
	err := Walk(context.Background(), s, child.CID, func(string, cid.Cid, Node) error { return nil })
	checkErr(t, err, []error{ErrTooLarge}, "nests deeper than 64")
}
