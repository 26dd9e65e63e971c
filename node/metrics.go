package node

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// lookupBounds are the upper bounds, in seconds, of the DHT lookup latency
// histogram's buckets (the last bucket, +Inf, is implicit).
var lookupBounds = [...]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// nodeMetrics are the node's own counters, beside the swarm's. They are
// atomics: safe for concurrent use without the node's lock.
type nodeMetrics struct {
	lookups      atomic.Int64 // DHT provider lookups started
	lookupsFound atomic.Int64 // that found at least one provider
	lookupNanos  atomic.Int64 // sum of their latencies
	lookupCounts [len(lookupBounds) + 1]atomic.Int64
}

// observeLookup records one lookup's latency: the time to its first
// provider, or to its end when it found none.
func (m *nodeMetrics) observeLookup(d time.Duration, found bool) {
	m.lookups.Add(1)
	if found {
		m.lookupsFound.Add(1)
	}
	m.lookupNanos.Add(int64(d))
	s := d.Seconds()
	i := 0
	for i < len(lookupBounds) && s > lookupBounds[i] {
		i++
	}
	m.lookupCounts[i].Add(1)
}

// Histogram is a snapshot of a latency histogram in Prometheus' shape.
type Histogram struct {
	// Bounds are the buckets' upper bounds in seconds, ascending; the
	// +Inf bucket is implicit.
	Bounds []float64
	// Cumulative[i] counts the observations ≤ Bounds[i].
	Cumulative []uint64
	Count      uint64  // every observation (the +Inf bucket)
	Sum        float64 // seconds
}

// Metrics is a snapshot of what a node has done since it started and what
// it is doing now: what a daemon exports to Prometheus.
type Metrics struct {
	Swarm     Stats // the exchange's counters
	Peers     int   // connected now
	Banned    int   // banned now
	DHTPeers  int   // in the DHT's routing table; 0 without a DHT
	Transfers int   // fetches in progress
	// DHTLookups counts provider lookups; DHTLookupsFound those that found
	// at least one provider.
	DHTLookups, DHTLookupsFound int64
	// DHTLookupSeconds is the latency of each lookup: to its first
	// provider, or to its end when it found none.
	DHTLookupSeconds Histogram
	// Protocols are the stream bytes in and out by libp2p protocol (the
	// exchange, the DHT, identify, relays, AutoNAT, ...), sorted by
	// protocol; empty on a host the caller brought.
	Protocols []ProtocolBytes
}

// Metrics returns a snapshot of the node's counters. It does not block on
// the network and is safe for concurrent use.
func (n *Node) Metrics() Metrics {
	m := Metrics{
		Swarm:           n.Stats(),
		Peers:           len(n.host.Network().Peers()),
		Banned:          len(n.swarm.Bans()),
		DHTLookups:      n.metrics.lookups.Load(),
		DHTLookupsFound: n.metrics.lookupsFound.Load(),
	}
	if n.dht != nil {
		m.DHTPeers = n.dht.Peers()
	}
	if n.bandwidth != nil {
		m.Protocols = n.bandwidth.snapshot()
	}
	n.mu.Lock()
	m.Transfers = len(n.transfers)
	n.mu.Unlock()
	h := &m.DHTLookupSeconds
	h.Bounds = append([]float64(nil), lookupBounds[:]...)
	h.Cumulative = make([]uint64, len(lookupBounds))
	var total uint64
	for i := range lookupBounds {
		total += uint64(n.metrics.lookupCounts[i].Load())
		h.Cumulative[i] = total
	}
	h.Count = total + uint64(n.metrics.lookupCounts[len(lookupBounds)].Load())
	h.Sum = time.Duration(n.metrics.lookupNanos.Load()).Seconds()
	return m
}

// findProviders runs a DHT provider lookup and records its latency. The
// returned channel is closed when the lookup ends, as the DHT's is; cancel
// ctx to end it early. n.dht must not be nil.
func (n *Node) findProviders(ctx context.Context, root cid.Cid, limit int) <-chan peer.AddrInfo {
	in := n.dht.FindProviders(ctx, root, limit)
	out := make(chan peer.AddrInfo)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return in
	}
	n.wg.Add(1)
	n.mu.Unlock()
	start := time.Now()
	go func() {
		defer n.wg.Done()
		defer close(out)
		found := false
		for ai := range in {
			if !found {
				found = true
				n.metrics.observeLookup(time.Since(start), true)
			}
			select {
			case out <- ai:
			case <-ctx.Done():
				// The DHT ends the lookup and closes in; drain it.
			}
		}
		if !found {
			n.metrics.observeLookup(time.Since(start), false)
		}
	}()
	return out
}
