package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/peer-project/peer/integrity"
)

// later is a store clock two minutes ahead: files the test just wrote are
// old enough (proofAge) for ReadChunk to prove their chunks.
func later() time.Time { return time.Now().Add(2 * time.Minute) }

// soon is a store clock a second ahead: a file the test just wrote was
// last changed a second before its share began, well past racyAge and far
// short of proofAge, as a file written just before it is shared.
func soon() time.Time { return time.Now().Add(time.Second) }

func hasProof(s *Store, f testFile, i int) bool {
	k := proofKey{path: f.path, offset: f.chunks[i].Offset, size: f.chunks[i].Size}
	fi, err := os.Stat(f.path)
	if err != nil {
		return false
	}
	st, ok := stampOf(fi)
	return ok && s.proofs.holds(k, f.chunks[i].CID, st)
}

// TestReadChunkProofs: a chunk that hashed right is served again without
// hashing while its file's stamp is the same; a file changed within
// racyAge of the read gets no proof, though nothing can write it
// (TestReadChunkProofNoWriter has the rest).
func TestReadChunkProofs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("proofs are made on Linux only")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		old   bool // else racy
		proof bool
	}{{"old file", true, true}, {"just written", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			now := later
			s, _ := openTest(t, Options{Now: func() time.Time { return now() }})
			dir := t.TempDir()
			f := writeFile(t, dir, "f", content("f", 3*testChunk))
			if !tc.old {
				at := ctimeOf(t, f.path).Add(racyAge / 2)
				now = func() time.Time { return at }
			}
			shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, f)
			dropSeals(t, s) // the in-memory proofs, not the seals (index.go)
			for range 2 {
				for i := range f.chunks {
					got, err := s.ReadChunk(ctx, f.chunks[i].CID, nil)
					if err != nil || !bytes.Equal(got, f.chunkData(i)) {
						t.Fatalf("ReadChunk %d: %v", i, err)
					}
					if hasProof(s, f, i) != tc.proof {
						t.Fatalf("chunk %d: proof %v, want %v", i, !tc.proof, tc.proof)
					}
				}
			}
		})
	}
}

// TestReadChunkProofsSeeChanges: every change to a shared file after its
// chunks were proved (TestReadChunkDetectsChanges's, with the file's size
// and mtime set back as they were, and a file renamed over it) makes
// ReadChunk hash again and refuse the changed chunk: a proof never serves
// bytes that are not the chunk's.
func TestReadChunkProofsSeeChanges(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("proofs are made on Linux only")
	}
	for _, tt := range stampEdits() {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, Options{Now: later})
			dir := t.TempDir()
			f := writeFile(t, dir, "f", content("f", 3*testChunk))
			shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, f)
			dropSeals(t, s) // the in-memory proofs, not the seals (index.go)
			for i := range f.chunks {
				if _, err := s.ReadChunk(context.Background(), f.chunks[i].CID, nil); err != nil {
					t.Fatal(err)
				}
			}
			if !hasProof(s, f, 1) {
				t.Fatal("no proof of chunk 1 after it was read")
			}
			tt.edit(t, f)
			got, err := s.ReadChunk(context.Background(), f.chunks[1].CID, nil)
			if !errors.Is(err, ErrStale) {
				t.Fatalf("ReadChunk of the changed chunk = %d bytes, %v; want ErrStale", len(got), err)
			}
		})
	}
}

// TestNoStampsHashEveryRead: on a file system that gives no stamps
// (stampFS false: tmpfs, a network file system), ReadChunk hashes every
// chunk on every read: it makes no proof (readLocation asks the store's
// stampFS, not the kernel's), and trusts no seal, not even one recorded
// while the file system passed for one with stamps (as a version before
// stampFS recorded them on tmpfs).
func TestNoStampsHashEveryRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("stamps are kept on Linux only")
	}
	for _, sealed := range []bool{true, false} {
		t.Run(fmt.Sprint("sealed=", sealed), func(t *testing.T) {
			s, _ := openTest(t, Options{Now: later})
			dir := t.TempDir()
			f := writeFile(t, dir, "f", content("f", 3*testChunk))
			shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, f)
			if n := bucketLen(t, s, bucketStamps); n != 1 {
				t.Fatalf("%d seals, want 1", n)
			}
			if !sealed {
				dropSeals(t, s)
			}
			s.stampFS = func(*os.File) bool { return false }
			for range 2 {
				readAll(t, f, s.ReadChunk)
			}
			if got, want := s.hashed.Load(), int64(2*len(f.chunks)); got != want {
				t.Fatalf("two rounds of reads hashed %d chunks, want %d", got, want)
			}
			for i := range f.chunks {
				if hasProof(s, f, i) {
					t.Fatalf("chunk %d got a proof", i)
				}
			}
		})
	}
}
