package node

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/peer-project/peer/dht"
)

// TestFetchPastFakeProviders: 60 fake peers announce a root on the DHT and
// cannot be reached; a fetch by root alone (no ticket, no peer hint) still
// finds the sharer through the DHT and fetches from it. All on mocknet.
func TestFetchPastFakeProviders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	gen := func() host.Host {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var servers []host.Host
	for range 3 {
		servers = append(servers, gen())
	}
	sharer, fetcher := gen(), gen()
	var fakes []host.Host
	for range 60 {
		fakes = append(fakes, gen())
	}
	link := func(a, b host.Host) {
		if _, err := mn.LinkPeers(a.ID(), b.ID()); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range servers {
		for _, o := range slices.Concat(servers[i+1:], []host.Host{sharer, fetcher}) {
			link(s, o)
		}
		for _, f := range fakes {
			link(s, f)
		}
	}
	link(sharer, fetcher)
	var boot []string
	for _, s := range servers {
		for _, a := range s.Addrs() {
			boot = append(boot, a.String()+"/p2p/"+s.ID().String())
		}
	}
	start := func(h host.Host, mode DHTMode) *Node {
		cfg := testConfig(t)
		cfg.Host, cfg.DHTMode, cfg.DHTNoAutoRefresh = h, mode, true
		cfg.FindTimeout = 20 * time.Second
		return startNode(t, cfg)
	}
	var nodes []*Node
	for _, s := range servers {
		nodes = append(nodes, start(s, DHTServer))
	}
	// The servers know each other, then the sharer and the fetcher (both
	// clients, as behind NAT) join through them.
	for _, n := range nodes {
		for _, s := range servers {
			if s.ID() != n.ID() {
				n.Connect(ctx, peer.AddrInfo{ID: s.ID(), Addrs: s.Addrs()})
			}
		}
	}
	startClient := func(h host.Host) *Node {
		cfg := testConfig(t)
		cfg.Host, cfg.DHTMode, cfg.DHTNoAutoRefresh, cfg.Bootstrap = h, DHTClient, true, boot
		cfg.FindTimeout = 20 * time.Second
		return startNode(t, cfg)
	}
	a, b := startClient(sharer), startClient(fetcher)
	path, data := randomFile(t, t.TempDir(), "f.bin", 600<<10, 11)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.dht.Provide(ctx, sh.Root); err != nil { // Share provides in the background: wait for it here
		t.Fatal(err)
	}
	for _, f := range fakes {
		for _, s := range servers {
			st, err := f.NewStream(ctx, s.ID(), dht.DefaultPrefix+"/kad/1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			msg := pb.NewMessage(pb.Message_ADD_PROVIDER, sh.Root.Hash(), 0)
			msg.ProviderPeers = pb.RawPeerInfosToPBPeers([]peer.AddrInfo{{ID: f.ID(), Addrs: f.Addrs()}})
			if err := pbio.NewDelimitedWriter(st).WriteMsg(msg); err != nil {
				t.Fatal(err)
			}
			st.CloseWrite()
			io.Copy(io.Discard, st) // the server ends the stream once it has handled the message
			st.Close()
		}
	}
	// The fetcher has a connection to the sharer only through what the
	// DHT tells it: drop any the bootstrap made.
	b.host.Network().ClosePeer(a.ID())
	dest := filepath.Join(t.TempDir(), "got.bin")
	res, err := b.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{})
	if err != nil {
		t.Fatalf("fetch by root with 60 fake providers: %v", err)
	}
	sameFile(t, dest, data)
	if res.Progress.PerPeer[a.ID()] != int64(len(data)) {
		t.Fatalf("bytes per peer %v; want all %d from the sharer %s", res.Progress.PerPeer, len(data), a.ID())
	}
}
