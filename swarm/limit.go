package swarm

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// limits holds a swarm's bandwidth caps, and its peers' credit. Safe for
// concurrent use; lock order: limits.mu, then peerLimit.mu.
type limits struct {
	up, down         *rate.Limiter // over all peers; nil: no cap
	peerUp, peerDown int64         // bytes/s per peer; 0: no cap
	now              func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*peerLimit // with sessions, or credit worth keeping
}

// creditTau is the time constant of a peer's credit: what it sent us that
// long ago counts 1/e as much as what it sends now.
const creditTau = 10 * time.Second

// creditKeep is the least credit kept for a peer with no session: a peer
// that sent us a file and comes back for one of ours within a minute or so
// finds its credit (4 MiB fades to this in 83 s).
const creditKeep = 1 << 10

// peerLimit is one peer's caps, shared by all its sessions, and its
// credit: the verified bytes it has sent us lately, which the choker uses
// to serve first the peers that serve us.
type peerLimit struct {
	refs     int // sessions using it; guarded by limits.mu
	up, down *rate.Limiter

	mu       sync.Mutex
	credit   float64 // bytes, decayed with creditTau
	creditAt time.Time
}

// addCredit records n verified bytes from the peer at now.
func (pl *peerLimit) addCredit(n int, now time.Time) {
	pl.mu.Lock()
	pl.credit = decayed(pl.credit, pl.creditAt, now) + float64(n)
	pl.creditAt = now
	pl.mu.Unlock()
}

// credited returns the peer's credit at now.
func (pl *peerLimit) credited(now time.Time) float64 {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return decayed(pl.credit, pl.creditAt, now)
}

func decayed(v float64, at, now time.Time) float64 {
	if v == 0 || !now.After(at) {
		return v
	}
	return v * math.Exp(-float64(now.Sub(at))/float64(creditTau))
}

func newLimits(c *Config) *limits {
	return &limits{
		up: newLimiter(c.UploadRate), down: newLimiter(c.DownloadRate),
		peerUp: c.PeerUploadRate, peerDown: c.PeerDownloadRate, now: c.Now,
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
		// Forget, first, the peers with no session whose credit has faded.
		now := l.now()
		for q, ql := range l.peers {
			if ql.refs == 0 && ql.credited(now) < creditKeep {
				delete(l.peers, q)
			}
		}
		pl = &peerLimit{up: newLimiter(l.peerUp), down: newLimiter(l.peerDown)}
		l.peers[p] = pl
	}
	pl.refs++
	return pl
}

// release gives back pl, from peer(p). Its credit outlives the peer's last
// session while it is worth keeping.
func (l *limits) release(p peer.ID, pl *peerLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl.refs--; pl.refs == 0 && l.peers[p] == pl && pl.credited(l.now()) < creditKeep {
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
