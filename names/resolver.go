package names

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// ProtocolID is the names protocol.
const ProtocolID protocol.ID = "/peer/names/1.0.0"

// ServiceName is the resource manager service of the protocol's streams.
const ServiceName = "peer.names"

var (
	// ErrClosed: the Resolver is closed.
	ErrClosed = errors.New("names: closed")
	// ErrNotFound: no connected peer had a record for the name.
	ErrNotFound = errors.New("names: no record found")
	// ErrFlood: a peer sent messages faster than the limit; its session was
	// reset.
	ErrFlood = errors.New("names: peer sent too many messages")
	// ErrNotFollowing: a record came for a name nobody here asked for.
	ErrNotFollowing = errors.New("names: name not followed")
)

// Defaults of Config.
const (
	DefaultRate         = 20 // messages a second, per session
	DefaultBurst        = 100
	DefaultWriteTimeout = 10 * time.Second
	DefaultOpenTimeout  = 10 * time.Second
	maxQueued           = 256 // control messages waiting on one session
)

// Config configures a Resolver. Zero fields mean the default in their
// comment; Host is required.
type Config struct {
	// Host is the libp2p host the Resolver speaks on. Required.
	Host host.Host
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock that decides expiry and rates; nil means time.Now.
	Now func() time.Time
	// OnRefused, if set, hears of every record or message a peer sent that
	// was refused: a forged record (ErrSignature), one of another key
	// (ErrWrongKey), an expired one (ErrExpired), an older one than held
	// (ErrStale: not proof of malice, a peer may simply lag), a malformed
	// one (ErrMalformed, ErrTooLarge, ErrValue), a broken message
	// (ErrProtocol) or a flood (ErrFlood). name is the name a refused
	// record was sent for, and the zero Name for a message that is about
	// no one name (a broken message, a flood), so that a follower of one
	// name hears only of its own. The caller may strike or ban the peer.
	// It is called from the session's goroutine with no lock held and
	// must not block for long.
	OnRefused func(p peer.ID, name Name, err error)
	// Rate and Burst bound the messages one peer's session may send (a
	// token bucket); past them the session is reset and ErrFlood reported.
	// Zero: DefaultRate, DefaultBurst.
	Rate  rate.Limit
	Burst int
	// WriteTimeout bounds one write to a peer; zero: DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// Resolver keeps the best record of each name it follows or publishes and
// trades records with connected peers over ProtocolID: it pushes a new
// record at once to every peer that follows its name, learns pushed records
// from peers, and answers requests. Its methods are safe for concurrent
// use.
type Resolver struct {
	cfg    Config
	h      host.Host
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	evsub  event.Subscription
	once   sync.Once

	mu        sync.Mutex
	closed    bool
	held      map[Name]*Record // best record of each name we care for
	published map[Name]bool
	subs      map[Name][]*Subscription // local followers
	wanted    map[Name]int             // Resolve calls under way
	waiters   map[Name][]*waiter
	sessions  map[*session]struct{}
	out       map[peer.ID]*session      // our session to each peer
	in        map[peer.ID]*session      // a peer's session to us
	dialing   map[peer.ID]chan struct{} // closed when the session is open or failed
}

// NewResolver starts a Resolver on cfg.Host: it handles ProtocolID and
// watches identify events for peers that speak it. Close stops it.
func NewResolver(cfg Config) (*Resolver, error) {
	if cfg.Host == nil {
		return nil, errors.New("names: Config.Host is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rate < 0 || cfg.Burst < 0 || cfg.WriteTimeout < 0 {
		return nil, errors.New("names: Config.Rate, Burst and WriteTimeout must not be negative")
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	evsub, err := cfg.Host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return nil, fmt.Errorf("names: subscribe to identify events: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Resolver{
		cfg: cfg, h: cfg.Host, ctx: ctx, cancel: cancel, evsub: evsub,
		log:       cfg.Logger.With("component", "names"),
		held:      map[Name]*Record{},
		published: map[Name]bool{},
		subs:      map[Name][]*Subscription{},
		wanted:    map[Name]int{},
		waiters:   map[Name][]*waiter{},
		sessions:  map[*session]struct{}{},
		out:       map[peer.ID]*session{},
		in:        map[peer.ID]*session{},
		dialing:   map[peer.ID]chan struct{}{},
	}
	r.h.SetStreamHandler(ProtocolID, r.handleStream)
	r.goLocked(r.watchPeers)
	return r, nil
}

// goLocked starts f as a goroutine of r unless r is closed; the caller
// holds r.mu or r is not yet shared.
func (r *Resolver) goLocked(f func()) bool {
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
	return true
}

// Close stops the Resolver: it stops handling the protocol, resets every
// session, waits for its goroutines and closes every subscription's
// channel. Later calls return ErrClosed.
func (r *Resolver) Close() error {
	err := ErrClosed
	r.once.Do(func() {
		err = nil
		r.h.RemoveStreamHandler(ProtocolID)
		r.mu.Lock()
		r.closed = true
		sessions := slices.Collect(maps.Keys(r.sessions))
		var subs []*Subscription
		for _, ss := range r.subs {
			subs = append(subs, ss...)
		}
		r.mu.Unlock()
		r.cancel()
		r.evsub.Close()
		for _, s := range sessions {
			s.close()
		}
		r.wg.Wait()
		for _, s := range subs {
			s.end()
		}
	})
	return err
}

// watchPeers opens a session to each newly identified peer that speaks the
// protocol, when we follow something.
func (r *Resolver) watchPeers() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case e, ok := <-r.evsub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerIdentificationCompleted)
			if !slices.Contains(ev.Protocols, ProtocolID) {
				continue
			}
			r.mu.Lock()
			if len(r.subs) > 0 {
				r.goLocked(func() { r.openSession(ev.Peer) })
			}
			r.mu.Unlock()
		}
	}
}

// Publish makes rec the record of its name here and pushes it to every
// connected peer that follows the name; the Resolver answers for the name
// until Close. It refuses a record that does not validate, and one whose
// sequence is not above the one held (ErrStale: publish with Best's Seq+1).
// The caller keeps the last sequence across restarts (a Publisher does,
// with its OnPublish). It does not block on the network.
func (r *Resolver) Publish(rec *Record) error {
	if rec == nil {
		return errors.New("names: Publish: nil record")
	}
	v, err := Validate(rec.Name, rec.Raw, r.cfg.Now())
	if err != nil {
		return fmt.Errorf("names: publish: %w", err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if cur := r.held[v.Name]; cur != nil && !bytes.Equal(cur.Raw, v.Raw) && v.Seq <= cur.Seq {
		r.mu.Unlock()
		return fmt.Errorf("%w: %s is at sequence %d, this record has %d: publish with %d", ErrStale, v.Name, cur.Seq, v.Seq, cur.Seq+1)
	}
	r.published[v.Name] = true
	subs := r.storeLocked(nil, v)
	r.mu.Unlock()
	deliver(subs, v)
	return nil
}

// Learn offers a record found elsewhere (the DHT, a ticket): if its name is
// followed here and it is newer than the one held, it is kept, pushed to
// the peers that follow the name and given to subscribers. rec is
// validated again from its Raw bytes (its other fields are not trusted).
// It returns the validation error, ErrStale, or ErrNotFollowing. A
// lookup in the DHT is ResolveDHT, which validates what it finds once.
func (r *Resolver) Learn(rec *Record) error {
	if rec == nil {
		return errors.New("names: Learn: nil record")
	}
	return r.offer(nil, rec.Name, rec.Raw)
}

// Best returns the best record held for name, if any that has not expired.
func (r *Resolver) Best(name Name) (*Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.liveLocked(name)
	return rec, rec != nil
}

// heldSeq is the sequence of the record held for name, expired or not
// (0 if none).
func (r *Resolver) heldSeq(name Name) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.held[name]; rec != nil {
		return rec.Seq
	}
	return 0
}

// liveLocked returns the record held for name unless it has expired. An
// expired record stays held, so that its sequence still refuses replays.
func (r *Resolver) liveLocked(name Name) *Record {
	rec := r.held[name]
	if rec == nil || r.cfg.Now().After(rec.EOL) {
		return nil
	}
	return rec
}

// Subscription is a local follower of a name. C receives each new best
// record of the name; it holds only the latest (a slow reader skips
// versions, never the last one). Nobody must drain it: a record waiting
// there is replaced by a newer one. C is closed by Cancel or by the
// Resolver's Close.
type Subscription struct {
	C    <-chan *Record
	c    chan *Record
	r    *Resolver
	name Name

	mu    sync.Mutex
	last  *Record
	ended bool
}

// Follow subscribes to name: the Resolver asks every connected peer that
// speaks the protocol to push the name's records here (and they answer at
// once with the one they hold), and keeps the best. If a record is held
// already, C has it at once. It does not block on the network.
func (r *Resolver) Follow(name Name) (*Subscription, error) {
	if name.IsZero() {
		return nil, fmt.Errorf("%w: Follow of the zero name", ErrName)
	}
	c := make(chan *Record, 1)
	sub := &Subscription{C: c, c: c, r: r, name: name}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	first := len(r.subs[name]) == 0
	if first && len(r.subs) >= MaxFollow {
		r.mu.Unlock()
		return nil, fmt.Errorf("names: already following %d names, the most one node may follow", MaxFollow)
	}
	r.subs[name] = append(r.subs[name], sub)
	cur := r.liveLocked(name)
	if first {
		r.sendFollowsLocked()
		for _, p := range r.h.Network().Peers() {
			if r.out[p] == nil && r.speaks(p) {
				r.goLocked(func() { r.openSession(p) })
			}
		}
	}
	r.mu.Unlock()
	if cur != nil {
		sub.deliver(cur)
	}
	return sub, nil
}

// Cancel ends the subscription and closes C. When it was the name's last
// follower here, peers are told to stop pushing it.
func (s *Subscription) Cancel() {
	r := s.r
	r.mu.Lock()
	subs := r.subs[s.name]
	if i := slices.Index(subs, s); i >= 0 {
		subs = slices.Delete(subs, i, i+1)
		if len(subs) == 0 {
			delete(r.subs, s.name)
			r.forgetLocked(s.name)
			if !r.closed {
				r.sendFollowsLocked()
			}
		} else {
			r.subs[s.name] = subs
		}
	}
	r.mu.Unlock()
	s.end()
}

func (s *Subscription) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.ended = true
		close(s.c)
	}
}

// deliver puts rec in C unless an equal or newer record went there before;
// it never blocks.
func (s *Subscription) deliver(rec *Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || (s.last != nil && !newer(rec, s.last)) {
		return
	}
	s.last = rec
	select {
	case <-s.c: // replace an unread older record
	default:
	}
	s.c <- rec // cannot block: the buffer is free and every sender holds s.mu
}

func deliver(subs []*Subscription, rec *Record) {
	for _, s := range subs {
		s.deliver(rec)
	}
}

// Resolve asks every connected peer that speaks the protocol for name's
// record and returns the best one held once all have answered, or when ctx
// ends with at least one record. It returns ErrNotFound when none was
// found. It blocks; records found are also pushed to the name's followers.
func (r *Resolver) Resolve(ctx context.Context, name Name) (*Record, error) {
	if name.IsZero() {
		return nil, fmt.Errorf("%w: Resolve of the zero name", ErrName)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	r.wanted[name]++
	var peers []peer.ID
	for _, p := range r.h.Network().Peers() {
		if r.speaks(p) {
			peers = append(peers, p)
		}
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.wanted[name]--; r.wanted[name] == 0 {
			delete(r.wanted, name)
			r.forgetLocked(name)
		}
		r.mu.Unlock()
	}()

	// Open the sessions that are missing, all at once.
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() { r.openSessionCtx(ctx, p) })
	}
	wg.Wait()

	w := &waiter{pending: map[*session]bool{}, done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	for _, p := range peers {
		s := r.out[p]
		if s == nil {
			s = r.in[p]
		}
		if s != nil && s.queueLocked(&message{typ: msgGet, name: name}) {
			w.pending[s] = true
		}
	}
	if len(w.pending) == 0 {
		close(w.done)
	} else {
		r.waiters[name] = append(r.waiters[name], w)
	}
	r.mu.Unlock()

	select {
	case <-w.done:
	case <-ctx.Done():
	case <-r.ctx.Done():
	}
	r.mu.Lock()
	r.waiters[name] = slices.DeleteFunc(r.waiters[name], func(x *waiter) bool { return x == w })
	if len(r.waiters[name]) == 0 {
		delete(r.waiters, name)
	}
	rec := r.liveLocked(name)
	r.mu.Unlock()
	if rec != nil {
		return rec, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotFound, name, err)
	}
	return nil, fmt.Errorf("%w: %s: none of %d connected peers had it", ErrNotFound, name, len(peers))
}

// waiter is a Resolve waiting for answers from sessions.
type waiter struct {
	pending map[*session]bool
	done    chan struct{}
}

// answeredLocked notes that s answered for name (or ended, when name is
// the zero Name: then it answered for every name).
func (r *Resolver) answeredLocked(s *session, name Name) {
	for n, ws := range r.waiters {
		if !name.IsZero() && n != name {
			continue
		}
		for _, w := range ws {
			if w.pending[s] {
				delete(w.pending, s)
				if len(w.pending) == 0 {
					close(w.done)
				}
			}
		}
	}
}

// speaks says whether p may speak the protocol: the peerstore says so, or
// knows none of p's protocols yet (identify is under way; NewStream waits
// for it).
func (r *Resolver) speaks(p peer.ID) bool {
	protos, err := r.h.Peerstore().GetProtocols(p)
	return err == nil && (len(protos) == 0 || slices.Contains(protos, ProtocolID))
}

// caresLocked says whether records of name are kept here.
func (r *Resolver) caresLocked(name Name) bool {
	return r.published[name] || len(r.subs[name]) > 0 || r.wanted[name] > 0
}

// forgetLocked drops the record of a name nobody here cares for any more.
func (r *Resolver) forgetLocked(name Name) {
	if !r.caresLocked(name) {
		delete(r.held, name)
	}
}

// followedLocked lists the names followed here, sorted.
func (r *Resolver) followedLocked() []Name {
	names := slices.Collect(maps.Keys(r.subs))
	slices.SortFunc(names, func(a, b Name) int { return bytes.Compare(a.bytes(), b.bytes()) })
	return names
}

// sendFollowsLocked tells each peer, on one session, the names we follow.
func (r *Resolver) sendFollowsLocked() {
	m := &message{typ: msgFollow, names: r.followedLocked()}
	for _, s := range r.out {
		s.queueLocked(m)
	}
	for p, s := range r.in {
		if r.out[p] == nil {
			s.queueLocked(m)
		}
	}
}

// storeLocked makes rec the best record of its name, queues it for the
// sessions whose peer follows the name (but from, which sent it), and
// returns the local subscribers to give it to.
func (r *Resolver) storeLocked(from *session, rec *Record) []*Subscription {
	r.held[rec.Name] = rec
	for s := range r.sessions {
		if s != from && s.follows[rec.Name] {
			s.pushLocked(rec)
		}
	}
	return slices.Clone(r.subs[rec.Name])
}

// offer handles a record of name from session from (nil: from the caller).
func (r *Resolver) offer(from *session, name Name, raw []byte) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if from != nil {
		defer func() {
			r.mu.Lock()
			r.answeredLocked(from, name)
			r.mu.Unlock()
		}()
	}
	if !r.caresLocked(name) {
		r.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFollowing, name)
	}
	if cur := r.held[name]; cur != nil && bytes.Equal(cur.Raw, raw) {
		r.mu.Unlock()
		return nil // a record we hold: nothing new
	}
	r.mu.Unlock()

	rec, err := Validate(name, raw, r.cfg.Now())
	if err != nil {
		return err
	}
	return r.accept(from, rec)
}

// accept keeps rec, which Validate returned, if its name is followed here
// and it is newer than the record held (see offer). from as for offer.
func (r *Resolver) accept(from *session, rec *Record) error {
	name := rec.Name
	r.mu.Lock()
	cur := r.held[name]
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case !r.caresLocked(name):
		r.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFollowing, name)
	case cur != nil && rec.Seq < cur.Seq:
		r.mu.Unlock()
		return fmt.Errorf("%w: %s: sequence %d, and %d is held", ErrStale, name, rec.Seq, cur.Seq)
	case cur != nil && !newer(rec, cur):
		r.mu.Unlock()
		return nil // same sequence, validity no later: keep ours
	}
	if from != nil {
		from.sent[name] = rec // the peer has it
	}
	subs := r.storeLocked(from, rec)
	r.mu.Unlock()
	r.log.Debug("new record", "name", name.String(), "seq", rec.Seq, "root", rec.Root.String())
	deliver(subs, rec)
	return nil
}

// refused reports a peer's refused input: a record sent for name, or
// (the zero Name) a message about no one name.
func (r *Resolver) refused(p peer.ID, name Name, err error) {
	r.log.Debug("refused", "peer", p.String(), "err", err)
	if r.cfg.OnRefused != nil {
		r.cfg.OnRefused(p, name, err)
	}
}

// openSession opens our session to p unless one is open or opening.
func (r *Resolver) openSession(p peer.ID) { r.openSessionCtx(r.ctx, p) }

func (r *Resolver) openSessionCtx(ctx context.Context, p peer.ID) {
	r.mu.Lock()
	if ch := r.dialing[p]; ch != nil {
		r.mu.Unlock()
		select { // another call is opening it: wait for that
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	if r.closed || r.out[p] != nil || p == r.h.ID() {
		r.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	r.dialing[p] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.dialing, p)
		r.mu.Unlock()
		close(ch)
	}()

	ctx, cancel := context.WithTimeout(ctx, DefaultOpenTimeout)
	defer cancel()
	st, err := r.h.NewStream(network.WithAllowLimitedConn(ctx, "names"), p, ProtocolID)
	if err != nil {
		r.log.Debug("open session", "peer", p.String(), "err", err)
		return
	}
	r.startSession(st, true)
}

// handleStream takes a session a peer opened.
func (r *Resolver) handleStream(st network.Stream) { r.startSession(st, false) }

// startSession runs a session on st: a reader and a writer goroutine.
func (r *Resolver) startSession(st network.Stream, out bool) {
	if err := st.Scope().SetService(ServiceName); err != nil {
		r.log.Debug("stream scope", "err", err)
		st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(2*maxMessage, network.ReservationPriorityAlways); err != nil {
		r.log.Debug("stream memory", "err", err)
		st.Reset()
		return
	}
	p := st.Conn().RemotePeer()
	s := &session{
		r: r, st: st, p: p, out: out,
		lim:     rate.NewLimiter(r.cfg.Rate, r.cfg.Burst),
		follows: map[Name]bool{},
		records: map[Name]*Record{},
		sent:    map[Name]*Record{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		st.Reset()
		return
	}
	var old *session
	if out {
		old = r.out[p]
		r.out[p] = s
	} else {
		old = r.in[p]
		r.in[p] = s
	}
	r.sessions[s] = struct{}{}
	if len(r.subs) > 0 && (out || r.out[p] == nil) {
		s.queueLocked(&message{typ: msgFollow, names: r.followedLocked()})
	}
	r.goLocked(s.readLoop)
	r.goLocked(s.writeLoop)
	r.mu.Unlock()
	if old != nil {
		old.close() // one session each way per peer
	}
}

// session is one stream with a peer; both ends may send any message.
type session struct {
	r   *Resolver
	st  network.Stream
	p   peer.ID
	out bool
	lim *rate.Limiter

	// Guarded by r.mu.
	follows map[Name]bool    // names the peer follows on this session
	records map[Name]*Record // records to push, newest per name
	sent    map[Name]*Record // the last record pushed or received, per name
	queue   []*message       // other messages to send
	ended   bool

	wake chan struct{} // cap 1: the writer has work
	done chan struct{} // closed when the session ends
	once sync.Once
}

// queueLocked queues m; it reports false when the session has ended. A
// peer that lets maxQueued messages pile up is not reading: its session
// ends.
func (s *session) queueLocked(m *message) bool {
	if s.ended {
		return false
	}
	if len(s.queue) >= maxQueued {
		s.r.goLocked(s.close)
		return false
	}
	s.queue = append(s.queue, m)
	s.wakeUp()
	return true
}

// pushLocked queues rec unless it went, or came, on this session before:
// a peer that repeats FOLLOW gets nothing twice.
func (s *session) pushLocked(rec *Record) {
	if s.ended || s.sent[rec.Name] == rec {
		return
	}
	s.sent[rec.Name] = rec
	s.records[rec.Name] = rec
	s.wakeUp()
}

func (s *session) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close ends the session: the stream is reset and both loops stop.
func (s *session) close() {
	s.once.Do(func() {
		r := s.r
		r.mu.Lock()
		s.ended = true
		delete(r.sessions, s)
		if s.out && r.out[s.p] == s {
			delete(r.out, s.p)
		}
		if !s.out && r.in[s.p] == s {
			delete(r.in, s.p)
		}
		r.answeredLocked(s, Name{})
		r.mu.Unlock()
		close(s.done)
		s.st.Reset()
	})
}

func (s *session) writeLoop() {
	defer s.close()
	var buf []byte
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		s.r.mu.Lock()
		q := s.queue
		s.queue = nil
		// Take the map only when it holds something: an empty one stays
		// the session's, and pushLocked may write it once the lock is
		// released, so it must not be read below.
		var recs map[Name]*Record
		if len(s.records) > 0 {
			recs, s.records = s.records, map[Name]*Record{}
		}
		s.r.mu.Unlock()
		buf = buf[:0]
		for _, m := range q {
			buf = appendMessage(buf, m)
		}
		for _, n := range slices.SortedFunc(maps.Keys(recs), func(a, b Name) int { return bytes.Compare(a.bytes(), b.bytes()) }) {
			buf = appendMessage(buf, &message{typ: msgRecord, name: n, record: recs[n].Raw})
		}
		if len(buf) == 0 {
			continue
		}
		if err := s.st.SetWriteDeadline(time.Now().Add(s.r.cfg.WriteTimeout)); err != nil {
			s.r.log.Debug("write deadline", "peer", s.p.String(), "err", err)
		}
		if _, err := s.st.Write(buf); err != nil {
			s.r.log.Debug("write", "peer", s.p.String(), "err", err)
			return
		}
	}
}

func (s *session) readLoop() {
	defer s.close()
	br := bufio.NewReaderSize(s.st, 4096)
	for {
		m, err := readMessage(br)
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				s.r.refused(s.p, Name{}, err)
			} else if !errors.Is(err, io.EOF) {
				s.r.log.Debug("read", "peer", s.p.String(), "err", err)
			}
			return
		}
		if !s.lim.AllowN(s.r.cfg.Now(), 1) {
			s.r.refused(s.p, Name{}, fmt.Errorf("%w: more than %d, then %v a second; session reset", ErrFlood, s.r.cfg.Burst, float64(s.r.cfg.Rate)))
			return
		}
		s.handle(m)
	}
}

func (s *session) handle(m *message) {
	r := s.r
	switch m.typ {
	case msgFollow:
		r.mu.Lock()
		clear(s.follows)
		for _, n := range m.names {
			s.follows[n] = true
			if rec := r.liveLocked(n); rec != nil {
				s.pushLocked(rec)
			}
		}
		r.mu.Unlock()
	case msgGet:
		r.mu.Lock()
		if rec := r.liveLocked(m.name); rec != nil {
			s.queueLocked(&message{typ: msgRecord, name: m.name, record: rec.Raw})
		} else {
			s.queueLocked(&message{typ: msgNone, name: m.name})
		}
		r.mu.Unlock()
	case msgNone:
		r.mu.Lock()
		r.answeredLocked(s, m.name)
		r.mu.Unlock()
	case msgRecord:
		err := r.offer(s, m.name, m.record)
		if err != nil && !errors.Is(err, ErrNotFollowing) && !errors.Is(err, ErrClosed) {
			r.refused(s.p, m.name, err)
		}
	}
}
