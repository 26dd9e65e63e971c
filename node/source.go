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

// lookup serves a root that was not shared as such but whose manifest and
// chunks the node has: a folder or file inside a share. Having the manifest
// is not enough (a fetch keeps the manifests it loads): every chunk must be
// indexed in a share, or the node would claim chunks it cannot serve.
func (n *Node) lookup(ctx context.Context, root cid.Cid) swarm.Source {
	if ok, _ := n.store.HasBlock(root); !ok {
		return nil
	}
	l, err := swarm.BuildLayout(ctx, n.store, root)
	if err != nil {
		return nil
	}
	for i, c := range l.Chunks {
		if i > 0 && c.CID == l.Chunks[i-1].CID {
			continue // a run of equal chunks (zeros) is looked up once
		}
		if locs, err := n.store.Locations(c.CID); err != nil || len(locs) == 0 {
			return nil
		}
	}
	return &shareSource{layout: l, store: n.store}
}

// edited looks at the files of share sh on disk without reading them and
// reports whether one was changed since it was indexed (its size or
// modification time differ). Such a file has one chunk read, through the
// store, which finds it changed and marks the share stale: the share is
// stale from then on as it would be after a peer's read.
func (n *Node) edited(sh store.Share) bool {
	src, ok := n.swarm.Source(sh.Root).(*shareSource)
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
