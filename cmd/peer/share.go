package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/node"
)

func shareCommand() *cli.Command {
	return &cli.Command{
		Name:  "share",
		Usage: "index files or folders in place, serve and announce them; print the root and a ticket",
		Description: "Through the daemon if one runs; otherwise a node runs in the foreground and seeds until\n" +
			"Ctrl-C. Files are never copied: edit one and share it again to re-index it.",
		ArgsUsage: "PATH...",
		Flags: append(append([]cli.Flag{
			homeFlag(), jsonFlag,
			&cli.BoolFlag{Name: "watch", Usage: "share PATH again whenever it changes, and publish it under the node's name (as `peer publish --watch PATH`)"},
			&cli.BoolFlag{Name: "only-hash", Usage: "compute the root without storing or announcing anything (no daemon or node needed)"},
			&cli.BoolFlag{Name: "follow-links", Usage: "share what symbolic links point at instead of the links (a link inside the folder is shared as a symlink, one out of it left out, by default)"},
			&cli.BoolFlag{Name: "preserve-mode", Usage: "store each file's and folder's permission bits (UnixFS 1.5; `peer get` applies them)"},
			&cli.BoolFlag{Name: "preserve-mtime", Usage: "store each file's and folder's modification time (UnixFS 1.5; `peer get` applies it)"},
		}, chunkingFlags()...), nodeFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("share: name at least one file or folder")
			}
			if c.Bool("only-hash") {
				return shareOnlyHash(c)
			}
			if c.Bool("watch") {
				return runPublish(c)
			}
			return shareNet(c)
		},
	}
}

func shareOnlyHash(c *cli.Context) error {
	_, s, err := settingsOf(c, false)
	if err != nil {
		return err
	}
	p, err := chunkingOf(s)
	if err != nil {
		return fmt.Errorf("share: %w", err)
	}
	var out []onlyHash
	for _, path := range c.Args().Slice() {
		r, err := hashOnly(c, path, p)
		if err != nil {
			return err
		}
		out = append(out, r)
		if !c.Bool("json") {
			fmt.Fprintf(c.App.Writer, "%s  %s  (%d bytes, %d files, %d chunks)\n", r.Root, path, r.Size, r.Files, len(r.Chunks))
			if !r.Standard {
				printNotStandard(c, r.Chunker)
			}
		}
	}
	if c.Bool("json") {
		if len(out) == 1 {
			return printJSON(c.App.Writer, out[0])
		}
		return printJSON(c.App.Writer, out)
	}
	return nil
}

func shareNet(c *cli.Context) error {
	var paths []string
	for _, p := range c.Args().Slice() {
		a, err := absPath(p)
		if err != nil {
			return fmt.Errorf("share: %w", err)
		}
		if _, err := os.Stat(a); err != nil {
			return fmt.Errorf("share: %s does not exist", p)
		}
		paths = append(paths, a)
	}
	api, done, err := connect(c, online)
	if err != nil {
		return err
	}
	defer done()
	_, foreground := api.(*daemon.Local)
	req := daemon.ShareRequest{FollowLinks: c.Bool("follow-links"), PreserveMode: c.Bool("preserve-mode"), PreserveMtime: c.Bool("preserve-mtime")}
	if c.IsSet("chunker") || c.IsSet("chunk-size") {
		req.Chunker, req.ChunkSize = c.String("chunker"), c.String("chunk-size")
	}
	var out []daemon.ShareInfo
	for _, p := range paths {
		req.Path = p
		if !c.Bool("json") && !foreground {
			fmt.Fprintf(c.App.ErrWriter, "indexing %s...\n", p)
		}
		sh, err := api.Share(c.Context, req)
		if err != nil {
			return fmt.Errorf("share: %w", err)
		}
		out = append(out, sh)
		if !c.Bool("json") {
			kind := "file"
			if sh.Dir {
				kind = fmt.Sprintf("folder, %d files", sh.Files)
			}
			fmt.Fprintf(c.App.Writer, "%s  %s  (%s, %s)\n", sh.Root, p, humanBytes(sh.Size), kind)
			fmt.Fprintf(c.App.Writer, "ticket: %s\n", sh.Ticket)
			if u := daemon.ShareURL(gatewayLink(c, sh.Root), sh); u != "" && !foreground {
				fmt.Fprintf(c.App.Writer, "gateway: %s\n", u)
			}
			if l := reuseLine(sh); l != "" {
				fmt.Fprintln(c.App.Writer, l)
			}
			if sh.Standard != nil && !*sh.Standard {
				printNotStandard(c, sh.Chunker)
			}
			if sh.KeepsStamps != nil && !*sh.KeepsStamps && runtime.GOOS == "linux" {
				// Elsewhere no path has stamps (store.KeepsStamps): a
				// note on every share would say nothing about this one.
				fmt.Fprintln(c.App.Writer, noStampsNote)
			}
			for _, s := range sh.Skipped {
				fmt.Fprintf(c.App.ErrWriter, "left out (not a regular file or folder): %s\n", s)
			}
			for _, s := range sh.SkippedLinks {
				fmt.Fprintf(c.App.ErrWriter, "left out (a symbolic link out of the folder; --follow-links shares it): %s\n", s)
			}
		}
	}
	if c.Bool("json") {
		var err error
		if len(out) == 1 {
			err = printJSON(c.App.Writer, out[0])
		} else {
			err = printJSON(c.App.Writer, out)
		}
		if err != nil {
			return err
		}
	}
	if !foreground {
		return nil
	}
	// No daemon: this process is the only one serving. Seed until Ctrl-C.
	fmt.Fprintln(c.App.ErrWriter, "no daemon runs, so this process seeds the share: keep it running until the others have it, Ctrl-C stops (or run `peer daemon` to seed in the background)")
	<-c.Context.Done()
	fmt.Fprintln(c.App.ErrWriter, "stopped seeding")
	return nil
}

// reuseLine says how many files of a share were taken unchanged from the
// last share of its path and how many were read and hashed (and their
// bytes), so that a share again says why it took a moment, or an hour;
// "" when none was reused.
func reuseLine(sh daemon.ShareInfo) string {
	if sh.Reused == 0 {
		return ""
	}
	hashed := "hashed nothing"
	if n := sh.Files - sh.Reused; n > 0 {
		hashed = fmt.Sprintf("hashed %d %s (%s)", n, plural(int(n), "file", "files"), humanBytes(sh.Size-sh.ReusedBytes))
	}
	return fmt.Sprintf("  reused %d unchanged %s (%s) from the last share; %s",
		sh.Reused, plural(int(sh.Reused), "file", "files"), humanBytes(sh.ReusedBytes), hashed)
}

// noStampsNote says that a share lies where the store keeps no stamps
// (daemon.ShareInfo.KeepsStamps), what that costs, and what to do.
const noStampsNote = "  note: this file system keeps no stamps the store trusts (tmpfs, overlayfs, FAT, network), " +
	"so every chunk served is hashed again and every file read again when shared again; " +
	"share from a disk file system (ext4, xfs, btrfs...) to serve it cheaper"

// printNotStandard says that a root is not the unixfs-v1-2025 one, and
// why.
func printNotStandard(c *cli.Context, chunker string) {
	why := fmt.Sprintf("chunked %s", chunker)
	if c.Bool("preserve-mode") || c.Bool("preserve-mtime") {
		why = "with mode or mtime stored"
	}
	fmt.Fprintf(c.App.Writer, "  note: %s, so this root is not the unixfs-v1-2025 one that Kubo and other IPFS tools compute for these bytes (that needs fixed 1 MiB chunks, the default, and no metadata)\n", why)
}

type chunkJSON struct {
	CID    string `json:"cid"`
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"offset"`
	Size   uint32 `json:"size"`
}

type onlyHash struct {
	Root    string `json:"root"`
	Name    string `json:"name"`
	Dir     bool   `json:"dir"`
	Size    int64  `json:"size"`
	Files   int    `json:"files"`
	Chunker string `json:"chunker"`
	// Standard: the root is the unixfs-v1-2025 one Kubo computes (fixed
	// 1 MiB chunks); false with any other chunking.
	Standard bool        `json:"standard"`
	Chunks   []chunkJSON `json:"chunks"`
}

func hashOnly(c *cli.Context, path string, p node.Chunking) (onlyHash, error) {
	res, err := node.Hash(c.Context, path, node.HashOptions{
		Chunking: p, FollowLinks: c.Bool("follow-links"), PreserveMode: c.Bool("preserve-mode"), PreserveMtime: c.Bool("preserve-mtime"),
	})
	if err != nil {
		return onlyHash{}, err
	}
	out := onlyHash{
		Root: res.Root.String(), Name: res.Name, Dir: res.Dir, Size: res.Size, Files: res.Files,
		Chunker: res.Chunking, Standard: res.Standard, Chunks: make([]chunkJSON, 0, len(res.Chunks)),
	}
	for _, x := range res.Chunks {
		out.Chunks = append(out.Chunks, chunkJSON{CID: x.CID.String(), Path: x.Path, Offset: x.Offset, Size: x.Size})
	}
	return out, nil
}
