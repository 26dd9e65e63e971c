package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestSimulateVirtualClock: `peer simulate` runs its scenario on a virtual
// clock. Its JSON report says so and gives the wall time beside it; the
// faults land exactly when the schedule says (on the wall clock they land
// late by however long the machine took to get there), and two runs of
// one seed agree on every figure the seed fixes.
func TestSimulateVirtualClock(t *testing.T) {
	args := []string{"simulate", "--scenario", "churn", "--peers", "6", "--seed", "3", "--size", "512KiB", "--json"}
	type event struct {
		At    int64 `json:"at_ns"`
		Kind  string
		Peers []int
	}
	type report struct {
		Clock       string  `json:"clock"`
		SimSeconds  float64 `json:"sim_seconds"`
		WallSeconds float64 `json:"wall_seconds"`
		Completed   int     `json:"completed"`
		Fetchers    int     `json:"fetchers"`
		Bans        int64   `json:"bans"`
		Schedule    []event `json:"schedule"`
		Events      []event `json:"events"`
		Peers       []struct {
			IDs       []string `json:"ids"`
			Completed bool     `json:"completed"`
		} `json:"peers_detail"`
	}
	var reps []report
	for range 2 {
		out := ok(t, args...)
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("stdout is not one JSON report: %v\n%s", err, out)
		}
		if r.Clock != "virtual" || r.SimSeconds <= 0 || r.WallSeconds <= 0 {
			t.Fatalf("clock %q, %.3fs simulated, %.3fs wall: want a virtual clock and both times", r.Clock, r.SimSeconds, r.WallSeconds)
		}
		if len(r.Events) != len(r.Schedule) || len(r.Events) == 0 {
			t.Fatalf("applied %d of %d events", len(r.Events), len(r.Schedule))
		}
		for i, e := range r.Events {
			if s := r.Schedule[i]; e.At != s.At || e.Kind != s.Kind || !slices.Equal(e.Peers, s.Peers) {
				t.Errorf("event %d applied as %+v, scheduled as %+v", i, e, s)
			}
		}
		if r.Completed != r.Fetchers {
			t.Errorf("%d of %d fetchers completed", r.Completed, r.Fetchers)
		}
		reps = append(reps, r)
	}
	a, b := reps[0], reps[1]
	if a.Completed != b.Completed || a.Bans != b.Bans || len(a.Peers) != len(b.Peers) {
		t.Fatalf("same seed, different outcome: %d completed and %d bans, then %d and %d", a.Completed, a.Bans, b.Completed, b.Bans)
	}
	for i := range a.Peers {
		if !slices.Equal(a.Peers[i].IDs, b.Peers[i].IDs) || a.Peers[i].Completed != b.Peers[i].Completed {
			t.Errorf("peer %d: %+v, then %+v", i, a.Peers[i], b.Peers[i])
		}
	}
	// The text report names its clock.
	if out := ok(t, args[:len(args)-1]...); !strings.Contains(out, "virtual clock:") {
		t.Fatalf("text report does not name the virtual clock:\n%s", out)
	}
}
