// Command peer shares and fetches files peer to peer, verified chunk by
// chunk.
//
// `peer daemon` runs a node from a home directory (--home, PEER_HOME,
// ~/.peer) and serves a local API; `share`, `get`, `ls`, `status`, `peers`,
// `unshare`, `inspect`, `export` and `import` talk to it, and `share` and `get` run a node in
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
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/node"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C stops the command cleanly; a second one, during
	// that, kills the process as usual.
	context.AfterFunc(ctx, stop)
	app := newApp(os.Stdout, os.Stderr)
	err := app.RunContext(ctx, flagsFirst(app, os.Args))
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
			publishCommand(),
			getCommand(),
			lsCommand(),
			statusCommand(),
			peersCommand(),
			unshareCommand(),
			inspectCommand(),
			exportCommand(),
			importCommand(),
			idCommand(),
			uiCommand(),
			demoCommand(),
			simulateCommand(),
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

// flagsFirst moves a command's flags before its arguments, so that
// `peer get ROOT -o DEST` works as well as `peer get -o DEST ROOT` (the cli
// package stops reading flags at the first argument). Everything after "--"
// stays an argument.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) < 3 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	flags := []string{}
	var rest []string
	for i := 2; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	out := append([]string{args[0], args[1]}, flags...)
	return append(out, rest...)
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
func chunkingFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "chunker", EnvVars: []string{"PEER_CHUNKER"}, Usage: "fixed or fastcdc (default fixed)"},
		&cli.StringFlag{Name: "chunk-size", EnvVars: []string{"PEER_CHUNK_SIZE"}, Usage: "chunk size (fixed) or average size (fastcdc), from 16KiB to 4MiB (default 1MiB)"},
	}
}

// chunkingOf returns the chunking the flags, the environment or the config
// file (in that order: settingsOf applies them) ask for; what none of them
// says is the node's default.
func chunkingOf(s daemon.Settings) (node.Chunking, error) {
	return daemon.ParseChunking(s.Chunker, s.ChunkSize)
}

// parseSize reads "1048576", "256KiB", "1MiB", "4M".
func parseSize(s string) (int, error) { return daemon.ParseSize(s) }
