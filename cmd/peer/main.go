// Command peer shares and fetches files peer to peer, verified chunk by
// chunk.
//
// `peer daemon` runs a node from a home directory (--home, PEER_HOME,
// ~/.peer) and serves a local API; `share`, `get`, `ls`, `status`, `peers`,
// `unshare` and `inspect` talk to it, and `share` and `get` run a node in
// the foreground when no daemon runs. `peer demo` runs a local swarm. This
// package only maps flags onto the daemon and node packages and prints what
// they return; every command prints only JSON on stdout with --json.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/node"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
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
		// Errors are printed once, by main (or the test), not by the app.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			daemonCommand(),
			shareCommand(),
			getCommand(),
			lsCommand(),
			statusCommand(),
			peersCommand(),
			unshareCommand(),
			inspectCommand(),
			idCommand(),
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

// printLine prints v as one line of JSON (NDJSON).
func printLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// chunkingFlags are the flags that choose how files are cut.
var chunkingFlags = []cli.Flag{
	&cli.StringFlag{Name: "chunker", Value: chunker.Fixed, EnvVars: []string{"PEER_CHUNKER"}, Usage: "fixed or fastcdc"},
	&cli.StringFlag{Name: "chunk-size", Value: "1MiB", EnvVars: []string{"PEER_CHUNK_SIZE"}, Usage: "chunk size (fixed) or average size (fastcdc), from 16KiB to 4MiB"},
}

// chunkingOf returns the chunking the flags, the environment or the config
// file (in that order) ask for.
func chunkingOf(c *cli.Context, s daemon.Settings) (chunker.Params, error) {
	alg, size := s.Chunker, s.ChunkSize
	if c.IsSet("chunker") || alg == "" {
		alg = c.String("chunker")
	}
	if c.IsSet("chunk-size") || size == "" {
		size = c.String("chunk-size")
	}
	return daemon.ParseChunking(alg, size)
}

// parseSize reads "1048576", "256KiB", "1MiB", "4M".
func parseSize(s string) (int, error) { return daemon.ParseSize(s) }
