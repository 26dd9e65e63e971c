package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	kad "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// DefaultPrefix is the protocol prefix of peer's DHT: its protocol is
// /peer/kad/1.0.0, so it never joins the public IPFS DHT by accident.
const DefaultPrefix protocol.ID = "/peer"

// Defaults for Config's zero values.
const (
	DefaultProvideValidity   = 24 * time.Hour
	DefaultReprovideInterval = 8 * time.Hour
	DefaultBucketSize        = 20
)

// bootstrapWait bounds how long Bootstrap waits for a connected peer to enter
// the routing table.
const bootstrapWait = 10 * time.Second

// ErrClosed is returned by calls on a closed DHT.
var ErrClosed = errors.New("dht: closed")

// Mode says whether this node answers DHT queries.
type Mode int

const (
	// ModeServer answers queries and stores provider records: the default,
	// right for publicly reachable nodes, private swarms and simulations.
	ModeServer Mode = iota
	// ModeClient only asks: for nodes that others can't dial.
	ModeClient
	// ModeAuto follows the node's reachability as AutoNAT sees it: a
	// server unless AutoNAT finds the node private (so a LAN or a swarm
	// without AutoNAT servers still has servers).
	ModeAuto
)

// String names the mode as the CLI takes it.
func (m Mode) String() string {
	switch m {
	case ModeServer:
		return "server"
	case ModeClient:
		return "client"
	case ModeAuto:
		return "auto"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "server", "client" or "auto".
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ModeServer, ModeClient, ModeAuto} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("dht: unknown mode %q (want server, client or auto)", s)
}

// Config configures a DHT. The zero value is a server on DefaultPrefix with
// no bootstrap peers.
type Config struct {
	// Mode is ModeServer unless set.
	Mode Mode
	// Prefix is the protocol prefix; empty means DefaultPrefix. Nodes with
	// different prefixes do not see each other.
	Prefix protocol.ID
	// Bootstrap peers to join through. Empty means none: a node that
	// knows no one waits to be contacted.
	Bootstrap []peer.AddrInfo
	// ProvideValidity is how long other nodes keep our provider records;
	// zero means DefaultProvideValidity.
	ProvideValidity time.Duration
	// ReprovideInterval is how often every provided root is announced
	// again; zero means DefaultReprovideInterval. It must be shorter than
	// ProvideValidity.
	ReprovideInterval time.Duration
	// BucketSize is Kademlia's k; zero means DefaultBucketSize.
	BucketSize int
	// MaxProviderRecords bounds the provider records a server keeps for
	// other peers, over all roots; MaxProvidersPerRoot for one root. A
	// record past a cap is dropped, except one that refreshes a record
	// kept. Zero means DefaultMaxProviderRecords and
	// DefaultMaxProvidersPerRoot.
	MaxProviderRecords, MaxProvidersPerRoot int
	// Amino joins the public IPFS DHT (AminoProtocol, /ipfs/kad/1.0.0)
	// instead of a DHT of peer's own: Prefix must be empty or AminoPrefix
	// and BucketSize empty or 20, as Amino requires of its servers, which
	// also store IPNS and public-key values for others (at most
	// MaxValueRecords). ModeAuto then means kad-dht's own auto mode: a
	// client until AutoNAT finds the node publicly reachable, so that a node
	// behind NAT never pollutes other peers' routing tables.
	Amino bool
	// MaxValueRecords bounds the value (IPNS) records a server keeps for
	// other peers; zero means DefaultMaxValueRecords.
	MaxValueRecords int
	// NoAutoRefresh turns off the periodic routing-table refresh: in a
	// simulation of a thousand nodes a full refresh on every node costs
	// O(N²) connections, and one self-lookup at Bootstrap is enough.
	NoAutoRefresh bool
	// Logger receives the DHT's logs; nil means slog.Default().
	Logger *slog.Logger
}

// prefix is the protocol prefix a DHT of c speaks: AminoPrefix on the
// public DHT, else Prefix, else DefaultPrefix.
func (c *Config) prefix() protocol.ID {
	switch {
	case c.Amino:
		return AminoPrefix
	case c.Prefix == "":
		return DefaultPrefix
	}
	return c.Prefix
}

// Protocol returns the protocol ID a DHT of c speaks, before it is
// started: what DHT.Protocol will say (New refuses an Amino Config with
// another Prefix).
func (c Config) Protocol() protocol.ID { return c.prefix() + "/kad/1.0.0" }

func (c *Config) fill() error {
	if c.Amino && c.Prefix != "" && c.Prefix != AminoPrefix {
		return fmt.Errorf("dht: the public DHT's prefix is %s, not %s", AminoPrefix, c.Prefix)
	}
	if c.Amino && c.BucketSize != 0 && c.BucketSize != DefaultBucketSize {
		return fmt.Errorf("dht: the public DHT's bucket size is %d, not %d", DefaultBucketSize, c.BucketSize)
	}
	c.Prefix = c.prefix()
	if c.ProvideValidity == 0 {
		c.ProvideValidity = DefaultProvideValidity
	}
	if c.ReprovideInterval == 0 {
		c.ReprovideInterval = DefaultReprovideInterval
	}
	if c.BucketSize == 0 {
		c.BucketSize = DefaultBucketSize
	}
	if c.MaxProviderRecords == 0 {
		c.MaxProviderRecords = DefaultMaxProviderRecords
	}
	if c.MaxProvidersPerRoot == 0 {
		c.MaxProvidersPerRoot = DefaultMaxProvidersPerRoot
	}
	if c.MaxValueRecords == 0 {
		c.MaxValueRecords = DefaultMaxValueRecords
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Mode < ModeServer || c.Mode > ModeAuto:
		return fmt.Errorf("dht: unknown mode %d", c.Mode)
	case c.ReprovideInterval >= c.ProvideValidity:
		return fmt.Errorf("dht: reprovide interval %s must be shorter than the provide validity %s", c.ReprovideInterval, c.ProvideValidity)
	case c.BucketSize < 2:
		return fmt.Errorf("dht: bucket size %d is too small", c.BucketSize)
	case c.MaxValueRecords < 1:
		return fmt.Errorf("dht: value record cap %d must be positive", c.MaxValueRecords)
	case c.MaxProviderRecords < 1 || c.MaxProvidersPerRoot < 1:
		return fmt.Errorf("dht: provider record caps %d and %d per root must be positive", c.MaxProviderRecords, c.MaxProvidersPerRoot)
	}
	return nil
}

// DHT is a running Kademlia DHT on a libp2p host. Its methods are safe for
// concurrent use.
type DHT struct {
	kad     *kad.IpfsDHT
	records *recordStore // the provider records kept for others
	host    host.Host
	cfg     Config
	log     *slog.Logger

	ctx    context.Context // cancelled by Close; ends the reprovide loop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	provided map[cid.Cid]time.Time // root → when it was last announced
	closed   bool
}

// New starts a DHT on h. It does not contact anyone: call Bootstrap.
func New(h host.Host, cfg Config) (*DHT, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	mode := map[Mode]kad.ModeOpt{ModeServer: kad.ModeServer, ModeClient: kad.ModeClient, ModeAuto: kad.ModeAutoServer}[cfg.Mode]
	if cfg.Amino && cfg.Mode == ModeAuto {
		mode = kad.ModeAuto
	}
	recs := newRecordStore(cfg.MaxProviderRecords, cfg.MaxProvidersPerRoot, cfg.ProvideValidity)
	opts := []kad.Option{
		kad.Mode(mode),
		kad.ProtocolPrefix(cfg.Prefix),
		kad.BucketSize(cfg.BucketSize),
		kad.BootstrapPeers(cfg.Bootstrap...),
		kad.ProviderDatastore(recs),
		kad.ProviderManagerOpts(records.ProvideValidity(cfg.ProvideValidity), records.Cache(noCache{})),
		// Values: IPNS records (on Amino public keys too, which it
		// requires), validated, at most MaxValueRecords kept for others.
		kad.Validator(valueValidator(h.Peerstore(), cfg.Amino)),
		kad.ValueDatastore(newValueDatastore(cfg.MaxValueRecords)),
		// A stream per request, closed once answered: kad-dht's own
		// sender keeps one open to every peer it ever asked (sender.go).
		kad.WithCustomMessageSender(newStreamSender),
	}
	if cfg.NoAutoRefresh {
		opts = append(opts, kad.DisableAutoRefresh())
	}
	k, err := kad.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("dht: start: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &DHT{
		kad: k, records: recs, host: h, cfg: cfg, ctx: ctx, cancel: cancel,
		log:      cfg.Logger.With("component", "dht"),
		provided: map[cid.Cid]time.Time{},
	}
	d.wg.Add(1)
	go d.reprovideLoop()
	return d, nil
}

// Bootstrap connects to the configured bootstrap peers and then looks up
// this node's own ID once, which fills the routing table with the peers
// nearest to it. It blocks until that lookup ends or ctx is done. It is not
// an error for the lookup to find no one (the first node of a network).
func (d *DHT) Bootstrap(ctx context.Context) error {
	if d.isClosed() {
		return ErrClosed
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []error
	)
	for _, ai := range d.cfg.Bootstrap {
		if ai.ID == d.host.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.host.Connect(ctx, ai); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Errorf("%s: %w", ai.ID, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(d.cfg.Bootstrap) > 0 && len(failures) == len(d.cfg.Bootstrap) {
		return fmt.Errorf("dht: bootstrap: no bootstrap peer answered: %w", errors.Join(failures...))
	}
	for _, err := range failures {
		d.log.Warn("bootstrap peer unreachable", "err", err)
	}
	if len(d.host.Network().Peers()) == 0 {
		return nil // the first node of a network: nobody to ask yet
	}
	// kad-dht adds a connected peer to its table only after identify and a
	// liveness check, both asynchronous: wait for the first one, bounded.
	wait, cancel := context.WithTimeout(ctx, bootstrapWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for d.kad.RoutingTable().Size() == 0 {
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("dht: bootstrap: connected to %d peers but none speaks %s in server mode", len(d.host.Network().Peers()), d.Protocol())
		case <-d.ctx.Done():
			return ErrClosed
		case <-tick.C:
		}
	}
	// One self-lookup: cheap at any scale, unlike a full refresh.
	if _, err := d.kad.GetClosestPeers(ctx, string(d.host.ID())); err != nil && ctx.Err() == nil {
		d.log.Debug("self lookup", "err", err)
	}
	return ctx.Err()
}

// Provide announces that this node provides root, and keeps announcing it
// every ReprovideInterval until StopProviding or Close. It blocks until the
// first announcement has reached the nodes closest to root, or ctx is done.
func (d *DHT) Provide(ctx context.Context, root cid.Cid) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	start := time.Now()
	d.provided[root] = start
	d.mu.Unlock()
	if err := d.kad.Provide(ctx, root, true); err != nil {
		return fmt.Errorf("dht: provide %s: %w", root, err)
	}
	d.log.Debug("provided", "root", root, "took", time.Since(start), "table", d.kad.RoutingTable().Size())
	return nil
}

// StopProviding stops announcing root. Records already stored elsewhere
// expire by themselves.
func (d *DHT) StopProviding(root cid.Cid) {
	d.mu.Lock()
	delete(d.provided, root)
	d.mu.Unlock()
}

// Providing lists the roots this node announces, sorted.
func (d *DHT) Providing() []cid.Cid {
	d.mu.Lock()
	out := make([]cid.Cid, 0, len(d.provided))
	for c := range d.provided {
		out = append(out, c)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].KeyString() < out[j].KeyString() })
	return out
}

// Bounds of a provider lookup: how many providers it considers, how many
// it dials at once, and how long one dial may take.
const (
	maxCandidates       = 1024
	providerDials       = 32
	providerDialTimeout = 5 * time.Second
)

// A provider lookup that reached no provider is run again, up to
// lookupRounds rounds in all, after a pause of firstRetry that doubles each
// time (0.25, 0.5, 1, 2, 4 s: 7.75 s in all). A flash crowd starts fetching
// the moment a root is shared, and a Kademlia lookup converges on the
// root's closest peers (in a simulation of 100 nodes with 4 ms links, in
// 24–40 ms) before the sharer's own announcement has reached them (36 ms):
// the lookup ended empty although the record landed a moment later.
const (
	lookupRounds = 6
	firstRetry   = 250 * time.Millisecond
)

// FindProviders looks up the providers of root and sends each that answers
// as it is found, at most limit of them (0 means 20). A provider is sent
// once this node is connected to it: one that cannot be dialled is skipped
// and the lookup goes on past it (up to 1024 providers considered per
// round, 32 dialled at once, 5 s each), so fake providers that fill a
// root's records do not hide the real one. A round that reaches no
// provider is run again after 0.25, 0.5, 1, 2 and 4 s (a provider may be
// announcing the root right now, as the sharer of a flash crowd is); a
// provider dialled in one round is not dialled again. The channel is closed
// when a round that reached a provider ends, or the last round ends;
// cancel ctx to end it early (Close ends it too, and waits for it). This
// node itself is never sent.
func (d *DHT) FindProviders(ctx context.Context, root cid.Cid, limit int) <-chan peer.AddrInfo {
	if limit <= 0 {
		limit = 20
	}
	out := make(chan peer.AddrInfo)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		close(out)
		return out
	}
	d.wg.Add(1) // Close waits for the lookup; it cancels it first
	d.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.ctx, cancel)
	go func() {
		defer d.wg.Done()
		defer close(out)
		defer cancel()
		defer stop()
		var (
			dials     sync.WaitGroup
			slots     = make(chan struct{}, providerDials)
			reachable = make(chan peer.AddrInfo)
			fed       = make(chan struct{})
			reached   atomic.Int64 // providers that answered, over all rounds
			rounds    int          // read after fed is closed
			start     = time.Now()
			table     = d.kad.RoutingTable().Size()
		)
		// The feeder runs the rounds: it drains each round's providers
		// (kad closes the channel when the round or ctx ends) and dials
		// each new one, a bounded number at once.
		go func() {
			defer close(fed)
			seen := map[peer.ID]bool{d.host.ID(): true}
			for {
				rounds++
				for ai := range d.kad.FindProvidersAsync(ctx, root, maxCandidates) {
					if seen[ai.ID] || ctx.Err() != nil {
						continue
					}
					seen[ai.ID] = true
					select {
					case slots <- struct{}{}:
					case <-ctx.Done():
						continue
					}
					dials.Add(1)
					go func() {
						defer dials.Done()
						defer func() { <-slots }()
						dctx, dcancel := context.WithTimeout(ctx, providerDialTimeout)
						err := d.host.Connect(dctx, ai)
						dcancel()
						if err != nil {
							if ctx.Err() == nil {
								d.log.Debug("provider does not answer", "root", root, "peer", ai.ID, "err", err)
							}
							return
						}
						reached.Add(1)
						select {
						case reachable <- ai:
						case <-ctx.Done():
						}
					}()
				}
				dials.Wait()
				if reached.Load() > 0 || ctx.Err() != nil || rounds == lookupRounds {
					return
				}
				t := time.NewTimer(firstRetry << (rounds - 1))
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
		}()
		go func() {
			<-fed
			dials.Wait()
			close(reachable)
		}()
		sent := 0
		for ai := range reachable {
			if sent == limit {
				continue
			}
			select {
			case out <- ai:
				if sent++; sent == limit {
					cancel() // enough: end the lookup and the dials
				}
			case <-ctx.Done():
			}
		}
		d.log.Debug("lookup ended", "root", root, "took", time.Since(start), "rounds", rounds, "table", table, "sent", sent, "cancelled", ctx.Err() != nil)
	}()
	return out
}

// Protocol returns the DHT's protocol ID: Prefix + "/kad/1.0.0".
func (d *DHT) Protocol() protocol.ID { return d.cfg.Protocol() }

// Peers returns the number of peers in the routing table.
func (d *DHT) Peers() int { return d.kad.RoutingTable().Size() }

// Kad returns the underlying kad-dht, for a host's routing (relays,
// peer lookups). Callers must not close it.
func (d *DHT) Kad() *kad.IpfsDHT { return d.kad }

// Close stops reproviding and the DHT. It is idempotent; it does not close
// the host.
func (d *DHT) Close() error {
	var err error
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		d.cancel()
		d.wg.Wait()
		err = d.kad.Close()
	})
	return err
}

func (d *DHT) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// reprovideParallel is how many roots a reprovide sweep announces at once.
const reprovideParallel = 8

// reprovideLoop announces roots again in sweeps, a few times per reprovide
// interval. A sweep takes every root that would be overdue before the next
// sweep, so roots provided at scattered times are announced in batches
// rather than each on its own schedule, and each root is re-announced
// within one interval of its last announcement. It announces at most
// reprovideParallel roots at once and waits for them all before the next
// sweep.
func (d *DHT) reprovideLoop() {
	defer d.wg.Done()
	every := d.cfg.ReprovideInterval / 4
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		var due []cid.Cid
		for c, at := range d.provided {
			if time.Since(at) >= d.cfg.ReprovideInterval-every {
				due = append(due, c)
			}
		}
		d.mu.Unlock()
		if len(due) == 0 {
			continue
		}
		d.sweep(due)
		if d.ctx.Err() != nil {
			return
		}
	}
}

// sweep announces roots, reprovideParallel at once, and returns when every
// announcement has ended (or the DHT closes).
func (d *DHT) sweep(roots []cid.Cid) {
	start := time.Now()
	var (
		wg     sync.WaitGroup
		slots  = make(chan struct{}, reprovideParallel)
		failed atomic.Int64
	)
	for _, c := range roots {
		select {
		case slots <- struct{}{}:
		case <-d.ctx.Done():
		}
		if d.ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
			err := d.kad.Provide(ctx, c, true)
			cancel()
			if d.ctx.Err() != nil {
				return
			}
			d.mu.Lock()
			if _, still := d.provided[c]; still {
				d.provided[c] = time.Now()
			}
			d.mu.Unlock()
			if err != nil {
				failed.Add(1)
				d.log.Debug("reprovide", "root", c, "err", err)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		d.log.Warn("reprovide sweep", "roots", len(roots), "failed", n, "took", time.Since(start))
	} else {
		d.log.Debug("reprovide sweep", "roots", len(roots), "took", time.Since(start))
	}
}
