package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/fx"
)

// ReachState is whether other peers can dial a node.
type ReachState int

const (
	// ReachUnknown: AutoNAT has not decided (no peer has answered a
	// dial-back request yet).
	ReachUnknown ReachState = iota
	// ReachPublic: peers can dial the node's own addresses.
	ReachPublic
	// ReachPrivate: the node is behind a NAT or firewall; peers reach it
	// through a relay (and a hole punch).
	ReachPrivate
)

// String returns "unknown", "public" or "private".
func (s ReachState) String() string {
	switch s {
	case ReachUnknown:
		return "unknown"
	case ReachPublic:
		return "public"
	case ReachPrivate:
		return "private"
	}
	return fmt.Sprintf("ReachState(%d)", int(s))
}

// ParseReachState parses "public", "private", or "unknown" ("auto" and ""
// mean unknown: let AutoNAT decide).
func ParseReachState(s string) (ReachState, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto", "unknown":
		return ReachUnknown, nil
	case "public":
		return ReachPublic, nil
	case "private":
		return ReachPrivate, nil
	}
	return 0, fmt.Errorf("node: reachability %q: want public, private or auto", s)
}

// MarshalText encodes s as its String, so that JSON shows "public".
func (s ReachState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes what MarshalText or ParseReachState accept.
func (s *ReachState) UnmarshalText(b []byte) error {
	v, err := ParseReachState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// RelayLimits bound what a node's relay service carries for others. The
// zero value is go-libp2p's defaults: 128 KiB and 2 minutes per relayed
// connection, enough for a hole punch but not for a file. A relayed
// connection under limits is "limited": the exchange does not open streams
// on it and waits for the hole punch to give a direct connection instead.
type RelayLimits struct {
	// Unlimited lets relayed connections carry anything for as long as they
	// last: they are not limited, so a transfer goes through the relay
	// when a hole punch fails. Data and Duration are then ignored.
	Unlimited bool
	// Data is how many bytes one relayed connection carries each way
	// before the relay cuts it; zero means 128 KiB.
	Data int64
	// Duration is how long one relayed connection may last; zero means
	// 2 minutes.
	Duration time.Duration
	// Reservations is how many peers may hold a slot at once; zero means
	// 128.
	Reservations int
	// Circuits is how many relayed connections one peer may have open at
	// once; zero means 16.
	Circuits int
}

// resources returns the go-libp2p relay resources for l, defaults filled.
func (l RelayLimits) resources() relayv2.Resources {
	rc := relayv2.DefaultResources()
	if l.Unlimited {
		rc.Limit = nil
	} else {
		if l.Data > 0 {
			rc.Limit.Data = l.Data
		}
		if l.Duration > 0 {
			rc.Limit.Duration = l.Duration
		}
	}
	if l.Reservations > 0 {
		rc.MaxReservations = l.Reservations
	}
	if l.Circuits > 0 {
		rc.MaxCircuits = l.Circuits
	}
	// go-libp2p's 2 KiB copy buffer holds a relayed transfer to a crawl.
	rc.BufferSize = 16 << 10
	return rc
}

// withDefaults returns l with its zero fields replaced by what the relay
// uses.
func (l RelayLimits) withDefaults() RelayLimits {
	rc := l.resources()
	out := RelayLimits{Unlimited: rc.Limit == nil, Reservations: rc.MaxReservations, Circuits: rc.MaxCircuits}
	if rc.Limit != nil {
		out.Data, out.Duration = rc.Limit.Data, rc.Limit.Duration
	}
	return out
}

// String describes the limits for people, e.g. "128 KiB and 2m0s per
// connection".
func (l RelayLimits) String() string {
	l = l.withDefaults()
	if l.Unlimited {
		return fmt.Sprintf("no limit per connection, %d reservations, %d circuits per peer", l.Reservations, l.Circuits)
	}
	return fmt.Sprintf("%s and %v per connection, %d reservations, %d circuits per peer", sizeString(l.Data), l.Duration, l.Reservations, l.Circuits)
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// validateReach checks the reachability fields of a Config.
func (c *Config) validateReach() error {
	var errs []error
	if _, err := c.relayPeers(); err != nil {
		errs = append(errs, err)
	}
	l := c.RelayLimits
	if l.Data < 0 || l.Duration < 0 || l.Reservations < 0 || l.Circuits < 0 {
		errs = append(errs, errors.New("relay limits must not be negative (zero means go-libp2p's default)"))
	}
	if _, err := c.announceAddrs(); err != nil {
		errs = append(errs, err)
	}
	if c.ForceReachability < ReachUnknown || c.ForceReachability > ReachPrivate {
		errs = append(errs, fmt.Errorf("unknown reachability %d", c.ForceReachability))
	}
	return errors.Join(errs...)
}

// relayPeers parses Config.Relays.
func (c *Config) relayPeers() ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range c.Relays {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("relay address %q: %w (want /ip4/ADDR/tcp/PORT/p2p/PEERID)", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// announceAddrs parses Config.AnnounceAddrs.
func (c *Config) announceAddrs() ([]ma.Multiaddr, error) {
	var out []ma.Multiaddr
	for _, s := range c.AnnounceAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("announce address %q: %w (want e.g. /ip4/ADDR/tcp/PORT)", s, err)
		}
		if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
			return nil, fmt.Errorf("announce address %q: leave out /p2p/ID", s)
		}
		out = append(out, a)
	}
	return out, nil
}

// allLoopback reports whether every address is a loopback one (an empty
// list counts as loopback: nothing to map).
func allLoopback(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

// reachOptions returns the libp2p options of the reachability stack:
// the circuit-relay v2 transport (to dial and accept relayed
// connections), hole punching, AutoNAT (client always, service when
// asked), NAT port mapping when asked and not on loopback only, AutoRelay
// on the static relays, and the relay service.
//
// A node of NetworkPublic also runs AutoNAT v2 and the AutoNAT service,
// and, unless Config.Relays names relays, AutoRelay on the candidates that
// cands finds among its peers (nil: its connected peers only).
func reachOptions(cfg *Config, listen []ma.Multiaddr, cands *relayCandidates) ([]libp2p.Option, error) {
	opts := []libp2p.Option{libp2p.EnableRelay()}
	if cfg.NATPortMap && !allLoopback(listen) {
		opts = append(opts, libp2p.NATPortMap())
	}
	if !cfg.NoHolePunch {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	switch cfg.ForceReachability {
	case ReachPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.AutoNATService || cfg.RelayService {
		opts = append(opts, libp2p.EnableNATService())
	}
	announce, err := cfg.announceAddrs()
	if err != nil {
		return nil, err
	}
	if len(announce) > 0 {
		opts = append(opts, libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			return ma.Unique(append(slices.Clone(addrs), announce...))
		}))
	}
	relays, err := cfg.relayPeers()
	if err != nil {
		return nil, err
	}
	if cfg.Network == NetworkPublic {
		// AutoNAT v2 checks each address on its own; the v1 service
		// answers peers that ask the old way (both rate-limited by
		// go-libp2p). Without static relays, AutoRelay takes its
		// candidates among the node's peers (see relayCandidates).
		opts = append(opts, libp2p.EnableAutoNATv2())
		if !cfg.AutoNATService && !cfg.RelayService {
			opts = append(opts, libp2p.EnableNATService())
		}
		if len(relays) == 0 {
			if cands == nil {
				cands = &relayCandidates{}
			}
			opts = append(opts,
				libp2p.EnableAutoRelayWithPeerSource(cands.find,
					autorelay.WithMinCandidates(relayMinCandidates),
					autorelay.WithBootDelay(relayBootDelay),
					autorelay.WithMinInterval(relaySourceInterval)),
				libp2p.WithFxOption(fx.Invoke(cands.setHost)))
		}
	}
	if len(relays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(relays))
		// AutoRelay starts only when AutoNAT has an answer, and AutoNAT
		// asks only connected peers: without a DHT or other peers, a node
		// behind a NAT would wait forever. Keep a connection to each relay
		// (a relay service answers AutoNAT too) for the node's lifetime.
		opts = append(opts, libp2p.WithFxOption(fx.Invoke(func(h host.Host, lc fx.Lifecycle) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					go func() {
						defer close(done)
						keepRelaysConnected(ctx, h, relays, cfg.Logger)
					}()
					return nil
				},
				OnStop: func(context.Context) error {
					cancel()
					<-done
					return nil
				},
			})
		})))
	}
	if cfg.RelayService {
		// Not libp2p.EnableRelayService: that one waits until AutoNAT
		// finds the node public, which never happens where no peer runs
		// an AutoNAT service. The operator asked for a relay: run it.
		rc := cfg.RelayLimits.resources()
		opts = append(opts, libp2p.WithFxOption(fx.Invoke(func(h host.Host, lc fx.Lifecycle) error {
			r, err := relayv2.New(h, relayv2.WithResources(rc))
			if err != nil {
				return fmt.Errorf("relay service: %w", err)
			}
			lc.Append(fx.StopHook(r.Close))
			return nil
		})))
	}
	return opts, nil
}

// AutoRelay on a public node's peers: it takes a reservation once it has
// relayMinCandidates candidates (or after relayBootDelay with fewer), and
// asks relayCandidates for more at most every relaySourceInterval (a look
// at the peerstore and the routing table: nothing goes on the network).
const (
	relayMinCandidates  = 2
	relayBootDelay      = 30 * time.Second
	relaySourceInterval = 5 * time.Second
	maxRelayCandidates  = 64
)

// relayCandidates is AutoRelay's peer source on a public node: the peers
// that identify says run a circuit-relay v2 service (the hop protocol),
// connected ones first, then those of the DHT's routing table. It is safe
// for concurrent use.
type relayCandidates struct {
	mu    sync.Mutex
	h     host.Host
	table func() []peer.ID // the DHT's routing table; nil without one
}

func (rc *relayCandidates) setHost(h host.Host) {
	rc.mu.Lock()
	rc.h = h
	rc.mu.Unlock()
}

// setTable makes find look in the routing table that table lists too.
func (rc *relayCandidates) setTable(table func() []peer.ID) {
	rc.mu.Lock()
	rc.table = table
	rc.mu.Unlock()
}

// find sends at most num candidates on a channel it has closed already (a
// buffered one: no goroutine is left behind).
func (rc *relayCandidates) find(_ context.Context, num int) <-chan peer.AddrInfo {
	rc.mu.Lock()
	h, table := rc.h, rc.table
	rc.mu.Unlock()
	num = min(max(num, 0), maxRelayCandidates)
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	if h == nil || num == 0 {
		return out
	}
	seen := map[peer.ID]bool{h.ID(): true}
	// add offers p; it returns false once out is full.
	add := func(p peer.ID) bool {
		if seen[p] {
			return true
		}
		seen[p] = true
		if hop, err := h.Peerstore().SupportsProtocols(p, relayproto.ProtoIDv2Hop); err != nil || len(hop) == 0 {
			return true
		}
		addrs := h.Peerstore().Addrs(p)
		if len(addrs) == 0 {
			return true
		}
		out <- peer.AddrInfo{ID: p, Addrs: addrs}
		return len(out) < num
	}
	for _, p := range h.Network().Peers() {
		if !add(p) {
			return out
		}
	}
	if table != nil {
		for _, p := range table() {
			if !add(p) {
				return out
			}
		}
	}
	return out
}

// startPunchRetry makes a public node that builds its host dial again
// every peer it reaches only over limited relayed connections, each time
// the node becomes able to hole-punch, or better able to: when its
// hole-punch service comes up, and when it gains a public address it did
// not have (a NAT mapping found, a port forwarded, a network joined).
// go-libp2p's DCUtR answers only once the host knows a public address of
// its own, and the peer behind the relay tries a hole punch once per
// relayed connection (three attempts): a node that dialled a relay
// address before (`peer get` run at once), or whose first punch failed,
// would wait on a limited connection for good. Dialling again makes a new
// relayed connection, and the other side punches again with what the
// node has now.
//
// Rounds are at least punchRetryGap apart: transitions inside the gap
// make one more round at its end, so an address that flaps costs one
// round per gap.
func (n *Node) startPunchRetry() error {
	if !n.ownsHost || n.cfg.Network != NetworkPublic || n.cfg.NoHolePunch {
		return nil
	}
	sub, err := n.host.EventBus().Subscribe([]any{new(event.EvtLocalProtocolsUpdated), new(event.EvtLocalAddressesUpdated)})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	punching := slices.Contains(n.host.Mux().Protocols(), holepunch.Protocol)
	n.goroutine(func() {
		defer sub.Close()
		r := punchRetry{punching: punching, public: publicAddrs(n.host.Addrs())}
		r.run(n.ctx, sub.Out(), n.redialLimited)
	})
	return nil
}

// punchRetryGap is the least time between two rounds of startPunchRetry.
const punchRetryGap = 10 * time.Second

// punchRetry is startPunchRetry's state: whether the hole-punch service is
// up, the public addresses the host had, and whether a round's gap runs
// and a transition waits for its end.
type punchRetry struct {
	punching bool
	public   map[string]bool
	gap      bool // the timer of the last round's gap runs
	pending  bool // a transition waits for the gap to end
}

// run takes events until ctx ends or events closes, and calls redial at
// each transition (event), punchRetryGap apart at least. The gap's timer
// alone spaces the rounds: it is armed after each round, a transition
// while it runs is pending, and its end redials if one is.
func (r *punchRetry) run(ctx context.Context, events <-chan any, redial func()) {
	timer := time.NewTimer(punchRetryGap)
	timer.Stop()
	defer timer.Stop()
	for {
		var due bool
		select {
		case <-ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			due = r.event(e) && r.transition()
		case <-timer.C:
			due = r.gapEnded()
		}
		if due {
			redial()
			timer.Reset(punchRetryGap)
		}
	}
}

// event takes one event and reports whether it is a transition to a
// state that can hole-punch where the last could not, or with a public
// address the last did not have.
func (r *punchRetry) event(e any) bool {
	switch ev := e.(type) {
	case event.EvtLocalProtocolsUpdated:
		if slices.Contains(ev.Removed, holepunch.Protocol) {
			r.punching = false
		}
		if slices.Contains(ev.Added, holepunch.Protocol) && !r.punching {
			r.punching = true
			return true
		}
	case event.EvtLocalAddressesUpdated:
		var addrs []ma.Multiaddr
		for _, u := range ev.Current {
			addrs = append(addrs, u.Address)
		}
		now := publicAddrs(addrs)
		gained := false
		for a := range now {
			gained = gained || !r.public[a]
		}
		r.public = now
		return gained && r.punching
	}
	return false
}

// transition takes a transition and reports whether to redial now (then
// the caller arms the gap's timer), or marks it pending while the gap
// runs.
func (r *punchRetry) transition() bool {
	if r.gap {
		r.pending = true
		return false
	}
	r.gap = true
	return true
}

// gapEnded takes the end of a gap and reports whether a transition
// pending makes a round now (then the caller arms the timer again).
func (r *punchRetry) gapEnded() bool {
	if !r.pending {
		r.gap = false
		return false
	}
	r.pending = false
	return true
}

// publicAddrs returns the public, non-relayed addresses of addrs as a set.
func publicAddrs(addrs []ma.Multiaddr) map[string]bool {
	out := map[string]bool{}
	for _, a := range addrs {
		if manet.IsPublicAddr(a) && !isCircuit(a) {
			out[string(a.Bytes())] = true
		}
	}
	return out
}

// redialLimited closes the connections of every peer that has only
// limited ones and dials it again (10 s each at most).
func (n *Node) redialLimited() {
	h := n.host
	for _, p := range h.Network().Peers() {
		conns := h.Network().ConnsToPeer(p)
		if len(conns) == 0 || slices.ContainsFunc(conns, func(c network.Conn) bool { return !c.Stat().Limited }) {
			continue
		}
		for _, c := range conns {
			c.Close()
		}
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := h.Connect(ctx, peer.AddrInfo{ID: p})
		cancel()
		n.log.Debug("hole punching up: dialled a relayed peer again", "peer", p, "err", err)
	}
}

// relayRedial is how often keepRelaysConnected dials a relay it is not
// connected to.
const relayRedial = 30 * time.Second

// keepRelaysConnected dials each relay that h is not connected to, at once
// and then every relayRedial, until ctx ends.
func keepRelaysConnected(ctx context.Context, h host.Host, relays []peer.AddrInfo, log *slog.Logger) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, ai := range relays {
			if h.Network().Connectedness(ai.ID) == network.Connected {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, relayRedial)
			err := h.Connect(dctx, ai)
			cancel()
			if err != nil && ctx.Err() == nil {
				log.Debug("relay unreachable", "relay", ai.ID, "err", err)
			}
		}
		t.Reset(relayRedial)
	}
}

// Reachability is how a node can be reached and how it reaches its peers.
type Reachability struct {
	// State is what AutoNAT found, or Config.ForceReachability.
	State ReachState
	// Forced says State comes from the Config, not from AutoNAT.
	Forced bool
	// PublicAddrs are the node's own addresses that look public (listen
	// addresses, port mappings and addresses peers observed), whether or
	// not they are reachable: a hole punch uses them.
	PublicAddrs []ma.Multiaddr
	// Reservations are the relays holding a slot for this node now
	// (AutoRelay on Config.Relays).
	Reservations []Reservation
	// RelayService is the limits of this node's relay service; nil when
	// it runs none.
	RelayService *RelayLimits
	// Peers are the peers connected now, sorted by ID.
	Peers []PeerPath
}

// Reservation is a relay slot the node holds.
type Reservation struct {
	Relay peer.ID
	// Addrs are this node's circuit addresses through the relay.
	Addrs []ma.Multiaddr
}

// PeerPath says how the node is connected to one peer.
type PeerPath struct {
	Peer peer.ID
	// Direct: at least one connection goes straight to the peer.
	Direct bool
	// Relays are the relays of the relayed connections to the peer.
	Relays []peer.ID
	// Addr is the remote address of the connection streams go over first
	// (a direct one when there is one).
	Addr ma.Multiaddr
	// Limited: the only connections are relayed under limits, so the
	// exchange waits for a hole punch. LimitData (bytes each way) and
	// LimitDuration are the relay's limits, zero when it sent none.
	Limited       bool
	LimitData     int64
	LimitDuration time.Duration
}

// Reachability returns whether the node is publicly reachable, the relays
// it holds reservations on, its relay service's limits and, for each
// connected peer, whether the connection is direct or relayed. It does not
// block on the network and is safe for concurrent use. On a host the
// caller brought it reports what that host exposes.
func (n *Node) Reachability() Reachability {
	h := n.host
	r := Reachability{Forced: n.cfg.ForceReachability != ReachUnknown}
	// A forced state is the Config's, as soon as New returns (the host
	// reports it through an event that comes a moment later); else
	// AutoNAT's last event, not BasicHost.Reachability, which its address
	// manager updates from that event a moment later.
	if r.Forced {
		r.State = n.cfg.ForceReachability
	} else if ev, ok := lastEvent[event.EvtLocalReachabilityChanged](h); ok {
		r.State = reachState(ev.Reachability)
	} else if rh, ok := h.(interface{ Reachability() network.Reachability }); ok {
		r.State = reachState(rh.Reachability())
	}
	direct := h.Addrs()
	if ah, ok := h.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		direct = ma.Unique(append(direct, ah.AllAddrs()...))
		slices.SortFunc(direct, ma.Multiaddr.Compare)
	}
	for _, a := range direct {
		if manet.IsPublicAddr(a) && !isCircuit(a) {
			r.PublicAddrs = append(r.PublicAddrs, a)
		}
	}
	var published []ma.Multiaddr
	if ev, ok := lastEvent[event.EvtAutoRelayAddrsUpdated](h); ok {
		published = ev.RelayAddrs
	}
	r.Reservations = reservations(h, published)
	if n.ownsHost && n.cfg.RelayService {
		l := n.cfg.RelayLimits.withDefaults()
		r.RelayService = &l
	}
	r.Peers = peerPaths(h)
	return r
}

func reachState(r network.Reachability) ReachState {
	switch r {
	case network.ReachabilityPublic:
		return ReachPublic
	case network.ReachabilityPrivate:
		return ReachPrivate
	}
	return ReachUnknown
}

// lastEvent returns the last event of type T that a stateful emitter on
// h's bus sent, if any. It does not block.
func lastEvent[T any](h host.Host) (T, bool) {
	var zero T
	sub, err := h.EventBus().Subscribe(new(T))
	if err != nil {
		return zero, false
	}
	defer sub.Close()
	select {
	case e := <-sub.Out():
		ev, ok := e.(T)
		return ev, ok
	default:
		return zero, false
	}
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// relayOf returns the relay of a circuit address
// (/ip4/…/p2p/RELAY/p2p-circuit[/p2p/PEER]).
func relayOf(a ma.Multiaddr) (peer.ID, bool) {
	var relay peer.ID
	found := false
	for _, c := range a {
		switch c.Code() {
		case ma.P_P2P:
			if id, err := peer.Decode(c.Value()); err == nil {
				relay = id
			}
		case ma.P_CIRCUIT:
			found = relay != ""
			return relay, found
		}
	}
	return "", false
}

// autorelayTag is the tag go-libp2p's AutoRelay protects the connection
// to a relay with while it holds a reservation there.
const autorelayTag = "autorelay"

// reservations lists the relays that hold a slot for h (AutoRelay protects
// its connection to each), sorted by relay. A reservation's addresses are
// those AutoRelay published (it publishes only relays' public addresses),
// or else circuit addresses over the addresses h reached the relay on.
func reservations(h host.Host, published []ma.Multiaddr) []Reservation {
	byRelay := map[peer.ID][]ma.Multiaddr{}
	for _, a := range published {
		if id, ok := relayOf(a); ok {
			byRelay[id] = append(byRelay[id], a)
		}
	}
	var out []Reservation
	for _, p := range h.Network().Peers() {
		if !h.ConnManager().IsProtected(p, autorelayTag) {
			continue
		}
		addrs := byRelay[p]
		if len(addrs) == 0 {
			circuit, err := ma.NewMultiaddr("/p2p/" + p.String() + "/p2p-circuit")
			if err != nil {
				continue
			}
			for _, c := range h.Network().ConnsToPeer(p) {
				if ra := c.RemoteMultiaddr(); !isCircuit(ra) {
					addrs = append(addrs, ra.Encapsulate(circuit))
				}
			}
		}
		addrs = ma.Unique(addrs)
		slices.SortFunc(addrs, ma.Multiaddr.Compare)
		out = append(out, Reservation{Relay: p, Addrs: addrs})
	}
	slices.SortFunc(out, func(a, b Reservation) int { return strings.Compare(string(a.Relay), string(b.Relay)) })
	return out
}

// peerPaths describes the connections to every connected peer.
func peerPaths(h host.Host) []PeerPath {
	var out []PeerPath
	for _, p := range h.Network().Peers() {
		pp := PeerPath{Peer: p}
		conns := h.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		allLimited := true
		var best network.Conn
		for _, c := range conns {
			st := c.Stat()
			if !st.Limited {
				allLimited = false
			}
			if id, ok := relayOf(c.RemoteMultiaddr()); ok {
				if !slices.Contains(pp.Relays, id) {
					pp.Relays = append(pp.Relays, id)
				}
				if best == nil {
					best = c
				}
				if st.Limited {
					if d, ok := st.Extra[client.StatLimitData].(uint64); ok {
						pp.LimitData = int64(d)
					}
					if d, ok := st.Extra[client.StatLimitDuration].(time.Duration); ok {
						pp.LimitDuration = d
					}
				}
				continue
			}
			pp.Direct = true
			if best == nil || isCircuit(best.RemoteMultiaddr()) {
				best = c
			}
		}
		pp.Limited = allLimited
		pp.Addr = best.RemoteMultiaddr()
		slices.SortFunc(pp.Relays, func(a, b peer.ID) int { return strings.Compare(string(a), string(b)) })
		out = append(out, pp)
	}
	slices.SortFunc(out, func(a, b PeerPath) int { return strings.Compare(string(a.Peer), string(b.Peer)) })
	return out
}

// String describes how the peer is connected, e.g. "direct
// /ip4/…/tcp/4001", "direct /ip4/…/tcp/4001 (and relayed via 12D3…abc)"
// after a hole punch, or "relayed via 12D3…abc (limited: 128 KiB, 2m0s;
// waits for a hole punch)".
func (p PeerPath) String() string {
	var b strings.Builder
	if p.Direct {
		b.WriteString("direct " + p.Addr.String())
		if len(p.Relays) > 0 {
			b.WriteString(" (and relayed via")
			for _, r := range p.Relays {
				b.WriteString(" " + r.String())
			}
			b.WriteString(")")
		}
		return b.String()
	}
	b.WriteString("relayed via")
	for _, r := range p.Relays {
		b.WriteString(" " + r.String())
	}
	if p.Limited {
		if p.LimitData > 0 || p.LimitDuration > 0 {
			fmt.Fprintf(&b, " (limited: %s, %v; waits for a hole punch)", sizeString(p.LimitData), p.LimitDuration)
		} else {
			b.WriteString(" (limited; waits for a hole punch)")
		}
	}
	return b.String()
}
