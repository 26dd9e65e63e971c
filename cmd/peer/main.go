// Command peer shares and fetches files peer to peer.
//
// This first version hashes files the way a share would (`peer share
// --only-hash`) and runs a local demonstration swarm (`peer demo`); the
// daemon and the networked share and get commands build on the node
// package next.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/node"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "peer",
		Usage:     "share and fetch files peer to peer, verified chunk by chunk",
		Version:   node.Version,
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			shareCommand(),
			demoCommand(),
			{
				Name:  "version",
				Usage: "print the version",
				Flags: []cli.Flag{jsonFlag},
				Action: func(c *cli.Context) error {
					if c.Bool("json") {
						return printJSON(c.App.Writer, map[string]string{"version": node.Version})
					}
					fmt.Fprintln(c.App.Writer, "peer", node.Version)
					return nil
				},
			},
		},
	}
}

var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print only JSON on stdout"}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// chunkingFlags are the flags that choose how files are cut.
var chunkingFlags = []cli.Flag{
	&cli.StringFlag{Name: "chunker", Value: chunker.Fixed, Usage: "fixed or fastcdc"},
	&cli.StringFlag{Name: "chunk-size", Value: "1MiB", Usage: "chunk size (fixed) or average size (fastcdc), from 16KiB to 4MiB"},
}

func chunkingOf(c *cli.Context) (chunker.Params, error) {
	size, err := parseSize(c.String("chunk-size"))
	if err != nil {
		return chunker.Params{}, fmt.Errorf("--chunk-size: %w", err)
	}
	var p chunker.Params
	switch c.String("chunker") {
	case chunker.Fixed:
		p = chunker.FixedParams(size)
	case chunker.FastCDC:
		p = chunker.CDCParams(size)
	default:
		return p, fmt.Errorf("--chunker %q: want %s or %s", c.String("chunker"), chunker.Fixed, chunker.FastCDC)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("--chunk-size %s: %w", c.String("chunk-size"), err)
	}
	return p, nil
}

// parseSize reads "1048576", "256KiB", "1MiB", "4M".
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size (try 1MiB or 262144)", s)
	}
	return n * mult, nil
}
