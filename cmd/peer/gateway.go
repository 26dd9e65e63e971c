package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
)

// gatewayFlags are the daemon's flags for its HTTP gateway.
func gatewayFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "gateway", EnvVars: []string{"PEER_GATEWAY"}, Usage: "serve the HTTP gateway (GET /ipfs/ROOT[/path]) on `ADDR`; \"off\" for none (default " + daemon.DefaultGateway + ", or a free loopback port when that one is taken)"},
		&cli.BoolFlag{Name: "gateway-fetch", EnvVars: []string{"PEER_GATEWAY_FETCH"}, Usage: "let a gateway on a non-loopback address serve roots this node does not share, fetched from the swarm (on loopback it always does)"},
	}
}

// applyGatewayFlags sets the gateway's settings from the flags that are set.
func applyGatewayFlags(c *cli.Context, s *daemon.Settings) {
	if c.IsSet("gateway") {
		s.Gateway = c.String("gateway")
	}
	if c.IsSet("gateway-fetch") {
		s.GatewayFetch = c.Bool("gateway-fetch")
	}
}

// printGateway prints the gateway line of the daemon's banner.
func printGateway(w io.Writer, d *daemon.Daemon) {
	u := d.GatewayURL("")
	switch {
	case u == "":
		fmt.Fprintf(w, "gateway\toff\n")
	case d.GatewayFetches():
		fmt.Fprintf(w, "gateway\t%sROOT/path (read-only)\n", u)
	default:
		fmt.Fprintf(w, "gateway\t%sROOT/path (read-only; this node's shares only: --gateway-fetch serves any root)\n", u)
	}
}

// gatewayLink returns the gateway URL of root when a daemon runs a gateway
// for the home of c, else "".
func gatewayLink(c *cli.Context, root string) string {
	home, err := daemon.HomeDir(c.String("home"))
	if err != nil {
		return ""
	}
	return daemon.GatewayURL(home, root)
}
