package simulate

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// soakResult is one run of the soak.
type soakResult struct {
	Scenario   string    `json:"scenario"`
	Seed       uint64    `json:"seed"`
	OK         bool      `json:"ok"`
	Problem    string    `json:"problem,omitempty"` // the first, or the error
	Problems   int       `json:"problems,omitempty"`
	Completion []float64 `json:"completion_seconds,omitempty"` // virtual, of every fetcher that completed
	P50        float64   `json:"p50"`
	P99        float64   `json:"p99"`
	Sim        float64   `json:"sim_seconds"`
	Wall       float64   `json:"wall_seconds"`
	Replay     string    `json:"replay"`
}

// soak runs every scenario in names at peers for each seed, one run at a
// time, each in a synctest bubble, and returns the results in order. Each
// run's line goes to progress as it ends.
func soak(t *testing.T, names []string, peers int, seeds []uint64, tweak func(*Scenario), progress func(soakResult)) []soakResult {
	t.Helper()
	var out []soakResult
	for _, name := range names {
		for _, seed := range seeds {
			sc, err := Named(name, peers, seed)
			if err != nil {
				t.Fatal(err)
			}
			if tweak != nil {
				tweak(&sc)
			}
			res := soakResult{Scenario: name, Seed: seed, Replay: sc.Replay()}
			rep, err := runVirtual(t, sc)
			switch {
			case rep == nil:
				res.Problem = err.Error()
			default:
				res.OK = err == nil
				res.Problems = len(rep.Problems)
				if len(rep.Problems) > 0 {
					res.Problem = rep.Problems[0]
				} else if err != nil {
					res.Problem = err.Error()
				}
				for _, p := range rep.Curve {
					res.Completion = append(res.Completion, p.Seconds)
				}
				res.P50, res.P99 = rep.Completion.P50, rep.Completion.P99
				res.Sim, res.Wall = rep.SimSeconds, rep.WallSeconds
			}
			if progress != nil {
				progress(res)
			}
			out = append(out, res)
		}
	}
	return out
}

// soakTable writes one row per scenario: seeds passed, the failed seeds,
// and the completion p50 and p99 in virtual time over every fetcher of
// every seed, then the wall time the scenario took.
func soakTable(w *os.File, names []string, res []soakResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tpassed\tcompletion p50 (virtual)\tp99 (virtual)\tslowest seed p99\twall\tfailed seeds")
	for _, name := range names {
		var all []float64
		var failed []string
		passed, runs, worst, wall := 0, 0, 0.0, 0.0
		for _, r := range res {
			if r.Scenario != name {
				continue
			}
			runs++
			wall += r.Wall
			all = append(all, r.Completion...)
			worst = max(worst, r.P99)
			if r.OK {
				passed++
			} else {
				failed = append(failed, strconv.FormatUint(r.Seed, 10))
			}
		}
		d := distOf(all)
		f := strings.Join(failed, " ")
		if f == "" {
			f = "-"
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%.2fs\t%.2fs\t%.2fs\t%.0fs\t%s\n", name, passed, runs, d.P50, d.P99, worst, wall, f)
	}
	tw.Flush()
}

// TestSoak is make soak: every scenario at PEER_SOAK_PEERS peers (40) for
// PEER_SOAK_SEEDS seeds (20, seeds 1…N), each on the virtual clock, one at
// a time. It prints a line per run and a table at the end; every run must
// pass. PEER_SOAK_SCENARIOS (comma-separated) picks scenarios and
// PEER_SOAK_JSON=FILE writes every run's figures. It runs only with
// PEER_SOAK=1; the Makefile's target starts two busy loops beside it, so
// that the machine is as loaded as a busy CI runner, and stops them.
func TestSoak(t *testing.T) {
	if os.Getenv("PEER_SOAK") == "" {
		t.Skip("the soak runs 140 simulations: make soak, or set PEER_SOAK=1")
	}
	peers, nseeds := envInt(t, "PEER_SOAK_PEERS", 40), envInt(t, "PEER_SOAK_SEEDS", 20)
	names := Names()
	if s := os.Getenv("PEER_SOAK_SCENARIOS"); s != "" {
		names = strings.Split(s, ",")
	}
	var seeds []uint64
	for i := 1; i <= nseeds; i++ {
		seeds = append(seeds, uint64(i))
	}
	start := time.Now()
	res := soak(t, names, peers, seeds, nil, func(r soakResult) {
		status := "ok  "
		if !r.OK {
			status = "FAIL"
		}
		fmt.Printf("%s %-12s seed %2d: completion p50 %6.2fs p99 %6.2fs, simulated %6.2fs in %5.1fs wall  %s\n",
			status, r.Scenario, r.Seed, r.P50, r.P99, r.Sim, r.Wall, r.Problem)
	})
	fmt.Printf("\nsoak: %d scenarios x %d seeds at %d peers, each on a virtual clock, in %s of wall time\n",
		len(names), nseeds, peers, time.Since(start).Round(time.Second))
	soakTable(os.Stdout, names, res)
	if f := os.Getenv("PEER_SOAK_JSON"); f != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, r := range res {
		if !r.OK {
			t.Errorf("%s seed %d failed (%d problems): %s; replay with: %s", r.Scenario, r.Seed, r.Problems, r.Problem, r.Replay)
		}
	}
}

// TestSoakSlice is the slice of the soak that CI runs: one more seed of
// every scenario at the soak's size, on the virtual clock, beside the seed
// at 30 peers of each scenario's own test. (Under the race detector the
// file is smaller, as in the other scenario tests; two seeds each took 243
// s of wall time there on a loaded 2-core machine, one takes about half.)
func TestSoakSlice(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 7 simulations")
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := soak(t, []string{name}, 40, []uint64{101}, func(sc *Scenario) {
				if raceEnabled {
					sc.FileSize, sc.ChunkSize = 1<<20, 64<<10
				}
			}, nil)
			for _, r := range res {
				if !r.OK {
					t.Errorf("%s seed %d failed (%d problems): %s; replay with: %s", r.Scenario, r.Seed, r.Problems, r.Problem, r.Replay)
				}
			}
		})
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive whole number", name, s)
	}
	return n
}
