package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/peer-project/peer/integrity"
)

// leaseDir returns a temporary folder on a file system where a read lease
// proves a file has no writer and a mapping's write moves the stamp
// (stampFS), or skips the test: it tests the kernel.
func leaseDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !stampFS(f) {
		t.Skipf("%s lies on a file system that gives no stamps (tmpfs, overlayfs...: stampFS); set TMPDIR to a folder on ext4, xfs, btrfs... to run this test", dir)
	}
	return dir
}

// shareRead shares dir holding files under root as the importer does:
// each file opened read-only, Opened told before a byte is read, its bytes
// read (and checked against f.data), then added.
func shareRead(t *testing.T, s *Store, dir string, root cid.Cid, files ...testFile) {
	t.Helper()
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatalf("BeginShare: %v", err)
	}
	defer tx.Abort()
	var size int64
	for _, f := range files {
		r, err := os.Open(f.path)
		if err != nil {
			t.Fatal(err)
		}
		tx.Opened(f.path, r)
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, f.data) {
			t.Fatalf("read %s: %d bytes, %v; not the file's", f.path, len(got), err)
		}
		size += int64(len(f.data))
		if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, f.chunks); err != nil {
			t.Fatalf("AddFile: %v", err)
		}
	}
	info := ShareInfo{Name: filepath.Base(dir), Size: size, Files: int64(len(files)), Dir: true, Chunking: testParams()}
	if err := tx.Commit(root, info); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// stampRecords returns every stamp record of s.
func stampRecords(t *testing.T, s *Store) []stampRecord {
	t.Helper()
	var out []stampRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStamps).ForEach(func(_, v []byte) error {
			r, err := decodeStamp(v)
			out = append(out, r)
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSealNoWriter: a file written and closed just before it is shared
// (a second: no proofAge) is sealed at once when nothing could write it as
// the import began to read it, and ReadChunk serves it without hashing,
// after a restart too. It is not when the import did not say it opened
// it, when the test holds it open for writing, when its file system is
// not one a lease proves anything on, or when its last change is racy.
func TestSealNoWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		now    func(f testFile) func() time.Time
		share  func(t *testing.T, s *Store, dir string, f testFile)
		sealed bool
	}{
		{"written just before", func(testFile) func() time.Time { return soon }, nil, true},
		{"not told it was opened", func(testFile) func() time.Time { return soon },
			func(t *testing.T, s *Store, dir string, f testFile) {
				shareFiles(t, s, dir, integrity.Block([]byte("r")), 100, f)
			},
			false},
		{"held open for writing", func(testFile) func() time.Time { return soon },
			func(t *testing.T, s *Store, dir string, f testFile) {
				w, err := os.OpenFile(f.path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				shareRead(t, s, dir, integrity.Block([]byte("r")), f)
			}, false},
		{"file system without proof", func(testFile) func() time.Time { return soon },
			func(t *testing.T, s *Store, dir string, f testFile) {
				s.stampFS = func(*os.File) bool { return false } // stands for overlayfs, tmpfs
				shareRead(t, s, dir, integrity.Block([]byte("r")), f)
			}, false},
		{"racy", func(f testFile) func() time.Time {
			at := ctimeOf(t, f.path).Add(racyAge / 2)
			return func() time.Time { return at }
		}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var now func() time.Time
			s, path := openTest(t, Options{Now: func() time.Time { return now() }})
			dir := leaseDir(t)
			f := writeFile(t, dir, "f", content("f", 3*testChunk+7))
			now = tc.now(f)
			if tc.share != nil {
				tc.share(t, s, dir, f)
			} else {
				shareRead(t, s, dir, integrity.Block([]byte("r")), f)
			}
			if err := checkConsistent(s); err != nil {
				t.Fatal(err)
			}
			recs := stampRecords(t, s)
			if sealed := len(recs) == 1 && recs[0].sealed(); sealed != tc.sealed {
				t.Fatalf("stamp records %+v: sealed %v, want %v", recs, sealed, tc.sealed)
			}
			want := int64(len(f.chunks))
			if tc.sealed {
				want = 0
			}
			readAll(t, f, s.ReadChunk)
			if got := s.hashed.Load(); got != want {
				t.Fatalf("ReadChunk hashed %d chunks, want %d", got, want)
			}
			s.Close()
			s2, err := reopen(path, Options{Now: now})
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

// mapShared maps the file at p shared and writable, and closes its
// descriptor: the mapping alone can write it from then on.
func mapShared(t *testing.T, p string, size int, flags int) []byte {
	t.Helper()
	w, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m, err := unix.Mmap(int(w.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|flags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	return m
}

// statOf returns the stamp of the file at p.
func statOf(t *testing.T, p string) stamp {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := stampOf(fi)
	if !ok {
		t.Fatalf("%s has no stamp", p)
	}
	return st
}

// TestSealMappedWriter is the hostile case: a shared writable mapping
// made before the share writes a page (its first write stamps the time),
// its descriptor closed; the file is shared; the mapping then writes the
// page, dirty already, again, which stamps no time. The share must not
// seal the file, and ReadChunk must hash the page's chunk, find it
// changed, and serve nothing of it.
func TestSealMappedWriter(t *testing.T) {
	s, _ := openTest(t, Options{Now: soon})
	dir := leaseDir(t)
	f := writeFile(t, dir, "f", content("f", 3*testChunk))
	m := mapShared(t, f.path, len(f.data), 0)
	const at = testChunk + 5 // in chunk 1
	m[at] ^= 0xff
	f, err := cutFile(f.path) // the bytes shared: with the first write
	if err != nil {
		t.Fatal(err)
	}
	shareRead(t, s, dir, integrity.Block([]byte("r")), f)
	before := statOf(t, f.path)
	m[at] ^= 0xff // the dirty page again: no time stamped
	if after := statOf(t, f.path); after != before {
		t.Skipf("the write through the mapping moved the stamp (%+v → %+v): the page was written back between the writes, nothing to test", before, after)
	}
	for _, r := range stampRecords(t, s) {
		if r.sealed() {
			t.Fatalf("a file mapped for writing was sealed: %+v", r)
		}
	}
	got, err := s.ReadChunk(context.Background(), f.chunks[1].CID, nil)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("ReadChunk of the chunk the mapping changed = %d bytes, %v; want ErrStale", len(got), err)
	}
	if s.hashed.Load() == 0 {
		t.Fatal("ReadChunk did not hash the chunk")
	}
}

// TestSealMappedAfter: a shared writable mapping made after the share, by
// a plain mmap or with MAP_POPULATE (which maps the pages before any
// write), writes the sealed file: its first write stamps the time, so the
// seal no longer holds and ReadChunk refuses the changed chunk.
func TestSealMappedAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags int
	}{{"mmap", 0}, {"MAP_POPULATE", unix.MAP_POPULATE}} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t, Options{Now: soon})
			dir := leaseDir(t)
			f := writeFile(t, dir, "f", content("f", 3*testChunk))
			shareRead(t, s, dir, integrity.Block([]byte("r")), f)
			if recs := stampRecords(t, s); len(recs) != 1 || !recs[0].sealed() {
				t.Fatalf("not sealed: %+v", recs)
			}
			readAll(t, f, s.ReadChunk)
			if n := s.hashed.Load(); n != 0 {
				t.Fatalf("a sealed file: %d chunks hashed", n)
			}
			m := mapShared(t, f.path, len(f.data), tc.flags)
			_ = m[testChunk] // a read first: the write after it must still stamp the time
			st := statOf(t, f.path)
			m[testChunk+5] ^= 0xff
			if statOf(t, f.path) == st {
				t.Skip("the write stamped the time of the file's last change (one timestamp tick): nothing to test")
			}
			got, err := s.ReadChunk(context.Background(), f.chunks[1].CID, nil)
			if !errors.Is(err, ErrStale) {
				t.Fatalf("ReadChunk of the changed chunk = %d bytes, %v; want ErrStale", len(got), err)
			}
		})
	}
}

// TestStampFSRefusesTmpfs: tmpfs gives no stamps: a mapping made there
// with MAP_POPULATE writes without ever stamping the time (seen on Linux
// 6.18), which the test logs.
func TestStampFSRefusesTmpfs(t *testing.T) {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &sfs); err != nil || uint32(sfs.Type) != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	f, err := os.CreateTemp("/dev/shm", "peer-lease-test-")
	if err != nil {
		t.Skip(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 3*4096)); err != nil {
		t.Fatal(err)
	}
	if stampFS(f) || KeepsStamps(f.Name()) || KeepsStamps("/dev/shm") {
		t.Fatal("stampFS or KeepsStamps accepts tmpfs")
	}
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if KeepsStamps(dir) != stampFS(d) {
		t.Fatalf("KeepsStamps(%s) = %v, stampFS %v", dir, KeepsStamps(dir), stampFS(d))
	}
	st := statOf(t, f.Name())
	m := mapShared(t, f.Name(), 3*4096, unix.MAP_POPULATE)
	m[4096+1] = 1
	t.Logf("tmpfs: a write through a mapping made with MAP_POPULATE moved the stamp: %v", statOf(t, f.Name()) != st)
}

// TestReadChunkProofNoWriter: ReadChunk proves a chunk of a file written
// just before (a second: no proofAge) at once when nothing could write the
// file before it read it, and serves it again without hashing; it makes
// no proof while the test holds the file open for writing.
func TestReadChunkProofNoWriter(t *testing.T) {
	for _, writer := range []bool{false, true} {
		s, _ := openTest(t, Options{Now: soon})
		dir := leaseDir(t)
		f := writeFile(t, dir, "f", content("f", 3*testChunk))
		shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, f) // no Opened: no seal
		if writer {
			w, err := os.OpenFile(f.path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
		}
		for round := range 2 {
			readAll(t, f, s.ReadChunk)
			for i := range f.chunks {
				if hasProof(s, f, i) == writer {
					t.Fatalf("writer %v, round %d: chunk %d proved %v", writer, round, i, !writer)
				}
			}
		}
		want := int64(len(f.chunks))
		if writer {
			want *= 2
		}
		if got := s.hashed.Load(); got != want {
			t.Fatalf("writer %v: %d chunks hashed in two rounds, want %d", writer, got, want)
		}
	}
}

// TestReuseKeepsNoWriter: a file a later share reuses keeps its record's
// word that nothing could write it when it was hashed, as it keeps the
// time: it is sealed in the reusing share too, and served unhashed.
func TestReuseKeepsNoWriter(t *testing.T) {
	s, _ := openTest(t, Options{Now: soon})
	dir := leaseDir(t)
	f := writeFile(t, dir, "f", content("f", 3*testChunk))
	shareRead(t, s, dir, integrity.Block([]byte("r")), f)
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
	if err := tx.Commit(integrity.Block([]byte("r2")), ShareInfo{Name: "r2", Size: size, Files: 1, Dir: true, Chunking: testParams()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Unshare(integrity.Block([]byte("r"))); err != nil { // the reusing share alone
		t.Fatal(err)
	}
	recs := stampRecords(t, s)
	if len(recs) != 1 || !recs[0].noWriter || !recs[0].sealed() {
		t.Fatalf("the reused file's record: %+v; want it sealed, no writer", recs)
	}
	readAll(t, f, s.ReadChunk)
	if n := s.hashed.Load(); n != 0 {
		t.Fatalf("the reused file: %d chunks hashed, want 0", n)
	}
}

// shmDir returns a fresh folder on the tmpfs at /dev/shm, or skips the
// test.
func shmDir(t *testing.T) string {
	t.Helper()
	var sfs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &sfs); err != nil || uint32(sfs.Type) != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "peer-store-test-")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestTmpfsNoStamps: on tmpfs a write through a shared mapping need not
// move the file's stamp (shmem has no page_mkwrite, and never writes a
// page back), however old the file is. A file shared there under a clock
// that makes it proofAge old (the age rule's seal, were it sound there),
// then changed through a mapping that leaves its stamp as it was, must
// not be served with the changed bytes (ReadChunk hashes, finds them
// wrong: ErrStale, a hash mismatch), nor be reused by a later share (its
// chunks are not the file's).
func TestTmpfsNoStamps(t *testing.T) {
	s, _ := openTest(t, Options{Now: later})
	s.stampFS = stampFS // the kernel's word, not the test's
	dir := shmDir(t)
	f := writeFile(t, dir, "f", content("f", 3*testChunk))
	shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, f)
	readAll(t, f, s.ReadChunk) // a proof of each chunk, were it sound
	m := mapShared(t, f.path, len(f.data), unix.MAP_POPULATE)
	before := statOf(t, f.path)
	m[testChunk+5] ^= 0xff // in chunk 1
	if after := statOf(t, f.path); after != before {
		t.Skipf("on this kernel a write through a mapping on tmpfs moved the stamp (%+v → %+v): nothing to test", before, after)
	}
	got, err := s.ReadChunk(context.Background(), f.chunks[1].CID, nil)
	var mm *integrity.MismatchError
	if !errors.Is(err, ErrStale) || !errors.As(err, &mm) {
		t.Fatalf("ReadChunk of the chunk the mapping changed = %d bytes (the old ones: %v), %v; want ErrStale, a hash mismatch",
			len(got), bytes.Equal(got, f.chunkData(1)), err)
	}
	r, err := s.newReuser(dir, testParams())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.File(f.path, int64(len(f.data)), f.mtime); ok {
		t.Fatal("a share again reused the chunks of a file a mapping changed")
	}
}
