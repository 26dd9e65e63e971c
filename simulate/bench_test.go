package simulate

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/peer-project/peer/internal/benchrec"
)

// Goals of issue 5: in flash-crowd with 100 peers and capped uploads the
// seeder uploads at most 3× the file; 1000 peers complete in under 5
// minutes and 8 GiB on a 2-core machine.
const (
	goalSeederUpload = 3.0
	goalScaleWall    = 5 * time.Minute
	goalScaleRSS     = 8 << 30
	// defaultScaleMemLimit is the Go memory limit of the scale run, in GiB:
	// below the RSS goal, with room for what the runtime does not count.
	defaultScaleMemLimit = 6.0
)

func benchRun(b *testing.B, sc Scenario) *Report {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rep, err := Run(ctx, sc)
	if rep != nil {
		var out strings.Builder
		rep.WriteText(&out)
		lines := strings.Split(out.String(), "\n")
		var keep []string
		for _, l := range lines { // the summary, not a line per peer
			if f := strings.Fields(l); len(f) > 2 && (f[1] == "fetch" || f[1] == "seed" || f[1] == "free") {
				continue
			}
			keep = append(keep, l)
		}
		b.Log("\n" + strings.Join(keep, "\n"))
	}
	if err != nil {
		b.Fatal(err)
	}
	return rep
}

// BenchmarkFlashCrowd100 measures swarming: 100 peers, every upload capped,
// one seeder. It reports the seeder's upload as a multiple of the file and
// as a ratio to the 3× goal (≤ 1 meets it).
func BenchmarkFlashCrowd100(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sc, _ := Named("flash-crowd", 100, uint64(i+1))
		rep := benchRun(b, sc)
		b.ReportMetric(rep.SeederUpload, "seeder_x_file")
		b.ReportMetric(rep.SeederUpload/goalSeederUpload, "seeder/goal")
		b.ReportMetric(float64(rep.DuplicateBytes)/float64(rep.FileSize*int64(rep.Fetchers)), "dup/fetched")
		b.ReportMetric(rep.Completion.Max, "s_last_done")
		b.Logf("seeder uploaded %.2f× the file against a goal of %.0f×: ratio %.2f", rep.SeederUpload, goalSeederUpload, rep.SeederUpload/goalSeederUpload)
		benchrec.Add(benchrec.Record{Name: "flash crowd, 100 peers, capped uploads: seeder upload", Figure: rep.SeederUpload, Unit: "x file",
			Target: fmt.Sprintf("<= %.0fx", goalSeederUpload), Met: rep.SeederUpload <= goalSeederUpload})
	}
}

// BenchmarkFreeRiders runs free-riders with 40 peers (4 seeders, 18 free
// riders) and a 16 MiB file, and prints how much later the free riders
// finish than the traders: the median completion of each, as a ratio. The
// choker's tit-for-tat is most of what makes it more than 1, and the runs
// are noisy: seeds 1, 2 and 3 gave 1.14×, 1.18× and 1.24×; with every slot
// given first come, first served instead, seeds 1 and 2 gave 0.99× and
// 1.15×.
func BenchmarkFreeRiders(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sc, err := Named("free-riders", 40, uint64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		sc.FileSize = 16 << 20
		rep := benchRun(b, sc)
		ratio := rep.FreeRiderCompletion.P50 / rep.TraderCompletion.P50
		b.ReportMetric(ratio, "riders/traders")
		b.ReportMetric(rep.TraderCompletion.P50, "s_traders_p50")
		b.ReportMetric(rep.FreeRiderCompletion.P50, "s_riders_p50")
		fmt.Printf("--- %s: free riders' median completion %.2f s = %.2fx the traders' %.2f s (target >= 1.1x)\n",
			b.Name(), rep.FreeRiderCompletion.P50, ratio, rep.TraderCompletion.P50)
		benchrec.Add(benchrec.Record{Name: "free riders, 40 peers: median completion against the traders'", Figure: rep.FreeRiderCompletion.P50, Unit: "s",
			Limit: rep.TraderCompletion.P50, LimitName: "s traders' median", Target: ">= 1.1x", Met: ratio >= 1.1})
	}
}

// BenchmarkFlashCrowd100NodeCap is BenchmarkFlashCrowd100 with the cap
// enforced by the nodes' own limiter (node.Config.UploadRate, with its
// upload slots) instead of the simulated uplink.
func BenchmarkFlashCrowd100NodeCap(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sc, _ := Named("flash-crowd", 100, uint64(i+1))
		sc.NodeUploadRate, sc.UploadCap = int64(sc.UploadCap), 0
		rep := benchRun(b, sc)
		b.ReportMetric(rep.SeederUpload, "seeder_x_file")
		b.ReportMetric(rep.SeederUpload/goalSeederUpload, "seeder/goal")
		b.ReportMetric(rep.Completion.Max, "s_last_done")
	}
}

// Goals of the scale run at 1000 peers in virtual time (issue 14): the
// nodes' own provider lookups find a provider, the seeder uploads little,
// and the first chunk comes about as soon as in a swarm a tenth the size.
const (
	goalLookupsFound    = 0.99
	goalFirstChunkVs100 = 3.0
)

// TestFlashCrowdScale is the scale run (make sim): flash-crowd at 1000
// peers (PEER_SIM_PEERS), after the same at 100 (PEER_SIM_BASE) for the
// first-chunk figure it is held against, both on a virtual clock
// (PEER_SIM_CLOCK=wall runs them on the machine's). It prints virtual and
// wall time, the nodes' provider lookups found, the seeder's upload and
// the first chunk's p50 beside their goals, then peak RSS, goroutines and
// where the memory went at its peak (heap in use, stacks).
// PEER_SIM_GOROUTINES=FILE writes where the goroutines are once they pass
// 100 per peer (and again as they grow), and PEER_SIM_MEMPROFILE=FILE a
// heap profile taken near the largest heap in use. Each run gets 20
// minutes of (virtual) time and its lookups a minute each. It runs only
// with PEER_SIM_SCALE=1:
//
//	PEER_SIM_SCALE=1 go test -run '^TestFlashCrowdScale$' -count=1 -v -timeout 40m ./simulate
//
// Two runs at 1000 peers (2 cores): one beside make soak and other
// tests, one on an idle machine. Virtual: fetch 4.90 s and 5.61 s, first
// chunk p50 0.85 s both (100 peers: 0.55 s), seeder 2.38x and 2.75x, the
// nodes' lookups found a provider in 629 and 478 of 999 (mean 42 and 40
// ms: lookups that ended, not timed out); wall 1131 s and 294 s, peak RSS
// 7.2 and 7.1 GiB (stacks 4 GiB of it, 650 000 goroutines). On the wall
// clock the same run had given first chunk p50 26.7 s, seeder 10.1x and
// 452 of 1042 lookups found (mean 29 s): the first two were the machine
// starving, the lookups' misses are the DHT's own: a lookup ended (24–40
// ms) before the seeder's announcement reached the closest peers (36 ms).
// With lookups that run again when they reach no one (3c10648), beside six
// other test runs: 1958 of 1958 found, seeder 2.31x, first chunk p50 0.85
// s (100 peers: 0.55 s), fetch 5.0 s virtual; wall 1090 s, peak RSS 11.1
// GiB (stacks 6.5 GiB, 1.15 million goroutines). Goroutine dumps at 400
// peers (PEER_SIM_GOROUTINES) put that growth in swarm sessions and the
// kad streams their connections open: each lookup that no longer missed
// handed its fetch up to 20 providers, every 2 s while the fetch had few
// useful peers, and the fetch dialled them all (42 sessions a fetcher from
// discovery, against 34 before the retries). With at most 8 new providers
// a round (42f2c1c), at 400 peers: 304 k goroutines and 4.55 GiB peak RSS,
// against 400-417 k and 5.8-6.0 GiB with the retries and 295-365 k and
// 4.4-5.0 GiB before them. At 1000 peers the gain is smaller: 10.28 GiB
// and 1.04 million goroutines (2606 of 2606 lookups found, seeder 2.38x,
// first chunk p50 0.85 s; wall 2087 s beside other test runs), still past
// the 8 GiB goal. Per node, what is left grows with the swarm: 68 sessions
// a fetcher (50 at 400 peers), and kad-dht's streams, one kept open to
// every peer a node ever queried or checked (174 a node, 110 at 400), at
// three goroutines each on mocknet: half of all goroutines. With a DHT
// stream per request, closed once answered (dht/sender.go), and a
// session's verifier running only while blocks wait for it, at 400 peers
// (peer simulate --peers 400, seed 1): peak goroutines 378 k, then 173 k
// with the DHT change, 151 k with both; peak RSS 5.24, 2.85, 2.72 GiB;
// stream ends 430, 112, 119 a host. At 1000 peers beside other helpers'
// test runs (load 14-19): 999/999 completed, 1865 of 1865 lookups found,
// seeder 2.00x, first chunk p50 0.85 s (100 peers: 0.55 s), peak RSS 5.86
// GiB, 355 k goroutines; wall 883 s (0.38 of 2 cores), past its 300 s goal.
func TestFlashCrowdScale(t *testing.T) {
	if os.Getenv("PEER_SIM_SCALE") == "" {
		t.Skip("the scale run takes minutes and gigabytes: make sim, or set PEER_SIM_SCALE=1")
	}
	peers, base := envInt(t, "PEER_SIM_PEERS", 1000), envInt(t, "PEER_SIM_BASE", 100)
	runner := runVirtual
	switch c := os.Getenv("PEER_SIM_CLOCK"); c {
	case "", "virtual":
	case "wall":
		runner = runWall
	default:
		t.Fatalf("PEER_SIM_CLOCK=%q: want virtual or wall", c)
	}
	// The Go runtime's soft memory limit: the collector works harder as
	// the process nears it instead of letting the heap double past what is
	// live. PEER_SIM_MEMLIMIT sets it in GiB; 0 leaves none.
	limit := defaultScaleMemLimit
	if s := os.Getenv("PEER_SIM_MEMLIMIT"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 {
			t.Fatalf("PEER_SIM_MEMLIMIT=%q: want GiB, 0 for none", s)
		}
		limit = v
	}
	if limit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(limit * (1 << 30))))
	}
	scenario := func(n int) Scenario {
		sc, err := Named("flash-crowd", n, 1)
		if err != nil {
			t.Fatal(err)
		}
		sc.Timeout = 20 * time.Minute
		sc.FindTimeout = time.Minute
		return sc
	}
	summary := func(rep *Report) string {
		var out strings.Builder
		rep.WriteText(&out)
		var keep []string
		for _, l := range strings.Split(out.String(), "\n") { // the summary, not a line per peer
			if f := strings.Fields(l); len(f) > 2 && (f[1] == "fetch" || f[1] == "seed" || f[1] == "free") {
				continue
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	ref, err := runner(t, scenario(base))
	if ref == nil {
		t.Fatal(err)
	}
	fmt.Printf("reference run, %d peers:\n%s\n", base, summary(ref))
	if err != nil {
		t.Error(err)
	}

	w := watchMemory(peers, os.Getenv("PEER_SIM_GOROUTINES"), os.Getenv("PEER_SIM_MEMPROFILE"))
	defer w.stop()
	rep, err := runner(t, scenario(peers))
	w.stop()
	if rep == nil {
		t.Fatal(err)
	}
	// rep.PeakRSS is read before the nodes are stopped; stopping a
	// thousand of them takes memory too.
	withStop := peakRSS()
	fmt.Printf("scale run, %d peers:\n%s\n", peers, summary(rep))
	if err != nil {
		t.Error(err)
	}

	found := 0.0
	if rep.NodeLookups.Count > 0 {
		found = float64(rep.NodeLookups.Found) / float64(rep.NodeLookups.Count)
	}
	firstGoal := goalFirstChunkVs100 * ref.FirstChunk.P50
	wall := time.Duration(rep.WallSeconds * float64(time.Second))
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nflash crowd, %d peers (%s clock)\tfigure\tgoal\t\n", peers, rep.Clock)
	fmt.Fprintf(tw, "completed\t%d of %d\tall\t%s\n", rep.Completed, rep.Fetchers, met(rep.Completed == rep.Fetchers))
	fmt.Fprintf(tw, "simulated time (fetch)\t%.1f s (%.1f s)\t\t\n", rep.SimSeconds, rep.FetchSeconds)
	fmt.Fprintf(tw, "wall time (fetch)\t%.1f s (%.1f s)\t<= %.0f s\t%s\n", rep.WallSeconds, rep.FetchWallSeconds, goalScaleWall.Seconds(), met(wall <= goalScaleWall))
	fmt.Fprintf(tw, "provider lookups found\t%d of %d (%.1f%%)\t>= %.0f%%\t%s\n", rep.NodeLookups.Found, rep.NodeLookups.Count, 100*found, 100*goalLookupsFound, met(found >= goalLookupsFound))
	fmt.Fprintf(tw, "seeder upload\t%.2fx the file\t<= %.0fx\t%s\n", rep.SeederUpload, goalSeederUpload, met(rep.SeederUpload <= goalSeederUpload))
	fmt.Fprintf(tw, "first chunk p50\t%.2f s\t<= %.0fx the %d-peer %.2f s = %.2f s\t%s\n", rep.FirstChunk.P50, goalFirstChunkVs100, base, ref.FirstChunk.P50, firstGoal, met(rep.FirstChunk.P50 <= firstGoal))
	fmt.Fprintf(tw, "peak RSS\t%.2f GiB\t<= %d GiB\t%s\n", float64(rep.PeakRSS)/(1<<30), goalScaleRSS>>30, met(rep.PeakRSS <= goalScaleRSS))
	tw.Flush()

	limitText := "none"
	if limit > 0 {
		limitText = fmt.Sprintf("%.1f GiB", limit)
	}
	fmt.Printf("peak RSS %.2f GiB up to the report, %.2f GiB with the shutdown of every node; peak goroutines %d\n",
		float64(rep.PeakRSS)/(1<<30), float64(withStop)/(1<<30), rep.PeakGoroutines)
	fmt.Printf("memory at its peak, shutdown included (sampled each wall second): heap in use %.2f GiB, stacks %.2f GiB, heap obtained from the OS %.2f GiB, %d goroutines; Go memory limit %s, GOGC %s; CPU %.0f s over a wall of %.0f s (%.2f of %d cores), %.0f%% of it the collector's (by the runtime's accounting)\n",
		float64(w.heap)/(1<<30), float64(w.stack)/(1<<30), float64(w.sys)/(1<<30), w.goroutines, limitText, orDefault(os.Getenv("GOGC"), "100"),
		w.cpu.Seconds(), rep.WallSeconds, w.cpu.Seconds()/rep.WallSeconds, runtime.GOMAXPROCS(0), 100*w.gcShare)
}

// memWatch samples the runtime's memory each second while a scale run
// goes, keeping the peaks, and writes profiles near them.
type memWatch struct {
	stopc, done chan struct{}
	// Peaks, readable after stop.
	heap, stack, sys uint64
	goroutines       int
	cpu              time.Duration // process CPU time (user and system) from start to stop
	gcShare          float64       // the collector's share of it, by the runtime's accounting
}

// watchMemory starts a memWatch. A non-empty goFile gets a goroutine dump
// once the goroutines pass 100 per peer and again each time they grow by
// a tenth past the last dump; a non-empty heapFile gets a heap profile
// each time the heap in use grows by a tenth past the last one, so both
// end up near the peak.
func watchMemory(peers int, goFile, heapFile string) *memWatch {
	w := &memWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	cpu0 := benchrec.CPUTime()
	gc0, all0 := gcSeconds()
	write := func(file, profile string, debug int) {
		if out, err := os.Create(file); err == nil {
			pprof.Lookup(profile).WriteTo(out, debug)
			out.Close()
		}
	}
	go func() {
		defer close(w.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var heapDumped uint64
		goDumped := 100 * peers
		for {
			select {
			case <-w.stopc:
				gc, all := gcSeconds()
				w.cpu = benchrec.CPUTime() - cpu0
				if all > all0 {
					w.gcShare = (gc - gc0) / (all - all0)
				}
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			n := runtime.NumGoroutine()
			w.heap, w.stack = max(w.heap, ms.HeapInuse), max(w.stack, ms.StackInuse)
			w.sys, w.goroutines = max(w.sys, ms.HeapSys-ms.HeapReleased), max(w.goroutines, n)
			if goFile != "" && n > goDumped {
				goDumped = n + n/10
				write(goFile, "goroutine", 1)
			}
			if heapFile != "" && ms.HeapInuse > heapDumped {
				heapDumped = ms.HeapInuse + ms.HeapInuse/10
				write(heapFile, "heap", 0)
			}
		}
	}()
	return w
}

func (w *memWatch) stop() {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
}

// gcSeconds returns the runtime's estimates of the CPU time the garbage
// collector has used and of the CPU time used at all (idle excluded).
// The runtime counts GOMAXPROCS times the wall time, not the CPU the
// process was given, so on a busy machine both exceed the process's CPU
// time: only their ratio is meaningful.
func gcSeconds() (gc, busy float64) {
	m := []metrics.Sample{
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/cpu/classes/idle:cpu-seconds"},
	}
	metrics.Read(m)
	for _, s := range m {
		if s.Value.Kind() != metrics.KindFloat64 {
			return 0, 0
		}
	}
	return m[0].Value.Float64(), m[1].Value.Float64() - m[2].Value.Float64()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
