package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/node"
)

// homeFlag names the home directory; every command takes it.
func homeFlag() cli.Flag {
	return &cli.StringFlag{Name: "home", EnvVars: []string{"PEER_HOME"}, Usage: "home directory: identity, database, config.json, API address and token (default ~/.peer)"}
}

// nodeFlags set what a node does on the network: `peer daemon` takes them,
// and so do share and get for the node they run when no daemon runs. Each
// overrides its PEER_* variable, which overrides the config file.
func nodeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "listen", EnvVars: []string{"PEER_LISTEN"}, Usage: "listen on `MULTIADDR` (repeatable; default every interface, TCP and QUIC, random port)"},
		&cli.StringFlag{Name: "network", EnvVars: []string{"PEER_NETWORK"}, Usage: "`NET`: local (the LAN, tickets and named peers; the default) or public (the public IPFS network: its DHT, relays, hole punching)"},
		&cli.StringSliceFlag{Name: "bootstrap", EnvVars: []string{"PEER_BOOTSTRAP"}, Usage: "join the DHT through `MULTIADDR` (/ip4/…/tcp/…/p2p/ID, repeatable; with --network public it replaces the public bootstrap peers)"},
		&cli.StringFlag{Name: "dht", EnvVars: []string{"PEER_DHT"}, Usage: "DHT mode: auto (a server unless AutoNAT finds this node behind NAT), server, client or off (default auto)"},
		&cli.BoolFlag{Name: "no-mdns", EnvVars: []string{"PEER_NO_MDNS"}, Usage: "no mDNS discovery on the local network (never run on loopback-only addresses)"},
		&cli.StringFlag{Name: "find-timeout", EnvVars: []string{"PEER_FIND_TIMEOUT"}, Usage: fmt.Sprintf("how long a fetch looks for a peer that has the root (default %v)", node.DefaultFindTimeout)},
		&cli.StringFlag{Name: "upload-rate", EnvVars: []string{"PEER_UPLOAD_RATE"}, Usage: "send at most `RATE` bytes per second to all peers together, e.g. 10MB or 8MiB (per second; 0: no cap, the default)"},
		&cli.StringFlag{Name: "download-rate", EnvVars: []string{"PEER_DOWNLOAD_RATE"}, Usage: "receive at most `RATE` bytes per second from all peers together, e.g. 10MB or 8MiB (per second; 0: no cap)"},
		&cli.StringFlag{Name: "peer-upload-rate", EnvVars: []string{"PEER_PEER_UPLOAD_RATE"}, Usage: "send at most `RATE` bytes per second to each peer, e.g. 2MB (per second; 0: no cap)"},
		&cli.StringFlag{Name: "peer-download-rate", EnvVars: []string{"PEER_PEER_DOWNLOAD_RATE"}, Usage: "receive at most `RATE` bytes per second from each peer, e.g. 2MB (per second; 0: no cap)"},
		&cli.IntFlag{Name: "upload-slots", EnvVars: []string{"PEER_UPLOAD_SLOTS"}, Usage: fmt.Sprintf("send blocks to `N` peers at once; the others wait their turn (default %d)", node.DefaultUploadSlots)},
		&cli.BoolFlag{Name: "bitswap", EnvVars: []string{"PEER_BITSWAP"}, Usage: "speak IPFS's Bitswap too (always with --network public): Kubo nodes and gateways fetch what this node shares, and get fetches from them (within the same caps, bans and allowlist)"},
		&cli.StringSliceFlag{Name: "allow-peer", EnvVars: []string{"PEER_ALLOW_PEERS"}, Usage: "talk only to the peer `ID` (repeatable; default everyone; `peer id` prints a node's ID)"},
		&cli.StringFlag{Name: "swarm-key", EnvVars: []string{"PEER_SWARM_KEY"}, Usage: "private network: talk only to nodes with the swarm key in `FILE` (mode 0600; TCP only; default HOME/swarm.key if it exists)"},
		&cli.BoolFlag{Name: "nat-portmap", EnvVars: []string{"PEER_NAT_PORTMAP"}, Usage: "ask the router for a port mapping (UPnP, NAT-PMP); never on loopback-only addresses"},
		&cli.StringSliceFlag{Name: "relay", EnvVars: []string{"PEER_RELAYS"}, Usage: "hold a reservation on the circuit relay at `MULTIADDR` (/ip4/…/tcp/…/p2p/ID, repeatable) while not publicly reachable"},
		&cli.BoolFlag{Name: "relay-service", EnvVars: []string{"PEER_RELAY_SERVICE"}, Usage: "relay connections for other peers, within the relay limits"},
		&cli.BoolFlag{Name: "relay-unlimited", EnvVars: []string{"PEER_RELAY_UNLIMITED"}, Usage: "relay service: no data or time limit per relayed connection (transfers may go through it)"},
		&cli.StringFlag{Name: "relay-data", EnvVars: []string{"PEER_RELAY_DATA"}, Usage: "relay service: carry at most `SIZE` each way per relayed connection (default 128KiB)"},
		&cli.StringFlag{Name: "relay-duration", EnvVars: []string{"PEER_RELAY_DURATION"}, Usage: "relay service: cut a relayed connection after `D` (default 2m)"},
		&cli.IntFlag{Name: "relay-reservations", EnvVars: []string{"PEER_RELAY_RESERVATIONS"}, Usage: "relay service: at most `N` peers hold a slot at once (default 128)"},
		&cli.IntFlag{Name: "relay-circuits", EnvVars: []string{"PEER_RELAY_CIRCUITS"}, Usage: "relay service: at most `N` relayed connections per peer (default 16)"},
		&cli.BoolFlag{Name: "autonat-service", EnvVars: []string{"PEER_AUTONAT_SERVICE"}, Usage: "answer other peers' AutoNAT dial-back requests (for a publicly reachable node)"},
		&cli.BoolFlag{Name: "no-hole-punch", EnvVars: []string{"PEER_NO_HOLE_PUNCH"}, Usage: "never upgrade a relayed connection to a direct one by hole punching"},
		&cli.StringFlag{Name: "reachability", EnvVars: []string{"PEER_REACHABILITY"}, Usage: "public, private, or auto (AutoNAT decides; the default)"},
	}
}

// settingsOf returns the home directory and its settings: the config file
// (made with the defaults on first use when create is set), then PEER_*
// variables and flags over it.
func settingsOf(c *cli.Context, create bool) (string, daemon.Settings, error) {
	home, err := daemon.HomeDir(c.String("home"))
	if err != nil {
		return "", daemon.Settings{}, err
	}
	s, err := daemon.LoadSettings(home, create)
	if err != nil {
		return "", s, err
	}
	if c.IsSet("listen") {
		s.Listen = splitList(c.StringSlice("listen"))
	}
	if c.IsSet("bootstrap") {
		s.Bootstrap = splitList(c.StringSlice("bootstrap"))
	}
	if c.IsSet("dht") {
		s.DHT = c.String("dht")
	}
	if c.IsSet("no-mdns") {
		s.NoMDNS = c.Bool("no-mdns")
	}
	if c.IsSet("find-timeout") {
		s.FindTimeout = c.String("find-timeout")
	}
	if c.IsSet("api") {
		s.API = c.String("api")
	}
	if c.IsSet("metrics") {
		s.Metrics = c.String("metrics")
	}
	if c.IsSet("chunker") {
		s.Chunker = c.String("chunker")
	}
	if c.IsSet("chunk-size") {
		s.ChunkSize = c.String("chunk-size")
	}
	for flag, dst := range map[string]*string{
		"upload-rate": &s.UploadRate, "download-rate": &s.DownloadRate,
		"peer-upload-rate": &s.PeerUploadRate, "peer-download-rate": &s.PeerDownloadRate,
		"relay-data": &s.RelayLimits.Data, "relay-duration": &s.RelayLimits.Duration,
		"reachability": &s.Reachability, "network": &s.Network,
	} {
		if c.IsSet(flag) {
			*dst = c.String(flag)
		}
	}
	for flag, dst := range map[string]*int{
		"upload-slots": &s.UploadSlots, "relay-reservations": &s.RelayLimits.Reservations, "relay-circuits": &s.RelayLimits.Circuits,
	} {
		if c.IsSet(flag) {
			*dst = c.Int(flag)
		}
	}
	for flag, dst := range map[string]*bool{
		"nat-portmap": &s.NATPortMap, "relay-service": &s.RelayService, "relay-unlimited": &s.RelayLimits.Unlimited,
		"autonat-service": &s.AutoNATService, "no-hole-punch": &s.NoHolePunch, "bitswap": &s.Bitswap,
	} {
		if c.IsSet(flag) {
			*dst = c.Bool(flag)
		}
	}
	if c.IsSet("allow-peer") {
		s.AllowPeers = splitList(c.StringSlice("allow-peer"))
	}
	if c.IsSet("relay") {
		s.Relays = splitList(c.StringSlice("relay"))
	}
	if c.IsSet("swarm-key") {
		// A path on the command line or in PEER_SWARM_KEY is relative to
		// the working directory; in config.json, to the home.
		if k := strings.TrimSpace(c.String("swarm-key")); k != "" {
			if s.SwarmKey, err = absPath(k); err != nil {
				return "", s, err
			}
		}
	}
	return home, s, nil
}

// splitList drops empty entries (PEER_BOOTSTRAP="" means none).
func splitList(in []string) []string {
	out := []string{}
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// logger writes the node's logs to stderr at level.
func logger(c *cli.Context, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
}

// nodeUse says what a command needs when no daemon runs.
type nodeUse int

const (
	needDaemon nodeUse = iota // refuse: the command is about the daemon
	offline                   // a node on loopback with no DHT, for the database only
	online                    // a full node, as the settings say
)

// connect returns the API of the home's daemon, or, when none runs and use
// allows it, of a node started in this process (closed by the returned
// func).
func connect(c *cli.Context, use nodeUse) (daemon.API, func(), error) {
	home, s, err := settingsOf(c, use == online)
	if err != nil {
		return nil, nil, err
	}
	cl, err := daemon.Dial(c.Context, home)
	if err == nil {
		for _, f := range nodeFlags() {
			if name := f.Names()[0]; c.IsSet(name) && !c.Bool("json") {
				fmt.Fprintf(c.App.ErrWriter, "note: --%s (or its PEER_ variable) does not apply: the daemon at %s runs with its own settings\n", name, cl.Addr())
			}
		}
		return cl, func() {}, nil
	}
	if !errors.Is(err, daemon.ErrNoDaemon) || use == needDaemon {
		return nil, nil, err
	}
	cfg, err := s.NodeConfig(home, logger(c, slog.LevelWarn))
	if err != nil {
		return nil, nil, err
	}
	if use == offline {
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.NoDHT, cfg.NoMDNS = true, true
	}
	n, err := node.New(c.Context, cfg)
	if err != nil {
		return nil, nil, explainBusy(err)
	}
	return daemon.NewLocal(n), func() { n.Close() }, nil
}

// absPath makes p absolute against the working directory (the daemon has
// its own).
func absPath(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return a, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// interrupted tells whether err comes from Ctrl-C.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled)
}

// explainBusy adds what to do when another process holds the home's
// database.
func explainBusy(err error) error {
	if strings.Contains(err.Error(), "in use by another process") {
		return fmt.Errorf("%w: another peer process runs on this home (a `peer share` seeding in the foreground, or a daemon starting or stopping); stop it, or use another --home", err)
	}
	return err
}
