package unixfs

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/spaolacci/murmur3"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// Getter gives the bytes of a block. They need not be verified: the Walker
// checks every block against its CID before it uses it.
type Getter interface {
	GetBlock(ctx context.Context, c cid.Cid) ([]byte, error)
}

// GetterFunc is a Getter made of a function.
type GetterFunc func(ctx context.Context, c cid.Cid) ([]byte, error)

// GetBlock calls f.
func (f GetterFunc) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) { return f(ctx, c) }

// Limits bound what one walk may read, whatever the DAG claims: a small
// root whose nodes link to one another many times over is cut off at these
// counts, before it costs more.
type Limits struct {
	// Visits is the most nodes read; a node reached twice counts twice.
	Visits int64
	// Bytes is the most bytes of nodes read (raw leaves of files are not
	// read by a walk, only named).
	Bytes int64
	// Depth is the deepest a node may sit below the root.
	Depth int
	// Leaves is the most leaves a Walk names over all files (0: no
	// limit). They are counted before any is handed over, a node reached
	// twice read once for that, so that a small DAG that names a subtree
	// many times over (legitimate: a sparse file's zero leaves) is refused
	// before its callers spend memory on what it claims.
	Leaves int64
}

// DefaultLimits fit the largest DAGs of the profile with room to spare,
// and bound what a hostile one costs: a 16 TiB file has 16 Mi leaves under
// 16 Ki nodes of about 46 KB (0.75 GB); a 100,000-entry folder is about 400
// shards. At the limits a walk decodes about 1 GiB of nodes, which costs
// about a minute of CPU (decoding a node of 1024 links allocates about
// 300 KB, all of it garbage once the node is walked).
func DefaultLimits() Limits {
	return Limits{Visits: 1 << 17, Bytes: 1 << 30, Depth: 64, Leaves: 1 << 24}
}

// ErrLimit is wrapped by the error of a walk that went past its Limits.
var ErrLimit = errors.New("unixfs: the DAG is larger than the walk's limits")

// MaxLeafSize is the largest raw leaf a walk accepts: the chunker's largest
// chunk (the profile's leaves are 1 MiB; content-defined chunks reach 4
// MiB). A parent that declares a bigger one lies, or was not made by peer:
// either way its claim is refused before anything is sized by it.
const MaxLeafSize = chunker.MaxSize

// ErrNotFound is returned by Resolve for a path that names nothing.
var ErrNotFound = errors.New("unixfs: no such entry")

// Walker reads a DAG through a Getter within Limits, counting every node it
// reads. Not safe for concurrent use; use one Walker per walk.
type Walker struct {
	g       Getter
	lim     Limits
	visits  int64
	bytes   int64
	nleaves int64              // leaves a Walk has counted
	counts  map[cid.Cid]uint64 // leaves under each file node counted
}

// NewWalker returns a Walker on g within lim.
func NewWalker(g Getter, lim Limits) *Walker {
	return &Walker{g: g, lim: lim}
}

// Visits and Bytes report what the walk has read so far.
func (w *Walker) Visits() int64 { return w.visits }

// Bytes reports the bytes of the nodes read so far.
func (w *Walker) Bytes() int64 { return w.bytes }

// Node reads and decodes the node c, within the limits.
func (w *Walker) Node(ctx context.Context, c cid.Cid) (*Node, error) {
	if err := CheckCID(c); err != nil {
		return nil, err
	}
	if w.visits++; w.visits > w.lim.Visits {
		return nil, fmt.Errorf("%w: more than %d nodes", ErrLimit, w.lim.Visits)
	}
	data, err := w.g.GetBlock(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("unixfs: get %s: %w", c, err)
	}
	if w.bytes += int64(len(data)); w.bytes > w.lim.Bytes {
		return nil, fmt.Errorf("%w: more than %d bytes of nodes", ErrLimit, w.lim.Bytes)
	}
	return Decode(c, data)
}

// Leaves calls fn for every leaf of the file root, in order, with its
// offset in the file, and returns the file's size. A raw leaf is named, not
// read (its Link says its CID and the size its parent declares for it,
// which the block must match when it is fetched), except a raw root, which
// is read for its size. A dag-pb leaf (older profiles keep content in
// them) is read and checked, and handed over with its FileSize. Every
// node's FileSize must equal what its parent declares for it.
func (w *Walker) Leaves(ctx context.Context, root cid.Cid, fn func(off uint64, leaf Link) error) (uint64, error) {
	if err := CheckCID(root); err != nil {
		return 0, err
	}
	if root.Prefix().Codec == cid.Raw {
		n, err := w.Node(ctx, root)
		if err != nil {
			return 0, err
		}
		return n.FileSize, fn(0, Link{CID: root, Size: n.FileSize, FileSize: n.FileSize})
	}
	n, err := w.Node(ctx, root)
	if err != nil {
		return 0, err
	}
	if n.Kind != KindFile {
		return 0, fmt.Errorf("unixfs: %s is a %s, not a file", root, n.Kind)
	}
	return n.FileSize, w.fileLeaves(ctx, n, 0, fn)
}

// fileLeaves calls fn for every leaf of the decoded file node n, which sits
// depth below the walk's root, and checks that they add up to its size.
func (w *Walker) fileLeaves(ctx context.Context, n *Node, depth int, fn func(uint64, Link) error) error {
	var off uint64
	if err := w.leaves(ctx, n, depth, &off, fn); err != nil {
		return err
	}
	if off != n.FileSize {
		return fmt.Errorf("%w: %s declares %d bytes, its leaves hold %d", ErrBadNode, n.CID, n.FileSize, off)
	}
	return nil
}

func (w *Walker) leaves(ctx context.Context, n *Node, depth int, off *uint64, fn func(uint64, Link) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(n.Data) > 0 {
		if len(n.Links) > 0 {
			return fmt.Errorf("%w: %s holds both content and links", ErrBadNode, n.CID)
		}
		if err := fn(*off, Link{CID: n.CID, Size: n.FileSize, FileSize: n.FileSize}); err != nil {
			return err
		}
		*off += n.FileSize
		return nil
	}
	if depth >= w.lim.Depth {
		return fmt.Errorf("%w: deeper than %d", ErrLimit, w.lim.Depth)
	}
	for _, l := range n.Links {
		if l.CID.Prefix().Codec == cid.Raw {
			if err := checkLeaf(n.CID, l.Link); err != nil {
				return err
			}
			if err := fn(*off, Link{CID: l.CID, Size: l.FileSize, FileSize: l.FileSize}); err != nil {
				return err
			}
			*off += l.FileSize
			continue
		}
		child, err := w.Node(ctx, l.CID)
		if err != nil {
			return err
		}
		if child.Kind != KindFile {
			return fmt.Errorf("%w: file %s links to a %s", ErrBadNode, n.CID, child.Kind)
		}
		if child.FileSize != l.FileSize {
			return fmt.Errorf("%w: %s declares %d bytes under %s, which holds %d", ErrBadNode, n.CID, l.FileSize, l.CID, child.FileSize)
		}
		if err := w.leaves(ctx, child, depth+1, off, fn); err != nil {
			return err
		}
	}
	return nil
}

// List calls fn for every entry of the folder dir (plain or sharded), in
// the order the folder's nodes hold them.
func (w *Walker) List(ctx context.Context, dir cid.Cid, fn func(name string, l Link) error) error {
	n, err := w.Node(ctx, dir)
	if err != nil {
		return err
	}
	switch n.Kind {
	case KindDir:
		for _, l := range n.Links {
			if err := fn(l.Name, l.Link); err != nil {
				return err
			}
		}
		return nil
	case KindHAMT:
		return w.listShard(ctx, n, 0, nil, fn)
	}
	return fmt.Errorf("unixfs: %s is a %s, not a folder", dir, n.Kind)
}

// listShard calls fn for every entry under the shard n, at depth in the
// DAG, whose ancestor shards' links took the slots in path. Every entry must sit where its name's hash
// puts it: in a shard reached through the slots its hash gives, level by
// level. A HAMT that files a name elsewhere would list an entry that a
// lookup by name (Resolve, or any other IPFS implementation) cannot find,
// so the walk and the lookup would disagree about the folder's contents.
func (w *Walker) listShard(ctx context.Context, n *Node, depth int, path []uint64, fn func(string, Link) error) error {
	if depth+len(path) >= w.lim.Depth {
		return fmt.Errorf("%w: deeper than %d", ErrLimit, w.lim.Depth)
	}
	width := len(strconv.FormatUint(n.Fanout-1, 16))
	for _, l := range n.Links {
		slot, err := strconv.ParseUint(l.Name[:width], 16, 64) // checked by Decode
		if err != nil {
			return fmt.Errorf("%w: shard %s: link %q: %v", ErrBadNode, n.CID, l.Name, err)
		}
		here := append(path[:len(path):len(path)], slot)
		if name := l.Name[width:]; name != "" {
			if err := checkSlots(name, here, n.Fanout); err != nil {
				return fmt.Errorf("%w: shard %s: %w", ErrBadNode, n.CID, err)
			}
			if err := fn(name, l.Link); err != nil {
				return err
			}
			continue
		}
		child, err := w.Node(ctx, l.CID)
		if err != nil {
			return err
		}
		if child.Kind != KindHAMT || child.Fanout != n.Fanout {
			return fmt.Errorf("%w: shard %s links to a %s as a shard", ErrBadNode, n.CID, child.Kind)
		}
		if err := w.listShard(ctx, child, depth, here, fn); err != nil {
			return err
		}
	}
	return nil
}

// checkSlots checks that name's HAMT hash, murmur3-x64-64 read from its
// most significant bit log2(fanout) bits a level, gives the slots in path.
func checkSlots(name string, path []uint64, fanout uint64) error {
	lg := bits.TrailingZeros64(fanout)
	if len(path)*lg > 64 {
		return fmt.Errorf("entry %q is %d shards deep, past its 64-bit hash", name, len(path))
	}
	h := murmur3.Sum64([]byte(name))
	for i, slot := range path {
		if want := h >> (64 - (i+1)*lg) & (fanout - 1); slot != want {
			return fmt.Errorf("entry %q is in slot %d at depth %d, but its hash puts it in slot %d", name, slot, i, want)
		}
	}
	return nil
}

// Resolve follows path (entry names, one per folder) from root and returns
// the link it ends at. A sharded folder is looked up by the entry's hash,
// with boxo's HAMT, reading only the shards on the way.
func (w *Walker) Resolve(ctx context.Context, root cid.Cid, path []string) (Link, error) {
	cur := Link{CID: root}
	if len(path) > w.lim.Depth {
		return Link{}, fmt.Errorf("%w: a path of %d names", ErrLimit, len(path))
	}
	for i, name := range path {
		if err := CheckName(name); err != nil {
			return Link{}, err
		}
		n, err := w.Node(ctx, cur.CID)
		if err != nil {
			return Link{}, err
		}
		switch n.Kind {
		case KindDir:
			found := false
			for _, l := range n.Links {
				if l.Name == name {
					cur, found = l.Link, true
					break
				}
			}
			if !found {
				return Link{}, fmt.Errorf("%w: %q in %s", ErrNotFound, name, cur.CID)
			}
		case KindHAMT:
			if cur, err = w.findInShard(ctx, n, name); err != nil {
				return Link{}, err
			}
		default:
			return Link{}, fmt.Errorf("unixfs: %q: %s is a %s, not a folder", path[:i+1], cur.CID, n.Kind)
		}
	}
	return cur, nil
}

// findInShard looks name up in the sharded folder whose root shard is n.
func (w *Walker) findInShard(ctx context.Context, n *Node, name string) (Link, error) {
	ds := &walkDAG{w: w}
	nd, err := ds.protoNode(ctx, n.CID)
	if err != nil {
		return Link{}, err
	}
	sh, err := hamt.NewHamtFromDag(ds, nd)
	if err != nil {
		return Link{}, fmt.Errorf("%w: shard %s: %v", ErrBadNode, n.CID, err)
	}
	l, err := sh.Find(ctx, name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Link{}, fmt.Errorf("%w: %q in %s", ErrNotFound, name, n.CID)
	case err != nil:
		return Link{}, fmt.Errorf("unixfs: %q in %s: %w", name, n.CID, err)
	}
	return Link{CID: l.Cid, Size: l.Size}, nil
}

// walkDAG is the read-only DAGService that boxo's HAMT reads shards from:
// each through the Walker, so within its limits and checked by Decode.
type walkDAG struct{ w *Walker }

func (d *walkDAG) protoNode(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	if c.Prefix().Codec != cid.DagProtobuf {
		return nil, fmt.Errorf("%w: %s is not a shard", ErrBadNode, c)
	}
	n, err := d.w.Node(ctx, c)
	if err != nil {
		return nil, err
	}
	if n.Kind != KindHAMT {
		return nil, fmt.Errorf("%w: %s is a %s, not a shard", ErrBadNode, c, n.Kind)
	}
	return n.pn, nil // decoded once, by Decode
}

func (d *walkDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) { return d.protoNode(ctx, c) }

func (d *walkDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		n, err := d.Get(ctx, c)
		out <- &ipld.NodeOption{Node: n, Err: err}
	}
	close(out)
	return out
}

var errReadOnly = errors.New("unixfs: a walk does not write")

func (d *walkDAG) Add(context.Context, ipld.Node) error        { return errReadOnly }
func (d *walkDAG) AddMany(context.Context, []ipld.Node) error  { return errReadOnly }
func (d *walkDAG) Remove(context.Context, cid.Cid) error       { return errReadOnly }
func (d *walkDAG) RemoveMany(context.Context, []cid.Cid) error { return errReadOnly }

// checkLeaf checks the raw leaf l that parent declares: the size its
// blocksize gives (FileSize) must be the size its Tsize gives, from 1 to
// MaxLeafSize bytes. (The leaf's bytes are checked against its CID, and
// their length against this size, when it is fetched.)
func checkLeaf(parent cid.Cid, l Link) error {
	switch {
	case l.FileSize != l.Size:
		return fmt.Errorf("%w: %s declares the leaf %s as %d bytes of content in a block of %d bytes", ErrBadNode, parent, l.CID, l.FileSize, l.Size)
	case l.FileSize == 0:
		return fmt.Errorf("%w: %s holds an empty leaf %s", ErrBadNode, parent, l.CID)
	case l.FileSize > MaxLeafSize:
		return fmt.Errorf("%w: %s declares a leaf %s of %d bytes, more than the %d a leaf may hold", ErrBadNode, parent, l.CID, l.FileSize, MaxLeafSize)
	}
	return nil
}

// Visitor is what Walk calls. Every function may be nil. Paths are
// slash-separated below the walk's root ("" is the root itself).
type Visitor struct {
	// Dir is called for every folder, parents before their entries.
	Dir func(path string, dir Link) error
	// File is called for every file with its root link (FileSize is its
	// size), then Leaf for each of its leaves in order, with its offset.
	File func(path string, file Link) error
	Leaf func(off uint64, leaf Link) error
	// Symlink is called for every symbolic link with its target.
	Symlink func(path, target string) error
	// Meta, if not nil, is called for every file, folder and symlink
	// whose node stores UnixFS 1.5 metadata, before File, Dir or Symlink.
	Meta func(path string, m Meta) error
}

// Walk visits root and everything below it, depth first: a folder before
// its entries, which come in the byte order of their names (a sharded
// folder's too), each file's leaves in order. Every node it reads is
// checked by Decode, and what parents declare about their children is
// checked against them: a file's sizes, a raw leaf's size (from 1 to
// MaxLeafSize; a raw root is read, up to MaxLeafSize), a folder's names
// (one entry a name, even across shards). Errors caused by the DAG wrap
// ErrBadNode, those of a DAG larger than the Limits ErrLimit.
func (w *Walker) Walk(ctx context.Context, root cid.Cid, v Visitor) error {
	if err := CheckCID(root); err != nil {
		return err
	}
	if root.Prefix().Codec == cid.Raw {
		data, err := w.rawRoot(ctx, root)
		if err != nil {
			return err
		}
		return v.file(ctx, w, "", Leaf(root, len(data)), nil, 0)
	}
	return w.walk(ctx, "", Link{CID: root}, 0, v)
}

// rawRoot reads a raw root within the limits and checks it.
func (w *Walker) rawRoot(ctx context.Context, c cid.Cid) ([]byte, error) {
	if c.Equals(emptyLeaf) {
		return nil, nil // known without asking anyone
	}
	if w.visits++; w.visits > w.lim.Visits {
		return nil, fmt.Errorf("%w: more than %d nodes", ErrLimit, w.lim.Visits)
	}
	data, err := w.g.GetBlock(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("unixfs: get %s: %w", c, err)
	}
	if len(data) > MaxLeafSize {
		return nil, fmt.Errorf("%w: %w: the raw root %s has %d bytes, more than the %d a leaf may hold", ErrBadNode, ErrTooLarge, c, len(data), MaxLeafSize)
	}
	if w.bytes += int64(len(data)); w.bytes > w.lim.Bytes {
		return nil, fmt.Errorf("%w: more than %d bytes of nodes", ErrLimit, w.lim.Bytes)
	}
	if err := integrity.Verify(c, data); err != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrBadNode, ErrMismatch, err)
	}
	return data, nil
}

func (v Visitor) file(ctx context.Context, w *Walker, p string, l Link, n *Node, depth int) error {
	if v.File != nil {
		if err := v.File(p, l); err != nil {
			return err
		}
	}
	if n == nil { // a raw leaf: the whole file
		if v.Leaf != nil {
			return v.Leaf(0, l)
		}
		return nil
	}
	if w.lim.Leaves > 0 {
		if w.counts == nil {
			w.counts = map[cid.Cid]uint64{}
		}
		c, err := w.countLeaves(ctx, n, depth)
		if err != nil {
			return err
		}
		if w.nleaves += int64(min(c, 1<<62)); w.nleaves > w.lim.Leaves {
			return fmt.Errorf("%w: more than %d leaves", ErrLimit, w.lim.Leaves)
		}
	}
	leaf := v.Leaf
	if leaf == nil {
		leaf = func(uint64, Link) error { return nil }
	}
	return w.fileLeaves(ctx, n, depth, leaf)
}

// countLeaves returns the number of leaves under the file node n, reading
// each node below it once (w.counts remembers them) and stopping as soon as
// the count passes the limit.
func (w *Walker) countLeaves(ctx context.Context, n *Node, depth int) (uint64, error) {
	if c, ok := w.counts[n.CID]; ok {
		return c, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if depth >= w.lim.Depth {
		return 0, fmt.Errorf("%w: deeper than %d", ErrLimit, w.lim.Depth)
	}
	var total uint64
	if len(n.Data) > 0 && len(n.Links) == 0 {
		total = 1
	}
	for _, l := range n.Links {
		if l.CID.Prefix().Codec == cid.Raw {
			total++
		} else if c, ok := w.counts[l.CID]; ok {
			total += c
		} else {
			child, err := w.Node(ctx, l.CID)
			if err != nil {
				return 0, err
			}
			if child.Kind != KindFile {
				return 0, fmt.Errorf("%w: file %s links to a %s", ErrBadNode, n.CID, child.Kind)
			}
			c, err := w.countLeaves(ctx, child, depth+1)
			if err != nil {
				return 0, err
			}
			total += c
		}
		if int64(total)+w.nleaves > w.lim.Leaves || total > 1<<62 {
			return 0, fmt.Errorf("%w: more than %d leaves", ErrLimit, w.lim.Leaves)
		}
	}
	w.counts[n.CID] = total
	return total, nil
}

// walk visits the node l names, at path p, depth below the root.
func (w *Walker) walk(ctx context.Context, p string, l Link, depth int, v Visitor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > w.lim.Depth {
		return fmt.Errorf("%w: deeper than %d", ErrLimit, w.lim.Depth)
	}
	n, err := w.Node(ctx, l.CID)
	if err != nil {
		return err
	}
	if v.Meta != nil {
		if m := n.Meta(); !m.IsZero() {
			if err := v.Meta(p, m); err != nil {
				return err
			}
		}
	}
	switch n.Kind {
	case KindFile:
		return v.file(ctx, w, p, Link{CID: l.CID, Size: l.Size, FileSize: n.FileSize}, n, depth)
	case KindSymlink:
		if v.Symlink != nil {
			return v.Symlink(p, string(n.Data))
		}
		return nil
	case KindDir, KindHAMT:
	default:
		return fmt.Errorf("%w: %s at %q is a %s", ErrBadNode, l.CID, p, n.Kind)
	}
	if v.Dir != nil {
		if err := v.Dir(p, l); err != nil {
			return err
		}
	}
	var entries []NamedLink
	add := func(name string, el Link) error {
		entries = append(entries, NamedLink{Name: name, Link: el})
		return nil
	}
	if n.Kind == KindDir {
		for _, el := range n.Links {
			_ = add(el.Name, el.Link)
		}
	} else if err := w.listShard(ctx, n, depth, nil, add); err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b NamedLink) int { return strings.Compare(a.Name, b.Name) })
	for i, e := range entries {
		if i > 0 && entries[i-1].Name == e.Name {
			return fmt.Errorf("%w: %w: %q in %s", ErrBadNode, ErrDuplicate, e.Name, l.CID)
		}
		if err := ValidName(e.Name); err != nil {
			return fmt.Errorf("%w: %s holds an entry that cannot be written safely: %w", ErrBadNode, l.CID, err)
		}
		cp := path.Join(p, e.Name)
		if e.CID.Prefix().Codec == cid.Raw {
			// A file of one leaf: its link's Tsize is its size.
			le := Link{CID: e.CID, Size: e.Size, FileSize: e.Size}
			if e.Size == 0 && !e.CID.Equals(emptyLeaf) {
				return fmt.Errorf("%w: %s declares %q (%s) empty, which it is not", ErrBadNode, l.CID, e.Name, e.CID)
			}
			if e.Size > 0 {
				if err := checkLeaf(l.CID, le); err != nil {
					return err
				}
			}
			if err := v.file(ctx, w, cp, le, nil, depth+1); err != nil {
				return err
			}
			continue
		}
		if err := w.walk(ctx, cp, e.Link, depth+1, v); err != nil {
			return err
		}
	}
	return nil
}

// emptyLeaf is the CID of the empty raw block: an empty file's root.
var emptyLeaf = integrity.Chunk(nil)
