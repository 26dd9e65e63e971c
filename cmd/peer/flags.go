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
		&cli.StringSliceFlag{Name: "bootstrap", EnvVars: []string{"PEER_BOOTSTRAP"}, Usage: "join the DHT through `MULTIADDR` (/ip4/…/tcp/…/p2p/ID, repeatable)"},
		&cli.StringFlag{Name: "dht", EnvVars: []string{"PEER_DHT"}, Usage: "DHT mode: server, client, auto or off (default server)"},
		&cli.BoolFlag{Name: "no-mdns", EnvVars: []string{"PEER_NO_MDNS"}, Usage: "no mDNS discovery on the local network (never run on loopback-only addresses)"},
		&cli.StringFlag{Name: "find-timeout", EnvVars: []string{"PEER_FIND_TIMEOUT"}, Usage: "how long a fetch looks for a peer that has the root (default 60s)"},
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
	return daemon.NewLocal(n, cfg.FindTimeout), func() { n.Close() }, nil
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
