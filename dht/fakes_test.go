package dht

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/peer-project/peer/integrity"
)

// addProvider is what a fake provider does: it tells server, over the
// DHT's own protocol, that it provides root, and waits until the server
// has handled it (the server ends the stream once it has read the
// message and found no other).
func addProvider(ctx context.Context, t *testing.T, fake, server host.Host, root cid.Cid) {
	t.Helper()
	s, err := fake.NewStream(ctx, server.ID(), DefaultPrefix+"/kad/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := pb.NewMessage(pb.Message_ADD_PROVIDER, root.Hash(), 0)
	msg.ProviderPeers = pb.RawPeerInfosToPBPeers([]peer.AddrInfo{{ID: fake.ID(), Addrs: fake.Addrs()}})
	if err := pbio.NewDelimitedWriter(s).WriteMsg(msg); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	io.Copy(io.Discard, s)
}

// TestFindProvidersPastFakes: 60 fake peers tell the DHT servers they
// provide a root, then cannot be reached (here: no link to the fetcher).
// A lookup that stopped at the first 20 providers it heard of missed the
// real one most of the time; every lookup must now find it, and send no
// fake.
func TestFindProvidersPastFakes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	gen := func() host.Host {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var servers []host.Host
	var boot []peer.AddrInfo
	for range 3 {
		h := gen()
		servers = append(servers, h)
		boot = append(boot, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	real, fetcher := gen(), gen()
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
		for _, o := range servers[i+1:] {
			link(s, o)
		}
		link(s, real)
		link(s, fetcher)
		for _, f := range fakes {
			link(s, f)
		}
	}
	link(real, fetcher)
	start := func(h host.Host, mode Mode) *DHT {
		d, err := New(h, Config{Mode: mode, Bootstrap: boot, NoAutoRefresh: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	var all []*DHT
	for _, s := range servers {
		all = append(all, start(s, ModeServer))
	}
	// The sharer and the fetcher are clients (behind NAT, say): the
	// records are the servers' alone.
	dr, df := start(real, ModeClient), start(fetcher, ModeClient)
	for _, d := range append(all, dr, df) {
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	root := integrity.Block([]byte("a root fakes claim"))
	if err := dr.Provide(ctx, root); err != nil {
		t.Fatal(err)
	}
	for _, f := range fakes {
		for _, s := range servers {
			addProvider(ctx, t, f, s, root)
		}
	}
	for i := range 5 {
		var found []peer.ID
		for ai := range df.FindProviders(ctx, root, 20) {
			found = append(found, ai.ID)
		}
		if len(found) != 1 || found[0] != real.ID() {
			t.Fatalf("lookup %d found %d providers (the real one, %s, among them: %v); want only the real one", i, len(found), real.ID(), contains(found, real.ID()))
		}
	}
}

func contains(ids []peer.ID, id peer.ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
