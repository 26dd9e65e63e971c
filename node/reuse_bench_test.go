package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/internal/benchrec"
)

// BenchmarkUpdate is the update measure of reuse_test.go full size: a
// folder of PEER_BENCH_UPDATE_MIB MiB (default 1024) in 100 files, one
// publisher and 3 followers, each a node on 127.0.0.1 (TCP, TLS, yamux),
// all connected; 1 MiB changed in one file (fixed 1 MiB chunks: in place;
// FastCDC around 1 MiB: inserted at the front), a file of 10 MiB added,
// one deleted; the publisher publishes its name (Publish) and the
// followers follow it (Follow). It prints what each follower received and
// what the publisher uploaded beside their limits, and the time from the
// second publish to the last follower in sync beside 5 s plus the time the
// same bytes took in the first version's sync.
func BenchmarkUpdate(b *testing.B) {
	size := benchrec.EnvMiB(b, "PEER_BENCH_UPDATE_MIB", 1024)
	for _, tc := range []struct {
		name     string
		chunking Chunking
		front    bool
	}{
		{"fixed", chunker.FixedParams(1 << 20), false},
		{"fastcdc", chunker.CDCParams(1 << 20), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				var nodes []*Node
				for range 4 {
					cfg := testConfig(b)
					cfg.NoDHT = true
					cfg.Chunking = tc.chunking
					nodes = append(nodes, startNode(b, cfg))
				}
				for i, a := range nodes {
					for _, o := range nodes[i+1:] {
						if err := a.Connect(ctx, o.AddrInfo()); err != nil {
							b.Fatal(err)
						}
					}
				}
				fig := runUpdate(b, ctx, nodes[0], nodes[1:], updateSpec{
					Files: 100, Size: size, Chunking: tc.chunking, Front: tc.front,
					Change: 1 << 20, Add: 10 << 20, Seed: 1,
				})
				cancel()
				worst := int64(0)
				for _, r := range fig.Received {
					worst = max(worst, r)
				}
				// The time the changed bytes took to reach every follower in
				// the first version's sync: what "plus transfer time" allows.
				transfer := time.Duration(float64(fig.First) * float64(fig.Changed) / float64(fig.Size))
				limit := 5*time.Second + transfer
				fmt.Printf("--- %s: %s; first sync of %.0f MiB by 3 followers took %v, so the sync limit is %v\n",
					b.Name(), fig, mib(fig.Size), fig.First.Round(time.Millisecond), limit.Round(time.Millisecond))
				name := fmt.Sprintf("update of a %d MiB folder, %s", size>>20, tc.name)
				benchrec.Add(benchrec.Record{Name: name + ": most a follower received", Figure: mib(worst), Unit: "MiB",
					Limit: mib(fig.followerLimit()), LimitName: "MiB changed + 2 chunks per changed file", Target: "<= 1x", Met: worst <= fig.followerLimit()})
				benchrec.Add(benchrec.Record{Name: name + ": publisher upload", Figure: mib(fig.Uploaded), Unit: "MiB",
					Limit: mib(fig.Changed), LimitName: "MiB changed", Target: "<= 1.5x", Met: fig.Uploaded <= fig.publisherLimit()})
				benchrec.Add(benchrec.Record{Name: name + ": publish to last follower in sync", Figure: fig.Sync.Seconds(), Unit: "s",
					Limit: limit.Seconds(), LimitName: "s (5 s + transfer)", Target: "<= 1x", Met: fig.Sync <= limit})
			}
		})
	}
}
