package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// BenchmarkReadChunk serves 1 MiB chunks from a shared file, re-verifying
// each: the cost of answering a peer, which should allow ≥ 1 GB/s per core
// less the sha2-256 cost. The file was just written, on a file system
// whose read lease is refused (lease false): nothing spares the hash.
func BenchmarkReadChunk(b *testing.B) { benchReadChunk(b, time.Now, false) }

// BenchmarkReadChunkProved serves the same chunks again and again from a
// file older than proofAge: the seal AddFile made (index.go) stands in for
// the hash from the first read of each on, as the in-memory proof does
// after it.
func BenchmarkReadChunkProved(b *testing.B) { benchReadChunk(b, later, false) }

// BenchmarkReadChunkNoWriter serves them from a file written a second
// before, where a read lease finds no writer: the first read of each
// chunk proves it (proof.go), and the rest are not hashed.
func BenchmarkReadChunkNoWriter(b *testing.B) { benchReadChunk(b, soon, true) }

func benchReadChunk(b *testing.B, now func() time.Time, lease bool) {
	s, err := Open(filepath.Join(b.TempDir(), "peer.db"), Options{NoSync: true, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if !lease {
		s.lease = func(*os.File) bool { return false }
	}
	dir := b.TempDir()
	const size, n = chunker.DefaultSize, 16
	f := writeFileB(b, dir, content("bench", n*size), size)
	tx, _ := s.BeginShare(dir)
	if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, f.chunks); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(integrity.Block([]byte("bench")), ShareInfo{Name: "b", Chunking: chunker.DefaultParams()}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	buf := make([]byte, size)
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.ReadChunk(ctx, f.chunks[i%n].CID, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddFile indexes 1024 chunks per call with fsync on: the cost of
// sharing, per chunk.
func BenchmarkAddFile(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "peer.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 1024
	chunks := make([]ChunkLoc, batch)
	root := integrity.Block([]byte("file"))
	tx, _ := s.BeginShare(b.TempDir())
	b.ResetTimer()
	for i := range b.N {
		for j := range chunks {
			off := int64(i*batch+j) * chunker.DefaultSize
			chunks[j] = ChunkLoc{CID: integrity.Chunk([]byte{byte(i), byte(i >> 8), byte(j), byte(j >> 8)}), Offset: off, Size: chunker.DefaultSize}
		}
		if err := tx.AddFile("/big", 1<<50, testTime(), root, chunks); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "chunks/s")
}
