package node

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/ticket"
)

// relayOnlyGater lets a host link to the peers in blocked only through a
// relay: a direct dial to them, or a direct connection from them, is
// refused. Everyone else (the relay) is dialled and accepted as usual.
type relayOnlyGater struct{ blocked map[peer.ID]bool }

func (g relayOnlyGater) InterceptPeerDial(peer.ID) bool { return true }

func (g relayOnlyGater) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return !g.blocked[p] || isCircuit(a)
}

func (g relayOnlyGater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g relayOnlyGater) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return !g.blocked[p] || isCircuit(c.RemoteMultiaddr())
}

func (g relayOnlyGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// gatedNode starts a node on a host built with the node's own options
// (buildHost's) plus a relayOnlyGater that blocks direct links to the
// peers with the given keys.
func gatedNode(t *testing.T, cfg Config, key crypto.PrivKey, blocked ...crypto.PrivKey) *Node {
	t.Helper()
	return gatedNodeWith(t, cfg, key, nil, blocked...)
}

// gatedNodeWith is gatedNode with extra libp2p options after the node's.
func gatedNodeWith(t *testing.T, cfg Config, key crypto.PrivKey, extra []libp2p.Option, blocked ...crypto.PrivKey) *Node {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	g := relayOnlyGater{blocked: map[peer.ID]bool{}}
	for _, k := range blocked {
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		g.blocked[id] = true
	}
	opts, release, err := hostOptions(&cfg, key, nil, hostDeps{}) // the test's own gater instead
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(append(append(opts, extra...), libp2p.ConnectionGater(g))...)
	if err != nil {
		release()
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	cfg.Host = h
	return startNode(t, cfg)
}

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// waitReservation waits until n holds a relay reservation, or ctx ends.
// go-libp2p emits no event when a reservation is made on a relay without
// public addresses, so besides AutoRelay's address events this looks
// again every 50 ms.
func waitReservation(ctx context.Context, n *Node) (Reservation, error) {
	sub, err := n.Host().EventBus().Subscribe([]any{new(event.EvtLocalAddressesUpdated), new(event.EvtAutoRelayAddrsUpdated)})
	if err != nil {
		return Reservation{}, err
	}
	defer sub.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		r := n.Reachability()
		if len(r.Reservations) > 0 {
			return r.Reservations[0], nil
		}
		select {
		case <-sub.Out():
		case <-tick.C:
		case <-ctx.Done():
			return Reservation{}, fmt.Errorf("no relay reservation: reachability %s, addrs %v", r.State, n.Host().Addrs())
		}
	}
}

// TestRelayOnlyFetch: two peers that can link only to a relay (a gater on
// each refuses direct links to the other) still fetch from each other
// through it, on 127.0.0.1. go-libp2p's circuit v2 needs a transport
// network (client.AddTransport wants a transport.TransportNetwork), which
// mocknet is not, so this runs over real TCP on loopback.
func TestRelayOnlyFetch(t *testing.T) {
	t.Run("unlimited relay", func(t *testing.T) { testRelayOnlyFetch(t, RelayLimits{Unlimited: true}) })
	t.Run("limited relay", func(t *testing.T) { testRelayOnlyFetch(t, RelayLimits{}) })
}

func testRelayOnlyFetch(t *testing.T, limits RelayLimits) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	rcfg := testConfig(t)
	rcfg.NoDHT = true
	rcfg.RelayService = true
	rcfg.RelayLimits = limits
	relay := startNode(t, rcfg)
	if r := relay.Reachability(); r.RelayService == nil || *r.RelayService != limits.withDefaults() {
		t.Fatalf("relay reachability %+v: want a relay service with limits %+v", r, limits.withDefaults())
	}

	ka, kb := newKey(t), newKey(t)
	acfg := testConfig(t)
	acfg.NoDHT = true
	acfg.Relays = []string{relay.Addrs()[0].String()}
	// AutoNAT can't decide on loopback (no public address to dial back):
	// this peer says it is behind a NAT, and AutoRelay reserves a slot.
	acfg.ForceReachability = ReachPrivate
	a := gatedNode(t, acfg, ka, kb)
	rsv, err := waitReservation(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	ra := a.Reachability()
	if ra.State != ReachPrivate || !ra.Forced || len(ra.Reservations) != 1 || rsv.Relay != relay.ID() || len(rsv.Addrs) == 0 {
		t.Fatalf("sharer reachability %+v: want private (forced) with a reservation on the relay %s", ra, relay.ID())
	}

	bcfg := testConfig(t)
	bcfg.NoDHT = true
	bcfg.FindTimeout = 5 * time.Second
	b := gatedNode(t, bcfg, kb, ka)

	path, data := randomFile(t, t.TempDir(), "through-relay.bin", 3<<20, 7)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// AutoRelay publishes circuit addresses only for relays with public
	// addresses, so the node's own ticket has none here: this one names
	// the sharer by its reservation's circuit addresses alone.
	tk := ticket.Ticket{Root: sh.Root, Provider: peer.AddrInfo{ID: a.ID(), Addrs: rsv.Addrs}}
	target, err := ParseTarget(tk.String())
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "got.bin")
	start := time.Now()
	_, err = b.Fetch(ctx, target, dest, FetchOptions{})
	if !limits.Unlimited {
		t.Logf("fetch through a limited relay (%s): %v after %v", limits, err, time.Since(start).Round(time.Millisecond))
		t.Logf("fetcher sees %v", b.Reachability().Peers)
		if err == nil {
			t.Fatal("fetch through a relay with go-libp2p's default limits (128 KiB) succeeded")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)

	var path2 *PeerPath
	for _, p := range b.Reachability().Peers {
		if p.Peer == a.ID() {
			path2 = &p
		}
	}
	if path2 == nil || path2.Direct || len(path2.Relays) != 1 || path2.Relays[0] != relay.ID() || path2.Limited {
		t.Fatalf("fetcher's path to the sharer %+v: want relayed through %s, not limited", path2, relay.ID())
	}
	t.Logf("fetched %d bytes, %s", len(data), path2)
}

// TestReachDefaults: the relay and AutoNAT services are opt-in, and bad
// reachability settings are refused.
func TestReachDefaults(t *testing.T) {
	const hop, autonat = "/libp2p/circuit/relay/0.2.0/hop", "/libp2p/autonat/1.0.0"
	for _, tc := range []struct {
		name             string
		edit             func(*Config)
		wantHop, wantNAT bool
		wantRelayLimits  bool
		wantState        ReachState
	}{
		{"default", func(*Config) {}, false, false, false, ReachUnknown},
		{"autonat service", func(c *Config) { c.AutoNATService = true }, false, true, false, ReachUnknown},
		{"relay service", func(c *Config) { c.RelayService = true }, true, true, true, ReachUnknown},
		{"forced public", func(c *Config) { c.ForceReachability = ReachPublic }, false, false, false, ReachPublic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.NoDHT = true
			tc.edit(&cfg)
			n := startNode(t, cfg)
			protos := n.Host().Mux().Protocols()
			hasHop, hasNAT := false, false
			for _, p := range protos {
				hasHop = hasHop || p == hop
				hasNAT = hasNAT || p == autonat
			}
			if hasHop != tc.wantHop || hasNAT != tc.wantNAT {
				t.Errorf("relay hop served %v, AutoNAT served %v; want %v, %v", hasHop, hasNAT, tc.wantHop, tc.wantNAT)
			}
			r := n.Reachability()
			if (r.RelayService != nil) != tc.wantRelayLimits || r.State != tc.wantState || r.Forced != (tc.wantState != ReachUnknown) {
				t.Errorf("reachability %+v", r)
			}
			if len(r.PublicAddrs) != 0 || len(r.Reservations) != 0 {
				t.Errorf("a node on 127.0.0.1 with no relays: %+v", r)
			}
		})
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"bad relay", func(c *Config) { c.Relays = []string{"/ip4/192.0.2.1/tcp/1"} }, "relay address"},
		{"negative limit", func(c *Config) { c.RelayLimits.Data = -1 }, "relay limits"},
		{"bad reachability", func(c *Config) { c.ForceReachability = 7 }, "reachability"},
		{"announce with an ID", func(c *Config) {
			c.AnnounceAddrs = []string{"/ip4/192.0.2.1/tcp/1/p2p/12D3KooWEZ1kYJbuT58DWS7bWRvgMeZbyyRkrEexaSqUxjzLBLBQ"}
		}, "announce address"},
	} {
		cfg := testConfig(t)
		tc.edit(&cfg)
		if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: validate() = %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}

func TestReachHelpers(t *testing.T) {
	for _, s := range []string{"public", "private", "unknown"} {
		st, err := ParseReachState(s)
		if err != nil || st.String() != s {
			t.Errorf("ParseReachState(%q) = %v, %v", s, st, err)
		}
	}
	if st, err := ParseReachState("auto"); err != nil || st != ReachUnknown {
		t.Errorf("ParseReachState(auto) = %v, %v", st, err)
	}
	if _, err := ParseReachState("sometimes"); err == nil {
		t.Error("ParseReachState(sometimes): no error")
	}
	for _, tc := range []struct {
		l    RelayLimits
		want string
	}{
		{RelayLimits{}, "128 KiB and 2m0s per connection, 128 reservations, 16 circuits per peer"},
		{RelayLimits{Data: 64 << 20, Duration: time.Hour, Reservations: 4, Circuits: 2}, "64 MiB and 1h0m0s per connection, 4 reservations, 2 circuits per peer"},
		{RelayLimits{Unlimited: true, Data: 5}, "no limit per connection, 128 reservations, 16 circuits per peer"},
	} {
		if got := tc.l.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.l, got, tc.want)
		}
	}
	for _, tc := range []struct {
		addrs []string
		want  bool
	}{
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/0/quic-v1"}, true},
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip4/0.0.0.0/tcp/0"}, false},
		{[]string{"/ip4/10.0.0.2/tcp/0"}, false},
	} {
		var as []ma.Multiaddr
		for _, s := range tc.addrs {
			as = append(as, ma.StringCast(s))
		}
		if got := allLoopback(as); got != tc.want {
			t.Errorf("allLoopback(%v) = %v", tc.addrs, got)
		}
	}
	relay, _ := peer.Decode("12D3KooWEZ1kYJbuT58DWS7bWRvgMeZbyyRkrEexaSqUxjzLBLBQ")
	got, ok := relayOf(ma.StringCast("/ip4/192.0.0.129/tcp/4001/p2p/" + relay.String() + "/p2p-circuit"))
	if !ok || got != relay {
		t.Errorf("relayOf = %v, %v", got, ok)
	}
	if _, ok := relayOf(ma.StringCast("/ip4/192.0.0.129/tcp/4001/p2p/" + relay.String())); ok {
		t.Error("relayOf a direct address: ok")
	}
}

func TestReachStateJSON(t *testing.T) {
	b, err := json.Marshal(Reachability{State: ReachPrivate})
	if err != nil || !strings.Contains(string(b), `"State":"private"`) {
		t.Fatalf("%s, %v", b, err)
	}
	var r Reachability
	if err := json.Unmarshal(b, &r); err != nil || r.State != ReachPrivate {
		t.Fatalf("%+v, %v", r, err)
	}
}

// TestPunchRetryTransitions: which events make startPunchRetry dial
// limited peers again, and how rounds are spaced.
func TestPunchRetryTransitions(t *testing.T) {
	up := event.EvtLocalProtocolsUpdated{Added: []protocol.ID{holepunch.Protocol}}
	down := event.EvtLocalProtocolsUpdated{Removed: []protocol.ID{holepunch.Protocol}}
	addrs := func(s ...string) event.EvtLocalAddressesUpdated {
		var ev event.EvtLocalAddressesUpdated
		for _, a := range s {
			ev.Current = append(ev.Current, event.UpdatedAddress{Address: ma.StringCast(a)})
		}
		return ev
	}
	const pub1, pub2, lan = "/ip4/1.2.3.4/tcp/4001", "/ip4/5.6.7.8/udp/4001/quic-v1", "/ip4/10.0.0.2/tcp/4001"
	var r punchRetry
	for k, step := range []struct {
		ev   any
		want bool
	}{
		{addrs(pub1), false},       // no hole punching yet
		{up, true},                 // hole punching comes up
		{up, false},                // already up
		{addrs(pub1), false},       // had it
		{addrs(pub1, lan), false},  // a private address is no help
		{addrs(pub1, pub2), true},  // a new public address
		{addrs(pub2), false},       // one lost
		{addrs(pub2, pub1), true},  // back again: a new mapping
		{down, false},              // hole punching down
		{addrs(pub2, pub1), false}, // nothing new
		{up, true},                 // up again
		{addrs(pub1 + "/p2p/12D3KooWLx7EfAW98GzkkybVEVtLa8LGnLEezTb76rVdzYifHVa1/p2p-circuit"), false}, // relayed
	} {
		if got := r.event(step.ev); got != step.want {
			t.Fatalf("step %d (%+v): transition %v, want %v", k, step.ev, got, step.want)
		}
	}

	var g punchRetry
	if !g.transition() {
		t.Fatal("the first transition does not redial at once")
	}
	for range 2 {
		if g.transition() || !g.pending {
			t.Fatal("a transition inside the gap redials at once, or is not pending")
		}
	}
	if !g.gapEnded() {
		t.Fatal("the gap's end does not redial for the transitions pending")
	}
	if g.gapEnded() || g.gap {
		t.Fatal("a gap with nothing pending redials, or does not end")
	}
	if !g.transition() {
		t.Fatal("a transition after the gap does not redial at once")
	}
}

// TestPunchRetryGapTimer: the rounds of startPunchRetry are spaced by the
// gap's timer alone, whatever the node's clock says. With a Config.Now that
// does not follow the wall (here stopped), a transition inside the gap
// used to wait for that clock to pass the gap's end, for good: it never
// redialled.
func TestPunchRetryGapTimer(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		events := make(chan any)
		var rounds []time.Duration
		start := time.Now()
		done := make(chan struct{})
		up := event.EvtLocalProtocolsUpdated{Added: []protocol.ID{holepunch.Protocol}}
		addr := func(s string) event.EvtLocalAddressesUpdated {
			return event.EvtLocalAddressesUpdated{Current: []event.UpdatedAddress{{Address: ma.StringCast(s)}}}
		}
		r := punchRetry{}
		go func() {
			defer close(done)
			r.run(ctx, events, func() { rounds = append(rounds, time.Since(start)) })
		}()
		at := func(d time.Duration, e any) {
			time.Sleep(d - time.Since(start)) // virtual time
			events <- e
			synctest.Wait()
		}
		at(0, up)                                      // a round at once
		at(3*time.Second, addr("/ip4/1.2.3.4/tcp/1"))  // pending: one round at 10 s
		at(5*time.Second, addr("/ip4/1.2.3.5/tcp/1"))  // pending still
		at(25*time.Second, addr("/ip4/1.2.3.6/tcp/1")) // the gap ended at 20 s: at once
		time.Sleep(time.Minute)
		synctest.Wait()
		cancel()
		<-done
		want := []time.Duration{0, punchRetryGap, 25 * time.Second}
		if !slices.Equal(rounds, want) {
			t.Errorf("rounds at %v, want %v", rounds, want)
		}
	})
}
