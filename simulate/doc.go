// Package simulate runs many real peer nodes in one process on go-libp2p's
// mocknet and checks that they survive a hostile world.
//
// A Scenario names the honest nodes (the first Seeders of them share a
// generated file, the others fetch it at once by its ticket), the links
// between them (latency and bandwidth per peer profile, a per-node upload
// cap), adversaries that speak the real wire protocol (serve corrupt chunks,
// lie in HAVE, stall, flood requests) and timed fault events (peers leave
// and join, the network splits and heals). Seed fixes every random choice:
// identities, file content, which peers, when and which links. Honest nodes
// are unmodified node.Nodes; only the network under them is simulated.
//
// Run executes a scenario and returns a Report: per-peer completion times
// and their distribution, success rate, integrity of every completed copy
// (hashed against the original), bytes served per peer, the seeders' upload
// as a multiple of the file size, duplicate bytes, DHT lookup latency, bans,
// and the invariants that failed. A Report prints as a text table, as JSON
// and as an SVG chart of completion over time (WriteSVG), built without any
// network access. A failed run's error carries its seed and the command
// that repeats it.
//
//	sc, err := simulate.Named("churn", 40, 7)
//	rep, err := simulate.Run(ctx, sc)
//	rep.WriteText(os.Stdout)
//
// Named scenarios: flash-crowd, churn, seeder-loss, partition, slow-links,
// adversarial, free-riders (see Names). `peer simulate --scenario NAME
// --peers N --seed S` runs the same from the command line.
//
// # Virtual time
//
// Run reads time only through the time package, and so do mocknet (link
// latency and bandwidth) and kad-dht: inside a testing/synctest bubble the
// whole run goes on the bubble's virtual clock, which moves only when every
// goroutine of the run waits. CPU the machine lacks then slows a run down
// without firing a timeout or stretching a figure: a request timeout is two
// seconds of simulated network, not of a starved scheduler. The tests run
// every scenario that way (synctest.Test); RunVirtual hosts a bubble for a
// program that is not a test (peer simulate). The report says which clock
// it was read from (Report.Clock) and gives the wall time beside it.
//
// What a bubble needs, and Run keeps to: no real socket or other I/O that
// waits on the outside world (mocknet is in-process; mDNS is off; files
// are read and written, which does not wait), no goroutine outside the
// bubble that the run waits on, a ctx made inside the bubble (a select on
// a channel from outside it is not durable, so the clock would stop), and
// every goroutine ended when Run returns (synctest.Test waits for them).
// The wall times in the report are read from the kernel's clocks (a
// system call the bubble does not fake).
//
// The same seed does not give the same report to the byte: goroutines that
// are ready at the same virtual instant still run in the order the Go
// scheduler picks, on every core, and a different order (which chunk is
// asked of whom first) changes later timings; select and map iteration
// are random in the runtime too, with no seed to set. Report.Outcome is the
// part the seed decides (the schedule, the identities, when each fault
// landed, who completed, intact copies, the invariants), and its digest is
// printed: the same on every run of a seed. The completion times, bytes
// per peer and which peers ban an adversary vary from run to run by what
// those orders change (see the soak's table for how much).
//
// A Loopback scenario (Demo, which `peer demo` runs) puts the nodes on
// real libp2p hosts on 127.0.0.1 over TCP instead: no faults, no
// simulated links, the machine's clock; the same run, report and checks.
//
// # How the network is simulated
//
// Two hosts are linked (mocknet dials only over links) when one of them
// first dials the other, unless a Partition or a Leave stands between
// them; adversaries, which dial through bare hosts, are linked to every
// host up front. A link's latency is the sum of its ends' profile
// latencies and its bandwidth the smaller of theirs. mocknet applies
// latency to each write and does not overlap the writes of one stream, so
// a stream moves about one write (a chunk, or 64 KiB) per latency. Honest nodes bootstrap their DHT from
// Degree random earlier nodes with one self-lookup each, in server mode with
// peer's own protocol prefix. UploadCap is one token bucket per node over
// all its exchange streams (mocknet alone caps each link). A Leave or a
// Partition makes the nodes' exchange streams fail at once and then closes
// the connections in the background (mocknet takes up to a second per
// connection); DHT traffic on those connections may go on until then.
//
// The invariants checked: every fetcher that is up at the end and can reach
// a complete copy completed; every completed copy hashes to the original;
// no incomplete fetch left a file at its destination; every honest node
// that read a corrupt block whole from an adversary bans it (unless it
// completed as it read it); no honest node bans an honest one.
package simulate
