package swarm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// stallNet is a mocknet of a seeder, n partial peers that have only chunk
// 0 of root, and a fetcher linked to the partial peers but not to the
// seeder: the fetcher is cut off from the only full source, as the half of
// a partition that holds no seeder is.
type stallNet struct {
	mn       mocknet.Mocknet
	seeder   host.Host
	partials []host.Host
	fetcher  *Swarm
	root     cid.Cid
	data     []byte
}

func newStallNet(t *testing.T, n int) *stallNet {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var hs []host.Host
	for range n + 2 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := randomData(4*16384, 11)
	root := build(t, blocks, "f", data, 16384)
	l, err := BuildLayout(context.Background(), blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	sn := &stallNet{mn: mn, seeder: hs[0], partials: hs[1 : n+1], root: root, data: data}
	seeder := New(hs[0], blocks, Config{Logger: quiet()})
	t.Cleanup(func() { seeder.Close() })
	seeder.Serve(root, &memSource{l: l, data: data})
	have := bitfield.New(l.NumChunks())
	have.Set(0)
	for _, h := range sn.partials {
		p := New(h, blocks, Config{Logger: quiet()})
		t.Cleanup(func() { p.Close() })
		p.Serve(root, &partialSource{memSource: memSource{l: l, data: data}, have: have})
		if _, err := mn.LinkPeers(hs[n+1].ID(), h.ID()); err != nil {
			t.Fatal(err)
		}
	}
	sn.fetcher = New(hs[n+1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
	t.Cleanup(func() { sn.fetcher.Close() })
	return sn
}

// hints are the partial peers, then the seeder.
func (sn *stallNet) hints() []peer.AddrInfo {
	var hints []peer.AddrInfo
	for _, h := range append(append([]host.Host(nil), sn.partials...), sn.seeder) {
		hints = append(hints, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	return hints
}

// TestFetchAfterHeal: a fetcher with sessions to more peers than it needs
// (wellConnected), all of which have only a chunk it got from them, while
// the seeder is out of reach; the link to the seeder comes back. The
// fetcher must dial its hint again and finish. It used to count a peer
// with any chunk as a source, think itself well connected, stop looking,
// and wait without end: the stall of the partition scenario, where the
// cut-off half holds a chunk or two after the heal.
func TestFetchAfterHeal(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		sn := newStallNet(t, wellConnected)
		dest := filepath.Join(t.TempDir(), "f")
		first := make(chan struct{})
		type result struct {
			res *Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := sn.fetcher.Fetch(ctx, sn.root, FetchOptions{Dest: dest, Hints: sn.hints(), NoConnected: true,
				Verified: func(i int64) {
					if i == 0 {
						close(first)
					}
				}})
			done <- result{res, err}
		}()
		select {
		case <-first:
		case r := <-done:
			t.Fatalf("the fetch ended before the heal: %v", r.err)
		}
		// The partial peers have nothing more; let a few lookup rounds
		// pass with the seeder out of reach, then heal.
		time.Sleep(10 * time.Second)
		if _, err := sn.mn.LinkPeers(sn.fetcher.host.ID(), sn.seeder.ID()); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		r := <-done
		if r.err != nil {
			t.Fatalf("fetch after the heal: %v", r.err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, sn.data) {
			t.Fatal("fetched file differs")
		}
		// Within a round or two of RediscoverEvery (2 s) of the heal, in
		// virtual time (0 to 2 s in the runs seen): the fetch dials its
		// hints again because it counts no source, not only because it
		// stalled (at StallTimeout/8, 15 s, which would be 5 s after).
		if took := time.Since(healed); took > 2*2*time.Second {
			t.Errorf("finished %s after the heal, want within two rounds of RediscoverEvery (2 s)", took)
		}
		if r.res.Progress.PerPeer[sn.seeder.ID()] == 0 {
			t.Errorf("the seeder sent nothing: %v", r.res.Progress.PerPeer)
		}
	})
}

// TestFetchStalls: a fetch that gets nothing for StallTimeout ends with
// ErrStalled and says which peers it tried and what each did: one peer
// claims every chunk and never sends one (so it stays a "source" for good),
// another has only what the fetch has, the seeder cannot be reached. It
// used to wait without end and say nothing.
func TestFetchStalls(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		sn := newStallNet(t, 1)
		staller, err := sn.mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sn.mn.LinkPeers(sn.fetcher.host.ID(), staller.ID()); err != nil {
			t.Fatal(err)
		}
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		build(t, blocks, "f", sn.data, 16384)
		hostileSeeder(t, staller, blocks, &wire.HaveAll{}, func(wire.Msg) []byte { return nil })
		hints := append(sn.hints(), peer.AddrInfo{ID: staller.ID()})
		dest := filepath.Join(t.TempDir(), "f")
		last := time.Now() // of progress: the manifest comes at once, then chunk 0
		_, err = sn.fetcher.Fetch(ctx, sn.root, FetchOptions{Dest: dest, Hints: hints, NoConnected: true, StallTimeout: 30 * time.Second,
			Verified: func(int64) { last = time.Now() }})
		if !errors.Is(err, ErrStalled) {
			t.Fatalf("Fetch = %v, want ErrStalled", err)
		}
		if took := time.Since(last); took < 30*time.Second || took > 31*time.Second {
			t.Errorf("stalled %s after the last chunk, want 30 s", took)
		}
		msg := err.Error()
		for _, want := range []string{
			staller.ID().String() + ": sent none of the",
			sn.partials[0].ID().String() + ": has no chunk we lack",
			sn.seeder.ID().String() + ": ",
			"1 verified chunks",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("the error does not say %q: %s", want, msg)
			}
		}
		if _, err := os.Stat(PartialPath(dest, sn.root)); err != nil {
			t.Errorf("the verified chunk was not kept: %v", err)
		}
		sn.fetcher.Close()
	})
}

// TestFetchNegativeTimeouts: a negative bound is refused before anything
// is dialled or written.
func TestFetchNegativeTimeouts(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	sw := New(h, &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
	defer sw.Close()
	root := build(t, &memBlocks{m: map[cid.Cid][]byte{}}, "f", []byte("x"), 16384)
	dest := filepath.Join(t.TempDir(), "f")
	for _, opts := range []FetchOptions{
		{Dest: dest, StallTimeout: -time.Second},
		{Dest: dest, FindTimeout: -time.Second},
		{Dest: dest, RediscoverEvery: -time.Second},
	} {
		if _, err := sw.Fetch(context.Background(), root, opts); err == nil || !strings.Contains(err.Error(), "zero means the default") {
			t.Errorf("Fetch(%+v) = %v, want an error about the negative duration", opts, err)
		}
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Error("a destination was created")
	}
}
