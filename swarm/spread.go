package swarm

import (
	"sync"
	"sync/atomic"
	"time"
)

// A seed that several peers fetch one root from at once sends each chunk
// about once and lets them trade the rest (BitTorrent's super-seeding,
// BEP 16, done from the requests it gets instead of hidden HAVEs):
//
//   - Fresh first. Of a session's waiting requests it serves first the
//     chunks it has sent to no other session of the root.
//   - Hold back. A chunk sent to another session less than spreadHold ago
//     waits: that peer announces it (HAVE) to the others, and their
//     schedulers move the request to it and CANCEL it here (package sched,
//     "Sparing the seeders"). After spreadHold it is served anyway, so a
//     peer that keeps what it got, lies in its HAVEs or cannot reach the
//     others delays them by spreadHold at most, once, not per chunk.
//
// This applies only while the node is a seed of the root (its source is
// complete: the only place the first copies can come from) and two or
// more sessions of the root are open. A single fetcher is served exactly
// as before, in the order it asks. A node that is itself still fetching
// serves in order: its chunks came from elsewhere.

// spreadHold is how long a seed holds back, from the other sessions of a
// root, a chunk it has just sent to one of them: long enough for that peer
// to verify it, announce it and be asked for it instead (a few round trips
// and a chunk's transfer), short enough that a peer that never passes it
// on costs the others little.
const spreadHold = time.Second

// spreadScan bounds the waiting requests a session looks at for one that
// is not held back: the first requests of a fetcher's window.
const spreadScan = 256

// maxSpreadRecent bounds the chunks a root remembers as sent lately; past
// it the oldest are forgotten early (they are served then without a hold).
const maxSpreadRecent = 1 << 16

// spread records which chunks of one root this node has sent, to whom and
// when, for the root's serving sessions (see above). mu is a leaf lock:
// it is taken with server.mu held.
type spread struct {
	users atomic.Int32 // sessions of the root: admit adds, dismiss removes

	mu     sync.Mutex
	sent   []uint64              // bit i: chunk i was sent while users ≥ 2
	recent map[uint64]spreadSend // the chunks first sent less than spreadHold ago
	order  []uint64              // the chunks of recent, oldest first
}

// spreadSend is the first send of a chunk.
type spreadSend struct {
	at time.Time
	to *server
}

// heldLocked reports whether sv must wait for chunk i: it went to another
// session, still open, less than spreadHold before now; until is when it
// may go. sp.mu is held.
func (sp *spread) heldLocked(sv *server, i uint64, now time.Time) (until time.Time, held bool) {
	r, ok := sp.recent[i]
	if !ok || r.to == sv || r.to.gone.Load() {
		return time.Time{}, false
	}
	until = r.at.Add(spreadHold)
	return until, now.Before(until)
}

// sentLocked records that chunk i of n goes to sv now. Only a chunk's
// first send starts a hold. sp.mu is held.
func (sp *spread) sentLocked(sv *server, i uint64, n int64, now time.Time) {
	for len(sp.order) > 0 {
		j := sp.order[0]
		if now.Sub(sp.recent[j].at) < spreadHold && len(sp.order) < maxSpreadRecent {
			break
		}
		delete(sp.recent, j)
		sp.order = sp.order[1:]
	}
	if n <= 0 || i >= uint64(n) {
		return
	}
	if sp.sent == nil {
		sp.sent = make([]uint64, (n+63)/64)
		sp.recent = map[uint64]spreadSend{}
	}
	if sp.sent[i/64]&(1<<(i%64)) != 0 {
		return
	}
	sp.sent[i/64] |= 1 << (i % 64)
	sp.recent[i] = spreadSend{at: now, to: sv}
	sp.order = append(sp.order, i)
}

// spreadingLocked reports whether sv serves its requests by the spread
// rules: this node is a seed of the root and another session of it is
// open. sv.mu is held.
func (sv *server) spreadingLocked() bool {
	return sv.spread != nil && sv.spread.users.Load() >= 2 && sv.src != nil && sv.src.Complete()
}

// readyLocked reports whether sv has a chunk request it may serve now. When
// every request looked at is held back, it arms a timer that wakes the
// sender when the first may go. sv.mu is held.
func (sv *server) readyLocked() bool {
	if sv.wants.len() == 0 {
		return false
	}
	if !sv.spreadingLocked() {
		return true
	}
	_, ok, _ := sv.pickLocked(false)
	return ok
}

// nextWantLocked takes the chunk request sv serves next (ok), and says
// whether another may be served right after it (more). sv.mu is held.
func (sv *server) nextWantLocked() (i uint64, ok, more bool) {
	if !sv.spreadingLocked() {
		i, ok = sv.wants.pop()
		return i, ok, sv.wants.len() > 0
	}
	return sv.pickLocked(true)
}

// pickLocked finds the request sv serves next by the spread rules: the
// first (in arrival order) of a chunk never sent to another session, else
// the first not held back. With take, it withdraws it from the queue and
// records its send. When every request looked at is held back, it arms
// the hold timer. sv.mu is held.
func (sv *server) pickLocked(take bool) (i uint64, ok, more bool) {
	sp := sv.spread
	now := sv.sw.cfg.Now()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var (
		fresh, free   uint64
		nFresh, nFree int
		wake          time.Time
	)
	sv.wants.scan(spreadScan, func(j uint64) bool {
		until, held := sp.heldLocked(sv, j, now)
		switch {
		case held:
			if wake.IsZero() || until.Before(wake) {
				wake = until
			}
		case sp.sentBefore(j):
			if nFree == 0 {
				free = j
			}
			nFree++
		default:
			if nFresh == 0 {
				fresh = j
			}
			nFresh++
		}
		// Taking, look for a fresh one; only asking, any will do.
		return take && nFresh == 0 || !take && nFresh+nFree == 0
	})
	switch {
	case nFresh > 0:
		i, ok = fresh, true
	case nFree > 0:
		i, ok = free, true
	default:
		if !wake.IsZero() {
			sv.armHoldLocked(wake.Sub(now))
		}
		return 0, false, false
	}
	if !take {
		return i, true, false
	}
	sv.wants.cancel(i)
	sp.sentLocked(sv, i, sv.src.Layout().NumChunks(), now)
	return i, true, nFresh+nFree > 1
}

// sentBefore reports whether chunk i was sent before, to any session.
// sp.mu is held.
func (sp *spread) sentBefore(i uint64) bool {
	return sp.sent != nil && i/64 < uint64(len(sp.sent)) && sp.sent[i/64]&(1<<(i%64)) != 0
}

// armHoldLocked wakes the sender after d (at least a millisecond). sv.mu
// is held.
func (sv *server) armHoldLocked(d time.Duration) {
	d = max(d, time.Millisecond)
	if sv.holdT == nil {
		sv.holdT = time.AfterFunc(d, sv.signal)
		return
	}
	sv.holdT.Reset(d)
}
