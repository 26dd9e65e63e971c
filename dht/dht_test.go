package dht

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/peer-project/peer/integrity"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// libp2p's and kad-dht's own background workers that outlive Close
		// by design (shared caches, the identify service's GC).
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p-kad-dht/internal/net.(*peerMessageSender).ctxReadMsg"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
		libp2p.ResourceManager(nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newDHT(t *testing.T, h host.Host, boot ...host.Host) *DHT {
	t.Helper()
	var bs []peer.AddrInfo
	for _, b := range boot {
		bs = append(bs, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
	}
	d, err := New(h, Config{Bootstrap: bs, NoAutoRefresh: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFindProviderThroughBootstrap: C knows only B; A provides a root; C
// finds A through the DHT.
func TestFindProviderThroughBootstrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ha, hb, hc := newHost(t), newHost(t), newHost(t)
	defer ha.Close()
	defer hb.Close()
	defer hc.Close()
	da, db, dc := newDHT(t, ha, hb), newDHT(t, hb), newDHT(t, hc, hb)
	defer da.Close()
	defer db.Close()
	defer dc.Close()
	for _, d := range []*DHT{db, da, dc} {
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	root := integrity.Block([]byte("a manifest"))
	if err := da.Provide(ctx, root); err != nil {
		t.Fatal(err)
	}
	if got := da.Providing(); len(got) != 1 || !got[0].Equals(root) {
		t.Fatalf("Providing = %v", got)
	}
	var found []peer.ID
	for ai := range dc.FindProviders(ctx, root, 0) {
		found = append(found, ai.ID)
	}
	if len(found) != 1 || found[0] != ha.ID() {
		t.Fatalf("C found providers %v, want only A (%s)", found, ha.ID())
	}
	if err := hc.Connect(ctx, peer.AddrInfo{ID: ha.ID()}); err != nil {
		t.Fatalf("C cannot dial A with the addresses the lookup gave: %v", err)
	}
	// A root nobody provides: TestFlashCrowdLookups (virtual time: the
	// lookup retries for 7.75 s before it gives up).
	da.StopProviding(root)
	if len(da.Providing()) != 0 {
		t.Fatal("StopProviding left the root")
	}
}

func TestClosed(t *testing.T) {
	h := newHost(t)
	defer h.Close()
	d := newDHT(t, h)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := d.Provide(context.Background(), integrity.Block(nil)); err != ErrClosed {
		t.Fatalf("Provide after Close = %v, want ErrClosed", err)
	}
	if _, ok := <-d.FindProviders(context.Background(), integrity.Block(nil), 1); ok {
		t.Fatal("FindProviders after Close sent something")
	}
}

func TestBootstrapUnreachable(t *testing.T) {
	h := newHost(t)
	defer h.Close()
	other := newHost(t)
	info := peer.AddrInfo{ID: other.ID(), Addrs: other.Addrs()}
	other.Close()
	d, err := New(h, Config{Bootstrap: []peer.AddrInfo{info}, NoAutoRefresh: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Bootstrap(ctx); err == nil {
		t.Fatal("Bootstrap with only a dead peer succeeded")
	}
}

func TestConfig(t *testing.T) {
	for _, s := range []string{"server", "client", "auto"} {
		m, err := ParseMode(s)
		if err != nil || m.String() != s {
			t.Fatalf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("turbo"); err == nil {
		t.Fatal("ParseMode(turbo) succeeded")
	}
	c := Config{ReprovideInterval: time.Hour, ProvideValidity: time.Minute}
	if err := c.fill(); err == nil {
		t.Fatal("reprovide interval longer than validity accepted")
	}
}

func TestShouldRunMDNS(t *testing.T) {
	loop := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1"), ma.StringCast("/ip6/::1/udp/1/quic-v1")}
	if ShouldRunMDNS(loop) {
		t.Fatal("mDNS on for loopback-only addresses")
	}
	if !ShouldRunMDNS(append(loop, ma.StringCast("/ip4/0.0.0.0/tcp/4001"))) {
		t.Fatal("mDNS off for a node listening on every interface")
	}
}
