package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a CAR (CARv1) of a root's whole DAG, as `ipfs dag export` does",
		ArgsUsage: "ROOT|TICKET|ROOT/path",
		Description: "Writes to stdout, or to -o FILE (written beside it and renamed when whole; an existing FILE\n" +
			"is kept unless --force). What this node lacks is fetched from the swarm first. Through the\n" +
			"daemon if one runs, else a node runs for the export.",
		Flags: append([]cli.Flag{
			homeFlag(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the CAR to `FILE` (- or nothing: stdout)"},
			&cli.StringSliceFlag{Name: "peer", Usage: "also ask the peer at `MULTIADDR` (/ip4/…/tcp/…/p2p/ID, repeatable)"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing FILE"},
		}, nodeFlags()...),
		Action: runExport,
	}
}

func runExport(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("export: name one ROOT, TICKET or ROOT/path (got %d arguments)", c.NArg())
	}
	req := daemon.ExportRequest{Target: c.Args().First(), Peers: splitList(c.StringSlice("peer"))}
	out := c.String("output")
	var dest string
	if out != "" && out != "-" {
		a, err := absPath(out)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if _, err := os.Lstat(a); err == nil && !c.Bool("force") {
			return fmt.Errorf("export: %s exists: pass --force to replace it, or choose another file with -o", a)
		}
		dest = a
	} else if isTerminal(c.App.Writer) {
		return fmt.Errorf("export: a CAR is binary: redirect stdout to a file (peer export ROOT > x.car) or pass -o FILE")
	}
	api, done, err := connect(c, online)
	if err != nil {
		return err
	}
	defer done()
	if dest == "" {
		if err := api.Export(c.Context, req, c.App.Writer); err != nil {
			return exportError(c, err)
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".part-*")
	if err != nil {
		return fmt.Errorf("export: %w (choose another file with -o)", err)
	}
	err = api.Export(c.Context, req, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dest)
	}
	if err != nil {
		os.Remove(f.Name())
		return exportError(c, err)
	}
	fi, err := os.Stat(dest)
	if err == nil {
		fmt.Fprintf(c.App.ErrWriter, "wrote %s (%s)\n", dest, humanBytes(fi.Size()))
	}
	return nil
}

func exportError(c *cli.Context, err error) error {
	if interrupted(c.Context, err) {
		return fmt.Errorf("export: %w", context.Canceled)
	}
	return fmt.Errorf("export: %w", err)
}

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "take in CAR files (every block verified) and share their roots",
		ArgsUsage: "FILE.car...",
		Description: "The leaves are kept in a file of the node's home (imports/ROOT.leaves), the rest in its\n" +
			"database; each root is then shared like `peer share` shares a path. A CAR that is not whole or\n" +
			"holds a block that does not match its CID is refused, and nothing of it is kept. Through the\n" +
			"daemon if one runs; else a node imports it, and the roots are served when `peer daemon` runs.",
		Flags:  append([]cli.Flag{homeFlag(), jsonFlag}, nodeFlags()...),
		Action: runImport,
	}
}

func runImport(c *cli.Context) error {
	if c.NArg() == 0 {
		return errors.New("import: name at least one CAR file (made by `peer export` or `ipfs dag export`)")
	}
	var paths []string
	for _, p := range c.Args().Slice() {
		a, err := absPath(p)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		if _, err := os.Stat(a); err != nil {
			return fmt.Errorf("import: %s does not exist", p)
		}
		paths = append(paths, a)
	}
	api, done, err := connect(c, offline)
	if err != nil {
		return err
	}
	defer done()
	_, foreground := api.(*daemon.Local)
	var out []daemon.ImportInfo
	for _, p := range paths {
		im, err := api.Import(c.Context, daemon.ImportRequest{Path: p})
		if err != nil {
			if interrupted(c.Context, err) {
				return fmt.Errorf("import: %w", context.Canceled)
			}
			return fmt.Errorf("import: %w", err)
		}
		out = append(out, im)
		if c.Bool("json") {
			continue
		}
		for i, r := range im.Roots {
			fmt.Fprintf(c.App.Writer, "%s  %s  (%d blocks, %s)\n", r, p, im.Blocks, humanBytes(im.Bytes))
			if !foreground {
				fmt.Fprintf(c.App.Writer, "ticket: %s\n", im.Tickets[i])
			}
		}
	}
	if c.Bool("json") {
		if len(out) == 1 {
			return printJSON(c.App.Writer, out[0])
		}
		return printJSON(c.App.Writer, out)
	}
	if foreground {
		fmt.Fprintln(c.App.ErrWriter, "no daemon runs: the roots are shared from this home and served once `peer daemon` runs")
	}
	return nil
}
