package simulate

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// AdversaryKind is what a dishonest peer does. Every kind speaks the real
// wire protocol over its own mocknet host.
type AdversaryKind string

const (
	// Corrupt announces HAVE_ALL, serves the real DAG nodes and answers
	// every WANT with random bytes of the right size.
	Corrupt AdversaryKind = "corrupt"
	// LieHave announces HAVE_ALL and answers every WANT with DONT_HAVE.
	LieHave AdversaryKind = "lie-have"
	// Stall announces HAVE_ALL and then never answers anything.
	Stall AdversaryKind = "stall"
	// Flood opens sessions to honest nodes and asks for every chunk again
	// and again, far past the request limits.
	Flood AdversaryKind = "flood"
)

// adversaryKinds lists every kind.
var adversaryKinds = []AdversaryKind{Corrupt, LieHave, Stall, Flood}

// EventKind is a fault.
type EventKind string

const (
	// Leave closes a peer's node and host and cuts its links (its partial
	// file stays on disk).
	Leave EventKind = "leave"
	// Join brings back a peer that left: a new host (a new identity) on
	// the same home directory, so its fetch resumes.
	Join EventKind = "join"
	// Partition cuts every link between Peers and the other nodes.
	Partition EventKind = "partition"
	// Heal restores every link a Partition cut.
	Heal EventKind = "heal"
)

// Event is a fault injected At a time after the fetches start.
type Event struct {
	At    time.Duration `json:"at_ns"`
	Kind  EventKind     `json:"kind"`
	Peers []int         `json:"peers,omitempty"` // honest node indices
	// Took is, in a Report's applied events, how long carrying the
	// event out took (a leaving node's Close, say).
	Took time.Duration `json:"took_ns,omitempty"`
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s %v", e.At.Round(time.Millisecond), e.Kind, e.Peers)
}

// Profile is a peer's access link: a link between two peers has the sum of
// their latencies and the smaller of their bandwidths.
type Profile struct {
	Weight    float64       `json:"weight"`              // share of the peers with this profile
	Latency   time.Duration `json:"latency_ns"`          // one way, per write
	Bandwidth float64       `json:"bandwidth,omitempty"` // bytes per second; 0 is unlimited
}

// Adversaries is how many dishonest peers of one kind a scenario has.
type Adversaries struct {
	Kind  AdversaryKind `json:"kind"`
	Count int           `json:"count"`
	// Reach is how many honest fetchers each one is introduced to (it
	// connects to them and they get it as a hint); zero means half.
	Reach int `json:"reach,omitempty"`
}

// Scenario describes a simulation. The zero values of the optional fields
// are documented; Named returns complete ones. A Scenario is a plain value.
type Scenario struct {
	// Name identifies a named scenario (see Names); it makes the replay
	// command exact. Empty for a custom one.
	Name string
	// Peers is the number of honest nodes, seeders included (≥ 2).
	Peers int
	// Seeders is how many of them (nodes 0…Seeders-1) share the file
	// before the fetches start; zero means 1.
	Seeders int
	// FileSize is the size of the shared file; zero means 4 MiB.
	FileSize int64
	// ChunkSize is the fixed chunk size; zero means 256 KiB.
	ChunkSize int
	// Seed fixes every random choice of the run.
	Seed uint64
	// Profiles are the peers' access links, chosen per peer by weight;
	// none means links with no latency and no bandwidth limit.
	Profiles []Profile
	// UploadCap limits what each honest node sends over the exchange
	// protocol, in bytes per second, across all its peers; zero is none.
	UploadCap float64
	// NodeUploadRate is node.Config.UploadRate of every honest node: the
	// node's own limiter, in bytes per second, where UploadCap is the
	// simulated uplink under it. Zero is none.
	NodeUploadRate int64
	// FreeRiders is how many fetchers (the last ones: nodes
	// Peers-FreeRiders…Peers-1) fetch like the others but upload nothing:
	// they take no sessions (their hosts drop the exchange protocol), so
	// peers see them refuse and ask others. The report gives their
	// completion apart.
	FreeRiders int
	// Adversaries are dishonest peers besides the honest ones.
	Adversaries []Adversaries
	// Events are the faults, in time order.
	Events []Event
	// Timeout bounds the fetch phase; zero means 2 minutes. A fetcher that
	// has not finished by then counts as failed.
	Timeout time.Duration
	// RequestTimeout and FindTimeout are the nodes' (see node.Config);
	// zero means 2 s and 15 s.
	RequestTimeout, FindTimeout time.Duration
	// NoDHT runs the nodes without a DHT: fetchers know only the ticket's
	// seeder, the peers they connect to at start (Degree) and adversaries.
	NoDHT bool
	// Degree is how many random earlier nodes each node bootstraps from
	// (and connects to); zero means 3.
	Degree int
	// LookupProbes is how many DHT lookups of the root a separate probe
	// node times at the end of the run; zero means 8, negative none.
	LookupProbes int
	// Loopback runs the nodes on real libp2p hosts on 127.0.0.1 (TCP,
	// Noise or TLS, yamux) in place of mocknet's: the `peer demo`. The
	// kernel carries the bytes, so it takes no Events, Adversaries or
	// Profiles with a latency or bandwidth (those are mocknet's links),
	// and it runs only on the machine's clock: Run, outside a synctest
	// bubble (a virtual clock cannot wait on a socket). Nothing leaves
	// the machine.
	Loopback bool
	// Dir holds the nodes' homes and files; empty means a temporary
	// folder that Run removes.
	Dir string
	// Logger receives the nodes' logs; nil discards them.
	Logger *slog.Logger
}

const defaultFileSize = 4 << 20

// Demo returns the scenario `peer demo` runs: peers nodes on loopback TCP
// (see Scenario.Loopback); node 0 shares a file of size bytes in 1 MiB
// chunks (a node's default), and the others fetch it at once by its ticket
// and trade chunks, with no cap on uploads. Run it with Run, outside a
// synctest bubble. It does not block.
func Demo(peers int, size int64, seed uint64) Scenario {
	return Scenario{Peers: peers, Seeders: 1, FileSize: size, ChunkSize: 1 << 20, Seed: seed, Loopback: true, LookupProbes: -1}
}

// Names lists the named scenarios. It does not block.
func Names() []string {
	return []string{"flash-crowd", "churn", "seeder-loss", "partition", "slow-links", "adversarial", "free-riders"}
}

// ErrScenario is wrapped by every error about a scenario's description.
var ErrScenario = errors.New("simulate: bad scenario")

// Named returns the named scenario for peers nodes (adversaries included
// for "adversarial") and seed: the same arguments give the same Scenario,
// fault schedule included. It does not block.
func Named(name string, peers int, seed uint64) (Scenario, error) {
	if peers < 4 {
		return Scenario{}, fmt.Errorf("%w: %d peers: want at least 4", ErrScenario, peers)
	}
	if peers > 5000 {
		return Scenario{}, fmt.Errorf("%w: %d peers: want at most 5000", ErrScenario, peers)
	}
	sc := Scenario{Name: name, Peers: peers, Seed: seed, UploadCap: 2 << 20,
		Profiles: []Profile{{Weight: 1, Latency: 2 * time.Millisecond}}}
	r := rand.New(rand.NewPCG(seed, 0xe7e47))
	fetchers := func(first int) []int { // shuffled indices of non-seeders
		out := make([]int, 0, peers-first)
		for i := first; i < peers; i++ {
			out = append(out, i)
		}
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	switch name {
	case "flash-crowd":
		sc.Seeders = 1
	case "churn":
		// Every 200 ms a fetcher leaves; it comes back 1 s later.
		sc.Seeders = 1
		n := max(2, peers/4)
		order := fetchers(1)
		for k := range n {
			p := order[k%len(order)]
			at := time.Duration(200*(k+1)) * time.Millisecond
			sc.Events = append(sc.Events,
				Event{At: at, Kind: Leave, Peers: []int{p}},
				Event{At: at + time.Second, Kind: Join, Peers: []int{p}})
		}
		sortEvents(sc.Events)
	case "seeder-loss":
		// Half the seeders die 500 ms into the transfer.
		sc.Seeders = max(min(4, peers/2), peers/10)
		order := make([]int, sc.Seeders)
		for i := range order {
			order[i] = i
		}
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		dead := order[:sc.Seeders/2]
		slices.Sort(dead)
		sc.Events = []Event{{At: 500 * time.Millisecond, Kind: Leave, Peers: dead}}
	case "partition":
		// Half the fetchers are cut off from the rest (the seeder
		// included) 300 ms in, and the network heals at 3 s.
		sc.Seeders = 1
		order := fetchers(1)
		group := order[:len(order)/2]
		slices.Sort(group)
		sc.Events = []Event{
			{At: 300 * time.Millisecond, Kind: Partition, Peers: group},
			{At: 3 * time.Second, Kind: Heal},
		}
	case "slow-links":
		sc.Seeders = 1
		sc.UploadCap = 0
		sc.Profiles = []Profile{
			{Weight: 0.5, Latency: 5 * time.Millisecond, Bandwidth: 8 << 20},
			{Weight: 0.3, Latency: 40 * time.Millisecond, Bandwidth: 2 << 20},
			{Weight: 0.2, Latency: 100 * time.Millisecond, Bandwidth: 1 << 20},
		}
	case "adversarial":
		// A fifth of the peers are dishonest, of every kind.
		sc.Seeders = 1
		bad := max(len(adversaryKinds), peers/5)
		if peers-bad < 3 {
			return Scenario{}, fmt.Errorf("%w: adversarial needs at least %d peers (one adversary of each kind and 3 honest)", ErrScenario, len(adversaryKinds)+3)
		}
		sc.Peers = peers - bad
		for i, k := range adversaryKinds {
			n := bad / len(adversaryKinds)
			if i < bad%len(adversaryKinds) {
				n++
			}
			sc.Adversaries = append(sc.Adversaries, Adversaries{Kind: k, Count: n})
		}
	case "free-riders":
		// Half the fetchers take no sessions: they fetch, and upload
		// nothing. The others serve first the peers that serve them
		// (tit-for-tat) and finish sooner; the free riders still finish,
		// on the turns that go to whoever has waited longest.
		// Several seeders, so that the fetchers' uplinks, not the rate at
		// which new chunks enter the swarm, decide who finishes first.
		sc.Seeders = max(1, min(4, peers/10))
		sc.FreeRiders = max(1, (peers-sc.Seeders)/2)
	default:
		return Scenario{}, fmt.Errorf("%w: unknown scenario %q (want one of %s)", ErrScenario, name, strings.Join(Names(), ", "))
	}
	return sc, nil
}

// sortEvents puts events in time order, and at one instant every Leave
// before any Join: Run applies events one after another, and a Join takes
// time (a node starts and bootstraps), which would make a Leave queued
// behind it land late.
func sortEvents(ev []Event) {
	slices.SortStableFunc(ev, func(a, b Event) int {
		if a.At != b.At {
			return cmp.Compare(a.At, b.At)
		}
		leaveFirst := func(e Event) int {
			if e.Kind == Leave {
				return 0
			}
			return 1
		}
		return cmp.Compare(leaveFirst(a), leaveFirst(b))
	})
}

// fill sets defaults and checks the scenario.
func (sc *Scenario) fill() error {
	if sc.Seeders == 0 {
		sc.Seeders = 1
	}
	if sc.FileSize == 0 {
		sc.FileSize = defaultFileSize
	}
	if sc.ChunkSize == 0 {
		sc.ChunkSize = 256 << 10
	}
	if sc.Timeout == 0 {
		sc.Timeout = 2 * time.Minute
	}
	if sc.RequestTimeout == 0 {
		sc.RequestTimeout = 2 * time.Second
	}
	if sc.FindTimeout == 0 {
		sc.FindTimeout = 15 * time.Second
	}
	if sc.Degree == 0 {
		sc.Degree = 3
	}
	if sc.LookupProbes == 0 {
		sc.LookupProbes = 8
	}
	if len(sc.Profiles) == 0 {
		sc.Profiles = []Profile{{Weight: 1}}
	}
	var errs []error
	if sc.Peers < 2 {
		errs = append(errs, fmt.Errorf("%d honest peers: want at least 2", sc.Peers))
	}
	if sc.Seeders < 1 || sc.Seeders >= sc.Peers {
		errs = append(errs, fmt.Errorf("%d seeders of %d peers: want at least 1 and at least one fetcher", sc.Seeders, sc.Peers))
	}
	if sc.FileSize < 1 || sc.FileSize > 1<<30 {
		errs = append(errs, fmt.Errorf("file size %d: want 1 byte to 1 GiB", sc.FileSize))
	}
	if sc.ChunkSize < 16<<10 || sc.ChunkSize > 4<<20 {
		errs = append(errs, fmt.Errorf("chunk size %d: want 16 KiB to 4 MiB", sc.ChunkSize))
	}
	if sc.NodeUploadRate < 0 {
		errs = append(errs, fmt.Errorf("node upload rate %d: want ≥ 0", sc.NodeUploadRate))
	}
	if sc.UploadCap < 0 {
		errs = append(errs, fmt.Errorf("upload cap %v: want ≥ 0", sc.UploadCap))
	}
	if sc.FreeRiders < 0 || sc.FreeRiders > sc.Peers-sc.Seeders-1 {
		errs = append(errs, fmt.Errorf("%d free riders of %d fetchers: want at least one fetcher that is not", sc.FreeRiders, sc.Peers-sc.Seeders))
	}
	var w float64
	for _, p := range sc.Profiles {
		if p.Weight < 0 || p.Latency < 0 || p.Bandwidth < 0 {
			errs = append(errs, fmt.Errorf("profile %+v: negative value", p))
		}
		w += p.Weight
	}
	if w <= 0 {
		errs = append(errs, errors.New("profiles: weights sum to zero"))
	}
	for _, a := range sc.Adversaries {
		if !slices.Contains(adversaryKinds, a.Kind) {
			errs = append(errs, fmt.Errorf("unknown adversary kind %q", a.Kind))
		}
		if a.Count < 0 || a.Reach < 0 {
			errs = append(errs, fmt.Errorf("adversaries %+v: negative count", a))
		}
	}
	var last time.Duration
	partitioned := false
	for _, e := range sc.Events {
		if e.At < last {
			errs = append(errs, fmt.Errorf("event %s: events must be in time order", e))
		}
		last = e.At
		for _, p := range e.Peers {
			if p < 0 || p >= sc.Peers {
				errs = append(errs, fmt.Errorf("event %s: no peer %d", e, p))
			}
		}
		switch e.Kind {
		case Leave, Join:
		case Partition:
			if partitioned {
				errs = append(errs, fmt.Errorf("event %s: already partitioned", e))
			}
			partitioned = true
		case Heal:
			partitioned = false
		default:
			errs = append(errs, fmt.Errorf("event %s: unknown kind", e))
		}
	}
	if sc.Loopback {
		if len(sc.Events) > 0 || len(sc.Adversaries) > 0 {
			errs = append(errs, fmt.Errorf("loopback: %d events and %d kinds of adversaries: a loopback run takes neither (they act on mocknet's links)", len(sc.Events), len(sc.Adversaries)))
		}
		for _, p := range sc.Profiles {
			if p.Latency != 0 || p.Bandwidth != 0 {
				errs = append(errs, fmt.Errorf("loopback: profile %+v: a loopback run has no simulated latency or bandwidth; use UploadCap to limit uploads", p))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrScenario, err)
	}
	return nil
}

// Replay returns the command that runs the scenario again, or "" for a
// custom one. It does not block.
func (sc *Scenario) Replay() string {
	if sc.Name == "" {
		return ""
	}
	peers := sc.Peers
	for _, a := range sc.Adversaries {
		peers += a.Count
	}
	cmd := fmt.Sprintf("peer simulate --scenario %s --peers %d --seed %d", sc.Name, peers, sc.Seed)
	if sc.FileSize != 0 && sc.FileSize != defaultFileSize {
		cmd += fmt.Sprintf(" --size %d", sc.FileSize)
	}
	return cmd
}
