package sched

import (
	"math"
	"time"
)

// Estimator constants. They are not configuration: the tests and the
// documentation rely on them.
const (
	// rateDecay weighs the history of a peer's byte and time sums at each
	// new block: 0.8 forgets half the history in about three blocks.
	rateDecay = 0.8
	// timeoutRTTs is how many smoothed round trips a request may take
	// before it times out, if that is more than Config.RequestTimeout.
	timeoutRTTs = 4
	// maxTimeoutFactor caps the adaptive timeout at this multiple of
	// Config.RequestTimeout.
	maxTimeoutFactor = 8
)

// request is one outstanding WANT: a chunk asked of a peer.
type request struct {
	p     *peer
	i     int32
	sent  time.Time
	ahead int32     // requests the peer already had outstanding when it was sent
	due   time.Time // when it times out
	live  bool      // false once answered, cancelled or dropped (the timeout heap is lazy)
	seq   uint64    // order of sending, for equal due times
}

// peer is everything the scheduler knows about one source.
type peer struct {
	id  PeerID
	ord int // join order, for deterministic iteration

	seeder bool     // has every chunk; have is nil
	have   bitfield // chunks it has, when not a seeder (nil: none yet)
	nhave  int64    // set bits of have

	out map[int32]*request

	window  int
	snubbed bool // timed out since its last block: one request at a time
	choked  bool // said CHOKE: no request until UNCHOKE
	strikes int
	banned  bool
	gone    bool // left; pointers to it may linger in lazy lists

	// Throughput: rate = accB/accT, both sums decayed by rateDecay at each
	// block. accT adds the time the peer spent on the block: from the later
	// of its request and the previous arrival, to its arrival.
	accB, accT  float64
	rate        float64 // bytes/s; 0 while unknown
	lastArrival time.Time
	srtt        time.Duration // smoothed request-to-arrival time; 0 while unknown
	rttvar      time.Duration
	minLat      time.Duration // least request-to-arrival time seen; 0 while unknown

	// Scheduling flags (see Scheduler.fill).
	dirty    bool // queued in Scheduler.dirty
	starved  bool // found nothing to request; woken by events
	inList   bool // in Scheduler.starved
	noNormal bool // has no unrequested chunk: only duplicates can help

	// Usefulness (see Scheduler.Useful).
	lack  int32 // a chunk it has that was not verified when last looked
	spent bool  // has no chunk we lack; cleared when it announces one

	// Counters for Stats.
	bytes, blocks, dups, dupBytes, bad, timeouts int64
}

func (p *peer) has(i int32) bool {
	if p.seeder {
		return true
	}
	return p.have != nil && p.have.get(i)
}

// effWindow is how many requests the peer may have outstanding now: none
// while it chokes us.
func (p *peer) effWindow() int {
	if p.choked {
		return 0
	}
	if p.snubbed {
		return 1
	}
	return p.window
}

// chunkTime is how long the peer takes to send size bytes at its measured
// rate; ok is false while the rate is unknown.
func (p *peer) chunkTime(size int) (time.Duration, bool) {
	if p.rate <= 0 {
		return 0, false
	}
	return time.Duration(float64(size) / p.rate * float64(time.Second)), true
}

// baseRTT estimates the peer's round trip without queueing or transfer:
// the least request-to-arrival time seen, less one chunk's transfer time.
func (p *peer) baseRTT(size int) time.Duration {
	ct, ok := p.chunkTime(size)
	if !ok || p.minLat <= ct {
		return 0
	}
	return p.minLat - ct
}

// timeout is how long a request sent to the peer now may stay unanswered.
func (p *peer) timeout(base time.Duration) time.Duration {
	t := timeoutRTTs * p.srtt
	return min(max(t, base), maxTimeoutFactor*base)
}

// observe folds a block of size bytes answering r, arrived at now, into the
// peer's estimates.
func (p *peer) observe(r *request, size int, now time.Time) {
	lat := max(now.Sub(r.sent), 0)
	var svc time.Duration
	if p.lastArrival.After(r.sent) {
		// Pipelined: the peer sent this block right after the last.
		svc = now.Sub(p.lastArrival)
	} else {
		// It was idle: the request had to travel there and the block
		// back; a round trip that is not the peer's sending time.
		svc = max(now.Sub(r.sent)-p.baseRTT(size), 0)
	}
	p.lastArrival = now
	p.accB = p.accB*rateDecay + float64(size)
	p.accT = p.accT*rateDecay + svc.Seconds()
	if p.accT > 0 {
		p.rate = p.accB / p.accT
	}
	if p.srtt == 0 {
		p.srtt, p.rttvar = lat, lat/2
	} else {
		d := p.srtt - lat
		if d < 0 {
			d = -d
		}
		p.rttvar = (3*p.rttvar + d) / 4
		p.srtt = (7*p.srtt + lat) / 8
	}
	if p.minLat == 0 || (lat > 0 && lat < p.minLat) {
		p.minLat = lat
	}
}

// resize sets the window to keep inFlight plus one round trip of data in
// flight at the measured rate: ⌈rate × (inFlight + baseRTT) / chunkSize⌉,
// clamped to [minW, maxW], and at most twice what it was (slow start: one
// block that came at once, from a sender's burst or its buffers, would
// otherwise ask one peer for the whole file). An unknown rate leaves the
// window alone.
func (p *peer) resize(chunkSize int, inFlight time.Duration, minW, maxW int) {
	if p.rate <= 0 {
		return
	}
	w := p.rate * (inFlight + p.baseRTT(chunkSize)).Seconds() / float64(chunkSize)
	limit := min(maxW, 2*max(p.window, minW))
	if w > float64(limit) {
		p.window = limit
		return
	}
	p.window = max(int(math.Ceil(w)), minW)
}

// penalize shrinks the peer after a timeout: half the window (not below
// minW), half the rate estimate, one request at a time until a block
// arrives.
func (p *peer) penalize(minW int) {
	p.window = max(p.window/2, minW)
	p.accB /= 2
	if p.accT > 0 {
		p.rate = p.accB / p.accT
	}
	p.snubbed = true
}
