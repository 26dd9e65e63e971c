package swarm

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A seed that several peers fetch one root from sends each chunk about
// once and lets them trade the rest (BitTorrent's super-seeding, BEP 16,
// done from the requests it gets instead of hidden HAVEs):
//
//   - Fresh first. While two or more sessions of the root are open, a
//     session is served first the chunks this node has sent to nobody.
//   - Hold back. A chunk this node last sent to another peer that is still
//     connected waits, up to spreadHold after it was asked for: that peer
//     has it and announces it, and the fetcher's scheduler moves the
//     request there (package sched, "Sparing the seeders": a partial peer
//     takes it over, a seeder duplicates a request that looks stalled) and
//     CANCELs it here. This covers fetchers that start together (the first
//     copy goes to one, the others wait for it) and those that come later,
//     when an earlier one is already a seed of its own.
//   - Bounded. After spreadHold a held request is served anyway, and a
//     session one of whose held requests ran out its hold is never held
//     again: a fetcher that cannot reach the others, or whom a peer lies
//     to, loses about spreadHold once, not per chunk.
//
// It relies on the fetchers of one root reaching each other while they
// download, which they do: a fetch asks the peers its host is connected to
// (fetch.sources), a node fetching a root accepts sessions for it with
// HAVE_NONE and then a HAVE per chunk verified (admit, Announce; node
// serves the download from its start), dials back whoever asks it for that
// root (Swarm.fetching; at once too when its own session to that peer, opened
// a moment before the peer fetched, is refused: followers of an update start
// within milliseconds of each other), and announces itself as a provider after its
// first chunk (node.Fetch). (A Swarm used without node must Serve a
// download from FetchOptions.Started for this; see spread_test.go.)
//
// Holding applies only while no more sessions of the root are open than
// the swarm has upload slots (BEP 16's case: an initial seed and a few
// downloaders, all served at once, where a second copy from the seed is
// pure waste). With more, the choker already serves a few at a time, and a
// held request would leave a scarce slot idle: in a flash crowd of 100
// peers with capped uploads, holding cut the seed's upload from 2.1× to
// 1.3× the file but made the last peer finish in 10.6 s instead of 5.4 s.
//
// All this applies only while the node is a seed of the root (its source
// is complete: the only place where first copies come from). A fetcher alone
// with the seed, with nobody else holding the root's chunks, is served in
// the order it asks, as before. A node that is itself still fetching
// serves in order.
//
// In order, too, a session whose fetcher said IN_ORDER (wire.InOrder: a
// streaming reader, node.Open and what reads through it, `peer get -o -`
// and the gateway; FetchOptions.Focus): it asks for the chunks it is
// about to read in index order, and waits on the first. Fresh first would
// serve its later requests before that one, and a hold would stop it for
// up to spreadHold: its scheduler asks the other peers for the chunks
// that follow and leaves a request of its priority range where it is
// until it looks late. So its requests are neither held nor passed, only
// recorded, and the others are spared what it got; from its first request
// on, and after a seek as before it. Beside a fetcher half-way through a
// file of 128 chunks of 256 KiB, on 4 MiB/s links, a reader had its first
// 2 MiB after 1 s and its first 8 MiB after 2.2 s; beside one done, its
// first 1 MiB after 1 s (a hold). Served in order: at once, 0.3 to 0.6 s,
// and 0.06 s (TestStreamingReaderServedInOrder); the seed then sends the
// reader a few more chunks the other could have (1.50× the file in all
// instead of 1.44× beside the one done).
//
// A fetcher that says nothing is held, whatever the order of its
// requests: one picking rarest first may well ascend in its first two
// requests. Only a fetcher of protocol 2.0 (wire.PrevProtocolID), which
// cannot say IN_ORDER, is judged by the order of its requests
// (wantQueue.inOrder): ascending so far, or in the last streamRun.
// (Guessing so for every session let through unheld the first requests
// of rarest-first fetchers that happened to ascend: 0 to 3 chunks sent
// twice per run of the update bench. In five runs of each of its cases,
// fixed and FastCDC, the publisher uploaded 1.09× to 1.73× the bytes
// changed before; after, 1.09× or 1.13× in eight, 1.27× and 1.91× in the
// other two: a rarer cause is left. A reader that seeked back was held
// until streamRun requests ascended: TestStreamingReaderServedInOrderAfterSeek.)

// spreadHold is the longest a seed holds back a request for a chunk that
// another peer can give: long enough for the fetcher to hear of it and ask
// there (a few round trips and a chunk's transfer), short enough that a
// fetcher that cannot loses little.
const spreadHold = time.Second

// maxHoldsMissed is how many held requests of a session may run out their
// hold (the fetcher did not take them elsewhere) before its requests are
// no longer held: it does not trade, or cannot. One: requests come in
// windows, and a fetcher that trades takes a held request elsewhere well
// within spreadHold, so a single miss says that it cannot, and more would
// cost a fetcher with a window of a few requests a second each.
const maxHoldsMissed = 1

// streamRun is how many requests in a row must ascend, once a 2.0
// session's requests have not, for the session to be served in the order
// it asks again (wantQueue.inOrder): a streaming reader after a seek back,
// or after a request that went back to the pool. A fetcher picking at
// random keeps 8 in a row ascending in 1 of 8! = 40320 cases.
const streamRun = 8

// spreadScan bounds the waiting requests a session looks at for one that
// is not held back: the first requests of a fetcher's window.
const spreadScan = 256

// maxSpreadPeers bounds the peers a root's record names; chunks sent to
// peers past it are not held back.
const maxSpreadPeers = 1<<16 - 1

// spread records, for one root this node serves, which peer each chunk
// was last sent to (see above). It is shared by the root's sessions
// (admit). mu is taken with server.mu held, and is not a leaf: under it,
// pickLocked asks libp2p whether a recipient is connected
// (Connectedness, which takes the network's connection lock and calls
// nothing of ours).
type spread struct {
	users int // sessions of the root: admit adds, dismiss removes; under Swarm.mu

	mu    sync.Mutex
	to    []uint16 // per chunk: 1 + the index in peers of its last recipient; 0: none
	peers []peer.ID
	index map[peer.ID]uint16 // peers, inverted
	many  bool               // two or more sessions open; set with users, read under mu
	few   bool               // no more sessions open than upload slots; likewise
}

// recipient returns the peer chunk i was last sent to, if any. sp.mu is
// held.
func (sp *spread) recipient(i uint64) (peer.ID, bool) {
	if i >= uint64(len(sp.to)) || sp.to[i] == 0 {
		return "", false
	}
	return sp.peers[sp.to[i]-1], true
}

// sentLocked records that chunk i of n goes to p, and returns the record
// it made (k; 0: none) and the one it replaced (prev), for unsend. sp.mu
// is held.
func (sp *spread) sentLocked(p peer.ID, i uint64, n int64) (k, prev uint16) {
	if n <= 0 || i >= uint64(n) {
		return 0, 0
	}
	if sp.to == nil {
		sp.to = make([]uint16, n)
		sp.index = map[peer.ID]uint16{}
	}
	prev = sp.to[i]
	k, ok := sp.index[p]
	if !ok {
		if len(sp.peers) == maxSpreadPeers {
			sp.to[i] = 0
			return 0, prev
		}
		sp.peers = append(sp.peers, p)
		k = uint16(len(sp.peers))
		sp.index[p] = k
	}
	sp.to[i] = k
	return k, prev
}

// unsend undoes the record k of chunk i that sentLocked made, putting back
// prev, unless a later send replaced it: the chunk did not go out.
func (sp *spread) unsend(i uint64, k, prev uint16) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if k != 0 && i < uint64(len(sp.to)) && sp.to[i] == k {
		sp.to[i] = prev
	}
}

// spreadSend is a send recorded at its take, while the chunk is written:
// if the write fails, the record is undone (settleSend).
type spreadSend struct {
	i       uint64
	k, prev uint16 // from sentLocked; k 0: nothing to undo
}

// settleSend ends the send of the chunk last taken: when it did not go
// out (ok false), its record is undone, and other sessions' requests for
// it are no longer held back for this peer.
func (sv *server) settleSend(ok bool) {
	sv.mu.Lock()
	s := sv.inflight
	sv.inflight = spreadSend{}
	sv.mu.Unlock()
	if !ok && s.k != 0 {
		sv.spread.unsend(s.i, s.k, s.prev)
	}
}

// recorded reports whether any send is recorded.
func (sp *spread) recorded() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.to != nil
}

// setUsers records the number of sessions of the root, of a swarm with
// slots upload slots; Swarm.mu is held.
func (sp *spread) setUsers(n, slots int) {
	sp.users = n
	sp.mu.Lock()
	sp.many, sp.few = n >= 2, n <= slots
	sp.mu.Unlock()
}

// spreadingLocked reports whether sv serves its requests by the spread
// rules: this node is a seed of the root. sv.mu is held.
func (sv *server) spreadingLocked() bool {
	return sv.spread != nil && sv.src != nil && sv.src.Complete()
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
	_, ok := sv.pickLocked(pickAny)
	return ok
}

// nextWantLocked takes the chunk request sv serves next (ok), and says
// whether another may be served right after it (more: never while
// spreading, see pickLocked). sv.mu is held.
func (sv *server) nextWantLocked() (i uint64, ok, more bool) {
	if !sv.spreadingLocked() {
		i, ok = sv.wants.pop()
		return i, ok, sv.wants.len() > 0
	}
	// Never more while spreading: a request free now may be held back by
	// the next batch (another peer got its chunk meanwhile), and the chunk
	// written now would wait in the buffer for a hold. A chunk is large
	// against a flush.
	i, ok = sv.pickLocked(pickTake)
	return i, ok, false
}

// nextPrefetchLocked returns the chunk request sv would serve next, for
// the prefetcher to read ahead, without taking it. sv.mu is held.
func (sv *server) nextPrefetchLocked() (i uint64, ok bool) {
	if !sv.spreadingLocked() {
		return sv.wants.peek()
	}
	return sv.pickLocked(pickNext)
}

// pickMode says what pickLocked is asked.
type pickMode int

const (
	pickAny  pickMode = iota // is any request not held back?
	pickNext                 // which request would be served next?
	pickTake                 // take the request served next
)

// asAskedLocked reports whether sv is served in the order it asks: its
// fetcher said IN_ORDER, or, on protocol 2.0, its requests ascend. sv.mu
// is held.
func (sv *server) asAskedLocked() bool {
	return sv.inOrder || sv.prev && sv.wants.inOrder()
}

// pickLocked finds the request sv serves next by the spread rules: the
// first (in arrival order) if sv is served as it asks (asAskedLocked);
// else, of the requests not held back, the first of a chunk sent to
// nobody yet when other sessions are open, else the first (pickAny
// returns any one of them). With pickTake, it withdraws it from the queue
// and records its send (in sv.inflight, until settleSend). It marks the
// requests it holds back. When every request looked at is held back, it
// arms the hold timer. sv.mu is held.
//
// It runs up to three times per chunk served (ready, prefetch, take), so
// a session served as it asks costs a peek, and the others allocate
// nothing until a recipient's connection is looked up.
func (sv *server) pickLocked(mode pickMode) (i uint64, ok bool) {
	sp := sv.spread
	if sv.asAskedLocked() {
		i, ok = sv.wants.peek()
		if ok && mode == pickTake {
			sv.wants.pop()
			sp.mu.Lock()
			sv.recordSendLocked(i)
			sp.mu.Unlock()
		}
		return i, ok
	}
	now := sv.sw.cfg.Now()
	net := sv.sw.host.Network()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var connected map[peer.ID]bool // made at the first recipient looked up
	var (
		fresh, free   uint64
		nFresh, nFree int
		freeMissed    bool // free was held back, and its hold ran out
		wake          time.Time
	)
	canHold := sp.few && sv.holdsMissed < maxHoldsMissed
	sv.wants.scan(spreadScan, func(h *want) bool {
		j, at := h.idx, h.at
		q, sent := sp.recipient(j)
		waiting := now.Before(at.Add(spreadHold))
		// Whether another peer that is connected has it matters only
		// for a request that may be held, or was.
		holder := false
		if sent && q != sv.peer && canHold && (waiting || h.held) {
			c, seen := connected[q]
			if !seen {
				c = net.Connectedness(q) == network.Connected
				if connected == nil {
					connected = map[peer.ID]bool{}
				}
				connected[q] = c
			}
			holder = c
		}
		switch {
		case holder && waiting:
			h.held = true
			if until := at.Add(spreadHold); wake.IsZero() || until.Before(wake) {
				wake = until
			}
		case sent || !sp.many:
			if nFree == 0 {
				// A miss only if it was held: one that waited out
				// spreadHold before its chunk went to another peer
				// was never held, and says nothing of the fetcher.
				free, freeMissed = j, h.held && holder
			}
			nFree++
		default:
			if nFresh == 0 {
				fresh = j
			}
			nFresh++
		}
		// Choosing, look on for a fresh one; only asking, any will do.
		if mode == pickAny {
			return nFresh+nFree == 0
		}
		return nFresh == 0
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
		return 0, false
	}
	if mode != pickTake {
		return i, true
	}
	if nFresh == 0 && freeMissed {
		sv.holdsMissed++
	}
	sv.wants.cancel(i)
	sv.recordSendLocked(i)
	return i, true
}

// recordSendLocked records that chunk i, just taken, goes to sv's peer:
// now, not once written, so that other sessions do not take it fresh
// while it goes out; undone if it does not (settleSend). sv.mu and
// sv.spread.mu are held.
func (sv *server) recordSendLocked(i uint64) {
	k, prev := sv.spread.sentLocked(sv.peer, i, sv.src.Layout().NumChunks())
	sv.inflight = spreadSend{i: i, k: k, prev: prev}
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
