package swarm

import (
	"context"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/internal/bubble"
)

// bsClient is a Bitswap-only peer in process: boxo's Bitswap network on
// a host, with no stream session of ours, that wants blocks and hands
// back what arrives.
type bsClient struct {
	net    interface{ Stop() }
	send   func(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) error
	blocks chan cid.Cid
}

// bsRecorder passes the CIDs of the blocks received to a channel.
type bsRecorder struct{ got chan<- cid.Cid }

func (r bsRecorder) ReceiveMessage(ctx context.Context, _ peer.ID, m bsmsg.BitSwapMessage) {
	for _, b := range m.Blocks() {
		select {
		case r.got <- b.Cid():
		case <-ctx.Done():
		}
	}
}
func (bsRecorder) ReceiveError(error)       {}
func (bsRecorder) PeerConnected(peer.ID)    {}
func (bsRecorder) PeerDisconnected(peer.ID) {}

// newBSClient starts boxo's Bitswap network on h; it stops with the test.
func newBSClient(t *testing.T, h host.Host, queue int) *bsClient {
	t.Helper()
	n := bsnet.NewFromIpfsHost(h)
	got := make(chan cid.Cid, queue)
	n.Start(bsRecorder{got: got})
	t.Cleanup(n.Stop)
	return &bsClient{net: n, send: n.SendMessage, blocks: got}
}

// want asks p for the blocks cs (want-block).
func (c *bsClient) want(ctx context.Context, p peer.ID, cs []cid.Cid) error {
	m := bsmsg.New(false)
	for _, k := range cs {
		m.AddEntry(k, 1, pb.Message_Wantlist_Block, false)
	}
	return c.send(ctx, p, m)
}

// await waits for n blocks.
func (c *bsClient) await(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for k := range n {
		select {
		case <-c.blocks:
		case <-ctx.Done():
			t.Fatalf("%d blocks of %d came", k, n)
		}
	}
}

// TestPeerCapHoldsForBitswapPeer: a peer that speaks only Bitswap (no
// stream session of ours) and wants a 2 MiB file from a swarm whose
// per-peer upload cap is 256 KiB/s gets it no faster than the cap allows:
// 2 MiB less one burst (64 KiB) at 256 KiB/s is 7.75 s. The links are 256
// times faster than the cap. Before the limiter was held for the peer's
// connection, each message took a new one with a full burst, and the file
// came in 0.03 s of virtual time.
func TestPeerCapHoldsForBitswapPeer(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const rate, size, chunk = 256 << 10, 2 << 20, 64 << 10
		mn := cappedMesh(t, 2, 64<<20)
		hosts := mn.Hosts()
		data := randomData(size, 41)
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root := build(t, blocks, "data.bin", data, chunk)
		l, err := BuildLayout(ctx, blocks, root)
		if err != nil {
			t.Fatal(err)
		}
		server := New(hosts[0], blocks, Config{Logger: quiet(), Bitswap: true, PeerUploadRate: rate})
		defer server.Close()
		server.Serve(root, &memSource{l: l, data: data})
		client := newBSClient(t, hosts[1], int(l.NumChunks()))
		var cs []cid.Cid
		for _, ch := range l.Chunks {
			cs = append(cs, ch.CID)
		}
		start := time.Now()
		if err := client.want(ctx, server.host.ID(), cs); err != nil {
			t.Fatal(err)
		}
		client.await(t, ctx, len(cs))
		took := time.Since(start)
		least := time.Duration(float64(size-newLimiter(rate).Burst()) / rate * float64(time.Second))
		t.Logf("%d MiB at a per-peer cap of %d KiB/s: %v of virtual time (the cap allows no less than %v)", size>>20, rate>>10, took, least)
		if took < least {
			t.Fatalf("the Bitswap peer got %d bytes in %v; a per-peer cap of %d B/s allows no less than %v", size, took, rate, least)
		}
		if st := server.Stats(); st.BitswapBytesUp != size {
			t.Fatalf("the server counts %d bytes up over Bitswap, want %d", st.BitswapBytesUp, size)
		}
	})
}
