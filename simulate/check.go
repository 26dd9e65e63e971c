package simulate

import (
	"fmt"
	"os"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// check verifies every completed copy and the invariants.
func (r *runner) check(rep *Report) {
	sc := &r.sc
	byID := map[peer.ID]*simPeer{}
	for _, p := range r.peers {
		if p.host != nil {
			byID[p.host.ID()] = p
		}
	}
	// A source is a live node with a complete copy; a peer can reach one
	// unless a partition still stands between them.
	reach := map[bool]bool{}
	for _, p := range r.peers {
		if p.node != nil && (p.seeder || p.done) {
			reach[r.side(p.idx)] = true
		}
	}
	for i := range rep.PeersOut {
		pr := &rep.PeersOut[i]
		p := r.peers[pr.Index]
		if p.seeder {
			continue
		}
		if p.done {
			sum, err := fileSum(p.dest)
			switch {
			case err != nil:
				rep.Problems = append(rep.Problems, fmt.Sprintf("peer %d: completed, but its copy can't be read: %v", p.idx, err))
			case sum != r.sum:
				rep.Corrupt++
				rep.Problems = append(rep.Problems, fmt.Sprintf("peer %d: completed copy has sha256 %x, want %x", p.idx, sum, r.sum))
			default:
				rep.Intact++
				pr.Intact = true
			}
			continue
		}
		if _, err := os.Stat(p.dest); err == nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("peer %d: did not complete, yet a file stands at its destination", p.idx))
		}
		if p.node != nil && reach[r.side(p.idx)] {
			rep.Problems = append(rep.Problems, fmt.Sprintf("peer %d: could reach a source but did not complete in %s (%d attempts; last error: %s)", p.idx, sc.Timeout, p.attempts, orNone(p.lastErr)))
		}
	}
	// Honest nodes never send a bad byte or break the protocol: a ban of
	// one by another is a false positive.
	for _, p := range r.peers {
		if p.node == nil {
			continue
		}
		for _, b := range p.node.Bans() {
			if q := byID[b]; q != nil {
				h := fmt.Sprintf("peer %d banned honest peer %d", p.idx, q.idx)
				rep.HonestBans = append(rep.HonestBans, h)
				rep.Problems = append(rep.Problems, h)
			}
		}
	}
	for k, a := range r.advs {
		ar := AdversaryReport{Kind: a.kind, ID: a.host.ID().String()}
		a.mu.Lock()
		for _, n := range a.wants {
			ar.Wants += n
		}
		for _, n := range a.sent {
			ar.BlocksSent += n
		}
		ar.Sessions = a.streams
		for _, n := range a.cutoff {
			ar.CutOff += n
		}
		a.mu.Unlock()
		ar.SentTo = len(a.sentTo())
		// Who received its data is counted where it lands: the BLOCK
		// messages each honest node read whole from it.
		for _, p := range r.peers {
			if p.host == nil {
				continue
			}
			n, last := p.host.(*cappedHost).tally.blocks(a.host.ID())
			if n == 0 {
				continue
			}
			ar.ReadBy++
			if slices.Contains(p.node.Bans(), a.host.ID()) {
				ar.BannedBy++
				continue
			}
			// A block read as the peer completed may never have reached
			// its fetch loop (the fetch ended first): not a miss.
			p.mu.Lock()
			done, doneAt := p.done, r.start.Add(p.doneAt)
			p.mu.Unlock()
			if done && last.After(doneAt.Add(-sc.RequestTimeout)) {
				ar.Late++
			} else if a.kind == Corrupt {
				rep.Problems = append(rep.Problems, fmt.Sprintf("adversary %d (%s): peer %d read %d corrupt blocks from it, the last %.2fs into the fetch, and did not ban it", k, a.kind, p.idx, n, last.Sub(r.start).Seconds()))
			}
		}
		rep.Adversaries = append(rep.Adversaries, ar)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
