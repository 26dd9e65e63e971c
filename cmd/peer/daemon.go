package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/node"
)

func daemonCommand() *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "run a node in the foreground and serve the local API until Ctrl-C (or SIGTERM)",
		Description: "The home directory holds the identity key, the database, config.json, the API's address\n" +
			"(api.addr) and its token (api.token, mode 0600). Flags override PEER_* variables, which\n" +
			"override config.json.",
		Flags: append([]cli.Flag{
			homeFlag(), jsonFlag,
			&cli.StringFlag{Name: "api", EnvVars: []string{"PEER_API"}, Usage: "serve the API on `ADDR` (loopback only; default 127.0.0.1 on a random port)"},
			&cli.StringFlag{Name: "metrics", EnvVars: []string{"PEER_METRICS"}, Usage: "serve Prometheus metrics at http://`ADDR`/metrics"},
			&cli.StringFlag{Name: "log-level", EnvVars: []string{"PEER_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"},
		}, append(append(nodeFlags(), chunkingFlags()...), gatewayFlags()...)...),
		Action: runDaemon,
	}
}

type daemonInfo struct {
	ID      string   `json:"id"`
	Addrs   []string `json:"addrs"`
	API     string   `json:"api"`
	Metrics string   `json:"metrics,omitempty"`
	Gateway string   `json:"gateway,omitempty"` // http://HOST:PORT/ipfs/
	Home    string   `json:"home"`
}

func runDaemon(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("daemon: unexpected argument %q (flags go before arguments; see peer daemon --help)", c.Args().First())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("daemon: --log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	home, s, err := settingsOf(c, true)
	if err != nil {
		return err
	}
	log := logger(c, level)
	cfg, err := s.NodeConfig(home, log)
	if err != nil {
		return err
	}
	applyGatewayFlags(c, &s)
	gw, err := s.GatewayAddr()
	if err != nil {
		return err
	}
	d, err := daemon.Start(c.Context, daemon.Options{Home: home, Node: cfg, API: s.API, Metrics: s.Metrics,
		Gateway: gw, GatewayFetch: s.GatewayFetch, Publish: s.Publish, Follow: s.Follow, Logger: log})
	if err != nil {
		return explainBusy(err)
	}
	info := daemonInfo{ID: d.Node().ID().String(), API: d.APIAddr(), Metrics: d.MetricsAddr(), Gateway: d.GatewayURL(""), Home: home}
	for _, a := range d.Node().Addrs() {
		info.Addrs = append(info.Addrs, a.String())
	}
	if c.Bool("json") {
		// One line, so that a script can read it as soon as the daemon is up.
		printLine(c.App.Writer, info)
	} else {
		w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "peer daemon %s\n", node.Version)
		fmt.Fprintf(w, "peer ID\t%s\n", info.ID)
		for i, a := range info.Addrs {
			label := ""
			if i == 0 {
				label = "listening on"
			}
			fmt.Fprintf(w, "%s\t%s\n", label, a)
		}
		fmt.Fprintf(w, "API\t%s (token in %s)\n", info.API, filepath.Join(home, daemon.TokenFile))
		printGateway(w, d)
		fmt.Fprintf(w, "web UI	http://%s/ui/ (run `peer ui` for a sign-in link)\n", info.API)
		if info.Metrics != "" {
			fmt.Fprintf(w, "metrics\thttp://%s/metrics\n", info.Metrics)
		}
		if len(cfg.SwarmKey) > 0 {
			kp, _ := s.SwarmKeyPath(home)
			fmt.Fprintf(w, "private network\tswarm key %s: only nodes with the same key connect, over TCP only\n", kp)
		}
		if n := len(cfg.AllowPeers); n > 0 {
			fmt.Fprintf(w, "allowed peers\t%d (no other peer can connect)\n", n)
		}
		if cfg.UploadRate|cfg.DownloadRate|cfg.PeerUploadRate|cfg.PeerDownloadRate != 0 {
			fmt.Fprintf(w, "caps\tupload %s (each peer %s), download %s (each peer %s)\n",
				rateString(cfg.UploadRate), rateString(cfg.PeerUploadRate), rateString(cfg.DownloadRate), rateString(cfg.PeerDownloadRate))
		}
		fmt.Fprintf(w, "home\t%s\n", home)
		w.Flush()
		fmt.Fprintln(c.App.Writer, "Ctrl-C stops it.")
	}
	<-c.Context.Done()
	log.Info("stopping")
	if err := d.Close(); err != nil {
		return fmt.Errorf("daemon: stopping: %w", err)
	}
	log.Info("stopped")
	return nil
}
