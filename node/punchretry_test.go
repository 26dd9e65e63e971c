package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

// natNode starts a node behind a NAT as a NAT is: its host listens on no
// address of its own (it is reached only through a relay it holds a
// reservation on) and refuses direct links with the peers of blocked.
//
// A gater alone (gatedNode) is not a NAT to a peer without a gater of its
// own: it refuses a connection only once the security handshake names the
// peer (go-libp2p's upgrader, InterceptSecured), and by then the dialler's
// side of the handshake has finished (TLS 1.3 and Noise XX end with the
// dialler's flight). The dialler's swarm takes the direct dial as a
// success, cancels the relay dial it runs beside a loopback address, and
// is left with nothing when the connection is closed a moment later. A
// real NAT makes the direct dial fail, and the relay dial wins.
func natNode(t *testing.T, cfg Config, key crypto.PrivKey, blocked ...crypto.PrivKey) *Node {
	t.Helper()
	n := gatedNodeWith(t, cfg, key, []libp2p.Option{libp2p.NoListenAddrs}, blocked...)
	for _, a := range n.Host().Addrs() {
		if !isCircuit(a) {
			t.Fatalf("a node behind the test's NAT has the direct address %s", a)
		}
	}
	return n
}

// connWatch records the connections a host opens and closes to one peer.
// Safe for concurrent use.
type connWatch struct {
	peer    peer.ID
	changed chan struct{} // a value after each change; cap 1

	mu     sync.Mutex
	open   []network.Conn // in the order they came
	closed map[network.Conn]bool
	direct []ma.Multiaddr // remote addresses of direct connections
}

// watchConns records h's connections to p until the test ends.
func watchConns(t *testing.T, h host.Host, p peer.ID) *connWatch {
	w := &connWatch{peer: p, changed: make(chan struct{}, 1), closed: map[network.Conn]bool{}}
	nb := &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if c.RemotePeer() != p {
				return
			}
			w.mu.Lock()
			w.open = append(w.open, c)
			if !isCircuit(c.RemoteMultiaddr()) {
				w.direct = append(w.direct, c.RemoteMultiaddr())
			}
			w.mu.Unlock()
			w.signal()
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			if c.RemotePeer() != p {
				return
			}
			w.mu.Lock()
			w.open = slices.DeleteFunc(w.open, func(o network.Conn) bool { return o == c })
			w.closed[c] = true
			w.mu.Unlock()
			w.signal()
		},
	}
	h.Network().Notify(nb)
	t.Cleanup(func() { h.Network().StopNotify(nb) })
	return w
}

func (w *connWatch) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// replaced waits until old is closed and one limited connection other
// than old is open, and returns that one; it fails the test if that does
// not happen within the given time.
func (w *connWatch) replaced(t *testing.T, what string, old network.Conn, within time.Duration) network.Conn {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		w.mu.Lock()
		gone, open := w.closed[old], slices.Clone(w.open)
		w.mu.Unlock()
		if gone && len(open) == 1 && open[0] != old && open[0].Stat().Limited {
			return open[0]
		}
		select {
		case <-w.changed:
		case <-timer.C:
			t.Fatalf("%s: in %v the connection %s was closed %v and the connections open are %v, want one limited connection other than it", what, within, old.ID(), gone, open)
		}
	}
}

// directAddrs returns the remote addresses of the direct connections seen.
func (w *connWatch) directAddrs() []ma.Multiaddr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.direct)
}

// TestPunchRetryEveryTransition: a public node reaches a peer behind a NAT
// only over a limited relayed connection (127.0.0.1, a relay with
// go-libp2p's default limits). Each time the node becomes able to
// hole-punch, or gains a public address, it closes that connection and
// dials again through the relay, so that the peer punches again with what
// the node has now: once when its hole-punch service comes up, and again
// when, later, a public address appears (a first punch that failed for
// want of one would otherwise never be retried). The transitions are
// events on the node's bus, as go-libp2p emits them; no packet leaves
// loopback. The test waits on connection events only: the second round
// comes at the end of the first one's gap (punchRetryGap), which
// TestPunchRetryGapTimer checks in virtual time.
func TestPunchRetryEveryTransition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rcfg := testConfig(t)
	rcfg.NoDHT = true
	rcfg.RelayService = true
	relay := startNode(t, rcfg)

	// The public node builds its own host (punch retry runs only then),
	// with the key written to its home so that the sharer can refuse it.
	ka, kb := newKey(t), newKey(t)
	bcfg := publicTestConfig(t, []string{unreachablePeer(t)})
	kbBytes, err := crypto.MarshalPrivateKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bcfg.Home, keyFile), kbBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	acfg := testConfig(t)
	acfg.NoDHT = true
	acfg.Relays = []string{relay.Addrs()[0].String()}
	acfg.ForceReachability = ReachPrivate
	a := natNode(t, acfg, ka, kb)
	rsv, err := waitReservation(ctx, a)
	if err != nil {
		t.Fatal(err)
	}

	b := startNode(t, bcfg)
	bh := b.Host()
	if id, _ := peer.IDFromPrivateKey(kb); bh.ID() != id {
		t.Fatal("the public node does not have the identity written to its home")
	}
	w := watchConns(t, bh, a.ID())
	// On loopback the relay has no public address, so the sharer's signed
	// record names no circuit address: the node keeps the reservation's,
	// as a peer it found through the DHT would have them from the record.
	bh.Peerstore().AddAddrs(a.ID(), rsv.Addrs, peerstore.PermanentAddrTTL)
	if err := bh.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: rsv.Addrs}); err != nil {
		t.Fatal(err)
	}
	conns := bh.Network().ConnsToPeer(a.ID())
	if len(conns) != 1 || !conns[0].Stat().Limited {
		t.Fatalf("the public node reaches the sharer over %v (%v), want one limited relayed connection", conns, bh.Network().Connectedness(a.ID()))
	}
	for _, addr := range bh.Peerstore().Addrs(a.ID()) {
		if !isCircuit(addr) {
			t.Fatalf("the public node knows the direct address %s of a sharer behind a NAT", addr)
		}
	}

	protos, err := bh.EventBus().Emitter(new(event.EvtLocalProtocolsUpdated))
	if err != nil {
		t.Fatal(err)
	}
	defer protos.Close()
	addrs, err := bh.EventBus().Emitter(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		t.Fatal(err)
	}
	defer addrs.Close()

	start := time.Now()
	if err := protos.Emit(event.EvtLocalProtocolsUpdated{Added: []protocol.ID{holepunch.Protocol}}); err != nil {
		t.Fatal(err)
	}
	first := w.replaced(t, "hole punching up", conns[0], 10*time.Second)
	t.Logf("hole punching up: %s closed, %s dialled through the relay after %v", conns[0].ID(), first.ID(), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	public := ma.StringCast("/ip4/1.2.3.4/tcp/4001")
	if err := addrs.Emit(event.EvtLocalAddressesUpdated{Current: []event.UpdatedAddress{{Address: public, Action: event.Added}}}); err != nil {
		t.Fatal(err)
	}
	second := w.replaced(t, "a public address gained", first, punchRetryGap+10*time.Second)
	t.Logf("a public address gained: %s closed, %s dialled through the relay after %v (rounds at least %v apart)", first.ID(), second.ID(), time.Since(start).Round(time.Millisecond), punchRetryGap)

	if d := w.directAddrs(); len(d) > 0 {
		t.Fatalf("the public node had direct connections to a sharer behind a NAT: %v", d)
	}
	if got := bh.Network().Connectedness(a.ID()); got != network.Limited {
		t.Fatalf("after two rounds the public node reaches the sharer %v, want limited", got)
	}
}
