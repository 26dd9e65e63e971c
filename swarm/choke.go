package swarm

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/swarm/choker"
	"github.com/peer-project/peer/swarm/wire"
)

// DefaultUploadSlots is how many peers a swarm sends blocks to at once
// unless Config.UploadSlots says otherwise (BitTorrent's four unchoked
// peers).
const DefaultUploadSlots = 4

// slots drives the swarm's choker (package choker: which sessions get the
// upload slots) from the serving sessions: it turns what a session does
// into the choker's events, with the time, and carries out its actions on
// the session's queues (queue or drop a WANT's requests, CHOKE, UNCHOKE).
// A Bitswap peer is a quiet session of it (see quietSession): its
// messages of blocks wait in Bitswap's Sending callback for a slot.
// It sends the choker a Tick when one is due. Safe for concurrent use: one
// mutex serializes the choker and the session queues it acts on; lock
// order: slots.mu, then server.mu. A session's requests are queued and
// taken under slots.mu only, so that the choker's count of them is exact.
// Sessions are woken, and chokes counted, once slots.mu is released.
type slots struct {
	now   func() time.Time
	run   func(func()) bool // starts a goroutine the swarm waits for
	count func(func(*Stats))

	mu       sync.Mutex
	c        *choker.Choker
	sessions map[choker.SessionID]*server
	quiets   map[choker.SessionID]*quietSession // Bitswap peers' sessions
	lastID   choker.SessionID
	timer    *time.Timer
	timerAt  time.Time // when timer fires; zero: not armed
	closed   bool
}

func newSlots(n int, now func() time.Time, run func(func()) bool, count func(func(*Stats))) *slots {
	return &slots{
		now: now, run: run, count: count,
		c:        choker.New(choker.Config{Slots: n}),
		sessions: map[choker.SessionID]*server{},
		quiets:   map[choker.SessionID]*quietSession{},
	}
}

// quietSession is a Bitswap peer's session of the choker (a quiet one:
// Bitswap has no CHOKE). Its requests are the messages of blocks that
// Bitswap's server has ready for the peer, one at a time: each waits in
// sendTurn until the session holds a slot.
type quietSession struct {
	id    choker.SessionID
	turn  chan struct{} // one message of the peer at a time
	ready chan struct{} // signalled when held or gone changes
	held  bool          // told Hold, and no Unchoke since; guarded by slots.mu
	gone  bool          // left; guarded by slots.mu
}

// errQuietGone fails a Bitswap send to a peer whose session has ended.
var errQuietGone = errors.New("swarm: the Bitswap peer is gone")

// joinQuiet enters a Bitswap peer's session.
func (sl *slots) joinQuiet(p peer.ID) *quietSession {
	q := &quietSession{turn: make(chan struct{}, 1), ready: make(chan struct{}, 1)}
	sl.mu.Lock()
	sl.lastID++
	q.id = sl.lastID
	sl.quiets[q.id] = q
	out := sl.stepLocked(choker.Event{Kind: choker.Join, Session: q.id, Peer: choker.PeerID(p), Quiet: true}, nil)
	sl.mu.Unlock()
	sl.after(out)
	return q
}

// sendTurn waits until q may send a message of blocks: its turn among
// the peer's messages, then a slot. It blocks until then, until q is gone
// or until ctx is done (an error: the message is not sent). On success
// the caller must call sendDone once the message went or failed.
func (sl *slots) sendTurn(ctx context.Context, q *quietSession) error {
	select {
	case q.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	sl.step(choker.Event{Kind: choker.Want, Session: q.id, N: 1}, nil)
	for {
		sl.mu.Lock()
		gone, held := q.gone || sl.closed, q.held
		var out outcome
		if !gone && !held {
			out = sl.stepLocked(choker.Event{Kind: choker.Writing, Session: q.id}, nil)
		}
		sl.mu.Unlock()
		sl.after(out)
		switch {
		case gone:
			<-q.turn
			return errQuietGone
		case !held:
			return nil
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			sl.step(choker.Event{Kind: choker.Cancel, Session: q.id, N: 1}, nil)
			<-q.turn
			return ctx.Err()
		}
	}
}

// sendDone records that the message sendTurn let go was sent, or given
// up on.
func (sl *slots) sendDone(q *quietSession) {
	sl.step(choker.Event{Kind: choker.Sent, Session: q.id}, nil)
	<-q.turn
}

// leaveQuiet ends q: a message waiting for its turn is not sent.
func (sl *slots) leaveQuiet(q *quietSession) {
	sl.mu.Lock()
	out := sl.stepLocked(choker.Event{Kind: choker.Leave, Session: q.id}, nil)
	q.gone = true
	delete(sl.quiets, q.id)
	sl.mu.Unlock()
	sl.after(out)
	q.signal()
}

func (q *quietSession) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// join enters a new session.
func (sl *slots) join(sv *server) {
	sl.mu.Lock()
	sl.lastID++
	sv.id = sl.lastID
	sl.sessions[sv.id] = sv
	out := sl.stepLocked(choker.Event{Kind: choker.Join, Session: sv.id, Peer: choker.PeerID(sv.peer)}, nil)
	sl.mu.Unlock()
	sl.after(out)
}

// want queues the chunk requests idx of sv, or drops them: when sv is
// choked (they crossed the CHOKE on the wire), or when no slot is free (sv
// is choked now).
func (sl *slots) want(sv *server, idx []uint64) {
	sl.step(choker.Event{Kind: choker.Want, Session: sv.id, N: len(idx)}, idx)
}

// cancel withdraws sv's queued requests of the chunks idx (the earliest of
// each), at O(1) each.
func (sl *slots) cancel(sv *server, idx []uint64) {
	sl.mu.Lock()
	n := 0
	sv.mu.Lock()
	for _, i := range idx {
		if sv.wants.cancel(i) {
			n++
		}
	}
	sv.mu.Unlock()
	var out outcome
	if n > 0 {
		out = sl.stepLocked(choker.Event{Kind: choker.Cancel, Session: sv.id, N: n}, nil)
	}
	sl.mu.Unlock()
	sl.after(out)
}

// take takes what sv sends next: the control messages, announcements and
// DAG node requests queued, and the next chunk request, if any
// (choker.Writing: sent must follow).
func (sl *slots) take(sv *server) batch {
	sl.mu.Lock()
	sv.mu.Lock()
	b := batch{ctl: sv.ctl, haves: sv.haves, nodes: sv.nodes}
	sv.ctl, sv.haves, sv.nodes = nil, nil, nil
	b.chunk, b.serve, b.more = sv.nextWantLocked()
	sv.mu.Unlock()
	var out outcome
	if b.serve {
		out = sl.stepLocked(choker.Event{Kind: choker.Writing, Session: sv.id}, nil)
	}
	sl.mu.Unlock()
	sl.after(out)
	return b
}

// sent records that sv sent the block it took (or gave up on it).
func (sl *slots) sent(sv *server) {
	sl.step(choker.Event{Kind: choker.Sent, Session: sv.id}, nil)
}

// notInterested gives sv's slot to the next in line if sv has nothing
// queued: it wants nothing of us for now. It stays unchoked.
func (sl *slots) notInterested(sv *server) {
	sl.step(choker.Event{Kind: choker.NotInterested, Session: sv.id}, nil)
}

// leave takes an ended session out: its slot goes to the next in line.
func (sl *slots) leave(sv *server) {
	sl.step(choker.Event{Kind: choker.Leave, Session: sv.id}, nil)
	sl.mu.Lock()
	delete(sl.sessions, sv.id)
	sl.mu.Unlock()
}

// credit records n verified bytes that p sent us: the choker serves first
// the peers that serve us.
func (sl *slots) credit(p peer.ID, n int) {
	sl.step(choker.Event{Kind: choker.Credit, Peer: choker.PeerID(p), N: n}, nil)
}

// tick runs the choker's periodic check when the timer fires.
func (sl *slots) tick() {
	sl.step(choker.Event{Kind: choker.Tick}, nil)
}

// close stops the timer; later events do nothing, and Bitswap sends
// waiting for a slot give up.
func (sl *slots) close() {
	sl.mu.Lock()
	sl.closed = true
	if sl.timer != nil {
		sl.timer.Stop()
	}
	qs := make([]*quietSession, 0, len(sl.quiets))
	for _, q := range sl.quiets {
		qs = append(qs, q)
	}
	sl.mu.Unlock()
	for _, q := range qs {
		q.signal()
	}
}

func (sl *slots) step(ev choker.Event, idx []uint64) {
	sl.mu.Lock()
	out := sl.stepLocked(ev, idx)
	sl.mu.Unlock()
	sl.after(out)
}

// outcome is what is left to do after a step, once slots.mu is released.
type outcome struct {
	wake   []*server       // sessions whose queues changed
	quiets []*quietSession // Bitswap sessions unchoked
	chokes int             // CHOKEs and Holds decided
}

// after wakes the sessions of out and counts its chokes; slots.mu is not
// held.
func (sl *slots) after(out outcome) {
	for _, sv := range out.wake {
		sv.signal()
	}
	for _, q := range out.quiets {
		q.signal()
	}
	if n := int64(out.chokes); n > 0 {
		sl.count(func(st *Stats) { st.Chokes += n })
	}
}

// stepLocked steps the choker with ev, at the time now, and carries out its
// actions on the sessions' queues; idx are the requests of a Want. sl.mu
// is held.
func (sl *slots) stepLocked(ev choker.Event, idx []uint64) (out outcome) {
	if sl.closed {
		return out
	}
	ev.At = sl.now()
	for _, a := range sl.c.Step(ev) {
		sv := sl.sessions[a.Session]
		if sv == nil {
			if q := sl.quiets[a.Session]; q != nil {
				switch a.Kind {
				case choker.Hold:
					q.held = true
					out.chokes++
				case choker.Unchoke:
					q.held = false
					out.quiets = append(out.quiets, q)
				}
			}
			continue
		}
		sv.mu.Lock()
		switch a.Kind {
		case choker.Queue:
			sv.wants.pushAt(idx, ev.At)
		case choker.Choke:
			sv.choked = true
			sv.wants.reset()
			sv.ctl = append(sv.ctl, &wire.Choke{})
			out.chokes++
		case choker.Unchoke:
			sv.choked = false
			sv.ctl = append(sv.ctl, &wire.Unchoke{})
		}
		sv.mu.Unlock()
		if a.Kind != choker.Drop {
			out.wake = append(out.wake, sv)
		}
	}
	sl.armLocked(ev.At)
	return out
}

// armLocked has tick run when the choker wants a Tick; sl.mu is held.
func (sl *slots) armLocked(now time.Time) {
	at, ok := sl.c.NextCheck()
	if !ok || at.Equal(sl.timerAt) {
		return
	}
	sl.timerAt = at
	d := max(at.Sub(now), 0)
	if sl.timer == nil {
		sl.timer = time.AfterFunc(d, sl.fire)
		return
	}
	sl.timer.Reset(d)
}

// fire runs tick on a goroutine the swarm waits for, unless it is closing.
func (sl *slots) fire() {
	sl.mu.Lock()
	sl.timerAt = time.Time{}
	sl.mu.Unlock()
	sl.run(sl.tick)
}
