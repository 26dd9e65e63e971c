package node

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/internal/benchrec"
)

// BenchmarkMultiSource fetches from four seeders whose uploads are capped
// (each at 25 MB/s, then one of them at a quarter of that) and prints the
// fetch rate beside the sum of the caps, with the duplicate bytes.
func BenchmarkMultiSource(b *testing.B) {
	const size = 256 << 20
	for _, tc := range []struct {
		name string
		caps []int64
	}{
		{"four equal seeders", []int64{25e6, 25e6, 25e6, 25e6}},
		{"one seeder at a quarter speed", []int64{25e6, 25e6, 25e6, 25e6 / 4}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			path, _ := randomFile(b, b.TempDir(), "f.bin", size, 40)
			var hints []peer.AddrInfo
			var target Target
			var sum float64
			for _, c := range tc.caps {
				cfg := testConfig(b)
				cfg.NoDHT = true
				cfg.Chunking = chunker.DefaultParams()
				cfg.UploadRate = c
				s := startNode(b, cfg)
				sh, err := s.Share(ctx, path, ShareOptions{})
				if err != nil {
					b.Fatal(err)
				}
				target.Root = sh.Root
				hints = append(hints, s.AddrInfo())
				sum += float64(c)
			}
			cfg := testConfig(b)
			cfg.NoDHT = true
			f := startNode(b, cfg)
			// The rate counts from the first verified chunk: connecting and
			// the manifest are not what this measures.
			var first time.Time
			var firstBytes int64
			res, err := f.Fetch(ctx, target, filepath.Join(b.TempDir(), "f.bin"), FetchOptions{Peers: hints, Progress: func(p Progress) {
				if first.IsZero() && p.Bytes > 0 {
					first, firstBytes = time.Now(), p.Bytes
				}
			}})
			if err != nil {
				b.Fatal(err)
			}
			rate := float64(size-firstBytes) / time.Since(first).Seconds()
			dup := 100 * float64(res.Progress.Duplicate) / size
			var shares []string
			for _, h := range hints {
				shares = append(shares, fmt.Sprintf("%.0f%%", 100*float64(res.Progress.PerPeer[h.ID])/size))
			}
			fmt.Printf("--- %s: %.1f MB/s = %.2fx the seeders' %.1f MB/s of capped upload (target >= 0.9x); duplicate bytes %.2f%% (limit 2%%); served %v\n",
				b.Name(), rate/1e6, rate/sum, sum/1e6, dup, shares)
			benchrec.Add(benchrec.Record{Name: "multi-source, " + tc.name, Figure: rate / 1e6, Unit: "MB/s",
				Limit: sum / 1e6, LimitName: "MB/s capped upload", Target: ">= 0.9x", Met: rate/sum >= 0.9})
			benchrec.Add(benchrec.Record{Name: "duplicate bytes, " + tc.name, Figure: dup, Unit: "% of file", Target: "<= 2%", Met: dup <= 2})
		})
	}
}
