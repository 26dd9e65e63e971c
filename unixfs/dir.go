package unixfs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// ErrName is returned for an entry name that is not a single path element.
var ErrName = errors.New("unixfs: bad entry name")

// ErrDuplicate is returned when a folder gets a second entry of a name.
var ErrDuplicate = errors.New("unixfs: duplicate entry name")

// DirBuilder builds one folder of the profile from its entries, in any
// order: a plain dag-pb directory while its block would be at most
// HAMTThreshold bytes, a HAMT of fanout HAMTFanout past that (boxo's
// unixfs/io, with its exact block-size estimate). Finish hands every node
// of the folder to put. It keeps the folder's links in memory, about 100
// bytes an entry. Not safe for concurrent use.
type DirBuilder struct {
	dir   uio.Directory
	nodes *nodeSink
	names map[string]bool
	done  bool
}

// NewDirBuilder returns a builder for an empty folder whose nodes go to put.
// WithMeta stores metadata in the folder's node (the root shard of a
// sharded folder), as Kubo does with --preserve-mode and --preserve-mtime;
// it counts in the block size that decides sharding.
func NewDirBuilder(put func(Block) error, opts ...Option) (*DirBuilder, error) {
	o := applyOptions(opts)
	sink := &nodeSink{put: put, nodes: map[cid.Cid]ipld.Node{}}
	dopts := []uio.DirectoryOption{
		uio.WithCidBuilder(o.prefix),
		uio.WithSizeEstimationMode(uio.SizeEstimationBlock),
		uio.WithMaxHAMTFanout(HAMTFanout),
	}
	if !o.meta.IsZero() {
		dopts = append(dopts, uio.WithStat(o.meta.Mode, o.meta.Mtime))
	}
	dir, err := uio.NewDirectory(sink, dopts...)
	if err != nil {
		return nil, fmt.Errorf("unixfs: new folder: %w", err)
	}
	dir.SetHAMTShardingSize(HAMTThreshold)
	return &DirBuilder{dir: dir, nodes: sink, names: map[string]bool{}}, nil
}

// CheckName reports whether name can be a folder entry: a single path
// element of valid UTF-8, not "." or "..", with no "/" and no NUL.
func CheckName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("%w: %q", ErrName, name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: %q holds a slash or a NUL", ErrName, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not UTF-8", ErrName, name)
	}
	return nil
}

// Add puts child in the folder under name.
func (d *DirBuilder) Add(ctx context.Context, name string, child Link) error {
	if d.done {
		return ErrFinished
	}
	if err := CheckName(name); err != nil {
		return err
	}
	if d.names[name] {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	if err := d.dir.AddChild(ctx, name, linkNode{child}); err != nil {
		return fmt.Errorf("unixfs: add %q: %w", name, err)
	}
	d.names[name] = true
	return nil
}

// Finish puts the folder's nodes (for a HAMT, every shard, children before
// parents) and returns its root. The builder takes no more entries.
func (d *DirBuilder) Finish(ctx context.Context) (Link, error) {
	if d.done {
		return Link{}, ErrFinished
	}
	d.done = true
	root, err := d.dir.GetNode()
	if err != nil {
		return Link{}, fmt.Errorf("unixfs: folder node: %w", err)
	}
	if err := d.nodes.Add(ctx, root); err != nil { // a plain folder's node is not added by GetNode
		return Link{}, err
	}
	size, err := root.Size()
	if err != nil {
		return Link{}, err
	}
	return Link{CID: root.Cid(), Size: size}, nil
}

// nodeSink is the DAGService of a folder being built: the nodes boxo adds
// (HAMT shards) go to put, once each, and stay readable for the shards that
// boxo loads again while it builds.
type nodeSink struct {
	put   func(Block) error
	nodes map[cid.Cid]ipld.Node
}

func (s *nodeSink) Add(_ context.Context, n ipld.Node) error {
	if _, ok := n.(linkNode); ok {
		return nil // a child, whose blocks are not the folder's to store
	}
	if _, ok := s.nodes[n.Cid()]; ok {
		return nil
	}
	s.nodes[n.Cid()] = n
	return s.put(Block{CID: n.Cid(), Data: n.RawData()})
}

func (s *nodeSink) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		if err := s.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (s *nodeSink) Get(_ context.Context, c cid.Cid) (ipld.Node, error) {
	if n, ok := s.nodes[c]; ok {
		return n, nil
	}
	return nil, ipld.ErrNotFound{Cid: c}
}

func (s *nodeSink) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		n, err := s.Get(ctx, c)
		out <- &ipld.NodeOption{Node: n, Err: err}
	}
	close(out)
	return out
}

func (s *nodeSink) Remove(context.Context, cid.Cid) error       { return nil }
func (s *nodeSink) RemoveMany(context.Context, []cid.Cid) error { return nil }

// linkNode is a child of a folder as boxo's directories need it: they read
// only its CID and its cumulative size (for the link's Tsize and the block
// size estimate), so a child whose bytes stay in the user's files needs no
// more.
type linkNode struct{ l Link }

var errLinkOnly = errors.New("unixfs: a child is known by its CID and size only")

func (n linkNode) Cid() cid.Cid                  { return n.l.CID }
func (n linkNode) Size() (uint64, error)         { return n.l.Size, nil }
func (n linkNode) RawData() []byte               { return nil }
func (n linkNode) String() string                { return n.l.CID.String() }
func (n linkNode) Loggable() map[string]any      { return map[string]any{"cid": n.l.CID} }
func (n linkNode) Links() []*ipld.Link           { return nil }
func (n linkNode) Copy() ipld.Node               { return n }
func (n linkNode) Tree(string, int) []string     { return nil }
func (n linkNode) Stat() (*ipld.NodeStat, error) { return nil, errLinkOnly }
func (n linkNode) Resolve([]string) (any, []string, error) {
	return nil, nil, errLinkOnly
}
func (n linkNode) ResolveLink([]string) (*ipld.Link, []string, error) {
	return nil, nil, errLinkOnly
}
