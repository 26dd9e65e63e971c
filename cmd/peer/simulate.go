package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/simulate"
)

func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:  "simulate",
		Usage: "run many peers in this process on a simulated network and check that they survive a scenario",
		Description: "Scenarios: " + strings.Join(simulate.Names(), ", ") + ".\n" +
			"The seed fixes every random choice (identities, file, which peers fail, when), so a run replays.\n" +
			"Nothing leaves the machine: the network is go-libp2p's in-process mocknet.\n" +
			"The run goes on a virtual clock (a testing/synctest bubble) that moves only when every node waits,\n" +
			"so a busy machine makes it slower but does not change what it measures; the report gives the\n" +
			"virtual and the wall time side by side. --wall-clock runs it on the machine's clock instead.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scenario", Value: "flash-crowd", Usage: "one of " + strings.Join(simulate.Names(), ", ")},
			&cli.IntFlag{Name: "peers", Value: 30, Usage: "peers in the simulation, adversaries included (4 to 5000)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of every random choice"},
			&cli.StringFlag{Name: "size", Usage: "size of the shared file (default 4MiB)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "how long the fetchers may take"},
			&cli.StringFlag{Name: "report", Usage: "write an SVG chart of completion over time to this file"},
			&cli.BoolFlag{Name: "wall-clock", Usage: "run on the machine's clock, not a virtual one (timeouts then fire when the machine is slow)"},
			jsonFlag,
		},
		Action: runSimulate,
	}
}

func runSimulate(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("simulate: unexpected argument %q (use --scenario NAME)", c.Args().First())
	}
	sc, err := simulate.Named(c.String("scenario"), c.Int("peers"), c.Uint64("seed"))
	if err != nil {
		return err
	}
	if s := c.String("size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return fmt.Errorf("simulate: --size: %w", err)
		}
		sc.FileSize = int64(n)
	}
	sc.Timeout = c.Duration("timeout")
	if sc.Timeout <= 0 {
		return fmt.Errorf("simulate: --timeout %s: want a positive duration", sc.Timeout)
	}
	svg := c.String("report")
	run, clock := simulate.RunVirtual, "a virtual clock"
	if c.Bool("wall-clock") {
		run, clock = simulate.Run, "the wall clock"
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.ErrWriter, "running %s with %d peers, seed %d, on %s...\n", sc.Name, c.Int("peers"), sc.Seed, clock)
	}
	rep, runErr := run(c.Context, sc)
	if rep == nil {
		return runErr
	}
	if svg != "" {
		f, err := os.Create(svg)
		if err != nil {
			return fmt.Errorf("simulate: --report: %w", err)
		}
		err = simulate.WriteSVG(f, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("simulate: --report %s: %w", svg, err)
		}
	}
	if c.Bool("json") {
		err = rep.WriteJSON(c.App.Writer)
	} else {
		err = rep.WriteText(c.App.Writer)
	}
	if err != nil {
		return err
	}
	if errors.Is(runErr, simulate.ErrInvariant) {
		// The report above lists the problems; the error names the seed
		// and the command that repeats the run.
		return fmt.Errorf("simulate: %d invariants failed; %s", len(rep.Problems), rep.ReplayHint())
	}
	return runErr
}
