package node

import (
	"context"
	"os"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
)

// shareSource serves a share from the files it was indexed from, through
// the store, which re-verifies every chunk it reads.
type shareSource struct {
	layout *swarm.Layout
	store  *store.Store
}

func (s *shareSource) Layout() *swarm.Layout { return s.layout }
func (s *shareSource) Has(i int64) bool      { return i >= 0 && i < s.layout.NumChunks() }
func (s *shareSource) Complete() bool        { return true }

func (s *shareSource) Bits() []byte {
	b := bitfield.New(s.layout.NumChunks())
	for i := range s.layout.NumChunks() {
		b.Set(i)
	}
	return b.Bytes()
}

func (s *shareSource) ReadChunk(ctx context.Context, i int64, buf []byte) ([]byte, error) {
	return s.store.ReadChunk(ctx, s.layout.Chunks[i].CID, buf)
}

// lookup serves a root that was not shared as such but is a folder or
// file inside a share: one of the nodes of a share served here, or the one
// raw leaf of a file in it. Having the nodes is not enough (a fetch, an inspect keep the blocks
// they load): a root only stored is not served, and is refused without a
// walk of it.
func (n *Node) lookup(ctx context.Context, root cid.Cid) swarm.Source {
	if !n.inShare(root) {
		return nil
	}
	l, err := swarm.BuildLayout(ctx, n.store, root)
	if err != nil {
		return nil
	}
	return &shareSource{layout: l, store: n.store}
}

// inShare reports whether c is a node, or a file, of a share served here.
func (n *Node) inShare(c cid.Cid) bool {
	shares, err := n.store.Shares()
	if err != nil {
		return false
	}
	for _, sh := range shares {
		src, ok := n.swarm.Registered(sh.Root).(*shareSource)
		if !ok {
			continue
		}
		if src.layout.HasBlock(c) {
			return true
		}
		if c.Prefix().Codec == cid.Raw { // a file of one chunk is its own root
			for _, f := range src.layout.Files {
				if f.CID.Equals(c) {
					return true
				}
			}
		}
	}
	return false
}

// edited looks at the files of share sh on disk without reading them and
// reports whether one was changed since it was indexed (its size or
// modification time differ). Such a file has one chunk read, through the
// store, which finds it changed and marks the share stale: the share is
// stale from then on as it would be after a peer's read.
func (n *Node) edited(sh store.Share) bool {
	src, ok := n.swarm.Registered(sh.Root).(*shareSource)
	if !ok {
		return false
	}
	l := src.layout
	for _, f := range l.Files {
		if f.Count == 0 {
			continue
		}
		c := l.Chunks[f.First].CID
		locs, err := n.store.Locations(c)
		if err != nil {
			continue
		}
		for _, loc := range locs {
			if loc.Share != sh.Root || loc.File != f.CID {
				continue
			}
			st, err := os.Stat(loc.Path)
			if err == nil && st.Size() == loc.FileSize && st.ModTime().Equal(loc.ModTime) {
				continue
			}
			n.store.ReadChunk(n.ctx, c, nil) // fails on this location, and says so
			return true
		}
	}
	return false
}
