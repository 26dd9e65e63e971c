package bitswap

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// mapBlocks serves the blocks it holds.
type mapBlocks struct {
	mu sync.Mutex
	m  map[cid.Cid][]byte
}

func (b *mapBlocks) Block(_ context.Context, c cid.Cid) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.m[c]
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return d, nil
}

func (b *mapBlocks) BlockSize(_ context.Context, c cid.Cid) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.m[c]
	return len(d), ok
}

func rawBlock(t *testing.T, s string) blocks.Block {
	t.Helper()
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocks.NewBlockWithCid([]byte(s), c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// hosts makes n linked and connected mocknet hosts.
func hosts(t *testing.T, n int) []host.Host {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var hs []host.Host
	for range n {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return hs
}

// next waits for the link's next message.
func next(t *testing.T, ctx context.Context, l *Link) Message {
	t.Helper()
	select {
	case m := <-l.Incoming():
		return m
	case <-ctx.Done():
		t.Fatal("no message from the peer in time")
		return Message{}
	}
}

// TestLinkWantsAndServes: a link gets a block it wants of an exchange that
// serves it, and DONT_HAVE for one the exchange does not serve; the
// server counts the bytes it sent and asks Sending first. (It read the
// count of Sent as soon as the block came, and failed about once in 100
// runs under -race: Sent is told after the write returns.)
func TestLinkWantsAndServes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := hosts(t, 2)
	have, lack := rawBlock(t, "served"), rawBlock(t, "not served")
	var sending, sent int
	var mu sync.Mutex
	wasSent := make(chan struct{}, 1)
	a := New(hs[0], Config{
		Blocks: &mapBlocks{m: map[cid.Cid][]byte{have.Cid(): have.RawData()}},
		Sending: func(_ context.Context, _ peer.ID, n int) (func(error), error) {
			mu.Lock()
			sending += n
			mu.Unlock()
			return nil, nil
		},
		Sent: func(_ peer.ID, n int) {
			mu.Lock()
			sent += n
			mu.Unlock()
			select {
			case wasSent <- struct{}{}:
			default:
			}
		},
		Logger: quiet(),
	})
	defer a.Close()
	b := New(hs[1], Config{Blocks: &mapBlocks{}, Logger: quiet()})
	defer b.Close()
	l, err := b.Link(hs[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Want(ctx, []cid.Cid{have.Cid(), lack.Cid()}, nil); err != nil {
		t.Fatal(err)
	}
	var gotBlock, gotDontHave bool
	for !gotBlock || !gotDontHave {
		m := next(t, ctx, l)
		if len(m.Strays) > 0 {
			t.Fatalf("strays %v", m.Strays)
		}
		for _, blk := range m.Blocks {
			if !blk.Cid().Equals(have.Cid()) || string(blk.RawData()) != "served" {
				t.Fatalf("got block %s %q", blk.Cid(), blk.RawData())
			}
			gotBlock = true
		}
		for _, c := range m.DontHaves {
			if !c.Equals(lack.Cid()) {
				t.Fatalf("DONT_HAVE of %s", c)
			}
			gotDontHave = true
		}
	}
	// Sent is told after the write returns, which may be after the block
	// was read.
	select {
	case <-wasSent:
	case <-ctx.Done():
		t.Fatal("Sent was never told of the block")
	}
	mu.Lock()
	defer mu.Unlock()
	if sending != len("served") || sent != len("served") {
		t.Fatalf("Sending told %d bytes, Sent %d; want %d each", sending, sent, len("served"))
	}
}

// TestStrayAndRefused: a block nobody asked for reaches the links as a
// stray; a peer that Admit refuses is heard not at all, and no link to it
// opens.
func TestStrayAndRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := hosts(t, 3)
	refused := hs[2].ID()
	dropped := make(chan peer.ID, 1)
	x := New(hs[0], Config{
		Blocks: &mapBlocks{}, Admit: func(p peer.ID) bool { return p != refused }, Logger: quiet(),
		Refused: func(p peer.ID) {
			select {
			case dropped <- p:
			default:
			}
		},
	})
	defer x.Close()
	if _, err := x.Link(refused); !errors.Is(err, ErrRefused) {
		t.Fatalf("link to a refused peer: %v, want ErrRefused", err)
	}
	l, err := x.Link(hs[1].ID())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	stray := rawBlock(t, "unasked")
	m := bsmsg.New(false)
	m.AddBlock(stray)
	// The refused peer's message is dropped before the stray's is sent,
	// so the link's first message is the stray.
	if err := bsnet.NewFromIpfsHost(hs[2]).SendMessage(ctx, hs[0].ID(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-dropped:
		if p != refused {
			t.Fatalf("dropped a message of %s, not of the refused %s", p, refused)
		}
	case <-ctx.Done():
		t.Fatal("the refused peer's message never arrived")
	}
	if err := bsnet.NewFromIpfsHost(hs[1]).SendMessage(ctx, hs[0].ID(), m); err != nil {
		t.Fatal(err)
	}
	got := next(t, ctx, l)
	if len(got.Blocks) != 0 || len(got.Strays) != 1 || !got.Strays[0].Equals(stray.Cid()) {
		t.Fatalf("got %+v, want the stray %s alone", got, stray.Cid())
	}
	if x.Strays() != 1 {
		t.Fatalf("%d strays counted, want 1", x.Strays())
	}
}

// TestReadOnly: the server's blockstore writes nothing.
func TestReadOnly(t *testing.T) {
	r := readOnly{&mapBlocks{}}
	b := rawBlock(t, "x")
	if err := r.Put(context.Background(), b); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Put: %v", err)
	}
	if err := r.DeleteBlock(context.Background(), b.Cid()); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("DeleteBlock: %v", err)
	}
	if _, err := r.GetSize(context.Background(), b.Cid()); !ipld.IsNotFound(err) {
		t.Fatalf("GetSize of a block not served: %v", err)
	}
}

// nopReceiver takes a peer's messages and does nothing.
type nopReceiver struct{}

func (nopReceiver) ReceiveMessage(context.Context, peer.ID, bsmsg.BitSwapMessage) {}
func (nopReceiver) ReceiveError(error)                                            {}
func (nopReceiver) PeerConnected(peer.ID)                                         {}
func (nopReceiver) PeerDisconnected(peer.ID)                                      {}

// TestWantedAgainAnsweredTwice: a block wanted, cancelled and wanted again
// may come twice (the first crossed the cancel): both are answers, not
// strays. A third is a stray.
func TestWantedAgainAnsweredTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := hosts(t, 2)
	x := New(hs[0], Config{Blocks: &mapBlocks{}, Logger: quiet()})
	defer x.Close()
	server := bsnet.NewFromIpfsHost(hs[1])
	server.Start(nopReceiver{})
	defer server.Stop()
	l, err := x.Link(hs[1].ID())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := rawBlock(t, "twice")
	for _, w := range []struct{ want, cancel []cid.Cid }{{want: []cid.Cid{b.Cid()}}, {cancel: []cid.Cid{b.Cid()}}, {want: []cid.Cid{b.Cid()}}} {
		if err := l.Want(ctx, w.want, w.cancel); err != nil {
			t.Fatal(err)
		}
	}
	m := bsmsg.New(false)
	m.AddBlock(b)
	for k := range 3 {
		if err := server.SendMessage(ctx, hs[0].ID(), m); err != nil {
			t.Fatal(err)
		}
		got := next(t, ctx, l)
		if k < 2 && (len(got.Blocks) != 1 || len(got.Strays) != 0) {
			t.Fatalf("answer %d: %d blocks, strays %v; want the block", k+1, len(got.Blocks), got.Strays)
		}
		if k == 2 && len(got.Strays) != 1 {
			t.Fatalf("a third copy: %d blocks, strays %v; want a stray", len(got.Blocks), got.Strays)
		}
	}
}

// TestWantedTwiceAnsweredOnce: a block wanted by two links to one peer,
// or twice by one link, is one entry of the peer's wantlist, which the
// peer answers once: that answer leaves nothing asked of the peer. Before,
// the entry stayed (one want still counted) and took a place of maxAsked
// for good.
func TestWantedTwiceAnsweredOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := hosts(t, 2)
	x := New(hs[0], Config{Blocks: &mapBlocks{}, Logger: quiet()})
	defer x.Close()
	server := bsnet.NewFromIpfsHost(hs[1])
	server.Start(nopReceiver{})
	defer server.Stop()
	l1, err := x.Link(hs[1].ID())
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := x.Link(hs[1].ID())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	b := rawBlock(t, "once")
	for _, l := range []*Link{l1, l1, l2} {
		if err := l.Want(ctx, []cid.Cid{b.Cid()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	m := bsmsg.New(false)
	m.AddBlock(b)
	if err := server.SendMessage(ctx, hs[0].ID(), m); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Link{l1, l2} {
		if got := next(t, ctx, l); len(got.Blocks) != 1 {
			t.Fatalf("%d blocks, strays %v; want the block", len(got.Blocks), got.Strays)
		}
	}
	if left := askedOf(x, hs[1].ID()); len(left) != 0 {
		t.Fatalf("after the one answer, %d CIDs are still asked of the peer: %v", len(left), left)
	}
}

// askedOf returns what x has outstanding with p: the CIDs and whether
// each is cancelled.
func askedOf(x *Exchange, p peer.ID) map[cid.Cid]bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[cid.Cid]bool{}
	for c, a := range x.asked[p] {
		out[c] = a.cancelled
	}
	return out
}

// TestDontHaveForgotten: a want answered with DONT_HAVE leaves nothing in
// the table of what was asked of the peer, as one answered with a block
// does. Before, it stayed until the peer disconnected, and a long-lived
// connection filled the table (maxAsked) and every want then failed.
func TestDontHaveForgotten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := hosts(t, 2)
	have, lack := rawBlock(t, "served"), rawBlock(t, "not served")
	a := New(hs[0], Config{Blocks: &mapBlocks{m: map[cid.Cid][]byte{have.Cid(): have.RawData()}}, Logger: quiet()})
	defer a.Close()
	b := New(hs[1], Config{Blocks: &mapBlocks{}, Logger: quiet()})
	defer b.Close()
	l, err := b.Link(hs[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Asked twice in one message: one entry, answered once.
	if err := l.Want(ctx, []cid.Cid{have.Cid(), lack.Cid(), lack.Cid()}, nil); err != nil {
		t.Fatal(err)
	}
	for gotBlock, gotDontHave := false, false; !gotBlock || !gotDontHave; {
		m := next(t, ctx, l)
		gotBlock = gotBlock || len(m.Blocks) > 0
		gotDontHave = gotDontHave || len(m.DontHaves) > 0
	}
	if left := askedOf(b, hs[0].ID()); len(left) != 0 {
		t.Fatalf("after a block and a DONT_HAVE, %d CIDs are still asked of the peer: %v", len(left), left)
	}
}

// cancelRecorder passes on the CANCELs a peer receives, one message at a
// time.
type cancelRecorder struct{ got chan []cid.Cid }

func (r cancelRecorder) ReceiveMessage(_ context.Context, _ peer.ID, m bsmsg.BitSwapMessage) {
	var cs []cid.Cid
	for _, e := range m.Wantlist() {
		if e.Cancel {
			cs = append(cs, e.Cid)
		}
	}
	if len(cs) > 0 {
		r.got <- cs
	}
}
func (cancelRecorder) ReceiveError(error)       {}
func (cancelRecorder) PeerConnected(peer.ID)    {}
func (cancelRecorder) PeerDisconnected(peer.ID) {}

// TestLinkCloseCancels: a link closed with wants still open sends the
// peer a CANCEL of each that no other link to the peer still wants, and
// what it asked is no longer counted as live (it is dropped once the
// table fills, or a crossing block answers it). Before, nothing was sent
// and the wants stayed live until the peer disconnected.
func TestLinkCloseCancels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := hosts(t, 2)
	x := New(hs[0], Config{Blocks: &mapBlocks{}, Logger: quiet()})
	defer x.Close()
	rec := cancelRecorder{got: make(chan []cid.Cid, 4)}
	server := bsnet.NewFromIpfsHost(hs[1])
	server.Start(rec)
	defer server.Stop()
	p := hs[1].ID()
	c1, c2 := rawBlock(t, "one").Cid(), rawBlock(t, "two").Cid()
	l1, err := x.Link(p)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := x.Link(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := l1.Want(ctx, []cid.Cid{c1, c2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l2.Want(ctx, []cid.Cid{c1}, nil); err != nil {
		t.Fatal(err)
	}
	wait := func(want cid.Cid) {
		t.Helper()
		select {
		case cs := <-rec.got:
			if len(cs) != 1 || !cs[0].Equals(want) {
				t.Fatalf("the peer got CANCELs of %v, want of %s alone", cs, want)
			}
		case <-ctx.Done():
			t.Fatalf("no CANCEL of %s reached the peer", want)
		}
	}
	l1.Close()
	wait(c2) // l2 still wants c1
	if got := askedOf(x, p); len(got) != 2 || got[c1] || !got[c2] {
		t.Fatalf("asked of the peer: %v; want c1 live and c2 cancelled", got)
	}
	l2.Close()
	wait(c1)
	if got := askedOf(x, p); len(got) != 2 || !got[c1] || !got[c2] {
		t.Fatalf("asked of the peer: %v; want both cancelled", got)
	}
	if err := l2.Want(ctx, []cid.Cid{c1}, nil); !errors.Is(err, ErrLinkDone) {
		t.Fatalf("Want on a closed link: %v, want ErrLinkDone", err)
	}
}

// TestClosedExchangeReadsNothing: a Bitswap stream a peer opened before
// Close is reset by Close, so nothing more is read from it. Before,
// boxo's network went on reading it and handing its messages on.
func TestClosedExchangeReadsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := hosts(t, 2)
	var mu sync.Mutex
	received := 0
	heard := make(chan struct{}, 1)
	x := New(hs[0], Config{Blocks: &mapBlocks{}, Logger: quiet(), Received: func(peer.ID, int) {
		mu.Lock()
		received++
		mu.Unlock()
		select {
		case heard <- struct{}{}:
		default:
		}
	}})
	defer x.Close()
	st, err := hs[1].NewStream(ctx, hs[0].ID(), bsnet.ProtocolBitswap)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	m := bsmsg.New(false)
	m.AddBlock(rawBlock(t, "before"))
	if err := m.ToNetV1(st); err != nil {
		t.Fatal(err)
	}
	select {
	case <-heard:
	case <-ctx.Done():
		t.Fatal("the first message was never read")
	}
	x.Close()
	m = bsmsg.New(false)
	m.AddBlock(rawBlock(t, "after"))
	_ = m.ToNetV1(st) // fails once the reset is seen
	// mocknet's streams have no read deadline: the read runs on its own,
	// and the stream's deferred Reset ends it if the test fails.
	read := make(chan error, 1)
	go func() {
		_, err := st.Read(make([]byte, 1))
		read <- err
	}()
	select {
	case err := <-read:
		if !errors.Is(err, network.ErrReset) {
			t.Fatalf("reading the stream after the exchange closed: %v; want it reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream was still open 10 s after the exchange closed")
	}
	mu.Lock()
	defer mu.Unlock()
	if received != 1 {
		t.Fatalf("%d messages with blocks handed on, want only the one before Close", received)
	}
}
