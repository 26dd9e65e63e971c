package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/chunker"
)

// BenchmarkBitswapVsPeer fetches the same 64 MiB root (1 MiB chunks, as
// Kubo's unixfs-v1-2025 profile cuts it) over 127.0.0.1 from one source:
// an IPFS node (boxo's Bitswap server, as Kubo) or a peer node. Each
// iteration fetches it anew into a fresh folder.
func BenchmarkBitswapVsPeer(b *testing.B) {
	const size = 64 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	path, data := randomFile(b, b.TempDir(), "f.bin", size, 41)

	cfg := testConfig(b)
	cfg.Chunking = chunker.DefaultParams()
	cfg.Bitswap = true
	sharer := startNode(b, cfg)
	sh, err := sharer.Share(ctx, path, ShareOptions{})
	if err != nil {
		b.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	k := startIPFS(b, h)
	if root := k.add(b, data, 1<<20); !root.Equals(sh.Root) {
		b.Fatalf("the IPFS node's root %s is not the peer node's %s", root, sh.Root)
	}
	for _, src := range []struct {
		name string
		from peer.AddrInfo
	}{
		{"bitswap", peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}},
		{"peer", sharer.AddrInfo()},
	} {
		b.Run(src.name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				fcfg := testConfig(b)
				fcfg.Chunking = chunker.DefaultParams()
				fcfg.Bitswap = true
				fcfg.NoDHT = true
				f, err := New(ctx, fcfg)
				if err != nil {
					b.Fatal(err)
				}
				dest := filepath.Join(b.TempDir(), "f.bin")
				if _, err := f.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: []peer.AddrInfo{src.from}}); err != nil {
					f.Close()
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}
