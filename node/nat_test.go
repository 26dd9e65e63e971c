package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/internal/netns"
)

// reachRoleEnv makes the test binary a node of TestNATTraversal inside a
// network namespace; reachConfigEnv carries its reachChildConfig as JSON.
const (
	reachRoleEnv   = "PEER_REACH_ROLE"
	reachConfigEnv = "PEER_REACH_CONFIG"
)

// reachChildConfig is what a child node is told by the test.
type reachChildConfig struct {
	Home         string
	Listen       []string
	Relays       []string
	RelayService bool
	RelayLimits  RelayLimits
	FindTimeout  time.Duration
	Announce     []string
}

// reachChildMain runs this process as a child node of TestNATTraversal
// when PEER_REACH_ROLE is set, and exits; otherwise it returns. TestMain
// calls it first.
func reachChildMain() {
	role := os.Getenv(reachRoleEnv)
	if role == "" {
		return
	}
	if err := runReachChild(role); err != nil {
		fmt.Fprintf(os.Stderr, "reach child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// reachReport is a child's answer about its node's reachability.
type reachReport struct {
	State        string
	Reservations []string
	Addrs        []string
	Peers        map[string]string // peer ID to PeerPath.String
	Direct       map[string]bool
}

func reportOf(n *Node) reachReport {
	r := n.Reachability()
	rep := reachReport{State: r.State.String(), Peers: map[string]string{}, Direct: map[string]bool{}}
	for _, res := range r.Reservations {
		rep.Reservations = append(rep.Reservations, res.Relay.String())
	}
	for _, a := range n.Addrs() {
		rep.Addrs = append(rep.Addrs, a.String())
	}
	for _, p := range r.Peers {
		rep.Peers[p.Peer.String()] = p.String()
		rep.Direct[p.Peer.String()] = p.Direct
	}
	return rep
}

// runReachChild starts a node as the config in PEER_REACH_CONFIG says,
// prints "ID <peer ID>", then answers commands read from stdin, one line
// each, with "OK <result>" or "ERR <message>":
//
//	reserve SECONDS          wait for a relay reservation; OK reachReport
//	state STATE SECONDS      wait until AutoNAT says STATE; OK reachReport
//	share PATH               OK ticket
//	fetch TICKET DEST SECS   OK reachReport after the fetch
//	reach                    OK reachReport
//
// It ends when stdin does.
func runReachChild(role string) error {
	var cc reachChildConfig
	if err := json.Unmarshal([]byte(os.Getenv(reachConfigEnv)), &cc); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg := DefaultConfig()
	cfg.Home = cc.Home
	cfg.Listen = cc.Listen
	cfg.Relays = cc.Relays
	cfg.RelayService = cc.RelayService
	cfg.RelayLimits = cc.RelayLimits
	cfg.FindTimeout = cc.FindTimeout
	cfg.AnnounceAddrs = cc.Announce
	cfg.NoDHT, cfg.NoMDNS, cfg.NoSync = true, true, true
	cfg.Chunking = chunker.FixedParams(256 << 10)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("role", role)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Printf("ID %s\n", n.ID())
	reply := func(v any, err error) {
		if err != nil {
			fmt.Printf("ERR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return
		}
		if s, ok := v.(string); ok {
			fmt.Printf("OK %s\n", s)
			return
		}
		b, _ := json.Marshal(v)
		fmt.Printf("OK %s\n", b)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		secs := func(s string) time.Duration { v, _ := strconv.Atoi(s); return time.Duration(v) * time.Second }
		switch {
		case f[0] == "reserve" && len(f) == 2:
			wctx, wcancel := context.WithTimeout(ctx, secs(f[1]))
			err := waitRelayAddr(wctx, n)
			wcancel()
			reply(reportOf(n), err)
		case f[0] == "share" && len(f) == 2:
			sh, err := n.Share(ctx, f[1], ShareOptions{})
			if err != nil {
				reply(nil, err)
				continue
			}
			reply(sh.Ticket, nil)
		case f[0] == "fetch" && len(f) == 4:
			t, err := ParseTarget(f[1])
			if err != nil {
				reply(nil, err)
				continue
			}
			fctx, fcancel := context.WithTimeout(ctx, secs(f[3]))
			_, err = n.Fetch(fctx, t, f[2], FetchOptions{})
			fcancel()
			reply(reportOf(n), err)
		case f[0] == "state" && len(f) == 3:
			wctx, wcancel := context.WithTimeout(ctx, secs(f[2]))
			err := waitState(wctx, n, f[1])
			wcancel()
			reply(reportOf(n), err)
		case f[0] == "reach":
			reply(reportOf(n), nil)
		default:
			reply(nil, fmt.Errorf("unknown command %q", in.Text()))
		}
	}
	return in.Err()
}

// waitRelayAddr waits until n holds a reservation and its own addresses
// (so its tickets) carry a circuit address, which AutoRelay publishes once
// AutoNAT has found the node private. Besides address events it looks
// every 50 ms (a reservation itself has no event).
func waitRelayAddr(ctx context.Context, n *Node) error {
	sub, err := n.Host().EventBus().Subscribe([]any{new(event.EvtLocalAddressesUpdated), new(event.EvtAutoRelayAddrsUpdated), new(event.EvtLocalReachabilityChanged)})
	if err != nil {
		return err
	}
	defer sub.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if len(n.Reachability().Reservations) > 0 && slices.ContainsFunc(n.Host().Addrs(), isCircuit) {
			return nil
		}
		select {
		case <-sub.Out():
		case <-tick.C:
		case <-ctx.Done():
			r := n.Reachability()
			return fmt.Errorf("no relay address: reachability %s, reservations %v, addrs %v", r.State, r.Reservations, n.Host().Addrs())
		}
	}
}

// waitState waits until n's reachability is state, or ctx ends.
func waitState(ctx context.Context, n *Node, state string) error {
	sub, err := n.Host().EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return err
	}
	defer sub.Close()
	// The state may change without an event on this bus (Reachability also
	// reads AutoNAT's own view): look again now and then too.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n.Reachability().State.String() != state {
		select {
		case <-sub.Out():
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("reachability %s, not %s", n.Reachability().State, state)
		}
	}
	return nil
}

// reachChild is a child node process of TestNATTraversal.
type reachChild struct {
	t    *testing.T
	name string
	cmd  interface{ Wait() error }
	in   io.WriteCloser
	out  *bufio.Scanner
	id   peer.ID
}

func startReachChild(t *testing.T, lab *netns.Lab, ns, name string, cc reachChildConfig) *reachChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cc.Home = t.TempDir()
	b, _ := json.Marshal(cc)
	cmd := lab.Command(ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), reachRoleEnv+"="+name, reachConfigEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	in, out := startPiped(t, cmd)
	c := &reachChild{t: t, name: name, cmd: cmd, in: in, out: out}
	id, err := peer.Decode(c.expect("ID "))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c.id = id
	return c
}

// expect reads lines until one starts with prefix and returns the rest.
func (c *reachChild) expect(prefix string) string {
	c.t.Helper()
	for c.out.Scan() {
		if rest, ok := strings.CutPrefix(c.out.Text(), prefix); ok {
			return rest
		}
	}
	c.t.Fatalf("%s ended without printing %q: %v", c.name, prefix, c.out.Err())
	return ""
}

func (c *reachChild) send(cmd string) {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
}

// answer reads the reply to the last command: its text, or an error.
func (c *reachChild) answer() (string, error) {
	c.t.Helper()
	for c.out.Scan() {
		line := c.out.Text()
		if rest, ok := strings.CutPrefix(line, "OK "); ok {
			return rest, nil
		}
		if rest, ok := strings.CutPrefix(line, "ERR "); ok {
			return "", fmt.Errorf("%s: %s", c.name, rest)
		}
	}
	c.t.Fatalf("%s ended without answering: %v", c.name, c.out.Err())
	return "", nil
}

func (c *reachChild) report() reachReport {
	c.t.Helper()
	s, err := c.answer()
	if err != nil {
		c.t.Fatal(err)
	}
	var rep reachReport
	if err := json.Unmarshal([]byte(s), &rep); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	return rep
}

// TestNATTraversal runs a relay on a public bridge and two peers, each
// behind its own NAT, in network namespaces this test makes (nothing
// leaves them). Peer 1 shares a file; peer 0 fetches it with the ticket,
// which names peer 1 by its relay address. Each NAT kind gets the relay
// limits that show what happens:
//   - cone NATs, a relay with go-libp2p's default limits (for hole punching
//     only): the relayed connection is upgraded by a hole punch and the file
//     comes over the direct connection;
//   - symmetric NATs, an unlimited relay: the hole punch can't work, and the
//     file comes through the relay;
//   - symmetric NATs, default limits: no way through; the fetch fails.
func TestNATTraversal(t *testing.T) {
	if testing.Short() {
		t.Skip("NAT traversal in network namespaces takes ~45 s under -race: not with -short")
	}
	netns.Require(t)
	for _, tc := range []natCase{
		{name: "cone NAT, limited relay", nats: [2]netns.NATKind{netns.ConeNAT, netns.ConeNAT}, wantFetch: true, wantDirect: true},
		{name: "symmetric NAT, unlimited relay", nats: [2]netns.NATKind{netns.SymmetricNAT, netns.SymmetricNAT}, limits: RelayLimits{Unlimited: true}, wantFetch: true},
		{name: "symmetric NAT, limited relay", nats: [2]netns.NATKind{netns.SymmetricNAT, netns.SymmetricNAT}},
		{name: "port forwarded, announced", nats: [2]netns.NATKind{netns.ConeNAT, netns.ConeNAT}, setup: forwardPort(1, 4001),
			announce: true, wantState: "public", wantFetch: true, wantDirect: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runNATCase(t, tc)
		})
	}
}

// forwardPort forwards port (TCP and UDP) on site's NAT to the host
// behind it, as a user would on a home router.
func forwardPort(site int, port int) func(*netns.Lab, netns.Topology) {
	return func(l *netns.Lab, top netns.Topology) {
		s, p := top.Sites[site], strconv.Itoa(port)
		for _, proto := range []string{"tcp", "udp"} {
			l.Run(s.NAT, "iptables", "-t", "nat", "-A", "PREROUTING", "-i", "wan", "-p", proto, "--dport", p, "-j", "DNAT", "--to-destination", s.IP+":"+p)
			l.Run(s.NAT, "iptables", "-I", "FORWARD", "1", "-i", "wan", "-p", proto, "-d", s.IP, "--dport", p, "-j", "ACCEPT")
		}
	}
}

// natCase is one run of TestNATTraversal: peer 0 behind nats[0] fetches
// what peer 1 behind nats[1] shares, with a relay on the public bridge.
type natCase struct {
	name   string
	nats   [2]netns.NATKind
	limits RelayLimits
	// quic runs the peers and the relay on QUIC only (TCP otherwise).
	quic bool
	// setup, if not nil, changes the topology before the nodes start.
	setup func(*netns.Lab, netns.Topology)
	// announce makes the sharer announce its NAT's outside address.
	announce bool
	// wantState is what AutoNAT must find for the sharer; "" means
	// "private", which also wants a reservation on the relay.
	wantState             string
	wantFetch, wantDirect bool
}

func runNATCase(t *testing.T, tc natCase) {
	lab := netns.New(t)
	top := lab.TwoNATs(tc.nats)
	if tc.setup != nil {
		tc.setup(lab, top)
	}
	t.Logf("%s / %s; relay limits: %s", tc.nats[0], tc.nats[1], tc.limits)
	listen := []string{"/ip4/%s/tcp/4001", "/ip4/%s/udp/4001/quic-v1"}
	relayAddr := "/ip4/%s/tcp/4001/p2p/%s"
	if tc.quic {
		listen = listen[1:]
		relayAddr = "/ip4/%s/udp/4001/quic-v1/p2p/%s"
	}
	on := func(ip string) []string {
		var out []string
		for _, l := range listen {
			out = append(out, fmt.Sprintf(l, ip))
		}
		return out
	}
	relay := startReachChild(t, lab, top.Public, "relay", reachChildConfig{
		Listen: on(top.PublicIP), RelayService: true, RelayLimits: tc.limits,
	})
	peerCfg := reachChildConfig{
		Listen: on("0.0.0.0"), Relays: []string{fmt.Sprintf(relayAddr, top.PublicIP, relay.id)},
		FindTimeout: 20 * time.Second,
	}
	if !tc.wantFetch {
		peerCfg.FindTimeout = 10 * time.Second
	}
	fetcher := startReachChild(t, lab, top.Sites[0].NS, "peer0", peerCfg)
	if tc.announce {
		peerCfg.Announce = on(top.Sites[1].PublicIP)
	}
	sharer := startReachChild(t, lab, top.Sites[1].NS, "peer1", peerCfg)

	start := time.Now()
	wantState := tc.wantState
	if wantState == "" {
		wantState = "private"
		sharer.send("reserve 60")
	} else {
		sharer.send("state " + wantState + " 60")
	}
	rep := sharer.report()
	t.Logf("sharer: %s after %v, reservations on %v, addrs %v", rep.State, time.Since(start).Round(time.Millisecond), rep.Reservations, rep.Addrs)
	if rep.State != wantState || (wantState == "private" && (len(rep.Reservations) != 1 || rep.Reservations[0] != relay.id.String())) {
		t.Fatalf("sharer %+v: want %s (AutoNAT), and a reservation on the relay %s if private", rep, wantState, relay.id)
	}

	dir := t.TempDir()
	path, data := randomFile(t, dir, "shared.bin", 4<<20, 11)
	sharer.send("share " + path)
	tk, err := sharer.answer()
	if err != nil {
		t.Fatal(err)
	}
	target, err := ParseTarget(tk)
	if err != nil {
		t.Fatal(err)
	}
	if wantState == "private" && !slices.ContainsFunc(target.Hint.Addrs, isCircuit) {
		t.Fatalf("ticket addresses %v: no relay address", target.Hint.Addrs)
	}

	dest := filepath.Join(dir, "fetched.bin")
	start = time.Now()
	fetcher.send("fetch " + tk + " " + dest + " 90")
	s, err := fetcher.answer()
	took := time.Since(start).Round(time.Millisecond)
	if !tc.wantFetch {
		if err == nil {
			t.Fatalf("fetch succeeded: %s", s)
		}
		t.Logf("fetch failed as expected after %v: %v", took, err)
		if !strings.Contains(err.Error(), "relay that limits") {
			t.Errorf("the error does not say the relay's limits are why: %v", err)
		}
		fetcher.send("reach")
		t.Logf("fetcher's paths: %v", fetcher.report().Peers)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var frep reachReport
	if err := json.Unmarshal([]byte(s), &frep); err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)
	p := frep.Peers[sharer.id.String()]
	t.Logf("fetched %d bytes in %v; fetcher's path to the sharer: %s", len(data), took, p)
	if frep.Direct[sharer.id.String()] != tc.wantDirect {
		t.Fatalf("path to the sharer %q: want direct %v", p, tc.wantDirect)
	}
	if !tc.wantDirect && !strings.Contains(p, "relayed via "+relay.id.String()) {
		t.Fatalf("path to the sharer %q: want relayed via %s", p, relay.id)
	}
}
