package simulate

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/dht"
	"github.com/peer-project/peer/node"
)

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
		Events: applied, Schedule: sc.Events, Replay: sc.Replay(), Root: r.root.String(),
	}
	seederIDs := map[peer.ID]bool{}
	for _, p := range r.peers[:sc.Seeders] {
		for _, id := range p.ids {
			seederIDs[id] = true
		}
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
		for id, n := range p.fromPeers {
			if seederIDs[id] {
				pr.FromSeeders += n
			}
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
