// Package sched is the download scheduler of peer: which chunk to request
// from which peer, when to give up on a request, whom to ban.
//
// It is a pure, single-threaded state machine in the manner of etcd-io/raft:
// events in, actions out. It starts no goroutine, does no I/O, reads no
// clock (every event carries the caller's time) and draws randomness only
// from the seeded *rand.Rand it is given, so that the same events always
// give the same actions; its tests replay golden transcripts
// (testdata/*.txt) and simulate swarms in virtual time. The swarm package's
// I/O layer drives it. Every input is an Event value given to Step, which
// returns the decisions (Actions) it took, as etcd-io/raft's Step takes its
// messages:
//
//	s, err := sched.New(sched.Config{Chunks: n, ChunkSize: size}, resumeBits, rng)
//	// on connect:      s.Step(sched.Event{Kind: sched.PeerJoined, Peer: p, Time: now})
//	// on HAVE:         HaveAll, HaveBitfield (Bits) or Have (Index)
//	// on DONT_HAVE:    DontHave
//	// on BLOCK:        verify, write, then BlockVerified,
//	//                  or BlockBad / BlockWriteFailed
//	// on CHOKE:        Choke          on UNCHOKE: Unchoke
//	// on disconnect:   PeerLeft
//	// every ~100 ms:   Tick
//	// on a seek:       Prioritize (Index, To)
//	// each Step returns the actions: send WANT / CANCEL, disconnect, finish
//
// Each Event has a text form, a line of a transcript (transcript.go):
// "join P", "have P all", "block P 7 ok", "tick 50ms". A Recorder writes
// the transcript of a live Scheduler (the swarm writes one for a fetch when
// asked, see swarm.FetchOptions.Record) and Replay runs one through a new
// Scheduler, so that a real download can be replayed, step by step, here.
//
// # Policy
//
// A peer is given requests until its window is full. Each request is, in
// this order of preference:
//
//  1. the first unrequested chunk of the priority range (Prioritize) that
//     the peer has, in index order: streaming reads;
//  2. a duplicate of a request in the priority range that its holder is
//     expected to answer late (see endgame below);
//  3. the rarest unrequested chunk the peer has: fewest connected peers
//     have it, ties broken at random by the seeded rng (BitTorrent's rarest
//     first: rare chunks get replicated before their holders leave);
//  4. a chunk moved from the seeders (see below);
//  5. in endgame, a duplicate of a slow request.
//
// Sparing the seeders. A chunk that only seeders (HAVE all) were asked
// for moves to a peer that announces it since: the seeders' requests are
// cancelled (Cancel actions) and the peer is asked instead. Fetchers of
// the same root that start together all ask the one seed for the same new
// chunks; with this, each asks the others for what they announce, and the
// seed (which serves first the chunks it has sent to nobody, and holds
// back for a while those another connected peer got: see the swarm
// package) uploads each chunk about once. The move happens in two places:
//
//   - On the HAVE itself (moveTo), if the peer has room in its window,
//     whatever else it could be asked for: it most likely got the chunk
//     from the seed, which then holds our request back. This includes the
//     HAVE that completes the peer and makes it a seeder, so the follower
//     that finishes first takes over the last chunks the others asked of
//     the seed (testdata/steal_last.txt).
//   - When a partial peer (not a seeder) has room and nothing unrequested
//     to give (pickSteal, step 4 above): chunks it announced while its
//     window was full, or in its first bitfield. It looks at the dupScan
//     newest outstanding chunks, newest first: they wait longest in the
//     seed's queue, so the CANCEL most likely arrives before the block
//     leaves.
//
// Neither moves a chunk while the scheduler is paused (Pause), a chunk that
// was asked of a partial peer too, one the peer is avoided for, or one
// asked of a seeder known to be more than twice as fast as the peer
// (movable). A peer that was a seeder from the start takes nothing over, so
// with no partial peer (a single fetcher and its seed) nothing changes. A
// peer that announces a chunk and never sends it costs one request timeout:
// the chunk then goes to another holder, and the liar is avoided for it
// (testdata/steal.txt).
//
// Endgame. When a peer has a free slot and nothing unrequested to ask for
// (always the case near the end, when every missing chunk is requested) it
// may duplicate an outstanding request, up to Config.EndgameDup requests
// per chunk: the first copy to arrive cancels the others (Cancel actions).
// To keep duplicate bytes small, a duplicate is sent only if the peer is
// expected to deliver it at least two of its own chunk times plus round
// trips before the current holder would (from the holder's measured rate,
// its queue when the request was sent, and its round trip), which means
// the holder has not yet started sending it when the CANCEL reaches it; or
// if every holder looks stalled (overdue by as much again as it was
// expected to take). Thus equal peers produce no duplicates, while a peer
// four times slower than the others, or one that stopped answering, does
// not hold up the end: the simulations in sim_test.go measure both.
//
// Choking. A serving peer sends to a few peers at a time and chokes the
// rest (CHOKE): a choked peer gets no request until it unchokes, and its
// outstanding requests go back to the pool at once, with no penalty, so no
// chunk waits on a peer that will not send it.
//
// Windows. A peer's window is ⌈rate × (InFlight + RTT) / ChunkSize⌉
// clamped to [MinWindow, MaxWindow]: enough requests to keep its pipe full
// for a round trip plus InFlight (250 ms by default). It at most doubles at
// each block (slow start): a first block that comes at once, let through
// by the sender's upload cap in a burst, would otherwise read as a rate
// hundreds of times the real one and ask that peer for the whole file,
// leaving the other peers idle until its requests time out
// (testdata/burst.txt). The rate is the ratio
// of exponentially decayed sums of bytes and of sending time (a block's
// sending time runs from the previous block's arrival, or from its request
// less a round trip if the peer was idle); the round trip is the least
// request-to-arrival time less one chunk's transfer time.
//
// Timeouts. A request times out after max(RequestTimeout, 4 × smoothed
// request-to-arrival time), at most 8 × RequestTimeout. Tick cancels it,
// gives the chunk to another peer that has it (the late peer is avoided
// for that chunk while anyone else has it), halves the late peer's window
// and rate estimate and holds it to one request ("snubbed") until it
// delivers a block. A block that arrives after its request was cancelled is
// still used if the chunk is missing.
//
// Strikes and bans. Each chunk is requested of, and sent by, one peer at a
// time, so a block that fails its hash names its sender. Config.MaxStrikes
// defaults to 1: every connection is authenticated and encrypted (Noise or
// TLS), so bytes cannot be damaged in transit, and sharers re-verify a
// chunk before serving it (DESIGN.md), so an honest peer never sends a bad
// block; one bad block proves a broken or hostile peer, and giving it more
// chances only wastes bandwidth. Raise it if peers that do not re-verify
// must be tolerated. Misbehaved strikes for protocol violations the caller
// detects. A banned peer gets a Ban action, its requests go to others, and
// all its later events are ignored for the life of the Scheduler.
//
// # Cost
//
// Pickable chunks live in lists by availability (how many connected peers
// with a partial bitfield have them; seeders, having every chunk, add the
// same to all and are left out of the count, so a seeder joining costs
// O(1)). With n chunks, P peers and W the window:
//
//   - a pick for a seeder: O(1) expected (a random entry of the lowest
//     non-empty list);
//   - a pick for a partial peer: at most 256 list entries, then a scan of
//     its bitfield against the pickable set, O(n/64) words in the worst
//     case; a peer that found nothing is not asked again until something
//     it has becomes pickable;
//   - a priority pick: at most 1024 words (65536 chunks) of the range;
//   - a duplicate pick, or a move from the seeders: at most 256
//     outstanding chunks;
//   - Have: O(1); HaveBitfield and a partial peer leaving: O(n/64 + its
//     chunks); a seeder leaving: O(W log W); BlockVerified: O(log R) for R
//     requests in flight; Tick: O(log R) per timeout plus one duplicate
//     pick per idle peer.
//
// BenchmarkPick (2^20 chunks, 1000 peers) does 270 000 to 680 000
// verified-block-and-next-request rounds a second on one core, depending on
// how many peers are partial; a 10 Gbit/s download of 1 MiB chunks needs
// about 1200. Memory is
// about 14 bytes per chunk plus n/8 bytes per partial peer; Config.Chunks
// is limited to MaxChunks (2^26).
//
// A Scheduler is not safe for concurrent use and none of its methods
// blocks.
package sched
