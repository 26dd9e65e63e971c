package simulate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/swarm"
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

	loopback []host.Host // with Loopback, every host made (under linkMu); closed by Run
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
	defer r.closeLoopback()
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
	if sc.Loopback && clock == "virtual" {
		return nil, fmt.Errorf("simulate: a Loopback scenario runs on real sockets, which a virtual clock cannot wait on: call Run outside a synctest bubble (not RunVirtual)")
	}
	sampler := startSampler(r.mn)
	defer sampler.stop()

	// The file, its root and its DAG's nodes (adversaries serve the real ones).
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
