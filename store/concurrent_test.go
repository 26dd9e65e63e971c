package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/peer-project/peer/integrity"
)

// TestConcurrentUse runs every kind of operation at once, for the race
// detector, then checks that nothing was lost.
func TestConcurrentUse(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "f", content("f", 8*testChunk))
	shareFiles(t, s, dir, integrity.Block([]byte("r")), 3, f)
	ctx := context.Background()

	const workers, rounds = 4, 50
	others := make([]testFile, workers) // written here: t.Fatal only on the test's goroutine
	for w := range others {
		others[w] = writeFile(t, t.TempDir(), "g", content(fmt.Sprint("g", w), 2*testChunk))
	}
	errc := make(chan error, 64)
	var wg sync.WaitGroup
	run := func(fn func(w int) error) {
		for w := range workers {
			wg.Go(func() {
				if err := fn(w); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			})
		}
	}
	run(func(w int) error { // blocks
		for i := range rounds {
			data := fmt.Appendf(nil, "block %d %d", w, i)
			c := integrity.Block(data)
			if err := s.PutBlock(c, data); err != nil {
				return err
			}
			if got, err := s.GetBlock(ctx, c); err != nil || !bytes.Equal(got, data) {
				return fmt.Errorf("GetBlock: %v", err)
			}
		}
		return nil
	})
	run(func(w int) error { // reads of the shared file
		var buf []byte
		for i := range rounds {
			k := (w + i) % len(f.chunks)
			got, err := s.ReadChunk(ctx, f.chunks[k].CID, buf)
			if err != nil || !bytes.Equal(got, f.chunkData(k)) {
				return fmt.Errorf("ReadChunk %d: %v", k, err)
			}
			buf = got
		}
		return nil
	})
	run(func(w int) error { // shares coming and going
		g := others[w]
		other := filepath.Dir(g.path)
		root := integrity.Block(fmt.Appendf(nil, "share %d", w))
		for range rounds / 10 {
			tx, err := s.BeginShare(other)
			if err != nil {
				return err
			}
			for _, ch := range g.chunks {
				if err := tx.AddFile(g.path, int64(len(g.data)), g.mtime, g.root, []ChunkLoc{ch}); err != nil {
					return err
				}
			}
			if err := tx.Commit(root, ShareInfo{Name: "g", Size: int64(len(g.data)), Files: 1,
				Chunking: testParams()}); err != nil {
				return err
			}
			if _, err := s.Shares(); err != nil {
				return err
			}
			if err := s.Unshare(root); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		return nil
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if err := checkConsistent(s); err != nil {
		t.Fatal(err)
	}
}
