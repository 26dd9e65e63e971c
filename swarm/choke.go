package swarm

import (
	"slices"
	"sync"
	"time"

	"github.com/peer-project/peer/swarm/wire"
)

// DefaultUploadSlots is how many peers a swarm sends blocks to at once
// unless Config.UploadSlots says otherwise (BitTorrent's four unchoked
// peers).
const DefaultUploadSlots = 4

// Choking policy (see choker).
const (
	// turnBlocks is how many blocks a peer gets per turn while others
	// wait for a slot.
	turnBlocks = 2
	// idleRelease is how long a slot holder may go without a request
	// before its slot goes to a waiting peer.
	idleRelease = 500 * time.Millisecond
	// stuckRevoke is how long one block may take to write before its
	// session loses its slot to a waiting peer (a peer that stopped
	// reading must not hold a slot for good).
	stuckRevoke = 15 * time.Second
	// chokeCheck is how often idle and stuck slot holders are looked for
	// while peers wait.
	chokeCheck = 200 * time.Millisecond
	// optimisticEvery: every optimisticEvery-th slot given from the line
	// goes to the peer that has waited longest, whatever it has sent us
	// (BitTorrent's optimistic unchoke: a newcomer gets a chance to trade,
	// and nobody waits for good). Every other goes to the waiting peer
	// with the most credit (see peerLimit).
	optimisticEvery = 3
)

// choker gives a swarm's upload slots to the sessions that want blocks,
// so that the upload goes to a few peers at a time, each of which gets its
// blocks soon and can pass them on, rather than to every peer at a
// trickle (with requests that time out and come twice).
//
// A session that asks for a block (WANT) takes a free slot; if there is
// none it is choked: its requests are dropped, it is told CHOKE and it
// waits in line. A slot is passed on (UNCHOKE) when its holder has had
// turnBlocks blocks while others waited (the holder is choked and goes to
// the back of the line), has asked for nothing for idleRelease, has been
// stuck on one block for stuckRevoke, or has ended.
//
// Who gets it is BitTorrent's tit-for-tat: the waiting peer that has sent
// us the most lately (its credit), so that peers which trade with us are
// served first and a free rider gets only the spare turns; but every
// optimisticEvery-th slot goes to the first in line. A seeder, or a node
// whose peers send it nothing, thus serves in turn, first come first
// served. A swarm's slots serve all its roots, and credit earned on one
// root counts for all. Safe for concurrent use; lock order: choker.mu,
// then server.mu or peerLimit.mu.
type choker struct {
	slots int
	now   func() time.Time

	mu      sync.Mutex
	holders []*server // hold a slot
	waiting []*server // choked, in line for a slot
	grants  int       // slots given from the line
	timer   *time.Timer
	armed   bool // timer runs check soon
	closed  bool
}

// chokeState is a session's part of the choker, guarded by choker.mu.
type chokeState struct {
	slot    bool      // holds a slot
	queued  bool      // in line
	turn    int       // blocks sent since it got its slot
	active  time.Time // last request or block sent
	writing bool      // a block is being read, rate-limited or written
	gone    bool
}

func newChoker(slots int, now func() time.Time) *choker {
	return &choker{slots: slots, now: now}
}

// want queues the chunk requests idx of sv, or drops them: when sv is
// choked (they crossed the CHOKE on the wire), or when no slot is free (sv
// is choked now).
func (c *choker) want(sv *server, idx []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sv.mu.Lock()
	if sv.choked || c.closed || sv.cs.gone {
		sv.mu.Unlock()
		return
	}
	sv.wants.push(idx)
	sv.mu.Unlock()
	sv.cs.active = c.now()
	if !sv.cs.slot {
		if len(c.holders) < c.slots && len(c.waiting) == 0 {
			c.grant(sv)
		} else {
			c.choke(sv)
			c.enqueue(sv)
		}
	}
	sv.signal()
}

// writing records that sv starts sending a block.
func (c *choker) writing(sv *server) {
	c.mu.Lock()
	sv.cs.writing, sv.cs.active = true, c.now()
	c.mu.Unlock()
}

// sent records that sv sent a block (or gave up on one): after its turn,
// while others wait, it is choked and goes to the back of the line.
func (c *choker) sent(sv *server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sv.cs.writing, sv.cs.active = false, c.now()
	sv.cs.turn++
	if sv.cs.slot && sv.cs.turn >= turnBlocks && len(c.waiting) > 0 {
		c.release(sv)
		c.choke(sv)
		c.enqueue(sv)
		c.next()
	}
}

// notInterested gives sv's slot to the next in line if sv has nothing
// queued: it wants nothing of us for now. It stays unchoked.
func (c *choker) notInterested(sv *server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sv.cs.slot && !sv.cs.writing && !sv.hasWants() {
		c.release(sv)
		c.next()
	}
}

// leave takes an ended session out: its slot goes to the next in line.
func (c *choker) leave(sv *server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sv.cs.gone = true
	if sv.cs.queued {
		sv.cs.queued = false
		c.waiting = slices.DeleteFunc(c.waiting, func(x *server) bool { return x == sv })
	}
	if sv.cs.slot {
		c.release(sv)
		c.next()
	}
}

// close stops the timer; later calls do nothing.
func (c *choker) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
}

// check passes on the slots of idle and stuck holders while peers wait.
func (c *choker) check() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = false
	if c.closed {
		return
	}
	now := c.now()
	for _, sv := range slices.Clone(c.holders) {
		if len(c.waiting) == 0 {
			break
		}
		idle := now.Sub(sv.cs.active)
		switch {
		case sv.cs.writing && idle >= stuckRevoke:
			c.release(sv)
			c.choke(sv) // told once the write ends
			c.enqueue(sv)
		case !sv.cs.writing && idle >= idleRelease && !sv.hasWants():
			c.release(sv) // still unchoked: its next WANT gets in line
		default:
			continue
		}
		c.next()
	}
	c.arm()
}

// grant gives sv a slot; c.mu is held.
func (c *choker) grant(sv *server) {
	sv.cs.slot, sv.cs.turn, sv.cs.active = true, 0, c.now()
	c.holders = append(c.holders, sv)
}

// release takes sv's slot; c.mu is held.
func (c *choker) release(sv *server) {
	sv.cs.slot = false
	c.holders = slices.DeleteFunc(c.holders, func(x *server) bool { return x == sv })
}

// choke drops sv's requests and has it told CHOKE; c.mu is held.
func (c *choker) choke(sv *server) {
	sv.mu.Lock()
	fresh := !sv.choked
	if fresh {
		sv.choked = true
		sv.wants.reset()
		sv.ctl = append(sv.ctl, &wire.Choke{})
	}
	sv.mu.Unlock()
	if fresh {
		sv.sw.count(func(st *Stats) { st.Chokes++ })
	}
	sv.signal()
}

// enqueue puts sv at the back of the line; c.mu is held.
func (c *choker) enqueue(sv *server) {
	if !sv.cs.queued && !sv.cs.gone {
		sv.cs.queued = true
		c.waiting = append(c.waiting, sv)
	}
	c.arm()
}

// next unchokes peers from the line while slots are free; c.mu is held.
func (c *choker) next() {
	for len(c.holders) < c.slots && len(c.waiting) > 0 {
		k := c.pick()
		sv := c.waiting[k]
		c.waiting = slices.Delete(c.waiting, k, k+1)
		sv.cs.queued = false
		c.grant(sv)
		sv.mu.Lock()
		sv.choked = false
		sv.ctl = append(sv.ctl, &wire.Unchoke{})
		sv.mu.Unlock()
		sv.signal()
	}
}

// pick returns the index in the line of the next peer to unchoke: the
// first in line at every optimisticEvery-th grant, else the one with the
// most credit (the first in line of equals); c.mu is held.
func (c *choker) pick() int {
	c.grants++
	if c.grants%optimisticEvery == 0 {
		return 0
	}
	now := c.now()
	best, most := 0, 0.0
	for k, sv := range c.waiting {
		if cr := sv.lim.credited(now); cr > most {
			best, most = k, cr
		}
	}
	return best
}

// arm runs check after chokeCheck while peers wait; c.mu is held.
func (c *choker) arm() {
	if c.closed || c.armed || len(c.waiting) == 0 {
		return
	}
	c.armed = true
	if c.timer == nil {
		c.timer = time.AfterFunc(chokeCheck, c.check)
		return
	}
	c.timer.Reset(chokeCheck)
}
