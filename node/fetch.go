package node

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/manifest"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/ticket"
)

// Progress describes a fetch in flight; see swarm.Progress.
type Progress = swarm.Progress

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
}

// ParseTarget reads ROOT, ROOT/path/in/it or a ticket (optionally followed
// by /path).
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	head, rest, _ := strings.Cut(s, "/")
	var t Target
	if ticket.Looks(head) {
		tk, err := ticket.Parse(head)
		if err != nil {
			return Target{}, err
		}
		t.Root, t.Hint = tk.Root, &tk.Provider
	} else {
		c, err := cid.Decode(head)
		if err != nil {
			return Target{}, fmt.Errorf("node: %q is neither a root CID nor a ticket: %v", head, err)
		}
		if err := integrity.CheckCodec(c, integrity.DagCBOR); err != nil {
			return Target{}, fmt.Errorf("node: %s is not a peer root (a dag-cbor manifest CID, bafyrei…): %w", c, err)
		}
		t.Root = c
	}
	if rest != "" {
		clean := path.Clean(rest)
		for _, el := range strings.Split(clean, "/") {
			if err := manifest.ValidName(el); err != nil {
				return Target{}, fmt.Errorf("node: path %q: %w", rest, err)
			}
		}
		t.Path = clean
	}
	return t, nil
}

// Fetch downloads what target names into dest (a file, or a folder for a
// directory) from every peer that has it, and then serves it from there. It
// blocks until the download is complete and renamed into place, ctx is
// done, or no peer that has it can be found. An interrupted fetch resumes
// when called again with the same dest.
func (n *Node) Fetch(ctx context.Context, target Target, dest string, opts FetchOptions) (*swarm.Result, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var untrack func()
	opts.Progress, untrack = n.track(target, dest, opts.Progress)
	defer untrack()

	hints := append([]peer.AddrInfo(nil), opts.Peers...)
	if target.Hint != nil {
		hints = append([]peer.AddrInfo{*target.Hint}, hints...)
	}
	var discover func(context.Context) <-chan peer.AddrInfo
	if n.dht != nil {
		top := target.Root
		discover = func(ctx context.Context) <-chan peer.AddrInfo { return n.findProviders(ctx, top, 20) }
	}
	root := target.Root
	if target.Path != "" {
		// The providers of the top root serve the manifest blocks below it.
		sub, err := n.resolve(ctx, target, hints, discover)
		if err != nil {
			return nil, err
		}
		root = sub
	}
	rec := store.Download{Root: root, Dest: dest, Partial: swarm.PartialPath(dest), Created: n.cfg.Now()}
	var (
		provideOnce sync.Once
		servedHere  bool // the download itself serves root (no share did)
	)
	res, err := n.swarm.Fetch(ctx, root, swarm.FetchOptions{
		Dest:        dest,
		Force:       opts.Force,
		Hints:       hints,
		Discover:    discover,
		FindTimeout: n.cfg.FindTimeout,
		Progress:    opts.Progress,
		Started: func(l *swarm.Layout, s swarm.Source) {
			rec.Size, rec.Chunks = l.Size, l.NumChunks()
			if err := n.store.PutDownload(rec); err != nil {
				n.log.Warn("recording a download", "root", root, "err", err)
			}
			// A peer that is still downloading serves what it has.
			if !n.swarm.Serving(root) {
				n.swarm.Serve(root, s)
				servedHere = true
			}
		},
		Verified: func(i int64) {
			if err := n.store.MarkHave(root, i); err != nil {
				n.log.Warn("recording progress", "root", root, "err", err)
			}
			// Announce as soon as there is something to give.
			provideOnce.Do(func() { n.provide(root) })
		},
	})
	if err != nil {
		if ferr := n.store.Flush(); ferr != nil {
			n.log.Warn("recording progress", "root", root, "err", ferr)
		}
		// What was fetched stays in the partial file for the next try;
		// it is served only while a fetch runs.
		if servedHere {
			n.swarm.StopServing(root)
		}
		return nil, err
	}
	// Seed from where it was written: index it as a share.
	if err := n.adopt(ctx, res); err != nil {
		n.log.Warn("indexing a finished download", "dest", dest, "err", err)
		n.swarm.Serve(root, res.Source)
	}
	n.store.DeleteDownload(root)
	n.provide(root)
	return res, nil
}

// resolve finds the root of target.Path below target.Root, loading the
// manifest blocks on the way from the store or from peers.
func (n *Node) resolve(ctx context.Context, t Target, hints []peer.AddrInfo, discover func(context.Context) <-chan peer.AddrInfo) (cid.Cid, error) {
	g := &peerGetter{n: n, hints: hints, discover: discover}
	c, _, err := manifest.Resolve(ctx, g, t.Root, t.Path)
	if err != nil {
		return cid.Undef, fmt.Errorf("fetch %s/%s: %w", t.Root, t.Path, err)
	}
	return c, nil
}

// adopt indexes a finished download in place, so that it is served from
// the files it was written to, across restarts.
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
	params := n.cfg.Chunking
	if len(l.Files) > 0 {
		if nd, err := manifest.Load(ctx, n.store, l.Files[0].CID); err == nil {
			if f, ok := nd.(*manifest.File); ok {
				params = f.Chunking
			}
		}
	}
	if err := tx.Commit(res.Root, store.ShareInfo{Name: l.Name, Size: l.Size, Files: int64(len(l.Files)), Dir: l.Dir, Chunking: params}); err != nil {
		return err
	}
	return n.serve(ctx, res.Root)
}

// peerGetter loads manifest blocks from the store, or from the first peer
// that has them, through a short fetch session of the swarm.
type peerGetter struct {
	n        *Node
	hints    []peer.AddrInfo
	discover func(context.Context) <-chan peer.AddrInfo
}

func (g *peerGetter) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if b, err := g.n.store.GetBlock(ctx, c); err == nil {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return g.n.swarm.GetBlock(ctx, c, g.hints, g.discover)
}
