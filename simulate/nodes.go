package simulate

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/swarm"
)

func (r *runner) nodeConfig(p *simPeer, boot []*simPeer) node.Config {
	cfg := node.DefaultConfig()
	cfg.Home = p.home
	cfg.Host = p.host
	cfg.NoMDNS = true
	cfg.NoSync = true
	cfg.NoDHT = r.sc.NoDHT
	// Every simulated node is a DHT server (no AutoNAT on mocknet), and none
	// refreshes its routing table on a timer: the one self-lookup at start
	// fills it, and N nodes refreshing cost O(N²) lookups.
	cfg.DHTMode = node.DHTServer
	cfg.DHTNoAutoRefresh = true
	cfg.Chunking = chunker.FixedParams(r.sc.ChunkSize)
	cfg.Seed = r.sc.Seed*1_000_003 + uint64(p.idx)*7919 + uint64(len(p.ids))
	cfg.FindTimeout = r.sc.FindTimeout
	cfg.RequestTimeout = r.sc.RequestTimeout
	cfg.UploadRate = r.sc.NodeUploadRate
	cfg.Logger = r.log.With("peer", p.idx)
	for _, b := range boot {
		for _, a := range b.node.Addrs() {
			cfg.Bootstrap = append(cfg.Bootstrap, a.String())
		}
	}
	return cfg
}

// freeRider reports whether node i is one of the scenario's free riders.
func (r *runner) freeRider(i int) bool { return i >= r.sc.Peers-r.sc.FreeRiders }

// freeRide makes p's node, just started, take sessions of no one if it is a
// free rider: peers see it refuse the exchange protocol and ask others.
func (r *runner) freeRide(p *simPeer) {
	if r.freeRider(p.idx) {
		for _, pid := range swarm.Protocols() {
			p.host.RemoveStreamHandler(pid)
		}
	}
}

// startNodes starts node 0, then the others in batches, each bootstrapping
// from Degree random nodes of the earlier batches (one self-lookup each,
// not a full refresh).
func (r *runner) startNodes(ctx context.Context) error {
	sc := &r.sc
	start := func(p *simPeer, boot []*simPeer) error {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		n, err := node.New(cctx, r.nodeConfig(p, boot))
		if err != nil {
			return fmt.Errorf("simulate: peer %d: %w", p.idx, err)
		}
		r.freeRide(p)
		p.node = n
		p.up = true
		return nil
	}
	if err := start(r.peers[0], nil); err != nil {
		return err
	}
	batch := max(8, 4*runtime.GOMAXPROCS(0))
	for lo := 1; lo < sc.Peers; lo += batch {
		hi := min(sc.Peers, lo+batch)
		boots := make([][]*simPeer, hi-lo)
		for i := range boots {
			for _, b := range r.pick(0, lo, sc.Degree) {
				boots[i] = append(boots[i], r.peers[b])
			}
		}
		errs := make([]error, hi-lo)
		var wg sync.WaitGroup
		for i := lo; i < hi; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i-lo] = start(r.peers[i], boots[i-lo])
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// startFetch runs p's fetch in the background until it completes, its
// incarnation ends or ctx is done. A failed attempt is retried after a
// pause, as a user would, resuming what was verified.
func (r *runner) startFetch(ctx context.Context, p *simPeer, ticket peer.AddrInfo, hints []peer.AddrInfo) {
	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	p.fetch = make(chan struct{})
	n, done := p.node, p.fetch
	r.fetchW.Add(1)
	go func() {
		defer r.fetchW.Done()
		defer close(done)
		target := node.Target{Root: r.root, Hint: &ticket}
		for ctx.Err() == nil {
			res, err := n.Fetch(ctx, target, p.dest, node.FetchOptions{
				Peers: hints,
				Progress: func(pr node.Progress) {
					if pr.Chunks > pr.Resumed {
						p.mu.Lock()
						if p.firstChunk < 0 {
							p.firstChunk = time.Since(r.start)
						}
						p.mu.Unlock()
					}
				},
			})
			p.mu.Lock()
			p.attempts++
			if err == nil {
				p.done = true
				p.doneAt = time.Since(r.start)
				for id, b := range res.Progress.PerPeer {
					p.fromPeers[id] += b
				}
				p.duplicate += res.Progress.Duplicate
				p.mu.Unlock()
				return
			}
			if ctx.Err() == nil {
				p.lastErr = err.Error()
			}
			p.mu.Unlock()
			t := time.NewTimer(500 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}()
}

// addMetrics adds b's counters to a's (gauges are left out).
func addMetrics(a, b node.Metrics) node.Metrics {
	a.Swarm.BytesUp += b.Swarm.BytesUp
	a.Swarm.BytesDown += b.Swarm.BytesDown
	a.Swarm.ChunksServed += b.Swarm.ChunksServed
	a.Swarm.ChunksVerified += b.Swarm.ChunksVerified
	a.Swarm.ChunksRejected += b.Swarm.ChunksRejected
	a.Swarm.DuplicateBytes += b.Swarm.DuplicateBytes
	a.Swarm.Bans += b.Swarm.Bans
	a.Swarm.UnrequestedBlocks += b.Swarm.UnrequestedBlocks
	a.Swarm.ProtocolViolations += b.Swarm.ProtocolViolations
	a.Swarm.Chokes += b.Swarm.Chokes
	a.Swarm.BitswapBytesUp += b.Swarm.BitswapBytesUp
	a.Swarm.BitswapBytesDown += b.Swarm.BitswapBytesDown
	a.Swarm.BitswapDuplicateBytes += b.Swarm.BitswapDuplicateBytes
	a.DHTLookups += b.DHTLookups
	a.DHTLookupsFound += b.DHTLookupsFound
	h := &a.DHTLookupSeconds
	if len(h.Bounds) == 0 {
		h.Bounds = append([]float64(nil), b.DHTLookupSeconds.Bounds...)
		h.Cumulative = make([]uint64, len(h.Bounds))
	}
	if slices.Equal(h.Bounds, b.DHTLookupSeconds.Bounds) {
		for i, c := range b.DHTLookupSeconds.Cumulative {
			h.Cumulative[i] += c
		}
		h.Count += b.DHTLookupSeconds.Count
		h.Sum += b.DHTLookupSeconds.Sum
	}
	return a
}
