package sched

import (
	"container/heap"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"
)

// PeerID names a source. The scheduler only compares and prints it; the
// caller maps it to a connection (for libp2p, peer.ID's string form).
type PeerID string

// Limits on a Config.
const (
	// MaxChunks is the most chunks one Scheduler tracks: 2^26, a 1 TiB
	// file at the 16 KiB minimum chunk size. The scheduler keeps about 14
	// bytes per chunk, plus ⌈Chunks/8⌉ bytes per partial peer.
	MaxChunks = 1 << 26
	// MaxChunkSize bounds Config.ChunkSize and what SizeOf may return.
	MaxChunkSize = 1 << 30
	// MaxWindowLimit bounds Config.MaxWindow.
	MaxWindowLimit = 1 << 16
	// MaxEndgameDup bounds Config.EndgameDup.
	MaxEndgameDup = 8
)

// Defaults for the zero fields of a Config.
const (
	DefaultMinWindow      = 2
	DefaultMaxWindow      = 256
	DefaultInFlight       = 250 * time.Millisecond
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxStrikes     = 1
	DefaultEndgameDup     = 2
)

// Errors. Every error the package returns wraps one of these.
var (
	// ErrConfig is wrapped by the errors of New for an unusable Config.
	ErrConfig = errors.New("sched: invalid config")
	// ErrUnknownPeer is returned for an event about a peer that has not
	// joined (or has left).
	ErrUnknownPeer = errors.New("sched: unknown peer")
	// ErrIndex is returned for a chunk index outside [0, Chunks).
	ErrIndex = errors.New("sched: chunk index out of range")
	// ErrBitfield is returned for a HAVE bitfield (or resume bitfield) of
	// the wrong length or with spare bits set.
	ErrBitfield = errors.New("sched: malformed bitfield")
	// ErrEvent is returned by Step for an Event of no known kind.
	ErrEvent = errors.New("sched: unknown event")
	// ErrTranscript is wrapped by the errors of the transcript reader
	// and writers for a line they cannot read or an event they cannot
	// write.
	ErrTranscript = errors.New("sched: malformed transcript")
)

// Config describes one download. Zero fields take the defaults named in
// their comments; Chunks and ChunkSize are required.
type Config struct {
	// Chunks is the number of chunks, 1 to MaxChunks.
	Chunks int64
	// ChunkSize is the size in bytes of a chunk (every chunk but the
	// last for fixed-size chunking, the average for content-defined). It
	// turns a peer's measured bytes/s into a window of requests.
	ChunkSize int
	// SizeOf, if not nil, returns the exact size of chunk i, for byte
	// accounting (rates, duplicate bytes). Nil means every chunk is
	// ChunkSize bytes. It must be pure and cheap.
	SizeOf func(i int64) int
	// MinWindow and MaxWindow bound the requests one peer may have
	// outstanding (defaults 2 and 256). A snubbed peer (one that timed out
	// and has sent nothing since) gets one.
	MinWindow, MaxWindow int
	// InFlight is how much of a peer's time its window should cover
	// beyond one round trip (default 250 ms): window = ⌈rate × (InFlight
	// + RTT) / ChunkSize⌉.
	InFlight time.Duration
	// RequestTimeout is the least time a request may stay unanswered
	// (default 10 s). Per peer it grows to 4 × the smoothed
	// request-to-arrival time, up to 8 × RequestTimeout.
	RequestTimeout time.Duration
	// MaxStrikes is how many bad blocks (or Misbehaved calls) ban a peer
	// (default 1: see doc.go).
	MaxStrikes int
	// EndgameDup is the most requests one chunk may have outstanding at
	// once, the first included (default 2; 1 turns duplicates off).
	EndgameDup int
}

func (c *Config) validate() error {
	switch {
	case c.Chunks < 1 || c.Chunks > MaxChunks:
		return fmt.Errorf("%w: Chunks %d not in [1, %d]", ErrConfig, c.Chunks, MaxChunks)
	case c.ChunkSize < 1 || c.ChunkSize > MaxChunkSize:
		return fmt.Errorf("%w: ChunkSize %d not in [1, %d]", ErrConfig, c.ChunkSize, MaxChunkSize)
	case c.MinWindow < 0 || c.MaxWindow < 0 || c.MaxWindow > MaxWindowLimit:
		return fmt.Errorf("%w: window [%d, %d] outside [0, %d]", ErrConfig, c.MinWindow, c.MaxWindow, MaxWindowLimit)
	case c.InFlight < 0 || c.RequestTimeout < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	case c.MaxStrikes < 0:
		return fmt.Errorf("%w: MaxStrikes %d", ErrConfig, c.MaxStrikes)
	case c.EndgameDup < 0 || c.EndgameDup > MaxEndgameDup:
		return fmt.Errorf("%w: EndgameDup %d not in [0, %d]", ErrConfig, c.EndgameDup, MaxEndgameDup)
	}
	if c.MinWindow == 0 {
		c.MinWindow = DefaultMinWindow
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = max(DefaultMaxWindow, c.MinWindow)
	}
	if c.MinWindow > c.MaxWindow {
		return fmt.Errorf("%w: MinWindow %d > MaxWindow %d", ErrConfig, c.MinWindow, c.MaxWindow)
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultInFlight
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxStrikes == 0 {
		c.MaxStrikes = DefaultMaxStrikes
	}
	if c.EndgameDup == 0 {
		c.EndgameDup = DefaultEndgameDup
	}
	return nil
}

// Chunk states.
const (
	stMissing uint8 = iota // not verified, not requested: in the buckets
	stOut                  // requested of one or more peers
	stHave                 // verified
)

// outChunk is a chunk with outstanding requests, linked in the order its
// first request was sent.
type outChunk struct {
	i          int32
	reqs       []*request
	prev, next *outChunk
}

// Scheduler decides which chunk to request from which peer. It is a
// single-threaded state machine: the caller reports each event, with the
// current time, to Step, and carries out the decisions it returns. The
// other methods only read its state. It does no I/O, starts no
// goroutine, reads no clock and draws randomness only from the *rand.Rand
// given to New, so the same events give the same actions.
//
// A Scheduler is not safe for concurrent use: one goroutine (the swarm's
// event loop) owns it. No method blocks.
type Scheduler struct {
	cfg Config
	rng *rand.Rand
	n   int32
	now time.Time

	state    []uint8
	verified int64
	got      bitfield // the chunks in state stHave, for Useful
	bk       buckets
	out      map[int32]*outChunk
	outHead  *outChunk
	outTail  *outChunk
	nreqs    int             // live requests
	timers   timeoutHeap     // lazy: dead requests are skipped when popped
	seq      uint64          // request counter, orders equal deadlines
	avoid    map[int32]*peer // chunk → peer whose request of it timed out

	peers   map[PeerID]*peer
	ord     int
	seeders int
	dirty   []*peer // peers to fill, in the order they became dirty
	starved []*peer // peers that found nothing to request (lazy list)

	prioLo, prioTo int32 // priority range: [prioLo, prioTo) less verified head
	prioFrom       int32 // where the range started when it was set
	paused         bool

	actions []Action
	done    bool

	st counters
}

type counters struct {
	requests, dupRequests, cancels, timeouts, chokes, bad, writeFailed int64
	bytes, blocks, dupBytes, dupBlocks, bans, strikes, unasked         int64
	steals                                                             int64
}

// New returns a Scheduler for the download cfg describes. have, if not nil,
// is the wire bitfield (see HaveBitfield) of the chunks already verified on
// disk (a resume): they are never requested. rng, seeded by the caller,
// breaks ties between equally rare chunks; it must not be nil and the
// Scheduler uses it from its own goroutine only.
//
// If every chunk is already had, the first Step returns Done.
func New(cfg Config, have []byte, rng *rand.Rand) (*Scheduler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("%w: nil rng", ErrConfig)
	}
	n := int32(cfg.Chunks)
	var had bitfield
	if have != nil {
		var err error
		if had, err = parseWire(n, have); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
	}
	s := &Scheduler{
		cfg:   cfg,
		rng:   rng,
		n:     n,
		state: make([]uint8, n),
		got:   newBitfield(n),
		bk:    newBuckets(n),
		out:   make(map[int32]*outChunk),
		peers: make(map[PeerID]*peer),
	}
	for i := range n {
		if had != nil && had.get(i) {
			s.state[i] = stHave
			s.got.set(i)
			s.verified++
			continue
		}
		s.bk.insert(i)
	}
	s.checkDone()
	return s, nil
}

// drain returns the decisions taken since the last call, in order, and
// forgets them.
func (s *Scheduler) drain() []Action {
	a := s.actions
	s.actions = nil
	return a
}

// Done reports whether every chunk is verified.
func (s *Scheduler) Done() bool { return s.done }

// Config returns the Scheduler's Config with its defaults filled in: the
// values it works with (RequestTimeout is DefaultRequestTimeout when
// New was given 0). SizeOf is the function New was given.
func (s *Scheduler) Config() Config { return s.cfg }

// Banned reports whether p is banned. The caller must not write blocks
// from a banned peer: the scheduler ignores its events.
func (s *Scheduler) Banned(p PeerID) bool {
	q := s.peers[p]
	return q != nil && q.banned
}

// Verified reports whether chunk i is verified.
func (s *Scheduler) Verified(i int64) bool {
	return i >= 0 && i < int64(s.n) && s.state[i] == stHave
}

func (s *Scheduler) emit(k Kind, p *peer, i int32, reason string) {
	a := Action{Kind: k, Index: int64(i), Reason: reason}
	if p != nil {
		a.Peer = p.id
	}
	s.actions = append(s.actions, a)
}

// clock moves the scheduler's time to now; time never goes backwards.
func (s *Scheduler) clock(now time.Time) time.Time {
	if now.After(s.now) {
		s.now = now
	}
	return s.now
}

func (s *Scheduler) size(i int32) int {
	if s.cfg.SizeOf != nil {
		if z := s.cfg.SizeOf(int64(i)); z > 0 && z <= MaxChunkSize {
			return z
		}
	}
	return s.cfg.ChunkSize
}

func (s *Scheduler) index(i int64) (int32, error) {
	if i < 0 || i >= int64(s.n) {
		return 0, fmt.Errorf("%w: %d of %d", ErrIndex, i, s.n)
	}
	return int32(i), nil
}

// chunkEvent is the common start of an event about chunk i from peer id: it
// moves the clock and checks both. A nil peer means the event is to be
// ignored: err is nil for a banned peer, and says what is wrong otherwise.
func (s *Scheduler) chunkEvent(id PeerID, i int64, now time.Time) (*peer, int32, time.Time, error) {
	now = s.clock(now)
	p, err := s.lookup(id)
	if p == nil {
		return nil, 0, now, err
	}
	c, err := s.index(i)
	if err != nil {
		return nil, 0, now, err
	}
	return p, c, now, nil
}

// lookup returns the live peer p; nil with a nil error for a banned one.
func (s *Scheduler) lookup(id PeerID) (*peer, error) {
	p := s.peers[id]
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPeer, id)
	}
	if p.banned {
		return nil, nil
	}
	return p, nil
}

// peerJoined handles a PeerJoined event (see EventKind).
func (s *Scheduler) peerJoined(id PeerID, now time.Time) {
	now = s.clock(now)
	if s.peers[id] != nil {
		return
	}
	s.ord++
	p := &peer{id: id, ord: s.ord, out: make(map[int32]*request), window: s.cfg.MinWindow}
	s.peers[id] = p
	s.markDirty(p)
	s.fill(now)
}

// peerLeft handles a PeerLeft event (see EventKind).
func (s *Scheduler) peerLeft(id PeerID, now time.Time) {
	now = s.clock(now)
	p := s.peers[id]
	if p == nil || p.banned {
		return
	}
	s.detach(p)
	delete(s.peers, id)
	s.fill(now)
}

// detach drops p's requests and its availability, in index order.
func (s *Scheduler) detach(p *peer) {
	for _, i := range sortedKeys(p.out) {
		s.dropAndRelease(p.out[i])
	}
	if p.seeder {
		s.seeders--
	} else if p.have != nil {
		p.have.each(s.bk.dec)
	}
	p.seeder, p.have, p.nhave = false, nil, 0
	p.gone = true
}

// haveAll handles a HaveAll event (see EventKind).
func (s *Scheduler) haveAll(id PeerID, now time.Time) error {
	now = s.clock(now)
	p, err := s.lookup(id)
	if p == nil {
		return err
	}
	if !p.seeder {
		s.becomeSeeder(p)
	}
	s.interested(p)
	s.fill(now)
	return nil
}

// haveBitfield handles a HaveBitfield event (see EventKind).
func (s *Scheduler) haveBitfield(id PeerID, wire []byte, now time.Time) error {
	now = s.clock(now)
	p, err := s.lookup(id)
	if p == nil {
		return err
	}
	b, err := parseWire(s.n, wire)
	if err != nil {
		return fmt.Errorf("have from %s: %w", id, err)
	}
	if p.seeder {
		return nil
	}
	if p.have == nil {
		p.have = newBitfield(s.n)
	}
	for w, word := range b {
		add := word &^ p.have[w]
		p.have[w] |= add
		for add != 0 {
			t := bits.TrailingZeros64(add)
			add &= add - 1
			s.bk.inc(int32(w*64 + t))
			p.nhave++
		}
	}
	if p.nhave == int64(s.n) {
		s.becomeSeeder(p)
	}
	s.interested(p)
	s.fill(now)
	return nil
}

// have handles a Have event (see EventKind).
func (s *Scheduler) have(id PeerID, i int64, now time.Time) error {
	p, c, now, err := s.chunkEvent(id, i, now)
	if p == nil {
		return err
	}
	if p.has(c) {
		return nil
	}
	if p.have == nil {
		p.have = newBitfield(s.n)
	}
	p.have.set(c)
	p.nhave++
	s.bk.inc(c)
	if p.nhave == int64(s.n) {
		s.becomeSeeder(p)
	}
	if s.state[c] != stHave {
		s.interested(p)
		s.moveTo(p, c, now)
		s.fill(now)
	}
	return nil
}

// moveTo moves chunk c to p, which has just announced it, if only seeders
// were asked for it and p has room (doc.go, "Sparing the seeders";
// pickSteal does the rest): p got c lately, most likely from one of them,
// which then holds it back from us. Done here, it works for the HAVE that
// makes p a seeder too: then pickSteal no longer takes p.
func (s *Scheduler) moveTo(p *peer, c int32, now time.Time) {
	oc := s.out[c]
	if s.state[c] != stOut || oc == nil || s.paused || s.done || len(p.out) >= p.effWindow() ||
		!s.movable(oc, p) || s.avoided(p, c) {
		return
	}
	s.release(oc)
	s.request(p, c, now)
}

// dontHave handles a DontHave event (see EventKind).
func (s *Scheduler) dontHave(id PeerID, i int64, now time.Time) error {
	p, c, now, err := s.chunkEvent(id, i, now)
	if p == nil {
		return err
	}
	if p.seeder {
		s.becomePartial(p)
	}
	if p.has(c) {
		p.have.clear(c)
		p.nhave--
		s.bk.dec(c)
	}
	if r := p.out[c]; r != nil {
		s.dropAndRelease(r)
		s.markDirty(p)
	}
	s.fill(now)
	return nil
}

// choke handles a Choke event (see EventKind).
func (s *Scheduler) choke(id PeerID, now time.Time) error {
	now = s.clock(now)
	p, err := s.lookup(id)
	if p == nil || p.choked {
		return err
	}
	p.choked = true
	s.st.chokes++
	for _, i := range sortedKeys(p.out) {
		s.dropAndRelease(p.out[i])
	}
	s.fill(now)
	return nil
}

// unchoke handles a Unchoke event (see EventKind).
func (s *Scheduler) unchoke(id PeerID, now time.Time) error {
	now = s.clock(now)
	p, err := s.lookup(id)
	if p == nil || !p.choked {
		return err
	}
	p.choked = false
	s.interested(p)
	s.fill(now)
	return nil
}

// Requested returns how many requests p has outstanding (0 for a peer
// unknown or banned).
func (s *Scheduler) Requested(id PeerID) int {
	if p := s.peers[id]; p != nil && !p.banned {
		return len(p.out)
	}
	return 0
}

// Useful reports whether p has a chunk that is not verified yet: whether it
// can still give the download anything. A peer that has only chunks we
// have (a neighbour cut off from every source with us) is not a source,
// however many chunks it has; nor is one unknown, banned, or any peer once
// the download is done.
//
// A peer is scanned from the chunk found last time, and one found to have
// nothing we lack is not scanned again until it announces a chunk (verified
// chunks only grow), so asking about every peer on each Tick costs O(1)
// per peer but for a rescan of O(Chunks/64) words after the chunk found
// last time is verified.
func (s *Scheduler) Useful(id PeerID) bool {
	p := s.peers[id]
	switch {
	case p == nil || p.banned || p.gone || s.done:
		return false
	case p.seeder:
		return true
	case p.have == nil || p.spent:
		return false
	case p.have.get(p.lack) && s.state[p.lack] != stHave:
		return true
	}
	// Round from the last find: the chunks after it first.
	for _, r := range [2][2]int32{{p.lack, s.n}, {0, p.lack}} {
		if i, ok := nextAndNot(p.have, s.got, r[0], r[1]); ok {
			p.lack = i
			return true
		}
	}
	p.spent = true
	return false
}

// nextAndNot returns the lowest i in [from, to) set in a and not in b.
func nextAndNot(a, b bitfield, from, to int32) (int32, bool) {
	if from >= to {
		return 0, false
	}
	mask := ^uint64(0) << (uint(from) & 63)
	for w := int(from >> 6); w <= int((to-1)>>6); w++ {
		if word := a[w] &^ b[w] & mask; word != 0 {
			i := int32(w*64 + bits.TrailingZeros64(word))
			return i, i < to
		}
		mask = ^uint64(0)
	}
	return 0, false
}

// blockVerified handles a BlockVerified event (see EventKind).
func (s *Scheduler) blockVerified(id PeerID, i int64, now time.Time) error {
	p, c, now, err := s.chunkEvent(id, i, now)
	if p == nil {
		return err
	}
	size := s.size(c)
	s.st.bytes += int64(size)
	s.st.blocks++
	p.bytes += int64(size)
	p.blocks++
	p.snubbed = false
	if r := p.out[c]; r != nil {
		p.observe(r, size, now)
		p.resize(s.cfg.ChunkSize, s.cfg.InFlight, s.cfg.MinWindow, s.cfg.MaxWindow)
		s.drop(r)
	} else if s.state[c] != stHave {
		s.st.unasked++
	}
	s.markDirty(p)
	switch s.state[c] {
	case stHave:
		s.st.dupBytes += int64(size)
		s.st.dupBlocks++
		p.dups++
		p.dupBytes += int64(size)
	case stMissing:
		s.bk.delete(c)
		s.verify(c)
	case stOut:
		var others []*request
		if oc := s.out[c]; oc != nil {
			others = slices.Clone(oc.reqs)
		}
		for _, r := range others {
			s.emit(Cancel, r.p, c, "")
			s.st.cancels++
			s.drop(r)
			s.markDirty(r.p)
		}
		s.verify(c)
	}
	s.fill(now)
	return nil
}

// verify marks c verified; its requests are already dropped.
func (s *Scheduler) verify(c int32) {
	s.state[c] = stHave
	s.got.set(c)
	s.verified++
	delete(s.avoid, c)
	for s.prioLo < s.prioTo && s.state[s.prioLo] == stHave {
		s.prioLo++
	}
	s.checkDone()
}

func (s *Scheduler) checkDone() {
	if !s.done && s.verified == int64(s.n) {
		s.done = true
		s.emit(Done, nil, 0, "")
	}
}

// blockBad handles a BlockBad event (see EventKind).
func (s *Scheduler) blockBad(id PeerID, i int64, now time.Time) error {
	p, c, now, err := s.chunkEvent(id, i, now)
	if p == nil {
		return err
	}
	s.st.bad++
	p.bad++
	if r := p.out[c]; r != nil {
		s.dropAndRelease(r)
	}
	if s.state[c] != stHave {
		// Prefer another source for the retry.
		if s.avoid == nil {
			s.avoid = make(map[int32]*peer)
		}
		s.avoid[c] = p
	}
	s.markDirty(p)
	s.strike(p, fmt.Sprintf("bad block %d", c))
	s.fill(now)
	return nil
}

// misbehaved handles a Misbehaved event (see EventKind).
func (s *Scheduler) misbehaved(id PeerID, reason string, now time.Time) error {
	now = s.clock(now)
	p, err := s.lookup(id)
	if p == nil {
		return err
	}
	s.strike(p, reason)
	s.fill(now)
	return nil
}

func (s *Scheduler) strike(p *peer, reason string) {
	p.strikes++
	s.st.strikes++
	if p.strikes >= s.cfg.MaxStrikes {
		s.ban(p, fmt.Sprintf("%s (strike %d of %d)", reason, p.strikes, s.cfg.MaxStrikes))
	}
}

func (s *Scheduler) ban(p *peer, reason string) {
	s.detach(p)
	p.gone = false
	p.banned = true
	s.st.bans++
	s.emit(Ban, p, 0, reason)
}

// blockWriteFailed handles a BlockWriteFailed event (see EventKind).
func (s *Scheduler) blockWriteFailed(id PeerID, i int64, now time.Time) error {
	p, c, now, err := s.chunkEvent(id, i, now)
	if p == nil {
		return err
	}
	s.st.writeFailed++
	if r := p.out[c]; r != nil {
		size := s.size(c)
		p.observe(r, size, now)
		p.resize(s.cfg.ChunkSize, s.cfg.InFlight, s.cfg.MinWindow, s.cfg.MaxWindow)
		p.snubbed = false
		s.dropAndRelease(r)
	}
	s.markDirty(p)
	s.fill(now)
	return nil
}

// tick handles a Tick event (see EventKind).
func (s *Scheduler) tick(now time.Time) {
	now = s.clock(now)
	var late []*peer
	for len(s.timers) > 0 && !s.timers[0].due.After(now) {
		r := heap.Pop(&s.timers).(*request)
		if !r.live {
			continue
		}
		p := r.p
		s.emit(Cancel, p, r.i, "")
		s.st.cancels++
		s.st.timeouts++
		p.timeouts++
		if !slices.Contains(late, p) {
			// Once per Tick: requests sent together time out together.
			p.penalize(s.cfg.MinWindow)
			late = append(late, p)
		}
		if s.state[r.i] != stHave {
			if s.avoid == nil {
				s.avoid = make(map[int32]*peer)
			}
			s.avoid[r.i] = p
		}
		s.dropAndRelease(r)
	}
	// Everyone who found nothing may find something now (chunks came
	// back, holders got slow); the peers that timed out go last.
	if s.done {
		return
	}
	for _, p := range s.starved {
		p.inList = false
		if p.starved && !p.gone && !p.banned {
			p.starved = false
			s.markDirty(p)
		}
	}
	clear(s.starved)
	s.starved = s.starved[:0]
	for _, p := range late {
		s.markDirty(p)
	}
	s.fill(now)
}

// prioritize handles a Prioritize event (see EventKind).
func (s *Scheduler) prioritize(from, to int64, now time.Time) {
	now = s.clock(now)
	from, to = max(from, 0), min(to, int64(s.n))
	if from >= to {
		s.prioFrom, s.prioLo, s.prioTo = 0, 0, 0
		return
	}
	// A reader that reads on asks for the range from the first chunk it
	// lacks, which is where the last range's first chunk not yet verified
	// (prioLo) is or, the range read, right after it. Anything else is a
	// seek, forward inside the last range too: a reader asks for the rest
	// of the file from where it reads (node.Reader), and a jump inside
	// that must not wait behind the chunks it skipped.
	seek := s.prioFrom >= s.prioTo || int32(from) < s.prioFrom || int32(from) > s.prioLo
	s.prioFrom, s.prioLo, s.prioTo = int32(from), int32(from), int32(to)
	for s.prioLo < s.prioTo && s.state[s.prioLo] == stHave {
		s.prioLo++
	}
	if seek && !s.paused && !s.done {
		for _, p := range s.sortedPeers() {
			s.preempt(p)
		}
	}
	s.wakeAll()
	s.fill(now)
}

// preempt makes room for a seek (see Prioritize): past p's oldest quarter
// of requests, from the first one outside the range on, every request is
// cancelled if a chunk of the range that p could send would otherwise wait
// behind it; fill then asks for the range first.
func (s *Scheduler) preempt(p *peer) {
	if p.gone || p.banned || len(p.out) <= 1 {
		return
	}
	reqs := make([]*request, 0, len(p.out))
	for _, r := range p.out {
		reqs = append(reqs, r)
	}
	slices.SortFunc(reqs, func(a, b *request) int { // oldest first; seqs are unique
		if a.seq < b.seq {
			return -1
		}
		return 1
	})
	inRange := func(i int32) bool { return i >= s.prioLo && i < s.prioTo }
	j := max(1, min(len(p.out), p.effWindow())/4) // the kept prefix
	for j < len(reqs) && inRange(reqs[j].i) {
		j++
	}
	if j == len(reqs) {
		return // nothing outside the range is queued ahead of it
	}
	late := false
	for i := s.prioLo; i < s.prioTo && !late; i++ {
		switch s.state[i] {
		case stMissing:
			late = p.has(i)
		case stOut:
			late = p.out[i] != nil && p.out[i].seq > reqs[j].seq
		}
	}
	if !late {
		return
	}
	for _, r := range reqs[j:] {
		s.emit(Cancel, p, r.i, "")
		s.st.cancels++
		s.dropAndRelease(r)
	}
	p.noNormal = false // the cancelled chunks are unrequested again
}

// pause handles a Pause event (see EventKind).
func (s *Scheduler) pause(now time.Time) {
	s.clock(now)
	s.paused = true
}

// resume handles a Resume event (see EventKind).
func (s *Scheduler) resume(now time.Time) {
	now = s.clock(now)
	if !s.paused {
		return
	}
	s.paused = false
	s.wakeAll()
	s.fill(now)
}

func (s *Scheduler) wakeAll() {
	for _, p := range s.starved {
		p.inList = false
	}
	clear(s.starved)
	s.starved = s.starved[:0]
	for _, p := range s.sortedPeers() {
		if !p.banned {
			p.starved = false
			s.markDirty(p)
		}
	}
}

func (s *Scheduler) setStarved(p *peer) {
	p.starved = true
	if !p.inList {
		p.inList = true
		s.starved = append(s.starved, p)
	}
}

func (s *Scheduler) becomeSeeder(p *peer) {
	if p.have != nil {
		p.have.each(s.bk.dec)
	}
	p.seeder, p.have, p.nhave = true, nil, int64(s.n)
	s.seeders++
}

// becomePartial turns a seeder that said DONT_HAVE into a peer with a
// bitfield; O(Chunks).
func (s *Scheduler) becomePartial(p *peer) {
	p.seeder = false
	s.seeders--
	p.have = newBitfield(s.n)
	p.have.fill(s.n)
	p.nhave = int64(s.n)
	for i := range s.n {
		s.bk.inc(i)
	}
}

// interested wakes p after it announced a chunk we may want.
func (s *Scheduler) interested(p *peer) {
	p.noNormal = false
	p.spent = false
	p.starved = false
	s.markDirty(p)
}

func (s *Scheduler) markDirty(p *peer) {
	if !p.dirty && !p.gone && !p.banned {
		p.dirty = true
		s.dirty = append(s.dirty, p)
	}
}

// fill gives every dirty peer requests until its window is full or it finds
// nothing; the latter are kept in starved and woken when a chunk they have
// comes back, when they announce a chunk, and at every Tick.
//
// Invariant after fill (unless paused or done): every connected, unbanned
// peer either has a full window or is starved.
func (s *Scheduler) fill(now time.Time) {
	for k := 0; k < len(s.dirty); k++ {
		p := s.dirty[k]
		p.dirty = false
		if p.gone || p.banned || s.paused || s.done {
			continue
		}
		for len(p.out) < p.effWindow() {
			i, ok := s.pick(p, now)
			if !ok {
				s.setStarved(p)
				break
			}
			s.request(p, i, now)
		}
	}
	s.dirty = s.dirty[:0]
}

// pick chooses p's next request: the first unrequested chunk of the
// priority range that p has; else a duplicate of a slow request in the
// range; else the rarest unrequested chunk p has; else a duplicate of a slow
// request (endgame).
func (s *Scheduler) pick(p *peer, now time.Time) (int32, bool) {
	prio := s.prioTo > s.prioLo
	if prio && !p.noNormal && s.bk.n > 0 {
		if i, ok := s.pickPrio(p); ok {
			return i, true
		}
	}
	if prio {
		if i, ok := s.pickDup(p, true, now); ok {
			return i, true
		}
	}
	if !p.noNormal {
		i, ok, exhaustive := s.pickRarest(p)
		if ok {
			return i, true
		}
		p.noNormal = exhaustive
	}
	if i, ok := s.pickSteal(p); ok {
		return i, true
	}
	return s.pickDup(p, false, now)
}

// pickSteal moves to the partial peer p a chunk that only seeders were
// asked for and that p has announced since, unless one of them is known
// to be more than twice as fast as p (see doc.go, "Sparing the seeders"):
// the seeders' requests are cancelled (Cancel actions) and the
// chunk is handed back as unrequested, for p. It looks at the dupScan
// newest outstanding chunks, newest first: those wait longest in the
// seeders' queues, so their CANCEL most likely arrives before the block is
// sent.
func (s *Scheduler) pickSteal(p *peer) (int32, bool) {
	if p.seeder || p.have == nil || s.seeders == 0 {
		return 0, false
	}
	k := 0
	for c := s.outTail; c != nil && k < dupScan; c, k = c.prev, k+1 {
		if !p.have.get(c.i) || s.avoided(p, c.i) || !s.movable(c, p) {
			continue
		}
		i := c.i
		s.release(c)
		return i, true
	}
	return 0, false
}

// release cancels every request of outstanding chunk c (Cancel actions)
// and puts it back in the pool as unrequested, to be requested again at
// once; the peers that lose a request are marked to be filled again.
func (s *Scheduler) release(c *outChunk) {
	i := c.i
	for _, r := range slices.Clone(c.reqs) {
		s.emit(Cancel, r.p, i, "")
		s.st.cancels++
		s.st.steals++
		s.drop(r)
		s.markDirty(r.p)
	}
	s.state[i] = stMissing
	s.bk.insert(i)
}

// movable reports whether c may move to p: every request of it is to a
// seeder, and none of those is known to be more than twice as fast as p.
func (s *Scheduler) movable(c *outChunk, p *peer) bool {
	for _, r := range c.reqs {
		if !r.p.seeder || r.p == p || p.rate > 0 && p.rate*2 < r.p.rate {
			return false
		}
	}
	return len(c.reqs) > 0
}

func (s *Scheduler) request(p *peer, i int32, now time.Time) {
	s.seq++
	r := &request{p: p, i: i, sent: now, ahead: int32(len(p.out)), live: true, seq: s.seq}
	r.due = now.Add(p.timeout(s.cfg.RequestTimeout))
	p.out[i] = r
	s.nreqs++
	c := s.out[i]
	if c == nil {
		if s.state[i] != stMissing {
			panic(fmt.Sprintf("sched: request of chunk %d in state %d", i, s.state[i]))
		}
		s.bk.delete(i)
		s.state[i] = stOut
		c = &outChunk{i: i, prev: s.outTail}
		if s.outTail != nil {
			s.outTail.next = c
		} else {
			s.outHead = c
		}
		s.outTail = c
		s.out[i] = c
	} else {
		s.st.dupRequests++
	}
	c.reqs = append(c.reqs, r)
	heap.Push(&s.timers, r)
	if len(s.timers) > 2*s.nreqs+64 {
		s.timers.compact()
	}
	s.st.requests++
	s.emit(Request, p, i, "")
}

// drop forgets request r. If it was the chunk's last, the chunk leaves the
// outstanding list in state stOut; the caller verifies or releases it.
func (s *Scheduler) drop(r *request) (last bool) {
	r.live = false
	s.nreqs--
	delete(r.p.out, r.i)
	c := s.out[r.i]
	c.reqs = slices.DeleteFunc(c.reqs, func(x *request) bool { return x == r })
	if len(c.reqs) > 0 {
		return false
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		s.outHead = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		s.outTail = c.prev
	}
	delete(s.out, r.i)
	return true
}

// dropAndRelease forgets r and, if no request of its chunk is left, puts
// the chunk back in the pool and wakes the starved peers that have it.
func (s *Scheduler) dropAndRelease(r *request) {
	if !s.drop(r) || s.state[r.i] != stOut {
		return
	}
	i := r.i
	s.state[i] = stMissing
	s.bk.insert(i)
	// A peer that found every chunk it has requested already (noNormal)
	// may hold this one: it must look again, starved or not, or a chunk
	// only it has would never be asked for again.
	for _, p := range s.sortedPeers() {
		if p.noNormal && !p.starved && !p.gone && !p.banned && p.has(i) {
			p.noNormal = false
			s.markDirty(p)
		}
	}
	keep := s.starved[:0]
	for _, p := range s.starved {
		switch {
		case !p.starved || p.gone || p.banned:
			p.inList = false
		case p.has(i):
			p.inList, p.starved, p.noNormal = false, false, false
			s.markDirty(p)
		default:
			keep = append(keep, p)
		}
	}
	clear(s.starved[len(keep):])
	s.starved = keep
}

func (s *Scheduler) sortedPeers() []*peer {
	ps := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *peer) int { return a.ord - b.ord })
	return ps
}

func sortedKeys(m map[int32]*request) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// timeoutHeap orders requests by due time, then by when they were sent.
type timeoutHeap []*request

func (h timeoutHeap) Len() int { return len(h) }
func (h timeoutHeap) Less(a, b int) bool {
	if !h[a].due.Equal(h[b].due) {
		return h[a].due.Before(h[b].due)
	}
	return h[a].seq < h[b].seq
}
func (h timeoutHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *timeoutHeap) Push(x any)   { *h = append(*h, x.(*request)) }
func (h *timeoutHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return r
}

// compact drops dead requests and restores the heap order.
func (h *timeoutHeap) compact() {
	*h = slices.DeleteFunc(*h, func(r *request) bool { return !r.live })
	heap.Init(h)
}
