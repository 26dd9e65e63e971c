package swarm

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/unixfs"
)

// MaxLayoutChunks bounds the chunks of one root that a node keeps a table of
// in memory (about 60 bytes each): 16 Mi chunks is 16 TiB at 1 MiB.
const MaxLayoutChunks = 1 << 24

// Layout is the flat view of a root that the exchange works on: its files in
// walk order (a folder's entries by name, depth first) and its chunks, the
// files' raw leaves in DAG order, numbered across them. Chunk i of a root is
// the i-th chunk of that order, which is what HAVE, WANT and BLOCK indices
// name.
//
// A Layout is immutable once built and safe for concurrent use.
type Layout struct {
	Root cid.Cid
	// Name is the root's own name: a UnixFS root has none, so it is
	// empty, and a fetch names its output (see node.DefaultDest).
	Name   string
	Dir    bool  // the root is a directory
	Size   int64 // bytes in all files
	Files  []FileSpan
	Dirs   []string // every directory below the root, parents first ("" not listed)
	Chunks []ChunkInfo
	// Symlinks are the symbolic links below the root, in walk order.
	Symlinks []SymlinkSpan
	// Meta is the UnixFS 1.5 metadata of the root and of the entries
	// below it that store some (path "" for the root), in walk order.
	Meta []MetaSpan
	// Blocks are the CIDs of the root's nodes (file nodes, folders, HAMT
	// shards; the root itself when it is a raw leaf), each once, sorted by
	// their bytes: what a peer fetching Root may be sent as NODE.
	Blocks []cid.Cid

	byCID chunkTable // ChunkIndex's table, built at its first call
}

// chunkTable maps a 64-bit hash of a chunk's CID to the chunk's first
// index, and chains each index to the next one with the same hash: some
// 20 bytes a chunk, where Chunks holds about 60. A match is checked
// against Chunks, so a collision costs a step along the chain.
type chunkTable struct {
	once sync.Once
	m    map[uint64]int32
	next []int32 // next[i]: the next index whose CID has i's hash, or -1
}

// cidKey is c's key in a chunkTable.
func cidKey(c cid.Cid) uint64 {
	h := fnv.New64a()
	h.Write([]byte(c.KeyString()))
	return h.Sum64()
}

// FileSpan is one file of a Layout.
type FileSpan struct {
	Path  string  // relative to the root, slash-separated; "" when the root is a file
	CID   cid.Cid // the file's root: a dag-pb file node, or its one raw leaf
	Size  int64
	First int64 // index of its first chunk
	Count int64 // number of chunks
}

// MetaSpan is the metadata of a file, folder or symlink of a Layout.
type MetaSpan struct {
	Path string // relative to the root, slash-separated; "" for the root
	unixfs.Meta
}

// SymlinkSpan is a symbolic link of a Layout.
type SymlinkSpan struct {
	Path   string // relative to the root, slash-separated
	Target string // as stored; never followed by the exchange
}

// ChunkInfo says what chunk i is and where it goes.
type ChunkInfo struct {
	CID    cid.Cid
	File   int32 // index into Files
	Size   int32
	Offset int64 // within its file
}

// ErrBadDAG is wrapped by the error of a layout whose DAG is invalid (it
// also wraps unixfs.ErrBadNode): a peer that sent one of its nodes served
// a root that no honest node could have walked, and is banned.
var ErrBadDAG = errors.New("swarm: invalid DAG")

// BuildLayout walks the UnixFS DAG below root through g and returns its
// Layout. Every node is size-checked, verified against its CID and decoded
// by package unixfs, which checks what parents declare against their
// children, and the walk stays within unixfs.DefaultLimits and
// MaxLayoutChunks (else an error wrapping unixfs.ErrLimit): its cost is
// linear in what it reads. An invalid DAG returns an error wrapping
// ErrBadDAG. It blocks while g does.
func BuildLayout(ctx context.Context, g unixfs.Getter, root cid.Cid) (*Layout, error) {
	return buildLayout(ctx, g, root, unixfs.DefaultLimits())
}

func buildLayout(ctx context.Context, g unixfs.Getter, root cid.Cid, lim unixfs.Limits) (*Layout, error) {
	l := &Layout{Root: root}
	blocks := map[cid.Cid]struct{}{}
	rec := unixfs.GetterFunc(func(ctx context.Context, c cid.Cid) ([]byte, error) {
		blocks[c] = struct{}{}
		return g.GetBlock(ctx, c)
	})
	w := unixfs.NewWalker(rec, lim)
	var fi int32
	err := w.Walk(ctx, root, unixfs.Visitor{
		// The walk visits parents before their children, so Dirs are in
		// the order that creating them needs.
		Dir: func(p string, _ unixfs.Link) error {
			if p == "" {
				l.Dir = true
			} else {
				l.Dirs = append(l.Dirs, p)
			}
			return nil
		},
		File: func(p string, f unixfs.Link) error {
			if f.FileSize > math.MaxInt64-uint64(l.Size) {
				return fmt.Errorf("%w: %w: files of more than %d bytes", ErrBadDAG, unixfs.ErrBadNode, int64(math.MaxInt64))
			}
			fi = int32(len(l.Files))
			l.Files = append(l.Files, FileSpan{Path: p, CID: f.CID, Size: int64(f.FileSize), First: int64(len(l.Chunks))})
			l.Size += int64(f.FileSize)
			return nil
		},
		Leaf: func(off uint64, leaf unixfs.Link) error {
			if leaf.FileSize == 0 {
				return nil // an empty file's root: no chunk to fetch
			}
			if len(l.Chunks) >= MaxLayoutChunks {
				return fmt.Errorf("%w: more than %d chunks", unixfs.ErrLimit, MaxLayoutChunks)
			}
			l.Chunks = append(l.Chunks, ChunkInfo{CID: leaf.CID, File: fi, Size: int32(leaf.FileSize), Offset: int64(off)})
			l.Files[fi].Count++
			return nil
		},
		Symlink: func(p, target string) error {
			l.Symlinks = append(l.Symlinks, SymlinkSpan{Path: p, Target: target})
			return nil
		},
		Meta: func(p string, m unixfs.Meta) error {
			l.Meta = append(l.Meta, MetaSpan{Path: p, Meta: m})
			return nil
		},
	})
	if err != nil {
		if errors.Is(err, unixfs.ErrBadNode) && !errors.Is(err, ErrBadDAG) {
			err = fmt.Errorf("%w: %w", ErrBadDAG, err)
		}
		return nil, err
	}
	l.Blocks = make([]cid.Cid, 0, len(blocks))
	for c := range blocks {
		l.Blocks = append(l.Blocks, c)
	}
	slices.SortFunc(l.Blocks, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return l, nil
}

// checkNode verifies a block of a DAG that a peer sent as NODE against c,
// and decodes it when it is a dag-pb node (within unixfs.MaxNodeSize): a
// node that fails either names its sender.
func checkNode(c cid.Cid, data []byte) error {
	if err := integrity.Verify(c, data); err != nil {
		return err
	}
	if c.Prefix().Codec == integrity.DagPB {
		if _, err := unixfs.Decode(c, data); err != nil {
			return fmt.Errorf("%w: %w", ErrBadDAG, err)
		}
	}
	return nil
}

// HasBlock reports whether c is one of the root's nodes (Blocks).
func (l *Layout) HasBlock(c cid.Cid) bool {
	_, ok := slices.BinarySearchFunc(l.Blocks, c, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return ok
}

// ChunkIndex returns the index of the first chunk whose CID is c: what a
// block named only by its CID (Bitswap's, a local copy's) is in this root.
// The table it reads is built at the first call.
func (l *Layout) ChunkIndex(c cid.Cid) (int64, bool) {
	return l.ChunkIndexFunc(c, func(int64) bool { return true })
}

// ChunkIndexFunc returns the first index i whose chunk's CID is c and for
// which ok(i) is true: a chunk that a root holds at several indices (a
// repeated block) is held by a partial download at any of them, not only
// at the first. ok is called in index order, never under a lock. The
// table it reads is built at the first call of ChunkIndex or ChunkIndexFunc.
func (l *Layout) ChunkIndexFunc(c cid.Cid, ok func(i int64) bool) (int64, bool) {
	l.byCID.once.Do(func() {
		// MaxLayoutChunks fits an int32.
		m := make(map[uint64]int32, len(l.Chunks))
		next := make([]int32, len(l.Chunks))
		for i := len(l.Chunks) - 1; i >= 0; i-- {
			k := cidKey(l.Chunks[i].CID)
			next[i] = -1
			if j, found := m[k]; found {
				next[i] = j
			}
			m[k] = int32(i)
		}
		l.byCID.m, l.byCID.next = m, next
	})
	i, found := l.byCID.m[cidKey(c)]
	if !found {
		return 0, false
	}
	for ; i >= 0; i = l.byCID.next[i] {
		if l.Chunks[i].CID.Equals(c) && ok(int64(i)) {
			return int64(i), true
		}
	}
	return 0, false
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

// blameDAG bans every peer that sent a node of the fetch's DAG when err says
// the DAG is invalid: a node serves only the nodes of a root whose layout
// it built, which an invalid DAG has none of, so each sender lied.
func (f *fetch) blameDAG(err error) {
	if !errors.Is(err, ErrBadDAG) {
		return
	}
	f.mu.Lock()
	peers := make([]peer.ID, 0, len(f.from))
	for _, p := range f.from {
		peers = append(peers, p)
	}
	f.mu.Unlock()
	f.sw.BlameDAG(peers, err)
}

// BlameDAG bans the peers that sent nodes of a DAG that err (wrapping
// ErrBadDAG or unixfs.ErrBadNode) found invalid: a node serves only the
// nodes of a root whose layout it built, so every sender lied. Other
// errors (a DAG past the walk's limits, a lost connection) blame nobody.
// It is safe for concurrent use.
func (s *Swarm) BlameDAG(peers []peer.ID, err error) {
	if !errors.Is(err, ErrBadDAG) && !errors.Is(err, unixfs.ErrBadNode) {
		return
	}
	slices.Sort(peers)
	for _, p := range slices.Compact(peers) {
		if p == "" {
			continue
		}
		s.log.Warn("banning the sender of an invalid DAG", "peer", p, "err", err)
		s.count(func(st *Stats) { st.ProtocolViolations++ })
		s.Ban(p, "sent a node of an invalid DAG: "+err.Error())
	}
}
