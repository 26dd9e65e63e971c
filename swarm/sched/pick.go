package sched

import (
	"math"
	"math/bits"
	"time"
)

// Scan budgets bound the work of one pick (see doc.go, "Cost").
const (
	// probeBudget is how many bucket entries a pick for a partial peer
	// examines before it falls back to a word scan of what the peer has.
	probeBudget = 256
	// fallbackPicks is how many candidates the word scan collects before
	// it takes the rarest of them.
	fallbackPicks = 8
	// prioWordBudget is how many 64-chunk words a priority pick scans.
	prioWordBudget = 1024
	// dupScan is how many outstanding chunks (and how many chunks of the
	// priority range) a duplicate pick examines.
	dupScan = 256
	// avoidTries is how many random draws a seeder's pick makes before it
	// walks the buckets to get past chunks it must avoid.
	avoidTries = 4
)

// buckets keeps every pickable chunk (missing and not requested) in the list
// of its availability: lists[a] holds the pickable chunks that exactly a
// connected partial peers have. Seeders add the same to every chunk, so they
// are left out of the count: the order is the same and a seeder joining
// costs nothing. Insert, delete and a move between lists are O(1).
type buckets struct {
	lists    [][]int32
	pos      []int32 // index of chunk i in lists[avail[i]] while it is pickable
	avail    []int32 // connected partial peers that have chunk i
	lo       int     // every list below lo is empty
	pickable bitfield
	n        int64 // pickable chunks
}

func newBuckets(n int32) buckets {
	return buckets{
		lists:    [][]int32{make([]int32, 0, n)},
		pos:      make([]int32, n),
		avail:    make([]int32, n),
		pickable: newBitfield(n),
	}
}

func (b *buckets) insert(i int32) {
	a := int(b.avail[i])
	for a >= len(b.lists) {
		b.lists = append(b.lists, nil)
	}
	b.pos[i] = int32(len(b.lists[a]))
	b.lists[a] = append(b.lists[a], i)
	b.pickable.set(i)
	b.n++
	if a < b.lo {
		b.lo = a
	}
}

func (b *buckets) delete(i int32) {
	a := b.avail[i]
	l := b.lists[a]
	k, last := b.pos[i], l[len(l)-1]
	l[k], b.pos[last] = last, k
	b.lists[a] = l[:len(l)-1]
	b.pickable.clear(i)
	b.n--
}

func (b *buckets) inc(i int32) {
	if b.pickable.get(i) {
		b.delete(i)
		b.avail[i]++
		b.insert(i)
		return
	}
	b.avail[i]++
}

func (b *buckets) dec(i int32) {
	if b.pickable.get(i) {
		b.delete(i)
		b.avail[i]--
		b.insert(i)
		return
	}
	b.avail[i]--
}

// lowest returns the lowest non-empty list, or -1.
func (b *buckets) lowest() int {
	for b.lo < len(b.lists) && len(b.lists[b.lo]) == 0 {
		b.lo++
	}
	if b.lo == len(b.lists) {
		return -1
	}
	return b.lo
}

// avoided reports whether p should not get chunk i: a request of i to p
// timed out and some other connected peer has i.
func (s *Scheduler) avoided(p *peer, i int32) bool {
	if len(s.avoid) == 0 {
		return false
	}
	q, ok := s.avoid[i]
	if !ok || q != p {
		return false
	}
	others := s.seeders
	if p.seeder {
		others--
	}
	if others > 0 {
		return true
	}
	a := s.bk.avail[i]
	if !p.seeder && p.has(i) {
		a--
	}
	return a > 0
}

// pickRarest chooses the rarest unrequested chunk that p has, with a random
// tie-break. ok is false when there is none; exhaustive is then true if p
// has no pickable chunk that it may be given (so that it need not look
// again until woken).
func (s *Scheduler) pickRarest(p *peer) (i int32, ok, exhaustive bool) {
	if s.bk.n == 0 {
		return 0, false, true
	}
	if p.seeder {
		return s.pickSeeder(p)
	}
	return s.pickPartial(p)
}

// pickPrio returns the lowest pickable chunk of the priority range that p
// has, scanning at most prioWordBudget words.
func (s *Scheduler) pickPrio(p *peer) (int32, bool) {
	from, budget := s.prioLo, prioWordBudget
	var have bitfield
	if !p.seeder {
		have = p.have
		if have == nil {
			return 0, false
		}
	}
	for budget > 0 {
		i, ok, _ := nextAnd(s.bk.pickable, have, from, s.prioTo, budget)
		if !ok {
			return 0, false
		}
		if !s.avoided(p, i) {
			return i, true
		}
		budget -= int(i>>6-from>>6) + 1
		from = i + 1
	}
	return 0, false
}

// pickSeeder returns a uniformly random chunk of the lowest non-empty
// availability list: the rarest, ties broken by the seeded rng.
func (s *Scheduler) pickSeeder(p *peer) (int32, bool, bool) {
	a := s.bk.lowest()
	if a < 0 {
		return 0, false, true
	}
	l := s.bk.lists[a]
	for range avoidTries {
		if i := l[s.rng.IntN(len(l))]; !s.avoided(p, i) {
			return i, true, false
		}
	}
	// Mostly avoided chunks: walk the lists in order of rarity.
	skipped := false
	for ; a < len(s.bk.lists); a++ {
		for _, i := range s.bk.lists[a] {
			if !s.avoided(p, i) {
				return i, true, false
			}
			skipped = true
		}
	}
	return 0, false, !skipped
}

// pickPartial returns the rarest pickable chunk that p has: it walks the
// availability lists upwards (list 0 holds chunks no partial peer has), each
// from a random offset, for at most probeBudget entries; past the budget it
// falls back to scanning p's bitfield against the pickable set from a random
// word and takes the rarest of the first fallbackPicks chunks it finds.
func (s *Scheduler) pickPartial(p *peer) (int32, bool, bool) {
	if p.have == nil {
		return 0, false, true
	}
	probes, skipped := 0, false
	for a := max(s.bk.lo, 1); a < len(s.bk.lists); a++ {
		l := s.bk.lists[a]
		if len(l) == 0 {
			continue
		}
		start := s.rng.IntN(len(l))
		for k := range l {
			if probes == probeBudget {
				return s.pickPartialScan(p)
			}
			probes++
			j := start + k
			if j >= len(l) {
				j -= len(l)
			}
			i := l[j]
			if !p.have.get(i) {
				continue
			}
			if s.avoided(p, i) {
				skipped = true
				continue
			}
			return i, true, false
		}
	}
	return 0, false, !skipped
}

func (s *Scheduler) pickPartialScan(p *peer) (int32, bool, bool) {
	words := len(p.have)
	w0 := s.rng.IntN(words)
	best, found, skipped := int32(0), 0, false
	for k := range words {
		w := w0 + k
		if w >= words {
			w -= words
		}
		x := s.bk.pickable[w] & p.have[w]
		for x != 0 {
			t := bits.TrailingZeros64(x)
			x &= x - 1
			i := int32(w*64 + t)
			if s.avoided(p, i) {
				skipped = true
				continue
			}
			if found == 0 || s.bk.avail[i] < s.bk.avail[best] {
				best = i
			}
			if found++; found == fallbackPicks {
				return best, true, false
			}
		}
	}
	if found > 0 {
		return best, true, false
	}
	return 0, false, !skipped
}

// pickDup chooses an outstanding chunk for p to duplicate (endgame): one
// that has fewer than EndgameDup requests, none from p, that p has, and
// whose copy from p is expected to arrive at least two of p's chunk times
// plus round trips before the holders' (so that, with estimates that are
// roughly right, the holder has not started sending when the CANCEL reaches
// it); or whose holders all look stalled (overdue by as much again as they
// were expected to take). It looks at the first dupScan chunks of the
// priority range if prio, else at the dupScan oldest outstanding chunks.
// The candidate p would beat by the most wins.
func (s *Scheduler) pickDup(p *peer, prio bool, now time.Time) (int32, bool) {
	if s.cfg.EndgameDup < 2 || len(s.out) == 0 {
		return 0, false
	}
	var best *outChunk
	bestSlack := time.Duration(math.MinInt64)
	consider := func(c *outChunk) {
		if slack, ok := s.dupSlack(p, c, now); ok && slack > bestSlack {
			best, bestSlack = c, slack
		}
	}
	if prio {
		end := min(s.prioTo, s.prioLo+dupScan)
		for i := s.prioLo; i < end; i++ {
			if s.state[i] == stOut {
				consider(s.out[i])
			}
		}
	} else {
		k := 0
		for c := s.outHead; c != nil && k < dupScan; c, k = c.next, k+1 {
			consider(c)
		}
	}
	if best == nil {
		return 0, false
	}
	return best.i, true
}

// dupSlack says whether p may duplicate c now, and by how much p's copy is
// expected to beat the holders' (math.MaxInt64 when they look stalled).
func (s *Scheduler) dupSlack(p *peer, c *outChunk, now time.Time) (time.Duration, bool) {
	if len(c.reqs) >= s.cfg.EndgameDup || !p.has(c.i) {
		return 0, false
	}
	for _, r := range c.reqs {
		if r.p == p {
			return 0, false
		}
	}
	size := s.size(c.i)
	ctp, known := p.chunkTime(size)
	rttp := p.baseRTT(size)
	eta, stalled := time.Time{}, true
	for _, r := range c.reqs {
		q := r.p
		ct, ok := q.chunkTime(size)
		rtt := q.baseRTT(size)
		if !ok {
			if !known {
				// Neither rate is known: no basis to duplicate.
				return 0, false
			}
			// No evidence the holder is slower than p: assume not.
			ct, rtt = ctp, rttp
		}
		e := r.sent.Add(time.Duration(r.ahead+1)*ct + rtt)
		if now.Sub(e) <= max(ct+rtt, e.Sub(r.sent)) {
			stalled = false
		}
		if eta.IsZero() || e.Before(eta) {
			eta = e
		}
	}
	if stalled {
		return math.MaxInt64, true
	}
	if !known {
		return 0, false
	}
	mine := now.Add(time.Duration(len(p.out)+1)*ctp + rttp)
	slack := eta.Sub(mine) - 2*(ctp+rttp)
	return slack, slack > 0
}
