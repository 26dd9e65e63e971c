package node

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/swarm/wire"
)

// TestFourSeeders: a fetch from four seeders gets chunks from each. On
// mocknet, in virtual time: over loopback on the wall clock, a loaded
// machine can bring one session up so late that every chunk has been asked
// of the others.
func TestFourSeeders(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		path, data := randomFile(t, t.TempDir(), "big.bin", 32<<20, 2)
		mn, nodes := mockNodes(t, 5)
		seeders, f := nodes[:4], nodes[4]
		var hints []peer.AddrInfo
		var target Target
		for _, s := range seeders {
			sh, err := s.Share(ctx, path, ShareOptions{})
			if err != nil {
				t.Fatal(err)
			}
			target.Root = sh.Root
			hints = append(hints, s.AddrInfo())
			link(t, mn, s, f, 16e6) // 32 MiB in half a second from all four
		}
		dest := filepath.Join(t.TempDir(), "big.bin")
		res, err := f.Fetch(ctx, target, dest, FetchOptions{Peers: hints})
		if err != nil {
			t.Fatal(err)
		}
		sameFile(t, dest, data)
		for i, s := range seeders {
			got := res.Progress.PerPeer[s.ID()]
			t.Logf("seeder %d served %d bytes (%.0f%%)", i, got, 100*float64(got)/float64(len(data)))
			if got == 0 {
				t.Errorf("seeder %d served nothing", i)
			}
		}
	})
}

func TestFindThroughDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	boot := startNode(t, testConfig(t))
	cfgA := testConfig(t)
	cfgA.Bootstrap = bootstrapOf(boot)
	a := startNode(t, cfgA)
	path, data := randomFile(t, t.TempDir(), "doc.bin", 3<<20, 3)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the provider record is stored on the bootstrap node.
	if err := a.dht.Provide(ctx, sh.Root); err != nil {
		t.Fatal(err)
	}
	cfgC := testConfig(t)
	cfgC.Bootstrap = bootstrapOf(boot)
	c := startNode(t, cfgC)
	dest := filepath.Join(t.TempDir(), "doc.bin")
	res, err := c.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)
	if res.Progress.PerPeer[a.ID()] != int64(len(data)) {
		t.Fatalf("A served %d of %d bytes; per peer %v", res.Progress.PerPeer[a.ID()], len(data), res.Progress.PerPeer)
	}
}

func TestSeederDiesMidTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, data := randomFile(t, t.TempDir(), "f.bin", 48<<20, 4)
	a := startNode(t, testConfig(t))
	a2 := startNode(t, testConfig(t))
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a2.Share(ctx, path, ShareOptions{}); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, testConfig(t))
	var once sync.Once
	killed := make(chan struct{})
	dest := filepath.Join(t.TempDir(), "f.bin")
	_, err = b.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{
		Peers: []peer.AddrInfo{a.AddrInfo(), a2.AddrInfo()},
		Progress: func(p Progress) {
			if p.Chunks > 0 && !p.Done {
				once.Do(func() {
					go func() { a2.Close(); close(killed) }()
				})
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-killed
	sameFile(t, dest, data)
}

// TestResumeFetchesNoVerifiedChunkTwice: a fetch cancelled half-way
// leaves its partial file, and the next fetch of the root takes exactly
// the chunks it lacks. The seeder sends at 32 MiB/s, so that the fetch
// lasts some 2 s: Progress comes every 50 ms or so, and at loopback speed
// the whole 64 MiB could arrive between two calls, before any cancel (1 run
// in 30 did so).
func TestResumeFetchesNoVerifiedChunkTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, data := randomFile(t, t.TempDir(), "f.bin", 64<<20, 5)
	cfg := testConfig(t)
	cfg.UploadRate = 32 << 20
	a := startNode(t, cfg)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, testConfig(t))
	dest := filepath.Join(t.TempDir(), "f.bin")
	fctx, stop := context.WithCancel(ctx)
	var atCancel int64
	_, err = b.Fetch(fctx, Target{Root: sh.Root}, dest, FetchOptions{
		Peers: []peer.AddrInfo{a.AddrInfo()},
		Progress: func(p Progress) {
			if p.Chunks >= p.Of/2 && atCancel == 0 {
				atCancel = p.Chunks
				stop()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first fetch = %v, want it cancelled half-way", err)
	}
	// Nothing half-fetched stands at the destination; the partial waits
	// beside it.
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("after the cancel, %s exists (err %v)", dest, err)
	}
	if _, err := os.Stat(swarm.PartialPath(dest, sh.Root)); err != nil {
		t.Fatalf("no partial file to resume from: %v", err)
	}
	before := b.Stats().BytesDown
	res, err := b.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Peers: []peer.AddrInfo{a.AddrInfo()}})
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)
	got := b.Stats().BytesDown - before
	chunk := int64(256 << 10)
	t.Logf("cancelled at %d chunks; resumed with %d of %d; second fetch received %d bytes", atCancel, res.Progress.Resumed, res.Progress.Of, got)
	if res.Progress.Resumed < atCancel {
		t.Fatalf("resumed %d chunks, but %d were verified before the cancel", res.Progress.Resumed, atCancel)
	}
	if want := (res.Progress.Of - res.Progress.Resumed) * chunk; got != want {
		t.Fatalf("second fetch received %d bytes, want exactly the %d missing", got, want)
	}
}

// liar serves the real manifest (from honest) but garbage chunks. It
// returns its address and its host.
func startLiar(t *testing.T, honest *Node) (peer.AddrInfo, host.Host) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { h.Close(); wg.Wait() })
	h.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
		wg.Add(1)
		defer wg.Done()
		defer st.Reset()
		r, w := wire.NewReader(st, 0), wire.NewWriter(st)
		m, err := r.Read()
		hello, ok := m.(*wire.Hello)
		if err != nil || !ok {
			return
		}
		l, err := swarm.BuildLayout(context.Background(), honest.store, hello.Root)
		if err != nil {
			return
		}
		w.Write(&wire.HaveAll{})
		w.Flush()
		for {
			m, err := r.Read()
			if err != nil {
				return
			}
			switch m := m.(type) {
			case *wire.WantNode:
				b, _ := honest.store.GetBlock(context.Background(), m.CID)
				w.Write(&wire.Node{CID: m.CID, Data: b})
			case *wire.Want:
				for _, i := range m.Indices {
					junk := make([]byte, l.Chunks[i].Size)
					rand.Read(junk)
					w.Write(&wire.Block{Index: i, Data: junk})
				}
			}
			if w.Flush() != nil {
				return
			}
		}
	})
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}, h
}

func TestCorruptPeerBanned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, data := randomFile(t, t.TempDir(), "f.bin", 16<<20, 6)
	a := startNode(t, testConfig(t))
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	liar, liarHost := startLiar(t, a)
	b := startNode(t, testConfig(t))
	conns, err := b.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	// The liar is the fetch's only source until it is banned; then the
	// honest sharer is connected, and the fetch, which looks for sources
	// again, finishes from it. Asked of both at once, the honest one
	// could serve every chunk before the liar got a single WANT (1 run in
	// 30 did, even with the honest one capped).
	banned := make(chan struct{})
	var once sync.Once
	opts := FetchOptions{Progress: func(p Progress) {
		if p.Bans > 0 {
			once.Do(func() { close(banned) })
		}
	}}
	joined := make(chan error, 1)
	go func() {
		select {
		case <-banned:
			joined <- b.Connect(ctx, a.AddrInfo())
		case <-ctx.Done():
			joined <- ctx.Err()
		}
	}()
	res, err := b.Fetch(ctx, Target{Root: sh.Root, Hint: &liar}, dest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatalf("connecting the honest sharer after the ban: %v", err)
	}
	sameFile(t, dest, data)
	if !slices.Contains(b.Bans(), liar.ID) {
		t.Fatalf("liar %s not banned; bans %v", liar.ID, b.Bans())
	}
	if b.Stats().ChunksRejected == 0 || res.Progress.PerPeer[liar.ID] != 0 {
		t.Fatalf("rejected %d chunks; liar credited with %d bytes", b.Stats().ChunksRejected, res.Progress.PerPeer[liar.ID])
	}
	// Banned means cut off: the connection closes, and neither side can
	// connect again while the ban lasts.
	timeout := time.After(10 * time.Second)
	for b.host.Network().Connectedness(liar.ID) == network.Connected {
		select {
		case <-conns.Out():
		case <-timeout:
			t.Fatal("still connected to the banned liar 10 s after the fetch")
		}
	}
	if err := b.Connect(ctx, liar); err == nil {
		t.Error("connected to the banned liar again")
	}
	liarHost.Connect(ctx, b.AddrInfo())
	if b.host.Network().Connectedness(liar.ID) == network.Connected {
		t.Error("the banned liar connected again")
	}
}
