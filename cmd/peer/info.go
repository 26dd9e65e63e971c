package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/node"
)

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:  "ls",
		Usage: "list what this node shares",
		Flags: []cli.Flag{homeFlag(), jsonFlag},
		Action: callAPI(offline, func(c *cli.Context, api daemon.API) ([]daemon.ShareInfo, error) {
			return api.Shares(c.Context)
		}, func(c *cli.Context, shares []daemon.ShareInfo) error {
			if len(shares) == 0 {
				fmt.Fprintln(c.App.ErrWriter, "nothing shared yet: peer share PATH")
				return nil
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ROOT\tSIZE\tFILES\tPATH")
			for _, s := range shares {
				note := ""
				if s.Stale {
					note = "  (changed since shared: share it again)"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s%s\n", s.Root, humanBytes(s.Size), s.Files, s.Path, note)
			}
			return w.Flush()
		}),
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the daemon's node: ID, addresses, peers, transfers, bandwidth, caps, reachability and relays, stale shares",
		Flags: []cli.Flag{homeFlag(), jsonFlag},
		Action: callAPI(needDaemon, func(c *cli.Context, api daemon.API) (daemon.StatusInfo, error) {
			return api.Status(c.Context)
		}, func(c *cli.Context, st daemon.StatusInfo) error {
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "peer ID\t%s\n", st.ID)
			for i, a := range st.Addrs {
				label := ""
				if i == 0 {
					label = "listening on"
				}
				fmt.Fprintf(w, "%s\t%s\n", label, a)
			}
			fmt.Fprintf(w, "up\t%s (peer %s)\n", (time.Duration(st.Uptime) * time.Second).String(), st.Version)
			printNetwork(w, st)
			fmt.Fprintf(w, "peers\t%d connected, %d in the DHT table, %d banned\n", st.Peers, st.DHTPeers, st.Banned)
			fmt.Fprintf(w, "shares\t%d\n", st.Shares)
			fmt.Fprintf(w, "bandwidth\tup %s/s (%s in all), down %s/s (%s in all)\n",
				humanBytes(int64(st.RateUp)), humanBytes(st.BytesUp), humanBytes(int64(st.RateDown)), humanBytes(st.BytesDown))
			fmt.Fprintf(w, "chunks\t%d verified, %d rejected, %d served; %d upload sessions\n", st.Verified, st.Rejected, st.Served, st.Uploads)
			fmt.Fprintf(w, "transfers\t%d\n", len(st.Transfers))
			for _, t := range st.Transfers {
				fmt.Fprintf(w, "\t%s → %s: %s of %s from %d %s\n", t.Target, t.Dest, humanBytes(t.Bytes), humanBytes(t.Total), t.Peers, plural(t.Peers, "peer", "peers"))
			}
			printLimits(w, st)
			printReach(w, st.Reachability, st.Network == "public")
			if err := w.Flush(); err != nil {
				return err
			}
			printStale(c.App.Writer, st.StaleShares)
			return nil
		}),
	}
}

func peersCommand() *cli.Command {
	return &cli.Command{
		Name:  "peers",
		Usage: "list the peers the daemon is connected to, and whether each is direct or relayed",
		Flags: []cli.Flag{homeFlag(), jsonFlag},
		Action: callAPI(needDaemon, func(c *cli.Context, api daemon.API) ([]daemon.PeerInfo, error) {
			return api.Peers(c.Context)
		}, func(c *cli.Context, ps []daemon.PeerInfo) error {
			if len(ps) == 0 {
				fmt.Fprintln(c.App.ErrWriter, "no peers connected")
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			for _, p := range ps {
				note := ""
				if p.Banned {
					note = "  (banned)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s%s\n", p.ID, peerPath(p), strings.Join(p.Addrs, " "), note)
			}
			return w.Flush()
		}),
	}
}

func unshareCommand() *cli.Command {
	return &cli.Command{
		Name:      "unshare",
		Usage:     "stop sharing a root (the files stay where they are)",
		ArgsUsage: "ROOT",
		Flags:     []cli.Flag{homeFlag(), jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("unshare: name one ROOT (see peer ls)")
			}
			api, done, err := connect(c, offline)
			if err != nil {
				return err
			}
			defer done()
			root := c.Args().First()
			if err := api.Unshare(c.Context, root); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]string{"unshared": root})
			}
			fmt.Fprintf(c.App.Writer, "no longer sharing %s\n", root)
			return nil
		},
	}
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "list a root's DAG: files, sizes and leaf (chunk) CIDs",
		ArgsUsage: "ROOT|TICKET|ROOT/path",
		Flags: append([]cli.Flag{
			homeFlag(), jsonFlag,
			&cli.StringSliceFlag{Name: "peer", Usage: "also ask the peer at `MULTIADDR` for the DAG's nodes (repeatable)"},
			&cli.BoolFlag{Name: "chunks", Usage: "list every chunk (text output)"},
		}, nodeFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("inspect: name one ROOT, TICKET or ROOT/path")
			}
			return callAPI(online, func(c *cli.Context, api daemon.API) (daemon.ListingInfo, error) {
				return api.Inspect(c.Context, daemon.InspectRequest{Target: c.Args().First(), Peers: splitList(c.StringSlice("peer"))})
			}, printListing)(c)
		},
	}
}

// printListing prints what inspect found, with every chunk under --chunks.
func printListing(c *cli.Context, m daemon.ListingInfo) error {
	kind := "file"
	if m.Dir {
		kind = fmt.Sprintf("folder of %d files", len(m.Files))
	}
	fmt.Fprintf(c.App.Writer, "%s  %s  %s, %s\n", m.Root, m.Name, kind, humanBytes(m.Size))
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	for _, f := range m.Files {
		p := f.Path
		if p == "" {
			p = m.Name
		}
		fmt.Fprintf(w, "%s\t%d bytes\t%d chunks (%s)\t%s\n", p, f.Size, len(f.Chunks), f.Chunker, f.CID)
		if c.Bool("chunks") {
			for _, ch := range f.Chunks {
				fmt.Fprintf(w, "\t  @%d\t%d\t%s\n", ch.Offset, ch.Size, ch.CID)
			}
		}
	}
	return w.Flush()
}

func idCommand() *cli.Command {
	return &cli.Command{
		Name:  "id",
		Usage: "print this node's peer ID (and, with a daemon running, its addresses)",
		Flags: []cli.Flag{homeFlag(), jsonFlag},
		Action: func(c *cli.Context) error {
			home, err := daemon.HomeDir(c.String("home"))
			if err != nil {
				return err
			}
			info := daemon.IDInfo{Addrs: []string{}}
			if cl, err := daemon.Dial(c.Context, home); err == nil {
				if info, err = cl.ID(c.Context); err != nil {
					return fmt.Errorf("id: %w", err)
				}
			} else {
				id, err := node.IdentityOf(home)
				if err != nil {
					return fmt.Errorf("id: %w", err)
				}
				info.ID = id.String()
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, info)
			}
			fmt.Fprintln(c.App.Writer, info.ID)
			for _, a := range info.Addrs {
				fmt.Fprintln(c.App.Writer, a)
			}
			return nil
		},
	}
}

// peerPath says how a peer is connected: direct, or relayed via whom.
func peerPath(p daemon.PeerInfo) string {
	if p.Direct {
		return "direct"
	}
	if len(p.Relays) == 0 {
		return "?"
	}
	out := "relayed via " + strings.Join(p.Relays, ", ")
	if p.Limited {
		out += " (limited: waits for a hole punch)"
	}
	return out
}

// rateString prints a cap in bytes per second; 0 is no cap.
func rateString(n int64) string {
	if n == 0 {
		return "no cap"
	}
	return humanBytes(n) + "/s"
}

func printLimits(w io.Writer, st daemon.StatusInfo) {
	l := st.Limits
	fmt.Fprintf(w, "caps\tupload %s (each peer %s), download %s (each peer %s), %d upload slots\n",
		rateString(l.UploadRate), rateString(l.PeerUploadRate), rateString(l.DownloadRate), rateString(l.PeerDownloadRate), l.UploadSlots)
	access := "public network"
	if st.PrivateNetwork {
		access = "private network (swarm key; TCP only)"
	}
	if n := len(st.AllowPeers); n > 0 {
		access += fmt.Sprintf(", only %d allowed %s", n, plural(n, "peer", "peers"))
	} else {
		access += ", every peer allowed"
	}
	fmt.Fprintf(w, "access\t%s\n", access)
}

// printNetwork says which network the node joined, and through what.
func printNetwork(w io.Writer, st daemon.StatusInfo) {
	dht := "no DHT"
	if st.DHTProtocol != "" {
		dht = fmt.Sprintf("DHT %s through %d bootstrap %s", st.DHTProtocol, st.BootstrapPeers, plural(st.BootstrapPeers, "peer", "peers"))
	}
	switch st.Network {
	case "public":
		fmt.Fprintf(w, "network\tpublic (the IPFS network): %s\n", dht)
	default:
		fmt.Fprintf(w, "network\t%s (LAN, tickets and named peers): %s\n", st.Network, dht)
	}
}

// printReach prints r; public says relays come from the node's peers
// when none are configured.
func printReach(w io.Writer, r daemon.ReachInfo, public bool) {
	how := "AutoNAT"
	if r.Forced {
		how = "set by --reachability"
	}
	fmt.Fprintf(w, "reachability\t%s (%s); peers %d direct, %d relayed\n", r.State, how, r.Direct, r.Relayed)
	var on []string
	if r.NATPortMap {
		on = append(on, "NAT port mapping")
	}
	if r.HolePunching {
		on = append(on, "hole punching")
	} else {
		on = append(on, "no hole punching")
	}
	if r.AutoNATService {
		on = append(on, "AutoNAT service")
	}
	fmt.Fprintf(w, "\t%s\n", strings.Join(on, ", "))
	for _, a := range r.PublicAddrs {
		fmt.Fprintf(w, "\tpublic address %s\n", a)
	}
	switch {
	case len(r.Reservations) > 0 && public && len(r.Relays) == 0:
		fmt.Fprintf(w, "relays\t%d %s on relays found among peers\n", len(r.Reservations), plural(len(r.Reservations), "reservation", "reservations"))
		for _, rv := range r.Reservations {
			fmt.Fprintf(w, "\t%s\n", rv.Relay)
			for _, a := range rv.Addrs {
				fmt.Fprintf(w, "\t  %s\n", a)
			}
		}
	case len(r.Reservations) > 0:
		fmt.Fprintf(w, "relays\t%d %s of %d configured\n", len(r.Reservations), plural(len(r.Reservations), "reservation", "reservations"), len(r.Relays))
		for _, rv := range r.Reservations {
			fmt.Fprintf(w, "\t%s\n", rv.Relay)
			for _, a := range rv.Addrs {
				fmt.Fprintf(w, "\t  %s\n", a)
			}
		}
	case len(r.Relays) > 0:
		fmt.Fprintf(w, "relays\tno reservation yet on the %d configured (one is made while the node is not publicly reachable)\n", len(r.Relays))
	case public:
		fmt.Fprintf(w, "relays\tno reservation (one is made on a relay found among peers while the node is not publicly reachable)\n")
	default:
		fmt.Fprintf(w, "relays\tnone configured (--relay MULTIADDR)\n")
	}
	if r.RelayService != nil {
		fmt.Fprintf(w, "relay service\ton: %s\n", r.RelayService.Summary)
	}
}

// printStale lists the shares whose files changed since they were shared,
// and what to do.
func printStale(w io.Writer, stale []daemon.ShareInfo) {
	if len(stale) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d %s changed on disk since shared (only the chunks that still verify are served):\n", len(stale), plural(len(stale), "share", "shares"))
	for _, s := range stale {
		fmt.Fprintf(w, "  %s  %s\n", s.Root, s.Path)
	}
	fmt.Fprintln(w, "Share each again to serve what is there now: peer share PATH (then peer unshare OLDROOT).")
}

// callAPI returns the action of a command that asks the node one thing: it
// connects as use says, calls do, and prints the answer, as JSON with
// --json or else through text. Errors carry the command's name.
func callAPI[T any](use nodeUse, do func(*cli.Context, daemon.API) (T, error), text func(*cli.Context, T) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		api, done, err := connect(c, use)
		if err != nil {
			return err
		}
		defer done()
		v, err := do(c, api)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Command.Name, err)
		}
		if c.Bool("json") {
			return printJSON(c.App.Writer, v)
		}
		return text(c, v)
	}
}
