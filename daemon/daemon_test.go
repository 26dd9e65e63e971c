package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/webui"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p-kad-dht/internal/net.(*peerMessageSender).ctxReadMsg"),
	)
}

func startDaemon(t *testing.T, home string) *Daemon {
	t.Helper()
	return startDaemonWith(t, home, nil)
}

// dial dials the daemon of home, or fails the test.
func dial(t *testing.T, ctx context.Context, home string) *Client {
	t.Helper()
	c, err := Dial(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startDaemonWith starts a daemon on loopback with the settings edit
// changes (if not nil).
func startDaemonWith(t *testing.T, home string, edit func(*Settings)) *Daemon {
	t.Helper()
	s := DefaultSettings()
	s.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	s.NoMDNS = true
	s.FindTimeout = "2s"
	if edit != nil {
		edit(&s)
	}
	cfg, err := s.NodeConfig(home, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoSync = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := Start(ctx, Options{Home: home, Node: cfg, Metrics: "127.0.0.1:0", Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestClientServer drives a daemon through its client: share, list,
// inspect, get from another daemon with progress, cat, unshare; then
// Close cleans up, and a second Close is harmless.
func TestClientServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	a, b := startDaemon(t, homeA), startDaemon(t, homeB)
	ca := dial(t, ctx, homeA)
	cb := dial(t, ctx, homeB)
	data := []byte(strings.Repeat("peer to peer ", 100000))
	src := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(src, data, 0o644)
	sh, err := ca.Share(ctx, ShareRequest{Path: src, ChunkSize: "64KiB"})
	if err != nil {
		t.Fatal(err)
	}
	if sh.Chunker != "fixed-65536" || sh.Size != int64(len(data)) {
		t.Fatalf("share: %+v", sh)
	}
	if _, err := ca.Share(ctx, ShareRequest{Path: "relative/path"}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("relative share: %v", err)
	}
	m, err := ca.Inspect(ctx, InspectRequest{Target: sh.Root})
	if err != nil || len(m.Files) != 1 || len(m.Files[0].Chunks) != (len(data)+(64<<10)-1)/(64<<10) {
		t.Fatalf("inspect: %+v, %v", m, err)
	}
	dest := filepath.Join(t.TempDir(), "got.txt")
	var reports int
	res, err := cb.Get(ctx, GetRequest{Target: sh.Ticket, Dest: dest}, func(p ProgressInfo) { reports++ })
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != string(data) || res.Size != int64(len(data)) || reports == 0 {
		t.Fatalf("get: %+v, %d reports", res, reports)
	}
	if _, err := cb.Get(ctx, GetRequest{Target: sh.Ticket, Dest: dest}, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("get onto an existing file: %v", err)
	}
	// Cat of a root B has (read where it lies), and of one it has not
	// (streamed while it downloads).
	var buf strings.Builder
	if err := cb.Cat(ctx, GetRequest{Target: sh.Root, Peers: []string{a.Node().Addrs()[0].String()}}, &buf); err != nil || buf.String() != string(data) {
		t.Fatalf("cat: %d bytes, %v", buf.Len(), err)
	}
	other := []byte(strings.Repeat("streamed in order ", 200000))
	src2 := filepath.Join(t.TempDir(), "g.txt")
	os.WriteFile(src2, other, 0o644)
	sh2, err := ca.Share(ctx, ShareRequest{Path: src2, ChunkSize: "64KiB"})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := cb.Cat(ctx, GetRequest{Target: sh2.Ticket}, &buf); err != nil || buf.String() != string(other) {
		t.Fatalf("cat while fetching: %d bytes of %d, %v", buf.Len(), len(other), err)
	}
	if err := ca.Unshare(ctx, sh.Root); err != nil {
		t.Fatal(err)
	}
	if err := ca.Unshare(ctx, sh.Root); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second unshare: %v", err)
	}
	st, err := cb.Status(ctx)
	if err != nil || st.BytesDown < int64(len(data)+len(other)) || st.Shares < 1 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := os.Stat(filepath.Join(homeB, AddrFile)); !os.IsNotExist(err) {
		t.Fatalf("api.addr after Close: %v", err)
	}
	if _, err := Dial(ctx, homeB); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("dial after Close: %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	if _, err := Dial(ctx, home); !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), "peer daemon") {
		t.Fatalf("no addr file: %v", err)
	}
	// A stale addr file: nothing listens there any more.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	os.WriteFile(filepath.Join(home, AddrFile), []byte(addr), 0o600)
	os.WriteFile(filepath.Join(home, TokenFile), []byte("x"), 0o600)
	if _, err := Dial(ctx, home); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("stale addr file: %v", err)
	}
	// A wrong token.
	d := startDaemon(t, home)
	os.WriteFile(filepath.Join(home, TokenFile), []byte("wrong"), 0o600)
	if _, err := Dial(ctx, home); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong token: %v", err)
	}
	d.Close()
}

// TestTokenRotates: each start of a daemon makes a new token (mode 0600),
// so a token captured from an earlier run is worth nothing once the daemon
// is back; the client follows without being told.
func TestTokenRotates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	var toks []string
	for range 2 {
		d := startDaemon(t, home)
		path := filepath.Join(home, TokenFile)
		b, err := os.ReadFile(path)
		fi, serr := os.Stat(path)
		if err != nil || serr != nil || fi.Mode().Perm() != 0o600 || len(strings.TrimSpace(string(b))) != 64 {
			t.Fatalf("token file: %q, %v, %v", b, err, serr)
		}
		toks = append(toks, strings.TrimSpace(string(b)))
		c := dial(t, ctx, home)
		if _, err := c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		if len(toks) == 2 {
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+d.APIAddr()+"/v1/status", nil)
			req.Header.Set("Authorization", "Bearer "+toks[0])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("the first start's token after a restart: HTTP %d, want 401", resp.StatusCode)
			}
		}
		d.Close()
	}
	if toks[0] == toks[1] {
		t.Fatal("the token is the same after a restart")
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]int{"1MiB": 1 << 20, "256KiB": 256 << 10, "262144": 262144, "4M": 4 << 20, "1GiB": 1 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "big", "-1", "0", "1TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:5001", "localhost:80"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("checkLoopback(%q): %v", addr, err)
		}
	}
	for _, addr := range []string{"0.0.0.0:0", "192.168.1.2:80", ":80", "nonsense"} {
		if err := checkLoopback(addr); err == nil {
			t.Errorf("checkLoopback(%q) accepted it", addr)
		}
	}
	if _, err := (Settings{DHT: "sideways"}).NodeConfig("/tmp/x", nil); err == nil {
		t.Error("a bad DHT mode was accepted")
	}
	if _, err := (Settings{FindTimeout: "soon"}).NodeConfig("/tmp/x", nil); err == nil {
		t.Error("a bad find timeout was accepted")
	}
	// Errors survive the wire.
	for _, kind := range []error{ErrNotFound, ErrExists, ErrBadRequest, ErrUnauthorized} {
		we, _ := toWire(errorf(kind, "boom"))
		if err := fromWire(we); !errors.Is(err, kind) || err.Error() != "boom" {
			t.Errorf("%v: round trip gave %v", kind, err)
		}
	}
}

// TestDashboardMetrics: every peer_* metric the Grafana dashboard queries
// is one the daemon exports, and every exported metric is charted.
func TestDashboardMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "contrib", "grafana", "peer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("peer.json: %v", err)
	}
	exported := map[string]bool{}
	for _, m := range []string{MetricBytesUp, MetricBytesDown, MetricChunksVerified, MetricChunksRejected, MetricChunksServed,
		MetricDuplicateBytes, MetricPeers, MetricDHTPeers, MetricBanned, MetricBans, MetricDHTLookups, MetricDHTLookupSecs, MetricTransfers, MetricChokes,
		MetricProtocolBytes, MetricExchangeBytes} {
		exported[m] = false
	}
	name := regexp.MustCompile(`peer_[a-z_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if _, ok := exported[base]; !ok {
					t.Errorf("panel %q queries %s, which the daemon does not export", p.Title, m)
				}
				exported[base] = true
			}
		}
	}
	for m, used := range exported {
		if !used {
			t.Errorf("no panel charts %s", m)
		}
	}
}

func TestMeter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newMeter(t0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// 1 MiB resumed from disk at the start, then 4 MiB/s.
	p := m.update(node.Progress{Bytes: 1 << 20, Total: 9 << 20, Resumed: 1}, at(0))
	if p.Rate != 0 || p.ETA != 0 {
		t.Fatalf("first report: %+v", p)
	}
	p = m.update(node.Progress{Bytes: 1<<20 + 409600, Total: 9 << 20}, at(100))
	if p.Rate != 4096000 || p.ETA <= 0 {
		t.Fatalf("before the first window: rate %v, eta %v; want the average since the start, 4096000 B/s", p.Rate, p.ETA)
	}
	p = m.update(node.Progress{Bytes: 2 << 20, Total: 9 << 20}, at(250))
	if p.Rate != 4<<20 || p.ETA != 7.0/4 {
		t.Fatalf("first window: rate %v, eta %v", p.Rate, p.ETA)
	}
	p = m.update(node.Progress{Bytes: 9 << 20, Total: 9 << 20, Done: true}, at(2000))
	if p.Rate != float64(8<<20)/2 || p.ETA != 0 || !p.Done || p.Elapsed != 2 {
		t.Fatalf("done: %+v", p)
	}
}

// TestUIRatesAgree: a cap typed in the web UI is the cap the same text
// sets on the command line and in config.json.
func TestUIRatesAgree(t *testing.T) {
	for _, in := range []string{"", "0", "4096", "500K", "10M", "10M/s", "10MB", "8MiB", "1.5MB", "512KiB/s", "2G", "1gb", " 3 MiB "} {
		want, err := ParseRate(in)
		if err != nil {
			t.Fatalf("ParseRate(%q): %v", in, err)
		}
		if got, err := webui.ParseRate(in); err != nil || got != want {
			t.Errorf("the UI reads %q as %d (%v); the daemon as %d", in, got, err, want)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "0": 0, "0/s": 0, "10MB": 10e6, "8MiB": 8 << 20, "512KiB/s": 512 << 10, "1.5MB": 15e5,
		"2G": 2 << 30, "1gb": 1e9, "4096": 4096, "100B/s": 100, " 3 MiB ": 3 << 20,
	} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"fast", "-1MB", "1e6", "NaN", "Inf", "10 MB per hour", "0x10", "99999999999GiB"} {
		if _, err := ParseRate(in); err == nil || !strings.Contains(err.Error(), "bytes per second") {
			t.Errorf("ParseRate(%q): %v; want an error", in, err)
		}
	}
	for in, want := range map[string]int{"1MB": 1e6, "64kib": 64 << 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestStatusSettings: status reports the caps, the allowlist, the forced
// reachability and the relay service a daemon runs with, and peers says
// how each peer is connected.
func TestStatusSettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	idB, err := node.IdentityOf(homeB)
	if err != nil {
		t.Fatal(err)
	}
	a := startDaemonWith(t, homeA, func(s *Settings) {
		s.UploadRate, s.PeerDownloadRate, s.UploadSlots = "2MiB", "1MB/s", 3
		s.AllowPeers = []string{idB.String()}
		s.Reachability = "public"
		s.RelayService, s.RelayLimits.Unlimited = true, true
	})
	b := startDaemon(t, homeB)
	if err := b.Node().Connect(ctx, a.Node().AddrInfo()); err != nil {
		t.Fatal(err)
	}
	ca := dial(t, ctx, homeA)
	st, err := ca.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := LimitsInfo{UploadRate: 2 << 20, PeerDownloadRate: 1e6, UploadSlots: 3}
	if st.Limits != want || st.PrivateNetwork || len(st.AllowPeers) != 1 || st.AllowPeers[0] != idB.String() {
		t.Fatalf("status: limits %+v (want %+v), private %v, allow %v", st.Limits, want, st.PrivateNetwork, st.AllowPeers)
	}
	r := st.Reachability
	if r.State != "public" || !r.Forced || r.RelayService == nil || !r.RelayService.Unlimited || !r.HolePunching || r.Direct != 1 || r.Relayed != 0 {
		t.Fatalf("reachability: %+v", r)
	}
	ps, err := ca.Peers(ctx)
	if err != nil || len(ps) != 1 || ps[0].ID != idB.String() || !ps[0].Direct || !strings.HasPrefix(ps[0].Path, "direct /ip4/127.0.0.1/tcp/") {
		t.Fatalf("peers: %+v, %v", ps, err)
	}
	// B runs with the defaults: 4 slots, no caps, AutoNAT undecided.
	cb := dial(t, ctx, homeB)
	if st, err := cb.Status(ctx); err != nil || st.Limits != (LimitsInfo{UploadSlots: node.DefaultUploadSlots}) || st.Reachability.Forced || st.Reachability.RelayService != nil || len(st.AllowPeers) != 0 {
		t.Fatalf("status of B: %+v, %v", st, err)
	}
}

// TestStatusRelayed: a daemon told it is private holds a reservation on
// its relay, status lists it, and a peer that reached it only through the
// relay is listed as relayed via it (hole punching is off, so the
// connection stays relayed).
func TestStatusRelayed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := startDaemonWith(t, t.TempDir(), func(s *Settings) { s.RelayService = true; s.DHT = "off" })
	homeA := t.TempDir()
	a := startDaemonWith(t, homeA, func(s *Settings) {
		s.Relays = []string{r.Node().Addrs()[0].String()}
		s.Reachability, s.NoHolePunch, s.DHT = "private", true, "off"
	})
	b := startDaemonWith(t, t.TempDir(), func(s *Settings) { s.NoHolePunch, s.DHT = true, "off" })
	ca := dial(t, ctx, homeA)
	// AutoRelay reserves a slot in its own time: look every 100 ms, for at
	// most the test's minute.
	var st StatusInfo
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(st.Reachability.Reservations) == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no reservation on the relay: %+v", st.Reachability)
		case <-tick.C:
		}
		var err error
		if st, err = ca.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rv := st.Reachability.Reservations[0]
	if st.Reachability.State != "private" || !st.Reachability.Forced || rv.Relay != r.Node().ID().String() || len(rv.Addrs) == 0 ||
		len(st.Reachability.Relays) != 1 || st.Reachability.HolePunching {
		t.Fatalf("reachability of A: %+v", st.Reachability)
	}
	circuit, err := ma.NewMultiaddr(rv.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Node().Connect(ctx, peer.AddrInfo{ID: a.Node().ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}
	ps, err := ca.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pb *PeerInfo
	for i := range ps {
		if ps[i].ID == b.Node().ID().String() {
			pb = &ps[i]
		}
	}
	if pb == nil || pb.Direct || len(pb.Relays) != 1 || pb.Relays[0] != r.Node().ID().String() || !strings.HasPrefix(pb.Path, "relayed via") {
		t.Fatalf("A's peers %+v: want B relayed via %s", ps, r.Node().ID())
	}
	if st, err = ca.Status(ctx); err != nil || st.Reachability.Relayed < 1 {
		t.Fatalf("status of A: %+v, %v", st.Reachability, err)
	}
	t.Logf("B at A: %s", pb.Path)
}
