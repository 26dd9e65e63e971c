package swarm

import (
	"context"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
)

// The rig that the swarm's tests share: hosts on a mocknet, a file root
// held in memory, and a hand-written session opened in the background.
// (memBlocks, memSource, build and randomData are in swarm_test.go;
// rawSess and openRaw in replace_test.go.)

// meshHosts returns n mocknet hosts, each linked and connected to every
// other; the mocknet is closed when tb ends.
func meshHosts(tb testing.TB, n int) []host.Host {
	tb.Helper()
	mn, err := mocknet.FullMeshConnected(n)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mn.Close() })
	return mn.Hosts()
}

// starHosts returns n mocknet hosts on links of bw bytes/s: the first
// linked and connected to each of the others, which have no link between
// them (a seed and fetchers that cannot reach each other); the mocknet
// is closed when tb ends.
func starHosts(tb testing.TB, n int, bw float64) []host.Host {
	tb.Helper()
	mn := mocknet.New()
	tb.Cleanup(func() { mn.Close() })
	for range n {
		if _, err := mn.GenPeer(); err != nil {
			tb.Fatal(err)
		}
	}
	mn.SetLinkDefaults(mocknet.LinkOptions{Bandwidth: bw})
	hosts := mn.Hosts()
	for _, h := range hosts[1:] {
		if _, err := mn.LinkPeers(hosts[0].ID(), h.ID()); err != nil {
			tb.Fatal(err)
		}
		if _, err := mn.ConnectPeers(hosts[0].ID(), h.ID()); err != nil {
			tb.Fatal(err)
		}
	}
	return hosts
}

// fileRoot puts data, cut in chunks of chunk bytes, in a new block store
// as a UnixFS file, and returns the store, the file's root and its layout.
func fileRoot(tb testing.TB, data []byte, chunk int) (*memBlocks, cid.Cid, *Layout) {
	tb.Helper()
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := build(tb, blocks, "f", data, chunk)
	l, err := BuildLayout(context.Background(), blocks, root)
	if err != nil {
		tb.Fatal(err)
	}
	return blocks, root, l
}

// opened is a raw session that openRawLater opened, or why it could not.
type opened struct {
	c   *rawSess
	err error
}

// openRawLater opens a raw session from h to p for root (openRaw) on a
// goroutine of its own, for a test that must act while it is being
// admitted; the channel gets the outcome.
func openRawLater(ctx context.Context, h host.Host, p peer.ID, root cid.Cid) <-chan opened {
	ch := make(chan opened, 1)
	go func() {
		c, err := openRaw(ctx, h, p, root)
		ch <- opened{c, err}
	}()
	return ch
}

// identified connects h to ai and waits until identify has run on each
// connection to it: h's peerstore then says of ai's protocols what ai
// said, for the test to change.
func identified(ctx context.Context, t *testing.T, h host.Host, ai peer.AddrInfo) {
	t.Helper()
	if err := h.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	ids := h.(interface{ IDService() identify.IDService }).IDService()
	for _, c := range h.Network().ConnsToPeer(ai.ID) {
		select {
		case <-ids.IdentifyWait(c):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}
