package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/node"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a local swarm on 127.0.0.1: one node shares a file, the others fetch it from each other",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "peers", Value: 8, Usage: "nodes in the swarm, the sharer included (2 to 64)"},
			&cli.StringFlag{Name: "size", Value: "64MiB", Usage: "size of the generated file"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the file's content and the nodes' choices"},
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

func runDemo(c *cli.Context) error {
	n := c.Int("peers")
	if n < 2 || n > 64 {
		return fmt.Errorf("demo: --peers %d: want 2 to 64", n)
	}
	size, err := parseSize(c.String("size"))
	if err != nil {
		return fmt.Errorf("demo: --size: %w", err)
	}
	dir := c.String("dir")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "peer-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	say := func(format string, args ...any) {
		if !c.Bool("json") {
			fmt.Fprintf(c.App.ErrWriter, format+"\n", args...)
		}
	}
	ctx := c.Context
	seed := c.Uint64("seed")

	say("writing a %d-byte file...", size)
	src := filepath.Join(dir, "shared", "demo.bin")
	want, err := writeRandom(src, size, seed)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nodes := make([]*node.Node, n)
	defer func() {
		for _, nd := range nodes {
			if nd != nil {
				nd.Close()
			}
		}
	}()
	for i := range nodes {
		cfg := node.DefaultConfig()
		cfg.Home = filepath.Join(dir, fmt.Sprintf("node%02d", i))
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.NoMDNS = true
		cfg.NoSync = true
		cfg.Seed = seed + uint64(i)
		cfg.Logger = quiet
		if i > 0 {
			for _, a := range nodes[0].Addrs() {
				cfg.Bootstrap = append(cfg.Bootstrap, a.String())
			}
		}
		if nodes[i], err = node.New(ctx, cfg); err != nil {
			return fmt.Errorf("demo: starting node %d: %w", i, err)
		}
	}
	say("started %d nodes on 127.0.0.1; node 0 shares", n)
	sh, err := nodes[0].Share(ctx, src, node.ShareOptions{})
	if err != nil {
		return err
	}
	say("root %s", sh.Root)

	rep := demoReport{Root: sh.Root.String(), Size: int64(size), Peers: n, AllVerified: true}
	start := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dest := filepath.Join(dir, fmt.Sprintf("node%02d", i), "demo.bin")
			t0 := time.Now()
			res, err := nodes[i].Fetch(ctx, node.Target{Root: sh.Root}, dest, node.FetchOptions{Peers: []peer.AddrInfo{nodes[0].AddrInfo()}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("node %d: %w", i, err))
				return
			}
			got, _ := os.ReadFile(dest)
			ok := bytes.Equal(got, want)
			fromSeed := res.Progress.PerPeer[nodes[0].ID()]
			rep.Fetchers = append(rep.Fetchers, demoPeer{
				Peer: nodes[i].ID().String(), Seconds: time.Since(t0).Seconds(),
				FromSeed: fromSeed, FromPeers: res.Progress.Bytes - fromSeed, Verified: ok,
			})
			rep.AllVerified = rep.AllVerified && ok
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("demo: %d fetches failed; first: %w", len(errs), errs[0])
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.SharerUpload = float64(nodes[0].Stats().BytesUp) / float64(size)
	sort.Slice(rep.Fetchers, func(i, j int) bool { return rep.Fetchers[i].Seconds < rep.Fetchers[j].Seconds })
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
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

// writeRandom writes size pseudo-random bytes from seed to path and returns
// them.
func writeRandom(path string, size int, seed uint64) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, size)
	for i := 0; i < size; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	return b, nil
}
