package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/importer"
	"github.com/peer-project/peer/manifest"
)

func shareCommand() *cli.Command {
	return &cli.Command{
		Name:      "share",
		Usage:     "compute the root of files or folders, as sharing them would",
		ArgsUsage: "PATH...",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "only-hash", Usage: "compute the root without storing or announcing anything (required in this version)"},
			jsonFlag,
		}, chunkingFlags...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("share: name at least one file or folder")
			}
			if !c.Bool("only-hash") {
				return fmt.Errorf("share: serving shares needs the daemon, which is not in this version yet: use --only-hash")
			}
			p, err := chunkingOf(c)
			if err != nil {
				return err
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
				}
			}
			if c.Bool("json") {
				if len(out) == 1 {
					return printJSON(c.App.Writer, out[0])
				}
				return printJSON(c.App.Writer, out)
			}
			return nil
		},
	}
}

type chunkJSON struct {
	CID    string `json:"cid"`
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"offset"`
	Size   uint32 `json:"size"`
}

type onlyHash struct {
	Root    string      `json:"root"`
	Name    string      `json:"name"`
	Dir     bool        `json:"dir"`
	Size    int64       `json:"size"`
	Files   int         `json:"files"`
	Chunker string      `json:"chunker"`
	Chunks  []chunkJSON `json:"chunks"`
}

// chunkList is an importer sink that keeps only the chunk list.
type chunkList struct {
	dir    string
	chunks []chunkJSON
}

func (l *chunkList) PutBlock(manifest.Block) error { return nil }
func (l *chunkList) FileDone(importer.File) error  { return nil }
func (l *chunkList) AddChunks(path string, locs []importer.Loc) error {
	for _, x := range locs {
		cj := chunkJSON{CID: x.CID.String(), Offset: x.Offset, Size: x.Size}
		if l.dir != "" {
			cj.Path = path
		}
		l.chunks = append(l.chunks, cj)
	}
	return nil
}

func hashOnly(c *cli.Context, path string, p chunker.Params) (onlyHash, error) {
	list := &chunkList{}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		list.dir = path
	}
	res, err := importer.Import(c.Context, path, importer.Options{Params: p}, list)
	if err != nil {
		return onlyHash{}, err
	}
	return onlyHash{
		Root: res.Root.String(), Name: res.Name, Dir: res.Dir, Size: res.Size, Files: res.Files,
		Chunker: p.String(), Chunks: list.chunks,
	}, nil
}
