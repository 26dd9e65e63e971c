package main

// The small internet: peer daemons with --network public in network
// namespaces that the test makes, none linked to a real interface.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/internal/netns"
	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/swarm/wire"
)

// nsPeer runs one peer command inside namespace ns (at most a minute) and
// fails the test unless it succeeds.
func nsPeer(t *testing.T, lab *netns.Lab, ns string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, peerBin(t)}, args...)...)
	cmd.Env = cleanEnv()
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("peer %s in %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), ns, err, out, errb.String())
	}
	return string(out)
}

// nsDaemon starts `peer daemon` on home inside namespace ns and waits for
// its first line.
func nsDaemon(t *testing.T, lab *netns.Lab, ns, home string, args ...string) *daemonProc {
	t.Helper()
	args = append([]string{"daemon", "--home", home, "--json", "--no-mdns", "--gateway", "off", "--log-level", "warn"}, args...)
	p := startCmd(t, lab.Command(ns, peerBin(t), args...))
	l, ok := p.line(t, 30*time.Second)
	if !ok {
		<-p.done
		t.Fatalf("daemon in %s exited: %v\n%s", ns, p.err, p.stderr)
	}
	d := &daemonProc{proc: p, home: home}
	if err := json.Unmarshal([]byte(l), &d.info); err != nil {
		t.Fatalf("daemon's first line %q: %v", l, err)
	}
	return d
}

func nsStatus(t *testing.T, lab *netns.Lab, ns, home string) daemon.StatusInfo {
	t.Helper()
	var st daemon.StatusInfo
	if err := json.Unmarshal([]byte(nsPeer(t, lab, ns, "status", "--home", home, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSmallInternet: three public peer daemons (--network public, a DHT
// server and a relay each, the bootstrap list replaced by the three of
// them) on an "internet" bridge whose addresses look public, and two
// homes, each behind its own NAT: Linux masquerade, which keeps a host's
// port outside whatever the destination (endpoint-independent mapping)
// and lets in only replies to what the host sent (port-restricted cone):
// a hole punch can open it. One home shares a file as soon as its daemon
// is up; at once the other runs `peer get ROOT` with no address, ticket or
// relay named (the README's two commands). The fetcher finds the sharer in
// the DHT, reaches it through the relay the sharer took a reservation on
// once AutoNAT found it private, and the hole punch (DCUtR) gives the
// direct connection the bytes come over: a relay's default limits (128 KiB, 2 minutes) make relayed
// connections "limited", on which the exchange opens no stream, and the
// relays' own counters show they carried almost nothing.
func TestSmallInternet(t *testing.T) { smallInternet(t, false) }

// TestSmallInternetSymmetricNAT: the small internet with the sharer's home
// behind a symmetric NAT (masquerade --random-fully: a new outside port
// for each destination, which a hole punch cannot guess) and public nodes
// that relay without limits (--relay-unlimited). `peer get ROOT` in the
// other home still completes, through a relay: the fetcher's path to the
// sharer is relayed, never direct, and the relays' circuit streams carry
// at least the file.
func TestSmallInternetSymmetricNAT(t *testing.T) { smallInternet(t, true) }

// smallInternet runs TestSmallInternet, with the sharer behind a
// symmetric NAT and unlimited relays if symmetric.
func smallInternet(t *testing.T, symmetric bool) {
	if testing.Short() {
		t.Skip("the small internet runs five daemons in network namespaces")
	}
	netns.Require(t)
	peerBin(t) // built before the clock starts
	start := time.Now()
	phase := start
	took := func() time.Duration {
		d := time.Since(phase).Round(time.Millisecond)
		phase = time.Now()
		return d
	}
	lab := netns.New(t)
	nats := [2]netns.NATKind{netns.ConeNAT, netns.ConeNAT} // fetcher, sharer
	relayArgs := []string{"--relay-service"}
	if symmetric {
		nats[1] = netns.SymmetricNAT
		relayArgs = append(relayArgs, "--relay-unlimited")
	}
	top := lab.TwoNATs(nats)
	boot, public := startPublicNodes(t, lab, top, relayArgs)
	t.Logf("3 public nodes up in %v: %v", took(), boot)
	bootFlags := func() []string {
		var out []string
		for _, b := range boot {
			out = append(out, "--bootstrap", b)
		}
		return out
	}
	listenOn := func(ip string) []string {
		return []string{"--listen", "/ip4/" + ip + "/tcp/4001", "--listen", "/ip4/" + ip + "/udp/4001/quic-v1"}
	}

	homeArgs := append(append(listenOn("0.0.0.0"), "--network", "public"), bootFlags()...)
	sharer := nsDaemon(t, lab, top.Sites[1].NS, t.TempDir(), homeArgs...)
	fetcher := nsDaemon(t, lab, top.Sites[0].NS, t.TempDir(), homeArgs...)
	t.Logf("2 homes up in %v: sharer %s behind a %s, fetcher %s behind a %s", took(), sharer.info.ID, nats[1], fetcher.info.ID, nats[0])

	dir := t.TempDir()
	src := filepath.Join(dir, "across.bin")
	data := randomBytes(4<<20, 18)
	writeFile(t, src, data)
	var sh daemon.ShareInfo
	if err := json.Unmarshal([]byte(nsPeer(t, lab, top.Sites[1].NS, "share", "--home", sharer.home, "--json", src)), &sh); err != nil {
		t.Fatal(err)
	}
	t.Logf("shared %s (%d bytes) in %v", sh.Root, len(data), took())

	// No ticket, no address, no relay: the root only, at once. The get
	// waits while the sharer learns it is behind a NAT (AutoNAT) and takes
	// a reservation on a relay; the DHT then hands out its relay address.
	dest := filepath.Join(t.TempDir(), "across.bin")
	res := lastDone(t, nsPeer(t, lab, top.Sites[0].NS, "get", "--home", fetcher.home, "--json", "-o", dest, sh.Root))
	getTook := took()
	sameTree(t, filepath.Dir(dest), map[string][]byte{"across.bin": data})
	if res.FromPeers[sharer.info.ID] != int64(len(data)) {
		t.Fatalf("bytes by peer %v: want all %d from the sharer %s", res.FromPeers, len(data), sharer.info.ID)
	}

	// By now the sharer holds a reservation on a relay it found among its
	// peers (AutoNAT found it private), and its addresses, which the DHT
	// servers hand out with its record, carry the circuit address.
	st := nsStatus(t, lab, top.Sites[1].NS, sharer.home)
	if len(st.Reachability.Reservations) == 0 || !slices.ContainsFunc(st.Addrs, func(a string) bool { return strings.Contains(a, "/p2p-circuit") }) {
		t.Fatalf("the sharer has no relay address: reachability %+v, addrs %v", st.Reachability, st.Addrs)
	}
	if st.Network != "public" || st.DHTProtocol != "/ipfs/kad/1.0.0" || st.BootstrapPeers != 3 {
		t.Fatalf("sharer's status: network %q, DHT %q, %d bootstrap peers", st.Network, st.DHTProtocol, st.BootstrapPeers)
	}
	t.Logf("peer status of the sharer:\n%s", nsPeer(t, lab, top.Sites[1].NS, "status", "--home", sharer.home))
	// Its tickets carry the relay address now, as it is not reachable.
	var shares []daemon.ShareInfo
	if err := json.Unmarshal([]byte(nsPeer(t, lab, top.Sites[1].NS, "ls", "--home", sharer.home, "--json")), &shares); err != nil {
		t.Fatal(err)
	}
	if len(shares) != 1 {
		t.Fatalf("the sharer lists %d shares, want 1", len(shares))
	}
	tk, err := node.ParseTarget(shares[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tk.Hint.Addrs, func(a ma.Multiaddr) bool { return strings.Contains(a.String(), "/p2p-circuit") }) {
		t.Fatalf("the sharer's ticket has no relay address: %v", tk.Hint.Addrs)
	}

	// Which path: the fetcher's connection to the sharer is direct (the
	// hole punch's), beside the relayed one it came through first; or,
	// past a symmetric NAT, relayed only.
	var peers []daemon.PeerInfo
	if err := json.Unmarshal([]byte(nsPeer(t, lab, top.Sites[0].NS, "peers", "--home", fetcher.home, "--json")), &peers); err != nil {
		t.Fatal(err)
	}
	var path *daemon.PeerInfo
	for i := range peers {
		if peers[i].ID == sharer.info.ID {
			path = &peers[i]
		}
	}
	if symmetric {
		smallInternetRelayed(t, lab, top, public, path, fetcher, len(data), getTook, res.Seconds)
		return
	}
	if path == nil || !path.Direct {
		t.Fatalf("the fetcher's path to the sharer: %+v; want a direct connection", path)
	}
	t.Logf("fetched %d bytes in %v (the get itself %.2f s): fetcher's path to the sharer: %s", len(data), getTook, res.Seconds, path.Path)
	if !strings.Contains(path.Path, "192.0.0.131") {
		t.Errorf("the direct path %q is not to the sharer's NAT (192.0.0.131): no hole punch?", path.Path)
	}

	// Bytes by protocol: the exchange carried the file into the fetcher;
	// the relays carried a handshake's worth over circuit streams.
	fst := nsStatus(t, lab, top.Sites[0].NS, fetcher.home)
	var xferIn int64
	for _, pb := range fst.Protocols {
		if pb.Protocol == wire.ProtocolID {
			xferIn = pb.In
		}
	}
	if xferIn < int64(len(data)) {
		t.Errorf("the fetcher's %s bytes in: %d, want at least %d (%+v)", wire.ProtocolID, xferIn, len(data), fst.Protocols)
	}
	var relayed int64
	for i, p := range public {
		for _, pb := range nsStatus(t, lab, top.Public, p.home).Protocols {
			if strings.HasPrefix(pb.Protocol, "/libp2p/circuit/relay/") {
				relayed += pb.In + pb.Out
				t.Logf("public node %d: %s in %d, out %d", i, pb.Protocol, pb.In, pb.Out)
			}
		}
	}
	t.Logf("fetcher: %d bytes in over %s; relays: %d bytes over circuit streams in all", xferIn, wire.ProtocolID, relayed)
	if relayed >= int64(len(data))/4 {
		t.Errorf("the relays carried %d bytes: the file went through them", relayed)
	}
	t.Logf("peer status of the fetcher:\n%s", nsPeer(t, lab, top.Sites[0].NS, "status", "--home", fetcher.home))

	// The README's command as it stands, with no daemon: the fetcher's
	// daemon stops (so its copy is not on the home network), and a node in
	// the foreground in that home fetches from the sharer across the NATs.
	fetcher.stop(t)
	took()
	dest2 := filepath.Join(t.TempDir(), "again.bin")
	fg := append(append([]string{"get", "--home", t.TempDir(), "--json", "--no-mdns", "--network", "public",
		"--listen", "/ip4/0.0.0.0/tcp/0", "--listen", "/ip4/0.0.0.0/udp/0/quic-v1"}, bootFlags()...), "-o", dest2, sh.Root)
	res = lastDone(t, nsPeer(t, lab, top.Sites[0].NS, fg...))
	sameTree(t, filepath.Dir(dest2), map[string][]byte{"again.bin": data})
	if res.FromPeers[sharer.info.ID] != int64(len(data)) {
		t.Fatalf("foreground get: bytes by peer %v, want all %d from the sharer %s", res.FromPeers, len(data), sharer.info.ID)
	}
	t.Logf("peer get --network public ROOT in the foreground: %d bytes from the sharer in %v", len(data), took())
	t.Logf("small internet: %v in all", time.Since(start).Round(time.Millisecond))
}

// TestPublicRefusesSwarmKey: a private network can't be public; the
// daemon says so before it starts anything.
func TestPublicRefusesSwarmKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "net.key")
	writeSwarmKey(t, key, 0o600)
	fails(t, "can't join the public network", "daemon", "--home", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns",
		"--network", "public", "--swarm-key", key)
}

// smallInternetRelayed checks where the bytes of the symmetric-NAT small
// internet went: the fetcher reaches the sharer only through a relay, not
// limited, and the relays' circuit streams carried at least the file.
func smallInternetRelayed(t *testing.T, lab *netns.Lab, top netns.Topology, public []*daemonProc, path *daemon.PeerInfo, fetcher *daemonProc, size int, getTook time.Duration, getSeconds float64) {
	t.Helper()
	if path == nil || path.Direct || len(path.Relays) == 0 || path.Limited {
		t.Fatalf("the fetcher's path to the sharer past a symmetric NAT: %+v; want relayed, not limited", path)
	}
	t.Logf("fetched %d bytes in %v (the get itself %.2f s): fetcher's path to the sharer: %s", size, getTook, getSeconds, path.Path)
	fst := nsStatus(t, lab, top.Sites[0].NS, fetcher.home)
	var xferIn int64
	for _, pb := range fst.Protocols {
		if pb.Protocol == wire.ProtocolID {
			xferIn = pb.In
		}
	}
	var relayed int64
	for i, p := range public {
		for _, pb := range nsStatus(t, lab, top.Public, p.home).Protocols {
			if strings.HasPrefix(pb.Protocol, "/libp2p/circuit/relay/") {
				relayed += pb.In + pb.Out
				t.Logf("public node %d: %s in %d, out %d", i, pb.Protocol, pb.In, pb.Out)
			}
		}
	}
	t.Logf("fetcher: %d bytes in over %s; relays: %d bytes over circuit streams in all", xferIn, wire.ProtocolID, relayed)
	if xferIn < int64(size) || relayed < int64(size) {
		t.Fatalf("the fetcher took %d bytes over %s and the relays carried %d: want at least the file's %d each", xferIn, wire.ProtocolID, relayed, size)
	}
	t.Logf("peer status of the fetcher:\n%s", nsPeer(t, lab, top.Sites[0].NS, "status", "--home", fetcher.home))
}

// startPublicNodes starts the small internet's three public peer daemons
// on top's bridge (--network public, DHT servers, with relayArgs), each
// with the three of them as its bootstrap list, which it returns.
func startPublicNodes(t *testing.T, lab *netns.Lab, top netns.Topology, relayArgs []string) ([]string, []*daemonProc) {
	t.Helper()
	// Two more public addresses on the bridge, for three public nodes.
	publicIPs := []string{top.PublicIP, "192.0.0.132", "192.0.0.133"}
	for _, ip := range publicIPs[1:] {
		lab.Run(top.Public, "ip", "addr", "add", ip+"/26", "dev", "br0")
	}
	// The small internet's bootstrap list: the public nodes, whose IDs
	// `peer id` makes before they start.
	var boot, bootFlags []string
	homes := make([]string, len(publicIPs))
	for i, ip := range publicIPs {
		homes[i] = t.TempDir()
		id := strings.TrimSpace(nsPeer(t, lab, top.Public, "id", "--home", homes[i]))
		boot = append(boot, fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", ip, id))
		bootFlags = append(bootFlags, "--bootstrap", boot[i])
	}
	public := make([]*daemonProc, len(publicIPs))
	for i, ip := range publicIPs {
		args := []string{"--listen", "/ip4/" + ip + "/tcp/4001", "--listen", "/ip4/" + ip + "/udp/4001/quic-v1", "--network", "public", "--dht", "server"}
		public[i] = nsDaemon(t, lab, top.Public, homes[i], append(append(args, relayArgs...), bootFlags...)...)
	}
	return boot, public
}

// TestSmallInternetBitswapProvider: an IPFS node (kad-dht with the /ipfs
// prefix, boxo's Bitswap: what Kubo is made of, run by the test binary as
// a child) on a public address of the small internet provides a root in
// the DHT of the three public peer daemons; `peer get --network public
// ROOT` in a home behind a NAT, told nothing but the bootstrap list, finds
// it through the DHT and fetches every byte from it over Bitswap.
func TestSmallInternetBitswapProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("the small internet runs daemons in network namespaces")
	}
	netns.Require(t)
	peerBin(t)
	start := time.Now()
	lab := netns.New(t)
	top := lab.TwoNATs([2]netns.NATKind{netns.ConeNAT, netns.ConeNAT})
	boot, _ := startPublicNodes(t, lab, top, []string{"--relay-service"})
	t.Logf("3 public nodes up in %v", time.Since(start).Round(time.Millisecond))

	const ipfsIP, size = "192.0.0.134", 5<<20 + 4321
	lab.Run(top.Public, "ip", "addr", "add", ipfsIP+"/26", "dev", "br0")
	spec, err := json.Marshal(ipfsChildSpec{Listen: "/ip4/" + ipfsIP + "/tcp/4001", Bootstrap: boot, Size: size, Seed: 61})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := startCmd(t, lab.Command(top.Public, "env", ipfsChildEnv+"="+string(spec), exe, "-test.run=^$"))
	t.Cleanup(func() { child.stop(t) })
	l, ok := child.line(t, time.Minute)
	if !ok || strings.HasPrefix(l, "ERR") {
		<-child.done
		t.Fatalf("the IPFS node: %q, %v\n%s", l, child.err, child.stderr)
	}
	var ipfs struct{ ID, Root string }
	if err := json.Unmarshal([]byte(l), &ipfs); err != nil {
		t.Fatalf("the IPFS node's line %q: %v", l, err)
	}
	t.Logf("the IPFS node %s on %s provides %s (%v)", ipfs.ID, ipfsIP, ipfs.Root, time.Since(start).Round(time.Millisecond))

	get := []string{"get", "--home", t.TempDir(), "--json", "--no-mdns", "--network", "public",
		"--listen", "/ip4/0.0.0.0/tcp/0", "--listen", "/ip4/0.0.0.0/udp/0/quic-v1"}
	for _, b := range boot {
		get = append(get, "--bootstrap", b)
	}
	dest := filepath.Join(t.TempDir(), "from-ipfs.bin")
	getStart := time.Now()
	res := lastDone(t, nsPeer(t, lab, top.Sites[0].NS, append(get, "-o", dest, ipfs.Root)...))
	sameTree(t, filepath.Dir(dest), map[string][]byte{"from-ipfs.bin": randomBytes(size, 61)})
	if res.FromPeers[ipfs.ID] != size {
		t.Fatalf("bytes by peer %v: want all %d from the IPFS node %s", res.FromPeers, size, ipfs.ID)
	}
	t.Logf("peer get --network public ROOT behind a NAT: %d bytes from the IPFS node over Bitswap in %v (the get %.2f s); %v in all",
		size, time.Since(getStart).Round(time.Millisecond), res.Seconds, time.Since(start).Round(time.Millisecond))
}
