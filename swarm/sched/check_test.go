package sched

import (
	"fmt"
)

// check verifies the Scheduler's internal invariants; O(chunks × peers), for
// tests only. settled says that an event has just been fully handled (fill
// ran), so that every peer must be full or starved.
func (s *Scheduler) check(settled bool) error {
	var missing, verified int64
	for i := range s.n {
		st := s.state[i]
		pick := s.bk.pickable.get(i)
		if (st == stMissing) != pick {
			return fmt.Errorf("chunk %d: state %d, pickable bit %v", i, st, pick)
		}
		if pick {
			missing++
			a := s.bk.avail[i]
			if int(a) >= len(s.bk.lists) || int(s.bk.pos[i]) >= len(s.bk.lists[a]) || s.bk.lists[a][s.bk.pos[i]] != i {
				return fmt.Errorf("chunk %d: not at lists[%d][%d]", i, a, s.bk.pos[i])
			}
		}
		if st == stHave {
			verified++
		}
		c := s.out[i]
		if (st == stOut) != (c != nil) {
			return fmt.Errorf("chunk %d: state %d, outstanding %v", i, st, c != nil)
		}
		var a int32
		for _, p := range s.peers {
			if !p.banned && !p.seeder && p.has(i) {
				a++
			}
		}
		if a != s.bk.avail[i] {
			return fmt.Errorf("chunk %d: availability %d, want %d", i, s.bk.avail[i], a)
		}
	}
	if missing != s.bk.n {
		return fmt.Errorf("pickable count %d, want %d", s.bk.n, missing)
	}
	var inLists int64
	for a, l := range s.bk.lists {
		if a < s.bk.lo && len(l) > 0 {
			return fmt.Errorf("list %d below lo %d not empty", a, s.bk.lo)
		}
		inLists += int64(len(l))
	}
	if inLists != missing {
		return fmt.Errorf("%d chunks in lists, want %d", inLists, missing)
	}
	if verified != s.verified {
		return fmt.Errorf("verified %d, want %d", s.verified, verified)
	}
	if s.done != (verified == int64(s.n)) {
		return fmt.Errorf("done %v with %d of %d verified", s.done, verified, s.n)
	}
	linked := 0
	var prev *outChunk
	for c := s.outHead; c != nil; c = c.next {
		if c.prev != prev {
			return fmt.Errorf("outstanding list: bad prev at chunk %d", c.i)
		}
		prev = c
		linked++
		if s.out[c.i] != c {
			return fmt.Errorf("outstanding list: chunk %d not in map", c.i)
		}
		if len(c.reqs) == 0 || len(c.reqs) > s.cfg.EndgameDup {
			return fmt.Errorf("chunk %d: %d requests", c.i, len(c.reqs))
		}
		seen := map[*peer]bool{}
		for _, r := range c.reqs {
			p := r.p
			switch {
			case seen[p]:
				return fmt.Errorf("chunk %d: requested twice of %s", c.i, p.id)
			case !r.live || p.out[c.i] != r:
				return fmt.Errorf("chunk %d: request of %s not live", c.i, p.id)
			case p.banned || p.gone || s.peers[p.id] != p:
				return fmt.Errorf("chunk %d: request of departed %s", c.i, p.id)
			case !p.has(c.i):
				return fmt.Errorf("chunk %d: requested of %s which lacks it", c.i, p.id)
			}
			seen[p] = true
		}
	}
	if s.outTail != prev || linked != len(s.out) {
		return fmt.Errorf("outstanding list: %d linked, %d in map", linked, len(s.out))
	}
	nreqs, seeders := 0, 0
	for id, p := range s.peers {
		if p.id != id {
			return fmt.Errorf("peer %s filed as %s", p.id, id)
		}
		if p.seeder {
			seeders++
		}
		if p.have != nil && p.have.count() != p.nhave {
			return fmt.Errorf("peer %s: nhave %d, bitfield has %d", id, p.nhave, p.have.count())
		}
		if p.banned && (len(p.out) > 0 || p.seeder || p.have != nil) {
			return fmt.Errorf("banned peer %s still has state", id)
		}
		for i, r := range p.out {
			c := s.out[i]
			if c == nil || !containsReq(c.reqs, r) {
				return fmt.Errorf("peer %s: request %d not outstanding", id, i)
			}
		}
		nreqs += len(p.out)
		if settled && !s.paused && !s.done && !p.banned {
			if p.dirty {
				return fmt.Errorf("peer %s dirty after fill", id)
			}
			if len(p.out) < p.effWindow() && !p.starved {
				return fmt.Errorf("peer %s: %d of %d requests and not starved", id, len(p.out), p.effWindow())
			}
		}
	}
	if nreqs != s.nreqs {
		return fmt.Errorf("%d requests, counted %d", nreqs, s.nreqs)
	}
	if seeders != s.seeders {
		return fmt.Errorf("%d seeders, counted %d", seeders, s.seeders)
	}
	return nil
}

func containsReq(rs []*request, r *request) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// step hands e to s.Step and keeps the actions it returns queued, so that
// a test can send several events and then take what they gave together
// with pending.
func (s *Scheduler) step(e Event) error {
	acts, err := s.Step(e)
	s.actions = acts
	return err
}

// pending returns the actions queued since the last call (see step).
func (s *Scheduler) pending() []Action { return s.drain() }
