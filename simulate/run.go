package simulate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/dht"
	"github.com/peer-project/peer/importer"
	"github.com/peer-project/peer/manifest"
	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/swarm/wire"
)

// ErrInvariant is wrapped by the error Run returns when the simulation ran
// but an invariant failed (Report.Problems lists them).
var ErrInvariant = errors.New("simulate: invariant failed")

// simPeer is one honest node across its incarnations (Leave and Join give
// it a new host and node on the same home directory).
type simPeer struct {
	idx    int
	seeder bool
	home   string
	dest   string

	// Owned by the run's main goroutine.
	host   host.Host
	node   *node.Node
	cancel context.CancelFunc // ends the current incarnation's fetch
	fetch  chan struct{}      // closed when that fetch goroutine ends
	gone   chan struct{}      // closed when the last Leave has stopped the node
	ids    []peer.ID          // every identity it had, in order

	mu         sync.Mutex
	up         bool
	done       bool
	doneAt     time.Duration
	firstChunk time.Duration // -1 until a chunk arrives
	attempts   int
	restarts   int
	lastErr    string
	fromPeers  map[peer.ID]int64
	duplicate  int64
	past       node.Metrics // counters of incarnations that ended
}

// runner is one Run.
type runner struct {
	sc     Scenario
	log    *slog.Logger
	rng    *rand.Rand // schedule-free choices (bootstrap peers); main goroutine only
	keys   *rand.ChaCha8
	mn     mocknet.Mocknet
	dir    string
	closed chan struct{} // closed at the end: capped writes stop waiting

	peers    []*simPeer
	advs     []*adversary
	profile  []int // profile index per honest peer, then per adversary
	nextAddr int

	root   cid.Cid
	layout *swarm.Layout
	blocks memBlocks
	sum    [32]byte
	src    string

	start  time.Time
	cut    map[int]bool // the group a Partition cut off, nil when whole
	fetchW sync.WaitGroup
	bg     sync.WaitGroup // nodes that left, stopping
	cuts   *cuts
	cutBg  sync.WaitGroup // connections across a partition, closing

	// Links. Two honest hosts are linked when one first dials the other
	// (through cappedHost), not all N² pairs up front: a thousand peers
	// would hold half a million links, most never used. Adversaries and
	// the probe, which dial through bare mocknet hosts, are linked to
	// everyone up front.
	linkMu sync.Mutex
	linked map[peer.ID]map[peer.ID]bool // both directions
	slotOf map[peer.ID]int              // live honest hosts and adversaries: profile slot
}

// Run runs the scenario and returns its report. It blocks until every
// fetcher has finished or sc.Timeout has passed after the fetches started,
// or ctx is done, and it stops every node and goroutine it started before
// it returns. The error wraps ErrScenario for a bad description,
// ErrInvariant (with the report) when an invariant failed, or says what
// kept the simulation from running. Runs are independent: Run is safe for
// concurrent use, but each run takes cores and memory.
//
// Inside a testing/synctest bubble the run goes on the bubble's virtual
// clock (see the package doc); ctx must then come from inside the bubble
// (or be context.Background()): a channel from outside it in a select
// keeps the clock from moving. RunVirtual hosts a bubble outside tests.
func Run(ctx context.Context, sc Scenario) (*Report, error) {
	if err := sc.fill(); err != nil {
		return nil, err
	}
	r := &runner{
		sc:     sc,
		log:    sc.Logger,
		rng:    rand.New(rand.NewPCG(sc.Seed, 0x5eed)),
		closed: make(chan struct{}),
		cuts:   &cuts{dead: map[peer.ID]bool{}},
		linked: map[peer.ID]map[peer.ID]bool{},
		slotOf: map[peer.ID]int{},
	}
	var kseed [32]byte
	binary.LittleEndian.PutUint64(kseed[:], sc.Seed)
	copy(kseed[8:], "peer-simulate-identities")
	r.keys = rand.NewChaCha8(kseed)
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.dir = sc.Dir
	if r.dir == "" {
		d, err := os.MkdirTemp("", "peer-sim-")
		if err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		defer os.RemoveAll(d)
		r.dir = d
	}
	r.mn = mocknet.New()
	defer r.mn.Close()
	defer r.shutdown()

	rep, err := r.run(ctx)
	if err != nil {
		return nil, err
	}
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("%w: %d problems, first: %s; %s", ErrInvariant, len(rep.Problems), rep.Problems[0], rep.ReplayHint())
	}
	return rep, nil
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	sc := &r.sc
	t0 := time.Now() // the run's clock: virtual in a synctest bubble
	var wall wallClock
	w0 := wall.mono()
	clock := "wall"
	switch {
	case !wall.real():
		clock = "unknown"
	case time.Since(wall.now()).Abs() > time.Hour:
		// A bubble's clock starts at midnight UTC 2000-01-01.
		clock = "virtual"
	}
	sampler := startSampler(r.mn)
	defer sampler.stop()

	// The file, its root and manifest (adversaries serve the real one).
	r.src = filepath.Join(r.dir, "src", "shared.bin")
	if err := r.writeFile(); err != nil {
		return nil, err
	}
	if err := r.importFile(ctx); err != nil {
		return nil, err
	}

	// Identities, profiles, hosts and links.
	total := sc.Peers
	for _, a := range sc.Adversaries {
		total += a.Count
	}
	r.profile = make([]int, total)
	var wsum float64
	for _, p := range sc.Profiles {
		wsum += p.Weight
	}
	for i := range r.profile {
		x := r.rng.Float64() * wsum
		for k, p := range sc.Profiles {
			if x < p.Weight || k == len(sc.Profiles)-1 {
				r.profile[i] = k
				break
			}
			x -= p.Weight
		}
	}
	r.peers = make([]*simPeer, sc.Peers)
	for i := range r.peers {
		p := &simPeer{idx: i, seeder: i < sc.Seeders, firstChunk: -1, fromPeers: map[peer.ID]int64{}}
		p.home = filepath.Join(r.dir, fmt.Sprintf("p%04d", i))
		p.dest = filepath.Join(p.home, "dl", "shared.bin")
		if err := os.MkdirAll(filepath.Dir(p.dest), 0o755); err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		h, err := r.newHost(i)
		if err != nil {
			return nil, err
		}
		p.host = h
		p.ids = append(p.ids, h.ID())
		r.peers[i] = p
	}
	var advHosts []host.Host
	for _, a := range sc.Adversaries {
		for range a.Count {
			h, err := r.newHost(-1)
			if err != nil {
				return nil, err
			}
			advHosts = append(advHosts, h)
		}
	}
	if err := r.linkAll(advHosts); err != nil {
		return nil, err
	}
	setup := time.Since(t0)

	// Nodes: node 0 first, then batches that bootstrap from earlier ones.
	if err := r.startNodes(ctx); err != nil {
		return nil, err
	}
	for _, p := range r.peers[:sc.Seeders] {
		if _, err := p.node.Share(ctx, r.src, node.ShareOptions{}); err != nil {
			return nil, fmt.Errorf("simulate: seeder %d: share: %w", p.idx, err)
		}
		p.done = true
	}
	started := time.Since(t0)

	// Adversaries, each introduced to a random set of fetchers.
	hints := make([][]peer.AddrInfo, sc.Peers)
	k := 0
	for _, spec := range sc.Adversaries {
		for range spec.Count {
			h := advHosts[k]
			a := newAdversary(spec.Kind, h, r.root, r.layout, r.blocks, sc.Seed+uint64(k)+1)
			r.advs = append(r.advs, a)
			reach := spec.Reach
			if reach == 0 {
				reach = max(1, (sc.Peers-sc.Seeders)/2)
			}
			if spec.Kind == Flood {
				// A flooder targets the seeders and random fetchers.
				var targets []peer.AddrInfo
				for _, p := range r.peers[:sc.Seeders] {
					targets = append(targets, p.node.AddrInfo())
				}
				for _, i := range r.pick(sc.Seeders, sc.Peers, reach) {
					targets = append(targets, r.peers[i].node.AddrInfo())
				}
				a.flood(targets, 4)
			} else {
				ai := peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
				for _, i := range r.pick(sc.Seeders, sc.Peers, reach) {
					hints[i] = append(hints[i], ai)
					if err := h.Connect(ctx, r.peers[i].node.AddrInfo()); err != nil {
						return nil, fmt.Errorf("simulate: adversary %d: connect: %w", k, err)
					}
				}
			}
			k++
		}
	}

	// The fetch phase: every fetcher at once, by the ticket of seeder 0.
	r.start = time.Now()
	wStart := wall.mono()
	fctx, cancel := context.WithTimeout(ctx, sc.Timeout)
	defer cancel()
	ticket := r.peers[0].node.AddrInfo()
	for _, p := range r.peers[sc.Seeders:] {
		r.startFetch(fctx, p, ticket, hints[p.idx])
	}
	var applied []Event
	for _, e := range sc.Events {
		t := time.NewTimer(time.Until(r.start.Add(e.At)))
		select {
		case <-t.C:
		case <-fctx.Done():
			t.Stop()
		}
		if fctx.Err() != nil {
			break
		}
		at := time.Since(r.start)
		if err := r.apply(fctx, e, ticket, hints); err != nil {
			return nil, err
		}
		e.At, e.Took = at, time.Since(r.start)-at
		applied = append(applied, e)
	}
	allDone := make(chan struct{})
	go func() { r.fetchW.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-fctx.Done():
		<-allDone // every fetch ends with fctx
	}
	fetchPhase := time.Since(r.start)
	fetchWall := wall.mono() - wStart
	if ctx.Err() != nil {
		return nil, fmt.Errorf("simulate: %w", ctx.Err())
	}

	rep := r.report(applied)
	rep.SetupSeconds = setup.Seconds()
	rep.StartSeconds = (started - setup).Seconds()
	rep.FetchSeconds = fetchPhase.Seconds()
	rep.FetchWallSeconds = fetchWall.Seconds()
	rep.Clock = clock
	r.probeLookups(ctx, rep)
	r.check(rep)
	rep.Outcome = rep.outcome()
	rep.PeakGoroutines, rep.PeakConns, rep.PeakStreams = sampler.stop()
	rep.PeakRSS = peakRSS()
	rep.SimSeconds = time.Since(t0).Seconds()
	rep.WallSeconds = (wall.mono() - w0).Seconds()
	return rep, nil
}

// pick returns n distinct random indices in [from, to), sorted.
func (r *runner) pick(from, to, n int) []int {
	idx := r.rng.Perm(to - from)
	if n > len(idx) {
		n = len(idx)
	}
	out := idx[:n]
	for i := range out {
		out[i] += from
	}
	slices.Sort(out)
	return out
}

func (r *runner) writeFile() error {
	if err := os.MkdirAll(filepath.Dir(r.src), 0o755); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	f, err := os.Create(r.src)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	g := rand.New(rand.NewPCG(r.sc.Seed, 0xf11e))
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := r.sc.FileSize; left > 0; {
		n := min(left, int64(len(buf)))
		for i := int64(0); i < n; i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], g.Uint64())
		}
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return fmt.Errorf("simulate: %w", err)
		}
		left -= n
	}
	copy(r.sum[:], h.Sum(nil))
	if err := f.Close(); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}

// blockSink keeps the manifest blocks of an import in memory.
type blockSink struct{ m memBlocks }

func (s blockSink) PutBlock(b manifest.Block) error        { s.m[b.CID] = b.Data; return nil }
func (s blockSink) AddChunks(string, []importer.Loc) error { return nil }
func (s blockSink) FileDone(importer.File) error           { return nil }

func (r *runner) importFile(ctx context.Context) error {
	r.blocks = memBlocks{}
	res, err := importer.Import(ctx, r.src, importer.Options{Params: chunker.FixedParams(r.sc.ChunkSize)}, blockSink{r.blocks})
	if err != nil {
		return fmt.Errorf("simulate: import: %w", err)
	}
	r.root = res.Root
	if r.layout, err = swarm.BuildLayout(ctx, r.blocks, r.root); err != nil {
		return fmt.Errorf("simulate: layout: %w", err)
	}
	return nil
}

// newHost makes a mocknet host with an identity from the seed. idx ≥ 0 is
// an honest peer, whose uploads are capped.
func (r *runner) newHost(idx int) (host.Host, error) {
	k, _, err := crypto.GenerateEd25519Key(r.keys)
	if err != nil {
		return nil, fmt.Errorf("simulate: key: %w", err)
	}
	n := r.nextAddr
	r.nextAddr++
	a, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", (n>>16)&0xff, (n>>8)&0xff, n&0xff))
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	h, err := r.mn.AddPeer(k, a)
	if err != nil {
		return nil, fmt.Errorf("simulate: mocknet host: %w", err)
	}
	if idx < 0 {
		return h, nil
	}
	r.linkMu.Lock()
	r.slotOf[h.ID()] = idx
	r.linkMu.Unlock()
	me := h.ID()
	ch := &cappedHost{Host: h, tally: newTally(), cuts: r.cuts, dialing: func(p peer.ID) { r.ensureLink(me, p) }}
	if r.sc.UploadCap > 0 {
		ch.bucket = newBucket(r.sc.UploadCap, r.closed)
	}
	return ch, nil
}

// linkOptions are the options of the link between the hosts in profile
// slots i and j (honest peers first, then adversaries in order).
func (r *runner) linkOptions(i, j int) mocknet.LinkOptions {
	a, b := r.sc.Profiles[r.profile[i]], r.sc.Profiles[r.profile[j]]
	o := mocknet.LinkOptions{Latency: a.Latency + b.Latency}
	switch {
	case a.Bandwidth == 0:
		o.Bandwidth = b.Bandwidth
	case b.Bandwidth == 0:
		o.Bandwidth = a.Bandwidth
	default:
		o.Bandwidth = min(a.Bandwidth, b.Bandwidth)
	}
	return o
}

// slot is a host with its profile index.
type slot struct {
	id  peer.ID
	idx int
}

// slots lists every live host: honest peers that are up, then adversaries.
func (r *runner) slots(adv []host.Host) []slot {
	var out []slot
	for _, p := range r.peers {
		if p.host != nil {
			out = append(out, slot{p.host.ID(), p.idx})
		}
	}
	for i, h := range adv {
		out = append(out, slot{h.ID(), r.sc.Peers + i})
	}
	return out
}

func (r *runner) advHosts() []host.Host {
	out := make([]host.Host, len(r.advs))
	for i, a := range r.advs {
		out[i] = a.host
	}
	return out
}

// link links two hosts unless they are linked already.
func (r *runner) link(a, b slot) error {
	r.linkMu.Lock()
	defer r.linkMu.Unlock()
	return r.linkLocked(a, b)
}

// linkLocked is link with r.linkMu held.
func (r *runner) linkLocked(a, b slot) error {
	if r.linked[a.id][b.id] {
		return nil
	}
	l, err := r.mn.LinkPeers(a.id, b.id)
	if err != nil {
		return fmt.Errorf("simulate: link: %w", err)
	}
	if o := r.linkOptions(a.idx, b.idx); o != (mocknet.LinkOptions{}) {
		l.SetOptions(o)
	}
	for _, e := range [][2]peer.ID{{a.id, b.id}, {b.id, a.id}} {
		m := r.linked[e[0]]
		if m == nil {
			m = map[peer.ID]bool{}
			r.linked[e[0]] = m
		}
		m[e[1]] = true
	}
	return nil
}

// unlinkLocked removes the link between a and b, if any. r.linkMu is held.
func (r *runner) unlinkLocked(a, b peer.ID) {
	if !r.linked[a][b] {
		return
	}
	r.mn.UnlinkPeers(a, b)
	delete(r.linked[a], b)
	delete(r.linked[b], a)
}

// ensureLink links honest host a to host b as a dials it, unless a fault
// stands between them (a partition, a peer that left), b is no live host,
// or the run is shutting down: then the dial fails as it would over a cut
// link. It is safe for
// concurrent use.
func (r *runner) ensureLink(a, b peer.ID) {
	select {
	case <-r.closed:
		return // shutting down: no new connections to tear down
	default:
	}
	r.linkMu.Lock()
	defer r.linkMu.Unlock()
	if a == b || r.linked[a][b] || r.cuts.blocked(a, b) {
		return
	}
	ia, oka := r.slotOf[a]
	ib, okb := r.slotOf[b]
	if !oka || !okb {
		return
	}
	r.linkLocked(slot{a, ia}, slot{b, ib}) // mocknet fails only for unknown hosts, checked above
}

// linkAll links every adversary to every other host, and records the
// adversaries' slots; honest hosts link as they dial (ensureLink).
func (r *runner) linkAll(adv []host.Host) error {
	s := r.slots(adv)
	r.linkMu.Lock()
	defer r.linkMu.Unlock()
	for _, a := range s {
		r.slotOf[a.id] = a.idx
	}
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[i].idx < r.sc.Peers && s[j].idx < r.sc.Peers {
				continue
			}
			if err := r.linkLocked(s[i], s[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) nodeConfig(p *simPeer, boot []*simPeer) node.Config {
	cfg := node.DefaultConfig()
	cfg.Home = p.home
	cfg.Host = p.host
	cfg.NoMDNS = true
	cfg.NoSync = true
	cfg.NoDHT = r.sc.NoDHT
	// Every simulated node is a DHT server (no AutoNAT on mocknet), and none
	// refreshes its routing table on a timer: the one self-lookup at start
	// fills it, and N nodes refreshing cost O(N²) lookups.
	cfg.DHTMode = dht.ModeServer
	cfg.DHTNoAutoRefresh = true
	cfg.Chunking = chunker.FixedParams(r.sc.ChunkSize)
	cfg.Seed = r.sc.Seed*1_000_003 + uint64(p.idx)*7919 + uint64(len(p.ids))
	cfg.FindTimeout = r.sc.FindTimeout
	cfg.RequestTimeout = r.sc.RequestTimeout
	cfg.UploadRate = r.sc.NodeUploadRate
	cfg.Logger = r.log.With("peer", p.idx)
	for _, b := range boot {
		for _, a := range b.node.Addrs() {
			cfg.Bootstrap = append(cfg.Bootstrap, a.String())
		}
	}
	return cfg
}

// freeRider reports whether node i is one of the scenario's free riders.
func (r *runner) freeRider(i int) bool { return i >= r.sc.Peers-r.sc.FreeRiders }

// freeRide makes p's node, just started, take sessions of no one if it is a
// free rider: peers see it refuse the exchange protocol and ask others.
func (r *runner) freeRide(p *simPeer) {
	if r.freeRider(p.idx) {
		p.host.RemoveStreamHandler(wire.ProtocolID)
	}
}

// startNodes starts node 0, then the others in batches, each bootstrapping
// from Degree random nodes of the earlier batches (one self-lookup each,
// not a full refresh).
func (r *runner) startNodes(ctx context.Context) error {
	sc := &r.sc
	start := func(p *simPeer, boot []*simPeer) error {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		n, err := node.New(cctx, r.nodeConfig(p, boot))
		if err != nil {
			return fmt.Errorf("simulate: peer %d: %w", p.idx, err)
		}
		r.freeRide(p)
		p.node = n
		p.up = true
		return nil
	}
	if err := start(r.peers[0], nil); err != nil {
		return err
	}
	batch := max(8, 4*runtime.GOMAXPROCS(0))
	for lo := 1; lo < sc.Peers; lo += batch {
		hi := min(sc.Peers, lo+batch)
		boots := make([][]*simPeer, hi-lo)
		for i := range boots {
			for _, b := range r.pick(0, lo, sc.Degree) {
				boots[i] = append(boots[i], r.peers[b])
			}
		}
		errs := make([]error, hi-lo)
		var wg sync.WaitGroup
		for i := lo; i < hi; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i-lo] = start(r.peers[i], boots[i-lo])
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// startFetch runs p's fetch in the background until it completes, its
// incarnation ends or ctx is done. A failed attempt is retried after a
// pause, as a user would, resuming what was verified.
func (r *runner) startFetch(ctx context.Context, p *simPeer, ticket peer.AddrInfo, hints []peer.AddrInfo) {
	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	p.fetch = make(chan struct{})
	n, done := p.node, p.fetch
	r.fetchW.Add(1)
	go func() {
		defer r.fetchW.Done()
		defer close(done)
		target := node.Target{Root: r.root, Hint: &ticket}
		for ctx.Err() == nil {
			res, err := n.Fetch(ctx, target, p.dest, node.FetchOptions{
				Peers: hints,
				Progress: func(pr node.Progress) {
					if pr.Chunks > pr.Resumed {
						p.mu.Lock()
						if p.firstChunk < 0 {
							p.firstChunk = time.Since(r.start)
						}
						p.mu.Unlock()
					}
				},
			})
			p.mu.Lock()
			p.attempts++
			if err == nil {
				p.done = true
				p.doneAt = time.Since(r.start)
				for id, b := range res.Progress.PerPeer {
					p.fromPeers[id] += b
				}
				p.duplicate += res.Progress.Duplicate
				p.mu.Unlock()
				return
			}
			if ctx.Err() == nil {
				p.lastErr = err.Error()
			}
			p.mu.Unlock()
			t := time.NewTimer(500 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}()
}

// apply carries out one event. It runs on the main goroutine.
func (r *runner) apply(ctx context.Context, e Event, ticket peer.AddrInfo, hints [][]peer.AddrInfo) error {
	switch e.Kind {
	case Leave:
		for _, i := range e.Peers {
			r.leave(r.peers[i])
		}
	case Join:
		for _, i := range e.Peers {
			if err := r.join(ctx, r.peers[i], ticket, hints[i]); err != nil {
				return err
			}
		}
	case Partition:
		r.cut = map[int]bool{}
		for _, i := range e.Peers {
			r.cut[i] = true
		}
		// Cut every link first (no new dial crosses), then the
		// connections that stood.
		all := r.slots(r.advHosts())
		side := map[peer.ID]bool{}
		for _, a := range all {
			side[a.id] = r.side(a.idx)
		}
		r.linkMu.Lock()
		r.cuts.partition(side) // under linkMu: no dial links across from now on
		for _, a := range all {
			for b := range r.linked[a.id] {
				if cut, known := side[b]; known && side[a.id] != cut {
					r.unlinkLocked(a.id, b)
				}
			}
		}
		r.linkMu.Unlock()
		var pairs [][2]peer.ID
		for _, a := range all {
			if !side[a.id] {
				continue
			}
			for _, q := range r.mn.Net(a.id).Peers() {
				if cut, known := side[q]; known && !cut {
					pairs = append(pairs, [2]peer.ID{a.id, q})
				}
			}
		}
		r.cutBg.Add(1)
		go func() {
			defer r.cutBg.Done()
			r.disconnect(pairs)
		}()
	case Heal:
		if r.cut == nil {
			return nil
		}
		r.cutBg.Wait() // no late disconnect may close a new connection
		// Honest hosts link again as they dial; adversaries (bare hosts)
		// are linked back now.
		for _, a := range r.slots(r.advHosts()) {
			for _, b := range r.slots(r.advHosts()) {
				if a.idx < b.idx && b.idx >= r.sc.Peers && r.side(a.idx) != r.side(b.idx) {
					if err := r.link(a, b); err != nil {
						return err
					}
				}
			}
		}
		r.cut = nil
		r.cuts.partition(nil)
	}
	return nil
}

// disconnect closes the connections between each pair, many at once:
// mocknet resets a connection's streams one by one, each waiting for its
// delivery goroutine, which takes up to a second per connection.
func (r *runner) disconnect(pairs [][2]peer.ID) {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, pr := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.mn.DisconnectPeers(pr[0], pr[1])
		}()
	}
	wg.Wait()
}

// side says which side of a partition slot i is on (adversaries stay with
// the majority).
func (r *runner) side(i int) bool { return r.cut != nil && r.cut[i] }

func (r *runner) leave(p *simPeer) {
	if p.node == nil {
		return
	}
	p.mu.Lock()
	p.up = false
	p.mu.Unlock()
	// The peer vanishes from the network at once, as a crash or a pulled
	// cable would: no one can dial it any more. Its host and node are
	// stopped in the background (a mocknet host takes a while to close),
	// and a Join of the same peer waits for that.
	id := p.host.ID()
	r.linkMu.Lock()
	r.cuts.kill(id) // under linkMu: no dial links to it from now on
	for q := range r.linked[id] {
		r.unlinkLocked(id, q)
	}
	delete(r.linked, id)
	delete(r.slotOf, id)
	r.linkMu.Unlock()
	h, n, cancel, fetch := p.host, p.node, p.cancel, p.fetch
	p.node, p.host, p.cancel, p.fetch = nil, nil, nil, nil
	gone := make(chan struct{})
	p.gone = gone
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		if cancel != nil {
			cancel()
		}
		// Its exchange streams already fail (cuts); stop the node
		// first, which a Join of the same home waits for, and then let
		// mocknet take its time over the connections.
		m := n.Metrics()
		n.Close()
		if fetch != nil {
			<-fetch
		}
		p.mu.Lock()
		p.past = addMetrics(p.past, m)
		p.mu.Unlock()
		close(gone)
		var pairs [][2]peer.ID
		for _, q := range h.Network().Peers() {
			pairs = append(pairs, [2]peer.ID{h.ID(), q})
		}
		r.disconnect(pairs)
		h.Close()
	}()
}

func (r *runner) join(ctx context.Context, p *simPeer, ticket peer.AddrInfo, hints []peer.AddrInfo) error {
	if p.node != nil {
		return nil
	}
	if p.gone != nil {
		select {
		case <-p.gone:
		case <-ctx.Done():
			return nil
		}
	}
	h, err := r.newHost(p.idx)
	if err != nil {
		return err
	}
	p.host = h
	p.ids = append(p.ids, h.ID())
	me := slot{h.ID(), p.idx}
	if r.cut != nil {
		r.cuts.place(me.id, r.side(p.idx)) // the new identity is on its peer's side
	}
	for i, a := range r.advHosts() { // honest hosts link as they dial
		if s := (slot{a.ID(), r.sc.Peers + i}); r.side(s.idx) == r.side(p.idx) {
			if err := r.link(me, s); err != nil {
				return err
			}
		}
	}
	var live []*simPeer
	for _, q := range r.peers {
		if q != p && q.node != nil && r.side(q.idx) == r.side(p.idx) {
			live = append(live, q)
		}
	}
	var boot []*simPeer
	for _, i := range r.pick(0, len(live), r.sc.Degree) {
		boot = append(boot, live[i])
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := node.New(cctx, r.nodeConfig(p, boot))
	if err != nil {
		return fmt.Errorf("simulate: peer %d rejoins: %w", p.idx, err)
	}
	r.freeRide(p)
	p.node = n
	p.mu.Lock()
	p.up = true
	p.restarts++
	done := p.done
	p.mu.Unlock()
	if !done {
		r.startFetch(ctx, p, ticket, hints)
	}
	return nil
}

// shutdown stops every node and adversary. The mocknet closes the hosts.
func (r *runner) shutdown() {
	close(r.closed)
	for _, p := range r.peers {
		if p != nil && p.cancel != nil {
			p.cancel()
		}
	}
	var wg sync.WaitGroup
	for _, p := range r.peers {
		if p != nil && p.node != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.node.Close() }()
		}
	}
	for _, a := range r.advs {
		wg.Add(1)
		go func() { defer wg.Done(); a.close() }()
	}
	wg.Wait()
	r.fetchW.Wait()
	r.bg.Wait()
	r.cutBg.Wait()
}

// addMetrics adds b's counters to a's (gauges are left out).
func addMetrics(a, b node.Metrics) node.Metrics {
	a.Swarm.BytesUp += b.Swarm.BytesUp
	a.Swarm.BytesDown += b.Swarm.BytesDown
	a.Swarm.ChunksServed += b.Swarm.ChunksServed
	a.Swarm.ChunksVerified += b.Swarm.ChunksVerified
	a.Swarm.ChunksRejected += b.Swarm.ChunksRejected
	a.Swarm.DuplicateBytes += b.Swarm.DuplicateBytes
	a.Swarm.Bans += b.Swarm.Bans
	a.Swarm.UnrequestedBlocks += b.Swarm.UnrequestedBlocks
	a.Swarm.ProtocolViolations += b.Swarm.ProtocolViolations
	a.DHTLookups += b.DHTLookups
	a.DHTLookupsFound += b.DHTLookupsFound
	h := &a.DHTLookupSeconds
	if len(h.Bounds) == 0 {
		h.Bounds = append([]float64(nil), b.DHTLookupSeconds.Bounds...)
		h.Cumulative = make([]uint64, len(h.Bounds))
	}
	if slices.Equal(h.Bounds, b.DHTLookupSeconds.Bounds) {
		for i, c := range b.DHTLookupSeconds.Cumulative {
			h.Cumulative[i] += c
		}
		h.Count += b.DHTLookupSeconds.Count
		h.Sum += b.DHTLookupSeconds.Sum
	}
	return a
}

// probeLookups times DHT lookups of the root from a separate client node
// that bootstraps from random live nodes.
func (r *runner) probeLookups(ctx context.Context, rep *Report) {
	if r.sc.NoDHT || r.sc.LookupProbes < 0 {
		return
	}
	h, err := r.newHost(-1)
	if err != nil {
		return
	}
	defer h.Close()
	var live []slot
	var boot []peer.AddrInfo
	for _, p := range r.peers {
		if p.node != nil {
			live = append(live, slot{p.host.ID(), p.idx})
		}
	}
	if len(live) == 0 {
		return
	}
	me := slot{h.ID(), 0}
	for _, s := range live {
		if err := r.link(me, s); err != nil {
			return
		}
	}
	for _, i := range r.pick(0, len(live), r.sc.Degree) {
		boot = append(boot, r.peers[live[i].idx].node.AddrInfo())
	}
	d, err := dht.New(h, dht.Config{Mode: dht.ModeClient, Bootstrap: boot, NoAutoRefresh: true, Logger: r.log})
	if err != nil {
		return
	}
	defer d.Close()
	bctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = d.Bootstrap(bctx)
	cancel()
	if err != nil {
		rep.Lookup.Error = err.Error()
		return
	}
	var times []float64
	for range r.sc.LookupProbes {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t := time.Now()
		_, ok := <-d.FindProviders(lctx, r.root, 1)
		el := time.Since(t)
		cancel()
		rep.Lookup.Probes++
		if ok {
			rep.Lookup.Found++
			times = append(times, el.Seconds())
		}
	}
	rep.Lookup.Seconds = distOf(times)
}

// report gathers what the run measured.
func (r *runner) report(applied []Event) *Report {
	sc := &r.sc
	rep := &Report{
		Scenario: sc.Name, Peers: sc.Peers, Seeders: sc.Seeders, Seed: sc.Seed,
		FileSize: sc.FileSize, ChunkSize: sc.ChunkSize, UploadCap: sc.UploadCap, NodeUploadRate: sc.NodeUploadRate,
		Events: applied, Schedule: sc.Events, Replay: sc.Replay(),
	}
	for _, a := range sc.Adversaries {
		rep.AdversaryCount += a.Count
	}
	var done, first, riders, others []float64
	var seederUp int64
	var all node.Metrics
	for _, p := range r.peers {
		p.mu.Lock()
		m := p.past
		p.mu.Unlock()
		if p.node != nil {
			m = addMetrics(m, p.node.Metrics())
		}
		st := m.Swarm
		all = addMetrics(all, m)
		p.mu.Lock()
		pr := PeerReport{
			Index: p.idx, Seeder: p.seeder, FreeRider: r.freeRider(p.idx), Up: p.up, Completed: p.done, Restarts: p.restarts,
			Attempts: p.attempts, BytesUp: st.BytesUp, BytesDown: st.BytesDown,
			Duplicate: st.DuplicateBytes, Rejected: st.ChunksRejected, LastError: p.lastErr,
		}
		if !p.seeder {
			pr.Seconds = p.doneAt.Seconds()
			if p.firstChunk >= 0 {
				pr.FirstChunk = p.firstChunk.Seconds()
				first = append(first, pr.FirstChunk)
			}
		}
		for _, id := range p.ids {
			pr.IDs = append(pr.IDs, id.String())
		}
		p.mu.Unlock()
		if p.node != nil {
			pr.Bans = len(p.node.Bans())
		}
		if p.seeder {
			seederUp += st.BytesUp
			rep.MaxSeederUpload = max(rep.MaxSeederUpload, float64(st.BytesUp)/float64(sc.FileSize))
		} else {
			rep.Fetchers++
			if p.done {
				rep.Completed++
				done = append(done, pr.Seconds)
				if pr.FreeRider {
					riders = append(riders, pr.Seconds)
				} else {
					others = append(others, pr.Seconds)
				}
			}
		}
		rep.DuplicateBytes += st.DuplicateBytes
		rep.Bans += st.Bans
		rep.BytesUp += st.BytesUp
		rep.PeersOut = append(rep.PeersOut, pr)
	}
	rep.SeederUpload = float64(seederUp) / float64(sc.FileSize)
	if rep.Fetchers > 0 {
		rep.SuccessRate = float64(rep.Completed) / float64(rep.Fetchers)
	}
	rep.Completion = distOf(done)
	if sc.FreeRiders > 0 {
		rep.FreeRiders = sc.FreeRiders
		rep.FreeRiderCompletion, rep.TraderCompletion = distOf(riders), distOf(others)
	}
	h := all.DHTLookupSeconds
	rep.NodeLookups = NodeLookups{Count: all.DHTLookups, Found: all.DHTLookupsFound}
	if h.Count > 0 {
		rep.NodeLookups.Mean = h.Sum / float64(h.Count)
		rep.NodeLookups.P50 = histQuantile(h, 0.5)
		rep.NodeLookups.P90 = histQuantile(h, 0.9)
	}
	rep.FirstChunk = distOf(first)
	sort.Float64s(done)
	for i, s := range done {
		rep.Curve = append(rep.Curve, Point{Seconds: s, Completed: i + 1})
	}
	return rep
}

// histQuantile returns the upper bound of the bucket that holds quantile q
// (+Inf past the last bound).
func histQuantile(h node.Histogram, q float64) float64 {
	want := uint64(math.Ceil(q * float64(h.Count)))
	for i, c := range h.Cumulative {
		if c >= want {
			return h.Bounds[i]
		}
	}
	return math.Inf(1)
}

// check verifies every completed copy and the invariants.
func (r *runner) check(rep *Report) {
	sc := &r.sc
	byID := map[peer.ID]*simPeer{}
	for _, p := range r.peers {
		if p.host != nil {
			byID[p.host.ID()] = p
		}
	}
	// A source is a live node with a complete copy; a peer can reach one
	// unless a partition still stands between them.
	reach := map[bool]bool{}
	for _, p := range r.peers {
		if p.node != nil && (p.seeder || p.done) {
			reach[r.side(p.idx)] = true
		}
	}
	for i := range rep.PeersOut {
		pr := &rep.PeersOut[i]
		p := r.peers[pr.Index]
		if p.seeder {
			continue
		}
		if p.done {
			sum, err := fileSum(p.dest)
			switch {
			case err != nil:
				rep.Problems = append(rep.Problems, fmt.Sprintf("peer %d: completed, but its copy can't be read: %v", p.idx, err))
			case sum != r.sum:
				rep.Corrupt++
				rep.Problems = append(rep.Problems, fmt.Sprintf("peer %d: completed copy has sha256 %x, want %x", p.idx, sum, r.sum))
			default:
				rep.Intact++
				pr.Intact = true
			}
			continue
		}
		if _, err := os.Stat(p.dest); err == nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("peer %d: did not complete, yet a file stands at its destination", p.idx))
		}
		if p.node != nil && reach[r.side(p.idx)] {
			rep.Problems = append(rep.Problems, fmt.Sprintf("peer %d: could reach a source but did not complete in %s (%d attempts; last error: %s)", p.idx, sc.Timeout, p.attempts, orNone(p.lastErr)))
		}
	}
	// Honest nodes never send a bad byte or break the protocol: a ban of
	// one by another is a false positive.
	for _, p := range r.peers {
		if p.node == nil {
			continue
		}
		for _, b := range p.node.Bans() {
			if q := byID[b]; q != nil {
				h := fmt.Sprintf("peer %d banned honest peer %d", p.idx, q.idx)
				rep.HonestBans = append(rep.HonestBans, h)
				rep.Problems = append(rep.Problems, h)
			}
		}
	}
	for k, a := range r.advs {
		ar := AdversaryReport{Kind: a.kind, ID: a.host.ID().String()}
		a.mu.Lock()
		for _, n := range a.wants {
			ar.Wants += n
		}
		for _, n := range a.sent {
			ar.BlocksSent += n
		}
		ar.Sessions = a.streams
		for _, n := range a.cutoff {
			ar.CutOff += n
		}
		a.mu.Unlock()
		ar.SentTo = len(a.sentTo())
		// Who received its data is counted where it lands: the BLOCK
		// messages each honest node read whole from it.
		for _, p := range r.peers {
			if p.host == nil {
				continue
			}
			n, last := p.host.(*cappedHost).tally.blocks(a.host.ID())
			if n == 0 {
				continue
			}
			ar.ReadBy++
			if slices.Contains(p.node.Bans(), a.host.ID()) {
				ar.BannedBy++
				continue
			}
			// A block read as the peer completed may never have reached
			// its fetch loop (the fetch ended first): not a miss.
			p.mu.Lock()
			done, doneAt := p.done, r.start.Add(p.doneAt)
			p.mu.Unlock()
			if done && last.After(doneAt.Add(-sc.RequestTimeout)) {
				ar.Late++
			} else if a.kind == Corrupt {
				rep.Problems = append(rep.Problems, fmt.Sprintf("adversary %d (%s): peer %d read %d corrupt blocks from it, the last %.2fs into the fetch, and did not ban it", k, a.kind, p.idx, n, last.Sub(r.start).Seconds()))
			}
		}
		rep.Adversaries = append(rep.Adversaries, ar)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func fileSum(path string) ([32]byte, error) {
	var out [32]byte
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return out, err
	}
	copy(out[:], h.Sum(nil))
	return out, nil
}

// peakRSS returns the process's peak resident set size in bytes (VmHWM), or
// 0 where /proc is not there.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			var kb int64
			fmt.Sscan(string(rest), &kb)
			return kb << 10
		}
	}
	return 0
}

// sampler records the most goroutines seen, every 100 ms, and the most
// connections and streams over the mocknet's hosts, every second.
type sampler struct {
	stopc chan struct{}
	done  chan struct{}
	peak  [3]int // goroutines, connections, streams; read after done
}

func startSampler(mn mocknet.Mocknet) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.peak[0] = runtime.NumGoroutine()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for k := 0; ; k++ {
			select {
			case <-t.C:
			case <-s.stopc:
				s.peak[0] = max(s.peak[0], runtime.NumGoroutine())
				return
			}
			s.peak[0] = max(s.peak[0], runtime.NumGoroutine())
			if k%10 != 0 {
				continue
			}
			conns, streams := 0, 0
			for _, n := range mn.Nets() {
				for _, c := range n.Conns() {
					conns++
					streams += len(c.GetStreams())
				}
			}
			s.peak[1], s.peak[2] = max(s.peak[1], conns), max(s.peak[2], streams)
		}
	}()
	return s
}

// stop ends the sampler and returns the peaks of goroutines, connections
// and streams; later calls return the same.
func (s *sampler) stop() (goroutines, conns, streams int) {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
	return s.peak[0], s.peak[1], s.peak[2]
}
