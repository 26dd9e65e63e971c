package swarm

import (
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds on the roots a swarm serves that no share or fetch registered:
// folders and files inside a share, which Config.Lookup finds. A lookup
// may walk a whole subtree, so its answers are kept (a bounded cache), one
// runs at a time (a node holds one such walk in memory, whoever asks), and
// each peer may cause only so many.
const (
	// maxDerived is how many roots found by Lookup are kept, the least
	// recently used dropped first.
	maxDerived = 64
	// lookupBurst is how many lookups one peer may cause in
	// lookupWindow: a session for a root not found in the cache costs
	// one.
	lookupBurst  = 16
	lookupWindow = time.Minute
	// maxLookupPeers bounds the peers whose lookups are counted; past it,
	// the counts of windows that have ended are dropped.
	maxLookupPeers = 4096

	// maxLookupTries is how many times a lookup asks Config.Lookup when
	// roots stop being served while it runs (see lookup).
	maxLookupTries = 3
)

// lookups is the swarm's cache of roots found by Config.Lookup, and the
// count of lookups each peer caused.
type lookups struct {
	run sync.Mutex // held while Config.Lookup runs: one at a time

	mu      sync.Mutex // guards the fields below; taken after Swarm.mu
	derived map[cid.Cid]*derived
	clock   uint64 // ticks at each use, for least-recently-used
	peers   map[peer.ID]*lookupCount
}

type derived struct {
	src  Source
	used uint64
}

type lookupCount struct {
	since time.Time // the window's start
	n     int
}

// errTooManyLookups is said to a peer past its lookups.
var errTooManyLookups = fmt.Errorf("swarm: more than %d roots not served here asked for in %v", lookupBurst, lookupWindow)

// Registered returns the source of root: a share, a fetch, or a root that
// Lookup found and the cache kept; nil if none. Unlike Source it looks
// nothing up. Safe for concurrent use.
func (s *Swarm) Registered(root cid.Cid) Source {
	s.mu.Lock()
	src := s.sources[root]
	s.mu.Unlock()
	if src != nil {
		return src
	}
	lk := &s.lookups
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if d := lk.derived[root]; d != nil {
		lk.clock++
		d.used = lk.clock
		return d.src
	}
	return nil
}

// sourceFor returns the source of root for peer p: registered, or found by
// Lookup, which p pays for; nil if root is not served here. It fails with
// errTooManyLookups when p has caused lookupBurst lookups in the window.
func (s *Swarm) sourceFor(p peer.ID, root cid.Cid) (Source, error) {
	if src := s.Registered(root); src != nil || s.cfg.Lookup == nil {
		return src, nil
	}
	if !s.chargeLookup(p) {
		return nil, errTooManyLookups
	}
	return s.lookup(root), nil
}

// chargeLookup counts a lookup against p, and reports false if p has no
// lookups left in the window.
func (s *Swarm) chargeLookup(p peer.ID) bool {
	now := s.cfg.Now()
	lk := &s.lookups
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.peers == nil {
		lk.peers = map[peer.ID]*lookupCount{}
	}
	c := lk.peers[p]
	if c == nil {
		if len(lk.peers) >= maxLookupPeers {
			for q, qc := range lk.peers {
				if now.Sub(qc.since) >= lookupWindow {
					delete(lk.peers, q)
				}
			}
		}
		c = &lookupCount{since: now}
		lk.peers[p] = c
	}
	if now.Sub(c.since) >= lookupWindow {
		c.since, c.n = now, 0
	}
	if c.n >= lookupBurst {
		return false
	}
	c.n++
	return true
}

// lookup asks Config.Lookup for root, one lookup at a time, and keeps what
// it finds. What a lookup finds while a root stops being served (an
// unshare) may come from the share just unshared: it is neither kept nor
// returned, and Lookup is asked again, up to maxLookupTries times.
func (s *Swarm) lookup(root cid.Cid) Source {
	lk := &s.lookups
	lk.run.Lock()
	defer lk.run.Unlock()
	for range maxLookupTries {
		if src := s.Registered(root); src != nil { // found while this one waited
			return src
		}
		s.mu.Lock()
		gen := s.gen
		s.mu.Unlock()
		src := s.cfg.Lookup(s.ctx, root)
		if src == nil || s.keepDerived(root, src, gen) {
			return src
		}
	}
	return nil
}

// keepDerived caches src as the source of root, and reports true, unless a
// root stopped being served since gen.
func (s *Swarm) keepDerived(root cid.Cid, src Source, gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return false
	}
	lk := &s.lookups
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.derived == nil {
		lk.derived = map[cid.Cid]*derived{}
	}
	if len(lk.derived) >= maxDerived {
		var oldest cid.Cid
		var at uint64
		for c, d := range lk.derived {
			if !oldest.Defined() || d.used < at {
				oldest, at = c, d.used
			}
		}
		delete(lk.derived, oldest)
	}
	lk.clock++
	lk.derived[root] = &derived{src: src, used: lk.clock}
	return true
}

// forget drops root from the cache.
func (lk *lookups) forget(root cid.Cid) {
	lk.mu.Lock()
	delete(lk.derived, root)
	lk.mu.Unlock()
}

// cached returns the source of root in the cache, or nil.
func (lk *lookups) cached(root cid.Cid) Source {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if d := lk.derived[root]; d != nil {
		return d.src
	}
	return nil
}

// ForgetLookups drops every root that Lookup found and keep refuses, and
// ends the sessions that fetch it from here, as StopServing does: after an
// unshare, what only that share held is no longer answered. A lookup
// running meanwhile keeps nothing it found before (it asks Lookup again).
// keep is called without locks held. Safe for concurrent use.
func (s *Swarm) ForgetLookups(keep func(root cid.Cid, src Source) bool) {
	lk := &s.lookups
	s.mu.Lock()
	s.gen++
	lk.mu.Lock()
	roots := make([]cid.Cid, 0, len(lk.derived))
	srcs := make([]Source, 0, len(lk.derived))
	for c, d := range lk.derived {
		roots = append(roots, c)
		srcs = append(srcs, d.src)
	}
	lk.mu.Unlock()
	s.mu.Unlock()
	for i, root := range roots {
		if !keep(root, srcs[i]) {
			s.StopServing(root)
		}
	}
}
