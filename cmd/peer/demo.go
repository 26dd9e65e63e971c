package main

import (
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/simulate"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a local swarm on 127.0.0.1: one node shares a file, the others fetch it from each other",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "peers", Value: 8, Usage: "nodes in the swarm, the sharer included (2 to 64)"},
			&cli.StringFlag{Name: "size", Value: "64MiB", Usage: "size of the generated file (up to 1GiB)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the file's content, the identities and the nodes' choices"},
			&cli.StringFlag{Name: "dir", Usage: "keep the nodes' homes and files here (default: a temporary folder, removed)"},
			jsonFlag,
		},
		Action: runDemo,
	}
}

type demoPeer struct {
	Peer      string  `json:"peer"`
	Seconds   float64 `json:"seconds"`
	FromSeed  int64   `json:"bytes_from_sharer"`
	FromPeers int64   `json:"bytes_from_peers"`
	Verified  bool    `json:"sha256_matches"`
}

type demoReport struct {
	Root         string     `json:"root"`
	Size         int64      `json:"size"`
	Peers        int        `json:"peers"`
	Seconds      float64    `json:"seconds"`
	SharerUpload float64    `json:"sharer_upload_x_file"`
	AllVerified  bool       `json:"all_verified"`
	Fetchers     []demoPeer `json:"fetchers"`
}

// runDemo runs simulate's loopback scenario (simulate.Demo) and prints
// what each fetcher got from whom.
func runDemo(c *cli.Context) error {
	n := c.Int("peers")
	if n < 2 || n > 64 {
		return fmt.Errorf("demo: --peers %d: want 2 to 64", n)
	}
	size, err := parseSize(c.String("size"))
	if err != nil {
		return fmt.Errorf("demo: --size: %w", err)
	}
	sc := simulate.Demo(n, int64(size), c.Uint64("seed"))
	if sc.Dir = c.String("dir"); sc.Dir != "" {
		if err := os.MkdirAll(sc.Dir, 0o755); err != nil {
			return fmt.Errorf("demo: --dir: %w", err)
		}
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.ErrWriter, "starting %d nodes on 127.0.0.1 (TCP): node 0 shares a %s file, the others fetch it at once...\n", n, mib(int64(size)))
	}
	sim, err := simulate.Run(c.Context, sc)
	if sim == nil {
		return fmt.Errorf("demo: %w", err)
	}
	rep := demoReport{Root: sim.Root, Size: int64(size), Peers: n, Seconds: sim.FetchSeconds, SharerUpload: sim.SeederUpload, AllVerified: sim.Intact == sim.Fetchers}
	for _, p := range sim.PeersOut {
		if p.Seeder || !p.Completed {
			continue
		}
		rep.Fetchers = append(rep.Fetchers, demoPeer{
			Peer: p.IDs[len(p.IDs)-1], Seconds: p.Seconds,
			FromSeed: p.FromSeeders, FromPeers: int64(size) - p.FromSeeders, Verified: p.Intact,
		})
	}
	sort.SliceStable(rep.Fetchers, func(i, j int) bool { return rep.Fetchers[i].Seconds < rep.Fetchers[j].Seconds })
	if err != nil {
		return fmt.Errorf("demo: %w", err) // an invariant failed: a fetch or a copy
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	fmt.Fprintf(c.App.Writer, "root %s\n", rep.Root)
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "fetcher\tseconds\tfrom sharer\tfrom peers\tsha256")
	for _, f := range rep.Fetchers {
		mark := "ok"
		if !f.Verified {
			mark = "MISMATCH"
		}
		fmt.Fprintf(w, "%s\t%.2f\t%s\t%s\t%s\n", f.Peer[len(f.Peer)-8:], f.Seconds, mib(f.FromSeed), mib(f.FromPeers), mark)
	}
	w.Flush()
	fmt.Fprintf(c.App.Writer, "%d fetchers got %s in %.2f s; the sharer uploaded %.2f× the file; every copy verified: %v\n",
		n-1, mib(int64(size)), rep.Seconds, rep.SharerUpload, rep.AllVerified)
	if !rep.AllVerified {
		return fmt.Errorf("demo: a fetched copy differs from the original")
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
