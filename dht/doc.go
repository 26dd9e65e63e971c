// Package dht finds the peers that provide a root, and announces the roots
// this node provides, over a Kademlia DHT of peer's own or the public one.
//
// It wraps go-libp2p-kad-dht behind a small type. Unless Config.Amino is
// set, the DHT speaks under peer's own protocol prefix (DefaultPrefix,
// "/peer"), not the public IPFS one, so a peer network is a network of its
// own; it runs in server mode by
// default (the right mode for nodes of a private swarm and for simulations;
// ModeClient and ModeAuto are there for nodes behind NAT). Bootstrap peers
// come only from the Config: none are built in (AminoBootstrapPeers is
// there for a caller to pass).
//
// Config.Amino joins the public IPFS DHT (Amino, /ipfs/kad/1.0.0) instead:
// the node's --network public. Its servers keep other peers' IPNS and
// public-key values too, as Amino requires, in a capped store;
// AminoBootstrapPeers are the public bootstrap peers that kad-dht ships,
// which only a Config that carries them dials.
//
// Provide announces a root and keeps announcing it before the record
// expires, until StopProviding or Close: in sweeps a few times per
// interval, each taking every root that would be overdue before the next
// one (batches, a few announcements at once), so roots shared at scattered
// times do not each wake the node on their own. FindProviders streams what it finds
// on a channel that it closes when the lookup ends; cancel the context to
// end it early, there is nothing else to drain. It sends only providers it
// could connect to, and looks past those that do not answer, so fake
// providers that crowd a root's records do not hide the real one. A lookup
// that reaches no provider runs again, five times after pauses that double
// from 0.25 s: the fetchers of a flash crowd look a root up as its sharer
// announces it, and a lookup can end before the announcement lands.
//
// Each DHT request or message gets a stream of its own, closed once it is
// answered (sender.go): kad-dht's own sender keeps a stream open to every
// peer it ever asked, until the connection ends, with goroutines waiting at
// both ends.
//
// A server keeps the provider records of others in memory, within caps
// (Config.MaxProviderRecords, MaxProvidersPerRoot): a peer that mints IDs
// and announces anything cannot fill the node's memory, and a root's first
// providers keep their places however many come after them.
//
// Values (ValueStore: PutValue, GetValue) are IPNS records only, the
// "ipns" namespace checked by boxo's validator (signature, validity, at most
// 10 KiB, the highest sequence wins); any other namespace is refused, and a
// server keeps at most Config.MaxValueRecords of them for others.
//
// The package also runs mDNS discovery for peers on the local network
// (StartMDNS). The node starts it only when it listens on a non-loopback
// address: a node on loopback, and every test, sends no multicast.
package dht
