// Package node is peer as a library: a node that shares files in place,
// serves them to other peers and fetches roots from every peer that has
// them, verifying every byte.
//
// Start from a Config (the zero value means the defaults; DefaultConfig
// spells them out), set Home (where the identity key and the database
// live) and call New; Close stops everything the node started and
// waits for it. Share indexes a file or folder where it is and announces it;
// Fetch downloads a root (or a path below it, or a ticket's root) into a
// destination, resuming an interrupted download, and then serves it from
// there; Hash computes a root with no node at all. All methods are safe for
// concurrent use; the long ones take a context and block until done. The
// errors they return match this package's sentinels (ErrNotFound,
// ErrNoProviders, ErrExists, ...) with errors.Is.
//
// Names follow shares that change: Publish shares a path and points an IPNS
// name (the node's key, or a named key kept in Home/keys) at its root,
// with a sequence number kept in Home/names; Resolve finds the root a name
// points at now (connected peers first, then the DHT); a Target may name a
// name (/ipns/NAME[/path], or a ticket of one); Follow keeps a folder equal
// to a name's latest version, receive-only (see its comment for what a crash
// or a full disk leaves).
//
// A Config is a plain value: copy one to make many nodes. Config.Host lets a
// caller bring its own libp2p host (simulations bring mocknet hosts); the
// node then never closes it. Nothing in this package sends a packet off the
// machine unless the configuration says so: a node joins no bootstrap peer
// unless Config.Bootstrap names it or Config.Network is NetworkPublic (the
// public IPFS network, through go-libp2p-kad-dht's bootstrap peers), and
// mDNS runs only on a node that listens on a non-loopback address and has
// neither a swarm key nor an allowlist.
package node
