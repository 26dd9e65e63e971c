package simulate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Outcome is the part of a Report that the scenario and its seed decide:
// the same Scenario gives the same Outcome on every run, on the virtual
// clock and on the wall clock, however busy the machine is.
//
// The rest of a Report (times, bytes per peer, completion order, duplicate
// bytes, lookups, peaks, and which peers ban an adversary: a fetcher that
// completes before it asks a corrupt peer for a chunk never bans it) is
// measured, and differs a little from run to run
// of the same seed even on the virtual clock: the Go runtime picks among
// the goroutines that can run at the same virtual instant, and among the
// ready cases of a select, at random (runtime/select.go's pollorder,
// the scheduler's run queues), and orders map iteration at random; no seed
// reaches those, and libp2p, mocknet and kad-dht rely on all three. Which
// fetcher's request reaches a seeder's upload budget first then decides
// who trades with whom. Measured at 40 peers, seed 5, twice each: every
// scenario's Outcome was the same, and completion times and bytes per peer
// differed in every scenario (with GOMAXPROCS=1 too); adversarial at 12
// peers, seed 7, 16 runs: 2 or 3 peers banned the corrupt adversary. The
// invariants (no honest peer banned, every corrupt block read by a peer
// that completed later got its sender banned) hold on every run: Problems
// counts their failures.
type Outcome struct {
	Scenario    string        `json:"scenario,omitempty"`
	Peers       int           `json:"peers"`
	Seeders     int           `json:"seeders"`
	Adversaries int           `json:"adversaries"`
	Seed        uint64        `json:"seed"`
	FileSize    int64         `json:"file_size"`
	ChunkSize   int           `json:"chunk_size"`
	Root        string        `json:"root"`
	Schedule    []Event       `json:"schedule,omitempty"` // as planned
	Applied     []Event       `json:"applied,omitempty"`  // when each was carried out (Took left out)
	Fetchers    int           `json:"fetchers"`
	Completed   int           `json:"completed"`
	Intact      int           `json:"intact"`
	Corrupt     int           `json:"corrupt"`
	PeersOut    []PeerOutcome `json:"peers_detail"`
	HonestBans  []string      `json:"honest_bans,omitempty"`
	Problems    int           `json:"problems"`
}

// PeerOutcome is what the seed decides about one honest peer.
type PeerOutcome struct {
	Index     int      `json:"index"`
	IDs       []string `json:"ids"`
	Seeder    bool     `json:"seeder,omitempty"`
	FreeRider bool     `json:"free_rider,omitempty"`
	Up        bool     `json:"up"`
	Completed bool     `json:"completed"`
	Intact    bool     `json:"intact,omitempty"`
}

// outcome extracts r's Outcome.
func (r *Report) outcome() Outcome {
	o := Outcome{
		Scenario: r.Scenario, Peers: r.Peers, Seeders: r.Seeders, Adversaries: r.AdversaryCount, Seed: r.Seed,
		FileSize: r.FileSize, ChunkSize: r.ChunkSize, Root: r.Root, Schedule: r.Schedule,
		Fetchers: r.Fetchers, Completed: r.Completed, Intact: r.Intact, Corrupt: r.Corrupt,
		HonestBans: r.HonestBans, Problems: len(r.Problems),
	}
	for _, e := range r.Events {
		e.Took = 0
		o.Applied = append(o.Applied, e)
	}
	for _, p := range r.PeersOut {
		o.PeersOut = append(o.PeersOut, PeerOutcome{
			Index: p.Index, IDs: p.IDs, Seeder: p.Seeder, FreeRider: p.FreeRider, Up: p.Up,
			Completed: p.Completed, Intact: p.Intact,
		})
	}
	return o
}

// Digest is the hex SHA-256 of o's JSON: two runs with the same digest
// had the same Outcome.
func (o Outcome) Digest() string {
	b, err := json.Marshal(o)
	if err != nil {
		panic("simulate: an Outcome does not encode: " + err.Error()) // plain data: a broken invariant
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
