package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

func TestShareRoundTrip(t *testing.T) {
	clk := &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)}
	s, path := openTest(t, Options{Now: clk.Now})
	dir := t.TempDir()
	a := writeFile(t, dir, "a.bin", content("a", 5*testChunk+123))
	b := writeFile(t, dir, "sub/b.bin", content("b", 2*testChunk))
	empty := writeFile(t, dir, "empty", nil)
	root := integrity.Block([]byte("share"))
	shareFiles(t, s, dir, root, 2, a, b, empty)

	shares, err := s.Shares()
	if err != nil || len(shares) != 1 {
		t.Fatalf("Shares = %+v, %v", shares, err)
	}
	want := Share{Root: root, Path: dir, Name: filepath.Base(dir), Size: int64(len(a.data) + len(b.data)),
		Files: 3, Dir: true, Chunking: chunker.FixedParams(testChunk), Created: clk.t}
	if got := shares[0]; !got.Created.Equal(want.Created) || got.Root != want.Root || got.Path != want.Path ||
		got.Name != want.Name || got.Size != want.Size || got.Files != want.Files || got.Dir != want.Dir ||
		got.Chunking != want.Chunking || got.Stale {
		t.Fatalf("share = %+v, want %+v", got, want)
	}
	if one, err := s.Share(root); err != nil || one.Root != root {
		t.Fatalf("Share = %+v, %v", one, err)
	}

	ctx := context.Background()
	var buf []byte
	for _, f := range []testFile{a, b} {
		for i, ch := range f.chunks {
			locs, err := s.Locations(ch.CID)
			if err != nil || len(locs) != 1 {
				t.Fatalf("Locations(%s) = %+v, %v", ch.CID, locs, err)
			}
			l := locs[0]
			if l.Path != f.path || l.Offset != ch.Offset || l.Size != ch.Size || l.FileSize != int64(len(f.data)) ||
				!l.ModTime.Equal(f.mtime) || l.Share != root || l.File != f.root {
				t.Fatalf("location %+v of chunk %d of %s", l, i, f.path)
			}
			got, err := s.ReadChunk(ctx, ch.CID, buf)
			if err != nil || !bytes.Equal(got, f.chunkData(i)) {
				t.Fatalf("ReadChunk %d of %s: %v", i, f.path, err)
			}
			buf = got
		}
	}
	if _, err := s.ReadChunk(ctx, integrity.Chunk([]byte("nobody has this")), nil); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrStale) {
		t.Fatalf("ReadChunk of an unknown chunk = %v, want ErrNotFound", err)
	}

	// Everything survives a reopen.
	s.Close()
	s2, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.ReadChunk(ctx, a.chunks[5].CID, nil); err != nil || !bytes.Equal(got, a.chunkData(5)) {
		t.Fatalf("ReadChunk after reopen: %v", err)
	}
	if err := checkConsistent(s2); err != nil {
		t.Fatal(err)
	}
}

func TestShareRelativePaths(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "x/y.bin", content("y", testChunk+1))
	root := integrity.Block([]byte("rel"))
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.AddFile("../escape", 1, f.mtime, f.root, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddFile(../escape) = %v, want ErrInvalid", err)
	}
	if err := tx.AddFile(filepath.Join("x", "y.bin"), int64(len(f.data)), f.mtime, f.root, f.chunks); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(root, ShareInfo{Name: "d", Chunking: chunker.DefaultParams()}); err != nil {
		t.Fatal(err)
	}
	locs, err := s.Locations(f.chunks[1].CID)
	if err != nil || len(locs) != 1 || locs[0].Path != f.path {
		t.Fatalf("Locations = %+v, %v; want path %s", locs, err, f.path)
	}
	if got, err := s.ReadChunk(context.Background(), f.chunks[1].CID, nil); err != nil || !bytes.Equal(got, f.chunkData(1)) {
		t.Fatalf("ReadChunk: %v", err)
	}
}

func TestAddFileRejects(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", 3*testChunk))
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	n := int64(len(f.data))
	tests := []struct {
		name   string
		path   string
		size   int64
		mtime  time.Time
		root   cid.Cid
		chunks []ChunkLoc
	}{
		{"empty path", "", n, f.mtime, f.root, nil},
		{"negative size", f.path, -1, f.mtime, f.root, nil},
		{"zero mtime", f.path, n, time.Time{}, f.root, nil},
		{"undefined root", f.path, n, f.mtime, cid.Undef, nil},
		{"chunk past the end", f.path, n, f.mtime, f.root, []ChunkLoc{{CID: f.chunks[0].CID, Offset: n - 10, Size: 11}}},
		{"negative offset", f.path, n, f.mtime, f.root, []ChunkLoc{{CID: f.chunks[0].CID, Offset: -1, Size: 1}}},
		{"chunk too big", f.path, 1 << 30, f.mtime, f.root, []ChunkLoc{{CID: f.chunks[0].CID, Size: chunker.MaxSize + 1}}},
		{"dag-cbor chunk", f.path, n, f.mtime, f.root, []ChunkLoc{{CID: f.root, Size: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tx.AddFile(tt.path, tt.size, tt.mtime, tt.root, tt.chunks); err == nil {
				t.Fatal("AddFile accepted it")
			}
		})
	}
	// Commit checks its arguments too.
	if err := tx.Commit(f.root, ShareInfo{Name: "x"}); !errors.Is(err, chunker.ErrParams) {
		t.Fatalf("Commit with zero Chunking = %v, want ErrParams", err)
	}
	if err := tx.Commit(f.root, ShareInfo{Chunking: chunker.DefaultParams()}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Commit without a name = %v, want ErrInvalid", err)
	}
	if err := tx.Commit(cid.Undef, ShareInfo{Name: "x", Chunking: chunker.DefaultParams()}); !errors.Is(err, integrity.ErrUnsupported) {
		t.Fatalf("Commit with an undefined root = %v", err)
	}
}

func TestPendingShareInvisible(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", 3*testChunk))
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, f.chunks); err != nil {
		t.Fatal(err)
	}
	if locs, err := s.Locations(f.chunks[0].CID); err != nil || len(locs) != 0 {
		t.Fatalf("Locations of a pending share = %+v, %v", locs, err)
	}
	if _, err := s.ReadChunk(context.Background(), f.chunks[0].CID, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadChunk of a pending share = %v", err)
	}
	if shares, _ := s.Shares(); len(shares) != 0 {
		t.Fatalf("Shares lists a pending share: %+v", shares)
	}
	if err := tx.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, f.chunks); !errors.Is(err, ErrShareDone) {
		t.Fatalf("AddFile after Abort = %v, want ErrShareDone", err)
	}
	for _, b := range [][]byte{bucketShares, bucketFiles, bucketLocs, bucketRev} {
		if n := bucketLen(t, s, b); n != 0 {
			t.Errorf("bucket %s holds %d keys after Abort", b, n)
		}
	}
}

func TestPendingShareRemovedAfterCrash(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	done := writeFile(t, dir, "done", content("done", 2*testChunk))
	doneRoot := integrity.Block([]byte("done"))
	shareFiles(t, s, dir, doneRoot, 1, done)

	// A share half built when the process dies.
	f := writeFile(t, dir, "f", content("f", 4*testChunk))
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.chunks {
		if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, f.chunks[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	crashed := snapshot(t, s)

	logger, logs := logBuffer()
	s2, err := Open(crashed, Options{NoSync: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !strings.Contains(logs.String(), "removed unfinished shares") {
		t.Errorf("Open did not log the cleanup: %q", logs.String())
	}
	if err := checkConsistent(s2); err != nil {
		t.Fatal(err)
	}
	shares, err := s2.Shares()
	if err != nil || len(shares) != 1 || shares[0].Root != doneRoot {
		t.Fatalf("Shares after crash = %+v, %v; want only the committed one", shares, err)
	}
	if n := bucketLen(t, s2, bucketLocs); n != len(done.chunks) {
		t.Fatalf("%d locations after crash, want %d", n, len(done.chunks))
	}
	if got, err := s2.ReadChunk(context.Background(), done.chunks[1].CID, nil); err != nil || !bytes.Equal(got, done.chunkData(1)) {
		t.Fatalf("ReadChunk of the committed share after crash: %v", err)
	}
}

func TestUnshareInterruptedByCrash(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", 4*testChunk))
	root := integrity.Block([]byte("r"))
	shareFiles(t, s, dir, root, 2, f)
	// The first step of Unshare, then the process dies.
	if err := s.update(func(tx *bolt.Tx) error {
		_, err := s.retireLocked(tx, tx.Bucket(bucketRoots).Get(root.Bytes()))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Share(root); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Share mid-unshare = %v, want ErrNotFound", err)
	}
	s2, err := Open(snapshot(t, s), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := checkConsistent(s2); err != nil {
		t.Fatal(err)
	}
	if n := bucketLen(t, s2, bucketLocs); n != 0 {
		t.Fatalf("%d locations left after an interrupted Unshare", n)
	}
}

func TestUnshareAndReplace(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", 3*testChunk))
	root := integrity.Block([]byte("r"))
	shareFiles(t, s, dir, root, 10, f)
	shareFiles(t, s, dir, root, 1, f) // the same root again replaces it
	if shares, _ := s.Shares(); len(shares) != 1 {
		t.Fatalf("%d shares after sharing one root twice", len(shares))
	}
	if locs, _ := s.Locations(f.chunks[0].CID); len(locs) != 1 {
		t.Fatalf("%d locations after sharing one root twice", len(locs))
	}
	other := integrity.Block([]byte("other"))
	shareFiles(t, s, dir, other, 10, f)
	if locs, _ := s.Locations(f.chunks[0].CID); len(locs) != 2 {
		t.Fatalf("%d locations for two shares of one file", len(locs))
	}
	if err := s.Unshare(root); err != nil {
		t.Fatal(err)
	}
	if err := s.Unshare(root); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Unshare = %v, want ErrNotFound", err)
	}
	if locs, _ := s.Locations(f.chunks[0].CID); len(locs) != 1 || locs[0].Share != other {
		t.Fatalf("locations after Unshare = %+v", locs)
	}
	if err := s.Unshare(other); err != nil {
		t.Fatal(err)
	}
	if err := checkConsistent(s); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{bucketShares, bucketRoots, bucketFiles, bucketLocs, bucketRev} {
		if n := bucketLen(t, s, b); n != 0 {
			t.Errorf("bucket %s holds %d keys after unsharing everything", b, n)
		}
	}
}

func TestUnshareInBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes many chunks")
	}
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", testChunk))
	// purgeBatch*2+7 locations in one file: removing them takes three
	// transactions for the locations and one more for the rest.
	n := purgeBatch*2 + 7
	chunks := make([]ChunkLoc, n)
	for i := range chunks {
		chunks[i] = ChunkLoc{CID: f.chunks[0].CID, Offset: int64(i), Size: 1}
	}
	tx, _ := s.BeginShare(dir)
	if err := tx.AddFile(f.path, int64(n+1), f.mtime, f.root, chunks); err != nil {
		t.Fatal(err)
	}
	root := integrity.Block([]byte("big"))
	if err := tx.Commit(root, ShareInfo{Name: "big", Chunking: chunker.DefaultParams()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Unshare(root); err != nil {
		t.Fatal(err)
	}
	if got := bucketLen(t, s, bucketLocs) + bucketLen(t, s, bucketRev); got != 0 {
		t.Fatalf("%d keys left", got)
	}
}

// setMtime sets a file's modification time back to what it was indexed with.
func setMtime(t *testing.T, f testFile) {
	t.Helper()
	if err := os.Chtimes(f.path, f.mtime, f.mtime); err != nil {
		t.Fatal(err)
	}
}

func TestReadChunkDetectsChanges(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, f testFile)
		// chunk is the chunk read afterwards; ok whether it must still be
		// served (it is unchanged and the file's size and mtime match).
		chunk int
		ok    bool
	}{
		{"same size, mtime forced back", func(t *testing.T, f testFile) {
			d := bytes.Clone(f.data)
			d[testChunk+5] ^= 0xff
			os.WriteFile(f.path, d, 0o644)
			setMtime(t, f)
		}, 1, false},
		{"same size, mtime forced back, other chunk still served", func(t *testing.T, f testFile) {
			d := bytes.Clone(f.data)
			d[testChunk+5] ^= 0xff
			os.WriteFile(f.path, d, 0o644)
			setMtime(t, f)
		}, 0, true},
		{"appended", func(t *testing.T, f testFile) {
			os.WriteFile(f.path, append(bytes.Clone(f.data), 'x'), 0o644)
			setMtime(t, f)
		}, 0, false},
		{"truncated", func(t *testing.T, f testFile) {
			os.Truncate(f.path, int64(testChunk))
			setMtime(t, f)
		}, 0, false},
		{"touched", func(t *testing.T, f testFile) {
			later := f.mtime.Add(time.Second)
			os.Chtimes(f.path, later, later)
		}, 0, false},
		{"deleted", func(t *testing.T, f testFile) { os.Remove(f.path) }, 0, false},
		{"replaced by a directory", func(t *testing.T, f testFile) {
			os.Remove(f.path)
			os.Mkdir(f.path, 0o755)
		}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, Options{})
			dir := t.TempDir()
			f := writeFile(t, dir, "f", content("f", 3*testChunk))
			root := integrity.Block([]byte("r"))
			shareFiles(t, s, dir, root, 10, f)
			tt.edit(t, f)
			got, err := s.ReadChunk(context.Background(), f.chunks[tt.chunk].CID, nil)
			if tt.ok {
				if err != nil || !bytes.Equal(got, f.chunkData(tt.chunk)) {
					t.Fatalf("ReadChunk of an unchanged chunk: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrStale) || !errors.Is(err, ErrNotFound) {
				t.Fatalf("ReadChunk after the edit = %d bytes, %v; want ErrStale", len(got), err)
			}
			sh, err := s.Share(root)
			if err != nil || !sh.Stale {
				t.Fatalf("share after the edit: %+v, %v; want Stale", sh, err)
			}
			// Re-sharing the same root re-indexes it fresh.
			os.RemoveAll(f.path)
			g := writeFile(t, dir, "f", f.data)
			shareFiles(t, s, dir, root, 10, g)
			if sh, _ := s.Share(root); sh.Stale {
				t.Fatal("share still stale after re-sharing")
			}
			if got, err := s.ReadChunk(context.Background(), g.chunks[tt.chunk].CID, nil); err != nil || !bytes.Equal(got, g.chunkData(tt.chunk)) {
				t.Fatalf("ReadChunk after re-sharing: %v", err)
			}
		})
	}
}

func TestReadChunkFallsBackToAnotherCopy(t *testing.T) {
	s, _ := openTest(t, Options{})
	data := content("same", 2*testChunk)
	dir1, dir2 := t.TempDir(), t.TempDir()
	f1 := writeFile(t, dir1, "f", data)
	f2 := writeFile(t, dir2, "f", data)
	r1, r2 := integrity.Block([]byte("1")), integrity.Block([]byte("2"))
	shareFiles(t, s, dir1, r1, 10, f1)
	shareFiles(t, s, dir2, r2, 10, f2)
	// Corrupt the first copy without changing its size or mtime.
	bad := bytes.Clone(data)
	bad[0] ^= 1
	os.WriteFile(f1.path, bad, 0o644)
	setMtime(t, f1)

	got, err := s.ReadChunk(context.Background(), f1.chunks[0].CID, make([]byte, 0, 10))
	if err != nil || !bytes.Equal(got, data[:testChunk]) {
		t.Fatalf("ReadChunk = %v; want the good copy", err)
	}
	if sh, _ := s.Share(r1); !sh.Stale {
		t.Error("share of the corrupted copy is not stale")
	}
	if sh, _ := s.Share(r2); sh.Stale {
		t.Error("share of the good copy is stale")
	}
	// The stale share's locations now come last.
	locs, _ := s.Locations(f1.chunks[0].CID)
	if len(locs) != 2 || locs[0].Share != r2 {
		t.Fatalf("locations = %+v; want the fresh share first", locs)
	}
}

func TestReadChunkBuffer(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", testChunk))
	shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, f)
	buf := make([]byte, 0, 2*testChunk)
	got, err := s.ReadChunk(context.Background(), f.chunks[0].CID, buf)
	if err != nil || &got[0] != &buf[:1][0] {
		t.Fatalf("ReadChunk did not reuse a large enough buffer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ReadChunk(ctx, f.chunks[0].CID, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadChunk with a cancelled context = %v", err)
	}
}

// TestAddFileBatches: AddFile calls are written together, not in one
// committed transaction each (sharing 100,000 small files spent 7.2 s of
// 11.8 s committing them one by one), and the share is still recorded whole
// or not at all: a crash before Commit leaves nothing of it, and Commit
// records every file.
func TestAddFileBatches(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	const files = 2000
	var cids []cid.Cid
	pageWrites := func() int64 { st := s.db.Stats(); return st.TxStats.GetWrite() }
	before := pageWrites()
	for i := range files {
		data := fmt.Appendf(nil, "small file %d", i)
		c := integrity.Chunk(data)
		cids = append(cids, c)
		if err := tx.AddFile(fmt.Sprintf("f%05d.bin", i), int64(len(data)), testTime(), c, []ChunkLoc{{CID: c, Size: uint32(len(data))}}); err != nil {
			t.Fatal(err)
		}
	}

	// A crash before Commit: the next Open finds nothing of the share.
	s2, err := Open(snapshot(t, s), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{bucketShares, bucketFiles, bucketLocs, bucketRev} {
		if n := bucketLen(t, s2, b); n != 0 {
			t.Errorf("after a crash before Commit, bucket %s holds %d keys", b, n)
		}
	}
	s2.Close()

	root := integrity.Block([]byte("the folder"))
	if err := tx.Commit(root, ShareInfo{Name: "folder", Files: files, Dir: true, Chunking: testParams()}); err != nil {
		t.Fatal(err)
	}
	// Each commit writes its meta page at least: one transaction per file
	// writes more than files pages.
	writes := pageWrites() - before
	t.Logf("%d small files indexed with %d page writes", files, writes)
	if writes >= files/4 {
		t.Errorf("indexing %d small files made %d page writes: want fewer than %d, not a transaction per file", files, writes, files/4)
	}
	for i, c := range cids {
		locs, err := s.Locations(c)
		if err != nil || len(locs) != 1 || locs[0].Path != filepath.Join(dir, fmt.Sprintf("f%05d.bin", i)) {
			t.Fatalf("file %d after Commit: locations %+v, %v", i, locs, err)
		}
	}
	if err := checkConsistent(s); err != nil {
		t.Fatal(err)
	}
}
