package swarm

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm/bitswap"
)

// startBitswap starts the Bitswap exchange beside the swarm's own: it
// serves the blocks of the roots registered here, to the peers the swarm
// admits, within its upload caps, and lets fetches take blocks from
// Bitswap peers.
func (s *Swarm) startBitswap() {
	s.bsp = &bsPeers{host: s.host, lim: s.lim, held: map[peer.ID]*peerLimit{}}
	s.bs = bitswap.New(s.host, bitswap.Config{
		Blocks: bsView{s},
		Admit:  s.admits,
		Sending: func(ctx context.Context, p peer.ID, n int) error {
			pl, temp := s.bsp.limit(p)
			if temp {
				defer s.lim.release(p, pl)
			}
			return s.lim.sending(ctx, pl, n)
		},
		Gone: s.bsp.gone,
		Sent: func(_ peer.ID, n int) {
			s.count(func(st *Stats) { st.BytesUp += int64(n); st.BitswapBytesUp += int64(n) })
		},
		Workers: s.cfg.UploadSlots,
		Logger:  s.cfg.Logger,
	})
}

// bsPeers holds the upload limiter of each Bitswap peer served (shared
// with its stream sessions, if it has any) from the first block sent to
// it until it is gone: a limiter taken and given back for each message
// would be new each time, with a full burst, and cap nothing. Safe for
// concurrent use; lock order: bsPeers.mu, then limits.mu.
type bsPeers struct {
	host host.Host
	lim  *limits

	mu     sync.Mutex
	held   map[peer.ID]*peerLimit
	closed bool
}

// limit returns p's limiter, and true if the caller must release it
// (p is not connected, so no Gone will come to release it).
func (b *bsPeers) limit(p peer.ID) (*peerLimit, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pl := b.held[p]; pl != nil {
		return pl, false
	}
	pl := b.lim.peer(p)
	// Checked under b.mu: a Gone for p comes after its last connection
	// is gone from the network, so either it is seen here, or the Gone
	// is yet to come and takes what is stored now.
	if b.closed || b.host.Network().Connectedness(p) != network.Connected {
		return pl, true
	}
	b.held[p] = pl
	return pl, false
}

// gone releases p's limiter, if one is held.
func (b *bsPeers) gone(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pl := b.held[p]; pl != nil {
		delete(b.held, p)
		b.lim.release(p, pl)
	}
}

// close releases every limiter held; later ones are not held.
func (b *bsPeers) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for p, pl := range b.held {
		b.lim.release(p, pl)
	}
	clear(b.held)
}

// BitswapRefused counts the Bitswap messages dropped because their sender
// was banned or not on the allowlist; 0 without Bitswap.
func (s *Swarm) BitswapRefused() int64 {
	if s.bs == nil {
		return 0
	}
	return s.bs.Refused()
}

// admits reports whether p may exchange with this swarm at all: not
// banned, and on the allowlist if there is one.
func (s *Swarm) admits(p peer.ID) bool {
	return !s.Banned(p) && (s.cfg.Allow == nil || s.cfg.Allow(p))
}

// bsView is what Bitswap serves: the nodes and chunks of the roots
// registered here (shares, fetches done and in flight), nothing else.
type bsView struct{ s *Swarm }

// find returns the source that serves c and, for a chunk, its index (-1
// for a DAG node); nil if no registered root has c.
func (v bsView) find(c cid.Cid) (Source, int64) {
	s := v.s
	s.mu.Lock()
	srcs := make([]Source, 0, len(s.sources))
	for _, src := range s.sources {
		srcs = append(srcs, src)
	}
	s.mu.Unlock()
	raw := c.Prefix().Codec == cid.Raw
	var node Source
	for _, src := range srcs {
		l := src.Layout()
		if raw {
			if i, ok := l.ChunkIndex(c); ok && src.Has(i) {
				return src, i
			}
		}
		if node == nil && l.HasBlock(c) {
			node = src
		}
	}
	if node != nil {
		return node, -1
	}
	return nil, 0
}

func (v bsView) BlockSize(ctx context.Context, c cid.Cid) (int, bool) {
	src, i := v.find(c)
	switch {
	case src == nil:
		return 0, false
	case i >= 0:
		return int(src.Layout().Chunks[i].Size), true
	}
	b, err := v.s.blocks.GetBlock(ctx, c)
	if err != nil {
		return 0, false
	}
	return len(b), true
}

func (v bsView) Block(ctx context.Context, c cid.Cid) ([]byte, error) {
	src, i := v.find(c)
	if src == nil {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	if i >= 0 {
		// Read from its file and verified, as the swarm's own serving
		// reads it: a file edited behind our back is not sent.
		b, err := src.ReadChunk(ctx, i, nil)
		if err != nil {
			return nil, fmt.Errorf("swarm: bitswap: chunk %d of %s: %w", i, src.Layout().Root, err)
		}
		v.s.count(func(st *Stats) { st.ChunksServed++ })
		return b, nil
	}
	b, err := v.s.blocks.GetBlock(ctx, c)
	if err != nil {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	if err := integrity.Verify(c, b); err != nil {
		return nil, fmt.Errorf("swarm: bitswap: DAG node %s: %w", c, err)
	}
	return b, nil
}
