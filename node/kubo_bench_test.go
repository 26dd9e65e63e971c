package node

// Kubo beside BenchmarkTransfer, when PEER_BENCH_KUBO names an ipfs
// binary: two Kubo daemons on loopback only (see internal/benchrec/kubo.go
// for how they are kept off the network), the seeder holding the same file
// in 1 MiB raw leaves, the fetcher connected to it by explicit multiaddr.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/internal/benchrec"
)

// kuboAnchor is a Kubo seeder and fetcher of one file.
type kuboAnchor struct {
	seed, fetch *benchrec.KuboNode
	root, addr  string
	dir         string
}

// startKubo starts the Kubo pair for the file at path, or returns nil when
// PEER_BENCH_KUBO is unset. The nodes stop when the benchmark ends.
func startKubo(b *testing.B, dir, path string) *kuboAnchor {
	bin, err := benchrec.KuboBinary(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	if bin == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k := &kuboAnchor{dir: dir}
	if k.seed, err = benchrec.StartKubo(ctx, bin, filepath.Join(dir, "kubo-seed")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.seed.Close() })
	if k.fetch, err = benchrec.StartKubo(ctx, bin, filepath.Join(dir, "kubo-fetch")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.fetch.Close() })
	if k.root, err = k.seed.Add(ctx, path, chunker.DefaultSize); err != nil {
		b.Fatal(err)
	}
	if k.addr, err = k.seed.Addr(ctx); err != nil {
		b.Fatal(err)
	}
	return k
}

// round times one `ipfs get` to a file and one `ipfs cat` of the file,
// each from a cold fetcher, and returns their rates in MB/s.
func (k *kuboAnchor) round(b *testing.B, size int64, i int) (get, cat float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := k.fetch.Connect(ctx, k.addr); err != nil {
		b.Fatal(err)
	}
	dg, err := k.fetch.Get(ctx, k.root, filepath.Join(k.dir, fmt.Sprintf("kubo-got-%d", i)))
	if err != nil {
		b.Fatal(err)
	}
	dc, n, err := k.fetch.Cat(ctx, k.root)
	if err != nil {
		b.Fatal(err)
	}
	if n != size {
		b.Fatalf("ipfs cat gave %d bytes, want %d", n, size)
	}
	mb := float64(size) / 1e6
	return mb / dg.Seconds(), mb / dc.Seconds()
}
