package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	kad "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestFetchBitswapProviderFromAmino: an IPFS-stack node (boxo's Bitswap
// and kad-dht with the /ipfs prefix, as Kubo is made) that does not speak
// peer's protocol provides a root in the Amino DHT of two public peer
// nodes; a third public peer node, told nothing but its bootstrap peer,
// finds the provider through the DHT and fetches the root from it over
// Bitswap, bit for bit. (The fetcher may be connected to the IPFS node
// already, through the DHT's own traffic; a fetch asks a connected peer
// that speaks only Bitswap nothing unless discovery named it a provider,
// see swarm's TestConnectedBitswapPeerNotAsked.) All on 127.0.0.1, over TCP: the small internet of
// cmd/peer runs `peer` daemons in namespaces, where an in-process IPFS
// node would need a child process of its own.
func TestFetchBitswapProviderFromAmino(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	boot := startNode(t, publicTestConfig(t, []string{unreachablePeer(t)}))

	// The IPFS node: its own host, a DHT server on /ipfs bootstrapped
	// through the public peer node, Bitswap over a blockstore.
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	bootInfo := boot.AddrInfo()
	k, err := kad.New(h, kad.Mode(kad.ModeServer), kad.ProtocolPrefix(kad.DefaultPrefix), kad.BootstrapPeers(bootInfo), kad.DisableAutoRefresh())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	ipfs := startIPFS(t, h)
	const chunk = 1 << 20
	_, data := randomFile(t, t.TempDir(), "ipfs.bin", 5<<20+4321, 51)
	root := ipfs.add(t, data, chunk)
	if err := h.Connect(ctx, bootInfo); err != nil {
		t.Fatal(err)
	}
	// kad-dht puts a connected peer in its table once identify says it
	// speaks the protocol, on a goroutine of its own: a refresh that runs
	// first finds an empty table (1 CI run). The peer is put there now,
	// as kad-dht itself would put it.
	if _, err := k.RoutingTable().TryAddPeer(boot.ID(), true, false); err != nil {
		t.Fatalf("the IPFS node's routing table takes no public peer node: %v", err)
	}
	if k.RoutingTable().Find(boot.ID()) == "" {
		t.Fatalf("the IPFS node's routing table %v has no public peer node %s", k.RoutingTable().ListPeers(), boot.ID())
	}
	if err := k.Provide(ctx, root, true); err != nil {
		t.Fatal(err)
	}

	fcfg := publicTestConfig(t, bootstrapOf(boot))
	fcfg.FindTimeout = 30 * time.Second
	f := startNode(t, fcfg)
	dest := filepath.Join(t.TempDir(), "got.bin")
	start := time.Now()
	res, err := f.Fetch(ctx, Target{Root: root}, dest, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)
	got, st := res.Progress.PerPeer[h.ID()], f.Stats()
	t.Logf("%d bytes found through the Amino DHT and fetched over Bitswap from the IPFS node in %v (%d bytes down over Bitswap)",
		got, time.Since(start).Round(time.Millisecond), st.BitswapBytesDown)
	if got != int64(len(data)) || st.BitswapBytesDown != int64(len(data)) {
		t.Fatalf("%d bytes from the IPFS node, %d over Bitswap; want all %d from it", got, st.BitswapBytesDown, len(data))
	}
	if _, ok := res.Progress.PerPeer[peer.ID(boot.ID())]; ok {
		t.Fatal("the bootstrap node, which does not have the root, sent chunks")
	}
}
