package simulate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/node"
)

// apply carries out one event. It runs on the main goroutine.
func (r *runner) apply(ctx context.Context, e Event, ticket peer.AddrInfo, hints [][]peer.AddrInfo) error {
	switch e.Kind {
	case Leave:
		for _, i := range e.Peers {
			r.leave(r.peers[i])
		}
	case Join:
		for _, i := range e.Peers {
			if err := r.join(ctx, r.peers[i], ticket, hints[i]); err != nil {
				return err
			}
		}
	case Partition:
		r.cut = map[int]bool{}
		for _, i := range e.Peers {
			r.cut[i] = true
		}
		// Cut every link first (no new dial crosses), then the
		// connections that stood.
		all := r.slots(r.advHosts())
		side := map[peer.ID]bool{}
		for _, a := range all {
			side[a.id] = r.side(a.idx)
		}
		r.linkMu.Lock()
		r.cuts.partition(side) // under linkMu: no dial links across from now on
		for _, a := range all {
			for b := range r.linked[a.id] {
				if cut, known := side[b]; known && side[a.id] != cut {
					r.unlinkLocked(a.id, b)
				}
			}
		}
		r.linkMu.Unlock()
		var pairs [][2]peer.ID
		for _, a := range all {
			if !side[a.id] {
				continue
			}
			for _, q := range r.mn.Net(a.id).Peers() {
				if cut, known := side[q]; known && !cut {
					pairs = append(pairs, [2]peer.ID{a.id, q})
				}
			}
		}
		r.cutBg.Add(1)
		go func() {
			defer r.cutBg.Done()
			r.disconnect(pairs)
		}()
	case Heal:
		if r.cut == nil {
			return nil
		}
		r.cutBg.Wait() // no late disconnect may close a new connection
		// Honest hosts link again as they dial; adversaries (bare hosts)
		// are linked back now.
		for _, a := range r.slots(r.advHosts()) {
			for _, b := range r.slots(r.advHosts()) {
				if a.idx < b.idx && b.idx >= r.sc.Peers && r.side(a.idx) != r.side(b.idx) {
					if err := r.link(a, b); err != nil {
						return err
					}
				}
			}
		}
		r.cut = nil
		r.cuts.partition(nil)
	}
	return nil
}

// disconnect closes the connections between each pair, many at once:
// mocknet resets a connection's streams one by one, each waiting for its
// delivery goroutine, which takes up to a second per connection.
func (r *runner) disconnect(pairs [][2]peer.ID) {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, pr := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.mn.DisconnectPeers(pr[0], pr[1])
		}()
	}
	wg.Wait()
}

// side says which side of a partition slot i is on (adversaries stay with
// the majority).
func (r *runner) side(i int) bool { return r.cut != nil && r.cut[i] }

func (r *runner) leave(p *simPeer) {
	if p.node == nil {
		return
	}
	p.mu.Lock()
	p.up = false
	p.mu.Unlock()
	// The peer vanishes from the network at once, as a crash or a pulled
	// cable would: no one can dial it any more. Its host and node are
	// stopped in the background (a mocknet host takes a while to close),
	// and a Join of the same peer waits for that.
	id := p.host.ID()
	r.linkMu.Lock()
	r.cuts.kill(id) // under linkMu: no dial links to it from now on
	for q := range r.linked[id] {
		r.unlinkLocked(id, q)
	}
	delete(r.linked, id)
	delete(r.slotOf, id)
	r.linkMu.Unlock()
	h, n, cancel, fetch := p.host, p.node, p.cancel, p.fetch
	p.node, p.host, p.cancel, p.fetch = nil, nil, nil, nil
	gone := make(chan struct{})
	p.gone = gone
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		if cancel != nil {
			cancel()
		}
		// Its exchange streams already fail (cuts); stop the node
		// first, which a Join of the same home waits for, and then let
		// mocknet take its time over the connections.
		m := n.Metrics()
		n.Close()
		if fetch != nil {
			<-fetch
		}
		p.mu.Lock()
		p.past = addMetrics(p.past, m)
		p.mu.Unlock()
		close(gone)
		var pairs [][2]peer.ID
		for _, q := range h.Network().Peers() {
			pairs = append(pairs, [2]peer.ID{h.ID(), q})
		}
		r.disconnect(pairs)
		h.Close()
	}()
}

func (r *runner) join(ctx context.Context, p *simPeer, ticket peer.AddrInfo, hints []peer.AddrInfo) error {
	if p.node != nil {
		return nil
	}
	if p.gone != nil {
		select {
		case <-p.gone:
		case <-ctx.Done():
			return nil
		}
	}
	h, err := r.newHost(p.idx)
	if err != nil {
		return err
	}
	p.host = h
	p.ids = append(p.ids, h.ID())
	me := slot{h.ID(), p.idx}
	if r.cut != nil {
		r.cuts.place(me.id, r.side(p.idx)) // the new identity is on its peer's side
	}
	for i, a := range r.advHosts() { // honest hosts link as they dial
		if s := (slot{a.ID(), r.sc.Peers + i}); r.side(s.idx) == r.side(p.idx) {
			if err := r.link(me, s); err != nil {
				return err
			}
		}
	}
	var live []*simPeer
	for _, q := range r.peers {
		if q != p && q.node != nil && r.side(q.idx) == r.side(p.idx) {
			live = append(live, q)
		}
	}
	var boot []*simPeer
	for _, i := range r.pick(0, len(live), r.sc.Degree) {
		boot = append(boot, live[i])
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := node.New(cctx, r.nodeConfig(p, boot))
	if err != nil {
		return fmt.Errorf("simulate: peer %d rejoins: %w", p.idx, err)
	}
	r.freeRide(p)
	p.node = n
	p.mu.Lock()
	p.up = true
	p.restarts++
	done := p.done
	p.mu.Unlock()
	if !done {
		r.startFetch(ctx, p, ticket, hints)
	}
	return nil
}
