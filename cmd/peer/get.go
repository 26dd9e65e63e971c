package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "fetch a root, a ticket or ROOT/path from every peer that has it",
		ArgsUsage: "ROOT|TICKET|ROOT/path|/ipns/NAME[/path]",
		Description: "Writes to the target's own name in the current folder (said before anything is written;\n" +
			"a name that starts with '.' or does not print as itself needs -o), or to -o DEST; -o - streams\n" +
			"one file to stdout. An existing DEST is kept unless --force, which replaces a file with a file,\n" +
			"and a folder only if it holds nothing the target does not list. Interrupted (Ctrl-C), the same\n" +
			"command resumes where it stopped. Through the daemon if one runs, else a node runs for the fetch.",
		Flags: append([]cli.Flag{
			homeFlag(), jsonFlag,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `DEST` (a file, or a folder for a folder root); - streams a file to stdout"},
			&cli.StringSliceFlag{Name: "peer", Usage: "also ask the peer at `MULTIADDR` (/ip4/…/tcp/…/p2p/ID, repeatable)"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing DEST (a file; a folder only if it holds nothing the target does not list)"},
			&cli.BoolFlag{Name: "follow", Usage: "keep the folder -o DIR equal to the latest version of the name /ipns/NAME until Ctrl-C (receive-only; files changed here are left alone)"},
		}, nodeFlags()...),
		Action: runGet,
	}
}

func runGet(c *cli.Context) error {
	if c.Bool("follow") {
		return runFollow(c)
	}
	if c.NArg() != 1 {
		return fmt.Errorf("get: name one ROOT, TICKET or ROOT/path (got %d arguments)", c.NArg())
	}
	req := daemon.GetRequest{Target: c.Args().First(), Force: c.Bool("force"), Peers: splitList(c.StringSlice("peer"))}
	out := c.String("output")
	switch out {
	case "-":
	case "":
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		req.Dir = wd
	default:
		a, err := absPath(out)
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		req.Dest = a
	}
	api, done, err := connect(c, online)
	if err != nil {
		return err
	}
	defer done()
	if out == "-" {
		if err := api.Cat(c.Context, req, wholeWrites{c.App.Writer}); err != nil {
			if interrupted(c.Context, err) {
				return fmt.Errorf("get: %w", context.Canceled)
			}
			return fmt.Errorf("get: %w", err)
		}
		return nil
	}
	show := progressPrinter(c, out == "")
	res, err := api.Get(c.Context, req, show)
	show(daemon.ProgressInfo{}) // ends the bar's line
	if err != nil {
		if interrupted(c.Context, err) {
			return fmt.Errorf("get: interrupted (what was fetched is kept; run the same command again to resume): %w", context.Canceled)
		}
		return fmt.Errorf("get: %w", err)
	}
	if c.Bool("json") {
		return printLine(c.App.Writer, struct {
			Event string `json:"event"`
			daemon.GetResult
		}{"done", res})
	}
	peers := 0
	for _, b := range res.FromPeers {
		if b > 0 {
			peers++
		}
	}
	rate := ""
	if res.Seconds > 0 {
		rate = fmt.Sprintf(", %s/s", humanBytes(int64(float64(res.Size)/res.Seconds)))
	}
	fmt.Fprintf(c.App.Writer, "%s → %s: %s in %.2f s%s from %d %s", res.Root, res.Dest, humanBytes(res.Size), res.Seconds, rate, peers, plural(peers, "peer", "peers"))
	if res.Resumed > 0 {
		fmt.Fprintf(c.App.Writer, "; resumed with %d of %d chunks already here", res.Resumed, res.Chunks)
	}
	if res.Local > 0 {
		fmt.Fprintf(c.App.Writer, "; %s copied from files already here", humanBytes(res.Local))
	}
	fmt.Fprintln(c.App.Writer)
	return nil
}

// progressPrinter returns what shows a fetch's progress: NDJSON events on
// stdout with --json (the first says where the fetch writes), a bar on
// stderr when it is a terminal, else nothing. With named (the target's own
// name is written, not one the user chose), where it writes is said on
// stderr before anything is written. Called with a zero ProgressInfo, it
// ends the bar's line.
func progressPrinter(c *cli.Context, named bool) func(daemon.ProgressInfo) {
	show := barPrinter(c)
	if !named || c.Bool("json") {
		return show
	}
	said := false
	return func(p daemon.ProgressInfo) {
		if !said && p.Dest != "" {
			said = true
			fmt.Fprintf(c.App.ErrWriter, "writing %s\n", p.Dest)
		}
		show(p)
	}
}

func barPrinter(c *cli.Context) func(daemon.ProgressInfo) {
	if c.Bool("json") {
		var last time.Time
		return func(p daemon.ProgressInfo) {
			if p.Total == 0 && p.Bytes == 0 && p.Root == "" && p.Dest == "" {
				return
			}
			if now := time.Now(); p.Done || now.Sub(last) >= 100*time.Millisecond {
				last = now
				printLine(c.App.Writer, struct {
					Event string `json:"event"`
					daemon.ProgressInfo
				}{"progress", p})
			}
		}
	}
	if !isTerminal(c.App.ErrWriter) {
		return func(daemon.ProgressInfo) {}
	}
	drawn := false
	var last time.Time
	return func(p daemon.ProgressInfo) {
		if p.Total == 0 && p.Bytes == 0 && p.Root == "" {
			if drawn {
				fmt.Fprintln(c.App.ErrWriter)
			}
			return
		}
		if now := time.Now(); p.Done || now.Sub(last) >= 100*time.Millisecond {
			last = now
			drawn = true
			fmt.Fprint(c.App.ErrWriter, "\r"+progressLine(p, 30)+"\x1b[K")
		}
	}
}

// progressLine draws one line: bar, bytes, rate, peers and ETA.
func progressLine(p daemon.ProgressInfo, width int) string {
	frac := 0.0
	if p.Total > 0 {
		frac = float64(p.Bytes) / float64(p.Total)
	}
	fill := int(frac * float64(width))
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	eta := "ETA --"
	switch {
	case p.Done:
		eta = "in " + time.Duration(p.Elapsed*float64(time.Second)).Round(100*time.Millisecond).String()
	case p.ETA > 0:
		d := time.Duration(p.ETA * float64(time.Second))
		if d < 10*time.Second {
			d = d.Round(100 * time.Millisecond)
		} else {
			d = d.Round(time.Second)
		}
		eta = "ETA " + d.String()
	}
	return fmt.Sprintf("%s %3.0f%%  %s / %s  %s/s  %d %s  %s", bar, 100*frac, humanBytes(p.Bytes), humanBytes(p.Total),
		humanBytes(int64(p.Rate)), p.Peers, plural(p.Peers, "peer", "peers"), eta)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// humanBytes prints n in B, KiB, MiB, GiB or TiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[i])
}

// stdoutBuffer is how many bytes wholeWrites reads before one write: a
// chunk of the default size, in one write.
const stdoutBuffer = 1 << 20

// wholeWrites is the stdout of `get -o -`. A reader that writes whole
// chunks itself (node.Reader, the in-process path) writes them to it as
// they are; from any other reader (the daemon's HTTP body) it reads up to
// stdoutBuffer bytes per write, where os.File's ReadFrom would make a
// write of 32 KiB each.
type wholeWrites struct{ w io.Writer }

func (w wholeWrites) Write(p []byte) (int, error) { return w.w.Write(p) }

// ReadFrom implements io.ReaderFrom.
func (w wholeWrites) ReadFrom(r io.Reader) (int64, error) {
	if wt, ok := r.(io.WriterTo); ok {
		return wt.WriteTo(w.w)
	}
	return io.CopyBuffer(struct{ io.Writer }{w.w}, r, make([]byte, stdoutBuffer))
}
