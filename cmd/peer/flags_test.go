package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/node"
)

// settingsWith runs settingsOf under the daemon command's flags.
func settingsWith(t *testing.T, args ...string) daemon.Settings {
	t.Helper()
	var got daemon.Settings
	cmd := daemonCommand()
	cmd.Action = func(c *cli.Context) error {
		_, s, err := settingsOf(c, true)
		got = s
		return err
	}
	app := &cli.App{Name: "peer", Commands: []*cli.Command{cmd}, Writer: &strings.Builder{}, ErrWriter: &strings.Builder{}}
	if err := app.RunContext(context.Background(), append([]string{"peer", "daemon"}, args...)); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPrecedence: flags over PEER_* variables over config.json over the
// defaults.
func TestPrecedence(t *testing.T) {
	for _, k := range []string{"PEER_FIND_TIMEOUT", "PEER_BOOTSTRAP", "PEER_LISTEN", "PEER_METRICS", "PEER_DHT", "PEER_API", "PEER_CHUNK_SIZE", "PEER_CHUNKER", "PEER_NO_MDNS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	home := t.TempDir()
	// A new home gets a config file with the defaults.
	s := settingsWith(t, "--home", home)
	if s.FindTimeout != "60s" || s.DHT != "auto" || len(s.Bootstrap) != 0 || s.API != "127.0.0.1:0" {
		t.Fatalf("defaults: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(home, daemon.ConfigFile)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, daemon.ConfigFile), []byte(`{"find_timeout": "11s", "dht": "client", "metrics": "127.0.0.1:9101",
		"bootstrap": ["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWSjwcmskyjMqsGiqdCdY31yxcwvi1HcPkzknFMQVWseDx"]}`), 0o600)
	s = settingsWith(t, "--home", home)
	if s.FindTimeout != "11s" || s.DHT != "client" || s.Metrics != "127.0.0.1:9101" || len(s.Bootstrap) != 1 {
		t.Fatalf("config file: %+v", s)
	}
	t.Setenv("PEER_FIND_TIMEOUT", "22s")
	t.Setenv("PEER_BOOTSTRAP", "") // set but empty: none
	t.Setenv("PEER_HOME", home)
	s = settingsWith(t)
	if s.FindTimeout != "22s" || s.DHT != "client" || len(s.Bootstrap) != 0 {
		t.Fatalf("environment over the file: %+v", s)
	}
	s = settingsWith(t, "--find-timeout", "33s", "--dht", "auto", "--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
	if s.FindTimeout != "33s" || s.DHT != "auto" || len(s.Listen) != 2 {
		t.Fatalf("flags over the environment: %+v", s)
	}
	cfg, err := s.NodeConfig(home, nil)
	if err != nil || cfg.FindTimeout != 33*time.Second || cfg.Home != home {
		t.Fatalf("node config %+v, %v", cfg, err)
	}
	// A broken config file is an error that names the file.
	os.WriteFile(filepath.Join(home, daemon.ConfigFile), []byte(`{"find_timeout": 5`), 0o600)
	_, err = daemon.LoadSettings(home, false)
	if err == nil || !strings.Contains(err.Error(), daemon.ConfigFile) {
		t.Fatalf("broken config: %v", err)
	}
}

func TestProgressLine(t *testing.T) {
	l := progressLine(daemon.ProgressInfo{Bytes: 3 << 20, Total: 12 << 20, Peers: 2, Rate: 1 << 20, ETA: 9}, 20)
	for _, want := range []string{" 25%", "3.0 MiB / 12.0 MiB", "1.0 MiB/s", "2 peers", "ETA 9s"} {
		if !strings.Contains(l, want) {
			t.Errorf("progress line %q lacks %q", l, want)
		}
	}
}

// keyText returns the text of a swarm.key holding b repeated.
func keyText(b byte) []byte {
	return []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat(fmt.Sprintf("%02x", b), 32) + "\n")
}

// TestNetSettings: every rate, access and reachability setting reaches
// node.Config from config.json, from its PEER_* variable over the file,
// and from its flag over both.
func TestNetSettings(t *testing.T) {
	const (
		id1 = "12D3KooWSjwcmskyjMqsGiqdCdY31yxcwvi1HcPkzknFMQVWseDx"
		id2 = "12D3KooWT2MhSvz1hR9ajhbeAB9MwsNHatyqDwUXGmbsX9VQo8or"
		r1  = "/ip4/127.0.0.1/tcp/4001/p2p/" + id1
		r2  = "/ip4/127.0.0.1/tcp/4002/p2p/" + id2
	)
	pid := func(s string) peer.ID {
		id, err := peer.Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	keys := t.TempDir()
	for i, name := range []string{"env.key", "flag.key"} {
		os.WriteFile(filepath.Join(keys, name), keyText(byte(i+2)), 0o600)
	}
	for _, tc := range []struct {
		name              string
		file              string // a config.json field
		env               string // PEER_X=value
		flag              []string
		get               func(node.Config) any
		byFile, byEnv, by any
	}{
		{"upload rate", `"upload_rate": "1MB"`, "PEER_UPLOAD_RATE=2MiB", []string{"--upload-rate", "3MB/s"},
			func(c node.Config) any { return c.UploadRate }, int64(1e6), int64(2 << 20), int64(3e6)},
		{"download rate", `"download_rate": "512KiB"`, "PEER_DOWNLOAD_RATE=1.5MB", []string{"--download-rate", "0"},
			func(c node.Config) any { return c.DownloadRate }, int64(512 << 10), int64(15e5), int64(0)},
		{"peer upload rate", `"peer_upload_rate": "10MB"`, "PEER_PEER_UPLOAD_RATE=8MiB/s", []string{"--peer-upload-rate", "100KB"},
			func(c node.Config) any { return c.PeerUploadRate }, int64(10e6), int64(8 << 20), int64(1e5)},
		{"peer download rate", `"peer_download_rate": "1GiB"`, "PEER_PEER_DOWNLOAD_RATE=65536", []string{"--peer-download-rate", "2M"},
			func(c node.Config) any { return c.PeerDownloadRate }, int64(1 << 30), int64(65536), int64(2 << 20)},
		{"upload slots", `"upload_slots": 4`, "PEER_UPLOAD_SLOTS=5", []string{"--upload-slots", "6"},
			func(c node.Config) any { return c.UploadSlots }, 4, 5, 6},
		{"allow peers", `"allow_peers": ["` + id1 + `"]`, "PEER_ALLOW_PEERS=" + id2 + "," + id1, []string{"--allow-peer", id2, "--allow-peer", r1},
			func(c node.Config) any { return c.AllowPeers }, []peer.ID{pid(id1)}, []peer.ID{pid(id2), pid(id1)}, []peer.ID{pid(id2), pid(id1)}},
		{"swarm key", `"swarm_key": "file.key"`, "PEER_SWARM_KEY=" + filepath.Join(keys, "env.key"), []string{"--swarm-key", filepath.Join(keys, "flag.key")},
			func(c node.Config) any { return string(c.SwarmKey) }, string(keyText(1)), string(keyText(2)), string(keyText(3))},
		{"NAT port mapping", `"nat_portmap": true`, "PEER_NAT_PORTMAP=false", []string{"--nat-portmap"},
			func(c node.Config) any { return c.NATPortMap }, true, false, true},
		{"relays", `"relays": ["` + r1 + `"]`, "PEER_RELAYS=" + r2, []string{"--relay", r1, "--relay", r2},
			func(c node.Config) any { return c.Relays }, []string{r1}, []string{r2}, []string{r1, r2}},
		{"relay service", `"relay_service": true`, "PEER_RELAY_SERVICE=false", []string{"--relay-service"},
			func(c node.Config) any { return c.RelayService }, true, false, true},
		{"relay unlimited", `"relay_limits": {"unlimited": true}`, "PEER_RELAY_UNLIMITED=false", []string{"--relay-unlimited"},
			func(c node.Config) any { return c.RelayLimits.Unlimited }, true, false, true},
		{"relay data", `"relay_limits": {"data": "1MiB"}`, "PEER_RELAY_DATA=2MiB", []string{"--relay-data", "3MB"},
			func(c node.Config) any { return c.RelayLimits.Data }, int64(1 << 20), int64(2 << 20), int64(3e6)},
		{"relay duration", `"relay_limits": {"duration": "5m"}`, "PEER_RELAY_DURATION=1h", []string{"--relay-duration", "90s"},
			func(c node.Config) any { return c.RelayLimits.Duration }, 5 * time.Minute, time.Hour, 90 * time.Second},
		{"relay reservations", `"relay_limits": {"reservations": 7}`, "PEER_RELAY_RESERVATIONS=8", []string{"--relay-reservations", "9"},
			func(c node.Config) any { return c.RelayLimits.Reservations }, 7, 8, 9},
		{"relay circuits", `"relay_limits": {"circuits": 2}`, "PEER_RELAY_CIRCUITS=3", []string{"--relay-circuits", "4"},
			func(c node.Config) any { return c.RelayLimits.Circuits }, 2, 3, 4},
		{"AutoNAT service", `"autonat_service": true`, "PEER_AUTONAT_SERVICE=false", []string{"--autonat-service"},
			func(c node.Config) any { return c.AutoNATService }, true, false, true},
		{"no hole punch", `"no_hole_punch": true`, "PEER_NO_HOLE_PUNCH=false", []string{"--no-hole-punch"},
			func(c node.Config) any { return c.NoHolePunch }, true, false, true},
		{"bitswap", `"bitswap": true`, "PEER_BITSWAP=false", []string{"--bitswap"},
			func(c node.Config) any { return c.Bitswap }, true, false, true},
		{"reachability", `"reachability": "public"`, "PEER_REACHABILITY=private", []string{"--reachability", "auto"},
			func(c node.Config) any { return c.ForceReachability }, node.ReachPublic, node.ReachPrivate, node.ReachUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearPeerEnv(t)
			home := t.TempDir()
			os.WriteFile(filepath.Join(home, "file.key"), keyText(1), 0o600)
			os.WriteFile(filepath.Join(home, daemon.ConfigFile), []byte("{"+tc.file+"}"), 0o600)
			check := func(layer string, want any, args ...string) {
				t.Helper()
				s := settingsWith(t, append([]string{"--home", home}, args...)...)
				cfg, err := s.NodeConfig(home, nil)
				if err != nil {
					t.Fatalf("%s: %v", layer, err)
				}
				if got := tc.get(cfg); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: got %v, want %v", layer, got, want)
				}
			}
			check("config.json", tc.byFile)
			k, v, _ := strings.Cut(tc.env, "=")
			t.Setenv(k, v)
			check(k+" over config.json", tc.byEnv)
			check("flag over "+k, tc.by, tc.flag...)
		})
	}
}

// clearPeerEnv unsets every PEER_* variable for the test.
func clearPeerEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PEER_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// TestNetSettingsDefaultsAndErrors: a new home caps nothing and has no
// key; the home's swarm.key is found by default and drops QUIC listen
// addresses; a key readable by others and malformed values are errors
// that say what to do.
func TestNetSettingsDefaultsAndErrors(t *testing.T) {
	clearPeerEnv(t)
	home := t.TempDir()
	s := settingsWith(t, "--home", home)
	cfg, err := s.NodeConfig(home, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UploadRate|cfg.DownloadRate|cfg.PeerUploadRate|cfg.PeerDownloadRate != 0 || cfg.UploadSlots != 0 || len(cfg.SwarmKey) != 0 ||
		len(cfg.AllowPeers) != 0 || len(cfg.Relays) != 0 || cfg.RelayService || cfg.NATPortMap || cfg.NoHolePunch || cfg.ForceReachability != node.ReachUnknown {
		t.Fatalf("defaults: %+v", cfg)
	}
	keyPath := filepath.Join(home, daemon.SwarmKeyFile)
	os.WriteFile(keyPath, keyText(9), 0o600)
	cfg, err = settingsWith(t, "--home", home).NodeConfig(home, nil)
	if err != nil || string(cfg.SwarmKey) != string(keyText(9)) {
		t.Fatalf("home's swarm.key: %q, %v", cfg.SwarmKey, err)
	}
	// The node leaves out its QUIC addresses (node.Config.WithDefaults is
	// what node.New runs).
	if cfg, err = cfg.WithDefaults(); err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.Listen {
		if strings.Contains(a, "quic") {
			t.Fatalf("a keyed node listens on %s", a)
		}
	}
	if len(cfg.Listen) == 0 {
		t.Fatal("a keyed node listens nowhere")
	}
	os.Chmod(keyPath, 0o640)
	_, err = settingsWith(t, "--home", home).NodeConfig(home, nil)
	if err == nil || !strings.Contains(err.Error(), "readable by others") || !strings.Contains(err.Error(), "chmod 600 "+keyPath) {
		t.Fatalf("a key readable by others: %v", err)
	}
	os.Remove(keyPath)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--upload-rate", "fast"}, "upload rate"},
		{[]string{"--peer-download-rate", "-1MB"}, "peer download rate"},
		{[]string{"--upload-slots", "-2"}, "upload slots"},
		{[]string{"--allow-peer", "bob"}, `allowed peer "bob"`},
		{[]string{"--relay", "/ip4/127.0.0.1/tcp/1"}, "relay"},
		{[]string{"--relay-data", "lots"}, "relay data limit"},
		{[]string{"--relay-duration", "forever"}, "relay duration limit"},
		{[]string{"--reachability", "sideways"}, "reachability"},
		{[]string{"--swarm-key", filepath.Join(home, "missing.key")}, "does not exist"},
	} {
		// The daemon parses, the node checks the values: either says.
		cfg, err := settingsWith(t, append([]string{"--home", home}, tc.args...)...).NodeConfig(home, nil)
		if err == nil {
			_, err = cfg.WithDefaults()
		}
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: %v; want an error saying %q", tc.args, err, tc.says)
		}
	}
	bad := filepath.Join(home, "bad.key")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	if _, err := settingsWith(t, "--home", home, "--swarm-key", bad).NodeConfig(home, nil); err == nil || !strings.Contains(err.Error(), "/key/swarm/psk/1.0.0/") {
		t.Errorf("a malformed key: %v", err)
	}
}

// TestStatusText: the status lines for caps, access, reachability, relays
// and stale shares, and how peers says a peer is connected.
func TestStatusText(t *testing.T) {
	var b strings.Builder
	st := daemon.StatusInfo{
		Limits:         daemon.LimitsInfo{UploadRate: 1 << 20, PeerDownloadRate: 512 << 10, UploadSlots: 16},
		PrivateNetwork: true, AllowPeers: []string{"a", "b"},
		Reachability: daemon.ReachInfo{
			State: "private", Relays: []string{"/ip4/192.0.2.1/tcp/4001/p2p/R"}, HolePunching: true, Direct: 2, Relayed: 1,
			Reservations: []daemon.ReservationInfo{{Relay: "RELAYID", Addrs: []string{"/ip4/192.0.2.1/tcp/4001/p2p/RELAYID/p2p-circuit"}}},
			RelayService: &daemon.RelayServiceInfo{Summary: "128 KiB and 2m0s per connection"},
		},
	}
	printLimits(&b, st)
	printReach(&b, st.Reachability, false)
	printStale(&b, []daemon.ShareInfo{{Root: "bafyroot", Path: "/home/u/draft.txt", Stale: true}})
	out := b.String()
	for _, want := range []string{
		"upload 1.0 MiB/s (each peer no cap), download no cap (each peer 512.0 KiB/s), 16 upload slots",
		"private network (swarm key; TCP only), only 2 allowed peers",
		"private (AutoNAT); peers 2 direct, 1 relayed",
		"1 reservation of 1 configured", "RELAYID", "/p2p/RELAYID/p2p-circuit",
		"relay service\ton: 128 KiB and 2m0s per connection",
		"1 share changed on disk since shared", "bafyroot  /home/u/draft.txt", "peer share PATH",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}
	// A public node: the network line, and relays found among its peers.
	b.Reset()
	pub := daemon.StatusInfo{Network: "public", DHTProtocol: "/ipfs/kad/1.0.0", BootstrapPeers: 3,
		Reachability: daemon.ReachInfo{State: "private", Reservations: []daemon.ReservationInfo{{Relay: "RELAYID"}}}}
	printNetwork(&b, pub)
	printReach(&b, pub.Reachability, true)
	printNetwork(&b, daemon.StatusInfo{Network: "local", DHTProtocol: "/peer/kad/1.0.0"})
	out = b.String()
	for _, want := range []string{
		"network\tpublic (the IPFS network): DHT /ipfs/kad/1.0.0 through 3 bootstrap peers",
		"relays\t1 reservation on relays found among peers",
		"network\tlocal (LAN, tickets and named peers): DHT /peer/kad/1.0.0 through 0 bootstrap peers",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}
	for p, want := range map[*daemon.PeerInfo]string{
		{Direct: true, Relays: []string{"R"}}:  "direct",
		{Relays: []string{"R1", "R2"}}:         "relayed via R1, R2",
		{Relays: []string{"R"}, Limited: true}: "relayed via R (limited: waits for a hole punch)",
	} {
		if got := peerPath(*p); got != want {
			t.Errorf("peerPath(%+v) = %q, want %q", *p, got, want)
		}
	}
}
