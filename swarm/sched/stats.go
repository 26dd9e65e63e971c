package sched

import (
	"slices"
	"strings"
	"time"
)

// Stats is a snapshot of a Scheduler, for progress reports, metrics and
// tests.
type Stats struct {
	Chunks   int64 // in the download
	Verified int64 // verified (resumed ones included)
	Pickable int64 // neither verified nor requested
	// Outstanding is the number of chunks requested and not yet verified;
	// Requests the number of requests in flight (more in endgame).
	Outstanding, Requests int64
	// Endgame is true when every chunk not verified is requested.
	Endgame bool

	RequestsSent   int64 // Request actions so far
	DupRequests    int64 // of which duplicates of an outstanding request
	Cancels        int64 // Cancel actions so far
	Timeouts       int64 // requests timed out
	Chokes         int64 // Choke events that choked an unchoked peer
	BadBlocks      int64 // BlockBad events
	WriteFailures  int64 // BlockWriteFailed events
	Strikes, Bans  int64
	BytesReceived  int64 // in BlockVerified events
	BlocksReceived int64
	// DuplicateBytes and DuplicateBlocks count blocks that arrived for a
	// chunk already verified: wasted download.
	DuplicateBytes, DuplicateBlocks int64
	// Unrequested counts useful blocks that arrived without an
	// outstanding request (e.g. after a timeout cancelled it).
	Unrequested int64
	// Moved counts requests of seeders cancelled because a partial peer
	// announced their chunk and took them over (see doc.go, "Sparing the
	// seeders").
	Moved int64

	// Peers holds one entry per known peer, banned ones included, sorted
	// by ID.
	Peers []PeerStats
}

// PeerStats describes one peer.
type PeerStats struct {
	Peer        PeerID
	Seeder      bool  // has every chunk
	Have        int64 // chunks it announced
	Outstanding int   // requests in flight to it
	// Window is how many requests it may have in flight now (1 while
	// snubbed).
	Window  int
	Snubbed bool // timed out and has delivered nothing since
	Choked  bool // said CHOKE and not UNCHOKE since
	Banned  bool
	Strikes int
	// Rate is the measured throughput in bytes/s (0 until its first block
	// arrives); SRTT the smoothed request-to-arrival time; Timeout how long
	// a request sent to it now may take.
	Rate    float64
	SRTT    time.Duration
	Timeout time.Duration
	Bytes   int64 // verified bytes received, duplicates included
	Blocks  int64
	// Duplicates and DuplicateBytes count its blocks that arrived for a
	// chunk already verified.
	Duplicates, DuplicateBytes int64
	BadBlocks, Timeouts        int64
}

// Stats returns a snapshot. It costs O(peers log peers).
func (s *Scheduler) Stats() Stats {
	st := Stats{
		Chunks:          int64(s.n),
		Verified:        s.verified,
		Pickable:        s.bk.n,
		Outstanding:     int64(len(s.out)),
		Requests:        int64(s.nreqs),
		Endgame:         !s.done && s.bk.n == 0,
		RequestsSent:    s.st.requests,
		DupRequests:     s.st.dupRequests,
		Moved:           s.st.steals,
		Cancels:         s.st.cancels,
		Timeouts:        s.st.timeouts,
		Chokes:          s.st.chokes,
		BadBlocks:       s.st.bad,
		WriteFailures:   s.st.writeFailed,
		Strikes:         s.st.strikes,
		Bans:            s.st.bans,
		BytesReceived:   s.st.bytes,
		BlocksReceived:  s.st.blocks,
		DuplicateBytes:  s.st.dupBytes,
		DuplicateBlocks: s.st.dupBlocks,
		Unrequested:     s.st.unasked,
	}
	for _, p := range s.peers {
		st.Peers = append(st.Peers, PeerStats{
			Peer:           p.id,
			Seeder:         p.seeder,
			Have:           p.nhave,
			Outstanding:    len(p.out),
			Window:         p.effWindow(),
			Snubbed:        p.snubbed,
			Choked:         p.choked,
			Banned:         p.banned,
			Strikes:        p.strikes,
			Rate:           p.rate,
			SRTT:           p.srtt,
			Timeout:        p.timeout(s.cfg.RequestTimeout),
			Bytes:          p.bytes,
			Blocks:         p.blocks,
			Duplicates:     p.dups,
			DuplicateBytes: p.dupBytes,
			BadBlocks:      p.bad,
			Timeouts:       p.timeouts,
		})
	}
	slices.SortFunc(st.Peers, func(a, b PeerStats) int { return strings.Compare(string(a.Peer), string(b.Peer)) })
	return st
}
