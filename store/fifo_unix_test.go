//go:build unix

package store

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

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
