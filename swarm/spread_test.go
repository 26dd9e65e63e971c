package swarm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// spreadSetup is one seed serving a new file on a mesh of n hosts, the
// seed first; every link carries bw bytes/s.
type spreadSetup struct {
	hosts []host.Host
	root  cid.Cid
	data  []byte
	seed  *Swarm
}

func newSpreadSetup(t *testing.T, n int, bw float64, size, chunk int) *spreadSetup {
	t.Helper()
	mn := cappedMesh(t, n, bw)
	hosts := mn.Hosts()
	data := randomData(size, 20)
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := build(t, blocks, "new.bin", data, chunk)
	l, err := BuildLayout(context.Background(), blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	seed := New(hosts[0], blocks, Config{Logger: quiet()})
	t.Cleanup(func() { seed.Close() })
	seed.Serve(root, &memSource{l: l, data: data})
	return &spreadSetup{hosts: hosts, root: root, data: data, seed: seed}
}

// fetchAll fetches the root on each of hosts at once, each on a swarm of
// its own that serves what it has while it fetches and seeds it after (as
// node.Fetch does), checks every file, and returns when the last one
// ended.
func (ss *spreadSetup) fetchAll(t *testing.T, ctx context.Context, hosts []host.Host) {
	t.Helper()
	errs := make([]error, len(hosts))
	dests := make([]string, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		f := New(h, &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: uint64(i + 1)})
		t.Cleanup(func() { f.Close() })
		dests[i] = filepath.Join(t.TempDir(), "new.bin")
		wg.Go(func() {
			// As node.Fetch does: a peer still downloading serves what
			// it has.
			res, err := f.Fetch(ctx, ss.root, FetchOptions{Dest: dests[i], Started: func(_ *Layout, src Source) {
				f.Serve(ss.root, src)
			}})
			errs[i] = err
			if err == nil {
				f.Serve(ss.root, res.Source) // and then seeds it
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("fetcher %d: %v", i, err)
		}
		got, _ := os.ReadFile(dests[i])
		if !bytes.Equal(got, ss.data) {
			t.Fatalf("fetcher %d: the file differs", i)
		}
	}
}

// TestSeedSendsEachChunkAboutOnce: four fetchers of a new file that only
// one seed has, all connected: the seed uploads at most 1.5× the file (it
// sends first the chunks it has sent to nobody and holds back the others
// while a peer that got them can pass them on), the fetchers trade the
// rest, and all complete.
func TestSeedSendsEachChunkAboutOnce(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		ss := newSpreadSetup(t, 5, 4<<20, 8<<20, 128<<10)
		ss.fetchAll(t, ctx, ss.hosts[1:])
		up := ss.seed.Stats().BytesUp
		ratio := float64(up) / float64(len(ss.data))
		t.Logf("the seed uploaded %.2f× the file (%d bytes)", ratio, up)
		if up > int64(len(ss.data))*3/2 {
			t.Errorf("the seed uploaded %.2f× the file, more than 1.5×", ratio)
		}
	})
}

// TestSeedSparedForLateFetchers: a fetcher takes a new file from its only
// seed, then three more fetch it at once while the first still seeds it
// (the followers of an update that start at different times): the seed
// holds back what the first peer can give, the late ones take it there,
// and the seed uploads at most 1.5× the file in all.
func TestSeedSparedForLateFetchers(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		ss := newSpreadSetup(t, 5, 4<<20, 8<<20, 128<<10)
		ss.fetchAll(t, ctx, ss.hosts[1:2])
		first := ss.seed.Stats().BytesUp
		ss.fetchAll(t, ctx, ss.hosts[2:])
		up := ss.seed.Stats().BytesUp
		ratio := float64(up) / float64(len(ss.data))
		t.Logf("the seed uploaded %.2f× the file to the first fetcher, %.2f× in all", float64(first)/float64(len(ss.data)), ratio)
		if up > int64(len(ss.data))*3/2 {
			t.Errorf("the seed uploaded %.2f× the file, more than 1.5×", ratio)
		}
	})
}

// TestLateFetcherCutOffLosesOneHold: a fetcher that comes after another
// got the whole file, and cannot reach it (no link between them), is held
// back once and then served as it asks: it takes no more than 1 s (one
// hold) plus 10% over the transfer itself. (Holding it again for each
// request until several missed took 3.75 s here; mocknet's link shaper
// lends a link the time it was idle, so one hold costs less than 1 s.)
func TestLateFetcherCutOffLosesOneHold(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const (
			bw   = 4 << 20
			size = 8 << 20
		)
		mn := mocknet.New()
		t.Cleanup(func() { mn.Close() })
		for range 3 {
			if _, err := mn.GenPeer(); err != nil {
				t.Fatal(err)
			}
		}
		mn.SetLinkDefaults(mocknet.LinkOptions{Bandwidth: bw})
		hosts := mn.Hosts()
		for _, h := range hosts[1:] {
			if _, err := mn.LinkPeers(hosts[0].ID(), h.ID()); err != nil {
				t.Fatal(err)
			}
			if _, err := mn.ConnectPeers(hosts[0].ID(), h.ID()); err != nil {
				t.Fatal(err)
			}
		}
		ss := &spreadSetup{hosts: hosts, data: randomData(size, 21)}
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		ss.root = build(t, blocks, "new.bin", ss.data, 256<<10)
		l, err := BuildLayout(ctx, blocks, ss.root)
		if err != nil {
			t.Fatal(err)
		}
		ss.seed = New(hosts[0], blocks, Config{Logger: quiet()})
		t.Cleanup(func() { ss.seed.Close() })
		ss.seed.Serve(ss.root, &memSource{l: l, data: ss.data})

		ss.fetchAll(t, ctx, hosts[1:2])
		start := time.Now()
		ss.fetchAll(t, ctx, hosts[2:3])
		took := time.Since(start)
		ideal := time.Duration(float64(size) / bw * float64(time.Second))
		t.Logf("the late fetcher took %v for %v at the link's rate", took, ideal)
		if limit := spreadHold + ideal*11/10; took > limit {
			t.Errorf("the late fetcher took %v, more than one hold and 10%% over the transfer (%v)", took, limit)
		}
	})
}

// TestSingleFetcherNotSlowed: one fetcher alone with the seed, and one
// while another peer holds a session of the same root open without asking
// for anything (the seed is then in its spreading mode), each take no more
// than 10% longer, by the virtual clock, than the transfer itself at the
// link's rate: a lone fetcher is served in the order it asks, at once.
func TestSingleFetcherNotSlowed(t *testing.T) {
	const (
		bw   = 4 << 20
		size = 8 << 20
	)
	for _, idle := range []bool{false, true} {
		t.Run(fmt.Sprintf("idle session %v", idle), func(t *testing.T) {
			bubble.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				ss := newSpreadSetup(t, 3, bw, size, 256<<10)
				if idle {
					st, err := ss.hosts[2].NewStream(ctx, ss.hosts[0].ID(), wire.ProtocolID)
					if err != nil {
						t.Fatal(err)
					}
					defer st.Reset()
					w, r := wire.NewWriter(st), wire.NewReader(st, 0)
					w.Write(&wire.Hello{Version: wire.Version, Root: ss.root})
					w.Flush()
					if m, err := r.Read(); err != nil || m.Type() != wire.TypeHaveAll {
						t.Fatalf("answer to HELLO: %v %v", m, err)
					}
				}
				start := time.Now()
				ss.fetchAll(t, ctx, ss.hosts[1:2])
				took := time.Since(start)
				ideal := time.Duration(float64(size) / bw * float64(time.Second))
				t.Logf("%v for %v at the link's rate", took, ideal)
				if took > ideal*11/10 {
					t.Errorf("one fetcher took %v, more than 10%% over the transfer time (%v)", took, ideal)
				}
			})
		})
	}
}

// TestLyingPeerDoesNotStall: a peer takes every chunk from the seed first
// (so that the seed holds them back from the others), announces each to
// the honest fetchers, and never serves one. The honest fetchers still
// complete, in bounded time: the seed's hold ends, and a request moved to
// the liar times out and goes back.
func TestLyingPeerDoesNotStall(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		const chunk = 128 << 10
		ss := newSpreadSetup(t, 5, 4<<20, 4<<20, chunk)
		n := uint64(len(ss.data) / chunk)
		liar := ss.hosts[4]

		// The liar's serving side: HAVE_NONE, then a HAVE of every chunk
		// but the last (it stays a partial peer, whom requests move to);
		// WANTs go unanswered.
		var wg sync.WaitGroup
		defer wg.Wait()
		liar.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
			wg.Add(1)
			defer wg.Done()
			defer st.Reset()
			r, w := wire.NewReader(st, 0), wire.NewWriter(st)
			if m, err := r.Read(); err != nil || m.Type() != wire.TypeHello {
				return
			}
			w.Write(&wire.HaveNone{})
			for i := range n - 1 {
				w.Write(&wire.Have{Index: i})
			}
			if w.Flush() != nil {
				return
			}
			for {
				if _, err := r.Read(); err != nil {
					return
				}
			}
		})
		// Its fetching side: it asks the seed for every chunk at once,
		// before anyone else, and throws the blocks away.
		st, err := liar.NewStream(ctx, ss.hosts[0].ID(), wire.ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		w, r := wire.NewWriter(st), wire.NewReader(st, 0)
		w.Write(&wire.Hello{Version: wire.Version, Root: ss.root})
		all := make([]uint64, n)
		for i := range all {
			all[i] = uint64(i)
		}
		w.Write(&wire.Want{Indices: all})
		w.Flush()
		wg.Go(func() {
			for {
				if _, err := r.Read(); err != nil {
					return
				}
			}
		})

		start := time.Now()
		ss.fetchAll(t, ctx, ss.hosts[1:4])
		took := time.Since(start)
		t.Logf("the honest fetchers completed in %v", took)
		// One hold (1 s) and one request timeout (10 s) at most, plus the
		// transfer (1 s from the seed alone): the liar delays, it does not
		// stall. (Its requests go back sooner in fact: the scheduler
		// duplicates those of a holder that looks stalled.)
		if limit := 15 * time.Second; took > limit {
			t.Errorf("the honest fetchers took %v, more than %v", took, limit)
		}
	})
}
