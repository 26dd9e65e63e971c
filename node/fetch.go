package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/names"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/ticket"
	"github.com/peer-project/peer/unixfs"
)

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Force replaces an existing destination.
	Force bool
	// Peers are asked first, besides a ticket's provider.
	Peers []peer.AddrInfo
	// Progress, if not nil, is called about every 50 ms and at the end.
	// It must not block.
	Progress func(Progress)
}

// Target is what Fetch is asked for: a root, and optionally a path below it
// and a provider from a ticket.
type Target struct {
	Root cid.Cid
	Path string // slash-separated path below Root; "" for the root itself
	Hint *peer.AddrInfo
	// IPNS, if set, is a name ("/ipns/k51…") whose root is fetched: the
	// node resolves it (Resolve) and sets Root.
	IPNS string
}

// ParseTarget reads ROOT, ROOT/path/in/it, a ticket (optionally followed
// by /path) or a name, /ipns/NAME[/path].
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	var t Target
	if rest, ok := strings.CutPrefix(s, names.Prefix); ok {
		head, sub, _ := strings.Cut(rest, "/")
		nm, err := names.ParseName(head)
		if err != nil {
			return Target{}, fmt.Errorf("%w: %q: %w", ErrName, s, err)
		}
		t.IPNS = nm.String()
		s = "ipns/" + sub // the path is read below
	}
	head, rest, _ := strings.Cut(s, "/")
	if t.IPNS != "" {
		// the root comes from the name
	} else if ticket.Looks(head) {
		tk, err := ticket.Parse(head)
		if err != nil {
			return Target{}, err
		}
		t.Root, t.Hint = tk.Root, &tk.Provider
		if tk.Name != "" {
			// A ticket of a name: the name's latest root, not the one
			// the ticket was made with.
			t.Root, t.IPNS = cid.Undef, names.NameFromPeer(tk.Name).String()
		}
	} else {
		c, err := cid.Decode(head)
		if err != nil {
			return Target{}, fmt.Errorf("node: %q is neither a root CID nor a ticket: %v", head, err)
		}
		if err := integrity.Check(c); err != nil {
			return Target{}, fmt.Errorf("node: %s is not a root peer can fetch (a CIDv1 of a UnixFS DAG, bafybei… or bafkrei…): %w", c, err)
		}
		t.Root = c
	}
	if rest != "" {
		clean := path.Clean(rest)
		for _, el := range strings.Split(clean, "/") {
			if err := unixfs.ValidName(el); err != nil {
				return Target{}, fmt.Errorf("node: path %q: %w", rest, err)
			}
		}
		t.Path = clean
	}
	return t, nil
}

// ErrUnseenName is wrapped when a target's own name is not taken as the
// name of its destination: the user chooses one with -o (see DefaultDest).
//
// A UnixFS root has no name of its own: a target's name is the last element
// of its path (ROOT/dir/file.txt is named file.txt by the folder that holds
// it), and a bare root is named by its CID, as `ipfs get` names it (see
// Target.Name).
var ErrUnseenName = errors.New("node: the target's own name is hidden or does not print as written")

// DefaultDest returns where a fetch puts a target named name (see
// Target.Name) when the user named a folder, dir, but no destination:
// dir/name. The sharer picks that name, so a name the user would not see as
// written is refused with ErrUnseenName and a message that says to choose
// one: a name that starts with '.' (a shared folder named ".ssh" fetched in
// the home folder would become ~/.ssh), that starts or ends with a space, or
// that holds a character that does not print as itself (a zero-width space,
// a right-to-left override). It is pure and safe for concurrent use.
func DefaultDest(dir, name string) (string, error) {
	if err := unixfs.ValidName(name); err != nil {
		return "", fmt.Errorf("node: the target's own name: %w; pass -o NAME to choose where it is written", err)
	}
	problem := ""
	first, _ := utf8.DecodeRuneInString(name)
	last, _ := utf8.DecodeLastRuneInString(name)
	switch {
	case first == '.':
		problem = "that starts with '.' (hidden, like .ssh or .bashrc)"
	case unicode.IsSpace(first) || unicode.IsSpace(last):
		problem = "that starts or ends with a space"
	default:
		for _, r := range name {
			if !unicode.IsPrint(r) {
				problem = fmt.Sprintf("with %U in it, which does not print as itself", r)
				break
			}
		}
	}
	if problem != "" {
		return "", fmt.Errorf("%w: its sharer named it %q, a name %s; pass -o NAME to choose the name it is written to", ErrUnseenName, name, problem)
	}
	return filepath.Join(dir, name), nil
}

// Fetch downloads what target names into dest (a file, or a folder for a
// directory) from every peer that has it, and then serves it from there. It
// blocks until the download is complete and renamed into place, ctx is
// done, or no peer that has it can be found. An interrupted fetch resumes
// when called again with the same dest.
func (n *Node) Fetch(ctx context.Context, target Target, dest string, opts FetchOptions) (*Result, error) {
	target, err := n.resolveName(ctx, target, opts.Peers)
	if err != nil {
		return nil, err
	}
	res, err := n.fetchTarget(ctx, target, dest, opts)
	if err != nil {
		return nil, translate(err)
	}
	return resultOf(res, target.Name()), nil
}

func (n *Node) fetchTarget(ctx context.Context, target Target, dest string, opts FetchOptions) (*swarm.Result, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var untrack func()
	opts.Progress, untrack = n.track(target, dest, opts.Progress)
	defer untrack()

	src := n.sourcesOf(target, opts.Peers)
	root := target.Root
	if target.Path != "" {
		// The providers of the top root serve the nodes below it.
		sub, g, err := n.resolve(ctx, target, src)
		if err != nil {
			return nil, err
		}
		root = sub.link.CID
		// The nodes the path led through are in the store now: if the DAG
		// below turns out invalid, those who sent them lied too.
		res, err := n.fetch(ctx, root, dest, opts, src, fetchHooks{})
		return res, g.blame(err)
	}
	return n.fetch(ctx, root, dest, opts, src, fetchHooks{})
}

// sources are where a fetch looks for a root: hints first, then discovery.
type sources struct {
	hints    []peer.AddrInfo
	discover func(context.Context) <-chan peer.AddrInfo // nil without a DHT
}

// sourcesOf returns the sources of target: its ticket's provider, peers, and
// the DHT's providers of its top root (they serve the blocks below it too).
func (n *Node) sourcesOf(target Target, peers []peer.AddrInfo) sources {
	s := sources{hints: append([]peer.AddrInfo(nil), peers...)}
	if target.Hint != nil {
		s.hints = append([]peer.AddrInfo{*target.Hint}, s.hints...)
	}
	if n.dht != nil {
		top := target.Root
		s.discover = func(ctx context.Context) <-chan peer.AddrInfo { return n.findProviders(ctx, top, 20) }
	}
	return s
}

// fetchHooks let Open follow a fetch: accept may refuse the layout before
// anything is written, started and verified are called after the node's
// own bookkeeping, and focus steers the scheduler.
type fetchHooks struct {
	accept   func(*swarm.Layout) error
	started  func(*swarm.Layout, swarm.Source)
	verified func(int64)
	focus    <-chan swarm.Range
	// want picks the files of a folder to fetch (swarm.FetchOptions.Want).
	want func(swarm.FileSpan) bool
	// staged: the download is a staging area the caller moves elsewhere
	// and indexes there (a follow), so it is not indexed where it was
	// written; the download serves root until the caller serves it from
	// where it goes, or stops it (see unserveStaged).
	staged bool
}

// fetch downloads root (already resolved) into dest; the caller has entered.
func (n *Node) fetch(ctx context.Context, root cid.Cid, dest string, opts FetchOptions, src sources, hooks fetchHooks) (*swarm.Result, error) {
	var (
		provideOnce sync.Once
		servedHere  swarm.Source // the download, when it serves root (no share did)
	)
	res, err := n.swarm.Fetch(ctx, root, swarm.FetchOptions{
		Dest:         dest,
		Force:        opts.Force,
		Hints:        src.hints,
		Discover:     src.discover,
		FindTimeout:  n.cfg.FindTimeout,
		StallTimeout: n.cfg.StallTimeout,
		Progress:     progressFunc(opts.Progress),
		Focus:        hooks.focus,
		Accept:       hooks.accept,
		Want:         hooks.want,
		Local:        n.localCopies,
		Replaceable:  n.replaceable(dest),
		Started: func(l *swarm.Layout, s swarm.Source) {
			// A peer that is still downloading serves what it has.
			if !n.swarm.Serving(root) {
				n.swarm.Serve(root, s)
				servedHere = s
			}
			if hooks.started != nil {
				hooks.started(l, s)
			}
		},
		Verified: func(i int64) {
			// A streaming reader waits for this chunk: wake it first.
			if hooks.verified != nil {
				hooks.verified(i)
			}
			// Announce as soon as there is something to give.
			provideOnce.Do(func() { n.provide(root) })
		},
	})
	if err != nil {
		// What was fetched stays in the partial file for the next try;
		// it is served only while a fetch runs. A share of root made
		// meanwhile serves it now, and goes on.
		if servedHere != nil {
			n.swarm.StopServingFrom(root, servedHere)
		}
		return nil, err
	}
	if hooks.staged {
		return res, nil
	}
	// Seed from where it was written: index it as a share.
	if err := n.adopt(ctx, res); err != nil {
		n.log.Warn("indexing a finished download", "dest", dest, "err", err)
		n.swarm.Serve(root, res.Source)
	}
	n.provide(root)
	return res, nil
}

// unserveStaged stops serving res's root from the staging area it was
// fetched to (fetchHooks.staged), unless something else serves it now.
func (n *Node) unserveStaged(res *swarm.Result) {
	n.swarm.StopServingFrom(res.Root, res.Source)
}

// localCopies names the places in this node's shares and finished
// downloads that held chunk c when they were indexed: a fetch copies c
// from the first that still holds it (verified) before it asks any peer.
func (n *Node) localCopies(c cid.Cid) []swarm.LocalCopy {
	locs, err := n.store.LocationsUpTo(c, maxLocalCopies)
	if err != nil {
		return nil
	}
	out := make([]swarm.LocalCopy, len(locs))
	for i, l := range locs {
		out[i] = swarm.LocalCopy{Path: l.Path, Offset: l.Offset, Size: l.Size}
	}
	return out
}

// replaceable says which files a forced fetch into the folder dest may
// remove although the new root does not list them: those of an earlier
// fetch or share of dest that still have the size and modification time
// they were indexed with (a file the user changed or added is never
// removed). The store is read once, at the first call.
func (n *Node) replaceable(dest string) func(rel string) bool {
	var (
		once  sync.Once
		files map[string]store.SharedFile
	)
	return func(rel string) bool {
		once.Do(func() {
			all, err := n.store.SharedFilesAt(dest)
			if err != nil {
				n.log.Warn("listing the files of the previous version", "dest", dest, "err", err)
			}
			files = make(map[string]store.SharedFile, len(all))
			for _, f := range all {
				files[f.Path] = f
			}
		})
		abs, err := filepath.Abs(filepath.Join(dest, filepath.FromSlash(rel)))
		if err != nil {
			return false
		}
		f, ok := files[abs]
		if !ok {
			return false
		}
		fi, err := os.Lstat(abs)
		return err == nil && fi.Mode().IsRegular() && fi.Size() == f.Size && fi.ModTime().Equal(f.ModTime)
	}
}

// maxLocalCopies bounds the places a fetch tries for one chunk.
const maxLocalCopies = 8

// resolved is what a target names: its root's link and, but for a raw leaf
// (a whole file of one chunk, never read to resolve it), its decoded node.
type resolved struct {
	link unixfs.Link
	node *unixfs.Node // nil for a raw leaf
}

// file reports whether r is a file, and its size.
func (r resolved) file() (bool, int64) {
	if r.node == nil {
		return true, int64(r.link.Size)
	}
	return r.node.Kind == unixfs.KindFile, int64(r.node.FileSize)
}

// resolve finds the node target names (its root, or the path below it),
// loading the nodes on the way from the store or from peers, and decodes
// it. A peer that sent a node of an invalid DAG is banned.
// It returns the getter, which knows who sent the nodes on the way.
func (n *Node) resolve(ctx context.Context, t Target, src sources) (resolved, *peerGetter, error) {
	g := &peerGetter{n: n, root: t.Root, hints: src.hints, discover: src.discover}
	r, err := g.resolve(ctx, unixfs.NewWalker(g, unixfs.DefaultLimits()), t)
	if err != nil {
		if t.Path == "" {
			return resolved{}, g, fmt.Errorf("fetch %s: %w", t.Root, err)
		}
		return resolved{}, g, fmt.Errorf("fetch %s/%s: %w", t.Root, t.Path, err)
	}
	return r, g, nil
}

// resolve follows t's path with w and decodes the node it ends at (a raw
// root is not read: it is a file, whose size its parent declares, or, for
// a bare root, the fetch finds out).
func (g *peerGetter) resolve(ctx context.Context, w *unixfs.Walker, t Target) (resolved, error) {
	l := unixfs.Link{CID: t.Root}
	if t.Path != "" {
		var err error
		if l, err = w.Resolve(ctx, t.Root, strings.Split(t.Path, "/")); err != nil {
			return resolved{}, g.blame(err)
		}
		l.FileSize = l.Size
	}
	if l.CID.Prefix().Codec == cid.Raw {
		if t.Path == "" {
			// A bare raw root: its size is its length, which only
			// reading it tells.
			data, err := g.GetBlock(ctx, l.CID)
			if err != nil {
				return resolved{}, err
			}
			if len(data) > unixfs.MaxLeafSize {
				return resolved{}, g.blame(fmt.Errorf("%w: the raw root %s has %d bytes, more than a leaf may hold", unixfs.ErrBadNode, l.CID, len(data)))
			}
			l.Size, l.FileSize = uint64(len(data)), uint64(len(data))
		} else if l.Size > unixfs.MaxLeafSize {
			return resolved{}, g.blame(fmt.Errorf("%w: %s declares a leaf of %d bytes, more than a leaf may hold", unixfs.ErrBadNode, l.CID, l.Size))
		}
		return resolved{link: l}, nil
	}
	nd, err := w.Node(ctx, l.CID)
	if err != nil {
		return resolved{}, g.blame(err)
	}
	return resolved{link: l, node: nd}, nil
}

// adopt indexes a finished download in place, so that it is served from
// the files it was written to, across restarts.
//
// It does not tell the store that nothing can write the files
// (store.ShareTx.Opened) to have them sealed at once: that vouches for
// bytes read and hashed after the read lease, and adopt reads none (the
// chunks were verified before they were written). A process that wrote a
// file between the download's last write and a lease would go unseen:
// its stamp is not the download's, but nothing here knows the
// download's. Nor could it seal a file changed within racyAge of the
// share's start, as a download just finished is. Its chunks get proofs
// as they are first served instead (store's proof.go).
func (n *Node) adopt(ctx context.Context, res *swarm.Result) error {
	l := res.Layout
	tx, err := n.store.BeginShare(res.Dest)
	if err != nil {
		return err
	}
	for _, f := range l.Files {
		p := res.Dest
		if l.Dir {
			p = filepath.Join(res.Dest, filepath.FromSlash(f.Path))
		}
		st, err := os.Stat(p)
		if err != nil {
			tx.Abort()
			return err
		}
		locs := make([]store.ChunkLoc, 0, f.Count)
		for i := f.First; i < f.First+f.Count; i++ {
			c := l.Chunks[i]
			locs = append(locs, store.ChunkLoc{CID: c.CID, Offset: c.Offset, Size: uint32(c.Size)})
		}
		if err := addFile(tx, p, f.Size, st.ModTime(), f.CID, locs); err != nil {
			tx.Abort()
			return err
		}
	}
	params := chunkingOf(l, n.cfg.Chunking)
	// A UnixFS root has no name: the share is named as it was written.
	if err := tx.Commit(res.Root, store.ShareInfo{Name: filepath.Base(res.Dest), Size: l.Size, Files: int64(len(l.Files)), Dir: l.Dir, Chunking: params}); err != nil {
		return err
	}
	n.unshareReplaced(res.Dest, res.Root)
	return n.serve(ctx, res.Root)
}

// unshareReplaced forgets the other shares of dest, which a forced fetch
// of root has just replaced: their files are gone or hold root's bytes, so
// their index would only send later fetches to read them in vain.
func (n *Node) unshareReplaced(dest string, root cid.Cid) {
	abs, err := filepath.Abs(dest)
	var shares []store.Share
	if err == nil {
		shares, err = n.store.Shares()
	}
	if err != nil {
		n.log.Warn("forgetting the shares a fetch replaced", "dest", dest, "err", err)
		return
	}
	for _, sh := range shares {
		if sh.Path == abs && !sh.Root.Equals(root) {
			if err := n.Unshare(sh.Root); err != nil {
				n.log.Warn("forgetting a replaced share", "root", sh.Root, "dest", dest, "err", err)
			}
		}
	}
}

// chunkingOf says how the files of l were cut, as far as their leaves
// show: fixed-size chunks when every leaf but each file's last has one
// size, else def (the DAG does not record the chunker).
func chunkingOf(l *swarm.Layout, def chunker.Params) chunker.Params {
	size := int32(0)
	for _, f := range l.Files {
		for i := f.First; i < f.First+f.Count-1; i++ {
			switch s := l.Chunks[i].Size; {
			case size == 0:
				size = s
			case s != size:
				return def
			}
		}
	}
	if p := chunker.FixedParams(int(size)); size != 0 && p.Validate() == nil {
		return p
	}
	return def
}

// peerGetter loads nodes from the store, or from the first peer that has
// them, through a short fetch session of the swarm. It remembers who sent
// each, to ban them if the DAG turns out invalid (blame). Not safe for
// concurrent use.
type peerGetter struct {
	n        *Node
	root     cid.Cid // the top root: peers serve its blocks in its sessions
	hints    []peer.AddrInfo
	discover func(context.Context) <-chan peer.AddrInfo
	from     []peer.ID // who sent the nodes read so far
}

func (g *peerGetter) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if b, err := g.n.store.GetBlock(ctx, c); err == nil {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, p, err := g.n.swarm.GetBlockFrom(ctx, g.root, c, g.hints, g.discover)
	if err == nil && p != "" && !slices.Contains(g.from, p) {
		g.from = append(g.from, p)
	}
	return b, err
}

// blame bans the peers that sent nodes of the DAG when err says it is
// invalid (see swarm.BlameDAG), and returns err.
func (g *peerGetter) blame(err error) error {
	if err != nil {
		g.n.swarm.BlameDAG(g.from, err)
	}
	return err
}
