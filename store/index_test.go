package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// readAll reads every chunk of f through read and checks the bytes.
func readAll(t *testing.T, f testFile, read func(context.Context, cid.Cid, []byte) ([]byte, error)) {
	t.Helper()
	for i := range f.chunks {
		got, err := read(context.Background(), f.chunks[i].CID, nil)
		if err != nil || !bytes.Equal(got, f.chunkData(i)) {
			t.Fatalf("chunk %d: %d bytes, %v", i, len(got), err)
		}
	}
}

// TestSealServesWithoutHash: a file last changed long before it was shared
// is sealed at share time, and ReadChunk serves its chunks without hashing
// them from the first read on, after a restart too; a file shared just
// after it was written is not sealed and is hashed as before.
func TestSealServesWithoutHash(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("seals are made on Linux only")
	}
	for _, tc := range []struct {
		name   string
		now    func() time.Time
		sealed bool
	}{{"old file", later, true}, {"just written", time.Now, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openTest(t, Options{Now: tc.now})
			dir := t.TempDir()
			f := writeFile(t, dir, "f", content("f", 3*testChunk+7))
			shareFiles(t, s, dir, integrity.Block([]byte("r")), 2, f)
			if err := checkConsistent(s); err != nil {
				t.Fatal(err)
			}
			if n := bucketLen(t, s, bucketStamps); n != b2i(tc.sealed) {
				t.Fatalf("%d seals, want %d", n, b2i(tc.sealed))
			}
			readAll(t, f, s.ReadChunk)
			want := int64(len(f.chunks))
			if tc.sealed {
				want = 0
			}
			if got := s.hashed.Load(); got != want {
				t.Fatalf("ReadChunk hashed %d chunks, want %d", got, want)
			}
			// Persisted: a restarted store trusts the seal too.
			s.Close()
			s2, err := reopen(path, Options{Now: tc.now})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			readAll(t, f, s2.ReadChunk)
			if got := s2.hashed.Load(); got != want {
				t.Fatalf("after a restart, ReadChunk hashed %d chunks, want %d", got, want)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSealSeesChanges: every change to a sealed file that the in-memory
// proofs must see (bytes rewritten with the size and mtime set back, a
// write in place, a file renamed over it, a truncation) makes ReadChunk
// hash again and refuse the changed chunk: a seal never serves bytes that
// are not the chunk's.
func TestSealSeesChanges(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("seals are made on Linux only")
	}
	tests := append(stampEdits(), stampEdit{"truncated", func(t *testing.T, f testFile) {
		if err := os.Truncate(f.path, testChunk+1); err != nil {
			t.Fatal(err)
		}
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, Options{Now: later})
			dir := t.TempDir()
			f := writeFile(t, dir, "f", content("f", 3*testChunk))
			shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, f)
			if bucketLen(t, s, bucketStamps) != 1 {
				t.Fatal("the file was not sealed")
			}
			tt.edit(t, f)
			got, err := s.ReadChunk(context.Background(), f.chunks[1].CID, nil)
			if !errors.Is(err, ErrStale) {
				t.Fatalf("ReadChunk of the changed chunk = %d bytes, %v; want ErrStale", len(got), err)
			}
		})
	}
}

// TestSealBatches: a file whose stamp moves between two AddFile batches
// (a chmod here: only its ctime changes) loses its seal; one that does
// not keeps it.
func TestSealBatches(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("seals are made on Linux only")
	}
	for _, touch := range []bool{false, true} {
		s, _ := openTest(t, Options{Now: later})
		dir := t.TempDir()
		f := writeFile(t, dir, "f", content("f", 4*testChunk))
		tx, err := s.BeginShare(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, f.chunks[:2]); err != nil {
			t.Fatal(err)
		}
		if touch {
			if err := os.Chmod(f.path, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, f.chunks[2:]); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(integrity.Block([]byte("r")), ShareInfo{Name: "d", Size: int64(len(f.data)), Files: 1, Dir: true, Chunking: testParams()}); err != nil {
			t.Fatal(err)
		}
		if n := bucketLen(t, s, bucketStamps); n != b2i(!touch) {
			t.Fatalf("touched %v: %d seals, want %d", touch, n, b2i(!touch))
		}
		readAll(t, f, s.ReadChunk)
		if touch && s.hashed.Load() != int64(len(f.chunks)) {
			t.Fatalf("touched between batches: %d chunks hashed, want %d", s.hashed.Load(), len(f.chunks))
		}
	}
}

// TestSealUnshare: Unshare and a replacing share remove the seals with the
// files; Open adds the stamps bucket to a database that lacks it.
func TestSealUnshare(t *testing.T) {
	s, path := openTest(t, Options{Now: later})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", 2*testChunk))
	root := integrity.Block([]byte("r"))
	shareFiles(t, s, dir, root, 10, f)
	shareFiles(t, s, dir, root, 10, f) // replaces it
	if err := checkConsistent(s); err != nil {
		t.Fatal(err)
	}
	if err := s.Unshare(root); err != nil {
		t.Fatal(err)
	}
	if n := bucketLen(t, s, bucketStamps); n != 0 {
		t.Fatalf("%d seals after Unshare", n)
	}
	// A database written before the stamps bucket existed.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketStamps) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open of a database without stamps: %v", err)
	}
	defer s2.Close()
	if err := checkConsistent(s2); err != nil {
		t.Fatal(err)
	}
}

// TestIndexSize measures what the index costs per chunk on disk: 4096
// chunks of 1 MiB in 16 files, the database's pages in use before and
// after. IndexBytesPerChunk must stay above it.
func TestIndexSize(t *testing.T) {
	s, _ := openTest(t, Options{})
	used := func() int64 {
		var n int64
		s.db.View(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketLocs, bucketRev, bucketFiles, bucketStamps} {
				bs := tx.Bucket(b).Stats()
				n += int64(bs.BranchAlloc + bs.LeafAlloc)
			}
			return nil
		})
		return n
	}
	before := used()
	tx, err := s.BeginShare(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const files, per = 16, 256
	var x [8]byte
	for fi := range files {
		var locs []ChunkLoc
		for i := range per {
			x[0], x[1] = byte(fi), byte(i)
			locs = append(locs, ChunkLoc{CID: integrity.Chunk(append(x[:2:2], byte(i>>8))), Offset: int64(i) << 20, Size: 1 << 20})
		}
		name := string(rune('a'+fi)) + ".bin"
		if err := tx.AddFile(name, per<<20, testTime(), integrity.Block([]byte(name)), locs); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(integrity.Block([]byte("root")), ShareInfo{Name: "d", Size: files * per << 20, Files: files, Dir: true, Chunking: chunker.DefaultParams()}); err != nil {
		t.Fatal(err)
	}
	perChunk := float64(used()-before) / (files * per)
	t.Logf("index: %.0f bytes per chunk (%d chunks); IndexBytesPerChunk = %d", perChunk, files*per, IndexBytesPerChunk)
	if perChunk > IndexBytesPerChunk {
		t.Fatalf("index costs %.0f bytes per chunk, more than IndexBytesPerChunk (%d)", perChunk, IndexBytesPerChunk)
	}
}

// FuzzDecodeStamp: decodeStamp refuses what is not a stamp record with
// ErrCorrupt, never panics, and round-trips what it accepts; so does
// decodeStampV1, the migration's decoder of schema 1 records, whose
// records encode to ones decodeStamp reads back the same.
func FuzzDecodeStamp(f *testing.F) {
	st := stamp{dev: 2049, ino: 1 << 40, size: 1 << 30, mtime: 1_700_000_000_000_000_000, ctime: -5}
	f.Add(encodeStamp(stampRecord{st: st, hashed: 1_700_000_060_000_000_000}))
	f.Add(encodeStamp(stampRecord{st: st, hashed: 1_700_000_000_100_000_000, noWriter: true}))
	f.Add(encodeStamp(stampRecord{}))
	f.Add(append(appendStampV1(stampRecord{st: st}), 0x80)) // unknown flags
	f.Add(appendStampV1(stampRecord{st: st, hashed: 1}))    // schema 1
	f.Add([]byte{recordVersion, 0xff})
	f.Add([]byte{recordVersion, 1, 2, 3, 4, 5}) // schema 1, written before the hash time was kept
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(err error) bool {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return err == nil
		}
		if r, err := decodeStamp(data); check(err) {
			if r2, err := decodeStamp(encodeStamp(r)); err != nil || r != r2 {
				t.Fatalf("stamp %+v round-trips to %+v, %v", r, r2, err)
			}
		}
		if r, err := decodeStampV1(data); check(err) {
			if r.noWriter {
				t.Fatalf("schema 1 record %x decoded with noWriter", data)
			}
			if r2, err := decodeStamp(encodeStamp(r)); err != nil || r != r2 {
				t.Fatalf("migrated stamp %+v decodes as %+v, %v", r, r2, err)
			}
		}
	})
}

// dropSeals removes every seal, for tests of the in-memory proofs.
func dropSeals(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketStamps); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketStamps)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHasChunk: HasChunk finds a chunk of a committed share, however many
// files hold it, and not one of no share, an unshared one, or one whose
// share is not committed yet; a CID that is not a chunk's is an error.
func TestHasChunk(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	data := content("same", 2*testChunk)
	a := writeFile(t, dir, "a", data)
	b := writeFile(t, dir, "b", data) // the same chunks in two files
	root := integrity.Block([]byte("r"))
	has := func(c cid.Cid) bool {
		t.Helper()
		ok, err := s.HasChunk(c)
		if err != nil {
			t.Fatalf("HasChunk(%s): %v", c, err)
		}
		return ok
	}
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.AddFile(a.path, int64(len(a.data)), a.mtime, a.root, a.chunks); err != nil {
		t.Fatal(err)
	}
	if has(a.chunks[0].CID) {
		t.Fatal("HasChunk found a chunk of a share that is not committed")
	}
	tx.Abort()
	shareFiles(t, s, dir, root, 10, a, b)
	for _, c := range a.chunks {
		if !has(c.CID) {
			t.Errorf("HasChunk missed chunk %s of a share", c.CID)
		}
	}
	if has(integrity.Block([]byte("in no share"))) {
		t.Error("HasChunk found a chunk no share holds")
	}
	if _, err := s.HasChunk(cid.Undef); err == nil {
		t.Error("HasChunk of cid.Undef: no error")
	}
	if err := s.Unshare(root); err != nil {
		t.Fatal(err)
	}
	if has(a.chunks[0].CID) {
		t.Error("HasChunk found a chunk of an unshared share")
	}
}

// TestSealOpens: AddFile opens a file to seal it only when a seal may come
// of it: a file modified within racyAge of the share's start (a download
// just written, adopted as a share) is never opened, in however many
// batches; an old one is opened once per batch, to see its stamp did not
// move between them.
func TestSealOpens(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("seals are made on Linux only")
	}
	for _, tc := range []struct {
		name  string
		after time.Duration // from the file's mtime to the share's start
		opens int64
	}{{"just written", time.Millisecond, 0}, {"old file", 2 * time.Minute, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			var now time.Time
			s, _ := openTest(t, Options{Now: func() time.Time { return now }})
			dir := t.TempDir()
			f := writeFile(t, dir, "f", content("f", 4*testChunk))
			now = f.mtime.Add(tc.after)
			shareFiles(t, s, dir, integrity.Block([]byte("r")), 1, f)
			if got := s.sealOpens.Load(); got != tc.opens {
				t.Errorf("AddFile opened the file %d times in 4 batches, want %d", got, tc.opens)
			}
			if n := bucketLen(t, s, bucketStamps); n != b2i(tc.opens > 0) {
				t.Errorf("%d seals, want %d", n, b2i(tc.opens > 0))
			}
		})
	}
}
