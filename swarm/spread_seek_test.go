package swarm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/sched"
)

// TestStreamingReaderServedInOrderAfterSeek: a streaming reader starts
// half-way through a new file and then seeks back to its start, while
// another fetcher that took the whole file from the seed, and that the
// reader cannot reach, seeds it too. After the seek, as from its start,
// the seed serves the reader's requests as it asks: each first k chunks
// reach it no later than the seed alone would send them, in order, at the
// link's rate, give or take the scheduler's request pipeline twice (the
// requests in flight at the seek are served first, as asked; then the
// new ones': compare TestStreamingReaderServedInOrder). It seeks once the
// link's burst is spent (mocknet lends a link up to 1 s of its rate).
// Judged by the order of its requests, the reader after the seek was
// held back, for chunks the other fetcher had, a hold: its first chunk
// after 0.95 to 1.13 s (the bound is 0.56 s); served as asked, 0.38 s.
func TestStreamingReaderServedInOrderAfterSeek(t *testing.T) {
	const (
		bw     = 4 << 20
		size   = 32 << 20
		chunk  = 256 << 10
		chunks = size / chunk
		from   = chunks / 2 // where the reader starts
		before = 48         // chunks it reads there before it seeks: past the links' burst
	)
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// The seed, the other fetcher and the reader; no link between
		// the last two.
		hosts := starHosts(t, 3, bw)
		ss := &spreadSetup{hosts: hosts, data: randomData(size, 26)}
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		ss.root = build(t, blocks, "new.bin", ss.data, chunk)
		l, err := BuildLayout(ctx, blocks, ss.root)
		if err != nil {
			t.Fatal(err)
		}
		ss.seed = New(hosts[0], blocks, Config{Logger: quiet()})
		t.Cleanup(func() { ss.seed.Close() })
		ss.seed.Serve(ss.root, &memSource{l: l, data: ss.data})
		_, wait := ss.fetchBehind(t, ctx, ss.hosts[1], 1, chunks)
		wait()

		f := New(ss.hosts[2], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 2})
		t.Cleanup(func() { f.Close() })
		dest := filepath.Join(t.TempDir(), "new.bin")
		focus := make(chan Range, 1)
		focus <- Range{From: from, To: 1 << 62}
		var (
			mu      sync.Mutex
			at      = map[int64]time.Time{}
			ahead   int
			reached = make(chan struct{})
		)
		var (
			res *Result
			wg  sync.WaitGroup
		)
		wg.Go(func() {
			res, err = f.Fetch(ctx, ss.root, FetchOptions{
				Dest:    dest,
				Focus:   focus,
				Started: func(_ *Layout, src Source) { f.Serve(ss.root, src) },
				Verified: func(i int64) {
					mu.Lock()
					defer mu.Unlock()
					if _, ok := at[i]; ok {
						return
					}
					at[i] = time.Now()
					if i >= from && i < from+before {
						if ahead++; ahead == before {
							close(reached)
						}
					}
				},
			})
		})
		select {
		case <-reached:
		case <-ctx.Done():
			t.Fatal("the reader never read where it started")
		}
		seek := time.Now()
		focus <- Range{From: 0, To: 1 << 62}
		wg.Wait()
		if err != nil {
			t.Fatalf("streaming reader: %v", err)
		}
		f.Serve(ss.root, res.Source)
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, ss.data) {
			t.Fatal("streaming reader: the file differs")
		}
		mu.Lock()
		defer mu.Unlock()
		after := make([]time.Duration, from)
		for i := range after {
			a, ok := at[int64(i)]
			if !ok {
				t.Fatalf("chunk %d never verified", i)
			}
			after[i] = max(a.Sub(seek), 0)
		}
		pt := prefixTimes(after)
		var b strings.Builder
		for _, mib := range []int{1, 2, 4, 8, 16} {
			fmt.Fprintf(&b, " %d MiB %v,", mib, pt[mib<<20/chunk-1].Round(time.Millisecond))
		}
		t.Logf("after the seek, the reader had its first chunk after %v,%s the seed uploaded %.2f× the file",
			pt[0].Round(time.Millisecond), b.String(), float64(ss.seed.Stats().BytesUp)/size)
		per := time.Duration(float64(chunk) / bw * float64(time.Second))
		for k, d := range pt {
			if limit := per*time.Duration(k+1) + 2*sched.DefaultInFlight; d > limit {
				t.Fatalf("after the seek, the reader had its first %d KiB after %v, later than the seed alone sends them in order (%v)",
					(k+1)*chunk>>10, d.Round(time.Millisecond), limit)
			}
		}
	})
}
