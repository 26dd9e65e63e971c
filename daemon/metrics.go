package daemon

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peer-project/peer/node"
)

// Metric names, as contrib/grafana's dashboard and the README use them.
const (
	MetricBytesUp        = "peer_bytes_up_total"
	MetricBytesDown      = "peer_bytes_down_total"
	MetricChunksVerified = "peer_chunks_verified_total"
	MetricChunksRejected = "peer_chunks_rejected_total"
	MetricChunksServed   = "peer_chunks_served_total"
	MetricDuplicateBytes = "peer_duplicate_bytes_total"
	MetricPeers          = "peer_peers"
	MetricDHTPeers       = "peer_dht_routing_table_peers"
	MetricBanned         = "peer_banned_peers"
	MetricBans           = "peer_bans_total"
	MetricDHTLookups     = "peer_dht_lookups_total"
	MetricDHTLookupSecs  = "peer_dht_lookup_seconds"
	MetricTransfers      = "peer_active_transfers"
	MetricChokes         = "peer_chokes_total"
	MetricProtocolBytes  = "peer_protocol_bytes_total"
	// MetricExchangeBytes splits the verified block bytes up and down by
	// exchange: peer's own protocol, or Bitswap (node.Config.Bitswap).
	MetricExchangeBytes = "peer_exchange_bytes_total"
)

// collector reads a node's counters at each scrape.
type collector struct {
	n                                                         *node.Node
	up, down, verified, rejected, served, dup, peers, dhtPeer *prometheus.Desc
	banned, bans, lookups, lookupSecs, transfers, chokes      *prometheus.Desc
	protoBytes, xchgBytes                                     *prometheus.Desc
}

func newCollector(n *node.Node) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		n:          n,
		up:         d(MetricBytesUp, "Chunk bytes sent to peers."),
		down:       d(MetricBytesDown, "Chunk bytes received from peers, verified or not."),
		verified:   d(MetricChunksVerified, "Chunks received that matched their CID."),
		rejected:   d(MetricChunksRejected, "Chunks received that failed their CID (the sender is struck)."),
		served:     d(MetricChunksServed, "Chunks sent to peers."),
		dup:        d(MetricDuplicateBytes, "Bytes received for chunks already verified (endgame duplicates, and Bitswap blocks that crossed a cancel), by exchange: peer's own protocol, or Bitswap.", "exchange"),
		peers:      d(MetricPeers, "Peers connected now."),
		dhtPeer:    d(MetricDHTPeers, "Peers in the DHT routing table."),
		banned:     d(MetricBanned, "Peers banned now."),
		bans:       d(MetricBans, "Bans since start."),
		lookups:    d(MetricDHTLookups, "DHT provider lookups, by whether they found a provider.", "result"),
		lookupSecs: d(MetricDHTLookupSecs, "DHT provider lookup latency: to the first provider, or to the end when none was found."),
		transfers:  d(MetricTransfers, "Transfers in progress: fetches (download) and sessions served (upload).", "direction"),
		protoBytes: d(MetricProtocolBytes, "Stream bytes by libp2p protocol (the exchange, the DHT, identify, relays, AutoNAT, hole punching) and direction (in, out).", "protocol", "direction"),
		xchgBytes:  d(MetricExchangeBytes, "Verified block bytes sent (up) and received (down), by exchange: peer's own protocol, or Bitswap.", "exchange", "direction"),
		chokes:     d(MetricChokes, "Peers told CHOKE (or, for a Bitswap peer, which has no CHOKE, held): they asked for blocks while every upload slot was taken, or their turn ended while others waited."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.down, c.verified, c.rejected, c.served, c.dup, c.peers, c.dhtPeer, c.banned, c.bans, c.lookups, c.lookupSecs, c.transfers, c.chokes, c.protoBytes, c.xchgBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.n.Metrics()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter(c.up, m.Swarm.BytesUp)
	counter(c.down, m.Swarm.BytesDown)
	counter(c.verified, m.Swarm.ChunksVerified)
	counter(c.rejected, m.Swarm.ChunksRejected)
	counter(c.served, m.Swarm.ChunksServed)
	counter(c.dup, m.Swarm.DuplicateBytes-m.Swarm.BitswapDuplicateBytes, "peer")
	counter(c.dup, m.Swarm.BitswapDuplicateBytes, "bitswap")
	gauge(c.peers, int64(m.Peers))
	gauge(c.dhtPeer, int64(m.DHTPeers))
	gauge(c.banned, int64(m.Banned))
	counter(c.bans, m.Swarm.Bans)
	counter(c.chokes, m.Swarm.Chokes)
	counter(c.xchgBytes, m.Swarm.BytesUp-m.Swarm.BitswapBytesUp, "peer", "up")
	counter(c.xchgBytes, m.Swarm.BytesDown-m.Swarm.BitswapBytesDown, "peer", "down")
	counter(c.xchgBytes, m.Swarm.BitswapBytesUp, "bitswap", "up")
	counter(c.xchgBytes, m.Swarm.BitswapBytesDown, "bitswap", "down")
	counter(c.lookups, m.DHTLookupsFound, "found")
	counter(c.lookups, m.DHTLookups-m.DHTLookupsFound, "none")
	h := m.DHTLookupSeconds
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Cumulative[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.lookupSecs, h.Count, h.Sum, buckets)
	gauge(c.transfers, int64(m.Transfers), "download")
	gauge(c.transfers, m.Swarm.ServeSessions, "upload")
	for _, pb := range m.Protocols {
		counter(c.protoBytes, pb.In, string(pb.Protocol), "in")
		counter(c.protoBytes, pb.Out, string(pb.Protocol), "out")
	}
}

// metricsHandler serves n's metrics, and the Go runtime's and the
// process's, in Prometheus' text format at /metrics.
func metricsHandler(n *node.Node) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(n), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}
