package node

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
)

// shareSource serves a share from the files it was indexed from, through
// the store, which re-verifies every chunk it reads.
//
// A share may index only some of its root's chunks: a follow indexes the
// files it placed, not those a conflict left to the user (follower.placed),
// and a folder or file served from inside such a share holds what the
// share does of it. have says which chunks are held, and the exchange
// announces them as it does a download's (HAVE_BITFIELD, not HAVE_ALL), so
// that no peer asks here for a chunk this node cannot read.
//
// What such a source holds may lie in other shares too (heldChunks): when
// one of them is unshared, Node.Unshare looks the holdings up again
// (reheld, keepLookup), so that the source claims no chunk the store can
// no longer find; peers told of it before get DONT_HAVE when they ask.
type shareSource struct {
	layout *swarm.Layout
	store  *store.Store
	share  cid.Cid // the share whose index the holdings were looked up in
	// whole says that share indexes every file of layout: its holdings
	// rest on no other share's and never change.
	whole bool
	// have is nil for every chunk. A bitfield set here is never changed:
	// a new one replaces it.
	have atomic.Pointer[bitfield.Bitfield]
	// lookingUp is held while the holdings are looked up again and
	// replaced, so that the last look up is the one kept.
	lookingUp sync.Mutex
}

// newShareSource returns the source of layout l, inside the share of root
// share (l's own root, or a folder's or file's in it). whole says that the
// store indexes every file of l (the caller knows it cheaply, see
// shareHolds); otherwise the store is asked which chunks it holds
// (heldChunks), and a share that holds them all after all (a conflict's
// file of no bytes, or with the same chunks as another file) is whole too,
// until an unshare takes some away (reheld).
func newShareSource(ctx context.Context, st *store.Store, share cid.Cid, l *swarm.Layout, whole bool) (*shareSource, error) {
	src := &shareSource{layout: l, store: st, share: share, whole: whole}
	if whole {
		return src, nil
	}
	have, err := heldChunks(ctx, st, share, l)
	if err != nil {
		return nil, err
	}
	src.setHave(have)
	return src, nil
}

// setHave makes have what s holds: nil (every chunk) if it is full.
func (s *shareSource) setHave(have *bitfield.Bitfield) {
	if have.Full() {
		have = nil
	}
	s.have.Store(have)
}

// reheld looks up again which chunks src holds, unless its own share
// holds them all. On an error it claims nothing, until the next unshare
// or start: better a chunk not offered than one offered and not found.
func (n *Node) reheld(src *shareSource) {
	if src.whole {
		return
	}
	src.lookingUp.Lock()
	defer src.lookingUp.Unlock()
	have, err := heldChunks(n.ctx, n.store, src.share, src.layout)
	if err != nil {
		n.log.Warn("looking up what a partial share holds", "root", src.layout.Root, "err", err)
		have = bitfield.New(src.layout.NumChunks())
	}
	src.setHave(have)
}

// reheldShares looks up again what each of srcs, the shares served here,
// holds: after an unshare, which may have taken some of it away.
func (n *Node) reheldShares(srcs []*shareSource) {
	for _, src := range srcs {
		n.reheld(src)
	}
}

// keepLookup says whether a root found by lookup (a folder or file inside
// a share) is still served after an unshare, as lookup would now find it:
// inside a share still served, holding what that share holds of it. Its
// holdings are looked up again in place, so that its sessions go on, if
// they only shrank: peers learn of a chunk held only from Serve, so a
// source that would now hold more is dropped, and the next lookup serves
// it anew and tells them.
// srcs are the shares served now (servedShares).
func (n *Node) keepLookup(srcs []*shareSource, root cid.Cid, src swarm.Source) bool {
	s, ok := src.(*shareSource)
	if !ok { // lookup makes no other
		return false
	}
	in := shareIn(srcs, root)
	if in == nil {
		return false
	}
	s.lookingUp.Lock()
	defer s.lookingUp.Unlock()
	var have *bitfield.Bitfield // nil: every chunk
	if !in.Complete() {
		var err error
		have, err = heldChunks(n.ctx, n.store, in.layout.Root, s.layout)
		if err != nil || have.Count() == 0 {
			return false // found again, if at all, by the next lookup
		}
	}
	if grows(s.have.Load(), have, s.layout.NumChunks()) {
		return false
	}
	s.setHave(have)
	return true
}

// grows reports whether holdings now, of n chunks, hold one that before
// did not (nil holds every chunk).
func grows(before, now *bitfield.Bitfield, n int64) bool {
	if before == nil {
		return false
	}
	for i := range n {
		if (now == nil || now.Has(i)) && !before.Has(i) {
			return true
		}
	}
	return false
}

// fileLocations bounds the locations heldChunks looks through for a file's
// first chunk; a file found in none of them is looked at chunk by chunk.
const fileLocations = 16

// heldChunks returns which chunks of l some committed share indexes: those
// ReadChunk can find (a chunk is read from whichever file holds it). A
// file that the share of root share indexes has every chunk indexed (a
// share indexes whole files): one lookup of its first chunk says so. Only
// the chunks of the other files are looked up one by one (about 10 µs
// each), as another file or share may hold them.
func heldChunks(ctx context.Context, st *store.Store, share cid.Cid, l *swarm.Layout) (*bitfield.Bitfield, error) {
	have := bitfield.New(l.NumChunks())
	for _, f := range l.Files {
		if f.Count == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		locs, err := st.LocationsUpTo(l.Chunks[f.First].CID, fileLocations)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(locs, func(loc store.Location) bool { return loc.Share.Equals(share) && loc.File.Equals(f.CID) }) {
			for i := f.First; i < f.First+f.Count; i++ {
				have.Set(i)
			}
			continue
		}
		for i := f.First; i < f.First+f.Count; i++ {
			if (i-f.First)%1024 == 1023 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			ok, err := st.HasChunk(l.Chunks[i].CID)
			if err != nil {
				return nil, err
			}
			if ok {
				have.Set(i)
			}
		}
	}
	return have, nil
}

// shareHolds reports whether the share of root indexes every file of l,
// by the counts it was committed with: every way of making a share counts
// the files and bytes it indexes (a follow's, what it placed), so equal
// counts mean every file. It reads one record: cheap at every start.
func shareHolds(st *store.Store, root cid.Cid, l *swarm.Layout) bool {
	sh, err := st.Share(root)
	return err == nil && sh.Files == int64(len(l.Files)) && sh.Size == l.Size
}

func (s *shareSource) Layout() *swarm.Layout { return s.layout }
func (s *shareSource) Complete() bool        { return s.have.Load() == nil }

func (s *shareSource) Has(i int64) bool {
	have := s.have.Load()
	return i >= 0 && i < s.layout.NumChunks() && (have == nil || have.Has(i))
}

func (s *shareSource) Bits() []byte {
	if have := s.have.Load(); have != nil {
		return have.Bytes()
	}
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
// walk of it. Nor is one of a share that lacks every chunk of it (a
// conflict's file in a follow's share).
func (n *Node) lookup(ctx context.Context, root cid.Cid) swarm.Source {
	in := n.shareOf(root)
	if in == nil {
		return nil
	}
	l, err := swarm.BuildLayout(ctx, n.store, root)
	if err != nil {
		return nil
	}
	// Inside a share that holds all its chunks, root's are held too.
	src, err := newShareSource(ctx, n.store, in.layout.Root, l, in.Complete())
	if err != nil {
		return nil
	}
	if have := src.have.Load(); have != nil && have.Count() == 0 {
		return nil
	}
	return src
}

// shareOf returns the source of a share served here that c is a node, or a
// file, of: one that holds every chunk if there is one. Nil if none.
func (n *Node) shareOf(c cid.Cid) *shareSource {
	srcs, _ := n.servedShares()
	return shareIn(srcs, c)
}

// servedShares returns the sources of the shares served here, in the
// store's order.
func (n *Node) servedShares() ([]*shareSource, error) {
	shares, err := n.store.Shares()
	if err != nil {
		return nil, err
	}
	var out []*shareSource
	for _, sh := range shares {
		if src, ok := n.swarm.Registered(sh.Root).(*shareSource); ok {
			out = append(out, src)
		}
	}
	return out, nil
}

// shareIn returns the first of srcs that c is a node, or a file, of: the
// first that holds every chunk if there is one. Nil if none.
func shareIn(srcs []*shareSource, c cid.Cid) *shareSource {
	var found *shareSource
	for _, src := range srcs {
		if !src.holdsNode(c) {
			continue
		}
		if src.Complete() {
			return src
		}
		if found == nil {
			found = src
		}
	}
	return found
}

// holdsNode reports whether c is a node of s's DAG, or the root of one of
// its files (a file of one chunk is its own raw root).
func (s *shareSource) holdsNode(c cid.Cid) bool {
	if s.layout.HasBlock(c) {
		return true
	}
	if c.Prefix().Codec == cid.Raw {
		for _, f := range s.layout.Files {
			if f.CID.Equals(c) {
				return true
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
