package node

import (
	"context"

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
