package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	relayproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"

	"github.com/peer-project/peer/dht"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/swarm/bitswap"
	"github.com/peer-project/peer/swarm/wire"
)

// TestBootstrapEmptyUnlessPublic: a node knows no bootstrap peer unless
// it joins the public network, so a node run by hand (or any test) never
// dials the internet unasked; a public node joins through kad-dht's
// bootstrap peers, unless its Config names others, which replace them.
func TestBootstrapEmptyUnlessPublic(t *testing.T) {
	for _, c := range []Config{{}, DefaultConfig(), {Network: NetworkLocal}} {
		c = settled(t, c)
		boot, err := c.bootstrapPeers()
		if err != nil || len(boot) != 0 {
			t.Fatalf("network %s: bootstrap peers %v, %v; want none", c.Network, boot, err)
		}
		if d := c.dhtConfig(nil); d.Amino || len(d.Bootstrap) != 0 {
			t.Fatalf("network %s: DHT config %+v: want peer's own DHT and no bootstrap peer", c.Network, d)
		}
		if c.bitswap() {
			t.Fatalf("network %s: Bitswap on unasked", c.Network)
		}
	}
	pub := settled(t, Config{Network: NetworkPublic})
	boot, err := pub.bootstrapPeers()
	if err != nil || len(boot) == 0 || !reflect.DeepEqual(boot, dht.AminoBootstrapPeers()) {
		t.Fatalf("public: bootstrap peers %v, %v; want kad-dht's %v", boot, err, dht.AminoBootstrapPeers())
	}
	if d := pub.dhtConfig(nil); !d.Amino || len(d.Bootstrap) != len(boot) {
		t.Fatalf("public: DHT config %+v: want the Amino DHT through kad-dht's bootstrap peers", d)
	}
	if !pub.bitswap() {
		t.Fatal("public: Bitswap off; every IPFS node speaks it")
	}
	own := "/ip4/192.0.0.129/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	pub = settled(t, Config{Network: NetworkPublic, Bootstrap: []string{own}})
	if boot, _ := pub.bootstrapPeers(); len(boot) != 1 || boot[0].String() != "{12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf: [/ip4/192.0.0.129/tcp/4001]}" {
		t.Fatalf("public with its own bootstrap list: %v, want only %s", boot, own)
	}
}

// TestPublicRefused: what can't be public is refused, each with what to
// do.
func TestPublicRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		says string
	}{
		{"swarm key", Config{Network: NetworkPublic, SwarmKey: swarmKey(t)}, "private network (swarm key) can't join the public network: drop the swarm key"},
		{"no DHT", Config{Network: NetworkPublic, NoDHT: true}, "drop --dht off or --network public"},
		{"own prefix", Config{Network: NetworkPublic, DHTPrefix: "/peer"}, "the public network's DHT is /ipfs; leave the prefix empty"},
		{"unknown", Config{Network: Network(7)}, "unknown network 7"},
	} {
		tc.cfg.Home, tc.cfg.Logger = t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil))
		err := tc.cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want an error saying %q", tc.name, err, tc.says)
		}
	}
	if _, err := ParseNetwork("internet"); err == nil || !strings.Contains(err.Error(), "want local") {
		t.Errorf("ParseNetwork(internet): %v", err)
	}
}

// publicTestConfig is a public node on 127.0.0.1 whose DHT is a server
// and whose bootstrap list is boot (never the public one).
func publicTestConfig(t *testing.T, boot []string) Config {
	cfg := testConfig(t)
	cfg.Network = NetworkPublic
	cfg.DHTMode = DHTServer
	cfg.Bootstrap = boot
	return cfg
}

// unreachablePeer is a bootstrap address nothing answers on: port 9 of
// 127.0.0.1 refuses at once.
func unreachablePeer(t *testing.T) string {
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return "/ip4/127.0.0.1/tcp/9/p2p/" + id.String()
}

// TestPublicNode: two public nodes on loopback, each with the other as
// its bootstrap list, speak the Amino DHT's protocol (not peer's own) and
// AutoNAT v2; only the one with RelayService relays (no open relay
// unless asked), and the other finds it among its peers as a relay
// candidate. A root one shares, the other finds through the Amino DHT
// and fetches.
func TestPublicNode(t *testing.T) {
	a := startNode(t, publicTestConfig(t, []string{unreachablePeer(t)}))
	bcfg := publicTestConfig(t, bootstrapOf(a))
	bcfg.RelayService = true
	b := startNode(t, bcfg)

	has := func(n *Node, p protocol.ID) bool { return slices.Contains(n.Host().Mux().Protocols(), p) }
	for _, n := range []*Node{a, b} {
		if !has(n, dht.AminoProtocol) || has(n, dht.DefaultPrefix+"/kad/1.0.0") {
			t.Fatalf("%s speaks %v: want %s and not peer's own DHT", n.ID(), n.Host().Mux().Protocols(), dht.AminoProtocol)
		}
		if !has(n, "/libp2p/autonat/2/dial-request") {
			t.Fatalf("%s speaks %v: no AutoNAT v2", n.ID(), n.Host().Mux().Protocols())
		}
		if !has(n, bitswap.Protocols[0]) {
			t.Fatalf("%s speaks %v: no Bitswap, which every IPFS node speaks", n.ID(), n.Host().Mux().Protocols())
		}
	}
	if has(a, relayproto.ProtoIDv2Hop) {
		t.Fatal("a public node without RelayService relays for others")
	}
	if !has(b, relayproto.ProtoIDv2Hop) {
		t.Fatal("a public node with RelayService runs no relay")
	}

	// A's relay candidates: B, once identify has told A what B speaks.
	conns := a.Host().Network().ConnsToPeer(b.ID())
	if len(conns) == 0 {
		t.Fatal("B bootstrapped through A but A is not connected to it")
	}
	waitIdentified(t, a, conns)
	var cands []peer.ID
	for ai := range a.relays.find(context.Background(), 20) {
		cands = append(cands, ai.ID)
	}
	if !reflect.DeepEqual(cands, []peer.ID{b.ID()}) {
		t.Fatalf("A's relay candidates %v, want B (%s) only", cands, b.ID())
	}

	dir := t.TempDir()
	path, data := randomFile(t, dir, "public.bin", 1<<20, 3)
	sh, err := b.Share(context.Background(), path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := ParseTarget(sh.Root.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dest := filepath.Join(dir, "fetched.bin")
	if _, err := a.Fetch(ctx, target, dest, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)

	// The bytes by protocol: the exchange carried the file to A, the
	// Amino DHT its lookups.
	byProto := map[protocol.ID]ProtocolBytes{}
	for _, pb := range a.Metrics().Protocols {
		byProto[pb.Protocol] = pb
	}
	if x := byProto[wire.ProtocolID]; x.In < int64(len(data)) {
		t.Errorf("A's %s bytes in: %d, want at least the file's %d (all: %+v)", wire.ProtocolID, x.In, len(data), byProto)
	}
	if k := byProto[dht.AminoProtocol]; k.In == 0 || k.Out == 0 {
		t.Errorf("A's %s bytes: %+v, want some both ways", dht.AminoProtocol, k)
	}
}

// waitIdentified waits (at most 10 s) until identify has run on each of
// n's conns.
func waitIdentified(t *testing.T, n *Node, conns []network.Conn) {
	t.Helper()
	h, ok := n.Host().(interface{ IDService() identify.IDService })
	if !ok {
		t.Fatalf("host %T has no identify service", n.Host())
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for _, c := range conns {
		select {
		case <-h.IDService().IdentifyWait(c):
		case <-timeout.C:
			t.Fatalf("identify with %s did not end in 10 s", c.RemotePeer())
		}
	}
}

// TestExchangeVersionsShareBounds: a peer's serving streams on the two
// versions of the exchange protocol together are held to the per-peer
// bound of one (64), by the resource manager the node builds: each version
// has 64, and the service both join has 64 in all. Before, the service
// had the resource manager's default, 128 and more. Its memory per peer
// is still the default.
func TestExchangeVersionsShareBounds(t *testing.T) {
	limits := resourceLimits("")
	l := limits.ToPartialLimitConfig()
	if got, want := l.ServicePeer[swarm.ServiceName].Memory, l.ServicePeerDefault.Memory; got != want {
		t.Errorf("the exchange's service allows %v bytes per peer, want the default %v", got, want)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	p := peer.ID("a peer that opens sessions on both versions")
	open := func(proto protocol.ID) error {
		s, err := rm.OpenStream(p, network.DirInbound)
		if err != nil {
			return err
		}
		if err := s.SetProtocol(proto); err != nil {
			s.Done()
			return err
		}
		if err := s.SetService(swarm.ServiceName); err != nil {
			s.Done()
			return err
		}
		return nil
	}
	for i := range 64 {
		if err := open(swarm.Protocols()[i%2]); err != nil {
			t.Fatalf("serving stream %d refused: %v", i+1, err)
		}
	}
	for _, proto := range swarm.Protocols() {
		if err := open(proto); err == nil {
			t.Errorf("a 65th serving stream, on %s, was let in", proto)
		}
	}
}

// TestResourceLimitsDHTPrefix: the DHT protocol a node speaks has bounds
// of its own in the host the node builds, whatever its prefix: a node with
// --dht-prefix /x bounds /x/kad/1.0.0, not only the default protocols.
func TestResourceLimitsDHTPrefix(t *testing.T) {
	for _, prefix := range []string{"", "/x"} {
		cfg := testConfig(t)
		cfg.DHTPrefix = prefix
		n := startNode(t, cfg)
		p := n.DHTProtocol()
		if !strings.HasSuffix(string(p), "/kad/1.0.0") || (prefix != "" && !strings.HasPrefix(string(p), prefix+"/")) {
			t.Fatalf("prefix %q: DHT protocol %q", prefix, p)
		}
		var in, def int
		rm := n.Host().Network().ResourceManager()
		view := func(p protocol.ID, into *int) {
			err := rm.ViewProtocol(p, func(s network.ProtocolScope) error {
				l, ok := s.(rcmgr.ResourceScopeLimiter)
				if !ok {
					return fmt.Errorf("the scope of %s has no limit (%T)", p, s)
				}
				*into = l.Limit().GetStreamLimit(network.DirInbound)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		view(p, &in)
		view("/no/such/protocol/1.0.0", &def)
		if in < 256 || in >= def {
			t.Errorf("%s: %d inbound streams in all, want from 256 to under the default %d", p, in, def)
		}
	}
}

// TestResourceLimits: the DHT's protocol (the one the Config makes: the
// default, the public network's or a custom prefix's) and the relay's
// protocols have limits of their own, per peer too, not the resource manager's defaults for any
// protocol; a relay's per-peer room covers its circuits.
func TestResourceLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want protocol.ID
	}{
		{"default", Config{}, dht.DefaultPrefix + "/kad/1.0.0"},
		{"public", Config{Network: NetworkPublic}, dht.AminoProtocol},
		{"prefix /x", Config{DHTPrefix: "/x"}, "/x/kad/1.0.0"},
		{"no DHT", Config{NoDHT: true}, ""},
	} {
		p := tc.cfg.dhtProtocol()
		if p != tc.want {
			t.Errorf("%s: the DHT protocol is %q, want %q", tc.name, p, tc.want)
		}
		if p == "" {
			continue
		}
		l := resourceLimits(p).ToPartialLimitConfig()
		if got := l.ProtocolPeer[p].StreamsInbound; got != 16 {
			t.Errorf("%s: %v inbound streams per peer, want 16", p, got)
		}
		if got := l.Protocol[p].StreamsInbound; got < 256 || got >= l.ProtocolDefault.StreamsInbound {
			t.Errorf("%s: %v inbound streams in all, want from 256 to under the default %v", p, got, l.ProtocolDefault.StreamsInbound)
		}
	}
	l := resourceLimits("").ToPartialLimitConfig()
	for _, p := range []protocol.ID{relayproto.ProtoIDv2Hop, relayproto.ProtoIDv2Stop} {
		if got := l.ProtocolPeer[p].StreamsInbound; got != 64 {
			t.Errorf("%s: %v inbound streams per peer, want 64", p, got)
		}
		circuits := (RelayLimits{}).withDefaults().Circuits
		if got := l.ProtocolPeer[p].Memory; int64(got) < int64(circuits)*32<<10 {
			t.Errorf("%s: %v bytes per peer, under %d circuits' buffers", p, got, circuits)
		}
	}
	for _, p := range bitswap.Protocols {
		if got := l.ProtocolPeer[p].StreamsInbound; got != 8 {
			t.Errorf("%s: %v inbound streams per peer, want 8", p, got)
		}
		if got := l.ProtocolPeer[p].Memory; int64(got) < 2*network.MessageSizeMax {
			t.Errorf("%s: %v bytes per peer, under two messages of %d", p, got, network.MessageSizeMax)
		}
		if got := l.Protocol[p].StreamsInbound; got < 256 || got >= l.ProtocolDefault.StreamsInbound {
			t.Errorf("%s: %v inbound streams in all, want from 256 to under the default %v", p, got, l.ProtocolDefault.StreamsInbound)
		}
	}
}
