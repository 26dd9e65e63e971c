// Package choker decides which of a swarm's serving sessions get its upload
// slots, so that the upload goes to a few peers at a time, each of which
// gets its blocks soon and can pass them on, rather than to every peer at a
// trickle (with requests that time out and come twice).
//
// It is a pure state machine, like package sched: events in (Step), actions
// out. It starts no goroutine, takes no lock, does no I/O and reads no
// clock: every event carries the caller's time, and the caller sends a Tick
// when NextCheck says one is due. Its policy has no randomness (ties go to
// the first in line), so the same events always give the same actions; its
// tests replay golden transcripts (testdata/*.txt). The swarm package's
// serving code drives it, one call at a time:
//
//	c := choker.New(choker.Config{Slots: 4})
//	// a session starts:        c.Step(Event{Kind: Join, Session: s, Peer: p, At: now})
//	//                          (Quiet: true for one with no CHOKE on its wire)
//	// WANT of n chunks:        c.Step(Event{Kind: Want, Session: s, N: n, At: now})
//	// CANCEL hit n queued:     c.Step(Event{Kind: Cancel, ...})
//	// a request taken to serve: Writing; its block written: Sent
//	// NOT_INTERESTED, session end: NotInterested, Leave
//	// a peer's block verified: c.Step(Event{Kind: Credit, Peer: p, N: bytes, At: now})
//	// at NextCheck():          c.Step(Event{Kind: Tick, At: now})
//	// after each Step: for each Action: queue or drop the WANT's requests,
//	//                  drop the queue and send CHOKE, send UNCHOKE;
//	//                  Hold a quiet session's sends.
//
// # Policy
//
// A session that asks for a block (Want) takes a free slot; if there is
// none it is choked: its requests are dropped, it is told CHOKE and it
// waits in line. A slot is passed on (UNCHOKE) when its holder has had
// TurnBlocks blocks while others waited (the holder is choked and goes to
// the back of the line), has asked for nothing for IdleRelease, has been
// stuck on one block for StuckRevoke, or has ended; a holder that says
// NOT_INTERESTED with nothing queued gives its slot up at once and stays
// unchoked.
//
// Who gets it is BitTorrent's tit-for-tat: the waiting session whose peer
// has sent us the most lately (its credit, decaying with CreditTau), so
// that peers which trade with us are served first and a free rider gets
// only the spare turns; but every OptimisticEvery-th slot goes to the first
// in line (the optimistic unchoke: a newcomer gets a chance to trade, and
// nobody waits for good). A seeder, or a node whose peers send it nothing,
// thus serves in turn, first come first served. Credit is kept by peer, for
// all its sessions, and outlives its last session while it is worth
// CreditKeep.
//
// # Quiet sessions
//
// A session that joins Quiet has no CHOKE or UNCHOKE on its wire: a
// Bitswap peer, whose wants wait in the Bitswap server's queue until we
// send. Its requests are never dropped. Where a session would be choked, a
// quiet one is told Hold (send nothing more, keep the queue) and waits in
// line with its requests; a Want of it in line is queued; Unchoke lets it
// send again. It is otherwise a session like any: it takes turns, is
// released when idle or stuck, and a peer that sends us nothing over it
// is served by the optimistic unchokes.
package choker
