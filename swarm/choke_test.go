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

	"github.com/peer-project/peer/internal/bubble"
)

// TestChokeTakesTurns: a seeder with one upload slot and two fetchers at
// once. The one that asks second is choked and waits its turn; the slot
// passes back and forth every few blocks, so each fetcher gets blocks
// before the other has finished, and both files are exact.
func TestChokeTakesTurns(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
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
	})
}

// TestChokerServesTradersFirst: X has one upload slot and two fetchers of
// its file, A and B. A has just sent X a file of its own; B has sent
// nothing. B asks first and gets its first block before A asks; yet A gets
// most turns and finishes first, while B still gets turns (the optimistic
// ones) and finishes too. Taking turns first come, first served, B would
// finish first.
//
// X's upload is capped, not its links: with a cap on each link, X's slot
// costs nothing (a block written to a stream is buffered at once, so the
// slot passes on while both links carry blocks at their own rate) and A
// and B got their last block at the same virtual instant; which of the
// two Fetch calls returned first was then up to the Go scheduler (B came
// first about once in 500 runs under load). Each finish is now timed on
// the virtual clock and A's must come strictly first: 1.48-1.54 s against
// B's 1.90-1.95 s.
func TestChokerServesTradersFirst(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// 2 MiB at 2 MiB/s from X's one slot: about a second for each
		// fetcher alone, and B's head start of a block or two is small
		// beside it. The links are 32 times faster.
		mn := cappedMesh(t, 3, 64<<20)
		hosts := mn.Hosts()
		dir := t.TempDir()

		// A's file, which X fetches first: A's credit with X.
		aBlocks := &memBlocks{m: map[cid.Cid][]byte{}}
		aData := randomData(1<<20, 5)
		aRoot := build(t, aBlocks, "a.bin", aData, 32<<10)
		al, err := BuildLayout(ctx, aBlocks, aRoot)
		if err != nil {
			t.Fatal(err)
		}
		// X's file, which A and B then fetch at once.
		xBlocks := &memBlocks{m: map[cid.Cid][]byte{}}
		xData := randomData(2<<20, 6)
		xRoot := build(t, xBlocks, "x.bin", xData, 32<<10)
		xl, err := BuildLayout(ctx, xBlocks, xRoot)
		if err != nil {
			t.Fatal(err)
		}
		x := New(hosts[0], xBlocks, Config{Logger: quiet(), UploadSlots: 1, UploadRate: 2 << 20, Seed: 1})
		defer x.Close()
		x.Serve(xRoot, &memSource{l: xl, data: xData})
		a := New(hosts[1], aBlocks, Config{Logger: quiet(), Seed: 2})
		defer a.Close()
		a.Serve(aRoot, &memSource{l: al, data: aData})
		b := New(hosts[2], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 3})
		defer b.Close()

		if _, err := x.Fetch(ctx, aRoot, FetchOptions{Dest: filepath.Join(dir, "x-got-a")}); err != nil {
			t.Fatal(err)
		}

		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			first    [2]time.Time
			finished [2]time.Time // on the virtual clock
			errs     [2]error
			bStarted = make(chan struct{})
			start    = time.Now()
		)
		for k, f := range []*Swarm{a, b} {
			name := []string{"A", "B"}[k]
			wg.Add(1)
			go func() {
				defer wg.Done()
				if name == "A" {
					select {
					case <-bStarted:
					case <-ctx.Done():
						errs[k] = ctx.Err()
						return
					}
				}
				dest := filepath.Join(dir, name)
				_, errs[k] = f.Fetch(ctx, xRoot, FetchOptions{Dest: dest, Verified: func(int64) {
					mu.Lock()
					if first[k].IsZero() {
						first[k] = time.Now()
						if name == "B" {
							close(bStarted)
						}
					}
					mu.Unlock()
				}})
				mu.Lock()
				finished[k] = time.Now()
				mu.Unlock()
				if errs[k] == nil {
					if got, _ := os.ReadFile(dest); !bytes.Equal(got, xData) {
						t.Errorf("%s: file differs", name)
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
		if x.Stats().Chokes == 0 {
			t.Fatal("X never choked anyone with one slot and two fetchers")
		}
		if !finished[0].Before(finished[1]) {
			t.Errorf("A finished at %v, B at %v (virtual time from B's start): the peer that had sent X a file should finish first",
				finished[0].Sub(start), finished[1].Sub(start))
		}
	})
}
