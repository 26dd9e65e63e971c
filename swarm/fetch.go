package swarm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	libp2pevent "github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm/sched"
	"github.com/peer-project/peer/swarm/wire"
	"github.com/peer-project/peer/unixfs"
)

// tickInterval is how often a fetch's scheduler is told the time, for
// timeouts; progress is reported at the same pace.
const tickInterval = 50 * time.Millisecond

// FetchOptions say where a fetch puts a root and where it looks for it.
type FetchOptions struct {
	// Dest is the path the root is written to: a file, or a folder for a
	// directory root. Required.
	Dest string
	// Force replaces an existing Dest; without it an existing Dest is an
	// error, found before anything is fetched.
	Force bool
	// Hints are peers to ask first (a ticket's provider, --peer flags).
	Hints []peer.AddrInfo
	// Discover, if not nil, is called to find providers (the DHT). The
	// fetch cancels ctx when it no longer needs more; the channel must be
	// closed when the lookup ends. It is called again, at most every
	// RediscoverEvery, while the fetch has few peers with chunks.
	Discover func(ctx context.Context) <-chan peer.AddrInfo
	// RediscoverEvery spaces lookups; zero means 2 s.
	RediscoverEvery time.Duration
	// FindTimeout is how long a fetch may go without any peer that has
	// a chunk it lacks before it fails with ErrNoProviders; zero means 60 s.
	FindTimeout time.Duration
	// StallTimeout is how long a fetch may go without progress (a chunk or
	// a DAG node verified) before it fails with ErrStalled, which
	// names the peers it tried and what each said. While it waits, from
	// an eighth of StallTimeout without progress on (but not sooner than
	// RediscoverEvery), it looks for sources again every RediscoverEvery
	// however many sessions it has: a lookup, the hints, the peers it knew
	// whose sessions ended (a link that dropped may be back), and the
	// peers the host is connected to. Zero means 2 minutes.
	StallTimeout time.Duration
	// NoConnected stops the fetch from asking the peers the host is
	// connected to: those connected when it starts, and, for a fetch with
	// no Discover, those that connect while it runs (each asked as soon
	// as it says it speaks the exchange protocol).
	NoConnected bool
	// Progress, if not nil, is called from the fetch's loop about every
	// 50 ms and once at the end. It must not block.
	Progress func(Progress)
	// Accept, if not nil, is called once the layout is known, before
	// anything is written to Dest: an error ends the fetch with it.
	Accept func(l *Layout) error
	// Started, if not nil, is called once with the layout and the source
	// that serves the chunks fetched so far, before any chunk is
	// requested (the node serves and announces the root from then on).
	Started func(l *Layout, src Source)
	// Verified, if not nil, is called from the peers' goroutines after each
	// chunk is verified and written (the node records progress). It must
	// not block for long.
	Verified func(i int64)
	// Focus, if not nil, carries the chunks a streaming reader wants next:
	// the fetch asks for them before any other, in order, until the next
	// Range replaces them (a seek) or an empty one clears them. The fetch
	// only receives from it; the caller never has to close it. A fetch
	// with Focus tells each peer of protocol 2.1 (wire.ProtocolID) it
	// asks that it reads in order (wire.InOrder), so that a seed serves
	// it as it asks and holds nothing back for it (spread.go), seeks or
	// not; a 2.0 or Bitswap peer cannot be told.
	Focus <-chan Range
	// Replaceable, if not nil, lets Force replace a folder Dest that holds
	// files the root does not list: those of which it returns true (given
	// their slash-separated path below Dest) are removed with the old
	// folder; anything else unlisted still refuses the fetch
	// (ErrWontReplace). The node says true for a file of the previous
	// version it fetched there, unchanged since. Called from the fetch's
	// loop, on every unlisted entry: it must say true of regular files
	// only.
	Replaceable func(rel string) bool
	// Want, if not nil, picks the files of a folder root to fetch: it is
	// called once for each file, after Accept and before anything is
	// written, and only the files it returns true for are fetched and
	// written (their folders, and every folder of the root, are made).
	// The other files' chunks are never asked for, copied or served, and
	// the staging area and Dest hold none of them (one an earlier fetch
	// staged is removed). The download is then never a complete Source of
	// the root. A follow fetches this way only the files a new version
	// changed. A file root with Want is refused (ErrWantFile), before
	// anything is written.
	Want func(f FileSpan) bool
	// Local, if not nil, names the places on this machine that held chunk
	// c when they were indexed (the node's shares and finished
	// downloads): before it asks any peer, the fetch copies each chunk it
	// lacks from the first of them whose bytes hash to c (local.go). With
	// Force, the same offset of the same file in what Dest holds now is
	// tried too, Local or not. It is called from several goroutines at
	// once and must not block for long.
	Local func(c cid.Cid) []LocalCopy
	// Record, if not nil, gets the transcript of the fetch's scheduler
	// (see package sched): a "new" line with its Config and seed, then
	// every event the fetch gives it, with the time between them, and the
	// actions each gave. sched.Replay runs it through a new Scheduler and
	// gives the same actions. It is written from the fetch's loop, a
	// few lines at a time; a write that fails ends the recording (with a
	// warning in the log), not the fetch. Nil costs nothing.
	Record io.Writer
}

// Range is the chunks [From, To) of a Layout.
type Range struct{ From, To int64 }

// Progress describes a fetch in flight.
type Progress struct {
	Root         cid.Cid
	Bytes, Total int64 // verified bytes, of all
	Chunks, Of   int64 // verified chunks, of all
	Resumed      int64 // chunks found on disk when the fetch started
	Local        int64 // bytes copied from chunks this machine had (FetchOptions.Local, the previous version at Dest)
	Received     int64 // verified bytes received from peers (the sum of PerPeer)
	Peers        int   // peers with a live session
	Duplicate    int64 // bytes received for chunks already verified
	Done         bool
	PerPeer      map[peer.ID]int64 // verified bytes received from each peer
	Bans         int
}

// Result describes a finished fetch.
type Result struct {
	Root     cid.Cid
	Dest     string
	Layout   *Layout
	Progress Progress
	Source   Source // serves the fetched root from where it was written
}

// Fetch downloads root to opts.Dest and returns when every chunk is verified
// and renamed into place, when ctx is done, or when no peer can be found.
// An interrupted fetch leaves its staging area, and the next Fetch of the
// same root to the same Dest resumes from it.
func (s *Swarm) Fetch(ctx context.Context, root cid.Cid, opts FetchOptions) (*Result, error) {
	if err := integrity.Check(root); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", root, err)
	}
	if opts.Dest == "" {
		return nil, fmt.Errorf("fetch %s: no destination", root)
	}
	if !opts.Force {
		if _, err := os.Lstat(opts.Dest); err == nil {
			return nil, fmt.Errorf("fetch %s: %w: %s (choose another destination, or force)", root, ErrExists, opts.Dest)
		}
	}
	if opts.RediscoverEvery < 0 || opts.FindTimeout < 0 || opts.StallTimeout < 0 {
		return nil, fmt.Errorf("fetch %s: negative RediscoverEvery, FindTimeout or StallTimeout (zero means the default)", root)
	}
	if opts.RediscoverEvery == 0 {
		opts.RediscoverEvery = 2 * time.Second
	}
	if opts.FindTimeout == 0 {
		opts.FindTimeout = 60 * time.Second
	}
	if opts.StallTimeout == 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	f := s.newFetch(ctx, root, opts)
	s.mu.Lock()
	s.fetches[root] = append(s.fetches[root], f)
	s.stats.FetchSessions++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.fetches[root] = slices.DeleteFunc(s.fetches[root], func(g *fetch) bool { return g == f })
		if len(s.fetches[root]) == 0 {
			delete(s.fetches, root)
		}
		s.stats.FetchSessions--
		s.mu.Unlock()
	}()
	res, err := f.run()
	cancel() // ends the sessions and any node lookup still waiting
	f.shutdown()
	if err != nil {
		s.withdraw(f)
		return nil, fmt.Errorf("fetch %s: %w", root, err)
	}
	return res, nil
}

func (s *Swarm) newFetch(ctx context.Context, root cid.Cid, opts FetchOptions) *fetch {
	return &fetch{
		sw: s, root: root, opts: opts, ctx: ctx,
		events:  make(chan event, 256),
		conns:   map[peer.ID]*conn{},
		tried:   map[peer.ID]bool{},
		known:   map[peer.ID]peer.AddrInfo{},
		said:    map[peer.ID]string{},
		from:    map[cid.Cid]peer.ID{},
		ids:     map[peer.ID]sched.PeerID{},
		peerIDs: map[sched.PeerID]peer.ID{},
		ready:   make(chan struct{}),
		arrived: make(chan struct{}, 1),
		log:     s.log.With("root", root),
	}
}

// GetBlock fetches DAG node c of root (root itself, or a block
// below it) from the first peer that has it, asking hints, the peers
// already connected, and those discover finds, in sessions for root: a
// peer answers only for the roots it serves, and only with their own
// blocks. It verifies the block and keeps it in the BlockStore. It blocks
// until then or until ctx is done.
func (s *Swarm) GetBlock(ctx context.Context, root, c cid.Cid, hints []peer.AddrInfo, discover func(context.Context) <-chan peer.AddrInfo) ([]byte, error) {
	b, _, err := s.GetBlockFrom(ctx, root, c, hints, discover)
	return b, err
}

// GetBlockFrom is GetBlock, and also names the peer that sent the block
// ("" when it came from the BlockStore), for a caller whose walk of the
// DAG then finds it invalid (see BlameDAG).
func (s *Swarm) GetBlockFrom(ctx context.Context, root, c cid.Cid, hints []peer.AddrInfo, discover func(context.Context) <-chan peer.AddrInfo) ([]byte, peer.ID, error) {
	if b, err := s.blocks.GetBlock(ctx, c); err == nil {
		return b, "", nil
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	f := s.newFetch(ctx, root, FetchOptions{Hints: hints, Discover: discover, RediscoverEvery: time.Hour})
	f.goroutine(func() {
		for {
			select {
			case ev := <-f.events:
				if ev.kind == evFound {
					f.found(ev.peer)
				}
			case <-ctx.Done():
				return
			}
		}
	})
	f.sources(f.sw.cfg.Now())
	data, err := f.getBlock(ctx, c)
	cancel()
	f.shutdown()
	if err != nil {
		return nil, "", fmt.Errorf("swarm: block %s: %w", c, err)
	}
	f.mu.Lock()
	from := f.from[c]
	f.mu.Unlock()
	return data, from, nil
}

// event is what the peers' goroutines tell a fetch's loop. What a peer
// said or sent is told in the scheduler's words (evSched: a sched.Event,
// whose Peer and Time the loop fills in); the rest is the fetch's own.
type event struct {
	kind eventKind
	what sched.Event // evSched: Kind and Index; Reason comes from err
	conn *conn
	err  error // evSched: why (Misbehaved, BlockWriteFailed); evDown: why
	size int   // evSched BlockVerified: the chunk's size
	dup  bool  // evSched BlockVerified: the chunk was had already
	peer peer.AddrInfo
	// refused, evDown: the peer answered HELLO with ERROR CodeNotFound
	// (it does not serve the root, errNotProvided), the one failure that
	// asking again can mend: see refound.
	refused bool
}

type eventKind int

const (
	evSched         eventKind = iota // what a session's peer said or sent
	evUp                             // a session opened; have is its first HAVE
	evDown                           // session ended
	evFound                          // discovery found a peer
	evDiscoveryDone                  // a discovery round ended
	evNode                           // a DAG node was verified
)

// peerSaid returns the event of c's peer saying or sending what k says
// about chunk i.
func peerSaid(c *conn, k sched.EventKind, i int64) event {
	return event{kind: evSched, what: sched.Event{Kind: k, Index: i}, conn: c}
}

type fetch struct {
	sw     *Swarm
	root   cid.Cid
	opts   FetchOptions
	ctx    context.Context
	log    *slog.Logger
	events chan event

	goroutines group // the fetch's own goroutines

	mu     sync.Mutex // guards conns, tried, known, layout, dl, ready, refound, and conn.up and conn.firstHave
	conns  map[peer.ID]*conn
	tried  map[peer.ID]bool
	known  map[peer.ID]peer.AddrInfo // every peer dialled, for the re-dials of a stalled fetch
	layout *Layout
	dl     *download
	ready  chan struct{} // closed when a session is up, for the node getter
	// served is dl once handed to FetchOptions.Started (guarded by
	// Swarm.mu): what serves root if its source stops while the fetch
	// runs (see Swarm.stopServing).
	served Source
	// refound: peers found again (a peer that fetches the root opened a
	// session to us, discovery) while the session to them was being
	// opened: if it is refused (event.refused), they are dialled again at
	// once, at most once per find: the session's end spends the mark
	// whatever it was (dial, handle). A session that fails otherwise (a reset, a
	// protocol error, a ban, too many requests) is not dialled again at
	// once: the next round of discovery or hints asks it again, and two
	// fetchers that fail each other would otherwise dial each other in a
	// loop.
	refound map[peer.ID]bool

	sched       *sched.Scheduler
	actions     []sched.Action           // what the scheduler decided, for apply
	ids         map[peer.ID]sched.PeerID // see schedID
	peerIDs     map[sched.PeerID]peer.ID
	rec         *sched.Recorder // writes the scheduler's transcript to opts.Record
	recBuf      []byte
	focus       Range // the latest Focus, applied once the scheduler exists
	progress    Progress
	lastSource  time.Time
	discovering bool
	lastLookup  time.Time
	lastHints   time.Time           // when the hints were last dialled
	lastErr     error               // why the last session could not open, for ErrNoProviders
	said        map[peer.ID]string  // why each peer's last session ended, for ErrStalled
	from        map[cid.Cid]peer.ID // who sent each node of the DAG (guarded by mu), to blame for an invalid one
	progressed  time.Time           // when a chunk or DAG node was last verified
	lastRedial  time.Time           // when the known peers were last dialled again
	redialNext  int                 // where the next re-dial round starts in the known peers
	fatal       error               // ends the fetch: a verified chunk could not be written
	early       map[peer.ID]int     // strikes outside the scheduler, by peer (strikeEarly); under mu
	providers   map[peer.ID]bool    // peers discovery named as providers; under mu
	arrivals    map[peer.ID]bool    // peers that connected and speak our protocol, not asked yet; under mu
	arrived     chan struct{}       // a peer joined arrivals (capacity 1: signals coalesce)
	probeWindow time.Time           // start of the window that probes of arrivals count in
	probed      int                 // arrivals asked in the window
}

func (f *fetch) goroutine(fn func()) { f.goroutines.Go(fn) }

// post sends an event to the loop unless the fetch is over, and reports
// whether it did.
func (f *fetch) post(ev event) bool {
	select {
	case f.events <- ev:
		return true
	case <-f.ctx.Done():
		return false
	}
}

// badBlock reports that p sent chunk i and it failed its hash. The loop
// strikes p; once the loop has ended (the last chunk came from someone
// else meanwhile), p is struck here, so that a liar whose block arrived as
// the fetch completed does not go unpunished.
func (f *fetch) badBlock(c *conn, i int64) {
	if !f.post(peerSaid(c, sched.BlockBad, i)) {
		f.strikeEarly(c.peer, fmt.Errorf("chunk %d failed its hash", i))
	}
}

func (f *fetch) run() (*Result, error) {
	now := f.sw.cfg.Now()
	f.lastSource, f.lastHints, f.progressed, f.lastRedial = now, now, now, now
	if f.opts.Discover == nil && !f.opts.NoConnected {
		f.watchArrivals()
	}
	f.sources(now)

	// The DAG: from the local store, or through the first sessions.
	layoutDone := make(chan error, 1)
	f.goroutine(func() {
		l, err := BuildLayout(f.ctx, unixfs.GetterFunc(f.getBlock), f.root)
		if err == nil {
			f.mu.Lock()
			f.layout = l
			f.mu.Unlock()
		}
		f.blameDAG(err)
		layoutDone <- err
	})

	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	for {
		if f.sched != nil && f.sched.Done() {
			return f.complete()
		}
		select {
		case <-f.ctx.Done():
			return nil, f.ctx.Err()
		case err := <-layoutDone:
			if err != nil {
				if f.ctx.Err() != nil {
					return nil, f.ctx.Err()
				}
				return nil, fmt.Errorf("loading the root's DAG: %w", err)
			}
			if err := f.start(); err != nil {
				return nil, err
			}
			if f.sched == nil { // nothing to fetch: an empty file or folder
				return f.complete()
			}
		case ev := <-f.events:
			f.handle(ev)
			if f.fatal != nil {
				return nil, f.fatal
			}
		case <-f.arrived:
			f.probeArrivals(f.sw.cfg.Now())
		case r := <-f.opts.Focus:
			f.focus = r
			if f.sched != nil {
				f.step(sched.Event{Kind: sched.Prioritize, Index: r.From, To: r.To, Time: f.sw.cfg.Now()})
			}
		case <-tick.C:
			now := f.sw.cfg.Now()
			if f.sched != nil {
				f.step(sched.Event{Kind: sched.Tick, Time: now})
				f.bsPresume(now)
			}
			if err := f.checkSources(now); err != nil {
				return nil, err
			}
			f.probeArrivals(now) // those a full window held back
			f.report(false)
		}
		f.apply()
	}
}

// sources asks the hints first, then the peers already connected, then
// discovery.
func (f *fetch) sources(now time.Time) {
	for _, ai := range f.opts.Hints {
		f.dial(ai)
	}
	if !f.opts.NoConnected {
		// A few of the peers already connected (DHT neighbours, earlier
		// partners): asking each costs a stream, so not all of hundreds.
		for _, p := range f.connectedProbes() {
			f.dial(peer.AddrInfo{ID: p})
		}
	}
	f.discover(now)
}

// connectedProbes returns up to maxConnectedProbe of the peers the host is
// connected to that the fetch has not tried, nearest to this node first by
// the XOR of their IDs. The host lists its peers in the order of a map,
// which differs from run to run; this way which peers a fetch asks is
// decided by the identities alone (a simulation's seed), and different
// nodes ask different peers.
func (f *fetch) connectedProbes() []peer.ID {
	peers := f.sw.host.Network().Peers()
	self := f.sw.host.ID()
	slices.SortFunc(peers, func(a, b peer.ID) int { return xorCompare(self, a, b) })
	f.mu.Lock()
	defer f.mu.Unlock()
	out := peers[:0]
	for _, p := range peers {
		if len(out) == maxConnectedProbe {
			break
		}
		if p != self && !f.tried[p] {
			out = append(out, p)
		}
	}
	return out
}

// xorCompare compares a and b by their XOR distance to self, byte by byte
// (a byte past an ID's end counts as zero).
func xorCompare(self, a, b peer.ID) int {
	at := func(id peer.ID, i int) byte {
		if i < len(id) {
			return id[i]
		}
		return 0
	}
	for i := range max(len(a), len(b)) {
		if c := cmp.Compare(at(self, i)^at(a, i), at(self, i)^at(b, i)); c != 0 {
			return c
		}
	}
	return 0
}

// start sets up the download once the layout is known.
func (f *fetch) start() error {
	l := f.layout
	if f.opts.Accept != nil {
		if err := f.opts.Accept(l); err != nil {
			return err
		}
	}
	// With force, a destination the fetch would not replace is refused
	// before anything is fetched; finish checks again.
	if _, err := checkReplace(l, f.opts.Dest, f.opts.Force, f.opts.Replaceable); err != nil {
		return err
	}
	var skip []bool
	if f.opts.Want != nil {
		if !l.Dir {
			return fmt.Errorf("%w: this root is a single file; fetch it without Want", ErrWantFile)
		}
		skip = make([]bool, len(l.Files))
		for fi, sp := range l.Files {
			skip[fi] = !f.opts.Want(sp)
		}
	}
	dl, err := openDownloadOf(l, f.opts.Dest, skip)
	if err != nil {
		return err
	}
	dl.replaceable = f.opts.Replaceable
	f.mu.Lock()
	f.dl = dl
	f.mu.Unlock()
	resumed, err := dl.recheck(f.ctx)
	if err != nil {
		return err
	}
	local := f.fillLocal(f.ctx)
	if err := f.ctx.Err(); err != nil {
		return err
	}
	// A long local copy (a big folder, a slow disk) is progress, not a
	// stall: the peers' clocks start now.
	now := f.sw.cfg.Now()
	f.progressed, f.lastSource = now, now
	total, of := dl.wanted()
	f.progress = Progress{Root: f.root, Total: total, Of: of, Resumed: resumed, Local: local, PerPeer: map[peer.ID]int64{}}
	f.sw.mu.Lock()
	f.served = dl
	f.sw.mu.Unlock()
	if f.opts.Started != nil {
		f.opts.Started(l, dl)
	}
	if l.NumChunks() == 0 {
		return nil
	}
	h := fnv.New64a()
	h.Write(f.root.Bytes())
	rng := rand.New(rand.NewPCG(f.sw.cfg.Seed, h.Sum64()))
	chunkSize := int(l.Chunks[0].Size)
	cfg := sched.Config{
		Chunks:         l.NumChunks(),
		ChunkSize:      max(chunkSize, 1),
		SizeOf:         func(i int64) int { return int(l.Chunks[i].Size) },
		MinWindow:      f.sw.cfg.MinWindow,
		MaxWindow:      f.sw.cfg.MaxWindow,
		RequestTimeout: f.sw.cfg.RequestTimeout,
		MaxStrikes:     f.sw.cfg.MaxStrikes,
	}
	// The files not wanted count as had: the scheduler never asks for them.
	have := dl.schedBits()
	f.sched, err = sched.New(cfg, have, rng)
	if err != nil {
		return err
	}
	if f.opts.Record != nil {
		var first []byte
		f.rec, first = sched.NewRecorder(sched.NewHeader(cfg, have, f.sw.cfg.Seed, h.Sum64()), now)
		f.write(first)
	}
	if f.focus.From < f.focus.To {
		f.step(sched.Event{Kind: sched.Prioritize, Index: f.focus.From, To: f.focus.To, Time: now})
	}
	f.mu.Lock()
	conns := make([]*conn, 0, len(f.conns))
	for _, c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		f.join(c, now)
	}
	return nil
}

// join tells the scheduler about a session and what it has.
func (f *fetch) join(c *conn, now time.Time) {
	if c.joined || c.firstHave == nil {
		return
	}
	c.joined = true
	id := f.schedID(c.peer)
	f.step(sched.Event{Kind: sched.PeerJoined, Peer: id, Time: now})
	if c.choked {
		// It said CHOKE before the scheduler knew it.
		f.step(sched.Event{Kind: sched.Choke, Peer: id, Time: now})
	}
	var err error
	switch m := c.firstHave.(type) {
	case *wire.HaveAll:
		err = f.step(sched.Event{Kind: sched.HaveAll, Peer: id, Time: now})
	case *wire.HaveBitfield:
		err = f.step(sched.Event{Kind: sched.HaveBitfield, Peer: id, Bits: m.Bits, Time: now})
	}
	for _, i := range c.announced() { // the HAVEs that came before
		if err == nil {
			err = f.step(sched.Event{Kind: sched.Have, Peer: id, Index: i, Time: now})
		}
	}
	if err != nil {
		f.step(sched.Event{Kind: sched.Misbehaved, Peer: id, Reason: err.Error(), Time: now})
	}
}

func (f *fetch) handle(ev event) {
	now := f.sw.cfg.Now()
	c := ev.conn
	switch ev.kind {
	case evFound:
		f.found(ev.peer)
		return
	case evDiscoveryDone:
		f.discovering = false
		return
	case evNode:
		f.progressed = now
		return
	case evDown:
		if ev.err != nil && f.ctx.Err() == nil {
			f.log.Debug("no session, or it ended", "peer", c.peer, "err", ev.err)
		}
		if ev.err != nil {
			f.lastErr = ev.err
			f.said[c.peer] = ev.err.Error()
		} else {
			f.said[c.peer] = "the session ended"
		}
	case evUp:
		switch m := c.firstHave.(type) {
		case *wire.HaveAll:
			c.hasSome = true
		case *wire.HaveBitfield:
			c.hasSome = slices.ContainsFunc(m.Bits, func(b byte) bool { return b != 0 })
		}
		if c.hasSome {
			f.lastSource = now
		}
		f.mu.Lock()
		delete(f.refound, c.peer) // it took the session
		f.mu.Unlock()
		if f.sched != nil {
			f.join(c, now)
		}
		return
	}
	if ev.kind == evDown {
		if f.sched != nil && c.joined {
			f.step(sched.Event{Kind: sched.PeerLeft, Peer: f.schedID(c.peer), Time: now})
		}
		f.drop(c)
		// Refused, and found again while this session was opened: a
		// peer that did not serve the root then started fetching it and
		// asked us. Ask it again now: the next rediscovery may come
		// after the seed stopped holding back our requests for what it
		// has. Any other failure is left to the next rediscovery.
		f.mu.Lock()
		again := f.refound[c.peer] && ev.refused
		delete(f.refound, c.peer)
		ai := f.known[c.peer] // the addresses it was found at, not its ID alone
		f.mu.Unlock()
		if again {
			ai.ID = c.peer
			f.dial(ai)
		}
		return
	}
	e := ev.what
	e.Peer, e.Time = f.schedID(c.peer), now
	if e.Kind == sched.Misbehaved && ev.err != nil {
		e.Reason = ev.err.Error()
	}
	switch e.Kind {
	case sched.Choke, sched.Unchoke:
		c.choked = e.Kind == sched.Choke
		if !c.joined {
			return // join tells the scheduler
		}
		f.step(e)
		if !c.choked && f.sched.Requested(e.Peer) == 0 {
			// Nothing to ask of it: its slot may go to someone else.
			c.notInterested()
		}
		return
	}
	if f.sched == nil {
		if e.Kind == sched.Misbehaved {
			f.strikeEarly(c.peer, ev.err)
			c.close(wire.CodeProtocol, ev.err.Error())
			return
		}
		if e.Kind == sched.Have {
			c.hasSome = true // the conn keeps the index for join
		}
		return
	}
	switch e.Kind {
	case sched.Have:
		c.hasSome = true
		if !c.joined {
			return // the conn keeps the index for join
		}
		f.lastSource = now
	case sched.BlockVerified:
		if ev.dup {
			f.progress.Duplicate += int64(ev.size)
		} else {
			f.progressed = now
			f.progress.PerPeer[c.peer] += int64(ev.size)
			f.progress.Received += int64(ev.size)
		}
	case sched.BlockWriteFailed:
		// A chunk that verified could not be written: the disk is the
		// trouble (full, read-only, gone), not the peer, and asking again
		// would only fetch it again. The fetch ends; what it verified stays.
		f.log.Warn("writing a chunk", "index", e.Index, "err", ev.err)
		if f.fatal == nil {
			kept, _ := f.dl.counts()
			f.fatal = fmt.Errorf("%w; free space or fix the disk, then fetch again: the %d verified chunks in %s are kept", ev.err, kept, f.dl.partial)
		}
	}
	if err := f.step(e); err != nil && !errors.Is(err, sched.ErrUnknownPeer) {
		f.step(sched.Event{Kind: sched.Misbehaved, Peer: e.Peer, Reason: err.Error(), Time: now})
	}
}

// record writes e and what it gave to opts.Record.
func (f *fetch) record(e sched.Event, acts []sched.Action, stepErr error) {
	b, err := f.rec.Record(f.recBuf[:0], e, acts, stepErr)
	f.recBuf = b
	if err == nil {
		f.write(b)
		return
	}
	f.log.Warn("recording the scheduler's transcript: stopped", "err", err)
	f.rec = nil
}

// write writes b to opts.Record, or ends the recording if it fails.
func (f *fetch) write(b []byte) {
	if _, err := f.opts.Record.Write(b); err != nil {
		f.log.Warn("recording the scheduler's transcript: stopped", "err", err)
		f.rec = nil
	}
}

// schedID is p as the scheduler knows it: its string form, which a
// transcript can print, remembered so that an event costs no encoding.
// For the loop only.
func (f *fetch) schedID(p peer.ID) sched.PeerID {
	id, ok := f.ids[p]
	if !ok {
		id = sched.PeerID(p.String())
		f.ids[p] = id
		f.peerIDs[id] = p
	}
	return id
}

// peerOf is the peer the scheduler knows as id (see schedID); "" for none.
func (f *fetch) peerOf(id sched.PeerID) peer.ID { return f.peerIDs[id] }

// step gives e to the scheduler, writes it to the transcript if one is
// asked for, and keeps the actions for apply.
func (f *fetch) step(e sched.Event) error {
	acts, err := f.sched.Step(e)
	f.actions = append(f.actions, acts...)
	if f.rec != nil {
		f.record(e, acts, err)
	}
	return err
}

// strikeEarly strikes a peer that broke the protocol where the scheduler
// cannot count it: before the scheduler exists (while the DAG loads),
// after the loop has ended, or for a bad DAG node. It is banned at
// its MaxStrikes-th such strike in this fetch (at the first by default);
// these strikes and the scheduler's are counted apart, so a peer may break
// the protocol at most 2·MaxStrikes-2 times in one fetch unbanned.
func (f *fetch) strikeEarly(p peer.ID, err error) {
	f.mu.Lock()
	if f.early == nil {
		f.early = map[peer.ID]int{}
	}
	f.early[p]++
	n := f.early[p]
	f.mu.Unlock()
	if n >= max(f.sw.cfg.MaxStrikes, 1) {
		f.sw.Ban(p, err.Error())
	}
}

// apply carries out the scheduler's actions: requests are batched into one
// WANT per peer.
func (f *fetch) apply() {
	if f.sched == nil {
		return
	}
	touched := map[*conn]bool{}
	acts := f.actions
	f.actions = nil
	for _, a := range acts {
		if a.Kind == sched.Done {
			continue // the loop sees Done()
		}
		f.mu.Lock()
		c := f.conns[f.peerOf(a.Peer)]
		f.mu.Unlock()
		switch a.Kind {
		case sched.Request:
			if c != nil {
				touched[c] = true
				c.request(a.Index)
			}
		case sched.Cancel:
			if c != nil {
				touched[c] = true
				c.cancel(a.Index)
			}
		case sched.Ban:
			f.progress.Bans++
			f.sw.Ban(f.peerOf(a.Peer), a.Reason)
			if c != nil {
				c.close(wire.CodeBanned, a.Reason)
			}
		}
	}
	for c := range touched {
		c.flush()
	}
}

// checkSources starts another lookup when few sessions have chunks to
// give, looks everywhere again while the fetch makes no progress, and gives
// up after FindTimeout without any peer that has a chunk it lacks, or after
// StallTimeout without progress.
func (f *fetch) checkSources(now time.Time) error {
	useful := f.usefulSessions()
	if useful > 0 {
		f.lastSource = now
	} else if now.Sub(f.lastSource) > f.opts.FindTimeout {
		// A stream over a relayed connection with limits waits for a
		// hole punch that may never come: that is why, whatever else the
		// other peers said.
		why := f.lastErr
		for _, ai := range f.opts.Hints {
			waiting := errors.New("waiting for a direct connection")
			if err := limitedRelayError(f.sw.host.Network().ConnsToPeer(ai.ID), ai.ID, waiting); err != waiting {
				why = err
				break
			}
		}
		// A lookup that named providers none of which could be used is
		// not one that found none: say which, so the user looks at
		// reachability (a NAT, a firewall) rather than at the sharer.
		found := "none found"
		f.mu.Lock()
		if n := len(f.providers); n > 0 {
			found = fmt.Sprintf("%d named by discovery, none reachable with a chunk we lack,", n)
		}
		f.mu.Unlock()
		if why != nil {
			return fmt.Errorf("%w: %s in %s (the last peer tried: %v%s); check that the sharer is online, or pass its address", ErrNoProviders, found, f.opts.FindTimeout, why, f.peersSaid("; "))
		}
		return fmt.Errorf("%w: %s in %s%s; check that the sharer is online, or pass its address", ErrNoProviders, found, f.opts.FindTimeout, f.peersSaid(" ("))
	}
	idle := now.Sub(f.progressed)
	if idle > f.opts.StallTimeout {
		kept := ""
		if f.dl != nil {
			n, _ := f.dl.counts()
			kept = fmt.Sprintf("; the %d verified chunks in %s are kept", n, f.dl.partial)
		}
		return fmt.Errorf("%w: nothing verified in %s from %d peers%s; check that a peer with the root is online, or pass its address, then fetch again%s", ErrStalled, f.opts.StallTimeout, len(f.said)+f.sessions(), f.peersSaid(": "), kept)
	}
	// Look again now and then: peers that started fetching after us
	// announce themselves as they get their first chunk, and trading
	// with them is what keeps the sharer's upload low. A fetch that makes
	// no progress for a while looks however many sessions it has: they
	// may all be choking it, or cut off from every source with it. Not at
	// once: in a flash crowd most fetchers wait a while for a first chunk,
	// and a lookup and a round of dials each every RediscoverEvery would
	// only add load.
	stalled := idle >= max(f.opts.RediscoverEvery, f.opts.StallTimeout/8)
	if useful < wellConnected || stalled {
		f.discover(now)
		// A hint whose session ended (the peer restarted, a link
		// dropped) is asked again, as often as discovery runs.
		if now.Sub(f.lastHints) >= f.opts.RediscoverEvery {
			f.lastHints = now
			for _, ai := range f.opts.Hints {
				f.dial(ai)
			}
		}
	}
	if stalled && now.Sub(f.lastRedial) >= f.opts.RediscoverEvery {
		f.lastRedial = now
		f.redial()
	}
	return nil
}

// usefulSessions counts the sessions with a chunk the fetch lacks: once the
// layout is known, as the scheduler sees it; before, any that has a chunk
// and has not failed to give a DAG node.
func (f *fetch) usefulSessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	useful := 0
	for _, c := range f.conns {
		if f.sched != nil {
			if c.joined && f.sched.Useful(f.schedID(c.peer)) {
				useful++
			}
		} else if c.hasSome && !c.noDAG() {
			// While the DAG loads, a peer that says it has chunks but
			// did not give the DAG node it was asked for is no
			// source (a HAVE flooder would keep the fetch waiting forever).
			useful++
		}
	}
	return useful
}

// sessions returns the number of live sessions whose peer said nothing yet
// in f.said.
func (f *fetch) sessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id := range f.conns {
		if _, ok := f.said[id]; !ok {
			n++
		}
	}
	return n
}

// redial dials again up to maxConnectedProbe of the peers the fetch knew
// and has no session with (after a partition heals, a dropped link comes
// back, or a peer restarts, nothing else would ask them again), then the
// peers the host is connected to now.
func (f *fetch) redial() {
	f.mu.Lock()
	ids := make([]peer.ID, 0, len(f.known))
	for id := range f.known {
		if !f.tried[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var again []peer.AddrInfo
	for k := range min(len(ids), maxConnectedProbe) {
		again = append(again, f.known[ids[(f.redialNext+k)%len(ids)]])
	}
	f.redialNext += len(again)
	f.mu.Unlock()
	for _, ai := range again {
		f.dial(ai)
	}
	if !f.opts.NoConnected {
		for _, p := range f.connectedProbes() {
			f.dial(peer.AddrInfo{ID: p})
		}
	}
}

// watchArrivals has the fetch hear of every peer that connects while it
// runs and says it speaks the exchange protocol (identify, or a later
// protocol update): probeArrivals asks it at once, rather than at the next
// probe round of a stalled fetch (StallTimeout/8, redial). Only for a fetch
// with no Discover (tickets, --peer, no DHT): with a DHT, discovery names
// the providers, and every lookup connects to some twenty peers that would
// each become a session. The goroutine only notes the peer and signals
// (the event bus waits on a slow subscriber), and ends with the fetch.
func (f *fetch) watchArrivals() {
	sub, err := f.sw.host.EventBus().Subscribe([]any{
		new(libp2pevent.EvtPeerIdentificationCompleted),
		new(libp2pevent.EvtPeerProtocolsUpdated),
	}, eventbus.Name("peer.swarm.fetch"))
	if err != nil {
		f.log.Warn("watching for new peers: off; peers that connect later are asked at the probe rounds", "err", err)
		return
	}
	f.goroutine(func() {
		defer sub.Close()
		for {
			select {
			case <-f.ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				var p peer.ID
				var protos []protocol.ID
				switch e := e.(type) {
				case libp2pevent.EvtPeerIdentificationCompleted:
					p, protos = e.Peer, e.Protocols
				case libp2pevent.EvtPeerProtocolsUpdated:
					p, protos = e.Peer, e.Added
				}
				if slices.ContainsFunc(protos, func(p protocol.ID) bool { return slices.Contains(Protocols(), p) }) {
					f.arrival(p)
				}
			}
		}
	})
}

// maxArrivals bounds the peers that wait for probeArrivals.
const maxArrivals = 4 * maxConnectedProbe

// arrival notes p for probeArrivals and wakes the loop. At most
// maxArrivals peers wait: past that a flood of connections is dropped
// here, and a stalled fetch still finds them in its probe rounds.
func (f *fetch) arrival(p peer.ID) {
	f.mu.Lock()
	if p == f.sw.host.ID() || f.tried[p] || len(f.arrivals) >= maxArrivals {
		f.mu.Unlock()
		return
	}
	if f.arrivals == nil {
		f.arrivals = map[peer.ID]bool{}
	}
	f.arrivals[p] = true
	f.mu.Unlock()
	select {
	case f.arrived <- struct{}{}:
	default: // the loop is woken already: it takes every waiting peer
	}
}

// probeArrivals asks the peers that connected since the last call (see
// watchArrivals), nearest first by XOR, at most maxConnectedProbe in any
// RediscoverEvery: the rest wait for the next window (the loop's tick
// calls again). A fetch with wellConnected useful sessions that makes
// progress asks none, as it would look no further with discovery.
func (f *fetch) probeArrivals(now time.Time) {
	f.mu.Lock()
	if len(f.arrivals) == 0 {
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	stalled := now.Sub(f.progressed) >= max(f.opts.RediscoverEvery, f.opts.StallTimeout/8)
	if f.usefulSessions() >= wellConnected && !stalled {
		f.mu.Lock()
		clear(f.arrivals)
		f.mu.Unlock()
		return
	}
	if now.Sub(f.probeWindow) >= f.opts.RediscoverEvery {
		f.probeWindow, f.probed = now, 0
	}
	self := f.sw.host.ID()
	f.mu.Lock()
	ids := make([]peer.ID, 0, len(f.arrivals))
	for p := range f.arrivals {
		// Tried since it arrived (a hint, a lookup): not asked again, and
		// not counted against maxConnectedProbe.
		if f.tried[p] {
			delete(f.arrivals, p)
			continue
		}
		ids = append(ids, p)
	}
	slices.SortFunc(ids, func(a, b peer.ID) int { return xorCompare(self, a, b) })
	ids = ids[:min(len(ids), maxConnectedProbe-f.probed)]
	for _, p := range ids {
		delete(f.arrivals, p)
	}
	f.mu.Unlock()
	f.probed += len(ids)
	for _, p := range ids {
		f.dial(peer.AddrInfo{ID: p})
	}
}

// maxSaid is how many peers an error names.
const maxSaid = 8

// peersSaid describes, after lead, what each peer the fetch tried said:
// the live sessions first, then those that ended, at most maxSaid.
func (f *fetch) peersSaid(lead string) string {
	type note struct {
		id   peer.ID
		what string
	}
	var live, ended []note
	f.mu.Lock()
	for id, c := range f.conns {
		var what string
		switch {
		case !c.joined || f.sched == nil:
			what = "connected; the DAG is not loaded yet"
			if !c.hasSome {
				what = "has no chunk"
			}
		case !f.sched.Useful(f.schedID(id)):
			what = "has no chunk we lack"
		case c.choked:
			what = "chokes us (it serves others)"
		case f.sched.Requested(f.schedID(id)) > 0:
			what = fmt.Sprintf("sent none of the %d chunks asked of it in time", f.sched.Requested(f.schedID(id)))
		default:
			what = "has chunks we lack"
		}
		live = append(live, note{id, what})
	}
	for id, what := range f.said {
		if f.conns[id] == nil {
			ended = append(ended, note{id, what})
		}
	}
	f.mu.Unlock()
	byID := func(a, b note) int { return strings.Compare(string(a.id), string(b.id)) }
	slices.SortFunc(live, byID)
	slices.SortFunc(ended, byID)
	all := append(live, ended...)
	if len(all) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(lead)
	for k, n := range all[:min(len(all), maxSaid)] {
		if k > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", n.id, n.what)
	}
	if len(all) > maxSaid {
		fmt.Fprintf(&b, "; and %d more", len(all)-maxSaid)
	}
	if lead == " (" {
		b.WriteString(")")
	}
	return b.String()
}

// DefaultStallTimeout is FetchOptions.StallTimeout's default: long enough
// for a 1 MiB chunk over a 10 KB/s link.
const DefaultStallTimeout = 2 * time.Minute

// maxConnectedProbe bounds how many already-connected peers a fetch asks
// without any sign that they have the root.
const maxConnectedProbe = 32

// wellConnected is the number of useful sessions past which a fetch stops
// looking for more.
const wellConnected = 8

// discoverBatch is how many peers the fetch has not tried that one
// discovery round hands on before it ends the lookup: a fetch looks
// because it has fewer than wellConnected useful sessions, so this many
// new peers is all that one round can be short of. A lookup may find up
// to 20 (kad's bucket), each dialled before it is sent, and rounds come
// every RediscoverEvery while a flash crowd's peers have no chunks yet:
// dialling them all gave a fetch some 40 sessions from discovery alone at
// 400 simulated peers, and each session holds goroutines and stream
// buffers on both of its ends.
const discoverBatch = wellConnected

// discover starts a discovery round unless one runs or ran recently.
func (f *fetch) discover(now time.Time) {
	if f.opts.Discover == nil || f.discovering || (!f.lastLookup.IsZero() && now.Sub(f.lastLookup) < f.opts.RediscoverEvery) {
		return
	}
	f.discovering = true
	f.lastLookup = now
	f.goroutine(func() {
		ctx, cancel := context.WithCancel(f.ctx)
		defer cancel()
		fresh := 0
		for ai := range f.opts.Discover(ctx) {
			if f.untried(ai.ID) {
				fresh++
			}
			f.post(event{kind: evFound, peer: ai})
			if fresh == discoverBatch {
				break // enough for this round: cancel ends the lookup
			}
		}
		f.post(event{kind: evDiscoveryDone})
	})
}

// untried reports whether the fetch has no session with p, live or being
// opened, and p is not this node.
func (f *fetch) untried(p peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return p != f.sw.host.ID() && !f.tried[p]
}

// dial opens a session to ai unless one was tried already.
func (f *fetch) dial(ai peer.AddrInfo) {
	if ai.ID == f.sw.host.ID() || ai.ID == "" {
		return
	}
	f.mu.Lock()
	if f.tried[ai.ID] {
		if c := f.conns[ai.ID]; c == nil || !c.up {
			// Being opened: it may yet be refused by a peer that did not
			// fetch the root when it was asked, and does now.
			if f.refound == nil {
				f.refound = map[peer.ID]bool{}
			}
			f.refound[ai.ID] = true
		}
		f.mu.Unlock()
		return
	}
	f.tried[ai.ID] = true
	k := f.known[ai.ID]
	k.ID = ai.ID
	for _, a := range ai.Addrs {
		if !slices.ContainsFunc(k.Addrs, a.Equal) {
			k.Addrs = append(k.Addrs, a)
		}
	}
	f.known[ai.ID] = k
	f.mu.Unlock()
	f.goroutine(func() { f.session(ai) })
}

// drop forgets a session that ended, so that a later lookup may try the
// peer again.
func (f *fetch) drop(c *conn) {
	f.mu.Lock()
	if f.conns[c.peer] == c {
		delete(f.conns, c.peer)
	}
	delete(f.tried, c.peer)
	f.mu.Unlock()
}

// complete renames the download into place.
func (f *fetch) complete() (*Result, error) {
	if f.dl == nil {
		return nil, errors.New("no download")
	}
	if err := f.dl.finish(f.opts.Force); err != nil {
		return nil, err
	}
	f.report(true)
	return &Result{Root: f.root, Dest: f.opts.Dest, Layout: f.layout, Progress: f.progress, Source: f.dl}, nil
}

func (f *fetch) report(done bool) {
	if f.dl == nil {
		return
	}
	p := f.progress
	p.Chunks, p.Bytes = f.dl.counts()
	f.mu.Lock()
	p.Peers = len(f.conns)
	f.mu.Unlock()
	p.Done = done
	f.progress.Chunks, f.progress.Bytes, f.progress.Peers, f.progress.Done = p.Chunks, p.Bytes, p.Peers, done
	if f.opts.Progress != nil {
		pp := make(map[peer.ID]int64, len(p.PerPeer))
		for k, v := range p.PerPeer {
			pp[k] = v
		}
		p.PerPeer = pp
		f.opts.Progress(p)
	}
}

// shutdown ends every session of the fetch and waits for its goroutines.
func (f *fetch) shutdown() {
	f.mu.Lock()
	conns := make([]*conn, 0, len(f.conns))
	for _, c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	// Goroutines blocked posting events see ctx done.
	f.goroutines.wait()
	// Bad blocks the loop did not get to still strike their senders.
	for {
		select {
		case ev := <-f.events:
			if ev.kind == evSched && ev.what.Kind == sched.BlockBad {
				f.strikeEarly(ev.conn.peer, fmt.Errorf("chunk %d failed its hash", ev.what.Index))
			}
			continue
		default:
		}
		break
	}
	if f.dl != nil {
		f.dl.closeFiles()
	}
}

// hedgeAfter is how long a DAG node request may go unanswered before
// the same block is asked of one more peer as well (a staller must not hold
// a fetch's start); at most maxHedge peers are asked at once.
const (
	hedgeAfter = time.Second
	maxHedge   = 4
	reaskAfter = 2 * time.Second
)

// getBlock returns a DAG node from the local store or, failing that,
// from the sessions, verified and then kept in the store. It asks one peer,
// and one more each hedgeAfter while none has answered; the first block
// that verifies wins. When every session has been asked in vain, it asks
// them again every reaskAfter: they may be fetching the root too, and get
// the block later (peers cut off from every source by a partition do).
func (f *fetch) getBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if b, err := f.sw.blocks.GetBlock(ctx, c); err == nil {
		return b, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	type answer struct {
		from *conn
		data []byte
		err  error
	}
	answers := make(chan answer, maxHedge)
	var askers group
	defer func() {
		cancel() // getNode returns when ctx ends
		askers.wait()
	}()
	asked := map[peer.ID]bool{}
	inflight := 0
	more := true // ask one more peer as soon as there is one
	var hedge, reask <-chan time.Time
	for {
		f.mu.Lock()
		var pick *conn
		if more && inflight < maxHedge {
			for id, cn := range f.conns {
				if !asked[id] && cn.up {
					pick = cn
					break
				}
			}
		}
		ready := f.ready
		f.mu.Unlock()
		if pick == nil && inflight == 0 && len(asked) > 0 && reask == nil {
			reask = time.After(reaskAfter)
		}
		if pick != nil {
			asked[pick.peer] = true
			inflight++
			more = false
			hedge = time.After(hedgeAfter)
			askers.Go(func() {
				data, err := pick.getNode(ctx, c)
				answers <- answer{pick, data, err}
			})
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case a := <-answers:
			inflight--
			if a.err == nil {
				if err := checkNode(c, a.data); err != nil {
					// Here, not in the fetch's loop: GetBlock (inspect,
					// Open, ROOT/path) has no loop to strike the peer.
					a.from.badNode(c, err)
					if errors.Is(err, ErrBadDAG) {
						return nil, err // c names an invalid node: no peer can do better
					}
				} else {
					if err := f.sw.blocks.PutBlock(c, a.data); err != nil {
						f.log.Warn("keeping a DAG node", "cid", c, "err", err)
					}
					f.mu.Lock()
					f.from[c] = a.from.peer
					f.mu.Unlock()
					f.post(event{kind: evNode})
					return a.data, nil
				}
			}
			more = more || inflight == 0
		case <-hedge:
			more = true
		case <-reask:
			reask = nil
			if inflight == 0 {
				clear(asked)
				more = true
			}
		case <-ready: // a new session: asked next if more is set
		}
	}
}

// sessionUp records an open session whose first message was first, and
// wakes node getters.
func (f *fetch) sessionUp(c *conn, first wire.Msg) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		return false
	}
	c.firstHave = first
	f.conns[c.peer] = c
	c.up = true
	close(f.ready)
	f.ready = make(chan struct{})
	return true
}

// current returns the layout and the download once the fetch has them.
func (f *fetch) current() (*Layout, *download) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.layout, f.dl
}
