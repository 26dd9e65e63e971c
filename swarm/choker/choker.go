package choker

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// SessionID names one serving session (one stream); the caller picks it.
type SessionID uint64

// PeerID names the peer a session serves; credit is kept by peer, so that
// what a peer sent us counts for all its sessions.
type PeerID string

// Kind is the kind of an Event.
type Kind int

// The events.
const (
	// Join: Session, of Peer, began; Quiet if it cannot be told CHOKE
	// or UNCHOKE. Events of a session that never joined, or has left, are
	// ignored (a Want of one is dropped).
	Join Kind = iota
	// Want: Session asked for N blocks (one WANT message).
	Want
	// Cancel: N of Session's queued requests were withdrawn (CANCEL):
	// only those that were still queued.
	Cancel
	// Writing: Session's next queued request was taken from its queue
	// and its block is being read, rate-limited and written.
	Writing
	// Sent: the block of the last Writing was written, or given up on.
	Sent
	// NotInterested: Session said NOT_INTERESTED.
	NotInterested
	// Leave: Session ended.
	Leave
	// Credit: Peer sent us N verified bytes.
	Credit
	// Tick: look for idle and stuck slot holders now. The caller sends
	// it when NextCheck says; one sent earlier or later does no harm
	// (holders are judged by the time since their last event).
	Tick
)

func (k Kind) String() string {
	kindNames := [...]string{"join", "want", "cancel", "writing", "sent", "notinterested", "leave", "credit", "tick"}
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Event is what the serving code tells the choker. At is the caller's
// clock at the event; the choker reads no clock of its own.
type Event struct {
	Kind    Kind
	At      time.Time
	Session SessionID // all but Credit and Tick
	Peer    PeerID    // Join and Credit
	N       int       // Want and Cancel: requests; Credit: bytes
	// Quiet, at Join, says the session has no CHOKE or UNCHOKE on its
	// wire (a Bitswap peer): its requests are never dropped. While it
	// waits for a slot its requests wait in its queue (a Want of it is
	// queued, and it is told Hold, not Choke), and Unchoke lets it send
	// them.
	Quiet bool
}

// ActionKind is the kind of an Action.
type ActionKind int

// The actions, each for one session.
const (
	// Queue: put the N requests of the Want just stepped in the
	// session's queue.
	Queue ActionKind = iota
	// Drop: drop the N requests of the Want just stepped: the session is
	// choked (they crossed our CHOKE on the wire) or gone.
	Drop
	// Choke: drop every request the session has queued, and send it
	// CHOKE. A Want answered with Choke is dropped too.
	Choke
	// Unchoke: send the session UNCHOKE; it holds a slot now. A quiet
	// session is sent nothing: it may send what it has queued.
	Unchoke
	// Hold: a quiet session lost its slot, or waits for one: it sends
	// nothing until Unchoke, and keeps its queue.
	Hold
)

func (k ActionKind) String() string {
	actionNames := [...]string{"queue", "drop", "choke", "unchoke", "hold"}
	if k >= 0 && int(k) < len(actionNames) {
		return actionNames[k]
	}
	return fmt.Sprintf("action(%d)", int(k))
}

// Action is what the serving code must do for one session, in order.
type Action struct {
	Kind    ActionKind
	Session SessionID
	N       int // Queue and Drop: requests
}

func (a Action) String() string {
	if a.Kind == Queue || a.Kind == Drop {
		return fmt.Sprintf("%s %d %d", a.Kind, a.Session, a.N)
	}
	return fmt.Sprintf("%s %d", a.Kind, a.Session)
}

// Config is the choker's policy. The zero value of a field means its
// default (DefaultConfig).
type Config struct {
	// Slots is how many sessions are sent blocks at once.
	Slots int
	// TurnBlocks is how many blocks a slot holder gets per turn while
	// others wait.
	TurnBlocks int
	// IdleRelease is how long a slot holder may go without a request
	// before its slot goes to a waiting session.
	IdleRelease time.Duration
	// StuckRevoke is how long one block may take to write before its
	// session loses its slot to a waiting one (a peer that stopped
	// reading must not hold a slot for good).
	StuckRevoke time.Duration
	// CheckEvery is how often idle and stuck holders are looked for while
	// sessions wait (NextCheck).
	CheckEvery time.Duration
	// OptimisticEvery: every OptimisticEvery-th slot given from the line
	// goes to the session that has waited longest, whatever its peer has
	// sent us; every other to the waiting session whose peer has the most
	// credit.
	OptimisticEvery int
	// CreditTau is the time constant of a peer's credit: what it sent us
	// that long ago counts 1/e as much as what it sends now.
	CreditTau time.Duration
	// CreditKeep is the least credit, in bytes, kept for a peer with no
	// session.
	CreditKeep float64
}

// DefaultConfig returns the defaults: BitTorrent's four slots, turns of
// two blocks, an optimistic unchoke every third grant.
func DefaultConfig() Config {
	return Config{
		Slots:           4,
		TurnBlocks:      2,
		IdleRelease:     500 * time.Millisecond,
		StuckRevoke:     15 * time.Second,
		CheckEvery:      200 * time.Millisecond,
		OptimisticEvery: 3,
		CreditTau:       10 * time.Second,
		// 4 MiB fades to this in 83 s: a peer that sent us a file and
		// comes back for one of ours within a minute or so finds its
		// credit.
		CreditKeep: 1 << 10,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.Slots <= 0 {
		c.Slots = d.Slots
	}
	if c.TurnBlocks <= 0 {
		c.TurnBlocks = d.TurnBlocks
	}
	if c.IdleRelease <= 0 {
		c.IdleRelease = d.IdleRelease
	}
	if c.StuckRevoke <= 0 {
		c.StuckRevoke = d.StuckRevoke
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = d.CheckEvery
	}
	if c.OptimisticEvery <= 0 {
		c.OptimisticEvery = d.OptimisticEvery
	}
	if c.CreditTau <= 0 {
		c.CreditTau = d.CreditTau
	}
	if c.CreditKeep <= 0 {
		c.CreditKeep = d.CreditKeep
	}
}

// session is one session's part of the choker.
type session struct {
	id      SessionID
	peer    *peerState
	quiet   bool      // no CHOKE on its wire: held, not choked
	slot    bool      // holds a slot
	queued  bool      // in line
	choked  bool      // told (or about to be told) CHOKE, or Hold
	turn    int       // blocks sent since it got its slot
	active  time.Time // last request or block sent
	writing bool      // a block is being read, rate-limited or written
	wants   int       // requests in its queue
}

// peerState is one peer's credit: the verified bytes it sent us lately.
type peerState struct {
	id       PeerID
	credit   float64 // bytes, decayed with CreditTau
	at       time.Time
	sessions int
}

// Choker is the state machine. It is not safe for concurrent use: the
// caller serializes its calls (Step, NextCheck, Credited).
type Choker struct {
	cfg      Config
	sessions map[SessionID]*session
	peers    map[PeerID]*peerState
	holders  []*session // hold a slot, in the order they got it
	waiting  []*session // choked, in line for a slot
	grants   int        // slots given from the line
	checkAt  time.Time  // when a Tick is due; zero: none
	out      []Action
}

// New returns a choker with no session.
func New(cfg Config) *Choker {
	cfg.fill()
	return &Choker{cfg: cfg, sessions: map[SessionID]*session{}, peers: map[PeerID]*peerState{}}
}

// Step applies ev and returns the actions it calls for, in order. The
// slice is good until the next Step.
func (c *Choker) Step(ev Event) []Action {
	c.out = c.out[:0]
	now := ev.At
	if ev.Kind == Credit {
		p := c.peer(ev.Peer, now)
		p.credit = c.decayed(p, now) + float64(ev.N)
		p.at = now
		return c.out
	}
	if ev.Kind == Tick {
		c.checkAt = time.Time{}
		c.check(now)
		return c.out
	}
	s := c.sessions[ev.Session]
	if ev.Kind == Join {
		if s == nil {
			p := c.peer(ev.Peer, now)
			p.sessions++
			c.sessions[ev.Session] = &session{id: ev.Session, peer: p, active: now, quiet: ev.Quiet}
		}
		return c.out
	}
	if s == nil {
		if ev.Kind == Want {
			c.emit(Drop, ev.Session, ev.N)
		}
		return c.out
	}
	switch ev.Kind {
	case Want:
		c.want(s, ev.N, now)
	case Cancel:
		s.wants = max(0, s.wants-ev.N)
	case Writing:
		s.wants = max(0, s.wants-1)
		s.writing, s.active = true, now
	case Sent:
		c.sent(s, now)
	case NotInterested:
		if s.slot && !s.writing && s.wants == 0 {
			c.release(s)
			c.next(now)
		}
	case Leave:
		c.leave(s, now)
	}
	return c.out
}

// NextCheck returns when a Tick is due, if one is: while sessions wait.
func (c *Choker) NextCheck() (time.Time, bool) {
	return c.checkAt, !c.checkAt.IsZero()
}

// Credited returns the credit of p at now, in bytes.
func (c *Choker) Credited(p PeerID, now time.Time) float64 {
	if ps := c.peers[p]; ps != nil {
		return c.decayed(ps, now)
	}
	return 0
}

func (c *Choker) emit(k ActionKind, s SessionID, n int) {
	c.out = append(c.out, Action{Kind: k, Session: s, N: n})
}

// want queues the n requests of s, or drops them: when s is choked (they
// crossed the CHOKE on the wire), or when no slot is free (s is choked
// now). A quiet session's requests are queued whatever its state: when no
// slot is free it is held, and waits in line with them.
func (c *Choker) want(s *session, n int, now time.Time) {
	if s.choked && !s.quiet {
		c.emit(Drop, s.id, n)
		return
	}
	if !s.choked {
		s.active = now
	}
	if !s.slot && !s.choked {
		if len(c.holders) < c.cfg.Slots && len(c.waiting) == 0 {
			c.grant(s, now)
		} else {
			c.choke(s) // the requests go with the queue, unless s is quiet
			c.enqueue(s, now)
			if !s.quiet {
				return
			}
		}
	}
	s.wants += n
	c.emit(Queue, s.id, n)
}

// sent records that s sent a block (or gave up on one): after its turn,
// while others wait, it is choked and goes to the back of the line.
func (c *Choker) sent(s *session, now time.Time) {
	s.writing, s.active = false, now
	s.turn++
	if s.slot && s.turn >= c.cfg.TurnBlocks && len(c.waiting) > 0 {
		c.release(s)
		c.choke(s)
		c.enqueue(s, now)
		c.next(now)
	}
}

// leave takes an ended session out: its slot goes to the next in line.
func (c *Choker) leave(s *session, now time.Time) {
	delete(c.sessions, s.id)
	if s.queued {
		s.queued = false
		c.waiting = slices.DeleteFunc(c.waiting, func(x *session) bool { return x == s })
	}
	if s.slot {
		c.release(s)
		c.next(now)
	}
	p := s.peer
	if p.sessions--; p.sessions == 0 && c.decayed(p, now) < c.cfg.CreditKeep {
		delete(c.peers, p.id)
	}
}

// check passes on the slots of idle and stuck holders while others wait.
func (c *Choker) check(now time.Time) {
	for _, s := range slices.Clone(c.holders) {
		if len(c.waiting) == 0 {
			break
		}
		idle := now.Sub(s.active)
		switch {
		case s.writing && idle >= c.cfg.StuckRevoke:
			c.release(s)
			c.choke(s) // told once the write ends
			c.enqueue(s, now)
		case !s.writing && idle >= c.cfg.IdleRelease && s.wants == 0:
			c.release(s) // still unchoked: its next Want gets in line
		default:
			continue
		}
		c.next(now)
	}
	c.arm(now)
}

func (c *Choker) grant(s *session, now time.Time) {
	s.slot, s.turn, s.active = true, 0, now
	c.holders = append(c.holders, s)
}

func (c *Choker) release(s *session) {
	s.slot = false
	c.holders = slices.DeleteFunc(c.holders, func(x *session) bool { return x == s })
}

// choke drops the requests of s and has it told CHOKE, unless it was; a
// quiet session keeps its requests and is held.
func (c *Choker) choke(s *session) {
	if s.choked {
		return
	}
	s.choked = true
	if s.quiet {
		c.emit(Hold, s.id, 0)
		return
	}
	s.wants = 0
	c.emit(Choke, s.id, 0)
}

// enqueue puts s at the back of the line.
func (c *Choker) enqueue(s *session, now time.Time) {
	if !s.queued {
		s.queued = true
		c.waiting = append(c.waiting, s)
	}
	c.arm(now)
}

// next unchokes sessions from the line while slots are free.
func (c *Choker) next(now time.Time) {
	for len(c.holders) < c.cfg.Slots && len(c.waiting) > 0 {
		k := c.pick(now)
		s := c.waiting[k]
		c.waiting = slices.Delete(c.waiting, k, k+1)
		s.queued, s.choked = false, false
		c.grant(s, now)
		c.emit(Unchoke, s.id, 0)
	}
}

// pick returns the index in the line of the next session to unchoke: the
// first in line at every OptimisticEvery-th grant, else the one whose peer
// has the most credit (the first in line of equals).
func (c *Choker) pick(now time.Time) int {
	c.grants++
	if c.grants%c.cfg.OptimisticEvery == 0 {
		return 0
	}
	best, most := 0, 0.0
	for k, s := range c.waiting {
		if cr := c.decayed(s.peer, now); cr > most {
			best, most = k, cr
		}
	}
	return best
}

// arm has a Tick due CheckEvery from now while sessions wait.
func (c *Choker) arm(now time.Time) {
	if c.checkAt.IsZero() && len(c.waiting) > 0 {
		c.checkAt = now.Add(c.cfg.CheckEvery)
	}
}

// peer returns p's state, made on first use; peers with no session whose
// credit has faded below CreditKeep are forgotten first.
func (c *Choker) peer(p PeerID, now time.Time) *peerState {
	if ps := c.peers[p]; ps != nil {
		return ps
	}
	for q, ps := range c.peers {
		if ps.sessions == 0 && c.decayed(ps, now) < c.cfg.CreditKeep {
			delete(c.peers, q)
		}
	}
	ps := &peerState{id: p, at: now}
	c.peers[p] = ps
	return ps
}

func (c *Choker) decayed(p *peerState, now time.Time) float64 {
	if p.credit == 0 || !now.After(p.at) {
		return p.credit
	}
	return p.credit * math.Exp(-float64(now.Sub(p.at))/float64(c.cfg.CreditTau))
}
