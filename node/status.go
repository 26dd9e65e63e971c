package node

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/unixfs"
)

// Transfer is a fetch in progress.
type Transfer struct {
	Target  Target
	Dest    string
	Started time.Time
	// Progress is the latest the fetch reported; its Root is zero until
	// the fetch has found the root's node.
	Progress Progress
}

// track registers a fetch of target into dest until the returned func is
// called, and returns a progress callback that records each report before
// passing it to fn (which may be nil).
func (n *Node) track(target Target, dest string, fn func(Progress)) (func(Progress), func()) {
	t := &Transfer{Target: target, Dest: dest, Started: n.cfg.Now()}
	n.mu.Lock()
	n.transfers[t] = struct{}{}
	n.mu.Unlock()
	progress := func(p Progress) {
		n.mu.Lock()
		t.Progress = p
		n.mu.Unlock()
		if fn != nil {
			fn(p)
		}
	}
	return progress, func() {
		n.mu.Lock()
		delete(n.transfers, t)
		n.mu.Unlock()
	}
}

// Transfers lists the fetches in progress, oldest first. It is safe for
// concurrent use.
func (n *Node) Transfers() []Transfer {
	n.mu.Lock()
	out := make([]Transfer, 0, len(n.transfers))
	for t := range n.transfers {
		c := *t
		c.Progress.PerPeer = nil // owned by the fetch's loop
		out = append(out, c)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].Dest < out[j].Dest
	})
	return out
}

// Status is a node's state at a glance.
type Status struct {
	ID        peer.ID
	Addrs     []ma.Multiaddr // listen addresses, with /p2p/ID
	Peers     int            // connected now
	Shares    int
	Transfers []Transfer
	Metrics   Metrics
}

// Status returns the node's identity, addresses, shares, transfers and
// counters. It reads the database but does not touch the network; it is
// safe for concurrent use.
func (n *Node) Status() (Status, error) {
	if n.isClosed() {
		return Status{}, ErrClosed
	}
	shares, err := n.store.Shares()
	if err != nil {
		return Status{}, fmt.Errorf("node: status: %w", err)
	}
	m := n.Metrics()
	return Status{
		ID: n.ID(), Addrs: n.Addrs(), Peers: m.Peers, Shares: len(shares),
		Transfers: n.Transfers(), Metrics: m,
	}, nil
}

// Listing is what a root holds, as Inspect reads it from its DAG.
type Listing struct {
	Root  cid.Cid
	Name  string // the name a fetch gives it (see Target.Name)
	Dir   bool
	Size  int64
	Files []ListingFile // in walk order: a folder's entries by name, depth first
	Dirs  []string      // every directory below the root, parents first
}

// ListingFile is one file of a Listing.
type ListingFile struct {
	Path     string // slash-separated below the root; "" when the root is a file
	CID      cid.Cid
	Size     int64
	Chunking string // as chunker.Params.String, as far as the leaves show (the DAG does not record it)
	Chunks   []ListingLeaf
}

// ListingLeaf is one chunk of a file.
type ListingLeaf struct {
	CID    cid.Cid
	Offset int64
	Size   uint32
}

// Name returns the name a fetch gives what t names when the user names no
// destination: the last element of its path, else its root's CID (a UnixFS
// root has no name of its own; `ipfs get` names its output the same way).
func (t Target) Name() string {
	if t.Path != "" {
		return path.Base(t.Path)
	}
	return t.Root.String()
}

// Inspect reads the DAG of what target names (a root, or a path below it):
// its files, their sizes and chunk CIDs. Nodes this node lacks are fetched
// from the target's ticket provider, peers and the DHT's providers, and
// kept. It reads within unixfs.DefaultLimits, as a fetch does (else an
// error wrapping unixfs.ErrLimit); a peer that sent a node of an invalid
// DAG is banned. It blocks until the whole DAG is read or ctx is done; it
// is safe for concurrent use.
func (n *Node) Inspect(ctx context.Context, target Target, peers []peer.AddrInfo) (*Listing, error) {
	target, err := n.resolveName(ctx, target, peers)
	if err != nil {
		return nil, err
	}
	m, err := n.inspect(ctx, target, peers)
	return m, translate(err)
}

func (n *Node) inspect(ctx context.Context, target Target, peers []peer.AddrInfo) (*Listing, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	// One walker, one budget, for the path and the tree: a root that
	// claims more than a walk may visit is refused before what it claims
	// is loaded or listed.
	g := n.getterOf(target, peers)
	w := unixfs.NewWalker(g, unixfs.DefaultLimits())
	root := target.Root
	if target.Path != "" {
		l, err := w.Resolve(ctx, target.Root, strings.Split(target.Path, "/"))
		if err != nil {
			return nil, fmt.Errorf("inspect %s/%s: %w", target.Root, target.Path, g.blame(err))
		}
		root = l.CID
	}
	m := &Listing{Root: root, Name: target.Name()}
	var chunks int
	err = w.Walk(ctx, root, unixfs.Visitor{
		Dir: func(p string, _ unixfs.Link) error {
			if p == "" {
				m.Dir = true
			} else {
				m.Dirs = append(m.Dirs, p)
			}
			return nil
		},
		File: func(p string, f unixfs.Link) error {
			m.Files = append(m.Files, ListingFile{Path: p, CID: f.CID, Size: int64(f.FileSize)})
			m.Size += int64(f.FileSize)
			return nil
		},
		Leaf: func(off uint64, leaf unixfs.Link) error {
			if leaf.FileSize == 0 {
				return nil
			}
			if chunks++; chunks > swarm.MaxLayoutChunks {
				return fmt.Errorf("%w: more than %d chunks", unixfs.ErrLimit, swarm.MaxLayoutChunks)
			}
			f := &m.Files[len(m.Files)-1]
			f.Chunks = append(f.Chunks, ListingLeaf{CID: leaf.CID, Offset: int64(off), Size: uint32(leaf.FileSize)})
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", root, g.blame(err))
	}
	for i := range m.Files {
		m.Files[i].Chunking = chunkingOfFile(m.Files[i].Chunks)
	}
	return m, nil
}

// chunkingOfFile says how a file was cut as far as its chunks show: fixed
// chunks of the first one's size when all but the last have it, else
// "variable" (content-defined chunks, or another importer's layout).
func chunkingOfFile(cs []ListingLeaf) string {
	if len(cs) == 0 {
		return ""
	}
	for _, c := range cs[:len(cs)-1] {
		if c.Size != cs[0].Size {
			return "variable"
		}
	}
	if len(cs) == 1 {
		return "one chunk"
	}
	return chunker.FixedParams(int(cs[0].Size)).String()
}

// Entry names what a target resolves to.
type Entry struct {
	Root cid.Cid // the root of the file or directory
	Name string  // the name a fetch gives it (see Target.Name)
	Dir  bool
	Size int64
}

// Describe resolves target (a root, or a path below it) to the file or
// directory it names, loading only the nodes on the way (from the store, or
// from the target's provider, peers and the DHT). A folder's size is the
// sum of its files', read from the whole DAG below it. It blocks until
// then or until ctx is done; it is safe for concurrent use.
func (n *Node) Describe(ctx context.Context, target Target, peers []peer.AddrInfo) (Entry, error) {
	target, err := n.resolveName(ctx, target, peers)
	if err != nil {
		return Entry{}, err
	}
	e, err := n.describe(ctx, target, peers)
	return e, translate(err)
}

func (n *Node) describe(ctx context.Context, target Target, peers []peer.AddrInfo) (Entry, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return Entry{}, err
	}
	defer done()
	g := n.getterOf(target, peers)
	w := unixfs.NewWalker(g, unixfs.DefaultLimits())
	r, err := g.resolve(ctx, w, target)
	if err != nil {
		if target.Path != "" {
			return Entry{}, fmt.Errorf("describe %s/%s: %w", target.Root, target.Path, err)
		}
		return Entry{}, fmt.Errorf("describe %s: %w", target.Root, err)
	}
	e := Entry{Root: r.link.CID, Name: target.Name()}
	if isFile, size := r.file(); isFile {
		e.Size = size
		return e, nil
	}
	if r.node.Kind != unixfs.KindDir && r.node.Kind != unixfs.KindHAMT {
		return Entry{}, fmt.Errorf("describe %s: a %s, not a file or folder", e.Root, r.node.Kind)
	}
	e.Dir = true
	// UnixFS folders do not record their content's size: the walk adds it
	// up, reading the folder's nodes (which a fetch reads anyway).
	err = unixfs.NewWalker(g, unixfs.DefaultLimits()).Walk(ctx, e.Root, unixfs.Visitor{
		File: func(_ string, f unixfs.Link) error { e.Size += int64(f.FileSize); return nil },
	})
	if err != nil {
		return Entry{}, fmt.Errorf("describe %s: %w", e.Root, g.blame(err))
	}
	return e, nil
}

// getterOf loads nodes from the store, or from target's ticket
// provider, peers and the DHT's providers of its top root.
func (n *Node) getterOf(target Target, peers []peer.AddrInfo) *peerGetter {
	g := &peerGetter{n: n, root: target.Root, hints: append([]peer.AddrInfo(nil), peers...)}
	if target.Hint != nil {
		g.hints = append([]peer.AddrInfo{*target.Hint}, g.hints...)
	}
	if n.dht != nil {
		top := target.Root
		g.discover = func(ctx context.Context) <-chan peer.AddrInfo { return n.findProviders(ctx, top, 20) }
	}
	return g
}

// IdentityOf returns the peer ID of the node whose home is home (empty
// means ~/.peer), making its identity key on first use as New would. It
// does not start a node.
func IdentityOf(home string) (peer.ID, error) {
	cfg := Config{Home: home}
	if err := cfg.validate(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return "", fmt.Errorf("node: home %s: %w", cfg.Home, err)
	}
	k, err := loadIdentity(cfg.Home)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(k)
}
