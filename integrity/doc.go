// Package integrity builds and checks the content identifiers that every
// other package of peer trusts bytes through.
//
// A chunk is identified by a CIDv1 with the raw codec (0x55) and a sha2-256
// multihash; an interior node of a root's UnixFS DAG (file node, folder,
// HAMT shard) by a CIDv1 with the dag-pb codec (0x70) and the same hash. With equal chunk sizes the chunk CIDs equal those of
// `ipfs add --raw-leaves --cid-version=1 --chunker=size-N`, so standard IPFS
// tools can check them.
//
// Verify checks bytes against a CID and returns a *MismatchError when they do
// not match; a CID whose version, codec or hash function peer does not produce
// is refused with ErrUnsupported rather than passed. Writer hashes a stream
// as it is written and checks or names it at the end.
//
// Everything here is pure and safe for concurrent use: no goroutines, no I/O.
package integrity
