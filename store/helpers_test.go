package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testChunk is the chunk size of the test files: the smallest the chunker
// allows, so that a small file has several chunks.
const testChunk = chunker.MinSize

// openTest opens a fresh store in a temporary directory. The store takes
// every file system for one that gives stamps (anyFS), so that the tests
// of the stamp logic run wherever the temporary folder lies (tmpfs too);
// a test of what the kernel does sets s.stampFS = stampFS, or skips where
// it does not apply (leaseDir).
func openTest(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "peer.db")
	s, err := reopen(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// reopen opens the database at path as openTest does (NoSync, anyFS).
// The caller closes it.
func reopen(path string, opts Options) (*Store, error) {
	opts.NoSync = true
	s, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	s.stampFS = anyFS
	return s, nil
}

// anyFS stands for a file system that gives stamps (stampFS).
func anyFS(*os.File) bool { return true }

// snapshot copies the database as a crash at this instant would leave it:
// every committed transaction and nothing else. It returns the copy's path.
func snapshot(t *testing.T, s *Store) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "snapshot.db")
	if err := s.db.View(func(tx *bolt.Tx) error { return tx.CopyFile(p, 0o600) }); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return p
}

// content returns n deterministic bytes that differ with seed.
func content(seed string, n int) []byte {
	b := make([]byte, 0, n+32)
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "%s:%d;", seed, i)
	}
	return b[:n]
}

// testFile is a file written for a share, and its chunks.
type testFile struct {
	path   string
	data   []byte
	mtime  time.Time
	root   cid.Cid
	chunks []ChunkLoc
}

// writeFile writes data at dir/name and cuts it into testChunk chunks.
func writeFile(t *testing.T, dir, name string, data []byte) testFile {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := cutFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// cutFile reads the file at p and cuts it into testChunk chunks.
func cutFile(p string) (testFile, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return testFile{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return testFile{}, err
	}
	f := testFile{path: p, data: data, mtime: fi.ModTime(), root: integrity.Block([]byte("file:" + filepath.Base(p)))}
	for off := 0; off < len(data); off += testChunk {
		end := min(off+testChunk, len(data))
		f.chunks = append(f.chunks, ChunkLoc{CID: integrity.Chunk(data[off:end]), Offset: int64(off), Size: uint32(end - off)})
	}
	return f, nil
}

// chunkData returns the bytes of chunk i of f.
func (f testFile) chunkData(i int) []byte {
	c := f.chunks[i]
	return f.data[c.Offset : c.Offset+int64(c.Size)]
}

// shareFiles shares dir holding files under root, adding each file in
// batches of batch chunks.
func shareFiles(t *testing.T, s *Store, dir string, root cid.Cid, batch int, files ...testFile) {
	t.Helper()
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatalf("BeginShare: %v", err)
	}
	defer tx.Abort()
	var size int64
	for _, f := range files {
		size += int64(len(f.data))
		for i := 0; i < len(f.chunks) || i == 0; i += batch {
			end := min(i+batch, len(f.chunks))
			if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, f.chunks[i:end]); err != nil {
				t.Fatalf("AddFile: %v", err)
			}
		}
	}
	info := ShareInfo{Name: filepath.Base(dir), Size: size, Files: int64(len(files)), Dir: true,
		Chunking: testParams()}
	if err := tx.Commit(root, info); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// checkConsistent checks the invariants of the database behind s: bbolt's
// own page checks, every record decodes, no share is pending, the root index
// and the shares agree, every location has its reverse entry and file, and
// every progress page belongs to a download.
func checkConsistent(s *Store) error {
	return s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
		for err := range tx.Check() { // drain: Check's goroutine ends when its channel is read out
			bad("bbolt check: %v", err)
		}
		committed := map[uint64]shareRecord{}
		tx.Bucket(bucketShares).ForEach(func(k, v []byte) error {
			rec, err := decodeShare(v)
			switch {
			case err != nil:
				bad("share %x: %v", k, err)
			case rec.state != stateCommitted:
				bad("share %x is pending after Open", k)
			case len(k) != 8:
				bad("share key %x", k)
			default:
				committed[binary.BigEndian.Uint64(k)] = rec
			}
			return nil
		})
		nroots := 0
		tx.Bucket(bucketRoots).ForEach(func(k, v []byte) error {
			nroots++
			if len(v) != 8 {
				bad("root %x → %x", k, v)
				return nil
			}
			rec, ok := committed[binary.BigEndian.Uint64(v)]
			if !ok || !bytes.Equal(rec.root.Bytes(), k) {
				bad("root %x names share %x, which is not it", k, v)
			}
			return nil
		})
		if nroots != len(committed) {
			bad("%d roots for %d shares", nroots, len(committed))
		}
		tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
			if _, err := decodeFile(v); err != nil || len(k) != 16 {
				bad("file %x: %v", k, err)
			} else if _, ok := committed[binary.BigEndian.Uint64(k)]; !ok {
				bad("file %x of no share", k)
			}
			return nil
		})
		tx.Bucket(bucketStamps).ForEach(func(k, v []byte) error {
			if _, err := decodeStamp(v); err != nil || len(k) != 16 {
				bad("stamp %x: %v", k, err)
			} else if tx.Bucket(bucketFiles).Get(k) == nil {
				bad("stamp %x of no file", k)
			}
			return nil
		})
		nlocs := 0
		tx.Bucket(bucketLocs).ForEach(func(k, v []byte) error {
			nlocs++
			c, id, fileNo, off, err := parseLocKey(k)
			if err == nil {
				_, err = decodeLoc(v)
			}
			if err != nil {
				bad("location %x: %v", k, err)
				return nil
			}
			if !bytes.Equal(tx.Bucket(bucketRev).Get(revKey(id, fileNo, off)), c) {
				bad("location %x has no reverse entry", k)
			}
			if tx.Bucket(bucketFiles).Get(fileKey(id, fileNo)) == nil {
				bad("location %x has no file", k)
			}
			return nil
		})
		if n := tx.Bucket(bucketRev).Stats().KeyN; n != nlocs {
			bad("%d reverse entries for %d locations", n, nlocs)
		}
		return errors.Join(errs...)
	})
}

// bucketLen returns the number of keys in a bucket.
func bucketLen(t *testing.T, s *Store, name []byte) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(name).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// testParams are the parameters the test files are cut with.
func testParams() chunker.Params { return chunker.FixedParams(testChunk) }

// testTime is a fixed modification time.
func testTime() time.Time { return time.Unix(1_700_000_000, 0) }

// writeFileB writes data at dir/f and cuts it into chunks of size bytes.
func writeFileB(b *testing.B, dir string, data []byte, size int) testFile {
	b.Helper()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	f := testFile{path: p, data: data, mtime: fi.ModTime(), root: integrity.Block([]byte("file"))}
	for off := 0; off < len(data); off += size {
		end := min(off+size, len(data))
		f.chunks = append(f.chunks, ChunkLoc{CID: integrity.Chunk(data[off:end]), Offset: int64(off), Size: uint32(end - off)})
	}
	return f
}

// stampEdit is a change to a shared file that keeps its size and
// modification time, which only its stamp (proof.go) can see.
type stampEdit struct {
	name string
	edit func(t *testing.T, f testFile)
}

// stampEdits flip one byte of f's chunk 1 in each way a proof or a seal
// must see: the file rewritten, written in place, or renamed over by a
// copy, each with f's size and modification time.
func stampEdits() []stampEdit {
	flipped := func(f testFile) []byte {
		d := bytes.Clone(f.data)
		d[testChunk+5] ^= 0xff
		return d
	}
	return []stampEdit{
		{"rewritten, same size, mtime forced back", func(t *testing.T, f testFile) {
			os.WriteFile(f.path, flipped(f), 0o644)
			setMtime(t, f)
		}},
		{"written in place, mtime forced back", func(t *testing.T, f testFile) {
			w, err := os.OpenFile(f.path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			w.WriteAt([]byte{f.data[testChunk+5] ^ 0xff}, testChunk+5)
			w.Close()
			setMtime(t, f)
		}},
		{"renamed over, same size and mtime", func(t *testing.T, f testFile) {
			tmp := filepath.Join(filepath.Dir(f.path), "tmp")
			os.WriteFile(tmp, flipped(f), 0o644)
			os.Chtimes(tmp, f.mtime, f.mtime)
			if err := os.Rename(tmp, f.path); err != nil {
				t.Fatal(err)
			}
		}},
	}
}
