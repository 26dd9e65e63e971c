package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/node"
)

// runFollow is `peer get --follow NAME -o DIR`: it keeps DIR equal to the
// name's latest version until Ctrl-C.
func runFollow(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("get --follow: name one name, /ipns/k51… (got %d arguments)", c.NArg())
	}
	name, err := node.ParseName(c.Args().First())
	if err != nil {
		return fmt.Errorf("get --follow: %w", err)
	}
	out := c.String("output")
	if out == "" || out == "-" {
		return errors.New("get --follow: say which folder to keep up to date with -o DIR")
	}
	dir, err := absPath(out)
	if err != nil {
		return fmt.Errorf("get --follow: %w", err)
	}
	api, done, err := connect(c, online)
	if err != nil {
		return err
	}
	defer done()
	namer, ok := api.(daemon.Namer)
	if !ok {
		return errors.New("get --follow: this API cannot follow names")
	}
	req := daemon.FollowRequest{Name: name, Dir: dir, Peers: splitList(c.StringSlice("peer"))}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.ErrWriter, "following %s into %s (receive-only; Ctrl-C stops)\n", req.Name, dir)
	}
	err = namer.Follow(c.Context, req, func(e daemon.FollowEventInfo) {
		if c.Bool("json") {
			printLine(c.App.Writer, e)
			return
		}
		if e.Error != "" {
			fmt.Fprintf(c.App.ErrWriter, "%s\n", e.Error)
			return
		}
		if e.Applied {
			fmt.Fprintf(c.App.Writer, "%s sequence %d: %s → %s: %d written, %d removed, %d unchanged, %d %s; %s received, %s copied from files already here\n",
				e.Name, e.Seq, e.Root, dir, e.Written, e.Removed, e.Kept, len(e.Conflicts), plural(len(e.Conflicts), "conflict", "conflicts"),
				humanBytes(e.Received), humanBytes(e.Local))
		}
		for _, x := range e.Conflicts {
			fmt.Fprintf(c.App.ErrWriter, "conflict: %s: %s\n", x.Path, x.Why)
		}
	})
	if err != nil {
		return fmt.Errorf("get --follow: %w", err)
	}
	return nil
}
