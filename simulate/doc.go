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
// adversarial (see Names). `peer simulate --scenario NAME --peers N --seed S`
// runs the same from the command line.
package simulate
