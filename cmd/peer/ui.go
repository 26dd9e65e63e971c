package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
)

// uiCommand prints (or opens) a one-time link to the daemon's web UI.
func uiCommand() *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "print a one-time link that signs a browser in to the daemon's web UI",
		Description: "The link works once, within 10 minutes, in the browser that opens it first: it sets a session cookie\n" +
			"and leads to the UI (shares, transfers, peers, bandwidth, caps, reachability). Run `peer ui` again\n" +
			"for another browser. The UI is served by the daemon on its loopback API address.",
		Flags: []cli.Flag{
			homeFlag(), jsonFlag,
			&cli.BoolFlag{Name: "open", Usage: "open the link in the desktop's browser (with xdg-open)"},
		},
		Action: func(c *cli.Context) error {
			home, err := daemon.HomeDir(c.String("home"))
			if err != nil {
				return err
			}
			cl, err := daemon.Dial(c.Context, home)
			if errors.Is(err, daemon.ErrNoDaemon) {
				return fmt.Errorf("ui: %w for %s: the UI is the daemon's; start one with `peer daemon` (or pass the --home it runs with)", err, home)
			}
			if err != nil {
				return fmt.Errorf("ui: %w", err)
			}
			u, err := cl.UILogin(c.Context)
			if err != nil {
				return fmt.Errorf("ui: %w", err)
			}
			if c.Bool("json") {
				if err := printJSON(c.App.Writer, map[string]string{"url": u}); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(c.App.Writer, u)
			}
			if c.Bool("open") {
				return openBrowser(c.Context, u)
			}
			return nil
		},
	}
}

// openBrowser opens u with xdg-open, which hands it to the desktop's
// browser and returns.
func openBrowser(ctx context.Context, u string) error {
	bin, err := exec.LookPath("xdg-open")
	if err != nil {
		return fmt.Errorf("ui: --open: xdg-open is not installed (it comes with xdg-utils): open the link above in your browser")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, u).CombinedOutput(); err != nil {
		return fmt.Errorf("ui: --open: xdg-open: %v %s: open the link above in your browser", err, out)
	}
	return nil
}
