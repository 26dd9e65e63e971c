// Package names gives shares a name that can move: signed IPNS records
// (boxo/ipns) that point a key's name at a root, named keys kept on disk,
// and fast resolution among connected peers, with put and get through a
// DHT for peers that are not connected.
//
// # Records and names
//
// A Name is the hash of a public key, printed "/ipns/k51…" (a base36 CIDv1
// of codec libp2p-key) and read back by ParseName. NewRecord signs a
// record (V1 and V2 signatures, as boxo does) that points a name at
// /ipfs/ROOT with a sequence number, a validity (EOL) and a TTL. Validate
// checks a record a peer sent against the name it was sent for, and
// refuses it with ErrTooLarge (over 10 KiB, the spec's limit), ErrMalformed,
// ErrWrongKey (it embeds another key), ErrSignature (forged or tampered),
// ErrExpired or ErrValue (not /ipfs/CID). A Resolver refuses a record older
// than the one it holds with ErrStale.
//
// Keys are the node's own (NameFromPeer of its ID) or named ed25519 keys
// in a Keystore: one file per key, mode 0600, in a folder 0700; a key
// name is one plain word that cannot leave the folder, and a key file or
// folder that others can read is refused, as ssh does.
//
// A Publisher points one name at a root that changes: Set debounces a
// burst of changes into one record, the current root is signed again
// before its record expires, and each record goes to a Resolver and a DHT.
// The caller keeps the last sequence number (OnPublish) across restarts.
//
// # Resolution among connected peers: our protocol, not pubsub
//
// A Resolver speaks ProtocolID, a small protocol of ours, rather than
// libp2p pubsub on the name's topic. The reasons:
//   - go-libp2p-pubsub would be a new and heavy dependency (gossipsub's
//     mesh, scoring, tracing, its own protobufs) for what is a handful of
//     messages a day per name.
//   - Pubsub only pushes. A follower that connects after the last publish
//     hears nothing until the next one, so IPNS over pubsub needs a second
//     protocol to fetch the current record (go-libp2p-pubsub-router, which
//     Kubo used for it, adds /libp2p/fetch). Our protocol does both on one
//     stream.
//   - Gossipsub delivers through a mesh built from subscription
//     announcements and kept up by a heartbeat (one second by default).
//     Our push is one write on a stream that is already open: the record
//     reaches a following peer one network delay after Publish.
//   - Bounds are ours to set and to test: one session each way per peer,
//     at most MaxFollow names per session, a frame refused past
//     10 KiB + a few bytes before any allocation, a token bucket per
//     session, a write timeout; every refusal is reported to the caller.
//
// What pubsub would give and we do not: forwarding through peers that do
// not follow the name. Here a follower relays a new record to the peers
// that follow the name through it, so records cross any chain of
// followers, and the DHT covers the rest.
//
// The protocol: the follower opens one stream to each connected peer that
// speaks ProtocolID and sends FOLLOW with the names it follows; the peer
// answers at once with the records it holds for them and then pushes each
// newer record as it learns it. GET asks for a name's record (answered by
// RECORD or NONE). Every record is validated before it is kept; only
// records of names followed, published or being resolved here are kept.
//
// # The DHT
//
// PutDHT and GetDHT store and look up a record in a routing.ValueStore,
// such as kad-dht (which validates the "ipns" namespace with boxo's
// validator, DHTValidator, by default). Resolver.ResolveDHT looks a name
// up there and gives what it finds to the Resolver (kept if the name is
// followed, and pushed to its followers), validating it once; Learn gives
// it a record found elsewhere.
//
// # Wiring into a node
//
// One Resolver per host (NewResolver with the node's host and a callback
// that strikes peers); one Publisher per published name, with the
// Resolver and the node's DHT; Follow for `get --follow`, Resolve then
// ResolveDHT for a one-off lookup.
package names
