package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/node"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// testPeers is the size of the scenarios CI runs.
const testPeers = 30

// run runs a named scenario, logs its report when the test is verbose or
// fails (the caller's own checks included), and fails the test with the
// replay command when an invariant fails.
func run(t *testing.T, name string, peers int, seed uint64, tweak func(*Scenario)) *Report {
	t.Helper()
	return runOn(t, runVirtual, name, peers, seed, tweak)
}

// runOn is run on the clock that runner gives.
func runOn(t *testing.T, runner func(*testing.T, Scenario) (*Report, error), name string, peers int, seed uint64, tweak func(*Scenario)) *Report {
	t.Helper()
	sc, err := Named(name, peers, seed)
	if err != nil {
		t.Fatal(err)
	}
	if raceEnabled {
		// Under the race detector every byte costs several times more:
		// a smaller file, in as many chunks.
		sc.FileSize, sc.ChunkSize = 1<<20, 64<<10
	}
	if tweak != nil {
		tweak(&sc)
	}
	rep, err := runner(t, sc)
	if rep != nil {
		logReport := func() {
			var b strings.Builder
			rep.WriteText(&b)
			t.Log("\n" + b.String())
		}
		if testing.Verbose() || err != nil {
			logReport()
		} else {
			t.Cleanup(func() {
				if t.Failed() {
					logReport()
				}
			})
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rep
}

// runVirtual runs sc inside a testing/synctest bubble: on a clock of its
// own that moves only when every goroutine of the run waits, so that what
// the run measures does not depend on how busy the machine is. It must not
// be called from a bubble.
func runVirtual(t *testing.T, sc Scenario) (rep *Report, err error) {
	t.Helper()
	bubble.Test(t, func(*testing.T) {
		// Virtual minutes: the test binary's -timeout bounds the wall time.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		rep, err = Run(ctx, sc)
	})
	if rep != nil && rep.Clock != "virtual" {
		t.Fatalf("a run inside a bubble reports clock %q, want virtual", rep.Clock)
	}
	return rep, err
}

// runWall runs sc on the machine's clock.
func runWall(t *testing.T, sc Scenario) (*Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	return Run(ctx, sc)
}

func TestFlashCrowd(t *testing.T) {
	t.Parallel()
	rep := run(t, "flash-crowd", testPeers, 1, nil)
	if rep.Completed != rep.Fetchers || rep.Intact != rep.Completed || rep.Corrupt != 0 {
		t.Fatalf("completed %d of %d, %d intact, %d corrupt", rep.Completed, rep.Fetchers, rep.Intact, rep.Corrupt)
	}
	// Peers traded: together they uploaded more than the seeder did.
	var fromPeers int64
	for _, p := range rep.PeersOut {
		if !p.Seeder {
			fromPeers += p.BytesUp
		}
	}
	if fromPeers == 0 {
		t.Fatal("no fetcher uploaded anything: no swarming")
	}
	t.Logf("seeder uploaded %.2f× the file; fetchers uploaded %.1f MiB", rep.SeederUpload, float64(fromPeers)/(1<<20))
}

func TestChurn(t *testing.T) {
	t.Parallel()
	rep := run(t, "churn", testPeers, 2, nil)
	if len(rep.Events) != len(rep.Schedule) {
		t.Fatalf("applied %d of %d events", len(rep.Events), len(rep.Schedule))
	}
	// On the virtual clock every fault lands when the schedule says, a
	// Leave at the instant of a Join too.
	for i, e := range rep.Events {
		if s := rep.Schedule[i]; e.At != s.At || e.Kind != s.Kind || !slices.Equal(e.Peers, s.Peers) {
			t.Errorf("event %d applied as %v (at %v), scheduled as %v (at %v)", i, e, e.At, s, s.At)
		}
	}
	restarted := 0
	for _, p := range rep.PeersOut {
		if p.Restarts > 0 {
			restarted++
			if !p.Completed || !p.Up || len(p.IDs) != p.Restarts+1 {
				t.Errorf("peer %d: restarted %d times, %d identities, up %v, completed %v", p.Index, p.Restarts, len(p.IDs), p.Up, p.Completed)
			}
		}
	}
	if restarted == 0 {
		t.Fatal("no peer left and came back")
	}
}

func TestSeederLoss(t *testing.T) {
	t.Parallel()
	rep := run(t, "seeder-loss", testPeers, 3, nil)
	dead := 0
	for _, p := range rep.PeersOut {
		if p.Seeder && !p.Up {
			dead++
		}
	}
	if dead == 0 || dead >= rep.Seeders {
		t.Fatalf("%d of %d seeders died; want some but not all", dead, rep.Seeders)
	}
	if rep.Completed != rep.Fetchers {
		t.Fatalf("completed %d of %d", rep.Completed, rep.Fetchers)
	}
}

// TestPartitionHeals: the side cut off from the seeder completes after the
// heal. (Before a fetch counted as sources only the peers with a chunk it
// lacks, this seed stranded 14 of the cut-off fetchers for good on the
// virtual clock: "could reach a source but did not complete in 2m0s".)
func TestPartitionHeals(t *testing.T) {
	t.Parallel()
	rep := run(t, "partition", testPeers, 4, nil)
	if len(rep.Events) != 2 || rep.Events[0].Kind != Partition || rep.Events[1].Kind != Heal {
		t.Fatalf("events %v", rep.Events)
	}
	cut, healed := rep.Events[0], rep.Events[1].At
	// The stranded side has no source: none of it can complete before
	// the heal, as long as the seeder's capped upload cannot have given it
	// a whole copy before the cut (a loaded machine can apply the cut
	// late), and every one of it completes after.
	burst := max(64<<10, rep.UploadCap/10) // the uplink bucket's (caphost.go)
	sealed := rep.UploadCap > 0 && rep.UploadCap*cut.At.Seconds()+burst < float64(rep.FileSize)
	if !sealed {
		t.Logf("the cut came at %.2fs, when the seeder could have sent a whole copy: not checking that the stranded side waits for the heal", cut.At.Seconds())
	}
	for _, i := range cut.Peers {
		p := rep.PeersOut[i]
		if !p.Completed {
			t.Errorf("stranded peer %d did not complete", i)
		} else if sealed && p.Seconds < healed.Seconds() {
			t.Errorf("stranded peer %d completed at %.2fs, before the heal at %.2fs", i, p.Seconds, healed.Seconds())
		}
	}
}

func TestSlowLinks(t *testing.T) {
	t.Parallel()
	rep := run(t, "slow-links", testPeers, 5, nil)
	if rep.Completed != rep.Fetchers {
		t.Fatalf("completed %d of %d", rep.Completed, rep.Fetchers)
	}
}

// TestFreeRiders: fetchers that take no sessions still get the file (the
// turns given to the longest waiting reach them), and upload nothing. That
// they finish later than the traders is measured by BenchmarkFreeRiders,
// not asserted here: with the small file CI moves under the race detector,
// the gap is within the noise.
func TestFreeRiders(t *testing.T) {
	t.Parallel()
	rep := run(t, "free-riders", testPeers, 8, nil)
	if rep.Completed != rep.Fetchers || rep.Intact != rep.Completed {
		t.Fatalf("completed %d of %d, %d intact", rep.Completed, rep.Fetchers, rep.Intact)
	}
	if rep.FreeRiders == 0 || rep.FreeRiderCompletion.N != rep.FreeRiders || rep.TraderCompletion.N != rep.Fetchers-rep.FreeRiders {
		t.Fatalf("%d free riders; completion counted for %d of them and %d traders, of %d fetchers",
			rep.FreeRiders, rep.FreeRiderCompletion.N, rep.TraderCompletion.N, rep.Fetchers)
	}
	riders := 0
	for _, p := range rep.PeersOut {
		if !p.FreeRider {
			continue
		}
		riders++
		if p.BytesUp != 0 {
			t.Errorf("free rider %d uploaded %d bytes", p.Index, p.BytesUp)
		}
	}
	if riders != rep.FreeRiders {
		t.Errorf("%d peers marked free riders, want %d", riders, rep.FreeRiders)
	}
}

func TestAdversarial(t *testing.T) {
	t.Parallel()
	rep := run(t, "adversarial", testPeers+10, 6, nil)
	if rep.Completed != rep.Fetchers || rep.Corrupt != 0 {
		t.Fatalf("completed %d of %d, %d corrupt", rep.Completed, rep.Fetchers, rep.Corrupt)
	}
	met := map[AdversaryKind]int{}
	for _, a := range rep.Adversaries {
		switch a.Kind {
		case Corrupt:
			met[a.Kind] += a.ReadBy
			// Run already failed if one that received its data did not
			// ban it; check the count agrees.
			if a.BannedBy+a.Late != a.ReadBy {
				t.Errorf("corrupter %s: read by %d, banned by %d, %d late", a.ID, a.ReadBy, a.BannedBy, a.Late)
			}
		case Flood:
			met[a.Kind] += a.CutOff
		default:
			met[a.Kind] += a.Wants
		}
	}
	for _, k := range adversaryKinds {
		if met[k] == 0 {
			t.Errorf("no honest peer met a %s adversary: the test proves nothing about it", k)
		}
	}
}

func TestSameSeedSameSchedule(t *testing.T) {
	for _, name := range Names() {
		a, err := Named(name, 40, 11)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Named(name, 40, 11)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two scenarios from seed 11 differ:\n%+v\n%+v", name, a, b)
		}
	}
	for _, name := range []string{"churn", "seeder-loss", "partition"} {
		a, _ := Named(name, 40, 11)
		b, _ := Named(name, 40, 12)
		if reflect.DeepEqual(a.Events, b.Events) {
			t.Errorf("%s: seeds 11 and 12 give the same schedule %v", name, a.Events)
		}
	}
	// Identities and the fault schedule of a run come from the seed too.
	tiny := func(seed uint64) *Report {
		sc, _ := Named("churn", 6, seed)
		sc.FileSize = 512 << 10
		sc.ChunkSize = 64 << 10
		rep, err := runVirtual(t, sc)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	r1, r2 := tiny(21), tiny(21)
	if !reflect.DeepEqual(r1.Schedule, r2.Schedule) {
		t.Fatalf("schedules differ: %v vs %v", r1.Schedule, r2.Schedule)
	}
	for i := range r1.PeersOut {
		if !slices.Equal(r1.PeersOut[i].IDs, r2.PeersOut[i].IDs) {
			t.Fatalf("peer %d: identities %v then %v", i, r1.PeersOut[i].IDs, r2.PeersOut[i].IDs)
		}
	}
	if !reflect.DeepEqual(r1.Outcome, r2.Outcome) {
		t.Fatalf("seed 21 gave two outcomes:\n%+v\n%+v", r1.Outcome, r2.Outcome)
	}
	if len(r1.Events) != len(r1.Schedule) {
		t.Fatalf("applied %d of %d events", len(r1.Events), len(r1.Schedule))
	}
	// On the virtual clock every fault lands exactly when the schedule
	// says, however busy the machine is.
	for i, e := range r1.Events {
		if s := r1.Schedule[i]; e.Kind != s.Kind || !slices.Equal(e.Peers, s.Peers) || e.At != s.At {
			t.Fatalf("event %d applied as %v (at %v), scheduled as %v (at %v)", i, e, e.At, s, s.At)
		}
	}
}

func TestReportFormats(t *testing.T) {
	sc, _ := Named("flash-crowd", 5, 9)
	sc.FileSize = 1 << 20
	sc.ChunkSize = 64 << 10
	sc.Events = []Event{{At: 50 * time.Millisecond, Kind: Leave, Peers: []int{4}}}
	rep, err := runVirtual(t, sc)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario flash-crowd", "completed", "seeders     uploaded", "every invariant held", "leave [4]"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Completed != rep.Completed || back.Seed != 9 || len(back.PeersOut) != 5 || back.Replay != rep.Replay {
		t.Fatalf("JSON round trip: %+v", back)
	}
	var svg bytes.Buffer
	if err := WriteSVG(&svg, rep, rep); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	polylines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 2 {
		t.Fatalf("%d curves, want 2", polylines)
	}
	if strings.Contains(svg.String(), "http://") && strings.Count(svg.String(), "http://") != 1 {
		t.Fatal("SVG refers to something besides its namespace")
	}
}

func TestReplayCommand(t *testing.T) {
	sc, _ := Named("adversarial", 40, 77)
	if got, want := sc.Replay(), "peer simulate --scenario adversarial --peers 40 --seed 77"; got != want {
		t.Fatalf("replay %q, want %q", got, want)
	}
	sc.FileSize = 1 << 20
	if got := sc.Replay(); !strings.HasSuffix(got, "--size 1048576") {
		t.Fatalf("replay %q does not carry the file size", got)
	}
	// A failed invariant's error names the seed and the command.
	rep := &Report{Seed: 77, Replay: sc.Replay(), Problems: []string{"x"}}
	if h := rep.ReplayHint(); !strings.Contains(h, "seed 77") || !strings.Contains(h, sc.Replay()) {
		t.Fatalf("hint %q", h)
	}
}

func TestBadScenarios(t *testing.T) {
	if _, err := Named("nope", 10, 1); !errors.Is(err, ErrScenario) {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := Named("churn", 1, 1); !errors.Is(err, ErrScenario) {
		t.Fatalf("one peer: %v", err)
	}
	if _, err := Named("adversarial", 6, 1); !errors.Is(err, ErrScenario) {
		t.Fatalf("adversarial with 2 honest peers: %v", err)
	}
	// Every named scenario is valid at the smallest size it accepts.
	for _, name := range Names() {
		for peers := 4; peers <= 8; peers++ {
			sc, err := Named(name, peers, 1)
			if err != nil {
				continue
			}
			if err := sc.fill(); err != nil {
				t.Errorf("%s with %d peers: %v", name, peers, err)
			}
		}
	}
	for _, sc := range []Scenario{
		{Peers: 1},
		{Peers: 3, Seeders: 3},
		{Peers: 3, FileSize: -1},
		{Peers: 3, ChunkSize: 1},
		{Peers: 3, Adversaries: []Adversaries{{Kind: "evil", Count: 1}}},
		{Peers: 3, Events: []Event{{At: 2, Kind: Leave, Peers: []int{1}}, {At: 1, Kind: Join, Peers: []int{1}}}},
		{Peers: 3, Events: []Event{{Kind: Leave, Peers: []int{7}}}},
		{Peers: 3, Events: []Event{{Kind: "melt"}}},
		{Peers: 3, Profiles: []Profile{{Weight: 0}}},
	} {
		if _, err := Run(context.Background(), sc); !errors.Is(err, ErrScenario) {
			t.Errorf("%+v: %v, want ErrScenario", sc, err)
		}
	}
}

// TestStallersDoNotDelayStart: peers that answer HELLO with HAVE_ALL and
// then never answer WANT_NODE must not hold up the start of the fetches that
// ask them for the manifest (a fetch asks one more peer after a second of
// silence; it used to wait 30 s on the first).
func TestStallersDoNotDelayStart(t *testing.T) {
	rep := run(t, "adversarial", 40, 6, func(sc *Scenario) {
		sc.Adversaries = []Adversaries{{Kind: Stall, Count: 2}}
	})
	// The bug this guards against held starts 30 s. On the virtual clock
	// a busy machine adds nothing: with two stallers a fetch waits at most
	// about a second on each (p90 1.05 s, max 2.05 s at seed 6).
	if rep.FirstChunk.P90 > 5 {
		t.Fatalf("first chunk p90 %.1fs, max %.1fs: stallers hold fetches up for as long as a manifest request waits on one peer", rep.FirstChunk.P90, rep.FirstChunk.Max)
	}
}

// TestSameSeedSameOutcome runs a scenario with adversaries twice with the
// same seed: the two reports' outcomes (who completed, intact copies,
// identities, faults, invariants) must be equal.
// The measured rest (times, bytes per peer) may differ: see Outcome for
// why no seed reaches it.
func TestSameSeedSameOutcome(t *testing.T) {
	once := func() *Report {
		sc, err := Named("adversarial", 12, 7)
		if err != nil {
			t.Fatal(err)
		}
		sc.FileSize, sc.ChunkSize = 512<<10, 64<<10
		rep, err := runVirtual(t, sc)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	a, b := once(), once()
	if a.Outcome.Completed == 0 || len(a.Outcome.PeersOut) != a.Peers {
		t.Fatalf("an empty outcome: %+v", a.Outcome)
	}
	if !reflect.DeepEqual(a.Outcome, b.Outcome) {
		ja, _ := json.MarshalIndent(a.Outcome, "", " ")
		jb, _ := json.MarshalIndent(b.Outcome, "", " ")
		t.Fatalf("seed 7 gave two outcomes:\n%s\n%s", ja, jb)
	}
	if a.Outcome.Digest() != b.Outcome.Digest() {
		t.Fatal("equal outcomes, different digests")
	}
}

// TestLoopback runs the demo's scenario: nodes on real TCP hosts on
// 127.0.0.1, on the machine's clock. Every fetcher completes with an
// intact copy, what came from the seeder is part of what it fetched, and
// every chunk came from the seeder at least once.
// A loopback scenario refuses faults, and a virtual clock.
func TestLoopback(t *testing.T) {
	t.Parallel()
	sc := Demo(4, 3<<20, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clock != "wall" || rep.Completed != 3 || rep.Intact != 3 || rep.Root == "" {
		t.Fatalf("clock %s, %d completed, %d intact, root %q", rep.Clock, rep.Completed, rep.Intact, rep.Root)
	}
	// A fetcher may get nothing from the seeder: a seed sends each chunk
	// about once and lets the fetchers trade the rest (swarm/spread.go).
	var fromSeeder int64
	for _, p := range rep.PeersOut[1:] {
		if p.FromSeeders < 0 || p.FromSeeders > p.BytesDown {
			t.Errorf("peer %d: %d bytes from the seeder of %d fetched", p.Index, p.FromSeeders, p.BytesDown)
		}
		fromSeeder += p.FromSeeders
	}
	if fromSeeder < sc.FileSize {
		t.Errorf("the fetchers got %d bytes from the seeder in all, less than the file (%d)", fromSeeder, sc.FileSize)
	}

	bad := Demo(4, 1<<20, 1)
	bad.Events = []Event{{At: time.Second, Kind: Leave, Peers: []int{1}}}
	if _, err := Run(ctx, bad); !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a loopback scenario with a fault: %v", err)
	}
	bubble.Test(t, func(t *testing.T) {
		if _, err := Run(context.Background(), Demo(4, 1<<20, 1)); err == nil || !strings.Contains(err.Error(), "virtual clock cannot wait") {
			t.Fatalf("a loopback scenario in a bubble: %v", err)
		}
	})
}

// TestAddMetricsSumsEveryCounter: every counter of the swarm's Stats is
// summed, so a counter added there cannot be left out of a simulation's
// totals; the gauges (sessions open now) are not.
func TestAddMetricsSumsEveryCounter(t *testing.T) {
	var one node.Metrics
	v := reflect.ValueOf(&one.Swarm).Elem()
	for i := range v.NumField() {
		v.Field(i).SetInt(1)
	}
	sum := reflect.ValueOf(addMetrics(one, one).Swarm)
	gauges := map[string]bool{"ServeSessions": true, "FetchSessions": true}
	for i := range sum.NumField() {
		name := sum.Type().Field(i).Name
		want := int64(2)
		if gauges[name] {
			want = 1
		}
		if got := sum.Field(i).Int(); got != want {
			t.Errorf("Swarm.%s summed to %d, want %d", name, got, want)
		}
	}
}
