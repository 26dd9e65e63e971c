//go:build unix

package store

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// TestReadChunkFIFO: a shared file replaced by a FIFO is stale, at once:
// ReadChunk does not open it (opening a FIFO to read waits for a writer, and
// a peer's request would hang there for good).
func TestReadChunkFIFO(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", 2*testChunk))
	shareFiles(t, s, dir, integrity.Block([]byte("r")), 10, f)
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(f.path, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.ReadChunk(context.Background(), f.chunks[0].CID, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStale) {
			t.Fatalf("ReadChunk of a chunk whose file is a FIFO now: %v, want ErrStale", err)
		}
	case <-time.After(10 * time.Second):
		// Free the reader: a writer opens the FIFO, then closes it.
		if w, err := os.OpenFile(f.path, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("ReadChunk waited 10 s on a FIFO at a shared file's path")
	}
}

// TestAddFileFIFO: AddFile of a path that is a FIFO (a follow's conflict, a
// file replaced behind the importer's back) returns at once and records no
// seal: sealing it must not open it to wait for a writer, which no context
// could cancel.
func TestAddFileFIFO(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	p := dir + "/fifo"
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	data := content("f", testChunk)
	c := integrity.Chunk(data)
	tx, err := s.BeginShare(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	// An mtime long before the share's start: the one case sealFor opens.
	mtime := time.Unix(1_000_000_000, 0)
	done := make(chan error, 1)
	go func() {
		done <- tx.AddFile(p, int64(len(data)), mtime, integrity.Block(data), []ChunkLoc{{CID: c, Size: uint32(len(data))}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("AddFile of a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		if w, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("AddFile waited 10 s on a FIFO")
	}
	if err := tx.Commit(c, ShareInfo{Name: "fifo", Size: int64(len(data)), Files: 1, Dir: true, Chunking: chunker.DefaultParams()}); err != nil {
		t.Fatal(err)
	}
	locs, err := s.Locations(c)
	if err != nil || len(locs) != 1 {
		t.Fatalf("Locations: %v, %v", locs, err)
	}
	if locs[0].seal != nil {
		t.Fatal("a FIFO got a seal")
	}
}
