package unixfs

import (
	"errors"
	"fmt"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/peer-project/peer/integrity"
)

// The unixfs-v1-2025 profile's figures.
const (
	// ChunkSize is the size of every leaf but a file's last.
	ChunkSize = 1 << 20
	// MaxLinks is the most links a file node holds.
	MaxLinks = 1024
	// HAMTThreshold is the estimated block size above which a folder is
	// sharded.
	HAMTThreshold = 256 << 10
	// HAMTFanout is the width of a sharded folder's nodes.
	HAMTFanout = 256
)

// cidBuilder makes the CIDs of interior nodes: CIDv1, dag-pb, sha2-256.
var cidBuilder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}

// Link names a node of a DAG as its parent's link does.
type Link struct {
	// CID is the node's: raw for a leaf, dag-pb otherwise.
	CID cid.Cid
	// Size is what the parent's link records as Tsize: the bytes of every
	// block under the node, its own included.
	Size uint64
	// FileSize is how many bytes of file content are under the node (0 for
	// a folder).
	FileSize uint64
}

// Leaf returns the Link of a raw leaf of n bytes.
func Leaf(c cid.Cid, n int) Link { return Link{CID: c, Size: uint64(n), FileSize: uint64(n)} }

// Block is an interior node a builder made, encoded.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// ErrFinished is returned by a builder's methods after Finish.
var ErrFinished = errors.New("unixfs: builder already finished")

// FileBuilder lays out the leaves of one file, in order, as the balanced
// DAG of the profile, and hands each interior node to put as soon as it is
// complete (children before parents). It holds at most MaxLinks links per
// level. Not safe for concurrent use.
type FileBuilder struct {
	maxLinks int
	put      func(Block) error
	opts     options
	// levels[k] holds the finished subtrees of height k (leaves at 0) that
	// wait for their parent; each holds fewer than maxLinks.
	levels [][]Link
	// last[k] holds the children of the last node made over level k, kept
	// only when the root gets metadata: if that node turns out to be the
	// root, it is made again with the metadata.
	last [][]Link
	done bool
}

// NewFileBuilder returns a builder with the profile's MaxLinks that calls
// put for every interior node it makes. WithMeta stores metadata in the
// file's root.
func NewFileBuilder(put func(Block) error, opts ...Option) *FileBuilder {
	return newFileBuilder(MaxLinks, put, opts...)
}

// newFileBuilder is NewFileBuilder with another width (tests use small ones
// to reach deep trees with few leaves).
func newFileBuilder(maxLinks int, put func(Block) error, opts ...Option) *FileBuilder {
	return &FileBuilder{maxLinks: maxLinks, put: put, opts: applyOptions(opts)}
}

// Add appends the next leaf of the file. A full node is made and put at
// once, so put may be called.
func (b *FileBuilder) Add(leaf Link) error {
	if b.done {
		return ErrFinished
	}
	if leaf.CID.Prefix().Codec != cid.Raw {
		return fmt.Errorf("unixfs: leaf %s is not a raw block", leaf.CID)
	}
	return b.push(0, leaf)
}

// push adds l at height k and makes the parent of a level that fills up.
func (b *FileBuilder) push(k int, l Link) error {
	if k == len(b.levels) {
		// Grown by append, not made with room for maxLinks: most files
		// of a folder have one leaf, and the level is reused once full.
		b.levels = append(b.levels, nil)
	}
	b.levels[k] = append(b.levels[k], l)
	if len(b.levels[k]) < b.maxLinks {
		return nil
	}
	// The level is full: its node is made now. If no leaf follows, that
	// node is alone at the top and Finish returns it as the root.
	n, err := b.node(b.levels[k], false)
	if err != nil {
		return err
	}
	if !b.opts.meta.IsZero() {
		for len(b.last) <= k {
			b.last = append(b.last, nil)
		}
		b.last[k] = append(b.last[k][:0], b.levels[k]...)
	}
	b.levels[k] = b.levels[k][:0]
	return b.push(k+1, n)
}

// Finish makes the nodes that are still open and returns the file's root:
// the leaf itself for a file of one leaf, the empty raw block for a file of
// none. With metadata (WithMeta) the root is always a dag-pb node that
// holds it: over the one leaf, or over none. The builder takes no more
// leaves.
func (b *FileBuilder) Finish() (Link, error) {
	if b.done {
		return Link{}, ErrFinished
	}
	b.done = true
	meta := !b.opts.meta.IsZero()
	top := len(b.levels) - 1
	for top >= 0 && len(b.levels[top]) == 0 {
		top--
	}
	if top < 0 {
		if meta {
			return b.node(nil, true)
		}
		return Leaf(integrity.Chunk(nil), 0), nil
	}
	// Every open node below the top is closed into its parent, so that
	// every leaf sits at the same depth (the balanced layout: the last
	// leaf of a file one leaf past a full tree hangs under a chain of
	// nodes with one link each).
	for k := 0; k < top; k++ {
		if len(b.levels[k]) == 0 {
			continue
		}
		n, err := b.node(b.levels[k], false)
		if err != nil {
			return Link{}, err
		}
		b.levels[k] = b.levels[k][:0]
		b.levels[k+1] = append(b.levels[k+1], n)
	}
	if len(b.levels[top]) == 1 {
		switch {
		case !meta:
			return b.levels[top][0], nil
		case top == 0: // a lone leaf gets a node to hold the metadata
			return b.node(b.levels[0], true)
		default:
			// The root is the last node made over the level below, put
			// without the metadata when it was full (that block is left
			// unreferenced); made again with it.
			return b.node(b.last[top-1], true)
		}
	}
	return b.node(b.levels[top], meta)
}

// node makes and puts a file node over children, with the builder's
// metadata if meta.
func (b *FileBuilder) node(children []Link, meta bool) (Link, error) {
	fs := ft.NewFSNode(ft.TFile)
	if meta {
		b.opts.meta.set(fs)
	}
	pn := new(dag.ProtoNode)
	if err := pn.SetCidBuilder(b.opts.prefix); err != nil {
		return Link{}, err
	}
	for _, c := range children {
		if err := pn.AddRawLink("", &ipld.Link{Cid: c.CID, Size: c.Size}); err != nil {
			return Link{}, err
		}
		fs.AddBlockSize(c.FileSize)
	}
	data, err := fs.GetBytes()
	if err != nil {
		return Link{}, err
	}
	pn.SetData(data)
	raw, err := pn.EncodeProtobuf(false)
	if err != nil {
		return Link{}, err
	}
	size, err := pn.Size()
	if err != nil {
		return Link{}, err
	}
	l := Link{CID: pn.Cid(), Size: size, FileSize: fs.FileSize()}
	if err := b.put(Block{CID: l.CID, Data: raw}); err != nil {
		return Link{}, err
	}
	return l, nil
}
