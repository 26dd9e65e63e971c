package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
)

func publishCommand() *cli.Command {
	return &cli.Command{
		Name:      "publish",
		Usage:     "share a file or folder and point a name at it; print the name, /ipns/k51…",
		ArgsUsage: "PATH",
		Description: "The name is the node's own (its peer ID's) or, with --key NAME, that of a key kept in the\n" +
			"home (made at first use, mode 0600). Publishing again points the name at the new root with a higher\n" +
			"sequence number (kept in the home across restarts). Followers (`peer get --follow NAME -o DIR`) learn\n" +
			"it at once if connected, else from the DHT. With --watch the path is looked at every 2 s and\n" +
			"published again once a change has settled. Through the daemon if one runs; otherwise this process\n" +
			"serves the name until Ctrl-C.",
		Flags: append(append([]cli.Flag{
			homeFlag(), jsonFlag,
			&cli.StringFlag{Name: "key", Usage: "publish under the key `NAME` of the home's keystore (made if missing) instead of the node's own"},
			&cli.BoolFlag{Name: "watch", Usage: "publish again whenever PATH changes (polls the tree's sizes, times and inodes every 2 s)"},
		}, chunkingFlags()...), nodeFlags()...),
		Action: runPublish,
	}
}

func runPublish(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("publish: name one file or folder (got %d arguments)", c.NArg())
	}
	p, err := absPath(c.Args().First())
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("publish: %s does not exist", c.Args().First())
	}
	api, done, err := connect(c, online)
	if err != nil {
		return err
	}
	defer done()
	namer, ok := api.(daemon.Namer)
	if !ok {
		return errors.New("publish: this API cannot publish names")
	}
	_, foreground := api.(*daemon.Local)
	req := daemon.PublishRequest{Path: p, Key: c.String("key"), Watch: c.Bool("watch")}
	if c.IsSet("chunker") || c.IsSet("chunk-size") {
		req.Chunker, req.ChunkSize = c.String("chunker"), c.String("chunk-size")
	}
	if !c.Bool("json") && !foreground {
		fmt.Fprintf(c.App.ErrWriter, "indexing %s...\n", p)
	}
	info, err := namer.Publish(c.Context, req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, info); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.App.Writer, info.Name)
		fmt.Fprintf(c.App.ErrWriter, "%s → %s (sequence %d)\n", info.Path, info.Root, info.Seq)
		fmt.Fprintf(c.App.ErrWriter, "ticket (the name and this node; `peer get` of it fetches the latest version): %s\n", info.Ticket)
		if info.DHTError != "" {
			fmt.Fprintf(c.App.ErrWriter, "note: the record is not in the DHT (%s); connected peers have it\n", info.DHTError)
		}
		if info.Watch && !foreground {
			fmt.Fprintf(c.App.ErrWriter, "the daemon publishes %s again whenever it changes\n", p)
		}
	}
	if !foreground {
		return nil
	}
	fmt.Fprintln(c.App.ErrWriter, "no daemon runs, so this process serves the name and its files: keep it running, Ctrl-C stops (or run `peer daemon`)")
	<-c.Context.Done()
	fmt.Fprintln(c.App.ErrWriter, "stopped")
	return nil
}
