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
// admits, within its upload slots and caps, and lets fetches take blocks
// from Bitswap peers.
//
// A Bitswap peer served is a session of the choker (a quiet one: Bitswap
// has no CHOKE) from its first message of blocks until it is gone: each
// message waits in Sending for the peer's turn, as a stream session's
// requests wait in its queue, meanwhile its wants wait in Bitswap's
// server. The server's workers (one a message being prepared or sent) are
// twice the slots, at least 8, so that peers waiting in line do not keep
// those that hold a slot waiting for a worker.
func (s *Swarm) startBitswap() {
	s.bsp = &bsPeers{host: s.host, lim: s.lim, chk: s.chk, held: map[peer.ID]*bsPeer{}}
	s.bs = bitswap.New(s.host, bitswap.Config{
		Blocks:  bsView{s},
		Admit:   s.admits,
		Sending: s.bsp.sending,
		Gone:    s.bsp.gone,
		Sent: func(_ peer.ID, n int) {
			s.count(func(st *Stats) { st.BytesUp += int64(n); st.BitswapBytesUp += int64(n) })
		},
		Workers: max(2*s.cfg.UploadSlots, 8),
		Logger:  s.cfg.Logger,
	})
}

// bsPeers holds, for each Bitswap peer served, from its first message
// of blocks until it is gone: its upload limiter (shared with its stream
// sessions, if it has any; a limiter taken and given back for each
// message would be new each time, with a full burst, and cap nothing),
// and its session of the choker. Safe for concurrent use; lock order:
// bsPeers.mu, then limits.mu or slots.mu.
type bsPeers struct {
	host host.Host
	lim  *limits
	chk  *slots

	mu     sync.Mutex
	held   map[peer.ID]*bsPeer
	closed bool
}

// bsPeer is what is held for one Bitswap peer.
type bsPeer struct {
	pl *peerLimit
	q  *quietSession
}

// sending is Bitswap's Sending: the message of n bytes of blocks to p
// waits for p's turn at an upload slot, then for the caps. It blocks
// until then, or until ctx is done or p is gone (an error).
func (b *bsPeers) sending(ctx context.Context, p peer.ID, n int) (func(error), error) {
	bp := b.peer(p)
	if bp == nil {
		// Not connected: no Gone will come to release what would be
		// held, and the message will not go far. Only the caps apply.
		pl := b.lim.peer(p)
		defer b.lim.release(p, pl)
		return nil, b.lim.sending(ctx, pl, n)
	}
	if err := b.chk.sendTurn(ctx, bp.q); err != nil {
		return nil, err
	}
	if err := b.lim.sending(ctx, bp.pl, n); err != nil {
		b.chk.sendDone(bp.q)
		return nil, err
	}
	return func(error) { b.chk.sendDone(bp.q) }, nil
}

// peer returns what is held for p, taken at its first message; nil if p
// is not connected or the swarm is closing.
func (b *bsPeers) peer(p peer.ID) *bsPeer {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bp := b.held[p]; bp != nil {
		return bp
	}
	// Checked under b.mu: a Gone for p comes after its last connection
	// is gone from the network, so either it is seen here, or the Gone
	// is yet to come and takes what is stored now.
	if b.closed || b.host.Network().Connectedness(p) != network.Connected {
		return nil
	}
	bp := &bsPeer{pl: b.lim.peer(p), q: b.chk.joinQuiet(p)}
	b.held[p] = bp
	return bp
}

// gone ends p's session and releases its limiter, if they are held.
func (b *bsPeers) gone(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bp := b.held[p]; bp != nil {
		delete(b.held, p)
		b.end(p, bp)
	}
}

func (b *bsPeers) end(p peer.ID, bp *bsPeer) {
	b.chk.leaveQuiet(bp.q)
	b.lim.release(p, bp.pl)
}

// close ends every session and releases every limiter held; later ones
// are not held.
func (b *bsPeers) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for p, bp := range b.held {
		b.end(p, bp)
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
			// A chunk may repeat: the source may hold it at any of
			// its indices (a partial or filtered download).
			if i, ok := l.ChunkIndexFunc(c, src.Has); ok {
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
