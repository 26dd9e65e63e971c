package node

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProtocolBytes is what a node's streams of one protocol carried since it
// started.
type ProtocolBytes struct {
	Protocol protocol.ID
	In, Out  int64
}

// protocolCounter is the libp2p bandwidth reporter of a host the node
// builds: it counts stream bytes by protocol, and nothing else. Unlike
// go-libp2p's metrics.BandwidthCounter it keeps no rates, so it starts no
// goroutine (flow-metrics runs one sweeper for the whole process); a
// Prometheus rate() gives the rates. The protocols are those the host
// negotiated, which its own handlers and dials bound. It is safe for
// concurrent use.
type protocolCounter struct {
	mu     sync.RWMutex
	counts map[protocol.ID]*[2]atomic.Int64 // in, out
}

var _ metrics.Reporter = (*protocolCounter)(nil)

func newProtocolCounter() *protocolCounter {
	return &protocolCounter{counts: map[protocol.ID]*[2]atomic.Int64{}}
}

func (c *protocolCounter) of(p protocol.ID) *[2]atomic.Int64 {
	c.mu.RLock()
	v := c.counts[p]
	c.mu.RUnlock()
	if v != nil {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v = c.counts[p]; v == nil {
		v = new([2]atomic.Int64)
		c.counts[p] = v
	}
	return v
}

func (c *protocolCounter) LogSentMessage(int64) {}
func (c *protocolCounter) LogRecvMessage(int64) {}

func (c *protocolCounter) LogSentMessageStream(n int64, p protocol.ID, _ peer.ID) {
	if p != "" {
		c.of(p)[1].Add(n)
	}
}

func (c *protocolCounter) LogRecvMessageStream(n int64, p protocol.ID, _ peer.ID) {
	if p != "" {
		c.of(p)[0].Add(n)
	}
}

// snapshot returns the counts, sorted by protocol.
func (c *protocolCounter) snapshot() []ProtocolBytes {
	c.mu.RLock()
	out := make([]ProtocolBytes, 0, len(c.counts))
	for p, v := range c.counts {
		out = append(out, ProtocolBytes{Protocol: p, In: v[0].Load(), Out: v[1].Load()})
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b ProtocolBytes) int { return strings.Compare(string(a.Protocol), string(b.Protocol)) })
	return out
}

func (c *protocolCounter) GetBandwidthForProtocol(p protocol.ID) metrics.Stats {
	c.mu.RLock()
	v := c.counts[p]
	c.mu.RUnlock()
	if v == nil {
		return metrics.Stats{}
	}
	return metrics.Stats{TotalIn: v[0].Load(), TotalOut: v[1].Load()}
}

func (c *protocolCounter) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats {
	out := map[protocol.ID]metrics.Stats{}
	for _, pb := range c.snapshot() {
		out[pb.Protocol] = metrics.Stats{TotalIn: pb.In, TotalOut: pb.Out}
	}
	return out
}

func (c *protocolCounter) GetBandwidthTotals() metrics.Stats {
	var s metrics.Stats
	for _, pb := range c.snapshot() {
		s.TotalIn += pb.In
		s.TotalOut += pb.Out
	}
	return s
}

// Per peer is not counted: a map by peer would grow with every peer met.
func (c *protocolCounter) GetBandwidthForPeer(peer.ID) metrics.Stats     { return metrics.Stats{} }
func (c *protocolCounter) GetBandwidthByPeer() map[peer.ID]metrics.Stats { return nil }

func (c *protocolCounter) Reset() {
	c.mu.Lock()
	c.counts = map[protocol.ID]*[2]atomic.Int64{}
	c.mu.Unlock()
}

func (c *protocolCounter) TrimIdle(time.Time) {}
