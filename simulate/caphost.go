package simulate

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peer-project/peer/swarm/wire"
)

// cappedHost is a host whose exchange-protocol streams share one upload
// budget: what a node sends to all its peers together is limited, as an
// uplink is. mocknet limits each link alone, which would let a seeder with
// a hundred links upload a hundred times as fast.
type cappedHost struct {
	host.Host
	bucket *bucket
}

func (h *cappedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil || s.Protocol() != wire.ProtocolID {
		return s, err
	}
	return &cappedStream{Stream: s, b: h.bucket, done: make(chan struct{})}, nil
}

func (h *cappedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if pid != wire.ProtocolID {
		h.Host.SetStreamHandler(pid, handler)
		return
	}
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		handler(&cappedStream{Stream: s, b: h.bucket, done: make(chan struct{})})
	})
}

// cappedStream waits for the budget before each write. Reset and Close end
// the wait.
type cappedStream struct {
	network.Stream
	b    *bucket
	once sync.Once
	done chan struct{}
}

func (s *cappedStream) Write(p []byte) (int, error) {
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
