package simulate

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/swarm/wire"
)

// cappedHost is the host under an honest node: it watches the node's
// exchange-protocol streams without changing a byte.
//
// Its streams share one upload budget (bucket, nil for none): what a node
// sends to all its peers together is limited, as an uplink is. mocknet
// limits each link alone, which would let a seeder with a hundred links
// upload a hundred times as fast.
//
// It also counts the BLOCK messages the node has read whole from each peer
// (tally), so that the simulation knows, from the receiving side, who was
// handed a corrupt chunk.
//
// It tells the simulation, through dialing, whenever the node may dial a
// peer, so that their mocknet link is made then.
type cappedHost struct {
	host.Host
	bucket  *bucket // nil: no cap
	tally   *tally
	cuts    *cuts
	dialing func(peer.ID) // links this host to the peer if the network allows
}

func (h *cappedHost) Connect(ctx context.Context, ai peer.AddrInfo) error {
	h.dialing(ai.ID)
	return h.Host.Connect(ctx, ai)
}

func (h *cappedHost) wrap(s network.Stream) network.Stream {
	return &cappedStream{Stream: s, b: h.bucket, t: h.tally, cuts: h.cuts, me: h.ID(), from: s.Conn().RemotePeer(), done: make(chan struct{})}
}

func (h *cappedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	h.dialing(p)
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil || !exchange(s.Protocol()) {
		return s, err
	}
	return h.wrap(s), nil
}

func (h *cappedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if !exchange(pid) {
		h.Host.SetStreamHandler(pid, handler)
		return
	}
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

// exchange reports whether pid is the exchange protocol, of either
// version a node speaks.
func exchange(pid protocol.ID) bool {
	return slices.Contains(swarm.Protocols(), pid)
}

// cappedStream waits for the budget before each write (Reset and Close end
// the wait) and follows the frames it reads.
type cappedStream struct {
	network.Stream
	b    *bucket
	t    *tally
	cuts *cuts
	me   peer.ID
	from peer.ID
	once sync.Once
	done chan struct{}

	// Frame parser state, touched only by the reading goroutine.
	lenBuf  uint64 // length varint so far
	lenSh   uint   // its shift
	left    int64  // bytes of the current frame still to come; 0 between frames
	typ     byte
	typSeen bool
}

func (s *cappedStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if s.cuts.blocked(s.me, s.from) {
		s.Reset()
		return 0, network.ErrReset
	}
	s.follow(p[:n])
	return n, err
}

// follow walks the frames in b (length uvarint, type byte, payload) and
// tallies every BLOCK read to its last byte. A malformed length stops the
// parsing: the node resets such a stream anyway.
func (s *cappedStream) follow(b []byte) {
	for len(b) > 0 {
		if s.left == 0 { // in the length varint
			c := b[0]
			b = b[1:]
			if s.lenSh > 63 {
				s.left = -1
				return
			}
			s.lenBuf |= uint64(c&0x7f) << s.lenSh
			s.lenSh += 7
			if c&0x80 == 0 {
				s.left, s.lenBuf, s.lenSh, s.typSeen = int64(s.lenBuf), 0, 0, false
				if s.left <= 0 {
					s.left = -1 // broken framing: stop following
					return
				}
			}
			continue
		}
		if s.left < 0 {
			return
		}
		if !s.typSeen {
			s.typ, s.typSeen = b[0], true
		}
		k := min(int64(len(b)), s.left)
		b = b[k:]
		s.left -= k
		if s.left == 0 && s.typ == byte(wire.TypeBlock) {
			s.t.add(s.from)
		}
	}
}

func (s *cappedStream) Write(p []byte) (int, error) {
	if s.cuts.blocked(s.me, s.from) {
		s.Reset()
		return 0, network.ErrReset
	}
	if s.b == nil {
		return s.Stream.Write(p)
	}
	if d := s.b.take(len(p)); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return 0, network.ErrReset
		case <-s.b.closed:
			t.Stop()
			return 0, network.ErrReset
		}
	}
	return s.Stream.Write(p)
}

func (s *cappedStream) end() { s.once.Do(func() { close(s.done) }) }

func (s *cappedStream) Reset() error { s.end(); return s.Stream.Reset() }

func (s *cappedStream) ResetWithError(c network.StreamErrorCode) error {
	s.end()
	return s.Stream.ResetWithError(c)
}

func (s *cappedStream) Close() error { s.end(); return s.Stream.Close() }

// bucket is a token bucket of rate bytes per second, with a burst of 64 KiB
// or a tenth of a second, whichever is larger. take books n bytes and says
// how long the caller must wait before sending them. It is safe for
// concurrent use.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
	closed chan struct{} // closed when the simulation ends: no more waiting
}

func newBucket(rate float64, closed chan struct{}) *bucket {
	return &bucket{rate: rate, burst: max(64<<10, rate/10), last: time.Now(), closed: closed}
}

func (b *bucket) take(n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// tally counts, per sending peer, the BLOCK messages a node has read whole,
// and when it read the last one. It is safe for concurrent use.
type tally struct {
	mu   sync.Mutex
	n    map[peer.ID]int
	last map[peer.ID]time.Time
}

func newTally() *tally {
	return &tally{n: map[peer.ID]int{}, last: map[peer.ID]time.Time{}}
}

func (t *tally) add(p peer.ID) {
	t.mu.Lock()
	t.n[p]++
	t.last[p] = time.Now()
	t.mu.Unlock()
}

// blocks returns how many BLOCKs were read from p, and when the last was.
func (t *tally) blocks(p peer.ID) (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[p], t.last[p]
}

// cuts says which exchange streams the faults have cut: those of a peer
// that left, and those across a partition. mocknet takes up to a second
// per connection to close one, so a cut must not wait for that: the
// exchange streams of honest nodes fail at their next read or write, while
// the connections are closed in the background. It is safe for concurrent
// use.
type cuts struct {
	mu   sync.RWMutex
	dead map[peer.ID]bool
	cut  map[peer.ID]bool // the side a partition cut off; nil when whole
}

func (c *cuts) blocked(a, b peer.ID) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.dead[a] || c.dead[b] || (c.cut != nil && c.cut[a] != c.cut[b])
}

func (c *cuts) kill(p peer.ID) {
	c.mu.Lock()
	c.dead[p] = true
	c.mu.Unlock()
}

func (c *cuts) partition(side map[peer.ID]bool) {
	c.mu.Lock()
	c.cut = side
	c.mu.Unlock()
}

// place puts a host that joined during a partition on its side.
func (c *cuts) place(p peer.ID, side bool) {
	c.mu.Lock()
	if c.cut != nil {
		c.cut[p] = side
	}
	c.mu.Unlock()
}
