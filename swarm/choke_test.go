package swarm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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

// TestChokerPrefersCredit drives the choker by hand, one upload slot, with
// a fake clock: the peer that has sent us data gets the slot back before
// those that have not, except at every optimisticEvery-th turn, which goes
// to the first in line, so no one waits for good. Without credit the
// turns go round in order, and credit fades.
func TestChokerPrefersCredit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	sw := &Swarm{}
	newServer := func() *server {
		return &server{sw: sw, wake: make(chan struct{}, 1), lim: &peerLimit{}}
	}
	// turns returns who holds the slot after each of n turns.
	turns := func(c *choker, n int) []*server {
		var got []*server
		for range n {
			h := c.holders[0]
			for range turnBlocks {
				c.writing(h)
				c.sent(h)
			}
			if len(c.holders) != 1 || c.holders[0].choked {
				t.Fatalf("%d holders after a turn, want one, unchoked", len(c.holders))
			}
			got = append(got, c.holders[0])
		}
		return got
	}
	line := func(c *choker, svs ...*server) {
		for _, sv := range svs {
			c.want(sv, []uint64{0})
		}
		if c.holders[0] != svs[0] || len(c.waiting) != len(svs)-1 {
			t.Fatalf("the first to ask should hold the slot and the others wait")
		}
	}

	holder, free1, trader, free2 := newServer(), newServer(), newServer(), newServer()
	names := map[*server]string{holder: "holder", free1: "free1", trader: "trader", free2: "free2"}
	trader.lim.addCredit(4<<20, now)
	c := newChoker(1, func() time.Time { return now })
	defer c.close()
	line(c, holder, free1, trader, free2)
	count := map[string]int{}
	var order []string
	for _, sv := range turns(c, 3*optimisticEvery) {
		count[names[sv]]++
		order = append(order, names[sv])
	}
	// Per optimisticEvery turns, the trader gets all but one; the
	// optimistic turns go round the others in line order.
	if want := 3 * (optimisticEvery - 1); count["trader"] != want {
		t.Errorf("trader had %d of %d turns, want %d: %v", count["trader"], 3*optimisticEvery, want, order)
	}
	for _, n := range []string{"free1", "free2", "holder"} {
		if count[n] != 1 {
			t.Errorf("%s had %d turns, want 1: %v", n, count[n], order)
		}
	}

	// A minute later the credit has faded to e^-6 of itself: still the
	// most. Without any, the line goes round first come, first served.
	now = t0.Add(time.Minute)
	if cr := trader.lim.credited(now); cr > 4<<20/400 || cr <= 0 {
		t.Errorf("credit a minute later = %.0f, want about %.0f", cr, float64(4<<20)/403)
	}
	a, b, d := newServer(), newServer(), newServer()
	names = map[*server]string{a: "a", b: "b", d: "d"}
	c2 := newChoker(1, func() time.Time { return now })
	defer c2.close()
	line(c2, a, b, d)
	order = order[:0]
	for _, sv := range turns(c2, 6) {
		order = append(order, names[sv])
	}
	if got := strings.Join(order, " "); got != "b d a b d a" {
		t.Errorf("turns without credit: %s, want b d a b d a", got)
	}
}

// TestChokerServesTradersFirst: X has one upload slot and two fetchers of
// its file, A and B. A has just sent X a file of its own; B has sent
// nothing. B asks first and gets its first block before A asks; yet A gets
// most turns and finishes first, while B still gets turns (the optimistic
// ones) and finishes too. Taking turns first come, first served, B would
// finish first.
func TestChokerServesTradersFirst(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// 2 MiB at 2 MB/s: about a second for each fetcher alone, and B's head
		// start of a block or two is small beside it.
		mn := cappedMesh(t, 3, 2<<20)
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
		x := New(hosts[0], xBlocks, Config{Logger: quiet(), UploadSlots: 1, Seed: 1})
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

		// A mocknet link that has been idle sends a second's worth of
		// bytes at once (its allowance): X's link to B has saved it all
		// while X fetched A's file, and would give B half of the file
		// before A asks. Start with nothing saved.
		for _, h := range hosts[1:] {
			for _, l := range mn.LinksBetweenPeers(hosts[0].ID(), h.ID()) {
				l.SetOptions(l.Options())
			}
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			done     []string
			first    [2]time.Time
			errs     [2]error
			bStarted = make(chan struct{})
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
				done = append(done, name)
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
		if done[0] != "A" {
			t.Errorf("finished in the order %v: the peer that had sent X a file should finish first", done)
		}
	})
}
