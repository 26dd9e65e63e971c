package swarm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// TestChokeTakesTurns: a seeder with one upload slot and two fetchers at
// once. The one that asks second is choked and waits its turn; the slot
// passes back and forth every few blocks, so each fetcher gets blocks
// before the other has finished, and both files are exact.
func TestChokeTakesTurns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// 2 MiB over 8 MB/s links: a quarter of a second per fetcher alone.
	mn := cappedMesh(t, 3, 8<<20)
	data := randomData(2<<20, 3)
	hosts := mn.Hosts()
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := build(t, blocks, "data.bin", data, 32<<10)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	seeder := New(hosts[0], blocks, Config{Logger: quiet(), UploadSlots: 1})
	defer seeder.Close()
	seeder.Serve(root, &memSource{l: l, data: data})

	dir := t.TempDir()
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		first, done [2]time.Time
		errs        [2]error
	)
	for k, h := range hosts[1:] {
		f := New(h, &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: uint64(k + 1)})
		defer f.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			dest := filepath.Join(dir, string(rune('a'+k)))
			_, errs[k] = f.Fetch(ctx, root, FetchOptions{Dest: dest, Verified: func(int64) {
				mu.Lock()
				if first[k].IsZero() {
					first[k] = time.Now()
				}
				mu.Unlock()
			}})
			mu.Lock()
			done[k] = time.Now()
			mu.Unlock()
			if errs[k] == nil {
				if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
					t.Errorf("fetcher %d: file differs", k)
				}
			}
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Fatalf("fetcher %d: %v", k, err)
		}
	}
	if n := seeder.Stats().Chokes; n == 0 {
		t.Error("the seeder never choked anyone with one slot and two fetchers")
	}
	for k := range 2 {
		if !first[k].Before(done[1-k]) {
			t.Errorf("fetcher %d got its first block at %v, after fetcher %d had finished at %v: no turns",
				k, first[k].Format(time.StampMicro), 1-k, done[1-k].Format(time.StampMicro))
		}
	}
	if st := seeder.Stats(); st.ChunksServed < 2*l.NumChunks() {
		t.Errorf("seeder served %d blocks for two fetches of %d", st.ChunksServed, l.NumChunks())
	}
}
