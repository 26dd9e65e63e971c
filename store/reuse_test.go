package store

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// reuseSetup shares dir with files a and b (4 chunks each) under a clock
// that says the share started at (the files' ctime + after), and returns
// the store, its files and a function that asks a new Reuser for a file.
func reuseSetup(t *testing.T, after time.Duration) (*Store, []testFile, func(f testFile) (cid.Cid, []ChunkLoc, bool)) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("stamps are kept on Linux only")
	}
	var now time.Time
	s, _ := openTest(t, Options{Now: func() time.Time { return now }})
	dir := t.TempDir()
	a := writeFile(t, dir, "a", content("a", 4*testChunk))
	b := writeFile(t, dir, "b", content("b", 4*testChunk-5))
	now = ctimeOf(t, b.path).Add(after)
	shareFiles(t, s, dir, integrity.Block([]byte("r")), 3, a, b)
	find := func(f testFile) (cid.Cid, []ChunkLoc, bool) {
		t.Helper()
		r, err := s.newReuser(dir, testParams())
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		return r.File(f.path, fi.Size(), fi.ModTime())
	}
	return s, []testFile{a, b}, find
}

// TestReuseUnchanged: a file whose stamp is the one recorded at a share
// that started a second after its last change is reused: the root and
// the chunks recorded, in order.
func TestReuseUnchanged(t *testing.T) {
	_, files, find := reuseSetup(t, time.Second)
	for _, f := range files {
		root, chunks, ok := find(f)
		if !ok || root != f.root || !slices.Equal(chunks, f.chunks) {
			t.Fatalf("%s: reuse %v, root %s, %d chunks; want %s and its %d chunks", f.path, ok, root, len(chunks), f.root, len(f.chunks))
		}
	}
}

// TestReuseRefusesRacy: a file last changed within racyAge of the start
// of the share that hashed it may have changed again in the same tick of
// its ctime: it is not reused, however unchanged its stamp.
func TestReuseRefusesRacy(t *testing.T) {
	_, files, find := reuseSetup(t, time.Millisecond)
	if _, _, ok := find(files[1]); ok {
		t.Fatal("a file changed 1 ms before the share started was reused")
	}
	// A stamp of an edited database, or of one written before the hash
	// time was kept (hashed 0), is judged again at reuse against the time
	// its bytes were hashed.
	for _, tc := range []struct {
		name   string
		hashed func(ctime time.Time) int64
	}{
		{"hashed 1 ms after the change", func(ctime time.Time) int64 { return ctime.Add(time.Millisecond).UnixNano() }},
		{"no hash time", func(time.Time) int64 { return 0 }},
	} {
		s, files, find := reuseSetup(t, time.Second)
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketStamps)
			k := fileKey(1, 1) // b, the second file of share 1
			r, err := decodeStamp(b.Get(k))
			if err != nil {
				return err
			}
			r.hashed = tc.hashed(ctimeOf(t, files[1].path))
			return b.Put(k, encodeStamp(r))
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := find(files[1]); ok {
			t.Fatalf("%s: the stamp was trusted", tc.name)
		}
		if _, _, ok := find(files[0]); !ok {
			t.Fatalf("%s: the other file, unedited, was not reused", tc.name)
		}
	}
}

// TestReuseRefusesMtimeSetBack: a file rewritten with the same size and
// its modification time set back has a new ctime: not reused.
func TestReuseRefusesMtimeSetBack(t *testing.T) {
	_, files, find := reuseSetup(t, time.Second)
	f := files[0]
	data := slices.Clone(f.data)
	data[testChunk+7] ^= 0xff
	if err := os.WriteFile(f.path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f.path, f.mtime, f.mtime); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(f.path); fi.Size() != int64(len(f.data)) || !fi.ModTime().Equal(f.mtime) {
		t.Fatalf("size %d, mtime %v; the test needs %d, %v", fi.Size(), fi.ModTime(), len(f.data), f.mtime)
	}
	if _, _, ok := find(f); ok {
		t.Fatal("a file edited with its mtime set back was reused")
	}
}

// TestReuseRefusesReplaced: a file replaced (renamed over) by another of
// the same size and modification time is another inode: not reused.
func TestReuseRefusesReplaced(t *testing.T) {
	_, files, find := reuseSetup(t, time.Second)
	f := files[0]
	tmp := f.path + ".new"
	if err := os.WriteFile(tmp, content("other", len(f.data)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, f.mtime, f.mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := find(f); ok {
		t.Fatal("a file replaced by one of the same size and mtime was reused")
	}
}

// TestReuseRefusesNetworkFS: on a file system whose metadata comes from
// another machine, a stamp proves nothing: not reused, whether the file
// system is seen so at the share or only at the reuse.
func TestReuseRefusesNetworkFS(t *testing.T) {
	s, files, find := reuseSetup(t, time.Second)
	s.stampFS = func(*os.File) bool { return false }
	if _, _, ok := find(files[0]); ok {
		t.Fatal("a file on a network file system was reused")
	}
	if n := bucketLen(t, s, bucketStamps); n != 2 {
		t.Fatalf("%d stamps after a share on a local file system, want 2", n)
	}
	dir := filepath.Dir(files[0].path)
	shareFiles(t, s, dir, integrity.Block([]byte("r2")), 3, files...)
	s.stampFS = anyFS
	if _, _, ok := find(files[0]); ok {
		t.Fatal("a file shared from a network file system was reused")
	}
}

// TestReuseRefusesPartialRecords: a record whose stamp, chunk or chunk
// size is missing is not reused (the file is hashed again).
func TestReuseRefusesPartialRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(tx *bolt.Tx, f testFile, no uint64) error
	}{
		{"stamp", func(tx *bolt.Tx, _ testFile, no uint64) error {
			return tx.Bucket(bucketStamps).Delete(fileKey(1, no))
		}},
		{"middle chunk", func(tx *bolt.Tx, f testFile, no uint64) error {
			return tx.Bucket(bucketRev).Delete(revKey(1, no, f.chunks[1].Offset))
		}},
		{"last chunk", func(tx *bolt.Tx, f testFile, no uint64) error {
			return tx.Bucket(bucketRev).Delete(revKey(1, no, f.chunks[len(f.chunks)-1].Offset))
		}},
		{"chunk size", func(tx *bolt.Tx, f testFile, no uint64) error {
			c := f.chunks[2]
			return tx.Bucket(bucketLocs).Delete(locKey(c.CID.Bytes(), 1, no, c.Offset))
		}},
		{"file record", func(tx *bolt.Tx, _ testFile, no uint64) error {
			return tx.Bucket(bucketFiles).Delete(fileKey(1, no))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, files, find := reuseSetup(t, time.Second)
			if _, _, ok := find(files[1]); !ok {
				t.Fatal("not reused before the record was cut")
			}
			err := s.db.Update(func(tx *bolt.Tx) error { return tc.drop(tx, files[1], 1) })
			if err != nil {
				t.Fatal(err)
			}
			if _, _, ok := find(files[1]); ok {
				t.Fatalf("reused with its %s missing", tc.name)
			}
			if _, _, ok := find(files[0]); !ok {
				t.Fatal("the other file, whole, not reused")
			}
		})
	}
}

// TestReuseOtherChunking: a share cut another way is no source of chunks.
func TestReuseOtherChunking(t *testing.T) {
	s, files, _ := reuseSetup(t, time.Second)
	r, err := s.newReuser(filepath.Dir(files[0].path), chunker.CDCParams(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.File(files[0].path, int64(len(files[0].data)), files[0].mtime); ok {
		t.Fatal("chunks of a share cut with other parameters reused")
	}
}

// TestReuseStampIsNoSeal: a stamp recorded for reuse, of a file changed
// less than proofAge before its share, does not let ReadChunk serve the
// file unhashed (a seal needs proofAge, for writes through a mapping).
func TestReuseStampIsNoSeal(t *testing.T) {
	s, files, _ := reuseSetup(t, time.Second)
	if n := bucketLen(t, s, bucketStamps); n != 2 {
		t.Fatalf("%d stamps, want 2", n)
	}
	if _, err := s.ReadChunk(context.Background(), files[0].chunks[0].CID, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.hashed.Load(); got != 1 {
		t.Fatalf("ReadChunk hashed %d chunks, want 1: a young stamp served as a seal", got)
	}
}

// TestReuseKeepsHashTime: a file a later share reuses keeps the time its
// bytes were hashed. Its stamp, 1 s old at the share that hashed it, is no
// seal there (proofAge); nor is it at the share that reused it, however
// late that one started: ReadChunk hashes the chunk it serves.
func TestReuseKeepsHashTime(t *testing.T) {
	s, files, _ := reuseSetup(t, time.Second)
	f := files[0]
	dir := filepath.Dir(f.path)
	s.opts.Now = func() time.Time { return ctimeOf(t, f.path).Add(2 * proofAge) }
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	r, err := tx.Reuser(testParams())
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(f.data))
	root, chunks, ok := r.File(f.path, size, f.mtime)
	if !ok {
		t.Fatal("an unchanged file was not reused")
	}
	if err := tx.AddFile(f.path, size, f.mtime, root, chunks); err != nil {
		t.Fatal(err)
	}
	// The same root: the share that hashed the file is replaced, and
	// ReadChunk finds the chunk at the share that reused it only.
	if err := tx.Commit(integrity.Block([]byte("r")), ShareInfo{Name: "r", Size: size, Files: 1, Dir: true, Chunking: testParams()}); err != nil {
		t.Fatal(err)
	}
	if locs, err := s.Locations(f.chunks[0].CID); err != nil || len(locs) != 1 {
		t.Fatalf("Locations: %v, %v; want the reusing share's only", locs, err)
	}
	if _, err := s.ReadChunk(context.Background(), f.chunks[0].CID, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.hashed.Load(); got != 1 {
		t.Fatalf("ReadChunk hashed %d chunks, want 1: a stamp hashed 1 s after its change served as a seal", got)
	}
}

// reusedInTx shares a file (hashed 2 minutes after its last change: a
// seal) under root "r", begins a share of its folder, and has the share's
// Reuser give the file's chunks. The transaction is aborted when t ends,
// unless committed.
func reusedInTx(t *testing.T) (s *Store, f testFile, tx *ShareTx, root cid.Cid, chunks []ChunkLoc) {
	t.Helper()
	s, files, _ := reuseSetup(t, time.Second)
	f = files[0]
	dir := filepath.Dir(f.path)
	s.opts.Now = func() time.Time { return ctimeOf(t, f.path).Add(2 * proofAge) }
	shareFiles(t, s, dir, integrity.Block([]byte("r")), 4, f)
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Abort() })
	r, err := tx.Reuser(testParams())
	if err != nil {
		t.Fatal(err)
	}
	root, chunks, ok := r.File(f.path, int64(len(f.data)), f.mtime)
	if !ok {
		t.Fatal("an unchanged file was not reused")
	}
	return s, f, tx, root, chunks
}

// TestReuseOpensOnce: a file whose chunks Reuser.File gave is opened by
// File alone (to see its stamp), not again by AddFile to seal it, in
// however many batches: AddFile records the stamp File found, and the
// share that reused it serves it sealed as the one that hashed it did.
func TestReuseOpensOnce(t *testing.T) {
	s, f, tx, root, chunks := reusedInTx(t)
	size := int64(len(f.data))
	before := s.sealOpens.Load()
	for i := 0; i < len(chunks); i += 2 { // two batches
		if err := tx.AddFile(f.path, size, f.mtime, root, chunks[i:i+2]); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.sealOpens.Load() - before; got != 0 {
		t.Errorf("AddFile opened a reused file %d times to seal it, want 0: File saw its stamp already", got)
	}
	if err := tx.Commit(integrity.Block([]byte("r2")), ShareInfo{Name: "r2", Size: size, Files: 1, Dir: true, Chunking: testParams()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Unshare(integrity.Block([]byte("r"))); err != nil {
		t.Fatal(err)
	}
	hashed := s.hashed.Load()
	for _, c := range f.chunks {
		if _, err := s.ReadChunk(context.Background(), c.CID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.hashed.Load() - hashed; got != 0 {
		t.Errorf("ReadChunk hashed %d chunks of a sealed file reused, want 0", got)
	}
}

// TestReuseGivenOtherStampNotSealed: a file whose chunks Reuser gave, then
// added with another modification time than File saw (the file was
// rewritten between the two), gets no seal: its chunks are the old bytes,
// so ReadChunk must hash what the file holds now and refuse it, not serve
// the new bytes under the old CIDs.
func TestReuseGivenOtherStampNotSealed(t *testing.T) {
	s, f, tx, root, chunks := reusedInTx(t)
	size := int64(len(f.data))
	// Rewritten, same size, modified a second later; the share's clock
	// is well past its change, so nothing racy stops a seal.
	changed := content("changed", len(f.data))
	if err := os.WriteFile(f.path, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	later := f.mtime.Add(time.Second)
	if err := os.Chtimes(f.path, later, later); err != nil {
		t.Fatal(err)
	}
	s.opts.Now = func() time.Time { return ctimeOf(t, f.path).Add(2 * proofAge) }
	if err := tx.AddFile(f.path, size, later, root, chunks); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(integrity.Block([]byte("r2")), ShareInfo{Name: "r2", Size: size, Files: 1, Dir: true, Chunking: testParams()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Unshare(integrity.Block([]byte("r"))); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.chunks {
		b, err := s.ReadChunk(context.Background(), c.CID, nil)
		if err == nil && !integrity.Chunk(b).Equals(c.CID) {
			t.Fatalf("ReadChunk served %d changed bytes as chunk %s: the rewritten file was sealed", len(b), c.CID)
		}
	}
}
