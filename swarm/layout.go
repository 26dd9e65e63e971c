package swarm

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/manifest"
)

// MaxLayoutChunks bounds the chunks of one root that a node keeps a table of
// in memory (about 60 bytes each): 16 Mi chunks is 16 TiB at 1 MiB. It is
// the chunk limit of every walk (manifest.MaxWalkChunks).
const MaxLayoutChunks = manifest.MaxWalkChunks

// Layout is the flat view of a root that the exchange works on: its files in
// manifest order (directories depth first, names sorted) and its chunks
// numbered across them. Chunk i of a root is the i-th chunk of that order,
// which is what HAVE, WANT and BLOCK indices name.
//
// A Layout is immutable once built and safe for concurrent use.
type Layout struct {
	Root   cid.Cid
	Name   string // the root's own name
	Dir    bool   // the root is a directory
	Size   int64  // bytes in all files
	Files  []FileSpan
	Dirs   []string // every directory below the root, parents first ("" not listed)
	Chunks []ChunkInfo
	// Blocks are the CIDs of the root's manifest blocks (files,
	// directories, pages), each once, sorted by their bytes: what a peer
	// fetching Root may be sent.
	Blocks []cid.Cid
}

// FileSpan is one file of a Layout.
type FileSpan struct {
	Path  string  // relative to the root, slash-separated; "" when the root is a file
	CID   cid.Cid // the file's manifest
	Size  int64
	First int64 // index of its first chunk
	Count int64 // number of chunks
}

// ChunkInfo says what chunk i is and where it goes.
type ChunkInfo struct {
	CID    cid.Cid
	File   int32 // index into Files
	Size   int32
	Offset int64 // within its file
}

// BuildLayout walks the manifest below root through g and returns its
// Layout. Every block is verified against its CID by the manifest decoder,
// and the walk stays within manifest.DefaultLimits, the limits of every
// walk of a tree from a peer (else an error wrapping manifest.ErrTooLarge):
// its cost is linear in what it visits. It blocks while g does.
func BuildLayout(ctx context.Context, g manifest.Getter, root cid.Cid) (*Layout, error) {
	return buildLayout(ctx, g, root, manifest.Limits{})
}

func buildLayout(ctx context.Context, g manifest.Getter, root cid.Cid, lim manifest.Limits) (*Layout, error) {
	l := &Layout{Root: root}
	w := manifest.NewWalker(g, lim)
	blocks := map[cid.Cid]struct{}{}
	w.OnLoad(func(c cid.Cid) { blocks[c] = struct{}{} })
	// Walk visits parents before their children, so Dirs are in the
	// order that creating them needs.
	err := w.Walk(ctx, root, func(p string, c cid.Cid, n manifest.Node) error {
		switch n := n.(type) {
		case *manifest.Dir:
			if p == "" {
				l.Name, l.Dir = n.Name, true
			} else {
				l.Dirs = append(l.Dirs, p)
			}
		case *manifest.File:
			if p == "" {
				l.Name = n.Name
			}
			fi := int32(len(l.Files))
			span := FileSpan{Path: p, CID: c, Size: int64(n.Size), First: int64(len(l.Chunks)), Count: int64(n.Count)}
			l.Files = append(l.Files, span)
			l.Size += int64(n.Size)
			return w.Chunks(ctx, n, func(_ int64, off int64, ref manifest.ChunkRef) error {
				l.Chunks = append(l.Chunks, ChunkInfo{CID: ref.CID, File: fi, Size: int32(ref.Size), Offset: off})
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.Blocks = make([]cid.Cid, 0, len(blocks))
	for c := range blocks {
		l.Blocks = append(l.Blocks, c)
	}
	slices.SortFunc(l.Blocks, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return l, nil
}

// HasBlock reports whether c is one of the root's manifest blocks.
func (l *Layout) HasBlock(c cid.Cid) bool {
	_, ok := slices.BinarySearchFunc(l.Blocks, c, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return ok
}

// NumChunks returns the number of chunks.
func (l *Layout) NumChunks() int64 { return int64(len(l.Chunks)) }

// FileOf returns the index of the file that holds chunk i.
func (l *Layout) FileOf(i int64) int { return int(l.Chunks[i].File) }

// Span returns the chunk indices [from, to) that cover the bytes [off, off+n)
// of file fi, for streaming reads.
func (l *Layout) Span(fi int, off, n int64) (from, to int64) {
	f := l.Files[fi]
	lo := f.First + int64(sort.Search(int(f.Count), func(k int) bool {
		c := l.Chunks[f.First+int64(k)]
		return c.Offset+int64(c.Size) > off
	}))
	hi := f.First + int64(sort.Search(int(f.Count), func(k int) bool {
		return l.Chunks[f.First+int64(k)].Offset >= off+n
	}))
	return lo, hi
}
