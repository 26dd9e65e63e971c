package node

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/internal/benchrec"
)

// BenchmarkBitswapVsPeer fetches the same root (PEER_BENCH_BITSWAP_SIZE
// MiB, default 1024, in 1 MiB chunks as Kubo's unixfs-v1-2025 profile cuts
// it) over 127.0.0.1, in process, from one source: an IPFS node (boxo's
// Bitswap server and blockstore, which is what Kubo serves with) or a peer
// node. The two fetches alternate for three rounds and the median of each
// is held against the other. Then a mixed swarm, two peer seeders and the
// IPFS node at once, fetches it, and the share of bytes that came from
// each source is printed.
func BenchmarkBitswapVsPeer(b *testing.B) {
	size := int(benchrec.EnvMiB(b, "PEER_BENCH_BITSWAP_SIZE", 1024))
	const rounds = 3
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	path, data := randomFile(b, b.TempDir(), "f.bin", size, 41)

	seedCfg := func() Config {
		cfg := testConfig(b)
		cfg.Chunking = chunker.DefaultParams()
		cfg.Bitswap = true
		return cfg
	}
	sharers := []*Node{startNode(b, seedCfg()), startNode(b, seedCfg())}
	var sh *ShareResult
	for _, s := range sharers {
		var err error
		if sh, err = s.Share(ctx, path, ShareOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	k := startIPFS(b, h)
	if r := k.add(b, data, 1<<20); !r.Equals(sh.Root) {
		b.Fatalf("the IPFS node's root %s is not the peer node's %s", r, sh.Root)
	}
	data = nil // the IPFS node's blockstore holds its own copy
	ipfs := peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}

	// fetch gets the root anew from srcs into a fresh node and folder and
	// returns the rate in MB/s and the bytes that came from each source.
	fetch := func(srcs ...peer.AddrInfo) (float64, map[peer.ID]int64) {
		cfg := testConfig(b)
		cfg.Chunking = chunker.DefaultParams()
		cfg.Bitswap = true
		cfg.NoDHT = true
		f, err := New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		dest := filepath.Join(b.TempDir(), "f.bin")
		start := time.Now()
		res, err := f.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: srcs})
		if err != nil {
			b.Fatal(err)
		}
		return float64(size) / 1e6 / time.Since(start).Seconds(), res.Progress.PerPeer
	}

	var fromBitswap, fromPeer []float64
	for range b.N {
		for i := range rounds {
			// Alternate which goes first: the machine's speed drifts.
			if i%2 == 0 {
				r, _ := fetch(ipfs)
				fromBitswap = append(fromBitswap, r)
				r, _ = fetch(sharers[0].AddrInfo())
				fromPeer = append(fromPeer, r)
			} else {
				r, _ := fetch(sharers[0].AddrInfo())
				fromPeer = append(fromPeer, r)
				r, _ = fetch(ipfs)
				fromBitswap = append(fromBitswap, r)
			}
		}
	}
	bsRate, peerRate := benchrec.Median(fromBitswap), benchrec.Median(fromPeer)
	b.ReportMetric(bsRate, "bitswap-MB/s")
	b.ReportMetric(peerRate, "peer-MB/s")
	b.ReportMetric(peerRate/bsRate, "x-bitswap")
	b.Logf("one source, %d MiB, medians of %d: Bitswap (boxo) %.0f MB/s (rounds %.0f), peer %.0f MB/s (rounds %.0f)",
		size>>20, len(fromPeer), bsRate, fromBitswap, peerRate, fromPeer)
	benchrec.Add(benchrec.Record{
		Name:   fmt.Sprintf("fetch %d MiB from one peer source, in process, 127.0.0.1", size>>20),
		Figure: peerRate, Unit: "MB/s",
		Limit: bsRate, LimitName: "MB/s from one Kubo-like Bitswap source (boxo)",
		Target: ">= 1.0x", Met: peerRate >= bsRate,
	})

	mixed, per := fetch(sharers[0].AddrInfo(), sharers[1].AddrInfo(), ipfs)
	share := func(id peer.ID) float64 { return 100 * float64(per[id]) / float64(size) }
	p1, p2, bs := share(sharers[0].ID()), share(sharers[1].ID()), share(ipfs.ID)
	b.ReportMetric(mixed, "mixed-MB/s")
	b.ReportMetric(p1, "mixed-peer1-%")
	b.ReportMetric(p2, "mixed-peer2-%")
	b.ReportMetric(bs, "mixed-bitswap-%")
	b.Logf("mixed swarm: %.0f MB/s; bytes from peer seeder 1 %.1f%%, peer seeder 2 %.1f%%, Bitswap seeder %.1f%%", mixed, p1, p2, bs)
	benchrec.Add(benchrec.Record{
		Name:   fmt.Sprintf("mixed swarm %d MiB: 2 peer seeders + 1 Bitswap seeder; smallest share of bytes from one source", size>>20),
		Figure: min(p1, p2, bs), Unit: "%",
		Target: "> 0 (every source sends)", Met: min(p1, p2, bs) > 0,
	})
}
