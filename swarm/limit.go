package swarm

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// limits holds a swarm's bandwidth caps. Safe for concurrent use.
type limits struct {
	up, down         *rate.Limiter // over all peers; nil: no cap
	peerUp, peerDown int64         // bytes/s per peer; 0: no cap

	mu    sync.Mutex
	peers map[peer.ID]*peerLimit // with sessions
}

// peerLimit is one peer's caps, shared by all its sessions.
type peerLimit struct {
	refs     int // sessions using it; guarded by limits.mu
	up, down *rate.Limiter
}

func newLimits(c *Config) *limits {
	return &limits{
		up: newLimiter(c.UploadRate), down: newLimiter(c.DownloadRate),
		peerUp: c.PeerUploadRate, peerDown: c.PeerDownloadRate,
		peers: map[peer.ID]*peerLimit{},
	}
}

// newLimiter returns a limiter of bps bytes per second, or nil for none.
// Its burst is a tenth of a second's worth (64 KiB at least), so a cap
// holds over any stretch longer than that.
func newLimiter(bps int64) *rate.Limiter {
	if bps <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bps), int(max(bps/10, 64<<10)))
}

// peer returns p's caps; the caller gives them back with release.
func (l *limits) peer(p peer.ID) *peerLimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl := l.peers[p]
	if pl == nil {
		pl = &peerLimit{up: newLimiter(l.peerUp), down: newLimiter(l.peerDown)}
		l.peers[p] = pl
	}
	pl.refs++
	return pl
}

// release gives back pl, from peer(p).
func (l *limits) release(p peer.ID, pl *peerLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl.refs--; pl.refs == 0 && l.peers[p] == pl {
		delete(l.peers, p)
	}
}

// sending waits until n more bytes may go to the peer of pl. It blocks
// until then or until ctx is done.
func (l *limits) sending(ctx context.Context, pl *peerLimit, n int) error {
	if err := waitBytes(ctx, pl.up, n); err != nil {
		return err
	}
	return waitBytes(ctx, l.up, n)
}

// received waits until n more bytes may come from the peer of pl. It
// blocks until then or until ctx is done; the stream is not read
// meanwhile, which slows the sender down.
func (l *limits) received(ctx context.Context, pl *peerLimit, n int) error {
	if err := waitBytes(ctx, pl.down, n); err != nil {
		return err
	}
	return waitBytes(ctx, l.down, n)
}

// waitBytes takes n bytes' worth of tokens from lim (nil: no cap), a burst
// at a time.
func waitBytes(ctx context.Context, lim *rate.Limiter, n int) error {
	if lim == nil {
		return nil
	}
	for n > 0 {
		k := min(n, lim.Burst())
		if err := lim.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
