package swarm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// TestDiscoveryRoundBounded: a lookup that finds 20 providers (kad's
// bucket, the most node asks for) makes the fetch dial only discoverBatch
// of them, and the lookup is cancelled there: each session costs
// goroutines and buffers on both ends, and dialling every provider of every
// round raised a 400-peer flash crowd from 730 to over 1000 goroutines a
// peer once lookups stopped missing. The fetch still completes from the
// peers it dialled.
func TestDiscoveryRoundBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const providers = 20
	mn := mocknet.New()
	defer mn.Close()
	for range providers + 1 {
		if _, err := mn.GenPeer(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil { // linked, not connected: only dials connect
		t.Fatal(err)
	}
	hosts := mn.Hosts()
	data := randomData(1<<20, 11)
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := build(t, blocks, "data.bin", data, 64<<10)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	var found []peer.AddrInfo
	for _, h := range hosts[1:] {
		s := New(h, blocks, Config{Logger: quiet()})
		defer s.Close()
		s.Serve(root, &memSource{l: l, data: data})
		found = append(found, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	fetcher := New(hosts[0], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
	defer fetcher.Close()

	// A lookup as the DHT's: it sends each provider unless ctx is done,
	// and closes the channel at its end.
	var rounds, sent, cancelled atomic.Int64
	ended := make(chan struct{}) // the lookup's goroutine has returned
	discover := func(ctx context.Context) <-chan peer.AddrInfo {
		rounds.Add(1)
		out := make(chan peer.AddrInfo)
		go func() {
			defer close(ended)
			defer close(out)
			for _, ai := range found {
				select {
				case out <- ai:
					sent.Add(1)
				case <-ctx.Done():
					cancelled.Add(1)
					return
				}
			}
		}()
		return out
	}
	dest := filepath.Join(t.TempDir(), "data.bin")
	res, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, Discover: discover, NoConnected: true, RediscoverEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("fetched file differs")
	}
	if n := rounds.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1 (RediscoverEvery is an hour)", n)
	}
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("the lookup never ended: the fetch neither read it to its end nor cancelled it")
	}
	if n := len(hosts[0].Network().Peers()); n > discoverBatch {
		t.Errorf("the fetch dialled %d of the %d providers one lookup found, want at most %d", n, providers, discoverBatch)
	}
	if n := sent.Load(); n > discoverBatch {
		t.Errorf("the fetch took %d providers from the lookup, want at most %d", n, discoverBatch)
	}
	if cancelled.Load() != 1 {
		t.Error("the lookup was not cancelled once the fetch had enough providers")
	}
	if len(res.Progress.PerPeer) == 0 {
		t.Error("no peer served the fetch")
	}
}

// findNothing is a discovery that ends at once, having found no one.
func findNothing(context.Context) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo)
	close(ch)
	return ch
}

// TestConnectedProbesNearestFirst: of 40 connected peers, a fetch asks the
// 32 nearest to it by XOR of the IDs, not 32 in the order of the map the
// host keeps its connections in (which changes from run to run, so that
// two simulations of one seed asked different peers).
func TestConnectedProbesNearestFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const connected = 40
	mn := mocknet.New()
	defer mn.Close()
	for range connected + 1 {
		if _, err := mn.GenPeer(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	hosts := mn.Hosts()
	me := hosts[0]
	var (
		mu    sync.Mutex
		asked []peer.ID
		peers []peer.ID
		all   = make(chan struct{}) // closed when maxConnectedProbe were asked
	)
	for _, h := range hosts[1:] {
		if _, err := mn.ConnectPeers(me.ID(), h.ID()); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, h.ID())
		h.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
			mu.Lock()
			if asked = append(asked, st.Conn().LocalPeer()); len(asked) == maxConnectedProbe {
				close(all)
			}
			mu.Unlock()
			st.Reset()
		})
	}
	fetcher := New(me, &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
	defer fetcher.Close()
	root := build(t, &memBlocks{m: map[cid.Cid][]byte{}}, "data.bin", randomData(1000, 12), 64<<10)
	fctx, fcancel := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() {
		// A fetch with discovery (here one that finds nothing) asks the
		// connected peers only at its start: one without asks each peer
		// that connects or says it speaks the protocol later too
		// (watchArrivals), and the handlers above are announced to the
		// fetcher by identify pushes that may come after the fetch starts.
		_, err := fetcher.Fetch(fctx, root, FetchOptions{Dest: filepath.Join(t.TempDir(), "data.bin"), Discover: findNothing})
		ended <- err
	}()
	select {
	case <-all:
	case err := <-ended:
		t.Fatalf("the fetch ended before it asked %d peers: %v", maxConnectedProbe, err)
	case <-ctx.Done():
		t.Fatalf("the fetch did not ask %d peers", maxConnectedProbe)
	}
	fcancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch: %v", err)
	}
	slices.SortFunc(peers, func(a, b peer.ID) int { return xorCompare(me.ID(), a, b) })
	want := peers[:maxConnectedProbe]
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(asked, func(a, b peer.ID) int { return xorCompare(me.ID(), a, b) })
	if !slices.Equal(asked, want) {
		missed := 0
		for _, p := range want {
			if !slices.Contains(asked, p) {
				missed++
			}
		}
		t.Errorf("the fetch asked %d of its %d connected peers, %d of them not among the %d nearest", len(asked), connected, missed, maxConnectedProbe)
	}
}

// TestNoProvidersSaysNamed: a fetch whose discovery named a provider it
// could not reach says so, rather than that no provider was found: the
// user should look at the network path, not at whether the sharer runs.
func TestNoProvidersSaysNamed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	for range 2 {
		if _, err := mn.GenPeer(); err != nil {
			t.Fatal(err)
		}
	}
	// Not linked: the provider cannot be dialled.
	hosts := mn.Hosts()
	root := build(t, &memBlocks{m: map[cid.Cid][]byte{}}, "data.bin", randomData(64<<10, 3), 64<<10)
	fetcher := New(hosts[0], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
	defer fetcher.Close()
	for _, tc := range []struct {
		what  string
		found []peer.AddrInfo
		want  string
	}{
		{"a provider that cannot be reached", []peer.AddrInfo{{ID: hosts[1].ID(), Addrs: hosts[1].Addrs()}}, "1 named by discovery, none reachable"},
		{"no provider", nil, "none found in"},
	} {
		discover := func(ctx context.Context) <-chan peer.AddrInfo {
			out := make(chan peer.AddrInfo, len(tc.found))
			for _, ai := range tc.found {
				out <- ai
			}
			close(out)
			return out
		}
		_, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: filepath.Join(t.TempDir(), "out"), Discover: discover, FindTimeout: 300 * time.Millisecond})
		if !errors.Is(err, ErrNoProviders) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrNoProviders saying %q", tc.what, err, tc.want)
		}
	}
}

// TestFetchProbesNewPeerAtOnce: a fetch with no DHT and no hint that a
// source could answer (a ticket whose sharer is offline, --dht off) starts
// with no peer at all; at virtual t=1 s a seeder connects to it. The fetch
// asks the seeder as soon as the connection is identified and says it
// speaks the exchange protocol, and completes within a second or so. It
// used to notice the seeder only at its next probe round, when it had gone
// StallTimeout/8 (15 s by default) without progress.
func TestFetchProbesNewPeerAtOnce(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn := mocknet.New()
		defer mn.Close()
		var hs []host.Host
		for range 2 {
			h, err := mn.GenPeer()
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		if err := mn.LinkAll(); err != nil { // linked, not connected
			t.Fatal(err)
		}
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		data := randomData(4*16384, 12)
		root := build(t, blocks, "f", data, 16384)
		l, err := BuildLayout(ctx, blocks, root)
		if err != nil {
			t.Fatal(err)
		}
		seeder := New(hs[0], blocks, Config{Logger: quiet()})
		defer seeder.Close()
		seeder.Serve(root, &memSource{l: l, data: data})
		fetcher := New(hs[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		defer fetcher.Close()

		dest := filepath.Join(t.TempDir(), "f")
		type result struct {
			res *Result
			err error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			res, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest})
			done <- result{res, err}
		}()
		time.Sleep(time.Second) // virtual: the fetch has found no one
		if _, err := mn.ConnectPeers(hs[0].ID(), hs[1].ID()); err != nil {
			t.Fatal(err)
		}
		connected := time.Now()
		r := <-done
		if r.err != nil {
			t.Fatalf("fetch: %v", r.err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
			t.Fatal("fetched file differs")
		}
		// Identify and four 16 KiB chunks over an unlimited mocknet link
		// take no virtual time to speak of; a probe round would come at
		// StallTimeout/8 (15 s) after the start.
		if took := time.Since(connected); took > time.Second {
			t.Errorf("finished %s after the seeder connected (%s after the start), want within 1 s: the fetch waited for a probe round", took, time.Since(start))
		}
		if r.res.Progress.PerPeer[hs[0].ID()] == 0 {
			t.Errorf("the seeder sent nothing: %v", r.res.Progress.PerPeer)
		}
	})
}

// TestFetchArrivalsBounded: 50 peers that speak the exchange protocol
// connect to a fetch with no source at once. It asks maxConnectedProbe of
// them in the first RediscoverEvery and the others in the next window, not
// 50 at a stroke, and none is lost.
func TestFetchArrivalsBounded(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const arrivals = 50
		mn := mocknet.New()
		defer mn.Close()
		var hs []host.Host
		for range arrivals + 1 {
			h, err := mn.GenPeer()
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		var asked atomic.Int64
		for _, h := range hs[1:] {
			h.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
				asked.Add(1)
				st.Reset()
			})
		}
		root := build(t, &memBlocks{m: map[cid.Cid][]byte{}}, "f", randomData(16384, 13), 16384)
		fetcher := New(hs[0], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		defer fetcher.Close()
		done := make(chan error, 1)
		go func() {
			_, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: filepath.Join(t.TempDir(), "f")})
			done <- err
		}()
		time.Sleep(time.Second)
		for _, h := range hs[1:] {
			if _, err := mn.ConnectPeers(h.ID(), hs[0].ID()); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if n := asked.Load(); n != maxConnectedProbe {
			t.Errorf("%d of the %d peers that connected were asked in the first half second, want %d (maxConnectedProbe)", n, arrivals, maxConnectedProbe)
		}
		time.Sleep(3 * time.Second) // past the next window of RediscoverEvery (2 s)
		synctest.Wait()
		if n := asked.Load(); n != arrivals {
			t.Errorf("%d of the %d peers that connected were asked after two windows, want all", n, arrivals)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("fetch = %v, want it cancelled", err)
		}
	})
}
