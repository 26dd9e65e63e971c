package sched

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// A tiny discrete-event simulation in virtual time: peers upload at a fixed
// rate, one block at a time in the order they got the requests, across a
// link with a fixed one-way latency; a CANCEL that reaches a peer before it
// starts sending the block removes the request. Our download link is not
// the bottleneck. The scheduler is driven exactly as the swarm's I/O layer
// will drive it, and its invariants are checked as it goes.

type simPeerSpec struct {
	bw      float64       // upload, bytes/s
	lat     time.Duration // one-way latency
	have    []bool        // nil: every chunk (HAVE all)
	bad     bool          // every block it sends fails its hash
	stall   bool          // takes requests, never answers
	stallAt time.Duration // > 0: stops answering then
	leaveAt time.Duration // > 0: disconnects then
	dontAt  time.Duration // > 0: says DONT_HAVE for one requested chunk then
}

type simSpec struct {
	chunks  int
	size    int
	peers   []simPeerSpec
	cfg     Config
	seed    uint64
	tick    time.Duration
	every   int  // check the invariants every this many events (1: always)
	seek    bool // streaming: a priority range that jumps around
	horizon time.Duration
}

type simResult struct {
	finish, ideal    time.Duration
	bytes, dupBytes  int64
	requests, dupReq int64
	timeouts, bans   int64
	events           int
	digest           uint64 // FNV-1a of every action, in order
}

func (r simResult) String() string {
	return fmt.Sprintf("finish %v, ideal %v (×%.3f); %d bytes, %d duplicate (%.2f%%); %d requests, %d duplicate; %d timeouts, %d bans; %d events",
		r.finish.Round(time.Millisecond), r.ideal.Round(time.Millisecond), float64(r.finish)/float64(r.ideal),
		r.bytes, r.dupBytes, 100*float64(r.dupBytes)/float64(max(r.bytes, 1)), r.requests, r.dupReq, r.timeouts, r.bans, r.events)
}

type simEvKind int

const (
	evTick simEvKind = iota
	evReqArrive
	evCancelArrive
	evSendDone
	evBlockArrive
	evLeave
	evDontHave
	evSeek
)

type simEv struct {
	at   time.Duration
	seq  int
	kind simEvKind
	peer int
	i    int64
}

type simQueue []simEv

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(a, b int) bool {
	if q[a].at != q[b].at {
		return q[a].at < q[b].at
	}
	return q[a].seq < q[b].seq
}
func (q simQueue) Swap(a, b int) { q[a], q[b] = q[b], q[a] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEv)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simPeer struct {
	spec    simPeerSpec
	id      PeerID
	dead    bool
	busy    bool
	queue   []int64 // requests received, not started
	told    map[int64]bool
	pending map[int64]bool // requests sent to it and not cancelled (for the DONT_HAVE event)
}

func runSim(t *testing.T, spec simSpec) simResult {
	t.Helper()
	rng := rand.New(rand.NewPCG(spec.seed, 1))
	cfg := spec.cfg
	cfg.Chunks, cfg.ChunkSize = int64(spec.chunks), spec.size
	s, err := New(cfg, nil, rand.New(rand.NewPCG(spec.seed, 2)))
	if err != nil {
		t.Fatal(err)
	}
	var q simQueue
	seq := 0
	push := func(at time.Duration, k simEvKind, p int, i int64) {
		seq++
		heap.Push(&q, simEv{at: at, seq: seq, kind: k, peer: p, i: i})
	}
	peers := make([]*simPeer, len(spec.peers))
	byID := map[PeerID]int{}
	var sumBW float64
	now := time.Duration(0)
	at := func() time.Time { return epoch.Add(now) }
	for k, ps := range spec.peers {
		p := &simPeer{spec: ps, id: PeerID(fmt.Sprintf("p%02d", k)), told: map[int64]bool{}, pending: map[int64]bool{}}
		peers[k] = p
		byID[p.id] = k
		if !ps.bad && !ps.stall {
			sumBW += ps.bw
		}
		s.step(Event{Kind: PeerJoined, Peer: p.id, Time: at()})
		if ps.have == nil {
			if err := s.step(Event{Kind: HaveAll, Peer: p.id, Time: at()}); err != nil {
				t.Fatal(err)
			}
			for i := range int64(spec.chunks) {
				p.told[i] = true
			}
		} else {
			b := newBitfield(int32(spec.chunks))
			for i, h := range ps.have {
				if h {
					b.set(int32(i))
					p.told[int64(i)] = true
				}
			}
			if err := s.step(Event{Kind: HaveBitfield, Peer: p.id, Bits: b.wire(int32(spec.chunks)), Time: at()}); err != nil {
				t.Fatal(err)
			}
		}
		if ps.leaveAt > 0 {
			push(ps.leaveAt, evLeave, k, 0)
		}
		if ps.dontAt > 0 {
			push(ps.dontAt, evDontHave, k, 0)
		}
	}
	push(spec.tick, evTick, 0, 0)
	if spec.seek {
		push(0, evSeek, 0, 0)
	}
	size := int64(spec.size)
	res := simResult{digest: 14695981039346656037}
	res.ideal = time.Duration(float64(size*int64(spec.chunks)) / sumBW * float64(time.Second))
	send := func(k int) {
		p := peers[k]
		if p.busy || p.dead || len(p.queue) == 0 || p.spec.stall || (p.spec.stallAt > 0 && now >= p.spec.stallAt) {
			return
		}
		i := p.queue[0]
		p.queue = p.queue[1:]
		p.busy = true
		push(now+time.Duration(float64(size)/p.spec.bw*float64(time.Second)), evSendDone, k, i)
	}
	// drain carries out the actions and checks them.
	drain := func() {
		got := map[*peer]bool{}
		for _, a := range s.pending() {
			for _, c := range []byte(a.String() + "\n") {
				res.digest = (res.digest ^ uint64(c)) * 1099511628211
			}
			k, ok := byID[a.Peer]
			switch a.Kind {
			case Request:
				p := peers[k]
				switch {
				case !ok || p.dead:
					t.Fatalf("seed %d at %v: request of departed peer: %v", spec.seed, now, a)
				case !p.told[a.Index]:
					t.Fatalf("seed %d at %v: %v: the peer never said it had the chunk", spec.seed, now, a)
				case s.Verified(a.Index):
					t.Fatalf("seed %d at %v: %v: chunk already verified", spec.seed, now, a)
				}
				res.requests++
				p.pending[a.Index] = true
				got[s.peers[a.Peer]] = true
				push(now+p.spec.lat, evReqArrive, k, a.Index)
			case Cancel:
				delete(peers[k].pending, a.Index)
				push(now+peers[k].spec.lat, evCancelArrive, k, a.Index)
			case Ban:
				if !peers[k].spec.bad {
					t.Fatalf("seed %d at %v: honest peer banned: %v", spec.seed, now, a)
				}
				peers[k].dead = true
				res.bans++
			case Done:
				res.finish = now
			}
		}
		for p := range got {
			if len(p.out) > p.effWindow() {
				t.Fatalf("seed %d at %v: %s has %d requests, window %d", spec.seed, now, p.id, len(p.out), p.effWindow())
			}
		}
	}
	drain()
	horizon := spec.horizon
	if horizon == 0 {
		horizon = time.Hour
	}
	for !s.Done() {
		if len(q) == 0 {
			t.Fatalf("seed %d: nothing left to happen at %v, %d of %d verified", spec.seed, now, s.verified, spec.chunks)
		}
		e := heap.Pop(&q).(simEv)
		now = e.at
		if now > horizon {
			st := s.Stats()
			t.Fatalf("seed %d: not done after %v: %+v", spec.seed, horizon, st)
		}
		res.events++
		p := peers[e.peer]
		switch e.kind {
		case evTick:
			s.step(Event{Kind: Tick, Time: at()})
			push(now+spec.tick, evTick, 0, 0)
		case evReqArrive:
			if !p.dead {
				p.queue = append(p.queue, e.i)
				send(e.peer)
			}
		case evCancelArrive:
			for j, i := range p.queue {
				if i == e.i {
					p.queue = append(p.queue[:j], p.queue[j+1:]...)
					break
				}
			}
		case evSendDone:
			p.busy = false
			if !p.dead {
				push(now+p.spec.lat, evBlockArrive, e.peer, e.i)
				send(e.peer)
			}
		case evBlockArrive:
			if p.dead {
				break
			}
			delete(p.pending, e.i)
			if p.spec.bad {
				err = s.step(Event{Kind: BlockBad, Peer: p.id, Index: e.i, Time: at()})
			} else {
				err = s.step(Event{Kind: BlockVerified, Peer: p.id, Index: e.i, Time: at()})
			}
			if err != nil {
				t.Fatal(err)
			}
		case evLeave:
			p.dead = true
			p.queue = nil
			s.step(Event{Kind: PeerLeft, Peer: p.id, Time: at()})
		case evDontHave:
			if p.dead {
				break
			}
			for i := range int64(spec.chunks) {
				if p.pending[i] {
					delete(p.told, i)
					delete(p.pending, i)
					if err := s.step(Event{Kind: DontHave, Peer: p.id, Index: i, Time: at()}); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
		case evSeek:
			from := rng.Int64N(int64(spec.chunks))
			s.step(Event{Kind: Prioritize, Index: from, To: from + 1 + rng.Int64N(16), Time: at()})
			push(now+time.Duration(rng.Int64N(int64(2*time.Second))), evSeek, 0, 0)
		}
		drain()
		if spec.every > 0 && res.events%spec.every == 0 {
			if err := s.check(true); err != nil {
				t.Fatalf("seed %d at %v after event %d: %v", spec.seed, now, e.kind, err)
			}
		}
	}
	if err := s.check(true); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	res.bytes, res.dupBytes = st.BytesReceived, st.DuplicateBytes
	res.dupReq, res.timeouts = st.DupRequests, st.Timeouts
	return res
}

func seeders(n int, bw float64, lat func(k int) time.Duration) []simPeerSpec {
	ps := make([]simPeerSpec, n)
	for k := range ps {
		ps[k] = simPeerSpec{bw: bw, lat: lat(k)}
	}
	return ps
}

// TestSimEqualPeers: eight equal seeders, 1024 chunks of 256 KiB. Duplicate
// bytes must stay under 2% and the finish near the aggregate-bandwidth time.
func TestSimEqualPeers(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		lr := rand.New(rand.NewPCG(seed, 9))
		spec := simSpec{
			chunks: 1024, size: 256 << 10, seed: seed, tick: 100 * time.Millisecond, every: 64,
			peers: seeders(8, 4e6, func(int) time.Duration { return time.Duration(5+lr.IntN(36)) * time.Millisecond }),
		}
		r := runSim(t, spec)
		t.Logf("seed %d: equal peers: %v", seed, r)
		if r.dupBytes*50 > r.bytes {
			t.Errorf("seed %d: duplicate bytes %d > 2%% of %d", seed, r.dupBytes, r.bytes)
		}
		if ratio := float64(r.finish) / float64(r.ideal); ratio > 1.1 {
			t.Errorf("seed %d: finish %v is %.2f× the ideal %v", seed, r.finish, ratio, r.ideal)
		}
	}
}

// TestSimSlowPeer: three seeders and one four times slower. The slow one
// must not become a straggler tail: finish within 1.2× of the ideal time.
// Two mechanisms see to it: windows sized by measured throughput (the slow
// peer holds few requests), and endgame duplicates. With fixed windows of 32
// only the second is left; with EndgameDup 1 neither is, and the figures
// logged for that case show the tail they prevent.
func TestSimSlowPeer(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		for _, c := range []struct {
			name   string
			window int
			dup    int
		}{
			{"adaptive windows", 0, 0},
			{"fixed windows of 32", 32, 0},
			{"fixed windows of 32, no endgame", 32, 1},
		} {
			lr := rand.New(rand.NewPCG(seed, 9))
			ps := seeders(4, 4e6, func(int) time.Duration { return time.Duration(5+lr.IntN(36)) * time.Millisecond })
			ps[seed%4].bw = 1e6
			spec := simSpec{chunks: 1024, size: 256 << 10, seed: seed, tick: 100 * time.Millisecond, every: 64, peers: ps,
				cfg: Config{MinWindow: c.window, MaxWindow: c.window, EndgameDup: c.dup}}
			r := runSim(t, spec)
			t.Logf("seed %d: one peer 4× slower, %s: %v", seed, c.name, r)
			if ratio := float64(r.finish) / float64(r.ideal); ratio > 1.2 && c.dup != 1 {
				t.Errorf("seed %d, %s: finish %v is %.2f× the ideal %v", seed, c.name, r.finish, ratio, r.ideal)
			}
		}
	}
}

// TestSimMixedPeers: eight seeders of 1 to 16 MB/s and 1 to 100 ms, with
// and without endgame, and a peer that stops answering halfway.
func TestSimMixedPeers(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		for _, c := range []struct {
			name  string
			dup   int
			stall bool
		}{{"endgame", 0, false}, {"no endgame", 1, false}, {"endgame, one peer stalls", 0, true}} {
			lr := rand.New(rand.NewPCG(seed, 9))
			ps := seeders(8, 0, func(int) time.Duration { return time.Duration(1+lr.IntN(100)) * time.Millisecond })
			for k := range ps {
				ps[k].bw = float64(1+lr.IntN(16)) * 1e6
			}
			spec := simSpec{chunks: 1024, size: 256 << 10, seed: seed, tick: 100 * time.Millisecond, every: 64, peers: ps,
				cfg: Config{EndgameDup: c.dup, RequestTimeout: time.Second}}
			if c.stall {
				// The fastest peer, halfway through.
				fast := 0
				for k := range ps {
					if ps[k].bw > ps[fast].bw {
						fast = k
					}
				}
				var sum float64
				for _, p := range ps {
					sum += p.bw
				}
				half := time.Duration(float64(spec.chunks*spec.size) / sum / 2 * float64(time.Second))
				ps[fast].stallAt = half
			}
			r := runSim(t, spec)
			t.Logf("seed %d: mixed peers, %s: %v", seed, c.name, r)
			if c.dup == 0 && r.dupBytes*50 > r.bytes {
				t.Errorf("seed %d, %s: duplicate bytes %d > 2%% of %d", seed, c.name, r.dupBytes, r.bytes)
			}
		}
	}
}

// TestSimProperties runs random swarms: sizes, bandwidths 1-16 MB/s,
// latencies 1-100 ms, partial peers, a peer with corrupt blocks, a peer that
// stalls, peers that leave or say DONT_HAVE, streaming seeks. Every step is
// checked (see drain and Scheduler.check); each run must finish. A failure
// prints its seed; rerun with that seed to replay it.
func TestSimProperties(t *testing.T) {
	runs := 40
	if testing.Short() {
		runs = 10
	}
	for seed := uint64(100); seed < uint64(100+runs); seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		chunks := 1 + r.IntN(300)
		n := 1 + r.IntN(8)
		ps := make([]simPeerSpec, n)
		for k := range ps {
			ps[k] = simPeerSpec{bw: float64(1+r.IntN(16)) * 1e6, lat: time.Duration(1+r.IntN(100)) * time.Millisecond}
			if k == 0 {
				continue // one honest seeder stays to the end
			}
			switch r.IntN(8) {
			case 0:
				ps[k].bad = true
			case 1:
				ps[k].stall = true
			case 2:
				ps[k].leaveAt = time.Duration(r.IntN(2000)) * time.Millisecond
			case 3:
				ps[k].dontAt = time.Duration(r.IntN(1000)) * time.Millisecond
			case 4:
				ps[k].stallAt = time.Duration(r.IntN(1000)) * time.Millisecond
			}
			if r.IntN(2) == 0 {
				ps[k].have = make([]bool, chunks)
				for i := range ps[k].have {
					ps[k].have[i] = r.IntN(3) > 0
				}
			}
		}
		spec := simSpec{
			chunks: chunks, size: 16 << 10 << r.IntN(5), seed: seed, peers: ps, every: 1,
			tick: time.Duration(20+r.IntN(200)) * time.Millisecond, seek: r.IntN(4) == 0,
			cfg: Config{
				RequestTimeout: time.Duration(200+r.IntN(2000)) * time.Millisecond,
				MaxStrikes:     1 + r.IntN(3),
				EndgameDup:     1 + r.IntN(3),
				MinWindow:      1 + r.IntN(3),
				MaxWindow:      4 + r.IntN(64),
			},
		}
		res := runSim(t, spec)
		t.Logf("seed %d: %d chunks, %d peers: %v", seed, chunks, n, res)
	}
}
