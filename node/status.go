package node

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/manifest"
)

// Transfer is a fetch in progress.
type Transfer struct {
	Target  Target
	Dest    string
	Started time.Time
	// Progress is the latest the fetch reported; its Root is zero until
	// the fetch has found the root's manifest.
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

// Manifest is what a root holds, as Inspect reads it from its manifest.
type Manifest struct {
	Root  cid.Cid
	Name  string
	Dir   bool
	Size  int64
	Files []ManifestFile // in manifest order: directories depth first, names sorted
	Dirs  []string       // every directory below the root, parents first
}

// ManifestFile is one file of a Manifest.
type ManifestFile struct {
	Path     string // slash-separated below the root; "" when the root is a file
	CID      cid.Cid
	Size     int64
	Chunking string // as chunker.Params.String
	Chunks   []ManifestChunk
}

// ManifestChunk is one chunk of a file.
type ManifestChunk struct {
	CID    cid.Cid
	Offset int64
	Size   uint32
}

// Inspect reads the manifest of what target names (a root, or a path below
// it): its files, their sizes and chunk CIDs. Blocks this node lacks are
// fetched from the target's ticket provider, peers and the DHT's providers,
// and kept. It reads within manifest.DefaultLimits, as a fetch does (else
// an error wrapping ErrTooLarge). It blocks until the whole manifest is read or ctx is done; it is
// safe for concurrent use.
func (n *Node) Inspect(ctx context.Context, target Target, peers []peer.AddrInfo) (*Manifest, error) {
	m, err := n.inspect(ctx, target, peers)
	return m, translate(err)
}

func (n *Node) inspect(ctx context.Context, target Target, peers []peer.AddrInfo) (*Manifest, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	// One walker, one budget, for the path, the tree and every file's
	// chunks: a root that claims more than a walk may visit is refused
	// before what it claims is loaded or listed.
	w := manifest.NewWalker(n.getterOf(target, peers), manifest.DefaultLimits())
	root := target.Root
	if target.Path != "" {
		if root, _, err = w.Resolve(ctx, target.Root, target.Path); err != nil {
			return nil, fmt.Errorf("inspect %s/%s: %w", target.Root, target.Path, err)
		}
	}
	m := &Manifest{Root: root}
	err = w.Walk(ctx, root, func(p string, c cid.Cid, nd manifest.Node) error {
		switch nd := nd.(type) {
		case *manifest.Dir:
			if p == "" {
				m.Name, m.Dir, m.Size = nd.Name, true, int64(nd.Size)
			} else {
				m.Dirs = append(m.Dirs, p)
			}
		case *manifest.File:
			if p == "" {
				m.Name, m.Size = nd.Name, int64(nd.Size)
			}
			f := ManifestFile{Path: p, CID: c, Size: int64(nd.Size), Chunking: nd.Chunking.String()}
			if err := w.Chunks(ctx, nd, func(_, off int64, ref manifest.ChunkRef) error {
				f.Chunks = append(f.Chunks, ManifestChunk{CID: ref.CID, Offset: off, Size: ref.Size})
				return nil
			}); err != nil {
				return err
			}
			m.Files = append(m.Files, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", root, err)
	}
	return m, nil
}

// Entry names what a target resolves to.
type Entry struct {
	Root cid.Cid // the manifest of the file or directory
	Name string
	Dir  bool
	Size int64
}

// Describe resolves target (a root, or a path below it) to the file or
// directory it names, loading only the manifest blocks on the way (from the
// store, or from the target's provider, peers and the DHT). It blocks until
// then or until ctx is done; it is safe for concurrent use.
func (n *Node) Describe(ctx context.Context, target Target, peers []peer.AddrInfo) (Entry, error) {
	e, err := n.describe(ctx, target, peers)
	return e, translate(err)
}

func (n *Node) describe(ctx context.Context, target Target, peers []peer.AddrInfo) (Entry, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return Entry{}, err
	}
	defer done()
	c, nd, err := manifest.Resolve(ctx, n.getterOf(target, peers), target.Root, target.Path)
	if err != nil {
		if target.Path != "" {
			return Entry{}, fmt.Errorf("describe %s/%s: %w", target.Root, target.Path, err)
		}
		return Entry{}, fmt.Errorf("describe %s: %w", target.Root, err)
	}
	e := Entry{Root: c}
	switch nd := nd.(type) {
	case *manifest.File:
		e.Name, e.Size = nd.Name, int64(nd.Size)
	case *manifest.Dir:
		e.Name, e.Size, e.Dir = nd.Name, int64(nd.Size), true
	default:
		return Entry{}, fmt.Errorf("describe %s: not a file or directory manifest", c)
	}
	return e, nil
}

// getterOf loads manifest blocks from the store, or from target's ticket
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
