package swarm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/bitfield"
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

// arrival is when a fetcher got a block, on the virtual clock.
type arrival struct {
	who string
	at  time.Time
}

// TestBitswapPeerTakesTurns: a seeder with one upload slot serves a
// stream fetcher (ours) and a Bitswap fetcher (boxo's network) at once;
// they are never sent blocks at the same time. Each 256 KiB block waits
// at least 0.75 s for the per-peer cap (256 KiB/s, a 64 KiB burst) while
// it holds the slot, and the links are instant, so each block's last
// 0.75 s before it arrives is inside its send: those intervals of the two
// fetchers never overlap. Both fetches complete. Before, boxo's server
// had its own workers and sent to the Bitswap peer beside the slot
// holder.
func TestBitswapPeerTakesTurns(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const rate, size, chunk = 256 << 10, 2 << 20, 256 << 10
		mn := cappedMesh(t, 3, 0)
		hosts := mn.Hosts()
		data := randomData(size, 43)
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root := build(t, blocks, "data.bin", data, chunk)
		l, err := BuildLayout(ctx, blocks, root)
		if err != nil {
			t.Fatal(err)
		}
		seeder := New(hosts[0], blocks, Config{Logger: quiet(), Bitswap: true, UploadSlots: 1, PeerUploadRate: rate})
		defer seeder.Close()
		seeder.Serve(root, &memSource{l: l, data: data})
		fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		defer fetcher.Close()
		client := newBSClient(t, hosts[2], int(l.NumChunks()))
		var cs []cid.Cid
		for _, ch := range l.Chunks {
			cs = append(cs, ch.CID)
		}

		var (
			mu       sync.Mutex
			arrivals []arrival
			wg       sync.WaitGroup
			fetchErr error
		)
		got := func(who string) {
			mu.Lock()
			arrivals = append(arrivals, arrival{who, time.Now()})
			mu.Unlock()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dest := filepath.Join(t.TempDir(), "data.bin")
			_, fetchErr = fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Verified: func(int64) { got("stream") }})
			if fetchErr == nil {
				if b, _ := os.ReadFile(dest); !bytes.Equal(b, data) {
					fetchErr = errors.New("the stream fetcher's file differs")
				}
			}
		}()
		if err := client.want(ctx, seeder.host.ID(), cs); err != nil {
			t.Fatal(err)
		}
		for k := range cs {
			select {
			case <-client.blocks:
				got("bitswap")
			case <-ctx.Done():
				t.Fatalf("the Bitswap fetcher got %d blocks of %d", k, len(cs))
			}
		}
		wg.Wait()
		if fetchErr != nil {
			t.Fatal(fetchErr)
		}
		slices.SortStableFunc(arrivals, func(a, b arrival) int { return a.at.Compare(b.at) })
		const inSend = 750 * time.Millisecond // (chunk - burst) / rate
		var seq []string
		for k, a := range arrivals {
			seq = append(seq, fmt.Sprintf("%s@%v", a.who, a.at.Sub(arrivals[0].at).Round(time.Millisecond)))
			if k > 0 && a.who != arrivals[k-1].who && a.at.Sub(arrivals[k-1].at) < inSend {
				t.Errorf("%s got a block %v after %s did: both were being sent at once", a.who, a.at.Sub(arrivals[k-1].at), arrivals[k-1].who)
			}
		}
		t.Logf("arrivals: %s", strings.Join(seq, " "))
		if st := seeder.Stats(); st.Chokes == 0 {
			t.Error("the seeder never made anyone wait with one slot and two fetchers")
		}
	})
}

// TestBitswapFreeRiderServed: a Bitswap peer cannot upload to us, so it
// never earns credit with the choker: beside two stream fetchers that
// each sent the seeder a file first, it gets only the optimistic unchokes
// (every third grant of the one slot). Asking once both traders have had
// a block, it still gets the whole file, and finishes after both. Before,
// boxo's workers served it beside the slot, and it finished first.
func TestBitswapFreeRiderServed(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const rate, chunk = 512 << 10, 128 << 10
		mn := cappedMesh(t, 4, 0)
		hosts := mn.Hosts()
		dir := t.TempDir()
		xBlocks := &memBlocks{m: map[cid.Cid][]byte{}}
		xData := randomData(1<<20, 44)
		xRoot := build(t, xBlocks, "x.bin", xData, chunk)
		xl, err := BuildLayout(ctx, xBlocks, xRoot)
		if err != nil {
			t.Fatal(err)
		}
		x := New(hosts[0], xBlocks, Config{Logger: quiet(), Bitswap: true, UploadSlots: 1, PeerUploadRate: rate, Seed: 1})
		defer x.Close()
		x.Serve(xRoot, &memSource{l: xl, data: xData})

		// A and C each serve a file that X fetches first: their credit.
		var traders []*Swarm
		for k, h := range hosts[1:3] {
			b := &memBlocks{m: map[cid.Cid][]byte{}}
			d := randomData(256<<10, uint64(45+k))
			r := build(t, b, "t.bin", d, chunk)
			tl, err := BuildLayout(ctx, b, r)
			if err != nil {
				t.Fatal(err)
			}
			s := New(h, b, Config{Logger: quiet(), Seed: uint64(2 + k)})
			defer s.Close()
			s.Serve(r, &memSource{l: tl, data: d})
			if _, err := x.Fetch(ctx, r, FetchOptions{Dest: filepath.Join(dir, fmt.Sprintf("x-got-%d", k))}); err != nil {
				t.Fatal(err)
			}
			traders = append(traders, s)
		}
		client := newBSClient(t, hosts[3], int(xl.NumChunks()))
		var cs []cid.Cid
		for _, ch := range xl.Chunks {
			cs = append(cs, ch.CID)
		}

		start := time.Now()
		var (
			wg, started sync.WaitGroup
			finished    [2]time.Duration
			errs        [2]error
		)
		for k, s := range traders {
			wg.Add(1)
			started.Add(1)
			go func() {
				defer wg.Done()
				dest := filepath.Join(dir, fmt.Sprintf("trader-%d", k))
				var once sync.Once
				_, errs[k] = s.Fetch(ctx, xRoot, FetchOptions{Dest: dest, Verified: func(int64) { once.Do(started.Done) }})
				finished[k] = time.Since(start)
				if errs[k] == nil {
					if b, _ := os.ReadFile(dest); !bytes.Equal(b, xData) {
						errs[k] = errors.New("file differs")
					}
				}
			}()
		}
		// The rider asks once both traders have had a block: it waits in
		// line from the start.
		started.Wait()
		if err := client.want(ctx, x.host.ID(), cs); err != nil {
			t.Fatal(err)
		}
		client.await(t, ctx, len(cs))
		riderDone := time.Since(start)
		wg.Wait()
		for k, err := range errs {
			if err != nil {
				t.Fatalf("trader %d: %v", k, err)
			}
		}
		t.Logf("traders finished at %v and %v, the Bitswap free rider at %v", finished[0], finished[1], riderDone)
		if riderDone <= max(finished[0], finished[1]) {
			t.Errorf("the Bitswap peer, which sent the seeder nothing, finished at %v, before the traders (%v, %v)", riderDone, finished[0], finished[1])
		}
	})
}

// TestBitswapWantFloodCapped: a Bitswap peer that wants every block again
// as soon as it arrives (a flood of wants, each of which Bitswap answers
// anew) gets no more than the per-peer cap, and a stream fetcher beside
// it gets its file as fast as the cap lets it alone. Before the
// limiter was held for the peer, the flooder got 367,656,960 B in the
// 3.75 s the stream fetch took (the cap allows 1 MiB).
func TestBitswapWantFloodCapped(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const rate, size, chunk = 256 << 10, 1 << 20, 64 << 10
		mn := cappedMesh(t, 3, 0)
		hosts := mn.Hosts()
		data := randomData(size, 47)
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root := build(t, blocks, "data.bin", data, chunk)
		l, err := BuildLayout(ctx, blocks, root)
		if err != nil {
			t.Fatal(err)
		}
		seeder := New(hosts[0], blocks, Config{Logger: quiet(), Bitswap: true, PeerUploadRate: rate})
		defer seeder.Close()
		seeder.Serve(root, &memSource{l: l, data: data})
		fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		defer fetcher.Close()
		flooder := newBSClient(t, hosts[2], int(l.NumChunks()))
		var cs []cid.Cid
		for _, ch := range l.Chunks {
			cs = append(cs, ch.CID)
		}

		start := time.Now()
		if err := flooder.want(ctx, seeder.host.ID(), cs); err != nil {
			t.Fatal(err)
		}
		fetched := make(chan error, 1)
		var took time.Duration
		go func() {
			_, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: filepath.Join(t.TempDir(), "data.bin")})
			took = time.Since(start)
			fetched <- err
		}()
		flooded := 0
	flood:
		for {
			select {
			case c := <-flooder.blocks:
				flooded += chunk
				if err := flooder.want(ctx, seeder.host.ID(), []cid.Cid{c}); err != nil {
					t.Fatal(err)
				}
			case err := <-fetched:
				if err != nil {
					t.Fatal(err)
				}
				break flood
			}
		}
		burst := newLimiter(rate).Burst()
		most := int(float64(rate)*took.Seconds()) + burst
		alone := time.Duration(float64(size-burst) / rate * float64(time.Second))
		t.Logf("the flooder got %d bytes in %v (the cap allows %d); the stream fetcher took %v (alone at the cap: %v)", flooded, took, most, took, alone)
		if flooded > most {
			t.Errorf("the flooding Bitswap peer got %d bytes in %v; its cap of %d B/s allows %d", flooded, took, rate, most)
		}
		if took > alone+alone/4 {
			t.Errorf("the stream fetcher took %v beside the flood; alone at its cap it takes %v", took, alone)
		}
	})
}

// TestBitswapServesChunkAtLaterIndex: a partial download that holds a
// repeated chunk only at its second index (the first one not yet
// fetched, or left out by a filtered fetch) serves it over Bitswap.
// Before find looked at every index of the chunk, it saw only the first,
// which the source lacked, and answered not found.
func TestBitswapServesChunkAtLaterIndex(t *testing.T) {
	ctx := context.Background()
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	chunk := 64 << 10
	data := append(randomData(chunk, 11), bytes.Repeat([]byte{7}, 2*chunk)...)
	root := build(t, blocks, "", data, chunk)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Chunks[1].CID.Equals(l.Chunks[2].CID) {
		t.Fatal("chunks 1 and 2 differ")
	}
	mn, err := mocknet.FullMeshLinked(1)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	s := New(mn.Hosts()[0], blocks, Config{Logger: quiet()})
	defer s.Close()
	have := bitfield.New(l.NumChunks())
	have.Set(2)
	s.Serve(root, &partialSource{memSource: memSource{l: l, data: data}, have: have})
	c := l.Chunks[2].CID
	if n, ok := (bsView{s}).BlockSize(ctx, c); !ok || n != chunk {
		t.Fatalf("BlockSize of the chunk held at index 2: %d, %v", n, ok)
	}
	b, err := bsView{s}.Block(ctx, c)
	if err != nil || !bytes.Equal(b, data[2*chunk:]) {
		t.Fatalf("Block of the chunk held at index 2: %d bytes, %v", len(b), err)
	}
	if _, err := (bsView{s}).Block(ctx, l.Chunks[0].CID); !ipld.IsNotFound(err) {
		t.Fatalf("Block of chunk 0, not held: %v, want not found", err)
	}
}
