package swarm

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// limits holds a swarm's bandwidth caps. Safe for concurrent use. The caps
// may change at any time (SetRates): each is a pointer to a limiter, nil
// for no cap, swapped whole, so a wait already begun ends on the old one
// (at most a burst's worth) and the next takes the new one.
type limits struct {
	up, down atomic.Pointer[rate.Limiter] // over all peers

	mu    sync.Mutex
	rates Rates                  // in force
	peers map[peer.ID]*peerLimit // with sessions
}

// peerLimit is one peer's caps, shared by all its sessions.
type peerLimit struct {
	refs     int // sessions using it; guarded by limits.mu
	up, down atomic.Pointer[rate.Limiter]
}

func newLimits(c *Config) *limits {
	l := &limits{peers: map[peer.ID]*peerLimit{}, rates: Rates{
		Upload: max(c.UploadRate, 0), Download: max(c.DownloadRate, 0),
		PeerUpload: max(c.PeerUploadRate, 0), PeerDownload: max(c.PeerDownloadRate, 0),
	}}
	l.up.Store(newLimiter(c.UploadRate))
	l.down.Store(newLimiter(c.DownloadRate))
	return l
}

// Rates are a swarm's caps in bytes per second; 0 means no cap.
type Rates struct {
	Upload, Download, PeerUpload, PeerDownload int64
}

// SetRates changes the swarm's caps (which Config's UploadRate,
// DownloadRate, PeerUploadRate and PeerDownloadRate set at the start), for
// the sessions running and those to come: a transfer takes the new cap
// from its next burst (a tenth of a second's worth of the old one) on. A
// negative rate is refused and changes nothing. It does not block and is
// safe for concurrent use.
func (s *Swarm) SetRates(r Rates) error {
	if r.Upload < 0 || r.Download < 0 || r.PeerUpload < 0 || r.PeerDownload < 0 {
		return fmt.Errorf("swarm: negative rate in %+v: a cap is 0 (none) or more bytes per second", r)
	}
	l := s.lim
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rates = r
	l.up.Store(newLimiter(r.Upload))
	l.down.Store(newLimiter(r.Download))
	for _, pl := range l.peers {
		pl.up.Store(newLimiter(r.PeerUpload))
		pl.down.Store(newLimiter(r.PeerDownload))
	}
	return nil
}

// Rates returns the caps in force. It is safe for concurrent use.
func (s *Swarm) Rates() Rates {
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	return s.lim.rates
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
		pl = &peerLimit{}
		pl.up.Store(newLimiter(l.rates.PeerUpload))
		pl.down.Store(newLimiter(l.rates.PeerDownload))
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
	if err := waitBytes(ctx, &pl.up, n); err != nil {
		return err
	}
	return waitBytes(ctx, &l.up, n)
}

// received waits until n more bytes may come from the peer of pl. It
// blocks until then or until ctx is done; the stream is not read
// meanwhile, which slows the sender down.
func (l *limits) received(ctx context.Context, pl *peerLimit, n int) error {
	if err := waitBytes(ctx, &pl.down, n); err != nil {
		return err
	}
	return waitBytes(ctx, &l.down, n)
}

// waitBytes takes n bytes' worth of tokens from the limiter in p (nil: no
// cap), a burst at a time, reading p anew for each burst.
func waitBytes(ctx context.Context, p *atomic.Pointer[rate.Limiter], n int) error {
	for n > 0 {
		lim := p.Load()
		if lim == nil {
			return nil
		}
		k := min(n, lim.Burst())
		if err := lim.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
