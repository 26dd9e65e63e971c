package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/swarm/bitswap"
	"github.com/peer-project/peer/swarm/wire"
)

// Errors of the exchange.
var (
	ErrClosed      = errors.New("swarm: closed")
	ErrNoProviders = errors.New("swarm: no peer provides this root")
	ErrExists      = errors.New("swarm: destination exists")
	ErrStalled     = errors.New("swarm: fetch stalled")
	// ErrWantFile refuses FetchOptions.Want on a root that is a single
	// file: Want picks the files of a folder.
	ErrWantFile = errors.New("swarm: Want picks the files of a folder root")
)

// BlockStore keeps DAG nodes. The node's store implements it.
type BlockStore interface {
	// GetBlock returns the block's bytes, or an error if it has none.
	GetBlock(ctx context.Context, c cid.Cid) ([]byte, error)
	// PutBlock keeps a block that has been verified against c.
	PutBlock(c cid.Cid, data []byte) error
}

// Source is what this node serves of one root. Implementations must be safe
// for concurrent use; ReadChunk is called from many sessions at once.
type Source interface {
	// Layout returns the root's layout.
	Layout() *Layout
	// Has reports whether chunk i can be served.
	Has(i int64) bool
	// Complete reports whether every chunk can be served.
	Complete() bool
	// Bits returns which chunks can be served, encoded by package
	// bitfield (the HAVE_BITFIELD form): Layout().NumChunks() bits.
	Bits() []byte
	// ReadChunk reads chunk i into buf (grown if too small) and returns it
	// verified against its CID.
	ReadChunk(ctx context.Context, i int64, buf []byte) ([]byte, error)
}

// Config tunes a Swarm. The zero value is usable.
type Config struct {
	// Logger receives the swarm's logs; nil means slog.Default().
	Logger *slog.Logger
	// Seed seeds every fetch's scheduler (each fetch mixes in its root),
	// so a simulation replays the same choices.
	Seed uint64
	// MinWindow and MaxWindow bound the requests outstanding per peer;
	// zero means the scheduler's defaults.
	MinWindow, MaxWindow int
	// RequestTimeout is the base time a request may take before it is
	// moved to another peer; zero means the scheduler's default.
	RequestTimeout time.Duration
	// MaxStrikes is the number of bad blocks after which a peer is banned;
	// zero means the scheduler's default (1: every chunk comes from one
	// peer, so a hash failure names its sender without doubt).
	MaxStrikes int
	// MaxQueue is the most chunk requests one session may have waiting at
	// this node; a peer that asks for more (a flooder) is banned for
	// BanTime. Zero means 1024.
	MaxQueue int
	// UploadRate and DownloadRate cap the chunk bytes per second this
	// swarm sends and receives over all peers; PeerUploadRate and
	// PeerDownloadRate cap them for each peer. Zero means no cap.
	UploadRate, DownloadRate, PeerUploadRate, PeerDownloadRate int64
	// UploadSlots is how many peers are sent blocks at once, over all
	// roots: the others are choked (wire.Choke) and wait their turn in
	// line, and a peer gives up its slot after a few blocks while others
	// wait, so that each block goes out fast and the peers that get it can
	// pass it on. Peers that send us blocks are served first (see
	// choker). Bitswap peers take turns at the same slots. Zero means
	// DefaultUploadSlots.
	UploadSlots int
	// BanTime is how long a banned peer is refused; zero means an hour.
	BanTime time.Duration
	// IdleTimeout ends a serving session (ERROR, code idle) when nothing
	// went either way for that long while the peer waited on nothing of
	// ours; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// OnBan, if not nil, is called after a peer is banned, on the
	// goroutine that banned it; it must not block.
	OnBan func(p peer.ID)
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// Lookup, if not nil, is asked for a Source when a peer wants a root
	// that has none registered (a folder inside a share, say); what it
	// returns is kept in a bounded cache (the least recently used of
	// maxDerived dropped first). It may return nil. One lookup runs at a
	// time, and a peer may cause lookupBurst a minute. When a root stops
	// being served while it runs (an unshare), what it returns is dropped
	// and it is asked again: it may have read a share just unshared.
	Lookup func(ctx context.Context, root cid.Cid) Source
	// Allow, if not nil, says which peers may exchange with this swarm:
	// others get no session either way (a node's allowlist).
	Allow func(peer.ID) bool
	// Bitswap, if set, speaks IPFS's Bitswap beside the swarm's own
	// protocol (see package bitswap): it serves the registered roots'
	// blocks to Bitswap peers, within the same caps, upload slots, bans
	// and allowlist, and a fetch takes chunks from a peer that speaks only
	// Bitswap.
	Bitswap bool
}

// DefaultIdleTimeout is how long a serving session may be idle: long
// enough for a peer that waits for news (HAVEs) from a slow co-fetcher.
const DefaultIdleTimeout = 2 * time.Minute

func (c *Config) fill() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 1024
	}
	if c.BanTime == 0 {
		c.BanTime = time.Hour
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.UploadSlots <= 0 {
		c.UploadSlots = DefaultUploadSlots
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Swarm serves and fetches over one libp2p host. Its methods are safe for
// concurrent use.
type Swarm struct {
	host   host.Host
	blocks BlockStore
	cfg    Config
	log    *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	lim    *limits
	chk    *slots

	goroutines group // every goroutine of the swarm: Close waits for them
	once       sync.Once

	mu     sync.Mutex // taken before lookups.mu when both are held
	closed bool
	// gen counts the times a root stopped being served (StopServing,
	// StopServingFrom, ForgetLookups, a failed fetch withdrawing its
	// download): a source found before it changed may be one withdrawn
	// since, so that a lookup keeps it, or a session is admitted with it,
	// only while gen is what it was before the source was found.
	gen     uint64
	sources map[cid.Cid]Source
	serving map[cid.Cid]map[*server]struct{}
	spreads map[cid.Cid]*spread   // who got which chunk, by root served (spread.go)
	bans    map[peer.ID]time.Time // until when
	fetches map[cid.Cid][]*fetch  // fetches in flight, by root
	stats   Stats

	lookups lookups // roots found by Config.Lookup; see lookup.go

	bs  *bitswap.Exchange // nil unless Config.Bitswap
	bsp *bsPeers          // Bitswap peers' limiters; nil unless Config.Bitswap

	// admitting, if not nil, is called by admit between finding a
	// session's source and registering the session: a test's hook into
	// that window, set before the first session. Nil outside tests.
	admitting func(root cid.Cid)
}

// Stats counts what a swarm has done since it started.
type Stats struct {
	BytesUp, BytesDown int64 // chunk bytes sent and received (verified or not), over both protocols
	ChunksServed       int64
	ChunksVerified     int64
	ChunksRejected     int64 // failed their hash
	DuplicateBytes     int64 // received for chunks already verified
	Bans               int64
	ServeSessions      int64 // open now
	FetchSessions      int64 // open now
	UnrequestedBlocks  int64
	ProtocolViolations int64
	Chokes             int64 // CHOKE messages decided, and Bitswap peers held: a peer had to wait its turn
	// BitswapBytesUp and BitswapBytesDown are the part of BytesUp and
	// BytesDown that went over Bitswap (blocks sent include the DAG
	// nodes asked for, as the wire protocol's NODEs are not counted).
	BitswapBytesUp, BitswapBytesDown int64
	// BitswapDuplicateBytes is the part of DuplicateBytes that came over
	// Bitswap: BitswapBytesDown less it is what Bitswap peers gave that
	// was used (or rejected: see ChunksRejected).
	BitswapDuplicateBytes int64
}

// New starts a swarm on h: it handles wire.ProtocolID and
// wire.PrevProtocolID streams until Close.
func New(h host.Host, blocks BlockStore, cfg Config) *Swarm {
	cfg.fill()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Swarm{
		host: h, blocks: blocks, cfg: cfg,
		log:     cfg.Logger.With("component", "swarm"),
		ctx:     ctx,
		cancel:  cancel,
		sources: map[cid.Cid]Source{},
		serving: map[cid.Cid]map[*server]struct{}{},
		bans:    map[peer.ID]time.Time{},
		fetches: map[cid.Cid][]*fetch{},
		lim:     newLimits(&cfg),
	}
	s.chk = newSlots(cfg.UploadSlots, cfg.Now, s.goroutines.Go, s.count)
	for _, pid := range Protocols() {
		h.SetStreamHandler(pid, s.handleStream)
	}
	if cfg.Bitswap {
		s.startBitswap()
	}
	return s
}

// Protocols returns the exchange's protocol IDs that a Swarm speaks,
// newest first (the order it offers them in when it opens a stream):
// wire.ProtocolID and wire.PrevProtocolID. A test or simulation that
// makes a node refuse the exchange removes the handlers of all of them.
func Protocols() []protocol.ID {
	return []protocol.ID{wire.ProtocolID, wire.PrevProtocolID}
}

// Close stops serving and every fetch, and waits for all sessions to end.
// It is idempotent; it does not close the host.
func (s *Swarm) Close() error {
	s.once.Do(func() {
		for _, pid := range Protocols() {
			s.host.RemoveStreamHandler(pid)
		}
		if s.bs != nil {
			s.bs.Close()
			s.bsp.close()
		}
		s.mu.Lock()
		s.closed = true
		var all []*server
		for _, set := range s.serving {
			for sv := range set {
				all = append(all, sv)
			}
		}
		s.mu.Unlock()
		s.goroutines.stop()
		s.cancel()
		s.chk.close()
		for _, sv := range all {
			sv.stream.Reset()
		}
		s.goroutines.wait()
	})
	return nil
}

// Serve makes this node serve root from src, replacing any earlier source.
// The root's open sessions are served from src from then on, and hear of
// each chunk of src they were not told of yet (a session that began with
// HAVE_NONE while this node fetched root, of all; one that began with the
// download's bitfield, of what src adds); nothing told is taken back. It
// does not block on the network; safe for concurrent use.
func (s *Swarm) Serve(root cid.Cid, src Source) {
	s.lookups.forget(root) // registered now: the cache need not keep it
	s.mu.Lock()
	s.sources[root] = src
	var open []*server
	for sv := range s.serving[root] {
		open = append(open, sv)
	}
	s.mu.Unlock()
	if len(open) == 0 {
		return
	}
	// The sessions' old source may read through paths that are gone by
	// now (a follow moves its staged download into place), and a resumed
	// download holds chunks that no HAVE will ever announce otherwise.
	var bits *bitfield.Bitfield // nil: src is complete
	if !src.Complete() {
		var err error
		if bits, err = bitfield.FromBytes(src.Layout().NumChunks(), src.Bits()); err != nil {
			// A source of our own that breaks its contract: its
			// peers learn of its chunks from HAVEs as they come.
			s.log.Error("a source's bitfield", "root", root, "err", err)
			bits = bitfield.New(src.Layout().NumChunks())
		}
	}
	for _, sv := range open {
		// Also when sv.src is src already: a session that began with
		// HAVE_NONE may have picked src up (source) before this loop
		// reached it, and has yet to hear of its chunks.
		sv.mu.Lock()
		sv.replaceSourceLocked(src, bits)
		sv.mu.Unlock()
		sv.signal()
	}
}

// StopServing stops serving root and ends the sessions that fetch it (they
// are told it is no longer shared): what a share registered, or Lookup
// found. A fetch of root still running goes on serving its download to
// the sessions that come after, as it does from its start when nothing
// else serves root (those ended here were told HAVE_ALL, which its
// download cannot back): an unshare stops the share, not the fetch. Safe
// for concurrent use.
func (s *Swarm) StopServing(root cid.Cid) {
	s.stopServing(root, nil, nil)
}

// StopServingFrom is StopServing of root if src is what serves it, and
// reports whether it was: whoever registered src (a fetch, serving root
// from its download) withdraws it without ending what replaced it since
// (a share of the same root). Safe for concurrent use.
func (s *Swarm) StopServingFrom(root cid.Cid, src Source) bool {
	return s.stopServing(root, src, nil)
}

// stopServing ends the serving of root, if only (when not nil) serves it,
// and reports whether it did. The download of a fetch of root in flight
// other than except, if one has begun, serves root from then on.
func (s *Swarm) stopServing(root cid.Cid, only Source, except *fetch) bool {
	s.mu.Lock()
	if only != nil && s.sources[root] != only {
		s.mu.Unlock()
		return false
	}
	// In one step with the cache: a lookup or a session that found a
	// source before this sees gen changed, and one that comes after
	// finds none.
	s.gen++
	delete(s.sources, root)
	s.lookups.forget(root)
	delete(s.spreads, root)
	if dl := s.downloadLocked(root, except); dl != nil {
		s.sources[root] = dl
	}
	var end []*server
	for sv := range s.serving[root] {
		end = append(end, sv)
	}
	s.mu.Unlock()
	for _, sv := range end {
		sv.close(wire.CodeNotFound, "no longer shared")
	}
	return true
}

// downloadLocked returns the download of a fetch of root in flight, other
// than except, that has begun (FetchOptions.Started); nil if none.
func (s *Swarm) downloadLocked(root cid.Cid, except *fetch) Source {
	for _, f := range s.fetches[root] {
		if f != except && f.served != nil {
			return f.served
		}
	}
	return nil
}

// withdraw stops serving f's root from its download, after the fetch
// failed: what a failed fetch wrote is served only while it runs. Whatever
// replaced the download as the root's source (a share) goes on. f stays
// among the fetches until Fetch returns: from here on, no StopServing
// takes its download as the root's source (downloadLocked).
func (s *Swarm) withdraw(f *fetch) {
	s.mu.Lock()
	dl := f.served
	f.served = nil
	s.mu.Unlock()
	if dl != nil {
		s.stopServing(f.root, dl, f)
	}
}

// Serving reports whether root has a source.
func (s *Swarm) Serving(root cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sources[root] != nil
}

// Source returns what serves root here, or nil: a share, a finished fetch,
// a fetch in flight (which has only some chunks), or what Config.Lookup
// finds. Safe for concurrent use.
func (s *Swarm) Source(root cid.Cid) Source {
	if src := s.Registered(root); src != nil || s.cfg.Lookup == nil {
		return src
	}
	return s.lookup(root)
}

// fetching tells the fetches of root in flight that p fetches it too: a
// peer that downloads the same root is worth asking (it trades, as in
// BitTorrent, instead of only taking).
func (s *Swarm) fetching(root cid.Cid, p peer.ID) {
	s.mu.Lock()
	fs := slices.Clone(s.fetches[root])
	s.mu.Unlock()
	for _, f := range fs {
		select {
		case f.events <- event{kind: evFound, peer: peer.AddrInfo{ID: p}}:
		default: // the loop is busy; discovery will find p later
		}
	}
}

// isFetching reports whether a fetch of root is in flight.
func (s *Swarm) isFetching(root cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fetches[root]) > 0
}

// Announce tells every peer that fetches root from this node that chunk i
// can now be had here.
func (s *Swarm) Announce(root cid.Cid, i int64) {
	s.mu.Lock()
	var to []*server
	for sv := range s.serving[root] {
		to = append(to, sv)
	}
	s.mu.Unlock()
	for _, sv := range to {
		sv.announce(i)
	}
}

// Ban refuses p for the ban time: its streams are reset and new ones
// refused.
func (s *Swarm) Ban(p peer.ID, reason string) {
	s.ban(p, reason, nil, 0, "")
}

// ban records the ban of p, then ends first with ERROR code and msg (when
// first is not nil) and p's other serving sessions with CodeBanned. The ban
// is recorded before any ERROR is written, so a peer that reads why it was
// cut off finds itself banned already.
func (s *Swarm) ban(p peer.ID, reason string, first *server, code wire.ErrCode, msg string) {
	s.mu.Lock()
	s.bans[p] = s.cfg.Now().Add(s.cfg.BanTime)
	s.stats.Bans++
	var end []*server
	for _, set := range s.serving {
		for sv := range set {
			if sv.peer == p && sv != first {
				end = append(end, sv)
			}
		}
	}
	s.mu.Unlock()
	s.log.Warn("banned peer", "peer", p, "reason", reason)
	if first != nil {
		first.close(code, msg)
	}
	for _, sv := range end {
		sv.close(wire.CodeBanned, "banned: "+reason)
	}
	if s.cfg.OnBan != nil {
		s.cfg.OnBan(p)
	}
}

// Banned reports whether p is banned now.
func (s *Swarm) Banned(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bannedLocked(p)
}

func (s *Swarm) bannedLocked(p peer.ID) bool {
	until, ok := s.bans[p]
	if ok && s.cfg.Now().After(until) {
		delete(s.bans, p)
		return false
	}
	return ok
}

// Bans lists the peers banned now, sorted (not in the order of a map:
// a simulation's report lists them).
func (s *Swarm) Bans() []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []peer.ID
	for p := range s.bans {
		if s.bannedLocked(p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Stats returns the counters.
func (s *Swarm) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Swarm) count(fn func(*Stats)) {
	s.mu.Lock()
	fn(&s.stats)
	s.mu.Unlock()
}

// openStream opens a wire stream to p unless p is banned: on
// wire.ProtocolID, or wire.PrevProtocolID if p speaks only that (a node of
// the version before). The caller says HELLO.
func (s *Swarm) openStream(ctx context.Context, p peer.ID) (network.Stream, error) {
	if s.Banned(p) {
		return nil, fmt.Errorf("swarm: %s is banned", p)
	}
	if s.cfg.Allow != nil && !s.cfg.Allow(p) {
		return nil, fmt.Errorf("swarm: %s is not on the allowlist", p)
	}
	st, err := s.host.NewStream(ctx, p, Protocols()...)
	if err != nil {
		return nil, limitedRelayError(s.host.Network().ConnsToPeer(p), p, err)
	}
	return st, nil
}

// limitedRelayError explains err when every connection to p goes through a
// relay that limits it (circuit v2's default: enough for a hole punch, not
// for a transfer), which is why libp2p opens no stream on it.
func limitedRelayError(conns []network.Conn, p peer.ID, err error) error {
	if len(conns) == 0 {
		return err
	}
	for _, c := range conns {
		if !c.Stat().Limited {
			return err
		}
	}
	st := conns[0].Stat()
	data, _ := st.Extra[client.StatLimitData].(uint64)
	dur, _ := st.Extra[client.StatLimitDuration].(time.Duration)
	return fmt.Errorf("swarm: %s is reachable only through a relay that limits each connection (%d bytes, %v): enough for a hole punch, not a transfer, and no hole punch gave a direct connection; use a relay without limits (peer daemon --relay-service --relay-unlimited on a public node) or forward a port to the sharer: %w", p, data, dur, err)
}
