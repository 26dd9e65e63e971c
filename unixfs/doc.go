// Package unixfs builds the UnixFS DAGs of the IPIP-499 unixfs-v1-2025
// profile, so that a root that peer computes is the CID that Kubo
// (`ipfs add --profile=unixfs-v1-2025`) and every other careful IPFS
// implementation compute for the same bytes.
//
// The profile: CIDv1, sha2-256, raw leaves of 1 MiB (the chunker's default
// fixed chunks), file nodes in a balanced layout with at most 1024 links,
// directories as plain dag-pb nodes while their estimated block is at most
// 256 KiB and HAMT-sharded (fanout 256) past it.
//
// The builders take leaves by CID and size, never their bytes: a file is
// hashed by the chunker (on every core) and stays where it is, and only the
// interior nodes, small and few (one per 1024 leaves, plus one per 1024 of
// those), are handed to the caller to keep. A FileBuilder holds at most
// 1024 links per level of the tree, so memory stays bounded whatever the
// file's size. Nodes are encoded with boxo's merkledag and unixfs packages,
// and folders are built with boxo's unixfs/io directories, the code that
// Kubo runs, rather than with a codec of our own.
//
// UnixFS 1.5 metadata is opt-in: WithMeta gives a file's root or a
// folder's node a mode and an mtime, Symlink makes a symlink node, Decode
// checks both (a symlink target is bounded bytes, never a path followed
// here) and Walker.Stat reports them for a folder's entries.
package unixfs
